import CRuntime
import Lichen

// The cue learners of lichen.h ("Cue learners"). A `lichen_cue_learner *` is an unmanaged,
// retained `CueHandle`: the learner and the runtime whose budget holds it (errors are recorded
// on that runtime).

final class CueHandle {
    let runtime: Runtime
    let learner: CueLearner
    init(runtime: Runtime, learner: CueLearner) {
        self.runtime = runtime
        self.learner = learner
    }
}

@inline(__always)
func cueHandle(_ handle: OpaquePointer?) -> CueHandle? {
    guard let handle else { return nil }
    // safe: the handle came from lichen_cue_create and is alive until lichen_cue_destroy.
    return Unmanaged<CueHandle>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
}

/// Runs `body` on the learner, mapping what it throws to a status (recorded on its runtime).
@inline(__always)
func cueCall(_ handle: OpaquePointer?, _ body: (CueHandle) throws(LichenError) -> Void) -> lichen_status {
    guard let h = cueHandle(handle) else { return LICHEN_STATUS_INVALID_ARGUMENT }
    do {
        try body(h)
        return LICHEN_STATUS_OK
    } catch {
        h.runtime.recordError(error)
        return status(of: error)
    }
}

/// The configuration a lichen_cue_params describes.
func cueConfiguration(_ p: lichen_cue_params) throws(LichenError) -> CueConfiguration {
    guard let policy = DrivePolicy(rawValue: Int32(clamping: p.policy)) else {
        throw .invalidArgument(name: "policy", value: Int(p.policy), reason: "not a lichen_cue_policy")
    }
    guard p.learning <= 1 else { throw .invalidArgument(name: "learning", value: Int(p.learning), reason: "must be 0 or 1") }
    let c = CueConfiguration(
        featureCount: Int(p.feature_count), neighbours: Int(p.neighbours), capacity: Int(p.capacity),
        retrainInterval: Int(p.retrain_interval), smoothing: Int(p.smoothing), decisionThreshold: p.decision_threshold,
        dangerThreshold: p.danger_threshold, minimumTruePositiveRate: p.min_true_positive_rate,
        maximumFalsePositiveRate: p.max_false_positive_rate, trustedTimeout: Int(p.trusted_timeout), policy: policy,
        learning: p.learning == 1)
    try c.validate()
    return c
}

@_cdecl("lichen_cue_default_params")
public func lichenCueDefaultParams() -> lichen_cue_params {
    lichen_cue_params(feature_count: 21, neighbours: 5, capacity: 2435, retrain_interval: 200, smoothing: 5, decision_threshold: 14,
                      danger_threshold: 24, min_true_positive_rate: 0.95, max_false_positive_rate: 0.4, trusted_timeout: 10,
                      policy: UInt32(DrivePolicy.gated.rawValue), learning: 1)
}

@_cdecl("lichen_cue_create")
public func lichenCueCreate(_ handle: OpaquePointer?, _ params: UnsafePointer<lichen_cue_params>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> lichen_status {
    guard let out else { return LICHEN_STATUS_INVALID_ARGUMENT }
    out.pointee = nil
    return call(handle) { rt throws(LichenError) in
        guard let p = params?.pointee else { throw argument("params", "NULL") }
        let learner = try CueLearner(configuration: try cueConfiguration(p), arena: rt.arena)
        out.pointee = OpaquePointer(Unmanaged.passRetained(CueHandle(runtime: rt, learner: learner)).toOpaque())
    }
}

@_cdecl("lichen_cue_destroy")
public func lichenCueDestroy(_ handle: OpaquePointer?) {
    guard let handle else { return }
    Unmanaged<CueHandle>.fromOpaque(UnsafeRawPointer(handle)).release()
}

@_cdecl("lichen_cue_tick")
public func lichenCueTick(_ handle: OpaquePointer?, _ features: UnsafePointer<Float>?, _ featureCount: Int, _ target: Float,
                          _ targetValid: Int32, _ out: UnsafeMutablePointer<lichen_cue_output>?) -> lichen_status {
    cueCall(handle) { h throws(LichenError) in
        guard let features else { throw argument("features", "NULL") }
        guard let out else { throw argument("out", "NULL") }
        guard featureCount >= 0 && featureCount <= CueConfiguration.maximumFeatureCount else {
            throw .shapeMismatch(operand: "features", dimension: 0, expected: h.learner.configuration.featureCount, got: featureCount)
        }
        // safe: the caller passes featureCount floats at `features` for the duration of the call;
        // the view only reads them.
        let view = try TensorView(base: UnsafeMutableRawPointer(mutating: features), byteCount: featureCount * 4, type: .f32,
                                  shape: try Shape(featureCount))
        let o = try h.learner.tick(features: view, target: target, trustedValid: targetValid != 0)
        out.pointee = lichen_cue_output(
            driver: UInt32(o.driver.rawValue), estimate: o.estimate, obstacle: o.obstacle ? 1 : 0,
            complementary_estimate: o.complementaryEstimate, confidence: o.confidence, intervention: o.intervention ? 1 : 0,
            learned: o.learned ? 1 : 0, qualified: h.learner.qualified ? 1 : 0, estimate_threshold: h.learner.estimateThreshold)
    }
}

@_cdecl("lichen_cue_set_policy")
public func lichenCueSetPolicy(_ handle: OpaquePointer?, _ policy: UInt32, _ learning: Int32) -> lichen_status {
    cueCall(handle) { h throws(LichenError) in
        guard let p = DrivePolicy(rawValue: Int32(clamping: policy)) else {
            throw .invalidArgument(name: "policy", value: Int(policy), reason: "not a lichen_cue_policy")
        }
        h.learner.setPolicy(p, learning: learning != 0)
    }
}

@_cdecl("lichen_cue_state_size")
public func lichenCueStateSize(_ handle: OpaquePointer?, _ bytes: UnsafeMutablePointer<Int>?) -> lichen_status {
    cueCall(handle) { h throws(LichenError) in
        guard let bytes else { throw argument("bytes", "NULL") }
        bytes.pointee = 4 * h.learner.stateValueCount
    }
}

@_cdecl("lichen_cue_save")
public func lichenCueSave(_ handle: OpaquePointer?, _ buffer: UnsafeMutableRawPointer?, _ capacity: Int,
                          _ written: UnsafeMutablePointer<Int>?) -> lichen_status {
    cueCall(handle) { h throws(LichenError) in
        guard let buffer else { throw argument("buffer", "NULL") }
        let count = h.learner.stateValueCount
        guard capacity >= 4 * count else { throw .bufferTooSmall(operand: "state", needed: 4 * count, available: capacity) }
        // safe: the caller's buffer holds `capacity` bytes; TensorView checks its alignment.
        try h.learner.save(into: try TensorView(base: buffer, byteCount: capacity, type: .f32, shape: try Shape(count)))
        written?.pointee = 4 * count
    }
}

@_cdecl("lichen_cue_restore")
public func lichenCueRestore(_ handle: OpaquePointer?, _ buffer: UnsafeRawPointer?, _ length: Int) -> lichen_status {
    cueCall(handle) { h throws(LichenError) in
        guard let buffer else { throw argument("buffer", "NULL") }
        guard length >= 0 && length % 4 == 0 else {
            throw .shapeMismatch(operand: "state", dimension: 0, expected: h.learner.stateValueCount, got: length / 4)
        }
        // safe: the caller's buffer holds `length` bytes; restore only reads through the view.
        let view = try TensorView(base: UnsafeMutableRawPointer(mutating: buffer), byteCount: length, type: .f32,
                                  shape: try Shape(length / 4))
        try h.learner.restore(from: view)
    }
}
