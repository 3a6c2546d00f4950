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
        UnsafePointer(pointer).firstNonFiniteIndex(count: count)
    }

    /// `self[i] = a[i] - s * b[i]` for every i: the product rounded, then the difference (Swift
    /// contracts no multiply-add), so the values are bit for bit those of the indexed loop
    /// `SGD.step` runs, in a loop the compiler vectorises. `a` may be `self`.
    /// - Throws: `.shapeMismatch(operand: "a" or "b", ...)` when a count differs.
    /// - Note: Allocates nothing.
    public func assignDifference(_ a: F32Elements, scaled s: Float, _ b: F32Elements) throws(LichenError) {
        guard a.count == count else { throw .shapeMismatch(operand: "a", dimension: 0, expected: count, got: a.count) }
        guard b.count == count else { throw .shapeMismatch(operand: "b", dimension: 0, expected: count, got: b.count) }
        // safe: the three ranges hold `count` values each; an element is read before it is written.
        let y = pointer, x = a.pointer, g = b.pointer
        for i in 0..<count { y[i] = x[i] - s * g[i] }
    }
}

extension F32Elements {
    /// `self[i] = a[i] - s0 * b[i]` and `other[i] = a[i] - s1 * b[i]` in one pass over `a` and
    /// `b`: each value bit for bit what `assignDifference` writes.
    /// - Throws: `.shapeMismatch(operand: "other", "a" or "b", ...)` when a count differs.
    /// - Note: Allocates nothing.
    public func assignDifferences(
        _ other: F32Elements, _ a: F32Elements, scaled s0: Float, _ s1: Float, _ b: F32Elements
    ) throws(LichenError) {
        guard other.count == count else { throw .shapeMismatch(operand: "other", dimension: 0, expected: count, got: other.count) }
        guard a.count == count else { throw .shapeMismatch(operand: "a", dimension: 0, expected: count, got: a.count) }
        guard b.count == count else { throw .shapeMismatch(operand: "b", dimension: 0, expected: count, got: b.count) }
        // safe: the four ranges hold `count` values each.
        let y0 = pointer, y1 = other.pointer, x = a.pointer, g = b.pointer
        for i in 0..<count {
            let v = x[i], d = g[i]
            y0[i] = v - s0 * d
            y1[i] = v - s1 * d
        }
    }

    /// `self[i] -= s * g[i]`, then `g[i] = 0`, in one pass: an SGD step that also clears the
    /// gradient it used (the values bit for bit `assignDifference(self, scaled: s, g)`'s).
    /// - Throws: `.shapeMismatch(operand: "g", ...)` when the counts differ.
    /// - Note: Allocates nothing.
    public func subtractScaled(_ s: Float, clearing g: F32Elements) throws(LichenError) {
        guard g.count == count else { throw .shapeMismatch(operand: "g", dimension: 0, expected: count, got: g.count) }
        // safe: both ranges hold `count` values; each gradient value is read before it is cleared.
        let y = pointer, d = g.pointer
        for i in 0..<count {
            y[i] = y[i] - s * d[i]
            d[i] = 0
        }
    }
}

extension UnsafePointer where Pointee == Float {
    /// The first of `count` values from here that is NaN or infinite, or nil. Blocks of 256 are
    /// screened by the largest exponent field (an integer reduction that vectorises); only a
    /// block holding an all-ones exponent is searched value by value.
    @inlinable
    func firstNonFiniteIndex(count: Int) -> Int? {
        let block = 256
        var start = 0
        while start < count {
            let end = Swift.min(start + block, count)
            var exponents: UInt32 = 0
            for i in start..<end { exponents = Swift.max(exponents, self[i].bitPattern & 0x7f80_0000) }
            if exponents == 0x7f80_0000 {
                for i in start..<end where !self[i].isFinite { return i }
            }
            start = end
        }
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
