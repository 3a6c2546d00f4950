/// Kernel entry points that take their scratch as a planned `TensorView` instead of a raw
/// buffer, so callers outside the unsafe folders never hold a pointer.
extension Kernels {
    /// `gemm(weights:input:bias:output:scratch:)` with the scratch given as a view (any type;
    /// its `byteCount` bytes are used).
    ///
    /// - Throws: as `gemm(weights:input:bias:output:scratch:)`.
    /// - Note: Allocates nothing.
    public func gemm(
        weights: TensorView, input: TensorView, bias: TensorView? = nil, output: TensorView, scratchView: TensorView
    ) throws(LichenError) {
        // safe: the view's byteCount bytes lie inside its validated buffer.
        let raw = UnsafeMutableRawBufferPointer(start: scratchView.base, count: scratchView.byteCount)
        try gemm(weights: weights, input: input, bias: bias, output: output, scratch: raw)
    }
}
