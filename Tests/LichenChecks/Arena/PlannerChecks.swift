import Lichen

/// A random set of buffer lifetimes: `count` buffers over `steps` steps, sizes up to
/// `maxBytes` (some 0, some repeated, to exercise ties).
func randomLifetimes(seed: UInt64, count: Int, steps: Int, maxBytes: Int) -> [PlannedBuffer] {
    var rng = SplitMix64(seed: seed)
    var out: [PlannedBuffer] = []
    var previous = 1
    for _ in 0..<count {
        let first = rng.nextInt(0, steps - 1)
        let last = min(steps - 1, first + rng.nextInt(0, steps / 4))
        var size: Int
        switch rng.nextInt(0, 9) {
        case 0: size = 0
        case 1: size = previous  // a tie
        default: size = rng.nextInt(1, maxBytes)
        }
        previous = size
        // Lifetimes here are always valid: nothing to throw.
        if let b = try? PlannedBuffer(byteCount: size, firstUse: first, lastUse: last) { out.append(b) }
    }
    return out
}

/// Independent overlap test (does not use MemoryPlan.overlapsWhileAlive).
func firstOverlap(_ plan: MemoryPlan) -> (Int, Int)? {
    for i in 0..<plan.count {
        for j in 0..<plan.count where i < j {
            let a = plan.buffers[i], b = plan.buffers[j]
            let alive = a.firstUse <= b.lastUse && b.firstUse <= a.lastUse
            let ea = plan.offsets[i] + a.byteCount, eb = plan.offsets[j] + b.byteCount
            let share = a.byteCount > 0 && b.byteCount > 0 && plan.offsets[i] < eb && plan.offsets[j] < ea
            if alive && share { return (i, j) }
        }
    }
    return nil
}

