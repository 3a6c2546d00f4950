/// The type of a GGUF metadata value, with the ids GGUF stores (uint32 in the file).
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0
    case int8 = 1
    case uint16 = 2
    case int16 = 3
    case uint32 = 4
    case int32 = 5
    case float32 = 6
    /// One byte, 0 or 1.
    case bool = 7
    /// uint64 byte length, then that many bytes of UTF-8 (no terminator).
    case string = 8
    /// uint32 element type, uint64 count, then the elements (arrays may nest).
    case array = 9
    case uint64 = 10
    case int64 = 11
    case float64 = 12

    /// gguf's lower-case name of the type ("uint32", "string", ...).
    public var name: StaticString {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .float32: return "float32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float64: return "float64"
        }
    }

    /// Bytes of one value of a fixed-size type; nil for `string` and `array`.
    public var fixedByteCount: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The fewest bytes one value of this type takes in a file (an empty string or array
    /// still has its length fields). Used to bound counts by the bytes left.
    var minimumByteCount: Int {
        switch self {
        case .string: return 8
        case .array: return 12
        default: return fixedByteCount ?? 1
        }
    }

    /// Whether the type is one of the integer types (not bool).
    var isInteger: Bool {
        switch self {
        case .uint8, .int8, .uint16, .int16, .uint32, .int32, .uint64, .int64: return true
        default: return false
        }
    }
}

/// A GGUF metadata value held in memory: what `GGUFWriter` writes and what
/// `GGUFFile.value(_:)` returns. Arrays carry their element type, so an empty array keeps it.
///
/// Equality compares floats by bit pattern, so a value read back equals the value written
/// even when it is a NaN.
public enum GGUFMetadataValue: Equatable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    /// Elements must all have type `elementType` (checked by `GGUFWriter.add`).
    case array(elementType: GGUFValueType, elements: [GGUFMetadataValue])
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    /// The value's GGUF type.
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }

    public static func == (lhs: GGUFMetadataValue, rhs: GGUFMetadataValue) -> Bool {
        switch (lhs, rhs) {
        case (.uint8(let a), .uint8(let b)): return a == b
        case (.int8(let a), .int8(let b)): return a == b
        case (.uint16(let a), .uint16(let b)): return a == b
        case (.int16(let a), .int16(let b)): return a == b
        case (.uint32(let a), .uint32(let b)): return a == b
        case (.int32(let a), .int32(let b)): return a == b
        case (.float32(let a), .float32(let b)): return a.bitPattern == b.bitPattern
        case (.bool(let a), .bool(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let ta, let a), .array(let tb, let b)): return ta == tb && a == b
        case (.uint64(let a), .uint64(let b)): return a == b
        case (.int64(let a), .int64(let b)): return a == b
        case (.float64(let a), .float64(let b)): return a.bitPattern == b.bitPattern
        default: return false
        }
    }
}
