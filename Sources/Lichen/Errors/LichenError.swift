/// Every failure Lichen reports. Each case says what went wrong and where, in plain values,
/// so the message can be built without reflection (Embedded Swift has none).
///
/// Input a caller, a file or a socket hands Lichen never traps: it comes back as one of these
/// and the runtime keeps the state it had before the call.
public enum LichenError: Error, Equatable {
    /// A request for `asked` bytes when only `left` remain in the budget.
    case budgetExceeded(asked: Int, left: Int)
    /// Operand `operand` has `got` along dimension `dimension` where `expected` was required.
    case shapeMismatch(operand: StaticString, dimension: Int, expected: Int, got: Int)
    /// Operand `operand` needs `needed` bytes but its buffer holds `available`.
    case bufferTooSmall(operand: StaticString, needed: Int, available: Int)
    /// Operand `operand` starts at `address`, which is not a multiple of `alignment`.
    case misaligned(operand: StaticString, address: UInt, alignment: Int)
    /// A view of `operand` would reach byte `end` of a buffer of `limit` bytes.
    case outOfBounds(operand: StaticString, end: Int, limit: Int)
    /// Operand `operand` has an element type the operation does not take.
    case unsupportedElementType(operand: StaticString, type: ElementType)
    /// Argument `name` has value `value`, which is not allowed: `reason`.
    case invalidArgument(name: StaticString, value: Int, reason: StaticString)
    /// An operating-system call failed with `errno`.
    case systemError(call: StaticString, errno: Int32)
    /// An input file is malformed at byte `offset`: `reason`.
    case malformedFile(offset: Int, reason: StaticString)
    /// An input file of kind `format` has version `version`, which Lichen does not read.
    case unsupportedVersion(format: StaticString, version: Int)
    /// Tensor `tensor` in a model file has ggml type id `type`, which Lichen does not take.
    case unsupportedTensorType(tensor: String, type: Int)
    /// No `kind` (metadata key, tensor) named `name`.
    case notFound(kind: StaticString, name: String)
    /// Metadata value `key` has type `got` where `expected` was asked for.
    case valueTypeMismatch(key: String, expected: StaticString, got: StaticString)
    /// A model description is invalid at `key` (a `lichen.*` metadata key, e.g.
    /// `lichen.layer.3.inputs`), whose value is `value` (as text): `reason`.
    case invalidModel(key: String, value: String, reason: StaticString)
    /// Parameter tensor `tensor` has shape `got` (as text) where the model description needs `expected`.
    case parameterShapeMismatch(tensor: String, expected: String, got: String)
    /// Two `kind`s (parameters, ...) share the name `name`.
    case duplicateName(kind: StaticString, name: String)
    /// Operand `operand` holds a NaN or infinite value at element `index`.
    case nonFiniteValue(operand: StaticString, index: Int)
    /// The file at `path` is corrupt or truncated at byte `offset` (of the file, or of its
    /// decompressed content where `reason` says so): `reason`.
    case corruptFile(path: String, offset: Int, reason: StaticString)
    /// System call `call` on the file at `path` failed with `errno`.
    case fileError(path: String, call: StaticString, errno: Int32)
    /// Number `name` is `value` (as text), outside what may be taken: `allowed` (a range, or
    /// "an integer", ...). Untrusted and user-given numbers are converted through `Checked`.
    case outOfRange(name: String, value: String, allowed: String)
    /// The file at `path` is not taken before anything is read from it: `reason` (not a
    /// regular file, a symbolic link, a NUL byte in the path), or it holds `byteCount` bytes
    /// where at most `limit` may be read (0 and 0 when sizes are not the reason).
    case fileRefused(path: String, reason: StaticString, byteCount: Int, limit: Int)
    /// Tensor `tensor` holds a NaN or infinite value at `unit` `index` ("element" for f32/f16,
    /// "q8_0 block (fp16 scale)" for a quantized block's scale).
    case nonFiniteTensor(tensor: String, unit: StaticString, index: Int)
}

extension LichenError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .budgetExceeded(let asked, let left):
            return "budget exceeded: asked for \(asked) bytes, \(left) bytes left"
        case .shapeMismatch(let operand, let dimension, let expected, let got):
            return "shape mismatch: \(text(operand)) dimension \(dimension) is \(got), expected \(expected)"
        case .bufferTooSmall(let operand, let needed, let available):
            return "buffer too small: \(text(operand)) needs \(needed) bytes, has \(available)"
        case .misaligned(let operand, let address, let alignment):
            return "misaligned: \(text(operand)) at address \(address) is not \(alignment)-byte aligned"
        case .outOfBounds(let operand, let end, let limit):
            return "out of bounds: \(text(operand)) reaches byte \(end) of a \(limit)-byte buffer"
        case .unsupportedElementType(let operand, let type):
            return "unsupported element type: \(text(operand)) is \(type.name)"
        case .invalidArgument(let name, let value, let reason):
            return "invalid argument: \(text(name)) = \(value): \(text(reason))"
        case .systemError(let call, let errno):
            return "system error: \(text(call)) failed with errno \(errno)"
        case .malformedFile(let offset, let reason):
            return "malformed file at byte offset \(offset): \(text(reason))"
        case .unsupportedVersion(let format, let version):
            return "unsupported version: \(text(format)) version \(version)"
        case .unsupportedTensorType(let tensor, let type):
            return "unsupported tensor type: tensor '\(tensor)' has ggml type \(type)"
        case .notFound(let kind, let name):
            return "not found: \(text(kind)) '\(name)'"
        case .valueTypeMismatch(let key, let expected, let got):
            return "value type mismatch: '\(key)' is \(text(got)), expected \(text(expected))"
        case .invalidModel(let key, let value, let reason):
            return "invalid model: '\(key)' = \(value): \(text(reason))"
        case .parameterShapeMismatch(let tensor, let expected, let got):
            return "parameter shape mismatch: tensor '\(tensor)' has shape \(got), expected \(expected)"
        case .duplicateName(let kind, let name):
            return "duplicate name: two \(text(kind))s are named '\(name)'"
        case .nonFiniteValue(let operand, let index):
            return "non-finite value: \(text(operand)) element \(index) is NaN or infinite"
        case .corruptFile(let path, let offset, let reason):
            return "corrupt file '\(path)' at byte offset \(offset): \(text(reason))"
        case .fileError(let path, let call, let errno):
            return "file error: \(text(call)) on '\(path)' failed with errno \(errno)"
        case .outOfRange(let name, let value, let allowed):
            return "out of range: \(name) = \(value), allowed \(allowed)"
        case .nonFiniteTensor(let tensor, let unit, let index):
            return "non-finite value: tensor '\(tensor)' \(text(unit)) \(index) is NaN or infinite"
        case .fileRefused(let path, let reason, let byteCount, let limit):
            if byteCount == 0 && limit == 0 { return "file refused: '\(path)': \(text(reason))" }
            return "file refused: '\(path)' holds \(byteCount) bytes, at most \(limit) may be read: \(text(reason))"
        }
    }
}

extension LichenError {
    /// Equality by case and values; `StaticString`s compare by their text.
    public static func == (lhs: LichenError, rhs: LichenError) -> Bool {
        lhs.description == rhs.description
    }
}

/// The text of a `StaticString`, without reflection.
@inline(__always)
func text(_ s: StaticString) -> String {
    s.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
}
