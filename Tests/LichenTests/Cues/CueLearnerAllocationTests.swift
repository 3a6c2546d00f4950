import CRuntime
import Lichen
import Testing

/// A cue-learner tick allocates nothing: jemalloc's per-thread byte totals do not move over a
/// block of ticks that includes retrains (ROC sorts, model copy), valid and invalid trusted
/// targets, interventions, every drive policy and both regressors (kNN; the network, whose
/// learned samples are SGD steps); the arena's accounting does not move either.
@Suite("Cue learner allocation")
struct CueLearnerAllocationTests {
    static func totals() -> (allocated: UInt64, deallocated: UInt64) {
        var a: UInt64 = 0, d: UInt64 = 0
        let rc = lcr_thread_allocation_totals(&a, &d)
        precondition(rc == 0, "mallctl thread.allocated failed: \(rc)")
        return (a, d)
    }

    @Test("steady-state ticks, retrains included, allocate nothing",
          arguments: [DrivePolicy.trustedOnly, .gated, .trainingWheels, .complementaryOnly], [false, true])
    func steadyState(policy: DrivePolicy, network: Bool) throws {
        let arena = try Arena(byteCount: 8 << 20)
        let config = CueConfiguration(capacity: 300, retrainInterval: 50, decisionThreshold: 16, dangerThreshold: 32,
                                      trustedTimeout: 3, policy: policy,
                                      regressor: network ? .network(hidden: 16, learningRate: 0.01, seed: 1) : .nearestNeighbours)
        let learner = try CueLearner(configuration: config, arena: arena)
        let features = try arena.persistentTensor(.f32, try Shape(21))
        var random = SplitMix64Random(seed: 9)
        func unit() -> Float { Float(random.next() >> 40) / Float(1 << 24) }
        // One tick: features correlated with the target, the trusted cue valid 9 ticks in 10.
        func step(_ i: Int) throws {
            let target = 40 * unit()
            let x = try features.f32Elements("features")
            for j in 0..<x.count { x[j] = target / 40 + 0.1 * unit() }
            _ = try learner.tick(features: features, target: target, trustedValid: i % 10 != 9)
        }
        for i in 0..<400 { try step(i) }
        let statsBefore = arena.stats
        let retrainsBefore = learner.retrainCount
        let before = Self.totals()
        for i in 0..<200 { try step(i) }
        _ = try learner.predict(features: features)
        learner.retrainNow()
        let after = Self.totals()
        #expect(after.allocated &- before.allocated == 0, "allocated \(after.allocated &- before.allocated) bytes")
        #expect(after.deallocated &- before.deallocated == 0, "deallocated \(after.deallocated &- before.deallocated) bytes")
        #expect(arena.stats == statsBefore, "the arena's accounting moved")
        #expect(learner.retrainCount >= retrainsBefore + 3, "the counted block holds retrains")
    }
}
