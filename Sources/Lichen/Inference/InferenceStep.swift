import CRuntime

/// One step of an `InferenceModel`: a layer, or a run of layers fused at load, with every
/// pointer, size and kernel choice resolved, so running it is one switch and the kernel calls.
///
/// Storages are numbered as in `Graph`: 0 is the model input (the caller's frame, read in
/// place), k + 1 the output of step k's producing layer. Pointers into the planned region are
/// taken once after the region is reserved; `InferenceModel.forward` swaps in the caller's
/// input pointer per call.
enum InferenceStep {
    case conv(InferenceConv)
    case linear(InferenceLinear)
    case affine(InferenceAffine)
    case activation(InferenceActivation)
    case pool(InferencePool)
    case globalAvgPool(InferenceGlobalPool)
    case add(InferenceAdd)
    case softmax(InferenceSoftmax)
}

/// How a convolution computes its product.
enum InferenceConvMethod {
    /// f32 weights, few values per output (k <= `InferenceModel.smallDepth`): im2col (or the
    /// input itself for a 1x1 convolution) and the table's register-tiled `sgemm_small_k`, with
    /// bias and activation in the same pass.
    case smallDepth
    /// f32 weights: im2col, BLIS sgemm, then the table's `bias_act`.
    case blis
    /// q8_0 / q4_0 weight rows: the table's im2row (im2col, then 8 x 8 register transposes) into
    /// `[positions, depth]` rows, the quantized GEMM with
    /// the bias (activations quantized to Q8_0 per row on the fly), then the table's
    /// `transpose_bias_act` back to NCHW with the activation.
    case quantized
    /// q8_0 / q4_0 weights packed at load (`lcr_qconv_pack_weights`), groups 1, stride 1 along
    /// the width, and a table whose direct kernels are its own SIMD code (`qconv_native`): per
    /// chunk of output rows the table's `qconv_acts` quantizes the im2row rows straight from the
    /// NCHW input (no f32 rows), and `qconv_gemm` writes NCHW with bias, activation and, when a
    /// 2 x 2 stride-2 max pool follows, the pool (fused: the step's output is the pool's).
    case quantizedDirect
    /// f32 weights with at most `InferenceModel.smallDepth` values per output, stride 1, one
    /// group, under the same native-kernel condition: the table's `conv_f32_direct` reads the
    /// NCHW input in place (no im2col) and writes NCHW with bias, activation and the fused pool
    /// as `quantizedDirect` does.
    case f32Direct
}

struct InferenceConv {
    var input = 0, output = 0
    var method = InferenceConvMethod.blis
    var geometry = lcr_conv_geometry()
    /// Geometry of one group (channels = in / groups) for im2row.
    var groupGeometry = lcr_conv_geometry()
    var groups = 1
    var inChannels = 1, outChannels = 1, positions = 1, depth = 1, inPerSample = 1, outPerSample = 1
    /// A 1x1, stride-1, unpadded f32 convolution reads the input as its columns.
    var pointwise = false
    var act: Int32 = 0
    /// f32 weights `[outChannels, depth]` (folded), or quantized rows.
    var weightsF32: UnsafePointer<Float>? = nil
    var weightsQuantized: UnsafeRawPointer? = nil
    var weightType = ElementType.f32
    var weightRowBytes = 0
    var bias: UnsafePointer<Float>? = nil
    /// Planned scratch: columns (f32) or rows (quantized), the transposed product, GEMM scratch.
    var columns = -1, productT = -1, gemmScratch = -1
    /// Quantized: im2col columns `[depth, chunk positions]` that the table's im2row transposes into rows.
    var transposeScratch = -1
    /// Quantized: output rows per im2row + GEMM chunk, and the output height.
    var chunkRows = 1
    var outputHeight: Int64 = 1
    var gemmScratchBytes = 0
    /// Direct: packed weights, the activation panel scratch, the output width, and whether a
    /// 2 x 2 stride-2 max pool is fused (output `[outChannels, outputHeight / 2, outputWidth / 2]`).
    var packed: UnsafeRawPointer? = nil
    var actsScratch = -1
    var outputWidth: Int64 = 1
    var pool = false
}

struct InferenceLinear {
    var input = 0, output = 0
    var inFeatures = 1, outFeatures = 1, rowsPerSample = 1
    var act: Int32 = 0
    var weightsF32: UnsafePointer<Float>? = nil
    var weightsQuantized: UnsafeRawPointer? = nil
    var weightType = ElementType.f32
    var bias: UnsafePointer<Float>? = nil
    var gemmScratch = -1
    var gemmScratchBytes = 0
    /// Quantized weights packed for the table's `qgemv` (when its direct kernels are native);
    /// the activation is fused there.
    var packed: UnsafeRawPointer? = nil
}

/// Batch norm on running statistics that could not be folded into a producer:
/// `y[c, s] = x[c, s] * scale[c] + shift[c]`, then the activation.
struct InferenceAffine {
    var input = 0, output = 0
    var channels = 1, spatial = 1
    var scale: UnsafePointer<Float>? = nil
    var shift: UnsafePointer<Float>? = nil
    var act: Int32 = 0
}

struct InferenceActivation {
    var input = 0, output = 0
    var kind = LayerKind.relu
    var perSample = 1
}

struct InferencePool {
    var input = 0, output = 0
    var geometry = lcr_pool_geometry()
    var isMax = true
    var act: Int32 = 0
    var inPerSample = 1, outPerSample = 1
}

struct InferenceGlobalPool {
    var input = 0, output = 0
    var channels = 1, spatial = 1
}

struct InferenceAdd {
    var a = 0, b = 0, output = 0
    var perSample = 1
}

struct InferenceSoftmax {
    var input = 0, output = 0
    var features = 1
}
