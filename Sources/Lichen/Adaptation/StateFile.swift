import CRuntime

/// The adapted state on disk (`AdaptedState`), so that what a robot learned survives a reboot.
///
/// Layout, version 1, little-endian, no padding:
///
/// | field | type |
/// | --- | --- |
/// | magic `LCST` | 4 bytes |
/// | version, 1 | u32 |
/// | model content hash (`GGUFFile.contentHash()`: the file's byte count << 32, its CRC-32) | u64 |
/// | plan hash (CRC-32 of the plan text) | u32 |
/// | updates, frames stepped, when saved (Unix ns) | u64 × 3 |
/// | plan text (`AdaptationPlan.stateIdentity`) | u16 length, UTF-8 |
/// | counter count, counters | u32, u64 × count |
/// | tensor count | u32 |
/// | per tensor: name, value count, values | u16 length + UTF-8, u64, f32 × count |
/// | CRC-32 of every byte before it | u32 |
///
/// A file is written whole to `PATH.tmp` in the same folder, fsync'd, renamed over `PATH`, and
/// the folder fsync'd (`AtomicFile`): a crash at any moment leaves the previous file or the new
/// one, never a mix.
public enum StateFile {
    static let magic: (UInt8, UInt8, UInt8, UInt8) = (0x4C, 0x43, 0x53, 0x54)  // "LCST"
    public static let version: UInt32 = 1
    static let fixedHeaderBytes = 4 + 4 + 8 + 4 + 24

    /// What a state file says, read and checked by `parse`.
    public struct Contents: Sendable {
        public var modelHash: UInt64
        public var planHash: UInt32
        public var updates: UInt64
        public var frames: UInt64
        public var savedAtNanoseconds: UInt64
        public var planText: String
        public var counters: [UInt64]
        /// Name, value count and byte offset of the values, per tensor.
        public var tensors: [(name: String, count: Int, offset: Int)]
        public var crc: UInt32
        public var byteCount: Int
    }

    /// The size of the file `write` makes for `state` under `planText`.
    static func byteCount(state: AdaptedState, planText: String) -> Int {
        var n = fixedHeaderBytes + 2 + planText.utf8.count + 4 + 8 * state.counterCount + 4
        for i in 0..<state.tensorCount {
            n += 2 + state.tensorName(i).utf8.count + 8 + 4 * state.tensor(i).elementCount
        }
        return n + 4
    }

    /// Writes the file image of `state` into `buffer` (at least `byteCount` bytes).
    /// - Returns: the bytes written.
    /// - Throws: `.bufferTooSmall(operand: "state", ...)`; what `AdaptedState.gather` throws.
    /// - Note: Allocates nothing (the names were made at assembly).
    static func write(state: AdaptedState, planText: String, modelHash: UInt64, updates: Int, frames: Int,
                      into buffer: UnsafeMutableRawBufferPointer) throws(LichenError) -> Int {
        let needed = byteCount(state: state, planText: planText)
        guard let base = buffer.baseAddress, buffer.count >= needed else {
            throw .bufferTooSmall(operand: "state", needed: needed, available: buffer.count)
        }
        try state.gather()
        var w = ControlWriter(base: base, capacity: needed)
        w.u8(magic.0)
        w.u8(magic.1)
        w.u8(magic.2)
        w.u8(magic.3)
        w.u32(version)
        w.u64(modelHash)
        var planCRC = CRC32()
        planText.utf8.withContiguousStorageIfAvailable { planCRC.update(UnsafeRawBufferPointer($0)) }
        w.u32(planCRC.value)
        w.u64(UInt64(max(0, updates)))
        w.u64(UInt64(max(0, frames)))
        w.u64(lcr_os_realtime_ns())
        w.string(planText)
        w.u32(UInt32(state.counterCount))
        for k in 0..<state.counterCount { w.u64(state.counters[k]) }
        w.u32(UInt32(state.tensorCount))
        for i in 0..<state.tensorCount {
            w.string(state.tensorName(i))
            let t = state.tensor(i)
            w.u64(UInt64(t.elementCount))
            let values = t.floats
            for j in 0..<t.elementCount { w.f32(values[j]) }
        }
        var crc = CRC32()
        crc.update(UnsafeRawBufferPointer(start: base, count: w.count))
        w.u32(crc.value)
        guard !w.overflowed, w.count == needed else { throw .bufferTooSmall(operand: "state", needed: needed, available: w.count) }
        return needed
    }

