import CRuntime
import Foundation
import Lichen
import Testing

/// Learner mode: updates on the learner thread, versions published whole and picked up by the
/// loop, the guard's resets done by the learner, adapters applied between jobs, teardown while
/// a job runs, and the refusals of settings the learner cannot take.
@Suite("Runtime learner")
struct RuntimeLearnerTests {
    typealias S = RuntimeTestSupport

    static func plan(_ method: AdaptationMethod = .tent, window: Int = 16, every: Int = 16) -> AdaptationPlan {
        var p = AdaptationPlan(method, window: window, every: every)
        p.learner = BackgroundLearner.Settings()
        return p
    }

    static func allocated() -> UInt64 {
        var a: UInt64 = 0, d: UInt64 = 0
        let rc = lcr_thread_allocation_totals(&a, &d)
        precondition(rc == 0, "jemalloc's thread counters are not readable")
        return a
    }

    /// Steps until the learner has published `versions` versions and is idle again (logits into
    /// one buffer made before: the loop's steps allocate nothing of the test's either).
    @discardableResult
    static func stepUntilPublished(_ rt: Runtime, versions: UInt64, frames: [[Float]]) throws -> (steps: Int, allocated: UInt64) {
        var logits = [Float](repeating: 0, count: 16)
        var i = 0
        var before: UInt64 = 0
        try logits.withUnsafeMutableBufferPointer { l in
            before = Self.allocated()
            while (rt.running?.learner?.currentVersion ?? 0) < versions || !(rt.running?.learner?.isIdle ?? true) {
                try frames[i % frames.count].withUnsafeBufferPointer { f in _ = try rt.step(frame: f, logits: l) }
                i += 1
                if i > 200_000 { break }
            }
        }
        return (i, Self.allocated() &- before)
    }

