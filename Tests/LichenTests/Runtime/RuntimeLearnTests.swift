import CRuntime
import Foundation
import Lichen
import Testing

/// Online supervised learning in the runtime (`Runtime.learn`, the plan's `learning`): the same
/// decisions, η and weights as a `HomeostaticLearner` built by hand over the same file; steps
/// after learning predict with the learned weights through the fused path; reset; bad input;
/// no allocation; and a method round trip that must not reuse the previous method's gradients.
@Suite("Runtime online learning")
struct RuntimeLearnTests {
    typealias S = RuntimeTestSupport

    static func plan(_ policy: LearningRatePolicy, rate: Double = 1e-2) -> AdaptationPlan {
        var p = AdaptationPlan()
        p.learning = HomeostasisConfiguration(policy: policy, initialLearningRate: rate, step: rate / 10, effects: [], seed: 4)
        return p
    }

    static func runtime(_ arch: String, _ type: String, _ plan: AdaptationPlan) throws -> Runtime {
        let rt = try Runtime(budgetBytes: 64 << 20)
        try rt.loadModel(path: S.model(arch, type))
        try rt.setMethod(plan)
        return rt
    }

    static func learn(_ rt: Runtime, _ frame: [Float], _ label: Int) throws -> Int {
        try frame.withUnsafeBufferPointer { try rt.learn(frame: $0, label: label) }
    }

    static func values(_ store: ParameterStore) throws -> [[Float]] {
        try (0..<store.count).compactMap { i in store[i].value.type == .f32 ? try store[i].value.toArray() : nil }
    }

    static func labels(_ n: Int, seed: UInt64) -> [Int] {
        var r = SplitMix64Random(seed: seed)
        return (0..<n).map { _ in Int(r.next() % 10) }
    }

    @Test("the runtime's learning equals a HomeostaticLearner over the same file: predictions, η, decisions, weights",
          arguments: [("mlp", "f32"), ("cnn", "f32"), ("cnn", "q8_0")], [LearningRatePolicy.homeostatic, .random, .constant])
    func matchesLearner(model: (String, String), policy: LearningRatePolicy) throws {
        let plan = Self.plan(policy)
        let rt = try Self.runtime(model.0, model.1, plan)
        // The reference: the file's parameters, every f32 one trainable, a batch-1 training graph.
        let arena = try Arena(byteCount: 64 << 20)
        let file = try GGUFFile(path: S.model(model.0, model.1))
        let spec = try ModelFile.readSpec(file)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: true)
        let graph = try Graph(spec: spec, store: store, batchSize: 1, arena: arena, options: GraphOptions(training: true))
        var configuration = try #require(plan.learning)
        configuration.effects = HomeostasisConfiguration.paperEffects(classCount: 10)
        let reference = try HomeostaticLearner(graph: graph, configuration: configuration, arena: arena)
        let frames = S.frames(120, count: 784, seed: 11)
        let labels = Self.labels(120, seed: 12)
        let input = try arena.persistentTensor(.f32, try Shape(dimensions: [784]))
        for i in 0..<120 {
            try input.copy(from: frames[i])
            let expected = try reference.learn(frame: input, label: labels[i])
            #expect(try Self.learn(rt, frames[i], labels[i]) == expected, "frame \(i)")
        }
        let learning = try #require(rt.running?.learning)
        #expect(learning.learner.learningRate == reference.learningRate)
        #expect(learning.learner.decisionCount == reference.decisionCount && learning.learner.takenCount == reference.takenCount)
        #expect(learning.learner.updateCount == 12 && reference.updateCount == 12)
        if policy != .constant { #expect(reference.decisionCount > 0) }
        #expect(try Self.values(try #require(rt.store)) == Self.values(store), "the runtime's weights are the reference's, bit for bit")
        let f = rt.methodFigures()
        #expect(f.learnSamples == 120 && f.learnUpdates == 12 && f.learningRate == reference.learningRate)
        #expect(f.learnDecisions == UInt64(reference.decisionCount) && f.learnTaken == UInt64(reference.takenCount))
        withExtendedLifetime(file) {}
    }

