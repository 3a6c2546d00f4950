import CRuntime
import Lichen

// The C ABI (CRuntime/include/lichen.h), exported from Swift with @_cdecl. Embedded-clean like
// the core: the aarch64 port compiles this file into liblichen-abi.a.
//
// A `lichen_runtime *` is an unmanaged, retained `Runtime`: create passes one reference to the
// caller, destroy takes it back. Errors from the core are recorded on the runtime
// (`Runtime.lastError`) and mapped to a status by `status(of:)`.

/// The status of a core error (lichen.h's lichen_status values).
func status(of error: LichenError) -> lichen_status {
    switch error {
    case .budgetExceeded: return LICHEN_STATUS_BUDGET_EXCEEDED
    case .shapeMismatch: return LICHEN_STATUS_SHAPE_MISMATCH
    case .bufferTooSmall: return LICHEN_STATUS_BUFFER_TOO_SMALL
    case .misaligned, .outOfBounds, .invalidArgument, .duplicateName: return LICHEN_STATUS_INVALID_ARGUMENT
    case .unsupportedElementType, .unsupportedTensorType: return LICHEN_STATUS_UNSUPPORTED
    case .systemError: return LICHEN_STATUS_SYSTEM_ERROR
    case .malformedFile, .unsupportedVersion, .corruptFile, .valueTypeMismatch: return LICHEN_STATUS_MALFORMED
    case .notFound: return LICHEN_STATUS_NOT_FOUND
    case .invalidModel, .parameterShapeMismatch: return LICHEN_STATUS_MODEL_MISMATCH
    case .nonFiniteValue: return LICHEN_STATUS_NON_FINITE
    case .fileError: return LICHEN_STATUS_FILE_ERROR
    case .outOfRange: return LICHEN_STATUS_INVALID_ARGUMENT; case .fileRefused: return LICHEN_STATUS_FILE_ERROR; case .nonFiniteTensor: return LICHEN_STATUS_NON_FINITE
    }
}

@inline(__always)
func runtime(_ handle: OpaquePointer?) -> Runtime? {
    guard let handle else { return nil }
    // safe: the handle came from lichen_runtime_create and is alive until lichen_runtime_destroy.
    return Unmanaged<Runtime>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
}

/// A NUL-terminated C string as a String (nil for NULL).
func string(_ p: UnsafePointer<CChar>?) -> String? {
    guard let p else { return nil }
    var n = 0
    while p[n] != 0 { n += 1 }
    return p.withMemoryRebound(to: UInt8.self, capacity: n) { String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self) }
}

/// Runs `body` on the runtime, mapping what it throws to a status (recorded as the last error).
@inline(__always)
func call(_ handle: OpaquePointer?, _ body: (Runtime) throws(LichenError) -> Void) -> lichen_status {
    guard let rt = runtime(handle) else { return LICHEN_STATUS_INVALID_ARGUMENT }
    do {
        try body(rt)
        return LICHEN_STATUS_OK
    } catch {
        rt.recordError(error)
        return status(of: error)
    }
}

func argument(_ name: StaticString, _ reason: StaticString) -> LichenError {
    .invalidArgument(name: name, value: 0, reason: reason)
}

