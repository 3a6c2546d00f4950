import CRuntime

/// Builds a GGUF v3 file: metadata (every value type, nested arrays) and tensors, written
/// with aligned tensor data and, for files, atomically (temporary file, fsync, rename).
///
/// Layout, byte for byte what gguf-py's `GGUFWriter` writes for the same content: header,
/// metadata in the order added, then `general.alignment` (uint32) last, tensor infos in the
/// order added with offsets that each round the previous tensor's size up to the alignment,
/// zero padding to the alignment, and each tensor's bytes followed by zero padding to the
/// alignment. (gguf-py adds `general.architecture` first and `general.alignment` where
/// `add_custom_alignment` is called: call it last to get the same bytes.)
///
/// Everything is validated when added, so `serialized()` and `write(toPath:)` only fail on
/// sizes that overflow or on system errors.
///
/// - Note: Tensor bytes are copied into the writer when added; the writer is a tool for
///   building files (conversion, checkpoints), not for the step.
public struct GGUFWriter {
    struct PendingTensor {
        let name: String
        let type: ElementType
        let shape: Shape
        let bytes: [UInt8]
    }

    /// Data alignment in bytes, written as `general.alignment`.
    public let alignment: Int
    private var keys: [String] = []
    private var values: [GGUFMetadataValue] = []
    private var pending: [PendingTensor] = []

    /// A writer with data alignment `alignment` (a power of two, at least 8; GGUF's default is 32).
    /// - Throws: `.invalidArgument` for any other alignment.
    public init(alignment: Int = GGUFFile.defaultAlignment) throws(LichenError) {
        guard alignment >= 8, alignment & (alignment - 1) == 0, alignment <= Int(UInt32.max) else {
            throw .invalidArgument(name: "alignment", value: alignment, reason: "must be a power of two >= 8")
        }
        self.alignment = alignment
    }

    /// Number of metadata pairs added (without `general.alignment`).
    public var metadataCount: Int { keys.count }
    /// Number of tensors added.
    public var tensorCount: Int { pending.count }

    /// Adds metadata `key` = `value`, after the pairs already added.
    ///
    /// - Throws: `.invalidArgument` for an empty key, a key longer than 65535 bytes, a key
    ///   already added, `general.alignment` (set through `init(alignment:)`), an array whose
    ///   elements do not all have its element type, or arrays nested deeper than
    ///   `GGUFFile.maximumArrayDepth`.
    public mutating func add(_ key: String, _ value: GGUFMetadataValue) throws(LichenError) {
        let length = key.utf8.count
        guard length > 0, length <= GGUFFile.maximumKeyLength else {
            throw .invalidArgument(name: "key", value: length, reason: "key length must be 1 to 65535 bytes")
        }
        guard key != "general.alignment" else {
            throw .invalidArgument(name: "key", value: 0, reason: "general.alignment is set by GGUFWriter(alignment:)")
        }
        for (i, k) in keys.enumerated() where k == key {
            throw .invalidArgument(name: "key", value: i, reason: "key already added (value is its index)")
        }
        try GGUFWriter.checkValue(value, depth: 0)
        keys.append(key)
        values.append(value)
    }

    private static func checkValue(_ value: GGUFMetadataValue, depth: Int) throws(LichenError) {
        guard case .array(let elementType, let elements) = value else { return }
        guard depth < GGUFFile.maximumArrayDepth else {
            throw .invalidArgument(name: "array", value: depth + 1, reason: "arrays nested too deeply")
        }
        for (i, e) in elements.enumerated() {
            guard e.type == elementType else {
                throw .invalidArgument(name: "array", value: i, reason: "element type differs from the array's")
            }
            try checkValue(e, depth: depth + 1)
        }
    }

