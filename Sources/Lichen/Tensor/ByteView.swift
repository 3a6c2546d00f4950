/// A non-owning view of `count` bytes (a decompressed data file, label bytes, an index table),
/// for code outside the pointer-holding folders. Reads of input data go through the throwing
/// readers (`byte(at:)`, `bigEndianUInt32(at:)`), which name the offset; the subscripts are for
/// indices a caller has already validated and trap when out of range (a bug, not input).
/// - Note: Allocates nothing.
public struct ByteView {
    // safe: nil only when count == 0; otherwise `count` bytes from base belong to the view.
    @usableFromInline let base: UnsafeMutableRawPointer?
    /// Number of bytes.
    public let count: Int

    /// A view of `byteCount` bytes at `base`, which the caller owns and keeps alive.
    /// - Throws: `.invalidArgument` for a negative `byteCount`.
    public init(base: UnsafeMutableRawPointer, byteCount: Int) throws(LichenError) {
        guard byteCount >= 0 else {
            throw .invalidArgument(name: "ByteView.byteCount", value: byteCount, reason: "must be >= 0")
        }
        self.base = base
        self.count = byteCount
    }

    private init(unchecked base: UnsafeMutableRawPointer?, count: Int) {
        self.base = base
        self.count = count
    }

    /// An empty view.
    public static var empty: ByteView { ByteView(unchecked: nil, count: 0) }

    /// `byteCount` bytes from `arena`'s low end (they live as long as the arena), zero-filled.
    /// - Throws: `.budgetExceeded`, `.invalidArgument` (as `Arena.allocatePersistent`).
    public static func allocate(byteCount: Int, from arena: Arena, alignment: Int = Arena.defaultAlignment)
        throws(LichenError) -> ByteView
    {
        let p = try arena.allocatePersistent(byteCount: byteCount, alignment: alignment)
        // safe: the arena just gave byteCount bytes at p.
        p.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
        return ByteView(unchecked: p, count: byteCount)
    }

    /// Byte `index` (0 ..< count); traps when out of range.
    @inlinable
    public subscript(index: Int) -> UInt8 {
        get {
            precondition(index >= 0 && index < count, "ByteView index out of range")
            // safe: index checked against count above.
            return base.unsafelyUnwrapped.load(fromByteOffset: index, as: UInt8.self)
        }
        nonmutating set {
            precondition(index >= 0 && index < count, "ByteView index out of range")
            base.unsafelyUnwrapped.storeBytes(of: newValue, toByteOffset: index, as: UInt8.self)
        }
    }

    /// Byte at `offset`.
    /// - Throws: `.malformedFile(offset:reason:)` when `offset` lies outside the view.
    public func byte(at offset: Int) throws(LichenError) -> UInt8 {
        guard offset >= 0 && offset < count else { throw .malformedFile(offset: offset, reason: "data ends before this byte") }
        return self[offset]
    }

    /// The big-endian 32-bit value at `offset ..< offset + 4`.
    /// - Throws: `.malformedFile(offset:reason:)` (offset = where the field starts) when the
    ///   view ends inside the field.
    public func bigEndianUInt32(at offset: Int) throws(LichenError) -> UInt32 {
        guard offset >= 0 && offset <= count - 4 else {
            throw .malformedFile(offset: offset, reason: "data ends inside a 4-byte field")
        }
        return UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8
            | UInt32(self[offset + 3])
    }

    /// The 32-bit value in native byte order at slot `index` (byte offset 4 * index); traps
    /// when the slot is out of range. For index tables a caller built itself.
    @inlinable
    public func uint32(slot index: Int) -> UInt32 {
        precondition(index >= 0 && index < count / 4, "ByteView slot out of range")
        // safe: 4 * index + 4 <= count.
        return base.unsafelyUnwrapped.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)
    }

    /// Stores `value` at slot `index` (byte offset 4 * index); traps when out of range.
    @inlinable
    public func setUInt32(_ value: UInt32, slot index: Int) {
        precondition(index >= 0 && index < count / 4, "ByteView slot out of range")
        // safe: 4 * index + 4 <= count.
        base.unsafelyUnwrapped.storeBytes(of: value, toByteOffset: 4 * index, as: UInt32.self)
    }

    /// Bytes `offset ..< offset + byteCount` as their own view.
    /// - Throws: `.malformedFile(offset:reason:)` when the range leaves the view.
    public func slice(_ offset: Int, byteCount: Int) throws(LichenError) -> ByteView {
        guard offset >= 0, byteCount >= 0, offset <= count, byteCount <= count - offset else {
            throw .malformedFile(offset: offset, reason: "range runs past the end of the data")
        }
        if byteCount == 0 { return .empty }
        // safe: the range lies inside this view.
        return ByteView(unchecked: base.unsafelyUnwrapped + offset, count: byteCount)
    }

    /// Sets every byte to `value`.
    public func fill(_ value: UInt8) {
        guard let base, count > 0 else { return }
        // safe: count bytes from base belong to the view.
        base.initializeMemory(as: UInt8.self, repeating: value, count: count)
    }

    /// Writes `n` f32 values `Float(byte[offset + i]) / divisor` (an image's pixels, normalised;
    /// a true division, as `tensor.float().div(255)` does) into `values[start ..< start + n]`.
    /// - Throws: `.malformedFile` when the bytes leave this view; `.invalidArgument` when the
    ///   destination range leaves `values`.
    public func writeFloats(
        from offset: Int, count n: Int, dividedBy divisor: Float, into values: F32Elements, at start: Int
    ) throws(LichenError) {
        guard offset >= 0, n >= 0, offset <= count, n <= count - offset else {
            throw .malformedFile(offset: offset, reason: "range runs past the end of the data")
        }
        guard start >= 0, start <= values.count, n <= values.count - start else {
            throw .invalidArgument(name: "writeFloats.start", value: start, reason: "destination range leaves the view")
        }
        guard n > 0, let base else { return }
        // safe: both ranges checked above.
        let src = UnsafeRawPointer(base + offset).assumingMemoryBound(to: UInt8.self)
        let dst = values.pointer + start
        for i in 0..<n { dst[i] = Float(src[i]) / divisor }
    }
}