@_cdecl("lichen_status_string")
public func lichenStatusString(_ s: lichen_status) -> UnsafePointer<CChar> {
    let text: StaticString
    switch s {
    case LICHEN_STATUS_OK: text = "ok"
    case LICHEN_STATUS_INVALID_ARGUMENT: text = "invalid argument"
    case LICHEN_STATUS_BUDGET_EXCEEDED: text = "budget exceeded"
    case LICHEN_STATUS_SHAPE_MISMATCH: text = "shape mismatch"
    case LICHEN_STATUS_BUFFER_TOO_SMALL: text = "buffer too small"
    case LICHEN_STATUS_NON_FINITE: text = "non-finite value"
    case LICHEN_STATUS_FILE_ERROR: text = "file error"
    case LICHEN_STATUS_MALFORMED: text = "malformed file"
    case LICHEN_STATUS_MODEL_MISMATCH: text = "model mismatch"
    case LICHEN_STATUS_NOT_FOUND: text = "not found"
    case LICHEN_STATUS_SYSTEM_ERROR: text = "system error"
    case LICHEN_STATUS_UNSUPPORTED: text = "unsupported"
    default: text = "unknown status"
    }
    // safe: string literals are NUL-terminated and static.
    return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("lichen_abi_version")
public func lichenABIVersion() -> UInt32 { UInt32(LICHEN_ABI_VERSION) }

// MARK: - Runtime

@_cdecl("lichen_runtime_default_params")
public func lichenRuntimeDefaultParams() -> lichen_runtime_params {
    lichen_runtime_params(budget_bytes: 64 << 20, buffer: nil, socket_path: nil, metrics_window: 1024, max_clients: 4,
                          io_timeout_ms: 2000, state_path: nil, state_every_updates: 16, state_every_ms: 0, state_overwrite: 0)
}

@_cdecl("lichen_runtime_create")
public func lichenRuntimeCreate(_ params: UnsafePointer<lichen_runtime_params>?, _ out: UnsafeMutablePointer<OpaquePointer?>?)
    -> lichen_status
{
    guard let out else { return createFailed(argument("out", "NULL")) }
    out.pointee = nil
    guard let p = params?.pointee else { return createFailed(argument("params", "NULL")) }
    guard p.budget_bytes > 0, p.budget_bytes <= UInt(Int.max) else {
        return createFailed(.invalidArgument(name: "budget_bytes", value: 0, reason: "must be at least a few MiB"))
    }
    let configuration = RuntimeConfiguration(
        socketPath: string(p.socket_path), metricsWindow: Int(p.metrics_window), maximumClients: Int(p.max_clients),
        ioTimeoutMilliseconds: Int(p.io_timeout_ms), statePath: string(p.state_path), stateEveryUpdates: Int(p.state_every_updates),
        stateEverySeconds: Double(p.state_every_ms) / 1000, stateOverwrite: p.state_overwrite != 0)
    do {
        let arena: Arena
        if let buffer = p.buffer {
            arena = try Arena(buffer: buffer, byteCount: Int(p.budget_bytes))
        } else {
            arena = try Arena(byteCount: Int(p.budget_bytes))
        }
        let rt = try Runtime(arena: arena, configuration: configuration)
        out.pointee = OpaquePointer(Unmanaged.passRetained(rt).toOpaque())
        lcr_os_thread_error_set(nil, 0)
        return LICHEN_STATUS_OK
    } catch {
        return createFailed(error)
    }
}

/// Records why lichen_runtime_create failed for lichen_last_error(NULL, ...) on this thread.
func createFailed(_ error: LichenError) -> lichen_status {
    var text = error.description
    text.withUTF8 { lcr_os_thread_error_set(UnsafeRawPointer($0.baseAddress)?.assumingMemoryBound(to: CChar.self), $0.count) }
    return status(of: error)
}

@_cdecl("lichen_runtime_destroy")
public func lichenRuntimeDestroy(_ handle: OpaquePointer?) {
    guard let handle else { return }
    Unmanaged<Runtime>.fromOpaque(UnsafeRawPointer(handle)).release()
}

// MARK: - Model and method

@_cdecl("lichen_model_load")
public func lichenModelLoad(_ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let path = string(path) else { throw argument("path", "NULL") }
        try rt.loadModel(path: path)
    }
}

@_cdecl("lichen_model_info")
public func lichenModelInfo(_ handle: OpaquePointer?, _ frameValues: UnsafeMutablePointer<Int>?, _ classes: UnsafeMutablePointer<Int>?)
    -> lichen_status
{
    call(handle) { rt throws(LichenError) in
        guard rt.isModelLoaded else { throw argument("model", "no model is loaded") }
        frameValues?.pointee = rt.frameElementCount
        classes?.pointee = rt.classCount
    }
}

