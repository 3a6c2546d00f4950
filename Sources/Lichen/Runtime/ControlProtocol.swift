import CRuntime

/// The control endpoint's request/response protocol, version 1 (layout in Runtime/README.md).
///
/// Transport: frames of a u32 little-endian length and a body (CRuntime/include/lcr_control.h).
/// A request body is `u8 version, u8 operation, fields`; a response body is
/// `u8 version, u8 status, string message, payload`. Strings are a u16 little-endian byte count
/// and UTF-8; numbers are little-endian; `f32` is the IEEE bit pattern.
public enum ControlProtocol {
    /// The version byte this build speaks.
    public static let version: UInt8 = 1
    /// The largest request body the runtime's endpoint accepts.
    public static let maximumRequestBytes = 8192
    /// The largest response body the endpoint writes.
    public static let maximumResponseBytes = 32768
    /// The longest string field, in bytes.
    public static let maximumStringBytes = 4096
    /// The most adapters one swap request may name.
    public static let maximumSwapCount = 64

    /// Operation codes (the second byte of a request body). Appended only.
    public enum Operation: UInt8, Sendable, CaseIterable {
        case list = 1
        case load = 2
        case unload = 3
        case swap = 4
        case scale = 5
        case status = 6

        public var name: String {
            switch self {
            case .list: return "list"
            case .load: return "load"
            case .unload: return "unload"
            case .swap: return "swap"
            case .scale: return "scale"
            case .status: return "status"
            }
        }

        public init?(name: String) {
            for op in Operation.allCases where op.name == name {
                self = op
                return
            }
            return nil
        }
    }

    /// Response status codes (the second byte of a response body); the values of
    /// `LCR_CONTROL_STATUS_*` in lcr_control.h. Appended only.
    public enum Status: UInt8, Sendable {
        case ok = 0
        case malformed = 1
        case unsupportedVersion = 2
        case unknownOperation = 3
        case tooLarge = 4
        case busy = 5
        case failed = 6
        case notFound = 7
        case `internal` = 8

        public var name: String {
            switch self {
            case .ok: return "ok"
            case .malformed: return "malformed request"
            case .unsupportedVersion: return "unsupported version"
            case .unknownOperation: return "unknown operation"
            case .tooLarge: return "request too large"
            case .busy: return "busy"
            case .failed: return "failed"
            case .notFound: return "not found"
            case .internal: return "internal error"
            }
        }
    }
}

// MARK: - Requests

/// One adapter named in a swap request.
public struct ControlAdapterSpec: Equatable, Sendable {
    public var path: String
    public var scale: Float

    public init(path: String, scale: Float) {
        self.path = path
        self.scale = scale
    }
}

/// A decoded request.
public enum ControlRequest: Equatable, Sendable {
    case list
    /// Load the adapter file at `path` (on the machine the runtime runs on) and add it to the
    /// active set with `scale`.
    case load(path: String, scale: Float)
    /// Remove the adapter called `name` from the active set.
    case unload(name: String)
    /// Replace the whole active set with these adapters (none: no adapter).
    case swap([ControlAdapterSpec])
    /// Set the scale of the active adapter called `name`.
    case scale(name: String, scale: Float)
    case status

    public var operation: ControlProtocol.Operation {
        switch self {
        case .list: return .list
        case .load: return .load
        case .unload: return .unload
        case .swap: return .swap
        case .scale: return .scale
        case .status: return .status
        }
    }

    /// The request body (version, operation, fields).
    public func encoded() -> [UInt8] {
        var out: [UInt8] = [ControlProtocol.version, operation.rawValue]
        switch self {
        case .list, .status:
            break
        case .load(let path, let scale):
            ControlBytes.appendString(path, to: &out)
            ControlBytes.appendU32(scale.bitPattern, to: &out)
        case .unload(let name):
            ControlBytes.appendString(name, to: &out)
        case .swap(let adapters):
            ControlBytes.appendU16(UInt16(truncatingIfNeeded: adapters.count), to: &out)
            for a in adapters {
                ControlBytes.appendString(a.path, to: &out)
                ControlBytes.appendU32(a.scale.bitPattern, to: &out)
            }
        case .scale(let name, let scale):
            ControlBytes.appendString(name, to: &out)
            ControlBytes.appendU32(scale.bitPattern, to: &out)
        }
        return out
    }

