/// A non-owning view of tensor data: base address, element type, shape and byte strides,
/// over memory someone else owns (the arena, an mmapped model file, a caller's buffer).
///
/// A view is checked once, when it is made: its base is aligned for its type and every byte
/// it can reach lies inside the buffer it was made over. Kernels then trust it.
///
/// Block-quantized types (`q8_0`, `q4_0`) store the innermost dimension as contiguous blocks
/// of 32 values; that dimension must be a multiple of 32 and its stride is the block layout.
public struct TensorView {
    /// First byte of the view.
    public let base: UnsafeMutableRawPointer
    /// Bytes from `base` to the end of the buffer the view was made over.
    public let bufferByteCount: Int
    public let type: ElementType
    public let shape: Shape
    /// Byte distance between consecutive indices of each dimension (outermost first).
    /// The innermost stride is the element size (plain types) or 0 (block types: rows are packed).
    public let strides: (Int, Int, Int, Int)

    /// A contiguous row-major view of `shape` at `base`, inside a buffer of `byteCount` bytes.
    ///
    /// - Throws: `.misaligned` if `base` is not aligned for `type`; `.shapeMismatch` if a block
    ///   type's innermost dimension is not a multiple of 32; `.bufferTooSmall` if the data does
    ///   not fit in `byteCount`; `.invalidArgument` if the element or byte count overflows `Int`
    ///   or `byteCount` is negative.
    /// - Note: Allocates nothing.
    public init(base: UnsafeMutableRawPointer, byteCount: Int, type: ElementType, shape: Shape) throws(LichenError) {
        guard byteCount >= 0 else {
            throw .invalidArgument(name: "byteCount", value: byteCount, reason: "must be >= 0")
        }
        let address = UInt(bitPattern: base)
        guard address % UInt(type.alignment) == 0 else {
            throw .misaligned(operand: "tensor", address: address, alignment: type.alignment)
        }
        // Every count derived from the shape (rowCount, byteCount) must fit in an Int, even
        // when a zero dimension makes the byte size 0.
        guard shape.elementCount != nil else {
            throw .invalidArgument(name: "shape", value: shape.rank, reason: "element count overflows")
        }
        let inner = shape.last
        guard inner % type.blockLength == 0 else {
            throw .shapeMismatch(operand: "tensor", dimension: max(shape.rank - 1, 0),
                                 expected: (inner / type.blockLength + 1) * type.blockLength, got: inner)
        }
        guard let rowBytes = type.byteCount(values: inner) else {
            throw .invalidArgument(name: "shape", value: inner, reason: "row size overflows")
        }
        // Contiguous row-major strides, innermost first; overflow is an error, not a trap.
        var s = (0, 0, 0, 0)
        var stride = rowBytes
        var i = shape.rank - 2
        while i >= 0 {
            switch i {
            case 0: s.0 = stride
            case 1: s.1 = stride
            default: s.2 = stride
            }
            let (p, o) = stride.multipliedReportingOverflow(by: shape[i])
            if o { throw .invalidArgument(name: "shape", value: shape[i], reason: "tensor size overflows") }
            stride = p
            i -= 1
        }
        if shape.rank > 0 {
            let innermost = type.isQuantized ? 0 : type.blockByteCount
            switch shape.rank - 1 {
            case 0: s.0 = innermost
            case 1: s.1 = innermost
            case 2: s.2 = innermost
            default: s.3 = innermost
            }
        }
        let total = shape.rank == 0 ? type.blockByteCount : (shape.elementCount == 0 ? 0 : stride)
        guard total <= byteCount else {
            throw .bufferTooSmall(operand: "tensor", needed: total, available: byteCount)
        }
        self.base = base
        self.bufferByteCount = byteCount
        self.type = type
        self.shape = shape
        self.strides = s
    }

    /// Stride of dimension `i` in bytes.
    public func stride(_ i: Int) -> Int {
        switch i {
        case 0: return strides.0
        case 1: return strides.1
        case 2: return strides.2
        case 3: return strides.3
        default: return 0
        }
    }

    /// Bytes of one innermost row.
    public var rowByteCount: Int { (shape.last / type.blockLength) * type.blockByteCount }

    /// Number of innermost rows (product of all dimensions but the last).
    public var rowCount: Int {
        var n = 1
        for i in 0..<max(shape.rank - 1, 0) { n *= shape[i] }
        return n
    }

    /// Bytes the view spans: from `base` to the end of its last element.
    public var byteCount: Int { shape.elementCount == 0 ? 0 : rowCount * rowByteCount }

    /// The base as a float pointer. Only for `f32` views (checked by callers).
    public var floats: UnsafeMutablePointer<Float> {
        // safe: alignment checked at init for f32 views; callers check `type == .f32`.
        base.assumingMemoryBound(to: Float.self)
    }

    /// Throws `.unsupportedElementType` unless the view has `type`.
    @inline(__always)
    public func require(_ type: ElementType, _ operand: StaticString) throws(LichenError) {
        guard self.type == type else { throw .unsupportedElementType(operand: operand, type: self.type) }
    }
}