    /// Adds tensor `name` of `type` and `shape` (outermost first), copying `bytes`.
    ///
    /// - Throws: `.invalidArgument` for an empty, duplicate or non-UTF-8-safe name longer than
    ///   64 bytes, rank not 1 to 4, or a zero dimension; `.shapeMismatch` if a quantized
    ///   type's innermost dimension is not a multiple of 32; `.bufferTooSmall` if `bytes` is
    ///   not exactly the tensor's size (`.invalidArgument` when it is larger).
    public mutating func addTensor(
        _ name: String, type: ElementType, shape: Shape, bytes: UnsafeRawBufferPointer
    ) throws(LichenError) {
        let nameLength = name.utf8.count
        guard nameLength > 0, nameLength <= GGUFFile.maximumTensorNameLength else {
            throw .invalidArgument(name: "tensor name", value: nameLength, reason: "name length must be 1 to 64 bytes")
        }
        for (i, t) in pending.enumerated() where t.name == name {
            throw .invalidArgument(name: "tensor name", value: i, reason: "tensor already added (value is its index)")
        }
        guard shape.rank >= 1, shape.rank <= 4 else {
            throw .invalidArgument(name: "shape.rank", value: shape.rank, reason: "rank must be 1 to 4")
        }
        for i in 0..<shape.rank where shape[i] == 0 {
            throw .invalidArgument(name: "shape.dimension", value: i, reason: "dimensions must be > 0")
        }
        guard shape.last % type.blockLength == 0 else {
            throw .shapeMismatch(operand: "tensor", dimension: shape.rank - 1,
                                 expected: (shape.last / type.blockLength + 1) * type.blockLength, got: shape.last)
        }
        guard let elements = shape.elementCount, let size = type.byteCount(values: elements) else {
            throw .invalidArgument(name: "shape", value: shape.last, reason: "tensor size overflows")
        }
        guard bytes.count >= size else { throw .bufferTooSmall(operand: "tensor", needed: size, available: bytes.count) }
        guard bytes.count == size else {
            throw .invalidArgument(name: "bytes.count", value: bytes.count, reason: "larger than the tensor")
        }
        pending.append(PendingTensor(name: name, type: type, shape: shape, bytes: Array(bytes.bindMemory(to: UInt8.self))))
    }

