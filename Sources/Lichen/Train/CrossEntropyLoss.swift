/// Cross-entropy with hard labels, mean over the batch (PyTorch's `F.cross_entropy`,
/// reduction "mean", no weights, no smoothing):
///
///     L = (1/B) Σ_b −log softmax(z_b)[y_b]
///     ∂L/∂z_bj = (softmax(z_b)_j − [j = y_b]) / B
///
/// Computed through the kernels' max-subtracted log-softmax, so large logits do not overflow.
/// Labels are class indices stored as f32 values (exact for any class count below 2^24).
///
/// - Note: Scratch (two `[maximumBatch, classes]` f32 buffers) comes from the arena at
///   construction; `compute` allocates nothing.
public struct CrossEntropyLoss {
    /// Number of classes (the logits' innermost dimension).
    public let classes: Int
    /// The largest batch `compute` accepts.
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

    /// The mean loss over the batch; writes ∂L/∂logits into `gradient`.
    ///
    /// - Parameters:
    ///   - logits: f32 `[batch, classes]`, 1 <= batch <= maximumBatch.
    ///   - labels: f32 with `batch` values, each an integer in `0 ..< classes`.
    ///   - gradient: f32 `[batch, classes]`; overwritten (it may be the logits' own buffer).
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch` (operand named);
    ///   `.invalidArgument(name: "logits", value: flat index, ...)` for NaN or infinity;
    ///   `.invalidArgument(name: "labels", value: row, ...)` for a label that is not a class
    ///   index. Nothing is written when it throws.
    public func compute(logits: TensorView, labels: TensorView, gradient: TensorView) throws(LichenError) -> Float {
        let batch = try LossOperands.batch(of: logits, "logits", classes: classes, maximumBatch: maximumBatch)
        try LossOperands.requireRows(gradient, "gradient", batch: batch, classes: classes)
        let y = try labels.f32Elements("labels")
        guard y.count == batch else { throw .shapeMismatch(operand: "labels", dimension: 0, expected: batch, got: y.count) }
        for b in 0..<batch {
            let v = y[b]
            guard v.isFinite, v >= 0, v < Float(classes), v == v.rounded(.towardZero) else {
                throw .invalidArgument(name: "labels", value: b, reason: "label of this row is not a class index in 0..<classes")
            }
        }
        let logP = try scratch.rows(0, batch: batch), pRows = try scratch.rows(1, batch: batch)
        try kernels.softmaxRows(logits, into: logP, log: true)
        try kernels.softmaxRows(logits, into: pRows)
        let lp = try logP.f32Elements("scratch"), p = try pRows.f32Elements("scratch")
        let g = try gradient.f32Elements("gradient")
        let inverseBatch = 1 / Float(batch)
        var total: Double = 0
        for b in 0..<batch {
            let row = b * classes, label = Int(y[b])
            total -= Double(lp[row + label])
            for j in 0..<classes { g[row + j] = p[row + j] * inverseBatch }
            g[row + label] -= inverseBatch
        }
        return Float(total / Double(batch))
    }
}