@_cdecl("lichen_method_default_params")
public func lichenMethodDefaultParams(_ method: lichen_method) -> lichen_method_params {
    lichen_method_params(
        method: method, window: 16, every: 16, learning_rate: 1e-3, full: 0, lora_rank: 0, lora_alpha: 0, lora_targets: nil,
        guard_min_classes: 0, guard_window: 200, reset_every: 0, prediction: LICHEN_PREDICTION_SAVED, source_pack: nil, seed: 1,
        cotta_threshold: Float.nan, cotta_augmentations: 32, rmt_warmup_samples: 2048, rmt_prototype_samples: 0,
        rmt_lambda_source: 1, rmt_lambda_contrast: 1, fused: 1, learner: 0, learner_cpu: -1, learner_nice: 0,
        guard_reset: 0, learn_policy: LICHEN_LEARN_NONE.rawValue, learn_rate: 1e-3, learn_step: 1e-4, learn_minibatch: 10,
        learn_interval: 10, learn_memory: 20, learn_effects: nil, learn_effect_count: 0)
}

/// The method of a lichen_method value.
func adaptationMethod(_ m: lichen_method) throws(LichenError) -> AdaptationMethod {
    switch m {
    case LICHEN_METHOD_SOURCE: return .source
    case LICHEN_METHOD_BN: return .bnAdapt
    case LICHEN_METHOD_TENT: return .tent
    case LICHEN_METHOD_COTTA: return .cotta
    case LICHEN_METHOD_RMT: return .rmt
    default: throw .invalidArgument(name: "method", value: Int(m.rawValue), reason: "not a lichen_method")
    }
}

/// The lichen_method value of a method.
func methodCode(_ m: AdaptationMethod) -> UInt32 {
    switch m {
    case .source: return LICHEN_METHOD_SOURCE.rawValue
    case .bnAdapt: return LICHEN_METHOD_BN.rawValue
    case .tent: return LICHEN_METHOD_TENT.rawValue
    case .cotta: return LICHEN_METHOD_COTTA.rawValue
    case .rmt: return LICHEN_METHOD_RMT.rawValue
    }
}

/// The comma-separated items of `text` (spaces around items dropped, empty items refused).
func commaList(_ text: String) throws(LichenError) -> [String] {
    var items: [String] = []
    for part in text.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
        var bytes = Array(part)
        while let f = bytes.first, f == UInt8(ascii: " ") { bytes.removeFirst() }
        while let l = bytes.last, l == UInt8(ascii: " ") { bytes.removeLast() }
        guard !bytes.isEmpty else { throw .invalidArgument(name: "lora_targets", value: items.count, reason: "an empty item in the list") }
        items.append(String(decoding: bytes, as: UTF8.self))
    }
    return items
}

