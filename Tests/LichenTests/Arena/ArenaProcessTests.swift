import Foundation
import Lichen
import LichenChecks
import Testing

/// Process-level evidence that the capped heap lives only inside the budget: what the kernel
/// shows in /proc/self/maps, what jemalloc's own statistics say the arena has mapped, and the
/// extent hooks' counters, before and after heavy use.
@Suite("Arena in the process")
struct ArenaProcessTests {
    /// One line of /proc/self/maps: [start, end).
    struct Mapping { let start: UInt; let end: UInt }

    static func mappings() throws -> [Mapping] {
        let text = try String(contentsOfFile: "/proc/self/maps", encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard let range = line.split(separator: " ").first else { return nil }
            let parts = range.split(separator: "-")
            guard parts.count == 2, let a = UInt(parts[0], radix: 16), let b = UInt(parts[1], radix: 16) else { return nil }
            return Mapping(start: a, end: b)
        }
    }

    /// Bytes of [start, end) covered by the process's mappings.
    static func covered(_ maps: [Mapping], _ start: UInt, _ end: UInt) -> UInt {
        maps.reduce(0) { sum, m in
            let lo = max(m.start, start), hi = min(m.end, end)
            return sum + (hi > lo ? hi - lo : 0)
        }
    }

    @Test("jemalloc maps nothing outside the budget under heavy heap use")
    func heapStaysInsideTheRegion() throws {
        let budget = 64 << 20
        let a = try Arena(byteCount: budget)
        let s0 = a.stats
        #expect(Self.covered(try Self.mappings(), s0.regionStart, s0.regionEnd) == UInt(budget))
        #expect(a.jemallocStatistic("mapped") == s0.heapExtentBytes)

        var rng = SplitMix64(seed: 99)
        var live: [(UnsafeMutableRawPointer, Int)] = []
        var liveBytes = 0
        var outside = 0
        for _ in 0..<50_000 {
            if !live.isEmpty && (liveBytes > 24 << 20 || rng.nextInt(0, 1) == 0) {
                live.swapAt(rng.nextInt(0, live.count - 1), live.count - 1)
                let (p, n) = live.removeLast()
                a.heapFree(p)
                liveBytes -= n
            } else {
                let n = 16 << rng.nextInt(0, 14)
                let p = try a.heapAllocate(byteCount: n)
                if UInt(bitPattern: p) < s0.regionStart || UInt(bitPattern: p) + UInt(n) > s0.regionEnd { outside += 1 }
                p.storeBytes(of: 0xA5, as: UInt8.self)
                live.append((p, n))
                liveBytes += n
            }
        }
        let s1 = a.stats
        #expect(outside == 0)
        #expect(s1.hookOutsideCount == 0)
        #expect(s1.heapExtentBytes > 8 << 20, "the heap grew well past its metadata block")
        #expect(s1.heapExtentBytes + s1.heapWasteBytes + s1.controlBytes + s1.lowUsedBytes + s1.bytesLeft == budget)
        // jemalloc's own count of the arena's memory (mapped + retained) is exactly what the
        // hooks gave it: had it taken extents from anywhere else, the sum would be larger.
        let mapped = try #require(a.jemallocStatistic("mapped"))
        let retained = try #require(a.jemallocStatistic("retained"))
        #expect(mapped + retained == s1.heapExtentBytes)
        // The region is still one fully mapped range (nothing unmapped or remapped inside it).
        #expect(Self.covered(try Self.mappings(), s1.regionStart, s1.regionEnd) == UInt(budget))

        for (p, _) in live { a.heapFree(p) }
        #expect(a.stats.heapInUseBytes == 0)
    }

    @Test("heap and low end used from several threads at once stay consistent")
    func concurrentUse() throws {
        let arena = try Arena(byteCount: 48 << 20)
        let failures = Atomicish()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            var pointers: [UnsafeMutableRawPointer] = []
            for i in 0..<5_000 {
                if worker == 0 {
                    if i % 50 == 0, (try? arena.allocatePersistent(byteCount: 512)) == nil { failures.add() }
                    continue
                }
                if let p = try? arena.heapAllocate(byteCount: 16 + (i * 131 + worker) % 20_000) {
                    pointers.append(p)
                } else {
                    failures.add()
                }
                if pointers.count > 64 { arena.heapFree(pointers.removeFirst()) }
            }
            for p in pointers { arena.heapFree(p) }
        }
        let s = arena.stats
        #expect(failures.value == 0)
        #expect(s.hookOutsideCount == 0)
        #expect(s.heapInUseBytes == 0)
        #expect(s.persistentBytes == 100 * 512)
        #expect(s.heapAllocationCount == s.heapFreeCount)
        #expect(s.controlBytes + s.lowUsedBytes + s.bytesLeft + s.heapExtentBytes + s.heapWasteBytes == s.reservedBytes)
    }
}

/// A counter shared by the worker threads.
final class Atomicish: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
