/// Checked element access and allocation-free reshaping of views, for code outside the
/// unsafe folders (the graph, the trainers): they read and write values through
/// `withFloats` and never hold a pointer.

/// The f32 values of a view, handed out only inside `TensorView.withFloats`: a base and a
/// count, with bounds-checked element access. Do not keep it past the closure.
///
/// An index outside `0..<count` is a bug in Lichen (indices come from shapes validated at
/// build time), not bad input, and traps.
public struct FloatAccess {
    // safe: points at `count` f32 values of a validated view, valid while the closure runs.
    private let pointer: UnsafeMutablePointer<Float>
    /// Number of values.
    public let count: Int

    init(pointer: UnsafeMutablePointer<Float>, count: Int) {
        self.pointer = pointer
        self.count = count
    }

    /// Value `i`, 0 <= i < count.
    @inline(__always)
    public subscript(i: Int) -> Float {
        get {
            precondition(UInt(bitPattern: i) < UInt(bitPattern: count), "FloatAccess index out of range")
            return pointer[i]
        }
        nonmutating set {
            precondition(UInt(bitPattern: i) < UInt(bitPattern: count), "FloatAccess index out of range")
            pointer[i] = newValue
        }
    }

    /// Sets every value to `value`.
    public func fill(_ value: Float) {
        // safe: count values from pointer, as validated at creation.
        pointer.update(repeating: value, count: count)
    }
}

extension TensorView {
    /// Number of values (elements) of the view.
    public var elementCount: Int { shape.elementCount ?? 0 }

    /// Runs `body` with checked access to the view's f32 values.
    ///
    /// - Throws: `.unsupportedElementType` unless the view is f32; whatever `body` throws.
    /// - Note: Allocates nothing.
    @inline(__always)
    public func withFloats<R>(_ body: (FloatAccess) throws(LichenError) -> R) throws(LichenError) -> R {
        try require(.f32, "tensor")
        return try body(FloatAccess(pointer: floats, count: elementCount))
    }

    /// The same bytes with another shape of the same element count (contiguous views only).
    ///
    /// - Throws: `.shapeMismatch` when the element counts differ; as `TensorView.init`.
    /// - Note: Allocates nothing.
    public func reshaped(_ newShape: Shape) throws(LichenError) -> TensorView {
        let n = newShape.elementCount ?? -1
        guard n == elementCount else {
            throw .shapeMismatch(operand: "reshape", dimension: 0, expected: elementCount, got: n)
        }
        return try TensorView(base: base, byteCount: bufferByteCount, type: type, shape: newShape)
    }

    /// A view of `shape` starting `byteOffset` bytes into this view's buffer, same element type.
    ///
    /// - Throws: `.outOfBounds` when the offset lies outside the buffer; as `TensorView.init`
    ///   (`.bufferTooSmall` when the new view does not fit, `.misaligned`).
    /// - Note: Allocates nothing.
    public func subview(byteOffset: Int, shape: Shape) throws(LichenError) -> TensorView {
        guard byteOffset >= 0, byteOffset <= bufferByteCount else {
            throw .outOfBounds(operand: "subview", end: byteOffset, limit: bufferByteCount)
        }
        // safe: byteOffset <= bufferByteCount, and TensorView.init checks the rest fits.
        return try TensorView(base: base + byteOffset, byteCount: bufferByteCount - byteOffset, type: type, shape: shape)
    }

    /// A view of `shape` starting `valueOffset` values into this view (for block types the
    /// offset must be whole blocks): a sample of a batch, a group of a weight matrix's rows.
    ///
    /// - Throws: `.invalidArgument` for a negative offset or one inside a block; as
    ///   `subview(byteOffset:shape:)`.
    /// - Note: Allocates nothing.
    public func subview(valueOffset: Int, shape: Shape) throws(LichenError) -> TensorView {
        guard valueOffset >= 0, valueOffset % type.blockLength == 0 else {
            throw .invalidArgument(name: "valueOffset", value: valueOffset, reason: "must be >= 0 and whole blocks")
        }
        let (bytes, overflow) = (valueOffset / type.blockLength).multipliedReportingOverflow(by: type.blockByteCount)
        if overflow { throw .outOfBounds(operand: "subview", end: Int.max, limit: bufferByteCount) }
        return try subview(byteOffset: bytes, shape: shape)
    }

    /// Sets every f32 value to `value`.
    /// - Throws: `.unsupportedElementType` unless f32.
    /// - Note: Allocates nothing.
    public func fill(_ value: Float) throws(LichenError) {
        try require(.f32, "tensor")
        // safe: elementCount values lie inside the validated view.
        floats.update(repeating: value, count: elementCount)
    }