    /// Decodes a request body. Every field is bounds-checked; trailing bytes are an error.
    /// - Returns: the request, or the status and message to answer with.
    public static func decode(_ body: UnsafeRawBufferPointer) -> ControlDecoded {
        var r = ControlReader(body)
        guard let version = r.u8() else { return .refused(.malformed, "empty request body") }
        guard version == ControlProtocol.version else {
            return .refused(.unsupportedVersion, "request version \(version); this runtime speaks version \(ControlProtocol.version)")
        }
        guard let code = r.u8() else { return .refused(.malformed, "request body ends before the operation code") }
        guard let op = ControlProtocol.Operation(rawValue: code) else {
            return .refused(.unknownOperation, "operation code \(code) is not one of 1 (list) ... 6 (status)")
        }
        let request: ControlRequest
        switch op {
        case .list:
            request = .list
        case .status:
            request = .status
        case .load:
            guard let path = r.string(), let scale = r.f32() else { return .refused(.malformed, "load: expected path (UTF-8 string) and scale (f32)") }
            request = .load(path: path, scale: scale)
        case .unload:
            guard let name = r.string() else { return .refused(.malformed, "unload: expected name (UTF-8 string)") }
            request = .unload(name: name)
        case .scale:
            guard let name = r.string(), let scale = r.f32() else { return .refused(.malformed, "scale: expected name (UTF-8 string) and scale (f32)") }
            request = .scale(name: name, scale: scale)
        case .swap:
            guard let count = r.u16() else { return .refused(.malformed, "swap: expected an adapter count (u16)") }
            guard Int(count) <= ControlProtocol.maximumSwapCount else {
                return .refused(.malformed, "swap: \(count) adapters; at most \(ControlProtocol.maximumSwapCount)")
            }
            var list: [ControlAdapterSpec] = []
            for i in 0..<Int(count) {
                guard let path = r.string(), let scale = r.f32() else {
                    return .refused(.malformed, "swap: adapter \(i) of \(count): expected path (UTF-8 string) and scale (f32)")
                }
                list.append(ControlAdapterSpec(path: path, scale: scale))
            }
            request = .swap(list)
        }
        guard r.remaining == 0 else {
            return .refused(.malformed, "\(op.name): \(r.remaining) bytes after the last field")
        }
        return .request(request)
    }
}

/// What `ControlRequest.decode` found.
public enum ControlDecoded: Equatable, Sendable {
    case request(ControlRequest)
    case refused(ControlProtocol.Status, String)
}

// MARK: - Responses

/// One active adapter, as list reports it.
public struct ControlAdapterInfo: Equatable, Sendable {
    public var name: String
    public var file: String
    public var rank: Int
    public var scale: Float
    /// Bytes the adapter holds in the budget's heap.
    public var byteCount: Int

    public init(name: String, file: String, rank: Int, scale: Float, byteCount: Int) {
        self.name = name
        self.file = file
        self.rank = rank
        self.scale = scale
        self.byteCount = byteCount
    }
}

/// The runtime's state, as status reports it. Times in nanoseconds.
public struct ControlStatus: Equatable, Sendable {
    public var budgetBytes: Int
    public var usedBytes: Int
    public var heapInUseBytes: Int
    public var steps: UInt64
    public var resets: UInt64
    public var swaps: UInt64
    public var method: String
    public var stepP50Nanoseconds: UInt64
    public var stepP99Nanoseconds: UInt64
    public var stepMaxNanoseconds: UInt64
    public var activeAdapters: Int
    public var generation: UInt64
    public var modelLoaded: Bool
    /// The running method's figures (updates, guard resets, the learner's drops and lag, update
    /// times, the state file's saves); nil from a runtime that does not send them.
    public var figures: MethodFigures?

    public init(
        budgetBytes: Int, usedBytes: Int, heapInUseBytes: Int, steps: UInt64, resets: UInt64, swaps: UInt64,
        method: String, stepP50Nanoseconds: UInt64, stepP99Nanoseconds: UInt64, stepMaxNanoseconds: UInt64,
        activeAdapters: Int, generation: UInt64, modelLoaded: Bool
    ) {
        self.budgetBytes = budgetBytes
        self.usedBytes = usedBytes
        self.heapInUseBytes = heapInUseBytes
        self.steps = steps
        self.resets = resets
        self.swaps = swaps
        self.method = method
        self.stepP50Nanoseconds = stepP50Nanoseconds
        self.stepP99Nanoseconds = stepP99Nanoseconds
        self.stepMaxNanoseconds = stepMaxNanoseconds
        self.activeAdapters = activeAdapters
        self.generation = generation
        self.modelLoaded = modelLoaded
    }
}