    /// Adds tensor `name` from a byte array; see `addTensor(_:type:shape:bytes:)`.
    public mutating func addTensor(_ name: String, type: ElementType, shape: Shape, bytes: [UInt8]) throws(LichenError) {
        var failure: LichenError? = nil
        bytes.withUnsafeBytes { raw in
            do throws(LichenError) { try addTensor(name, type: type, shape: shape, bytes: raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Adds an f32 tensor from floats.
    public mutating func addTensor(_ name: String, shape: Shape, floats: [Float]) throws(LichenError) {
        var failure: LichenError? = nil
        floats.withUnsafeBytes { raw in
            do throws(LichenError) { try addTensor(name, type: .f32, shape: shape, bytes: raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    // MARK: - Output

    /// `x` rounded up to the alignment; nil on overflow.
    private func padded(_ x: Int) -> Int? {
        let (s, o) = x.addingReportingOverflow(alignment - 1)
        return o ? nil : s & ~(alignment - 1)
    }

    /// Header, metadata, tensor infos and the padding up to the data section.
    func headerBytes() throws(LichenError) -> [UInt8] {
        var out: [UInt8] = []
        out.append(contentsOf: [0x47, 0x47, 0x55, 0x46])  // "GGUF"
        put32(&out, 3)
        put64(&out, UInt64(pending.count))
        put64(&out, UInt64(keys.count + 1))
        for (key, value) in zip(keys, values) {
            putString(&out, key)
            put32(&out, value.type.rawValue)
            putValue(&out, value)
        }
        putString(&out, "general.alignment")
        put32(&out, GGUFValueType.uint32.rawValue)
        put32(&out, UInt32(alignment))
        var offset = 0
        for t in pending {
            putString(&out, t.name)
            put32(&out, UInt32(t.shape.rank))
            var i = t.shape.rank - 1
            while i >= 0 {  // ggml `ne`: innermost first
                put64(&out, UInt64(t.shape[i]))
                i -= 1
            }
            put32(&out, t.type.rawValue)
            put64(&out, UInt64(offset))
            guard let next = padded(t.bytes.count), case (let sum, false) = offset.addingReportingOverflow(next) else {
                throw .invalidArgument(name: "tensors", value: offset, reason: "total size overflows")
            }
            offset = sum
        }
        guard let headerEnd = padded(out.count) else {
            throw .invalidArgument(name: "header", value: out.count, reason: "size overflows")
        }
        out.append(contentsOf: repeatElement(0, count: headerEnd - out.count))
        return out
    }

    /// The whole file in memory.
    /// - Throws: `.invalidArgument` if sizes overflow.
    public func serialized() throws(LichenError) -> [UInt8] {
        var out = try headerBytes()
        for t in pending {
            out.append(contentsOf: t.bytes)
            guard let end = padded(t.bytes.count) else {
                throw .invalidArgument(name: "tensor", value: t.bytes.count, reason: "size overflows")
            }
            out.append(contentsOf: repeatElement(0, count: end - t.bytes.count))
        }
        return out
    }

    /// Writes the file to `path` atomically: to `path + ".tmp"`, fsync, rename over `path`,
    /// fsync of the directory. On failure the temporary file is removed and `path` is untouched.
    ///
    /// - Throws: `.fileError(path:call:errno:)` naming the failed call (`AtomicFile.write`);
    ///   `.invalidArgument` if sizes overflow.
    public func write(toPath path: String) throws(LichenError) {
        try write(toPath: path, replacing: true)
    }

    /// Writes the file to `path` like `write(toPath:)`, but never replaces a file: the finished
    /// temporary is published with link(2), which fails when `path` exists.
    /// - Throws: `.fileError(path:call: "link", errno: EEXIST)` when `path` exists (nothing is
    ///   changed then); `.systemError` as `write(toPath:)`.
    public func writeNew(toPath path: String) throws(LichenError) {
        try write(toPath: path, replacing: false)
    }

    private func write(toPath path: String, replacing: Bool) throws(LichenError) {
        let header = try headerBytes()
        let zeros = [UInt8](repeating: 0, count: alignment)
        try AtomicFile.write(path: path, temporary: path + ".tmp", replacing: replacing) { emit in
            header.withUnsafeBytes { emit($0) }
            for t in pending {
                t.bytes.withUnsafeBytes { emit($0) }
                let pad = (alignment - t.bytes.count % alignment) % alignment
                zeros.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[0..<pad])) }
            }
        }
    }
}

// MARK: - Encoding (little-endian)

private func put32(_ out: inout [UInt8], _ v: UInt32) {
    var x = v
    for _ in 0..<4 { out.append(UInt8(truncatingIfNeeded: x)); x >>= 8 }
}

private func put64(_ out: inout [UInt8], _ v: UInt64) {
    var x = v
    for _ in 0..<8 { out.append(UInt8(truncatingIfNeeded: x)); x >>= 8 }
}

private func putString(_ out: inout [UInt8], _ s: String) {
    put64(&out, UInt64(s.utf8.count))
    out.append(contentsOf: s.utf8)
}

private func putValue(_ out: inout [UInt8], _ value: GGUFMetadataValue) {
    switch value {
    case .uint8(let v): out.append(v)
    case .int8(let v): out.append(UInt8(bitPattern: v))
    case .uint16(let v): out.append(UInt8(truncatingIfNeeded: v)); out.append(UInt8(truncatingIfNeeded: v >> 8))
    case .int16(let v):
        let u = UInt16(bitPattern: v)
        out.append(UInt8(truncatingIfNeeded: u)); out.append(UInt8(truncatingIfNeeded: u >> 8))
    case .uint32(let v): put32(&out, v)
    case .int32(let v): put32(&out, UInt32(bitPattern: v))
    case .float32(let v): put32(&out, v.bitPattern)
    case .bool(let v): out.append(v ? 1 : 0)
    case .string(let s): putString(&out, s)
    case .array(let elementType, let elements):
        put32(&out, elementType.rawValue)
        put64(&out, UInt64(elements.count))
        for e in elements { putValue(&out, e) }
    case .uint64(let v): put64(&out, v)
    case .int64(let v): put64(&out, UInt64(bitPattern: v))
    case .float64(let v): put64(&out, v.bitPattern)
    }
}
