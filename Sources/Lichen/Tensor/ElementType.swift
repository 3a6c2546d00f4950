/// Element types of tensors, with ggml's type ids (GGUF stores these numbers).
///
/// `q8_0` and `q4_0` are ggml's block formats: 32 values per block with one fp16 scale,
/// 34 and 18 bytes a block. A quantized row must hold a whole number of blocks.
public enum ElementType: UInt32, Sendable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q8_0 = 8

    /// Values per storage unit: 1 for plain types, 32 for block formats.
    public var blockLength: Int {
        switch self {
        case .f32, .f16: return 1
        case .q4_0, .q8_0: return 32
        }
    }

    /// Bytes per storage unit (an element or a block).
    public var blockByteCount: Int {
        switch self {
        case .f32: return 4
        case .f16: return 2
        case .q4_0: return 18
        case .q8_0: return 34
        }
    }

    /// Required alignment of a view's base address, in bytes.
    public var alignment: Int {
        switch self {
        case .f32: return 4
        case .f16, .q4_0, .q8_0: return 2
        }
    }

    /// Whether the type is one of ggml's block formats.
    public var isQuantized: Bool { blockLength > 1 }

    /// Bytes of `count` values (`count` a multiple of `blockLength`); nil on overflow.
    public func byteCount(values count: Int) -> Int? {
        guard count >= 0, count % blockLength == 0 else { return nil }
        let (bytes, overflow) = (count / blockLength).multipliedReportingOverflow(by: blockByteCount)
        return overflow ? nil : bytes
    }

    /// ggml's lower-case name ("f32", "f16", "q4_0", "q8_0").
    public var name: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .q4_0: return "q4_0"
        case .q8_0: return "q8_0"
        }
    }
}

extension ElementType {
    /// Whether fp16 `bits` encode NaN or an infinity (all five exponent bits set).
    @inline(__always)
    public static func isNonFiniteHalf(_ bits: UInt16) -> Bool { bits & 0x7C00 == 0x7C00 }

    /// What `TensorView.firstNonFiniteValue()` counts for this type, for messages.
    public var nonFiniteUnit: StaticString {
        switch self {
        case .f32, .f16: return "element"
        case .q8_0: return "q8_0 block (fp16 scale)"
        case .q4_0: return "q4_0 block (fp16 scale)"
        }
    }
}
