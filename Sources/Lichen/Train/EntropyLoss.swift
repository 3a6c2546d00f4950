/// Shannon entropy of the softmax, mean over the batch (Tent's loss):
///
///     L = (1/B) Σ_b H(p_b),   H(p) = −Σ_k p_k log p_k,   p_b = softmax(z_b)
///     ∂L/∂z_bj = −p_bj (log p_bj + H(p_b)) / B
///
/// log p comes from the kernels' log-softmax, so classes whose probability underflows to 0
/// contribute 0 rather than NaN.
///
/// - Note: Scratch (two `[maximumBatch, classes]` f32 buffers) comes from the arena at
///   construction; `compute` allocates nothing.
public struct EntropyLoss {
    public let classes: Int
    public let maximumBatch: Int
    private let kernels: Kernels
    private let scratch: LossScratch

    /// - Throws: `.invalidArgument` for a batch or class count < 1; `.budgetExceeded`.
    public init(maximumBatch: Int, classes: Int, arena: Arena, kernels: Kernels = .best) throws(LichenError) {
        scratch = try LossScratch(maximumBatch: maximumBatch, classes: classes, count: 2, arena: arena)
        self.classes = classes
        self.maximumBatch = maximumBatch
        self.kernels = kernels
    }

    /// The mean entropy over the batch; writes ∂L/∂logits into `gradient`.
    ///
    /// - Parameters:
    ///   - logits: f32 `[batch, classes]`.
    ///   - gradient: f32 `[batch, classes]`, overwritten (may alias `logits`).
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`; `.invalidArgument(name: "logits",
    ///   value: flat index, ...)` for NaN or infinity.
    public func compute(logits: TensorView, gradient: TensorView) throws(LichenError) -> Float {
        let batch = try LossOperands.batch(of: logits, "logits", classes: classes, maximumBatch: maximumBatch)
        try LossOperands.requireRows(gradient, "gradient", batch: batch, classes: classes)
        let logP = try scratch.rows(0, batch: batch), pRows = try scratch.rows(1, batch: batch)
        try kernels.softmaxRows(logits, into: logP, log: true)
        try kernels.softmaxRows(logits, into: pRows)
        let lp = try logP.f32Elements("scratch"), p = try pRows.f32Elements("scratch")
        let g = try gradient.f32Elements("gradient")
        let inverseBatch = 1 / Float(batch)
        var total: Double = 0
        for b in 0..<batch {
            let row = b * classes
            var h: Double = 0
            for j in 0..<classes { h -= Double(p[row + j]) * Double(lp[row + j]) }
            total += h
            let hf = Float(h)
            for j in 0..<classes { g[row + j] = -p[row + j] * (lp[row + j] + hf) * inverseBatch }
        }
        return Float(total / Double(batch))
    }
}
