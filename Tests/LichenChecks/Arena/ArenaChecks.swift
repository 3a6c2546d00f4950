import Lichen

let arenaChecks: [Check] = plannerChecks + arenaBudgetChecks

private let mebibyte = 1 << 20

/// Fills `count` bytes at `p` with a pattern derived from `tag`.
private func fill(_ p: UnsafeMutableRawPointer, _ count: Int, tag: UInt8) {
    for i in 0..<count { p.storeBytes(of: tag &+ UInt8(truncatingIfNeeded: i &* 7), toByteOffset: i, as: UInt8.self) }
}

/// Whether `count` bytes at `p` still hold the pattern of `tag`.
private func holds(_ p: UnsafeMutableRawPointer, _ count: Int, tag: UInt8) -> Bool {
    for i in 0..<count where p.load(fromByteOffset: i, as: UInt8.self) != tag &+ UInt8(truncatingIfNeeded: i &* 7) {
        return false
    }
    return true
}

/// Marks the first and last 8 bytes of a block (cheap enough for 100,000 cycles under qemu).
private func stamp(_ p: UnsafeMutableRawPointer, _ count: Int, _ value: UInt64) {
    p.storeBytes(of: value, as: UInt64.self)
    p.storeBytes(of: ~value, toByteOffset: count - 8, as: UInt64.self)
}

private func stamped(_ p: UnsafeMutableRawPointer, _ count: Int, _ value: UInt64) -> Bool {
    p.loadUnaligned(as: UInt64.self) == value && p.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) == ~value
}

/// The parts of the region add up to the budget, and the two ends have not crossed.
private func expectConsistent(_ c: inout CheckContext, _ s: ArenaStats, _ what: String) {
    let parts = s.controlBytes + s.lowUsedBytes + s.bytesLeft + s.heapExtentBytes + s.heapWasteBytes
    c.expect(parts == s.reservedBytes, what + ": parts add to " + String(parts) + ", budget " + String(s.reservedBytes))
    c.expect(s.lowEnd <= s.highStart && s.regionStart <= s.lowEnd && s.highStart <= s.regionEnd, what + ": ends crossed")
    c.expect(s.hookOutsideCount == 0, what + ": " + String(s.hookOutsideCount) + " extents or pointers outside the heap end")
}

/// Whether `error` is `.budgetExceeded` with `asked > left`.
private func isBudgetExceeded(_ error: LichenError) -> Bool {
    if case .budgetExceeded(let asked, let left) = error { return asked > left && left >= 0 }
    return false
}

/// Over-budget requests on both ends throw exact errors and leave earlier allocations intact.
private func overBudget(_ c: inout CheckContext, _ arena: Arena, _ what: String) {
    guard let p = c.expectNoThrow(what + " persistent", { () throws(LichenError) in try arena.allocatePersistent(byteCount: 1000) }),
          let h = c.expectNoThrow(what + " heap", { () throws(LichenError) in try arena.heapAllocate(byteCount: 5000) })
    else { return }
    fill(p, 1000, tag: 11)
    fill(h, 5000, tag: 77)
    c.expect(arena.contains(p, byteCount: 1000) && arena.contains(h, byteCount: 5000), what + ": pointers inside the region")

    var s = arena.stats
    // What the low end can give at 16-byte alignment, computed from the two boundaries.
    let lowAligned = (Int(s.lowEnd) + 15) / 16 * 16
    let left = Int(s.highStart) - lowAligned
    c.expectThrows(.budgetExceeded(asked: left + 1, left: left), what + ": persistent beyond the budget") {
        () throws(LichenError) in try arena.allocatePersistent(byteCount: left + 1)
    }
    c.expect(arena.stats == s, what + ": a refused request changed the accounting")
    // Exactly what is left fits, and then nothing is left.
    if let rest = c.expectNoThrow(what + " the rest", { () throws(LichenError) in try arena.allocatePersistent(byteCount: left) }) {
        c.expect(Int(bitPattern: rest) == lowAligned, what + ": the rest starts at the aligned low end")
    }
    s = arena.stats
    c.expect(s.bytesLeft == 0, what + ": bytesLeft " + String(s.bytesLeft) + " after taking the rest")
    c.expectThrows(.budgetExceeded(asked: 16, left: 0), what + ": persistent on a full budget") {
        () throws(LichenError) in try arena.allocatePersistent(byteCount: 16)
    }
    // jemalloc's retained extents are at most a few MiB here: 2 * budget cannot come from them.
    let big = 2 * s.reservedBytes
    c.expectThrows(.budgetExceeded(asked: big, left: 0), what + ": heap beyond the budget") {
        () throws(LichenError) in try arena.heapAllocate(byteCount: big)
    }
    let after = arena.stats
    c.expect(after.heapInUseBytes == s.heapInUseBytes && after.lowUsedBytes == s.lowUsedBytes, what + ": refused heap request changed use")
    c.expect(holds(p, 1000, tag: 11), what + ": persistent bytes changed")
    c.expect(holds(h, 5000, tag: 77), what + ": heap bytes changed")
    expectConsistent(&c, after, what)
    c.expect(arena.heapFree(h), what + ": heapFree")
}

