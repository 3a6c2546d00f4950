/// Indexed access to the values of an f32 view, for code outside the pointer-holding folders
/// (Train, Data, Adaptation). Obtained once per call from `TensorView.f32Elements(_:)`, which
/// checks the element type; each index is then bounds-checked.
///
/// An index outside `0..<count` is a bug in the calling Lichen code (every loop bound comes
/// from a validated shape), so it traps rather than throws.
/// - Note: Allocates nothing; `nonmutating set` writes through to the viewed memory.
public struct F32Elements {
    // safe: made only by f32Elements(_:), from a view checked to hold `count` aligned f32 values.
    @usableFromInline let pointer: UnsafeMutablePointer<Float>
    /// Number of values.
    public let count: Int

    @inlinable
    public subscript(index: Int) -> Float {
        get {
            precondition(index >= 0 && index < count, "F32Elements index out of range")
            return pointer[index]
        }
        nonmutating set {
            precondition(index >= 0 && index < count, "F32Elements index out of range")
            pointer[index] = newValue
        }
    }

    /// Sets every value to `value`.
    public func fill(_ value: Float) {
        // safe: count values from pointer lie inside the view.
        pointer.update(repeating: value, count: count)
    }

    /// Copies every value from `source`, which must have the same count.
    /// - Throws: `.shapeMismatch(operand: "source", ...)` when the counts differ.
    public func copy(from source: F32Elements) throws(LichenError) {
        guard source.count == count else {
            throw .shapeMismatch(operand: "source", dimension: 0, expected: count, got: source.count)
        }
        // safe: both ranges hold `count` values; update(from:) allows overlap only when identical,
        // which moving a range onto itself is.
        if source.pointer != pointer { pointer.update(from: source.pointer, count: count) }
    }

    /// The first index whose value is NaN or infinite, or nil.
    public func firstNonFiniteIndex() -> Int? {
        for i in 0..<count where !pointer[i].isFinite { return i }
        return nil
    }
}

extension TensorView {
    /// The values of this f32 view, for indexed access without pointers.
    ///
    /// - Parameter operand: the name used in the error.
    /// - Throws: `.unsupportedElementType(operand:type:)` unless the view is f32.
    /// - Note: Allocates nothing.
    public func f32Elements(_ operand: StaticString) throws(LichenError) -> F32Elements {
        try require(.f32, operand)
        return F32Elements(pointer: floats, count: shape.elementCount ?? 0)
    }

    /// A contiguous view of rows `start ..< start + count` of this view's outermost dimension,
    /// same type and inner dimensions (for a batch smaller than the buffer it was planned for).
    ///
    /// - Throws: `.invalidArgument` for a rank-0 view or a range outside `0...shape[0]`;
    ///   `.unsupportedElementType` for a rank-1 view of a block type.
    /// - Note: Allocates nothing.
    public func leadingRows(_ start: Int, count: Int) throws(LichenError) -> TensorView {
        guard shape.rank >= 1 else {
            throw .invalidArgument(name: "leadingRows.rank", value: 0, reason: "view has no outer dimension")
        }
        guard start >= 0, count >= 0, start <= shape[0], count <= shape[0] - start else {
            throw .invalidArgument(name: "leadingRows.count", value: count, reason: "rows lie outside the view")
        }
        if shape.rank == 1 && type.isQuantized {
            throw .unsupportedElementType(operand: "leadingRows", type: type)
        }
        var dims = shape
        dims[0] = count
        let step = shape.rank == 1 ? type.blockByteCount : stride(0)
        let offset = start * step
        // safe: start <= shape[0], so offset is at most the view's byte count, inside the buffer.
        return try TensorView(base: base + offset, byteCount: bufferByteCount - offset, type: type, shape: dims)
    }
}
