import Foundation
import Lichen
import Testing

/// The step-boundary hand-over: a loop thread steps while a control thread publishes; every
/// step sees one whole value from start to end, values are freed only after the loop left them,
/// and on the control thread.
@Suite("Step-boundary swap")
struct StepBoundarySwapTests {
    /// A value that records where it was freed.
    final class Tagged {
        let id: Int
        let log: FreeLog
        init(_ id: Int, _ log: FreeLog) {
            self.id = id
            self.log = log
        }
        deinit { log.freed(id) }
    }

    final class FreeLog: @unchecked Sendable {
        private let lock = NSLock()
        private var ids = Set<Int>()
        private(set) var onLoopThread = 0
        nonisolated(unsafe) var loopThread: pthread_t?
        func freed(_ id: Int) {
            lock.lock()
            ids.insert(id)
            if let t = loopThread, pthread_equal(t, pthread_self()) != 0 { onLoopThread += 1 }
            lock.unlock()
        }
        func isFreed(_ id: Int) -> Bool {
            lock.lock()
            defer { lock.unlock() }
            return ids.contains(id)
        }
        var count: Int {
            lock.lock()
            defer { lock.unlock() }
            return ids.count
        }
    }

    @Test("1,000 publications while the loop steps: monotonic, whole, freed off the loop")
    func concurrentPublications() throws {
        let arena = try Arena(byteCount: 4 << 20)
        let log = FreeLog()
        let swap = try StepBoundarySwap<Tagged>(initial: nil, arena: arena)
        let done = ManagedAtomicFlag()
        final class Results: @unchecked Sendable {
            var seen: [Int] = []
            var violations = 0
        }
        let results = Results()
        let loop = Thread {
            log.loopThread = pthread_self()
            var last = -1
            while !done.value {
                let v = swap.acquire()
                let id = v?.id ?? -1
                // The value must stay alive for the whole step.
                for _ in 0..<50 { if let v, log.isFreed(v.id) { results.violations += 1 } }
                if id < last { results.violations += 1 }
                if id != last { results.seen.append(id) }
                last = id
                swap.confirm()
            }
            done.finished = true
        }
        loop.start()
        for i in 0..<1000 {
            swap.publish(Tagged(i, log))
            if i % 10 == 0 { usleep(100) }
        }
        usleep(20_000)
        done.value = true
        while !done.finished { usleep(1000) }
        swap.collect()
        #expect(results.violations == 0)
        #expect(results.seen.last == 999)
        #expect(log.onLoopThread == 0)
        #expect(log.count == 999)          // everything but the newest
        #expect(swap.heldCount == 1)
        #expect(swap.loopGeneration == 1000)
        #expect(swap.latest().generation == 1000)
    }

    final class ManagedAtomicFlag: @unchecked Sendable {
        private let lock = NSLock()
        private var v = false, f = false
        var value: Bool {
            get { lock.lock(); defer { lock.unlock() }; return v }
            set { lock.lock(); v = newValue; lock.unlock() }
        }
        var finished: Bool {
            get { lock.lock(); defer { lock.unlock() }; return f }
            set { lock.lock(); f = newValue; lock.unlock() }
        }
    }

    @Test("nothing the loop has not confirmed leaving is freed")
    func unconfirmedKept() throws {
        let arena = try Arena(byteCount: 4 << 20)
        let log = FreeLog()
        let swap = try StepBoundarySwap<Tagged>(initial: Tagged(0, log), arena: arena)
        #expect(swap.acquire()?.id == 0)
        swap.publish(Tagged(1, log))
        swap.publish(Tagged(2, log))  // 1 replaced before the loop took it: freed at once
        #expect(log.isFreed(1) && log.count == 1)
        #expect(swap.collect() == 0)   // the loop has not moved: 0 and 2 are held
        #expect(swap.heldCount == 2)
        #expect(swap.acquire()?.id == 2)
        #expect(swap.collect() == 0)   // taken but not confirmed: 0 is still held
        #expect(!log.isFreed(0))
        swap.confirm()
        #expect(swap.collect() == 1)
        #expect(log.isFreed(0) && log.isFreed(1) && !log.isFreed(2))
        #expect(swap.acquire()?.id == 2)  // no new value: the same one
    }

    @Test("a burst of publications between two steps holds two values, not all of them (each replaced one is freed at once)")
    func burstBetweenStepsIsFreed() throws {
        let arena = try Arena(byteCount: 4 << 20)
        let log = FreeLog()
        let swap = try StepBoundarySwap<Tagged>(initial: Tagged(0, log), arena: arena)
        #expect(swap.acquire()?.id == 0)
        swap.confirm()
        for i in 1...1000 {
            swap.publish(Tagged(i, log))
            #expect(swap.heldCount == 2, "after publication \(i)")
        }
        #expect(log.count == 999 && !log.isFreed(1000) && !log.isFreed(0))
        #expect(swap.acquire()?.id == 1000)
        swap.confirm()
        #expect(swap.collect() == 1)
        #expect(log.isFreed(0) && swap.heldCount == 1)
    }
}