private let arenaBudgetChecks: [Check] = [
    Check("Arena/Arena", "over-budget requests throw budgetExceeded(asked:left:) and keep earlier contents") { c in
        guard let arena = c.expectNoThrow("create", { () throws(LichenError) in try Arena(byteCount: 8 * mebibyte) }) else { return }
        c.expect(arena.stats.reservedBytes == 8 * mebibyte, "reservedBytes")
        overBudget(&c, arena, "own region")
    },
    Check("Arena/Arena", "an arena over a caller's buffer behaves the same and stays inside it") { c in
        // 200 sizes up to 19 KiB touch ~40 small size classes, one slab each: up to 7 pages per
        // slab is 28 KiB with 4 KiB pages but 448 KiB with arm64's 64 KiB pages.
        let bytes = 24 * mebibyte
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes + 64, alignment: 64)
        defer { buffer.deallocate() }
        let base = buffer + 3  // deliberately unaligned
        do {
            guard let arena = c.expectNoThrow("create", { () throws(LichenError) in try Arena(buffer: base, byteCount: bytes) })
            else { return }
            let s = arena.stats
            c.expect(s.regionStart == UInt(bitPattern: base) && s.regionEnd == UInt(bitPattern: base + bytes), "region is the buffer")
            c.expect(arena.usesCallerBuffer, "usesCallerBuffer")
            var pointers: [UnsafeMutableRawPointer] = []
            for i in 0..<200 {
                if let p = try? arena.heapAllocate(byteCount: 16 + i * 97) { pointers.append(p) }
            }
            c.expect(pointers.count == 200, "200 small heap allocations in 24 MiB: " + String(pointers.count))
            var inside = true
            for p in pointers where p < base || p + 16 > base + bytes { inside = false }
            c.expect(inside, "heap pointers inside the caller's buffer")
            for p in pointers { arena.heapFree(p) }
            c.expect(arena.stats.heapInUseBytes == 0, "heap empty after freeing all")
            overBudget(&c, arena, "caller buffer")
        }
    },
    Check("Arena/Arena", "persistent and heap ends never cross; blocks keep their contents") { c in
        guard let arena = c.expectNoThrow("create", { () throws(LichenError) in try Arena(byteCount: 6 * mebibyte) }) else { return }
        var rng = SplitMix64(seed: 42)
        var low: [(UnsafeMutableRawPointer, Int)] = []
        var heap: [(UnsafeMutableRawPointer, Int)] = []
        var lowFull = false, heapFull = false
        while !(lowFull && heapFull) {
            let size = rng.nextInt(16, 40_000)
            if rng.nextInt(0, 1) == 0 && !lowFull {
                do throws(LichenError) {
                    let p = try arena.allocatePersistent(byteCount: size, alignment: 1 << rng.nextInt(0, 7))
                    fill(p, size, tag: UInt8(truncatingIfNeeded: low.count))
                    low.append((p, size))
                } catch {
                    c.expect(isBudgetExceeded(error), "persistent threw " + error.description)
                    lowFull = true
                }
            } else if !heapFull {
                do throws(LichenError) {
                    let p = try arena.heapAllocate(byteCount: size)
                    fill(p, size, tag: UInt8(truncatingIfNeeded: heap.count &+ 128))
                    heap.append((p, size))
                } catch {
                    // The heap grows in extents of whole jemalloc pages (a small size class needs
                    // a slab of up to 7 pages), so it may refuse while a few pages are left.
                    var refusedNearFull = false
                    if case .budgetExceeded(let asked, let left) = error {
                        refusedNearFull = asked == size && left < max(asked, 8 * Arena.heapPageSize)
                    }
                    c.expect(refusedNearFull, "heap threw " + error.description)
                    heapFull = true
                }
            }
        }
        let s = arena.stats
        expectConsistent(&c, s, "after filling both ends")
        c.expect(low.count > 10 && heap.count > 10, "both ends got blocks")
        var ok = true
        for (i, (p, n)) in low.enumerated() {
            if UInt(bitPattern: p + n) > s.lowEnd || UInt(bitPattern: p) < s.regionStart { ok = false }
            if !holds(p, n, tag: UInt8(truncatingIfNeeded: i)) { ok = false }
        }
        c.expect(ok, "persistent blocks below the low end with their contents")
        ok = true
        for (i, (p, n)) in heap.enumerated() {
            if UInt(bitPattern: p) < s.highStart || UInt(bitPattern: p + n) > s.regionEnd { ok = false }
            if !holds(p, n, tag: UInt8(truncatingIfNeeded: i &+ 128)) { ok = false }
        }
        c.expect(ok, "heap blocks above the high start with their contents")
    },
    Check("Arena/Arena", "100,000 heap allocate/free cycles of 16 B to 256 KiB stay inside the budget") { c in
        let budget = 64 * mebibyte
        let liveCap = 16 * mebibyte  // well under the budget: no request may fail
        guard let arena = c.expectNoThrow("create", { () throws(LichenError) in try Arena(byteCount: budget) }) else { return }
        _ = try? arena.allocatePersistent(byteCount: mebibyte)  // something at the low end too
        let before = arena.stats
        let slots = 512
        var pointers = [UnsafeMutableRawPointer?](repeating: nil, count: slots)
        var sizes = [Int](repeating: 0, count: slots)
        var rng = SplitMix64(seed: 7)
        var live = 0, usable = 0, failures = 0, outside = 0, corrupted = 0, maxLive = 0
        for cycle in 0..<100_000 {
            let k = rng.nextInt(0, slots - 1)
            if let p = pointers[k] {
                if !stamped(p, sizes[k], UInt64(k) &* 0x9E37_79B9) { corrupted += 1 }
                usable -= arena.heapUsableSize(p)
                arena.heapFree(p)
                pointers[k] = nil
                live -= sizes[k]
                continue
            }
            // Log-uniform 16 B ... 256 KiB.
            let size = min(256 << 10, (16 << rng.nextInt(0, 14)) + rng.nextInt(0, 15))
            if live + size > liveCap { continue }
            do throws(LichenError) {
                let p = try arena.heapAllocate(byteCount: size, alignment: cycle % 7 == 0 ? 256 : 16)
                if !arena.contains(p, byteCount: size) || UInt(bitPattern: p) < arena.stats.highStart { outside += 1 }
                stamp(p, size, UInt64(k) &* 0x9E37_79B9)
                pointers[k] = p
                sizes[k] = size
                live += size
                usable += arena.heapUsableSize(p)
                maxLive = max(maxLive, live)
            } catch {
                failures += 1
            }
        }
        var s = arena.stats
        c.expect(failures == 0, String(failures) + " heap requests failed with at most 16 MiB live in 64 MiB")
        c.expect(outside == 0, String(outside) + " heap pointers outside the heap end")
        c.expect(corrupted == 0, String(corrupted) + " blocks were overwritten")
        c.expect(s.heapInUseBytes == usable, "heapInUseBytes " + String(s.heapInUseBytes) + " != sum of usable sizes " + String(usable))
        c.expect(s.heapPeakBytes >= maxLive, "heapPeakBytes below the live peak")
        c.expect(maxLive > 4 * mebibyte, "the live set got large (" + String(maxLive) + " bytes)")
        expectConsistent(&c, s, "after 100,000 cycles")
        for k in 0..<slots { if let p = pointers[k] { arena.heapFree(p) } }
        s = arena.stats
        c.expect(s.heapInUseBytes == before.heapInUseBytes, "heap back to its level after freeing all: " + String(s.heapInUseBytes))
        c.expect(s.lowUsedBytes == before.lowUsedBytes, "low end untouched by the heap")
        c.expect(s.heapAllocationCount == s.heapFreeCount, "every allocation freed")
        expectConsistent(&c, s, "after freeing all")
    },
    Check("Arena/Arena", "tiny budgets fail cleanly with budgetExceeded; the documented minimum works") { c in
        for bytes in [1, 100, 4096, 65536, mebibyte, 2 * mebibyte] {
            do throws(LichenError) {
                _ = try Arena(byteCount: bytes)
                c.fail("an arena of " + String(bytes) + " bytes was created")
            } catch {
                c.expect(isBudgetExceeded(error), String(bytes) + " bytes threw " + error.description)
            }
        }
        c.expectThrows(.invalidArgument(name: "Arena.byteCount", value: 0, reason: "must be > 0"), "zero budget") {
            () throws(LichenError) in try Arena(byteCount: 0)
        }
        let minimum = Arena.minimumByteCount
        if let arena = c.expectNoThrow("minimum budget " + String(minimum), { () throws(LichenError) in try Arena(byteCount: minimum) }) {
            let p = c.expectNoThrow("first heap allocation at the minimum") { () throws(LichenError) in try arena.heapAllocate(byteCount: 100) }
            if let p { c.expect(arena.heapFree(p), "free") }
            expectConsistent(&c, arena.stats, "minimum budget")
        }
        // Many arenas in a row: each is destroyed with its region.
        var created = 0
        for _ in 0..<40 {
            if let a = try? Arena(byteCount: 3 * mebibyte), (try? a.heapAllocate(byteCount: 4096)) != nil { created += 1 }
        }
        c.expect(created == 40, String(created) + " of 40 arenas in a row worked")
    },
    Check("Arena/Arena", "planned regions, low-end marks and foreign pointers") { c in
        guard let arena = c.expectNoThrow("create", { () throws(LichenError) in try Arena(byteCount: 4 * mebibyte) }) else { return }
        var planner = Planner()
        for b in randomLifetimes(seed: 3, count: 50, steps: 20, maxBytes: 8000) { planner.add(b) }
        guard let plan = try? planner.plan() else { c.fail("plan"); return }
        let mark = arena.lowEndMark()
        if let region = c.expectNoThrow("reservePlan", { () throws(LichenError) in try arena.reservePlan(plan) }) {
            c.expect(UInt(bitPattern: region.base) % 16 == 0, "region 16-aligned")
            c.expect(arena.contains(region.base, byteCount: plan.plannedBytes), "region inside the arena")
            c.expect(arena.stats.plannedBytes == plan.plannedBytes, "plannedBytes in stats")
            var inside = true
            for id in 0..<plan.count {
                if let p = try? region.pointer(forBuffer: id) {
                    if p < region.base || p + plan.buffers[id].byteCount > region.base + plan.plannedBytes { inside = false }
                } else { inside = false }
            }
            c.expect(inside, "every buffer inside the planned region")
            c.expectThrows(.invalidArgument(name: "PlannedRegion.buffer", value: plan.count, reason: "no such buffer in the plan"), "bad id") {
                () throws(LichenError) in try region.pointer(forBuffer: plan.count)
            }
            let later = arena.lowEndMark()
            c.expect((try? arena.resetLowEnd(to: mark)) != nil, "reset to an earlier mark")
            c.expect(arena.stats.plannedBytes == 0 && arena.stats.lowUsedBytes == 0, "reset rolls the low end back")
            let again = try? arena.reservePlan(plan)
            c.expect(again?.base == region.base, "the same region after a reset")
            _ = try? arena.resetLowEnd(to: mark)
            c.expectThrows(.invalidArgument(name: "Arena.mark", value: plan.plannedBytes, reason: "mark is ahead of the low end"), "mark ahead") {
                () throws(LichenError) in try arena.resetLowEnd(to: later)
            }
        }
        // A plan bigger than the budget.
        if let one = try? PlannedBuffer(byteCount: 5 * mebibyte, firstUse: 0, lastUse: 0),
           let huge = try? MemoryPlan(buffers: [one], offsets: [0]) {
            let left = Int(arena.stats.highStart) - (Int(arena.stats.lowEnd) + 15) / 16 * 16
            c.expectThrows(.budgetExceeded(asked: 5 * mebibyte, left: left), "plan beyond the budget") {
                () throws(LichenError) in try arena.reservePlan(huge)
            }
        }
        // Pointers that are not this heap's are refused, not freed.
        let outsider = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        c.expect(!arena.heapFree(outsider), "a foreign pointer is refused")
        outsider.deallocate()
        if let p = try? arena.allocatePersistent(byteCount: 64) { c.expect(!arena.heapFree(p), "a low-end pointer is refused") }
        c.expectThrows(.invalidArgument(name: "Arena.alignment", value: 3, reason: "must be a power of two"), "bad alignment") {
            () throws(LichenError) in try arena.heapAllocate(byteCount: 10, alignment: 3)
        }
        c.expectThrows(.invalidArgument(name: "Arena.heapByteCount", value: 0, reason: "must be > 0"), "zero heap size") {
            () throws(LichenError) in try arena.heapAllocate(byteCount: 0)
        }
    },
]