    @Test("steps after learning predict with the learned weights (the fused models refolded); reset gives the model's logits back",
          arguments: [("mlp", "f32"), ("cnn", "f32"), ("cnn", "q8_0")])
    func stepsSeeLearnedWeights(model: (String, String)) throws {
        let rt = try Self.runtime(model.0, model.1, Self.plan(.constant, rate: 0.01))
        let probe = S.frames(4, count: 784, seed: 21)
        let before = try probe.map { try RuntimeTests.step(rt, $0).1 }
        let frames = S.frames(60, count: 784, seed: 22)
        let labels = Self.labels(60, seed: 23)
        for i in 0..<60 { _ = try Self.learn(rt, frames[i], labels[i]) }
        // The reference: an inference graph over the runtime's own (learned) store.
        let arena = try Arena(byteCount: 32 << 20)
        let spec = try #require(rt.spec)
        let graph = try Graph(spec: spec, store: try #require(rt.store), batchSize: 1, arena: arena, options: GraphOptions())
        let input = try arena.persistentTensor(.f32, try Shape(1, 1, 28, 28))
        var moved = false
        for (j, frame) in probe.enumerated() {
            let (_, logits) = try RuntimeTests.step(rt, frame)
            try input.copy(from: frame)
            let expected = try graph.forward(input: input.reshaped(try Shape(dimensions: [1] + spec.inputShape.dimensions))).toArray()
            let range = (expected.max() ?? 0) - (expected.min() ?? 0)
            let tolerance = model.1 == "f32" ? 1e-4 * range : 2e-2 * range
            for c in 0..<10 { #expect(abs(logits[c] - expected[c]) <= tolerance, "probe \(j) class \(c): \(logits[c]) vs \(expected[c])") }
            if logits != before[j] { moved = true }
        }
        #expect(moved, "60 frames at rate 0.01 changed no logit")
        #expect(rt.frames?.fusedPredictionCount ?? 0 >= 4, "the probes went through the fused path")
        try rt.reset()
        for (j, frame) in probe.enumerated() { #expect(try RuntimeTests.step(rt, frame).1 == before[j], "probe \(j) after reset") }
        let f = rt.methodFigures()
        #expect(f.learnSamples == 0 && f.learningRate == 0.01)
        #expect(rt.running?.learning?.learner.samplesInMinibatch == 0)
    }

    @Test("bad input and calls in the wrong order are refused by name and change nothing")
    func badInput() throws {
        let rt = try Self.runtime("mlp", "f32", AdaptationPlan())
        let frame = S.frames(1, count: 784, seed: 31)[0]
        #expect(throws: LichenError.invalidArgument(name: "learning", value: 0,
                                                    reason: "the method was set without online learning (choose a learning-rate policy)")) {
            _ = try Self.learn(rt, frame, 3)
        }
        var tent = Self.plan(.homeostatic)
        tent.method = .tent
        #expect(throws: LichenError.invalidArgument(name: "learning", value: 3,
                                                    reason: "online learning trains the model's own parameters, which the other methods adapt too: run it with the source method")) {
            try rt.setMethod(tent)
        }
        var wrongMap = Self.plan(.homeostatic)
        wrongMap.learning?.effects = [.excitatory, .inhibitory]
        #expect(throws: LichenError.shapeMismatch(operand: "effects", dimension: 0, expected: 10, got: 2)) { try rt.setMethod(wrongMap) }
        #expect(rt.running?.learning == nil, "a refused plan changed the method")
        try rt.setMethod(Self.plan(.homeostatic))
        for i in 0..<25 { _ = try Self.learn(rt, S.frames(1, count: 784, seed: UInt64(40 + i))[0], i % 10) }
        let weights = try Self.values(try #require(rt.store))
        let figures = rt.methodFigures()
        let inMinibatch = rt.running?.learning?.learner.samplesInMinibatch
        #expect(throws: LichenError.invalidArgument(name: "label", value: 10, reason: "must be a class index in 0..<classCount")) {
            _ = try Self.learn(rt, frame, 10)
        }
        #expect(throws: LichenError.invalidArgument(name: "label", value: -1, reason: "must be a class index in 0..<classCount")) {
            _ = try Self.learn(rt, frame, -1)
        }
        var poisoned = frame
        poisoned[300] = .nan
        #expect(throws: LichenError.nonFiniteValue(operand: "frames", index: 300)) { _ = try Self.learn(rt, poisoned, 1) }
        poisoned[300] = .infinity
        #expect(throws: LichenError.nonFiniteValue(operand: "frames", index: 300)) { _ = try Self.learn(rt, poisoned, 1) }
        #expect(throws: LichenError.shapeMismatch(operand: "frame", dimension: 0, expected: 784, got: 783)) {
            _ = try Self.learn(rt, Array(frame.dropLast()), 1)
        }
        #expect(try Self.values(try #require(rt.store)) == weights)
        #expect(rt.methodFigures() == figures)
        #expect(rt.running?.learning?.learner.samplesInMinibatch == inMinibatch)
        // Still learning after all that.
        _ = try Self.learn(rt, frame, 2)
        #expect(rt.methodFigures().learnSamples == figures.learnSamples + 1)
    }

    @Test("a learning step, and the step after an update (the refold), allocate nothing")
    func allocationFree() throws {
        let rt = try Self.runtime("cnn", "f32", Self.plan(.homeostatic))
        let frames = S.frames(40, count: 784, seed: 51)
        let labels = Self.labels(40, seed: 52)
        var logits = [Float](repeating: 0, count: 10)
        func run(_ i: Int) throws {
            _ = try Self.learn(rt, frames[i], labels[i])
            _ = try frames[i].withUnsafeBufferPointer { f in try logits.withUnsafeMutableBufferPointer { try rt.step(frame: f, logits: $0) } }
        }
        for i in 0..<30 { try run(i) }
        let used = rt.arena.stats
        let decisions = rt.methodFigures().learnDecisions, updates = rt.methodFigures().learnUpdates
        var a0: UInt64 = 0, d0: UInt64 = 0, a1: UInt64 = 0, d1: UInt64 = 0
        precondition(lcr_thread_allocation_totals(&a0, &d0) == 0)
        for i in 30..<40 { try run(i) }
        precondition(lcr_thread_allocation_totals(&a1, &d1) == 0)
        #expect(a1 &- a0 == 0 && d1 &- d0 == 0, "allocated \(a1 &- a0), freed \(d1 &- d0) bytes")
        #expect(rt.arena.stats == used)
        #expect(rt.methodFigures().learnUpdates > updates && rt.methodFigures().learnDecisions > decisions,
                "the counted block had no update or no decision")
    }

    @Test("Tent, then source, then Tent again predicts as a fresh Tent (gradients are not reused from freed memory)")
    func methodRoundTrip() throws {
        let tent = AdaptationPlan(.tent, window: 8, every: 8)
        let frames = S.frames(24, count: 784, seed: 61)
        let fresh = try Self.runtime("cnn", "q8_0", tent)
        let expected = try frames.map { try RuntimeTests.step(fresh, $0).1 }
        let rt = try Self.runtime("cnn", "q8_0", tent)
        for f in frames.prefix(16) { _ = try RuntimeTests.step(rt, f) }
        try rt.setMethod(Self.plan(.homeostatic))
        for (i, f) in frames.prefix(12).enumerated() { _ = try Self.learn(rt, f, i % 10) }
        try rt.setMethod(tent)
        let store = try #require(rt.store)
        for i in 0..<store.count where !store[i].trainable { #expect(store[i].gradient == nil, "\(store[i].name) kept a gradient") }
        let got = try frames.map { try RuntimeTests.step(rt, $0).1 }
        #expect(got == expected)
    }

    @Test("what online learning learned survives the runtime: the state file holds its weights and η, the next runtime resumes, another policy is refused")
    func stateFile() throws {
        let dir = RuntimeStateTests.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/learn.lcst"
        func make() throws -> Runtime {
            let rt = try Runtime(budgetBytes: 64 << 20, configuration: RuntimeConfiguration(statePath: path, stateEveryUpdates: 2))
            try rt.loadModel(path: S.model("cnn", "q8_0"))
            return rt
        }
        let plan = Self.plan(.homeostatic)
        let frames = S.frames(64, count: 784, seed: 71)
        let labels = Self.labels(64, seed: 72)
        let probe = S.frames(3, count: 784, seed: 73)
        var weights: [[Float]] = [], rate = 0.0, logits: [[Float]] = []
        do {
            let rt = try make()
            try rt.setMethod(plan)
            for i in 0..<64 { _ = try Self.learn(rt, frames[i], labels[i]) }
            #expect(rt.methodFigures().stateSaves >= 3 && rt.methodFigures().stateSaveFailures == 0)
            weights = try Self.values(try #require(rt.store))
            rate = rt.methodFigures().learningRate
            logits = try probe.map { try RuntimeTests.step(rt, $0).1 }
            // The runtime goes: its last save (at teardown) holds everything it learned.
        }
        let rt = try make()
        try rt.setMethod(plan)
        #expect(rt.methodFigures().stateRestore == 1, "\(String(describing: rt.lastError))")
        #expect(try Self.values(try #require(rt.store)) == weights)
        #expect(rt.methodFigures().learningRate == rate && rt.methodFigures().learnSamples == 64)
        #expect(try probe.map { try RuntimeTests.step(rt, $0).1 } == logits, "the resumed runtime predicts as the one that learned")
        // Another policy is another plan: refused, left in place, the model as loaded.
        let other = try make()
        try other.setMethod(Self.plan(.constant))
        #expect(other.methodFigures().stateRestore == 2)
        #expect(other.methodFigures().learnSamples == 0)
        #expect(FileManager.default.fileExists(atPath: path))
    }
}