    /// Copies the bytes of `source` (same element type and element count) into this view.
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public func copy(from source: TensorView) throws(LichenError) {
        guard source.type == type else { throw .unsupportedElementType(operand: "source", type: source.type) }
        guard source.elementCount == elementCount else {
            throw .shapeMismatch(operand: "source", dimension: 0, expected: elementCount, got: source.elementCount)
        }
        // safe: both views hold byteCount bytes (same type and count); memmove allows overlap.
        base.copyMemory(from: UnsafeRawPointer(source.base), byteCount: byteCount)
    }

    /// Copies `values` into an f32 view of the same element count (build time, tests).
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    public func copy(from values: [Float]) throws(LichenError) {
        try require(.f32, "tensor")
        guard values.count == elementCount else {
            throw .shapeMismatch(operand: "values", dimension: 0, expected: elementCount, got: values.count)
        }
        let p = floats
        for i in 0..<values.count { p[i] = values[i] }
    }

    /// The f32 values as an array (host code and tests; allocates).
    /// - Throws: `.unsupportedElementType` unless f32.
    public func toArray() throws(LichenError) -> [Float] {
        try require(.f32, "tensor")
        let p = floats
        return (0..<elementCount).map { p[$0] }
    }

    /// The index of the first NaN or infinite f32 value, or nil when all are finite.
    /// - Throws: `.unsupportedElementType` unless f32.
    /// - Note: Allocates nothing.
    public func firstNonFiniteIndex() throws(LichenError) -> Int? {
        try require(.f32, "tensor")
        return UnsafePointer(floats).firstNonFiniteIndex(count: elementCount)
    }

    /// The first NaN or infinite value of a contiguous view, for every element type: an element
    /// index for f32 and f16; a block index for q8_0 and q4_0, whose only floating-point value
    /// is each block's fp16 scale (ggml's `d`, the block's first two bytes; the int8/int4 quants
    /// cannot be non-finite). Nil when every value is finite.
    /// - Note: Allocates nothing. Reads `byteCount` bytes from `base` (a file's tensor).
    public func firstNonFiniteValue() -> Int? {
        switch type {
        case .f32:
            let p = floats
            for i in 0..<elementCount where !p[i].isFinite { return i }
        case .f16:
            for i in 0..<elementCount where ElementType.isNonFiniteHalf(halfBits(atByteOffset: 2 * i)) { return i }
        case .q8_0, .q4_0:
            let stride = type.blockByteCount
            for b in 0..<(byteCount / stride) where ElementType.isNonFiniteHalf(halfBits(atByteOffset: b * stride)) { return b }
        }
        return nil
    }

    /// The little-endian fp16 bits at `offset` bytes from `base`.
    @inline(__always)
    private func halfBits(atByteOffset offset: Int) -> UInt16 {
        // safe: callers stay inside byteCount; fp16 values and block scales may be unaligned.
        UInt16(littleEndian: UnsafeRawPointer(base).loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// `destination[c, r] = source[r, c]` for f32 matrices (`source` read as
    /// `[rowCount, shape.last]`, `destination` as `[shape.last, rowCount]`).
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public static func transpose(_ source: TensorView, into destination: TensorView) throws(LichenError) {
        try source.require(.f32, "source")
        try destination.require(.f32, "destination")
        let r = source.rowCount, c = source.shape.last
        guard destination.shape.last == r else {
            throw .shapeMismatch(operand: "destination", dimension: max(destination.shape.rank - 1, 0), expected: r, got: destination.shape.last)
        }
        guard destination.rowCount == c else {
            throw .shapeMismatch(operand: "destination", dimension: 0, expected: c, got: destination.rowCount)
        }
        let s = source.floats, d = destination.floats
        // safe: indices below r*c in both views, as checked above.
        for i in 0..<r {
            for j in 0..<c { d[j * r + i] = s[i * c + j] }
        }
    }

    /// A view of `shape` and `type` over fresh memory from `arena`'s persistent low end,
    /// zero-filled. Lives as long as the arena.
    ///
    /// - Throws: `.invalidArgument` for a shape whose size overflows; `.budgetExceeded`.
    public static func allocate(in arena: Arena, type: ElementType, shape: Shape) throws(LichenError) -> TensorView {
        guard let count = shape.elementCount, let bytes = type.byteCount(values: count) else {
            throw .invalidArgument(name: "shape", value: shape.rank, reason: "tensor size overflows or is not whole blocks")
        }
        let p = try arena.allocatePersistent(byteCount: max(bytes, type.blockByteCount), alignment: 64)
        // safe: the block was just allocated with at least `bytes` bytes.
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, type.blockByteCount))
        return try TensorView(base: p, byteCount: max(bytes, type.blockByteCount), type: type, shape: shape)
    }
}