/// The plan a lichen_method_params describes (every value checked here or by
/// AdaptationPlan.validate before anything changes).
func plan(of p: lichen_method_params) throws(LichenError) -> AdaptationPlan {
    let method = try adaptationMethod(p.method)
    guard p.learning_rate.isFinite && p.learning_rate > 0 && p.learning_rate <= 10 else {
        throw argument("learning_rate", "must be finite and in (0, 10]")
    }
    guard p.window >= 1 && p.window <= UInt32(AdaptationPlan.maximumRows) else {
        throw .invalidArgument(name: "window", value: Int(p.window), reason: "must be in 1...4096")
    }
    guard p.every >= 1 else { throw .invalidArgument(name: "every", value: Int(p.every), reason: "must be at least 1") }
    let prediction: FrameAdapter.Prediction
    switch p.prediction {
    case LICHEN_PREDICTION_SAVED: prediction = .saved
    case LICHEN_PREDICTION_WINDOW: prediction = .window
    default: throw .invalidArgument(name: "prediction", value: Int(p.prediction.rawValue), reason: "not a lichen_prediction")
    }
    let optimizer = AdaptationOptimizer.adam(learningRate: p.learning_rate, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
    var plan = AdaptationPlan(method, mode: p.full != 0 ? .full : .frugal, optimizer: optimizer,
                              framing: .frames(window: Int(p.window), every: Int(p.every), prediction: prediction),
                              seed: p.seed, fusedPrediction: p.fused != 0)
    if p.lora_rank > 0 {
        guard p.lora_rank <= 4096 else { throw .invalidArgument(name: "lora_rank", value: Int(p.lora_rank), reason: "must be in 0...4096") }
        guard p.lora_alpha.isFinite && p.lora_alpha >= 0 else { throw argument("lora_alpha", "must be finite and >= 0") }
        let targets = try string(p.lora_targets).map { s throws(LichenError) in try commaList(s) } ?? ["conv", "linear"]
        plan.lora = AdaptationLoRA(rank: Int(p.lora_rank), alpha: p.lora_alpha == 0 ? nil : p.lora_alpha, targets: targets, seed: p.seed)
    }
    if p.guard_min_classes != 0 || p.reset_every != 0 {
        guard p.guard_min_classes.isFinite && p.guard_min_classes >= 0 else { throw argument("guard_min_classes", "must be finite and >= 0") }
        guard p.guard_reset == 0 || p.guard_reset == 1 else {
            throw .invalidArgument(name: "guard_reset", value: Int(p.guard_reset), reason: "must be 0 (the model) or 1 (the last healthy state)")
        }
        plan.collapseGuard = AdaptationPlan.Guard(minimumEffectiveClasses: Double(p.guard_min_classes), window: Int(p.guard_window),
                                                  resetEvery: Int(p.reset_every), resetTo: p.guard_reset == 1 ? .lastGood : .source)
    }
    plan.sourcePack = string(p.source_pack)
    if p.learner != 0 {
        guard p.learner == 1 else { throw .invalidArgument(name: "learner", value: Int(p.learner), reason: "must be 0 or 1") }
        guard p.learner_cpu >= -1 else { throw .invalidArgument(name: "learner_cpu", value: Int(p.learner_cpu), reason: "must be -1 or a CPU number") }
        plan.learner = BackgroundLearner.Settings(cpu: p.learner_cpu >= 0 ? Int(p.learner_cpu) : nil, nice: Int(p.learner_nice))
    }
    if !p.cotta_threshold.isNaN {
        guard p.cotta_threshold.isFinite else { throw argument("cotta_threshold", "must be finite, or NaN for the source pack's") }
        plan.cottaThreshold = .given(p.cotta_threshold)
    }
    plan.cotta = CoTTA.Configuration(threshold: 0, augmentations: Int(p.cotta_augmentations), optimizer: optimizer, seed: p.seed)
    var rmt = RMT.Configuration(lambdaContrast: p.rmt_lambda_contrast, lambdaSource: p.rmt_lambda_source,
                                warmUpSamples: Int(p.rmt_warmup_samples), optimizer: optimizer, seed: p.seed)
    // 0: every frame of the pack (as many samples as it holds, at least one batch).
    rmt.prototypeSamples = p.rmt_prototype_samples > 0 ? Int(p.rmt_prototype_samples) : 1
    plan.rmt = rmt
    plan.learning = try learning(of: p)
    if p.rmt_prototype_samples == 0, let path = plan.sourcePack, method == .rmt {
        plan.rmt.prototypeSamples = max(1, (try? StreamFile(path: path, mode: .map).frameCount) ?? 1)
    }
    return plan
}

/// Online learning's settings of a lichen_method_params (nil for LICHEN_LEARN_NONE).
func learning(of p: lichen_method_params) throws(LichenError) -> HomeostasisConfiguration? {
    let policy: LearningRatePolicy
    switch p.learn_policy {
    case LICHEN_LEARN_NONE.rawValue: return nil
    case LICHEN_LEARN_CONSTANT.rawValue: policy = .constant
    case LICHEN_LEARN_RANDOM.rawValue: policy = .random
    case LICHEN_LEARN_HOMEOSTATIC.rawValue: policy = .homeostatic
    default: throw .invalidArgument(name: "learn_policy", value: Int(p.learn_policy), reason: "not a lichen_learn_policy")
    }
    guard p.learn_rate.isFinite && p.learn_rate >= 0 && p.learn_rate <= 1e3 else { throw argument("learn_rate", "must be finite and in 0...1e3") }
    guard p.learn_step.isFinite && p.learn_step >= 0 && p.learn_step <= 1e3 else { throw argument("learn_step", "must be finite and in 0...1e3") }
    var c = HomeostasisConfiguration(policy: policy, initialLearningRate: Double(p.learn_rate), step: Double(p.learn_step),
                                     minibatch: Int(p.learn_minibatch), interval: Int(p.learn_interval), memory: Int(p.learn_memory),
                                     seed: p.seed)
    if let effects = p.learn_effects {
        guard p.learn_effect_count >= 1 && p.learn_effect_count <= 1 << 20 else {
            throw .invalidArgument(name: "learn_effect_count", value: Int(p.learn_effect_count), reason: "must be in 1...1048576 with learn_effects")
        }
        var map: [ClassEffect] = []
        for i in 0..<Int(p.learn_effect_count) {
            guard let e = ClassEffect(rawValue: effects[i]) else {
                throw .invalidArgument(name: "learn_effects", value: i, reason: "an effect must be -1, 0 or 1")
            }
            map.append(e)
        }
        c.effects = map
    } else {
        guard p.learn_effect_count == 0 else {
            throw .invalidArgument(name: "learn_effect_count", value: Int(p.learn_effect_count), reason: "learn_effects is NULL")
        }
        c.effects = []  // the paper's map for the model's class count (AdaptationPlan.learning)
    }
    return c
}

@_cdecl("lichen_method_set")
public func lichenMethodSet(_ handle: OpaquePointer?, _ params: UnsafePointer<lichen_method_params>?) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let p = params?.pointee else { throw argument("params", "NULL") }
        try rt.setMethod(try plan(of: p))
    }
}

