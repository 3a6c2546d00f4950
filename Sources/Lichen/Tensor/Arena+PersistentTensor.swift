extension Arena {
    /// A zero-filled, contiguous view of `shape` and `type` in `byteCount` bytes from the low end
    /// (lives as long as the arena): optimizer state, loss scratch, data buffers.
    ///
    /// - Throws: `.invalidArgument` when the size overflows; `.budgetExceeded(asked:left:)`.
    /// - Note: The view's buffer is exactly its data; 64-byte aligned.
    public func persistentTensor(_ type: ElementType, _ shape: Shape) throws(LichenError) -> TensorView {
        guard let count = shape.elementCount, let bytes = type.byteCount(values: count) else {
            throw .invalidArgument(name: "persistentTensor.shape", value: shape.rank, reason: "size overflows or is not whole blocks")
        }
        let p = try allocatePersistent(byteCount: bytes, alignment: 64)
        // safe: the arena just gave `bytes` bytes at p.
        p.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return try TensorView(base: p, byteCount: bytes, type: type, shape: shape)
    }
}
