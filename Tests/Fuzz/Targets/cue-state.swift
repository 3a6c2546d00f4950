// libFuzzer target: a cue learner's saved state restored from untrusted bytes (what
// lichen_cue_restore reads), then ticks over the restored buffer (retrain, gate, drive rule).
//
// Built by ports/host/fuzz into one module with Sources/Lichen. The input fills the state
// block of a small learner (3 features, 8 slots; shorter inputs are zero-padded, so a size
// mismatch is never the only thing tested); every input must restore or be refused with a
// LichenError, and a learner that took a state must keep ticking without a trap or a
// non-finite estimate.

nonisolated(unsafe) private var cueFuzzArena: Arena? = nil
nonisolated(unsafe) private var cueFuzzLearner: CueLearner? = nil
nonisolated(unsafe) private var cueFuzzState: TensorView? = nil
nonisolated(unsafe) private var cueFuzzFeatures: TensorView? = nil

public func lichenFuzzCueState(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    if cueFuzzLearner == nil {
        // A set-up that fails is a broken target, not a pass: it stops the run.
        do throws(LichenError) {
            let arena = try Arena(byteCount: 8 << 20)
            let c = CueConfiguration(featureCount: 3, neighbours: 2, capacity: 8, retrainInterval: 4, smoothing: 2,
                                     decisionThreshold: 10, dangerThreshold: 20, trustedTimeout: 3)
            let learner = try CueLearner(configuration: c, arena: arena)
            cueFuzzState = try arena.persistentTensor(.f32, try Shape(learner.stateValueCount))
            cueFuzzFeatures = try arena.persistentTensor(.f32, try Shape(3))
            cueFuzzArena = arena
            cueFuzzLearner = learner
        } catch {
            fatalError("cue-state target set-up: \(error)")
        }
    }
    guard let learner = cueFuzzLearner, let state = cueFuzzState, let features = cueFuzzFeatures else { return 0 }
    learner.reset()
    do throws(LichenError) {
        let values = try state.f32Elements("state")
        // Value k from input bytes 4k..<4k+4, little-endian, zero past the input's end.
        for k in 0..<values.count {
            var bits: UInt32 = 0
            for b in 0..<4 where 4 * k + b < size { bits |= UInt32(data[4 * k + b]) << (8 * b) }
            values[k] = Float(bitPattern: bits)
        }
        try learner.restore(from: state)
        // Restored: tick with and without the trusted cue, across a retrain.
        let f = try features.f32Elements("features")
        for t in 0..<10 {
            f[0] = Float(t); f[1] = 1; f[2] = -Float(t)
            let out = try learner.tick(features: features, target: Float(t * 3), trustedValid: t % 3 != 0)
            if !out.estimate.isNaN && !out.estimate.isFinite { fatalError("an infinite estimate after restore") }
        }
    } catch {
        _ = error.description  // every error must render
    }
    return 0
}
