import CRuntime
import Foundation
import Lichen
import Testing

/// The runtime's state file: saved while stepping (on the learner thread in learner mode),
/// restored by the next runtime's method change, a refused file left in place unless the
/// caller says overwrite.
@Suite("Runtime state file")
struct RuntimeStateTests {
    typealias S = RuntimeTestSupport

    static func runtime(_ path: String, every: Int = 1, overwrite: Bool = false) throws -> Runtime {
        let rt = try Runtime(budgetBytes: 48 << 20, configuration: RuntimeConfiguration(statePath: path, stateEveryUpdates: every,
                                                                                        stateOverwrite: overwrite))
        try rt.loadModel(path: S.model())
        return rt
    }

    static func trained(_ rt: Runtime) throws -> [[Float]] {
        let session = try #require(rt.session)
        return try session.trainedParameters.map { try session.store[$0].value.toArray() }
    }

    static func directory() -> String {
        let d = NSTemporaryDirectory() + "lichen-state-rt-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test("saved while stepping (in the step, and from the learner thread), and the next runtime resumes from it", arguments: [false, true])
    func saveAndResume(learner: Bool) throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/tent.lcst"
        var plan = AdaptationPlan(.tent, window: 8, every: 8)
        if learner { plan.learner = BackgroundLearner.Settings() }
        let frames = S.frames(16, count: 784, seed: 8)
        var saved: [[Float]] = []
        do {
            let rt = try Self.runtime(path)
            try rt.setMethod(plan)
            #expect(rt.methodFigures().stateRestore == 0, "no file yet")
            var i = 0
            while rt.methodFigures().updates < 4 && i < 20_000 {
                _ = try RuntimeTests.step(rt, frames[i % frames.count])
                i += 1
            }
            rt.running?.stopLearner()
            #expect(rt.methodFigures().stateSaves >= 1)
            #expect(rt.methodFigures().stateSaveFailures == 0)
            saved = try Self.trained(rt)
            // The runtime goes: its last save holds what it learned.
        }
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        let rt = try Self.runtime(path)
        try rt.setMethod(plan)
        #expect(rt.methodFigures().stateRestore == 1)
        #expect(try Self.trained(rt) == saved)
    }

    @Test("a file for another plan is refused with the reason, left in place and not overwritten; with overwrite it is replaced")
    func refusedFileStays() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.lcst"
        let frames = S.frames(16, count: 784, seed: 2)
        do {
            let rt = try Self.runtime(path)
            try rt.setMethod(AdaptationPlan(.tent, window: 8, every: 8))
            for i in 0..<40 { _ = try RuntimeTests.step(rt, frames[i % 16]) }
        }
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        // Another window: another plan.
        let other = AdaptationPlan(.tent, window: 4, every: 4)
        do {
            let rt = try Self.runtime(path)
            try rt.setMethod(other)
            #expect(rt.methodFigures().stateRestore == 2)
            guard case .invalidModel(let key, _, _)? = rt.lastError else { Issue.record("last error: \(String(describing: rt.lastError))"); return }
            #expect(key == "state.plan")
            for i in 0..<40 { _ = try RuntimeTests.step(rt, frames[i % 16]) }
            #expect(rt.methodFigures().stateSaves == 0)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == original, "a refused file is never overwritten")
        do {
            let rt = try Self.runtime(path, overwrite: true)
            try rt.setMethod(other)
            #expect(rt.methodFigures().stateRestore == 2)
            for i in 0..<40 { _ = try RuntimeTests.step(rt, frames[i % 16]) }
            #expect(rt.methodFigures().stateSaves >= 1)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) != original)
        let rt = try Self.runtime(path)
        try rt.setMethod(other)
        #expect(rt.methodFigures().stateRestore == 1)
    }

    @Test("a state path in a folder that does not exist: saves fail and are counted, the loop carries on")
    func failingSaves() throws {
        let rt = try Self.runtime("/nonexistent-lichen-folder/state.lcst")
        try rt.setMethod(AdaptationPlan(.tent, window: 4, every: 4))
        let frames = S.frames(8, count: 784, seed: 5)
        for i in 0..<24 { _ = try RuntimeTests.step(rt, frames[i % 8]) }
        let f = rt.methodFigures()
        #expect(f.stateSaves == 0 && f.stateSaveFailures >= 1)
        #expect(f.updates == 6)
    }
}