/// A decoded response.
public struct ControlResponse: Equatable, Sendable {
    public var status: ControlProtocol.Status
    public var message: String
    /// The active set after the operation (list, load, unload, swap, scale).
    public var generation: UInt64
    public var adapters: [ControlAdapterInfo]
    /// status only.
    public var state: ControlStatus?

    public init(status: ControlProtocol.Status, message: String, generation: UInt64 = 0,
                adapters: [ControlAdapterInfo] = [], state: ControlStatus? = nil) {
        self.status = status
        self.message = message
        self.generation = generation
        self.adapters = adapters
        self.state = state
    }

    /// Decodes a response body to `operation`.
    /// - Throws: `.malformedFile(offset:reason:)` (offset into the body) when it does not parse.
    public static func decode(_ body: UnsafeRawBufferPointer, operation: ControlProtocol.Operation) throws(LichenError) -> ControlResponse {
        var r = ControlReader(body)
        guard let version = r.u8(), version == ControlProtocol.version else {
            throw .unsupportedVersion(format: "control response", version: body.isEmpty ? -1 : Int(body[0]))
        }
        guard let code = r.u8(), let status = ControlProtocol.Status(rawValue: code) else {
            throw .malformedFile(offset: 1, reason: "response status code unknown")
        }
        guard let message = r.string() else { throw .malformedFile(offset: 2, reason: "response message truncated") }
        var response = ControlResponse(status: status, message: message)
        guard status == .ok else { return response }
        switch operation {
        case .status:
            guard let budget = r.u64(), let used = r.u64(), let heap = r.u64(), let steps = r.u64(), let resets = r.u64(),
                  let swaps = r.u64(), let method = r.string(), let p50 = r.u64(), let p99 = r.u64(), let mx = r.u64(),
                  let active = r.u32(), let generation = r.u64(), let loaded = r.u8()
            else { throw .malformedFile(offset: r.offset, reason: "status payload truncated") }
            response.generation = generation
            response.state = ControlStatus(
                budgetBytes: Int(budget), usedBytes: Int(used), heapInUseBytes: Int(heap), steps: steps, resets: resets,
                swaps: swaps, method: method, stepP50Nanoseconds: p50, stepP99Nanoseconds: p99, stepMaxNanoseconds: mx,
                activeAdapters: Int(active), generation: generation, modelLoaded: loaded != 0)
            // The method's figures follow (appended to version 1's payload).
            if r.remaining > 0 {
                guard let updates = r.u64(), let resets = r.u64(), let dropped = r.u64(), let lag = r.u64(), let maxLag = r.u64(),
                      let version = r.u64(), let up50 = r.u64(), let up99 = r.u64(), let upMax = r.u64(), let saves = r.u64(),
                      let saveFailures = r.u64(), let lastSave = r.u64(), let lastSaveTook = r.u64(), let restore = r.u8(),
                      let learner = r.u8(), let lastGood = r.u64()
                else { throw .malformedFile(offset: r.offset, reason: "status figures truncated") }
                var f = MethodFigures(updates: updates, guardResets: resets, rejectedFrames: 0, lastLoss: 0, effectiveClasses: 0)
                f.droppedFrames = dropped
                f.learnerLag = lag
                f.maximumLearnerLag = maxLag
                f.version = version
                f.updateP50Nanoseconds = up50
                f.updateP99Nanoseconds = up99
                f.updateMaxNanoseconds = upMax
                f.stateSaves = saves
                f.stateSaveFailures = saveFailures
                f.lastSaveUnixNanoseconds = lastSave
                f.lastSaveNanoseconds = lastSaveTook
                f.stateRestore = UInt64(restore)
                f.learnerRunning = learner != 0
                f.lastGoodResets = lastGood
                response.state?.figures = f
            }
        case .list, .load, .unload, .swap, .scale:
            guard let generation = r.u64(), let count = r.u16() else {
                throw .malformedFile(offset: r.offset, reason: "adapter list truncated")
            }
            response.generation = generation
            for _ in 0..<Int(count) {
                guard let name = r.string(), let file = r.string(), let rank = r.u32(), let scale = r.f32(), let bytes = r.u64()
                else { throw .malformedFile(offset: r.offset, reason: "adapter entry truncated") }
                response.adapters.append(ControlAdapterInfo(name: name, file: file, rank: Int(rank), scale: scale, byteCount: Int(bytes)))
            }
        }
        guard r.remaining == 0 else { throw .malformedFile(offset: r.offset, reason: "bytes after the response payload") }
        return response
    }
}

