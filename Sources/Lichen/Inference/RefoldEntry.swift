/// One batch norm layer of a refoldable `InferenceModel` (`InferenceModel+Refold.swift`): where
/// its folded values live in the fused model, and the load-time values a refold starts from.
///
/// Recorded by `InferenceBuilder` for every batch norm the fused model folds into a convolution
/// or linear layer, and for every one it runs as a per-channel affine step. The destinations are
/// the fused model's own copies in the arena's low end (never the file mapping: a layer is copied
/// exactly when a norm is folded into it), so a refold may write them.
struct RefoldEntry {
    /// Where the folded per-channel factor `s_c` goes.
    enum Target {
        /// f32 weight rows `[channels, depth]`, folded copy: `w'[c, k] = s_c * w[c, k]`.
        case f32(UnsafeMutablePointer<Float>)
        /// q8_0 / q4_0 rows `[channels, depth]`, folded copy: each block's fp16 scale
        /// `d' = fp16(f32(d) * s_c)`; the codes were copied at load and stay.
        case blocks(UnsafeMutableRawPointer, rowBytes: Int)
        /// Weights packed for the direct kernels (`lcr_qconv_pack_weights` /
        /// `lcr_qgemv_pack_weights`): block b of channel c has its scale as f32 at
        /// `scales[b * stride + c]`, written as `f32(fp16(f32(d) * s_c))`, the value packing the
        /// load-time fold gives; codes and code-sum corrections do not depend on the scale.
        case packed(UnsafeMutablePointer<Float>, stride: Int)
        /// An affine step's per-channel scale (the norm could not be folded).
        case affine(UnsafeMutablePointer<Float>)
    }

    /// Spec index of the convolution or linear layer the norm is folded into (-1: affine step).
    let producer: Int
    /// Spec index of the batch norm layer.
    let norm: Int
    let channels: Int
    /// Values per weight row (0 for an affine step).
    let depth: Int
    let epsilon: Float
    let target: Target
    /// The folded bias, or the affine step's shift: `Float((b - mean) * s + beta)`.
    let bias: UnsafeMutablePointer<Float>
    /// The producer's weight and bias as loaded (views of the build's store; nil for an affine
    /// step, and the bias nil for a producer without one).
    let weight: TensorView?
    let layerBias: TensorView?
    /// First of this entry's `channels` floats in the model's factor buffers.
    let factorOffset: Int

    /// Element type of the weights (f32 for an affine step).
    var weightType: ElementType { weight?.type ?? .f32 }
}