@_cdecl("lichen_method_setup_ns")
public func lichenMethodSetupNs(_ handle: OpaquePointer?, _ nanoseconds: UnsafeMutablePointer<UInt64>?) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let nanoseconds else { throw argument("nanoseconds", "NULL") }
        guard let running = rt.running else { throw argument("model", "no model is loaded") }
        nanoseconds.pointee = running.setupNanoseconds
    }
}

@_cdecl("lichen_plan_budget")
public func lichenPlanBudget(
    _ modelPath: UnsafePointer<CChar>?, _ params: UnsafePointer<lichen_method_params>?, _ ceiling: Int,
    _ bytes: UnsafeMutablePointer<Int>?
) -> lichen_status {
    guard let path = string(modelPath), let p = params?.pointee, let bytes else { return LICHEN_STATUS_INVALID_ARGUMENT }
    guard ceiling >= 0 else { return LICHEN_STATUS_INVALID_ARGUMENT }
    do {
        bytes.pointee = try Runtime.requiredBudget(modelPath: path, plan: try plan(of: p), ceiling: ceiling == 0 ? 1 << 30 : ceiling)
        return LICHEN_STATUS_OK
    } catch {
        return status(of: error)
    }
}

// MARK: - Step

@_cdecl("lichen_step")
public func lichenStep(
    _ handle: OpaquePointer?, _ frame: UnsafePointer<Float>?, _ frameValues: Int, _ logits: UnsafeMutablePointer<Float>?,
    _ capacity: Int, _ predicted: UnsafeMutablePointer<Int32>?
) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let frame, let logits else { throw argument("frame", "frame and logits must not be NULL") }
        let k = try rt.step(frame: UnsafeBufferPointer(start: frame, count: frameValues),
                            logits: UnsafeMutableBufferPointer(start: logits, count: capacity))
        predicted?.pointee = Int32(k)
    }
}

