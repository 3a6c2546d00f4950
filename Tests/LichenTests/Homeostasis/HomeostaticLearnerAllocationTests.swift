import CRuntime
import Lichen
import Testing

/// A homeostatic step allocates nothing: jemalloc's per-thread byte totals do not move while the
/// paper's MLP learns a block of samples that includes LRH decisions (two trial updates scored
/// on the memory), LRR's coin and minibatch updates, one sample at a time and in batches; the
/// arena's accounting does not move either.
@Suite("Homeostatic learner allocation")
struct HomeostaticLearnerAllocationTests {
    static func totals() -> (allocated: UInt64, deallocated: UInt64) {
        var a: UInt64 = 0, d: UInt64 = 0
        let rc = lcr_thread_allocation_totals(&a, &d)
        precondition(rc == 0, "mallctl thread.allocated failed: \(rc)")
        return (a, d)
    }

    @Test("a steady-state homeostatic step allocates nothing and stays inside the budget",
          arguments: [LearningRatePolicy.homeostatic, .random, .constant], [1, 10])
    func steadyState(policy: LearningRatePolicy, rows: Int) throws {
        let arena = try Arena(byteCount: 32 << 20)
        let spec = ModelSpec.homeostaticMLP
        let store = ParameterStore(arena: arena)
        try ParameterInitializer.initialize(spec, into: store, seed: 5)
        let graph = try Graph(spec: spec, store: store, batchSize: 10, arena: arena, options: GraphOptions(training: true))
        let learner = try HomeostaticLearner(graph: graph, configuration: HomeostasisConfiguration(policy: policy), arena: arena)
        let frames = try arena.persistentTensor(.f32, try Shape(rows, 784))
        let labels = try arena.persistentTensor(.f32, try Shape(rows))
        let single = try arena.persistentTensor(.f32, try Shape(784))
        var random = SplitMix64Random(seed: 3)
        func fill() throws {
            let x = try frames.f32Elements("frames"), y = try labels.f32Elements("labels"), s = try single.f32Elements("single")
            for i in 0..<x.count { x[i] = Float(random.next() >> 40) / Float(1 << 24) }
            for i in 0..<s.count { s[i] = Float(random.next() >> 40) / Float(1 << 24) }
            for i in 0..<y.count { y[i] = Float(random.next() % 10) }
        }
        // Warm-up past the memory, through decisions and updates.
        for _ in 0..<(60 / rows) {
            try fill()
            try learner.learn(frames: frames, labels: labels)
        }
        let statsBefore = arena.stats
        let decisionsBefore = learner.decisionCount, updatesBefore = learner.updateCount
        try fill()
        let before = Self.totals()
        for _ in 0..<(40 / rows) {
            try learner.learn(frames: frames, labels: labels)
            _ = try learner.learn(frame: single, label: 7)
        }
        try learner.startEpoch()
        let after = Self.totals()
        #expect(after.allocated &- before.allocated == 0, "allocated \(after.allocated &- before.allocated) bytes")
        #expect(after.deallocated &- before.deallocated == 0, "deallocated \(after.deallocated &- before.deallocated) bytes")
        #expect(arena.stats == statsBefore, "the arena's accounting moved")
        // The block covered what it claims to.
        #expect(learner.updateCount > updatesBefore, "no minibatch update in the counted block")
        if policy != .constant { #expect(learner.decisionCount > decisionsBefore, "no decision in the counted block") }
    }
}
