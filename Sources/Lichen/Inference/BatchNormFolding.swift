/// Folding batch norm on running statistics into the convolution or linear layer before it.
///
/// For output channel c, batch norm computes `gamma_c (z - mean_c) / sqrt(var_c + eps) + beta_c`
/// of the layer's output z = w_c . x + b_c. With `s_c = gamma_c / sqrt(var_c + eps)` (in Double,
/// then rounded to f32) the folded layer is
///
/// - f32 weights: `w'_c = s_c * w_c` (one f32 product per weight, rounded to nearest);
/// - q8_0 / q4_0 weights: the codes stay as they are and each block's fp16 scale becomes
///   `d' = fp16(f32(d) * s_c)`: the product in f32, rounded once to fp16 (round to nearest even).
///   The folded weight `d' * q` is then `s_c * d * q` up to that one rounding (relative error at
///   most 2^-11), where folding in f32 and quantizing again would add a second quantization
///   error to every weight. A product beyond fp16's range (|d'| > 65504) is refused;
/// - bias: `b'_c = Float((b_c - mean_c) * s_c + beta_c)` in Double (b_c = 0 without a bias).
public enum BatchNormFolding {
    /// The per-channel factors `s_c` (f32) and the folded bias `b'_c`.
    ///
    /// - Parameters:
    ///   - bias: the layer's bias (f32, `channels` values) or nil.
    ///   - gamma, beta, mean, variance: batch norm's weight, bias and running statistics.
    /// - Throws: `.invalidModel` (key = `<norm>.running_var`) when `var + eps <= 0` or a factor is not finite.
    public static func factors(
        channels: Int, bias: TensorView?, gamma: TensorView, beta: TensorView, mean: TensorView, variance: TensorView,
        epsilon: Float, normName: String
    ) throws(LichenError) -> (scale: [Float], bias: [Float]) {
        let g = try gamma.f32Elements("weight"), be = try beta.f32Elements("bias")
        let m = try mean.f32Elements("running_mean"), v = try variance.f32Elements("running_var")
        let b: F32Elements? = try bias?.f32Elements("bias")
        var scale = [Float](repeating: 0, count: channels)
        var folded = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let f = channelFactor(gamma: g[c], beta: be[c], mean: m[c], variance: v[c], bias: b?[c] ?? 0, epsilon: epsilon)
            switch f.failure {
            case .none: break
            case .variance:
                throw .invalidModel(key: normName + ".running_var", value: floatText(v[c]), reason: "variance + epsilon must be > 0")
            case .factor:
                throw .invalidModel(key: normName + ".running_var", value: floatText(v[c]), reason: "folded factor is not finite")
            }
            scale[c] = f.scale
            folded[c] = f.bias
        }
        return (scale, folded)
    }

    /// Why a channel cannot be folded.
    enum ChannelFailure {
        case none
        /// `var + eps <= 0` (or NaN).
        case variance
        /// `s_c` or the folded bias is not finite.
        case factor
    }

    /// One channel's factor `s_c = gamma / sqrt(var + eps)` (Double, then f32) and folded bias
    /// `Float((bias - mean) * s_c + beta)` (with the Double `s_c`): the arithmetic of `factors`
    /// and of `InferenceModel.refold`, so a refold of the load-time values gives the same bits.
    @inline(__always)
    static func channelFactor(gamma: Float, beta: Float, mean: Float, variance: Float, bias: Float, epsilon: Float)
        -> (scale: Float, bias: Float, failure: ChannelFailure)
    {
        let denominator = Double(variance) + Double(epsilon)
        guard denominator > 0 else { return (0, 0, .variance) }
        let s = Double(gamma) / denominator.squareRoot()
        let fb = (Double(bias) - Double(mean)) * s + Double(beta)
        guard s.isFinite && Float(s).isFinite && Float(fb).isFinite else { return (0, 0, .factor) }
        return (Float(s), Float(fb), .none)
    }

    /// `dst[c, k] = scale[c] * src[c, k]` for f32 rows `[channels, depth]`.
    public static func foldF32(_ src: TensorView, into dst: UnsafeMutablePointer<Float>, channels: Int, depth: Int, scale: [Float])
        throws(LichenError)
    {
        let w = try src.f32Elements("weight")
        for c in 0..<channels {
            let s = scale[c]
            for k in 0..<depth { dst[c * depth + k] = w[c * depth + k] * s }
        }
    }

    /// Copies quantized rows `[channels, depth]` (q8_0 or q4_0) to `dst` with every block's fp16
    /// scale multiplied by its row's factor: `d' = fp16(f32(d) * scale[c])`; codes unchanged.
    ///
    /// - Throws: `.invalidModel` (key = `<norm>.weight`) when a folded scale overflows fp16.
    public static func foldBlocks(
        _ src: TensorView, into dst: UnsafeMutableRawPointer, channels: Int, scale: [Float], normName: String
    ) throws(LichenError) {
        let rowBytes = src.rowByteCount
        let blockBytes = src.type.blockByteCount
        let blocks = rowBytes / blockBytes
        // safe: src holds `channels` rows of `rowBytes` (validated by the builder); dst was
        // allocated with channels * rowBytes bytes.
        dst.copyMemory(from: UnsafeRawPointer(src.base), byteCount: channels * rowBytes)
        for c in 0..<channels {
            for b in 0..<blocks {
                let p = dst + c * rowBytes + b * blockBytes
                let d = Kernels.float(fromHalfBits: UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
                let product = d * scale[c]
                guard product.isFinite && abs(product) <= 65504 else {
                    throw .invalidModel(key: normName + ".weight", value: floatText(scale[c]),
                                        reason: "folded block scale overflows fp16")
                }
                p.storeBytes(of: Kernels.halfBits(from: product).littleEndian, as: UInt16.self)
            }
        }
    }
}