@_cdecl("lichen_learn")
public func lichenLearn(
    _ handle: OpaquePointer?, _ frame: UnsafePointer<Float>?, _ frameValues: Int, _ label: Int32, _ predicted: UnsafeMutablePointer<Int32>?
) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let frame else { throw argument("frame", "NULL") }
        let k = try rt.learn(frame: UnsafeBufferPointer(start: frame, count: frameValues), label: Int(label))
        predicted?.pointee = Int32(k)
    }
}

@_cdecl("lichen_reset")
public func lichenReset(_ handle: OpaquePointer?) -> lichen_status {
    call(handle) { rt throws(LichenError) in try rt.reset() }
}

// MARK: - Adapters

@_cdecl("lichen_adapter_load")
public func lichenAdapterLoad(_ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ scale: Float) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let path = string(path) else { throw argument("path", "NULL") }
        _ = try rt.loadAdapter(path: path, scale: scale)
    }
}

@_cdecl("lichen_adapter_unload")
public func lichenAdapterUnload(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let name = string(name) else { throw argument("name", "NULL") }
        _ = try rt.unloadAdapter(name: name)
    }
}

@_cdecl("lichen_adapter_swap")
public func lichenAdapterSwap(
    _ handle: OpaquePointer?, _ paths: UnsafePointer<UnsafePointer<CChar>?>?, _ scales: UnsafePointer<Float>?, _ count: Int
) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard count >= 0 && count <= ControlProtocol.maximumSwapCount else {
            throw .invalidArgument(name: "count", value: count, reason: "must be in 0...64")
        }
        var list: [ControlAdapterSpec] = []
        if count > 0 {
            guard let paths else { throw argument("paths", "NULL with count > 0") }
            for i in 0..<count {
                guard let path = string(paths[i]) else { throw .invalidArgument(name: "paths", value: i, reason: "NULL path") }
                list.append(ControlAdapterSpec(path: path, scale: scales?[i] ?? 1))
            }
        }
        _ = try rt.swapAdapters(list)
    }
}

@_cdecl("lichen_adapter_scale")
public func lichenAdapterScale(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ scale: Float) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let name = string(name) else { throw argument("name", "NULL") }
        _ = try rt.scaleAdapter(name: name, scale: scale)
    }
}

/// Copies `text`'s UTF-8 bytes into a fixed C char array (a tuple), cut to leave room for the NUL.
func copyText<T>(_ text: String, into field: inout T, capacity: Int) {
    withUnsafeMutableBytes(of: &field) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        var i = 0
        for byte in text.utf8 {
            if i == capacity - 1 { break }
            bytes[i] = byte
            i += 1
        }
        bytes[i] = 0
    }
}

@_cdecl("lichen_adapter_list")
public func lichenAdapterList(
    _ handle: OpaquePointer?, _ adapters: UnsafeMutablePointer<lichen_adapter_info>?, _ capacity: Int,
    _ count: UnsafeMutablePointer<Int>?
) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let count else { throw argument("count", "NULL") }
        guard capacity >= 0, capacity == 0 || adapters != nil else { throw argument("adapters", "NULL with capacity > 0") }
        let list = rt.adapterList().adapters
        count.pointee = list.count
        for (i, a) in list.enumerated() where i < capacity {
            guard let adapters else { break }
            var info = lichen_adapter_info()
            copyText(a.name, into: &info.name, capacity: 64)
            copyText(a.file, into: &info.file, capacity: 256)
            info.rank = UInt32(clamping: a.rank)
            info.scale = a.scale
            info.bytes = UInt64(a.byteCount)
            adapters[i] = info
        }
        guard list.count <= capacity else {
            throw .bufferTooSmall(operand: "adapters", needed: list.count * MemoryLayout<lichen_adapter_info>.stride,
                                  available: capacity * MemoryLayout<lichen_adapter_info>.stride)
        }
    }
}

// MARK: - Checkpoints

@_cdecl("lichen_checkpoint_size")
public func lichenCheckpointSize(_ handle: OpaquePointer?, _ bytes: UnsafeMutablePointer<Int>?) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let bytes else { throw argument("bytes", "NULL") }
        guard rt.isModelLoaded else { throw argument("model", "no model is loaded") }
        bytes.pointee = rt.checkpointByteCount
    }
}