    @Test("Tent on the learner thread: versions are published whole, the loop picks them up, and neither thread allocates per step or update")
    func tentOnLearner() throws {
        let rt = try RuntimeTests.loaded(Self.plan(.tent))
        let learner = try #require(rt.running?.learner)
        #expect(learner.isRunning)
        #expect(rt.methodFigures().learnerRunning)
        let frames = S.frames(64, count: 784, seed: 5)
        // Warm up: the first update and its refold, then measure the loop's steps.
        try Self.stepUntilPublished(rt, versions: 1, frames: frames)
        let (steps, allocated) = try Self.stepUntilPublished(rt, versions: 4, frames: frames)
        #expect(allocated == 0, "the loop allocated while stepping")
        #expect(steps >= 16)
        #expect(learner.updateCount >= 4)
        #expect(learner.failedUpdateCount == 0)
        #expect(learner.tornPredictions == 0)
        #expect(learner.allocatedBytesAfterFirstJob == 0)
        _ = try RuntimeTests.step(rt, frames[0])
        let f = rt.methodFigures()
        #expect(f.version == learner.currentVersion && f.version >= 4)
        #expect(f.updates == UInt64(learner.updateCount))
        #expect(f.updateP50Nanoseconds > 0 && f.updateP99Nanoseconds >= f.updateP50Nanoseconds)
        #expect(f.learnerLag >= 1 && f.maximumLearnerLag >= f.learnerLag)

        // The newest version is the fold of the learner's own state: its prediction equals the
        // graph's saved-statistics forward (the fold's rounding: Q8_0's folded block scales are
        // fp16). Compared once the thread is joined.
        rt.running?.stopLearner()
        learner.pickUp()
        let session = try #require(rt.session)
        let arena = try Arena(byteCount: 4 << 20)
        let input = try arena.persistentTensor(.f32, try Shape(1, 1, 28, 28))
        try input.copy(from: frames[3])
        let logits = try learner.predict(input, frameCount: 0).toArray()
        #expect(learner.currentVersion == learner.publishedVersion)
        let reference = try session.policy.predict(input: input, statistics: .saved, row: 0).toArray()
        let range = (reference.max() ?? 0) - (reference.min() ?? 0)
        for k in 0..<reference.count { #expect(abs(logits[k] - reference[k]) <= 2e-2 * range) }
    }

    @Test("frames the learner had no time for are counted as dropped; every handed-over window is accounted for")
    func droppedFrames() throws {
        // Window 16 adapted every 4 frames: the learner (one update per window) falls behind.
        let rt = try RuntimeTests.loaded(Self.plan(.tent, window: 16, every: 4))
        let learner = try #require(rt.running?.learner)
        let frames = S.frames(32, count: 784, seed: 9)
        for i in 0..<400 { _ = try RuntimeTests.step(rt, frames[i % frames.count]) }
        rt.running?.quiesceLearner()
        #expect(learner.jobCount >= 1)
        #expect(learner.jobCount == learner.updateCount + learner.failedUpdateCount)
        // Every frame up to the last handed-over window was either learned (at most 16 new
        // frames per job) or dropped.
        #expect(learner.learnedFrames + learner.droppedFrames == learner.lastUpdateFrame)
        #expect(learner.learnedFrames <= 16 * learner.jobCount)
        #expect(learner.lastUpdateFrame <= 400)
        #expect(learner.tornPredictions == 0)
    }

    @Test("a collapse guard's reset is made by the learner before its next job")
    func guardResetOnLearner() throws {
        var p = Self.plan(.tent)
        // No stream shows 10 effective classes over 16 frames of noise: the guard fires.
        p.collapseGuard = AdaptationPlan.Guard(minimumEffectiveClasses: 10, window: 16, resetEvery: 0)
        let rt = try RuntimeTests.loaded(p)
        let learner = try #require(rt.running?.learner)
        let frames = S.frames(32, count: 784, seed: 2)
        var i = 0
        while learner.resetCount == 0 && i < 20_000 {
            _ = try RuntimeTests.step(rt, frames[i % frames.count])
            i += 1
        }
        #expect(learner.resetCount >= 1)
        #expect(rt.methodFigures().guardResets >= 1)
    }

    @Test("an adapter set is applied between the learner's jobs; while applied the method steps synchronously; leaving it republishes")
    func adaptersOnLearner() throws {
        let dir = RuntimeAdapterTests.directory()
        let path = dir + "/a.gguf"
        try RuntimeAdapterTests.writeAdapter(path, seed: 3, base: try RuntimeAdapterTests.base())
        let rt = try RuntimeTests.loaded(Self.plan(.tent))
        let learner = try #require(rt.running?.learner)
        let frames = S.frames(32, count: 784, seed: 4)
        try Self.stepUntilPublished(rt, versions: 1, frames: frames)
        _ = try rt.loadAdapter(path: path, scale: 1)
        var i = 0
        while rt.session?.graph.skillAdapters == nil && i < 20_000 {
            _ = try RuntimeTests.step(rt, frames[i % frames.count])
            i += 1
        }
        #expect(rt.session?.graph.skillAdapters != nil)
        let updatesBefore = rt.frames?.adaptationCount ?? 0
        for k in 0..<32 { _ = try RuntimeTests.step(rt, frames[k]) }
        #expect((rt.frames?.adaptationCount ?? 0) == updatesBefore + 2, "synchronous updates while the adapter is applied")
        #expect(learner.isIdle)
        let version = learner.publishedVersion
        _ = try rt.unloadAdapter(name: "a")
        _ = try RuntimeTests.step(rt, frames[0])
        #expect(rt.session?.graph.skillAdapters == nil)
        #expect(learner.currentVersion == version + 1, "leaving the adapter republished the trainables")
        #expect(learner.tornPredictions == 0)
    }

    @Test("a method change and a teardown while the learner works return, free the learner and give its memory back")
    func teardownDuringJob() throws {
        let frames = S.frames(64, count: 784, seed: 6)
        let rt = try RuntimeTests.loaded(AdaptationPlan(.bnAdapt, window: 16, every: 16))
        let bnUsed = rt.arena.stats.lowUsedBytes, bnHeap = rt.arena.stats.heapInUseBytes
        // Three cycles: start Tent on a learner, step until an update runs on the thread, then
        // change the method under it. Each time the learner object is freed (nothing keeps it:
        // no cycle through its thread) and the budget is back where BN-adapt left it.
        for cycle in 0..<3 {
            weak var freed: BackgroundLearner?
            try rt.setMethod(Self.plan(.tent, window: 64, every: 64))
            do {
                let learner = try #require(rt.running?.learner)
                freed = learner
                var i = 0
                while learner.isIdle && i < 10_000 {
                    _ = try RuntimeTests.step(rt, frames[i % frames.count])
                    i += 1
                }
                #expect(!learner.isIdle, "cycle \(cycle): an update is running")
            }
            try rt.setMethod(AdaptationPlan(.bnAdapt, window: 16, every: 16))
            #expect(freed == nil, "cycle \(cycle): the learner was freed with its thread joined")
            #expect(rt.running?.learner == nil)
            #expect(rt.arena.stats.lowUsedBytes == bnUsed && rt.arena.stats.heapInUseBytes == bnHeap,
                    "cycle \(cycle): \(rt.arena.stats.lowUsedBytes) bytes used, BN-adapt alone \(bnUsed)")
            _ = try RuntimeTests.step(rt, frames[0])
        }
        try rt.setMethod(Self.plan(.tent, window: 64, every: 64))
        let second = try #require(rt.running?.learner)
        var i = 0
        while second.isIdle && i < 10_000 {
            _ = try RuntimeTests.step(rt, frames[i % frames.count])
            i += 1
        }
        #expect(!second.isIdle)
        // The runtime goes while the job runs: deinit stops (joins) the learner first.
    }