    /// Reads and checks a state file image: magic, version, every length against the bytes
    /// there, the CRC, and that every value is finite.
    ///
    /// - Throws: `.malformedFile(offset:reason:)` (offset into the file); `.unsupportedVersion(format:
    ///   "state", ...)`; `.nonFiniteValue(operand: "state", index:)`.
    /// - Note: Allocates (the names and the lists); not a step-time call.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(LichenError) -> Contents {
        guard bytes.count >= fixedHeaderBytes + 2 + 4 + 4 + 4 else {
            throw .malformedFile(offset: bytes.count, reason: "state file truncated: shorter than its header and checksum")
        }
        var r = ControlReader(bytes)
        guard r.u8() == magic.0, r.u8() == magic.1, r.u8() == magic.2, r.u8() == magic.3 else {
            throw .malformedFile(offset: 0, reason: "not a state file (magic is not LCST)")
        }
        let v = r.u32() ?? 0
        guard v == version else { throw .unsupportedVersion(format: "state", version: Int(v)) }
        // Check the CRC first: a flipped byte anywhere is named as such, not as what it broke.
        let crcAt = bytes.count - 4
        var tail = ControlReader(UnsafeRawBufferPointer(rebasing: bytes[crcAt...]))
        let stored = tail.u32() ?? 0
        var crc = CRC32()
        crc.update(UnsafeRawBufferPointer(rebasing: bytes[0..<crcAt]))
        guard crc.value == stored else {
            throw .malformedFile(offset: crcAt, reason: "checksum does not match: the file is damaged or truncated")
        }
        let modelHash = r.u64() ?? 0, planHash = r.u32() ?? 0
        let updates = r.u64() ?? 0, frames = r.u64() ?? 0, savedAt = r.u64() ?? 0
        let planAt = r.offset
        guard let planText = r.string() else { throw .malformedFile(offset: planAt, reason: "plan text truncated") }
        let countAt = r.offset
        guard let counterCount = r.u32(), Int(counterCount) <= 1 << 16, r.remaining >= 8 * Int(counterCount) + 8 else {
            throw .malformedFile(offset: countAt, reason: "counters truncated")
        }
        var counters: [UInt64] = []
        for _ in 0..<Int(counterCount) { counters.append(r.u64() ?? 0) }
        let tensorsAt = r.offset
        guard let tensorCount = r.u32(), Int(tensorCount) <= 1 << 20 else { throw .malformedFile(offset: tensorsAt, reason: "tensor count truncated") }
        var tensors: [(name: String, count: Int, offset: Int)] = []
        var index = 0
        for _ in 0..<Int(tensorCount) {
            let at = r.offset
            guard let name = r.string() else { throw .malformedFile(offset: at, reason: "tensor name truncated") }
            let countAt = r.offset
            guard let n = r.u64(), n <= UInt64(r.remaining / 4) else {
                throw .malformedFile(offset: countAt, reason: "tensor values truncated")
            }
            let offset = r.offset
            for _ in 0..<Int(n) {
                guard let x = r.f32(), x.isFinite else { throw .nonFiniteValue(operand: "state", index: index) }
                index += 1
            }
            tensors.append((name, Int(n), offset))
        }
        guard r.offset == crcAt else { throw .malformedFile(offset: r.offset, reason: "bytes after the last tensor") }
        return Contents(modelHash: modelHash, planHash: planHash, updates: updates, frames: frames, savedAtNanoseconds: savedAt,
                        planText: planText, counters: counters, tensors: tensors, crc: stored, byteCount: bytes.count)
    }

    /// Checks that `contents` (parsed from `bytes`) belongs to this model, this plan and this
    /// state's layout, then loads it into the state. Nothing changes unless every check passes.
    ///
    /// - Throws: `.invalidModel(key: "state.model" | "state.plan" | "state.layout" | "state.<name>", ...)`.
    static func restore(_ contents: Contents, bytes: UnsafeRawBufferPointer, into state: AdaptedState, modelHash: UInt64,
                        planText: String) throws(LichenError) {
        guard contents.modelHash == modelHash else {
            throw .invalidModel(key: "state.model", value: hex(contents.modelHash) + " (this model: " + hex(modelHash) + ")",
                                reason: "the state was saved for another model")
        }
        guard contents.planText == planText else {
            throw .invalidModel(key: "state.plan", value: contents.planText + " (this plan: " + planText + ")",
                                reason: "the state was saved under another plan")
        }
        guard contents.counters.count == state.counterCount, contents.tensors.count == state.tensorCount else {
            throw .invalidModel(key: "state.layout", value: "\(contents.tensors.count) tensors (this plan keeps \(state.tensorCount))",
                                reason: "the state holds another set of values than this plan keeps")
        }
        for i in 0..<state.tensorCount {
            let t = contents.tensors[i]
            guard t.name == state.tensorName(i), t.count == state.tensor(i).elementCount else {
                throw .invalidModel(key: "state." + t.name, value: "\(t.count) values (expected " + state.tensorName(i) + " with \(state.tensor(i).elementCount))",
                                    reason: "the state holds another tensor here")
            }
        }
        for i in 0..<state.tensorCount {
            let t = contents.tensors[i]
            let values = state.tensor(i).floats
            var r = ControlReader(UnsafeRawBufferPointer(rebasing: bytes[t.offset..<(t.offset + 4 * t.count)]))
            for j in 0..<t.count { values[j] = r.f32() ?? 0 }
        }
        for k in 0..<state.counterCount { state.counters[k] = contents.counters[k] }
        try state.scatter()
    }

    static func hex(_ v: UInt64) -> String {
        let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
        var s = ""
        for i in (0..<16).reversed() { s.append(digits[Int((v >> (4 * UInt64(i))) & 15)]) }
        return s
    }
}

extension StateFile {
    /// Reads and checks the state file at `path` (`parse`), through the untrusted-file routine
    /// (regular files only, at most `maximumBytes`).
    /// - Throws: what `UntrustedFile` and `parse` throw.
    /// - Note: Allocates (tooling: `lichen state show|verify`).
    public static func read(path: String, maximumBytes: Int = 1 << 30) throws(LichenError) -> (bytes: [UInt8], contents: Contents) {
        let file = try UntrustedFile(path: path, maximumBytes: maximumBytes)
        var bytes = [UInt8](repeating: 0, count: file.byteCount)
        var failure: LichenError? = nil
        bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            do throws(LichenError) { try file.readAll(into: base) } catch { failure = error }
        }
        if let failure { throw failure }
        var parsed: Result<Contents, LichenError> = .failure(.malformedFile(offset: 0, reason: "empty file"))
        bytes.withUnsafeBytes { raw in
            do throws(LichenError) { parsed = .success(try parse(raw)) } catch { parsed = .failure(error) }
        }
        switch parsed {
        case .success(let c): return (bytes, c)
        case .failure(let e): throw e
        }
    }

    /// The hexadecimal text of a hash, as `lichen state show` prints it.
    public static func hexText(_ v: UInt64) -> String { hex(v) }
}
