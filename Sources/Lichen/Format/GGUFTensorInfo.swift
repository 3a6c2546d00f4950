/// One tensor listed in a GGUF file, validated: its name, element type, shape (outermost
/// first, the reverse of ggml's `ne`) and where its bytes lie in the file.
public struct GGUFTensorInfo {
    /// The tensor's name (valid UTF-8, at most 64 bytes, unique in the file).
    public let name: String
    public let type: ElementType
    /// Outermost dimension first: ggml `ne = [n_in, n_out]` becomes `[n_out, n_in]`.
    public let shape: Shape
    /// Absolute byte offset of the tensor's first byte in the file.
    public let fileOffset: Int
    /// Bytes of tensor data (without the padding that follows it).
    public let byteCount: Int
    /// Byte offset of this tensor's info record in the file (where errors about it point).
    public let infoOffset: Int
    /// Byte offset of the record's uint64 data-offset field.
    let offsetFieldOffset: Int
    /// Byte range of the name inside the file.
    let nameStart: Int
    let nameLength: Int
}