// MARK: - Byte access

/// Little-endian field reader over a body; every read is bounds-checked and returns nil past
/// the end (the offset does not move then).
public struct ControlReader {
    private let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    public var remaining: Int { bytes.count - offset }

    public mutating func u8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { offset += 2 }
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    public mutating func u32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << (8 * UInt32(i)) }
        offset += 4
        return v
    }

    public mutating func u64() -> UInt64? {
        guard remaining >= 8 else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        offset += 8
        return v
    }

    public mutating func f32() -> Float? {
        guard let bits = u32() else { return nil }
        return Float(bitPattern: bits)
    }

    /// A u16 byte count and that many bytes of UTF-8 (invalid sequences become U+FFFD).
    public mutating func string() -> String? {
        let start = offset
        guard let n = u16() else { return nil }
        guard Int(n) <= ControlProtocol.maximumStringBytes, remaining >= Int(n) else {
            offset = start
            return nil
        }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(n))])
        let s = String(decoding: raw, as: UTF8.self)
        // Invalid UTF-8 would decode with replacement characters: a different name or path
        // than the peer sent. Refused instead.
        guard s.utf8.elementsEqual(raw) else {
            offset = start
            return nil
        }
        offset += Int(n)
        return s
    }
}

/// Little-endian field writer into a fixed buffer (the endpoint's response buffer): nothing is
/// allocated; a write that does not fit sets `overflowed` and writes nothing.
public struct ControlWriter {
    private let base: UnsafeMutableRawPointer
    public let capacity: Int
    public private(set) var count = 0
    public private(set) var overflowed = false

    public init(base: UnsafeMutableRawPointer, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    private mutating func room(_ n: Int) -> Bool {
        if overflowed || capacity - count < n {
            overflowed = true
            return false
        }
        return true
    }

    public mutating func u8(_ v: UInt8) {
        guard room(1) else { return }
        base.storeBytes(of: v, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    public mutating func u16(_ v: UInt16) {
        guard room(2) else { return }
        for i in 0..<2 { base.storeBytes(of: UInt8(truncatingIfNeeded: v >> (8 * UInt16(i))), toByteOffset: count + i, as: UInt8.self) }
        count += 2
    }

    public mutating func u32(_ v: UInt32) {
        guard room(4) else { return }
        for i in 0..<4 { base.storeBytes(of: UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))), toByteOffset: count + i, as: UInt8.self) }
        count += 4
    }

    public mutating func u64(_ v: UInt64) {
        guard room(8) else { return }
        for i in 0..<8 { base.storeBytes(of: UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))), toByteOffset: count + i, as: UInt8.self) }
        count += 8
    }

    public mutating func f32(_ v: Float) { u32(v.bitPattern) }

    /// A string field, cut at `ControlProtocol.maximumStringBytes` (on a UTF-8 boundary).
    public mutating func string(_ s: String) {
        var utf8 = s.utf8.count
        if utf8 > ControlProtocol.maximumStringBytes {
            utf8 = ControlProtocol.maximumStringBytes
            var i = s.utf8.index(s.utf8.startIndex, offsetBy: utf8)
            // Step back over continuation bytes so the cut is a whole character.
            while utf8 > 0 && (s.utf8[i] & 0xC0) == 0x80 {
                utf8 -= 1
                i = s.utf8.index(before: i)
            }
        }
        guard room(2 + utf8) else { return }
        u16(UInt16(utf8))
        var k = 0
        for byte in s.utf8 {
            if k == utf8 { break }
            base.storeBytes(of: byte, toByteOffset: count + k, as: UInt8.self)
            k += 1
        }
        count += utf8
    }

    /// Starts a response: version, status, message.
    public mutating func header(_ status: ControlProtocol.Status, _ message: String) {
        u8(ControlProtocol.version)
        u8(status.rawValue)
        string(message)
    }
}

/// Helpers for building request bodies in arrays (clients).
enum ControlBytes {
    static func appendU16(_ v: UInt16, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v))
        out.append(UInt8(truncatingIfNeeded: v >> 8))
    }

    static func appendU32(_ v: UInt32, to out: inout [UInt8]) {
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }

    static func appendString(_ s: String, to out: inout [UInt8]) {
        let bytes = Array(s.utf8.prefix(ControlProtocol.maximumStringBytes))
        appendU16(UInt16(bytes.count), to: &out)
        out.append(contentsOf: bytes)
    }
}