@_cdecl("lichen_checkpoint_save")
public func lichenCheckpointSave(
    _ handle: OpaquePointer?, _ buffer: UnsafeMutableRawPointer?, _ capacity: Int, _ written: UnsafeMutablePointer<Int>?
) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let buffer else { throw argument("buffer", "NULL") }
        let n = try rt.checkpoint(into: UnsafeMutableRawBufferPointer(start: buffer, count: capacity))
        written?.pointee = n
    }
}

@_cdecl("lichen_checkpoint_restore")
public func lichenCheckpointRestore(_ handle: OpaquePointer?, _ buffer: UnsafeRawPointer?, _ length: Int) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let buffer else { throw argument("buffer", "NULL") }
        try rt.restore(from: UnsafeRawBufferPointer(start: buffer, count: length))
    }
}

// MARK: - Metrics and diagnostics

@_cdecl("lichen_metrics_get")
public func lichenMetricsGet(_ handle: OpaquePointer?, _ metrics: UnsafeMutablePointer<lichen_metrics>?) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let metrics else { throw argument("metrics", "NULL") }
        let s = rt.status()
        let f = rt.methodFigures()
        metrics.pointee = lichen_metrics(
            steps: s.steps, resets: s.resets, swaps: s.swaps, step_p50_ns: s.stepP50Nanoseconds,
            step_p99_ns: s.stepP99Nanoseconds, step_max_ns: s.stepMaxNanoseconds, budget_bytes: UInt64(s.budgetBytes),
            used_bytes: UInt64(s.usedBytes), heap_in_use_bytes: UInt64(s.heapInUseBytes), active_adapters: UInt32(s.activeAdapters),
            model_loaded: s.modelLoaded ? 1 : 0, adapter_generation: s.generation, updates: f.updates, guard_resets: f.guardResets,
            rejected_frames: f.rejectedFrames, last_loss: f.lastLoss, effective_classes: Float(f.effectiveClasses),
            method: methodCode(rt.method), learner: f.learnerRunning ? 1 : 0, dropped_frames: f.droppedFrames,
            learner_lag: f.learnerLag, max_learner_lag: f.maximumLearnerLag, version: f.version,
            torn_predictions: f.tornPredictions, update_p50_ns: f.updateP50Nanoseconds, update_p99_ns: f.updateP99Nanoseconds,
            update_max_ns: f.updateMaxNanoseconds, state_restore: UInt32(f.stateRestore), state_saves: f.stateSaves,
            state_save_failures: f.stateSaveFailures, last_save_unix_ns: f.lastSaveUnixNanoseconds, last_save_ns: f.lastSaveNanoseconds,
            last_good_resets: f.lastGoodResets, learn_samples: f.learnSamples, learn_updates: f.learnUpdates,
            learn_decisions: f.learnDecisions, learn_taken: f.learnTaken, learning_rate: f.learningRate)
    }
}

@_cdecl("lichen_last_error")
public func lichenLastError(
    _ handle: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int, _ length: UnsafeMutablePointer<Int>?
) -> lichen_status {
    guard let rt = runtime(handle) else {
        // No runtime: the calling thread's last lichen_runtime_create failure.
        let n = lcr_os_thread_error_get(buffer, buffer == nil ? 0 : capacity)
        length?.pointee = n
        return LICHEN_STATUS_OK
    }
    let text = rt.lastError?.description ?? ""
    let utf8 = text.utf8
    length?.pointee = utf8.count
    guard let buffer, capacity > 0 else { return capacity == 0 ? LICHEN_STATUS_OK : LICHEN_STATUS_INVALID_ARGUMENT }
    var i = 0
    for byte in utf8 {
        if i == capacity - 1 { break }
        buffer[i] = CChar(bitPattern: byte)
        i += 1
    }
    buffer[i] = 0
    return LICHEN_STATUS_OK
}