let plannerChecks: [Check] = [
    Check("Arena/Planner", "random lifetimes: no overlap while alive, bounds on the planned size, 16-aligned") { c in
        for seed in UInt64(1)...60 {
            let count = 1 + Int(seed * 37 % 200)
            let steps = 2 + Int(seed * 13 % 90)
            let buffers = randomLifetimes(seed: seed, count: count, steps: steps, maxBytes: seed % 3 == 0 ? 100 : 70_000)
            var planner = Planner()
            for b in buffers { planner.add(b) }
            guard let plan = c.expectNoThrow("plan seed " + String(seed), { () throws(LichenError) in try planner.plan() })
            else { continue }
            let tag = "seed " + String(seed) + ": "
            c.expect(plan.count == buffers.count, tag + "one offset per buffer")
            if let (i, j) = firstOverlap(plan) {
                c.fail(tag + "buffers " + String(i) + " and " + String(j) + " overlap while alive")
            } else {
                c.expect(true, "")
            }
            c.expect(!plan.overlapsWhileAlive(), tag + "overlapsWhileAlive() reports an overlap")
            var sum = 0, maxSize = 0, maxEnd = 0
            var aligned = true
            for i in 0..<plan.count {
                let rounded = (buffers[i].byteCount + 15) / 16 * 16
                sum += rounded
                maxSize = max(maxSize, rounded)
                maxEnd = max(maxEnd, plan.offsets[i] + rounded)
                if plan.offsets[i] % 16 != 0 || plan.offsets[i] < 0 || plan.roundedSizes[i] != rounded { aligned = false }
            }
            var maxLive = 0
            for t in 0..<steps {
                var live = 0
                for b in buffers where b.isAlive(at: t) { live += (b.byteCount + 15) / 16 * 16 }
                maxLive = max(maxLive, live)
            }
            c.expect(aligned, tag + "offsets 16-aligned and sizes rounded to 16")
            c.expect(plan.sumOfSizes == sum, tag + "sumOfSizes " + String(plan.sumOfSizes) + " != " + String(sum))
            c.expect(plan.plannedBytes == maxEnd, tag + "plannedBytes is the high-water mark")
            c.expect(plan.plannedBytes <= sum, tag + "planned " + String(plan.plannedBytes) + " > sum " + String(sum))
            c.expect(plan.plannedBytes >= maxSize, tag + "planned < largest buffer")
            c.expect(plan.plannedBytes >= maxLive, tag + "planned " + String(plan.plannedBytes) + " < max live " + String(maxLive))
            // Deterministic: the same input gives the same plan.
            let again = try? planner.plan()
            c.expect(again == plan, tag + "planning twice gives different plans")
        }
    },
    Check("Arena/Planner", "greedy by size fills the first gap (hand-worked example)") { c in
        // A 500 B alive at step 5 only, B 256 B alive 0...9, C 100 B alive at step 0 only.
        // Largest first: A at 0; B overlaps A -> 512; C overlaps only B, and the gap [0, 512)
        // below B holds it -> 0. High-water mark 512 + 256.
        var p = Planner()
        _ = c.expectNoThrow("add") { () throws(LichenError) in
            try p.addBuffer(byteCount: 500, firstUse: 5, lastUse: 5)
            try p.addBuffer(byteCount: 256, firstUse: 0, lastUse: 9)
            try p.addBuffer(byteCount: 100, firstUse: 0, lastUse: 0)
        }
        if let plan = c.expectNoThrow("plan", { () throws(LichenError) in try p.plan() }) {
            c.expect(plan.offsets == [0, 512, 0], "offsets " + String(plan.offsets[0]) + ", " + String(plan.offsets[1]) + ", " + String(plan.offsets[2]))
            c.expect(plan.plannedBytes == 768, "plannedBytes " + String(plan.plannedBytes))
            c.expect(plan.sumOfSizes == 512 + 256 + 112, "sumOfSizes " + String(plan.sumOfSizes))
        }
        // A chain a -> b -> c: a and c never live together and share offset 0.
        var q = Planner()
        _ = c.expectNoThrow("add chain") { () throws(LichenError) in
            try q.addBuffer(byteCount: 100, firstUse: 0, lastUse: 1)
            try q.addBuffer(byteCount: 50, firstUse: 1, lastUse: 2)
            try q.addBuffer(byteCount: 100, firstUse: 2, lastUse: 3)
        }
        if let plan = c.expectNoThrow("plan chain", { () throws(LichenError) in try q.plan() }) {
            c.expect(plan.offsets == [0, 112, 0], "chain offsets")
            c.expect(plan.plannedBytes == 176, "chain plannedBytes " + String(plan.plannedBytes))
        }
        let empty = try? Planner().plan()
        c.expect(empty?.plannedBytes == 0 && empty?.count == 0, "empty plan has size 0")
    },
    Check("Arena/Planner", "bad lifetimes and bad offline plans throw; overlapsWhileAlive catches overlaps") { c in
        c.expectThrows(.invalidArgument(name: "PlannedBuffer.byteCount", value: -1, reason: "must be >= 0"), "negative size") {
            () throws(LichenError) in try PlannedBuffer(byteCount: -1, firstUse: 0, lastUse: 0)
        }
        c.expectThrows(.invalidArgument(name: "PlannedBuffer.lastUse", value: 2, reason: "must be >= firstUse"), "end before start") {
            () throws(LichenError) in try PlannedBuffer(byteCount: 8, firstUse: 3, lastUse: 2)
        }
        c.expectThrows(.invalidArgument(name: "PlannedBuffer.firstUse", value: -1, reason: "must be >= 0"), "negative step") {
            () throws(LichenError) in try PlannedBuffer(byteCount: 8, firstUse: -1, lastUse: 2)
        }
        c.expectThrows(.invalidArgument(name: "PlannedBuffer.byteCount", value: Int.max, reason: "too large to round up"), "huge") {
            () throws(LichenError) in try PlannedBuffer(byteCount: Int.max, firstUse: 0, lastUse: 0)
        }
        guard let a = try? PlannedBuffer(byteCount: 64, firstUse: 0, lastUse: 2),
              let b = try? PlannedBuffer(byteCount: 64, firstUse: 2, lastUse: 4),
              let d = try? PlannedBuffer(byteCount: 64, firstUse: 3, lastUse: 4)
        else { c.fail("valid buffers threw"); return }
        // a and b are both alive at step 2: sharing bytes is an overlap; a and d are not.
        let bad = try? MemoryPlan(buffers: [a, b], offsets: [0, 48])
        c.expect(bad?.overlapsWhileAlive() == true, "overlap of live buffers not reported")
        let fine = try? MemoryPlan(buffers: [a, d], offsets: [0, 0])
        c.expect(fine?.overlapsWhileAlive() == false, "disjoint lifetimes reported as overlap")
        c.expect(fine?.plannedBytes == 64, "offline plan size")
        c.expectThrows(.invalidArgument(name: "MemoryPlan.offset", value: 8, reason: "must be >= 0 and 16-aligned"), "unaligned offset") {
            () throws(LichenError) in try MemoryPlan(buffers: [a], offsets: [8])
        }
        c.expectThrows(.invalidArgument(name: "MemoryPlan.offsets", value: 1, reason: "one offset per buffer required"), "count") {
            () throws(LichenError) in try MemoryPlan(buffers: [a, b], offsets: [0])
        }
    },
]
