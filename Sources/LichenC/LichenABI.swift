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
                          io_timeout_ms: 2000)
}

@_cdecl("lichen_runtime_create")
public func lichenRuntimeCreate(_ params: UnsafePointer<lichen_runtime_params>?, _ out: UnsafeMutablePointer<OpaquePointer?>?)
    -> lichen_status
{
    guard let out else { return LICHEN_STATUS_INVALID_ARGUMENT }
    out.pointee = nil
    guard let p = params?.pointee, p.budget_bytes > 0, p.budget_bytes <= UInt(Int.max) else { return LICHEN_STATUS_INVALID_ARGUMENT }
    let configuration = RuntimeConfiguration(
        socketPath: string(p.socket_path), metricsWindow: Int(p.metrics_window), maximumClients: Int(p.max_clients),
        ioTimeoutMilliseconds: Int(p.io_timeout_ms))
    do {
        let arena: Arena
        if let buffer = p.buffer {
            arena = try Arena(buffer: buffer, byteCount: Int(p.budget_bytes))
        } else {
            arena = try Arena(byteCount: Int(p.budget_bytes))
        }
        let rt = try Runtime(arena: arena, configuration: configuration)
        out.pointee = OpaquePointer(Unmanaged.passRetained(rt).toOpaque())
        return LICHEN_STATUS_OK
    } catch {
        return status(of: error)
    }
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
    lichen_method_params(method: method, window: 16, every: 16, learning_rate: 1e-3, full: 0)
}

@_cdecl("lichen_method_set")
public func lichenMethodSet(_ handle: OpaquePointer?, _ params: UnsafePointer<lichen_method_params>?) -> lichen_status {
    call(handle) { rt throws(LichenError) in
        guard let p = params?.pointee else { throw argument("params", "NULL") }
        let method: AdaptationMethod
        switch p.method {
        case LICHEN_METHOD_SOURCE: method = .source
        case LICHEN_METHOD_BN: method = .bnAdapt
        case LICHEN_METHOD_TENT: method = .tent
        default: throw .invalidArgument(name: "method", value: Int(p.method.rawValue), reason: "not a lichen_method")
        }
        guard p.learning_rate.isFinite && p.learning_rate > 0 else { throw argument("learning_rate", "must be finite and > 0") }
        try rt.setMethod(RuntimeMethod(
            method, mode: p.full != 0 ? .full : .frugal,
            optimizer: .adam(learningRate: p.learning_rate, beta1: 0.9, beta2: 0.999, epsilon: 1e-8),
            window: Int(p.window), every: Int(p.every)))
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
        metrics.pointee = lichen_metrics(
            steps: s.steps, resets: s.resets, swaps: s.swaps, step_p50_ns: s.stepP50Nanoseconds,
            step_p99_ns: s.stepP99Nanoseconds, step_max_ns: s.stepMaxNanoseconds, budget_bytes: UInt64(s.budgetBytes),
            used_bytes: UInt64(s.usedBytes), heap_in_use_bytes: UInt64(s.heapInUseBytes), active_adapters: UInt32(s.activeAdapters),
            model_loaded: s.modelLoaded ? 1 : 0, adapter_generation: s.generation)
    }
}

@_cdecl("lichen_last_error")
public func lichenLastError(
    _ handle: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int, _ length: UnsafeMutablePointer<Int>?
) -> lichen_status {
    guard let rt = runtime(handle) else { return LICHEN_STATUS_INVALID_ARGUMENT }
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