    @Test("settings the learner cannot take are refused, naming the setting, and the running method carries on")
    func refusals() throws {
        let rt = try RuntimeTests.loaded(AdaptationPlan(.tent, window: 4, every: 4))
        var p = Self.plan(.tent)
        p.framing = .frames(window: 16, every: 16, prediction: .window)
        #expect(throws: LichenError.invalidArgument(name: "learner", value: 1,
                                                    reason: "the learner thread needs frame mode with saved-statistics, fused prediction (the loop predicts through fused models)")) {
            try rt.setMethod(p)
        }
        p = Self.plan(.tent)
        p.fusedPrediction = false
        #expect(throws: LichenError.invalidArgument(name: "learner", value: 1,
                                                    reason: "the learner thread needs frame mode with saved-statistics, fused prediction (the loop predicts through fused models)")) {
            try rt.setMethod(p)
        }
        p = Self.plan(.tent)
        p.lora = AdaptationLoRA(rank: 2)
        #expect(throws: LichenError.invalidArgument(name: "learner", value: 1,
                                                    reason: "LoRA trainables are applied as adapters, which the fused models the loop predicts with do not apply: use the synchronous mode")) {
            try rt.setMethod(p)
        }
        p = Self.plan(.tent)
        p.learner = BackgroundLearner.Settings(cpu: 5000)
        #expect(throws: LichenError.invalidArgument(name: "learner.cpu", value: 5000, reason: "must be in 0...1023")) { try rt.setMethod(p) }
        p.learner = BackgroundLearner.Settings(nice: 40)
        #expect(throws: LichenError.invalidArgument(name: "learner.nice", value: 40, reason: "must be in -20...19")) { try rt.setMethod(p) }
        // A CPU number in range that this machine does not have.
        p.learner = BackgroundLearner.Settings(cpu: 1000)
        #expect(throws: LichenError.systemError(call: "lcr_worker_start", errno: EINVAL)) { try rt.setMethod(p) }
        #expect(rt.methodName == "tent")
        #expect(rt.running?.learner == nil)
        let frames = S.frames(8, count: 784, seed: 1)
        for f in frames { _ = try RuntimeTests.step(rt, f) }
        #expect(rt.frames?.adaptationCount == 2)
    }

    @Test("the control endpoint's status carries the learner's figures")
    func statusOverTheSocket() throws {
        let path = S.socketPath()
        let rt = try Runtime(budgetBytes: 48 << 20, configuration: RuntimeConfiguration(socketPath: path))
        try rt.loadModel(path: S.model())
        try rt.setMethod(Self.plan(.tent))
        try Self.stepUntilPublished(rt, versions: 2, frames: S.frames(16, count: 784, seed: 12))
        let figures = rt.methodFigures()
        let r = try S.call(path, .status)
        let f = try #require(r.state?.figures)
        #expect(f.learnerRunning)
        #expect(f.updates == figures.updates && f.version == figures.version && f.droppedFrames == figures.droppedFrames)
        #expect(f.updateP50Nanoseconds == figures.updateP50Nanoseconds && f.updateP50Nanoseconds > 0)
    }

    @Test("source with learner settings runs no thread (it learns nothing)")
    func sourceRunsNoThread() throws {
        let rt = try RuntimeTests.loaded(Self.plan(.source))
        #expect(rt.running?.learner == nil)
        #expect(!rt.methodFigures().learnerRunning)
    }
}
