/// Cross-entropy against soft targets, mean over the batch (CoTTA's consistency loss):
///
///     L = (1/B) Σ_b −Σ_k q_bk log p_bk,   p_b = softmax(z_b)
///     ∂L/∂z_bj = (p_bj Σ_k q_bk − q_bj) / B      (= (p − q)/B when q sums to 1)
///
/// The targets q are either given as distribution rows, or computed as softmax of teacher
/// logits; either way they are constants: no gradient flows into q or the teacher.
///
/// - Note: Scratch (up to four `[maximumBatch, classes]` f32 buffers) comes from the arena
///   at construction; `compute` allocates nothing.
public struct SoftCrossEntropyLoss {
    public let classes: Int
    public let maximumBatch: Int
    private let kernels: Kernels
    private let scratch: LossScratch

    /// - Throws: `.invalidArgument` for a batch or class count < 1; `.budgetExceeded`.
    public init(maximumBatch: Int, classes: Int, arena: Arena, kernels: Kernels = .best) throws(LichenError) {
        scratch = try LossScratch(maximumBatch: maximumBatch, classes: classes, count: 3, arena: arena)
        self.classes = classes
        self.maximumBatch = maximumBatch
        self.kernels = kernels
    }

    /// The mean loss against target distributions; writes ∂L/∂logits into `gradient`.
    ///
    /// - Parameters:
    ///   - logits: f32 `[batch, classes]`.
    ///   - targets: f32 `[batch, classes]`, finite and >= 0 (rows normally sum to 1; other
    ///     sums are taken as given, with the gradient above).
    ///   - gradient: f32 `[batch, classes]`, overwritten (may alias `logits`, not `targets`).
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`; `.invalidArgument` naming
    ///   "logits" or "targets" and the flat index of a NaN, infinite or negative value.
    public func compute(logits: TensorView, targets: TensorView, gradient: TensorView) throws(LichenError) -> Float {
        let batch = try LossOperands.batch(of: logits, "logits", classes: classes, maximumBatch: maximumBatch)
        try LossOperands.requireRows(targets, "targets", batch: batch, classes: classes)
        try LossOperands.requireRows(gradient, "gradient", batch: batch, classes: classes)
        let q = try targets.f32Elements("targets")
        for i in 0..<q.count where !(q[i].isFinite && q[i] >= 0) {
            throw .invalidArgument(name: "targets", value: i, reason: "value at this flat index is negative, NaN or infinite")
        }
        return try computeChecked(logits: logits, q: q, batch: batch, gradient: gradient)
    }

    /// The mean loss against q = softmax(teacherLogits) (teacher held constant); writes
    /// ∂L/∂logits (student only) into `gradient`.
    ///
    /// - Parameters:
    ///   - logits: student f32 `[batch, classes]`.
    ///   - teacherLogits: f32 `[batch, classes]`.
    ///   - gradient: f32 `[batch, classes]`, overwritten.
    /// - Throws: as `compute(logits:targets:gradient:)`, naming "teacherLogits".
    public func compute(logits: TensorView, teacherLogits: TensorView, gradient: TensorView) throws(LichenError) -> Float {
        let batch = try LossOperands.batch(of: logits, "logits", classes: classes, maximumBatch: maximumBatch)
        let teacherBatch = try LossOperands.batch(of: teacherLogits, "teacherLogits", classes: classes, maximumBatch: maximumBatch)
        guard teacherBatch == batch else {
            throw .shapeMismatch(operand: "teacherLogits", dimension: 0, expected: batch, got: teacherBatch)
        }
        try LossOperands.requireRows(gradient, "gradient", batch: batch, classes: classes)
        let qRows = try scratch.rows(2, batch: batch)
        try kernels.softmaxRows(teacherLogits, into: qRows)
        return try computeChecked(logits: logits, q: try qRows.f32Elements("scratch"), batch: batch, gradient: gradient)
    }

    private func computeChecked(logits: TensorView, q: F32Elements, batch: Int, gradient: TensorView) throws(LichenError) -> Float {
        let logP = try scratch.rows(0, batch: batch), pRows = try scratch.rows(1, batch: batch)
        try kernels.softmaxRows(logits, into: logP, log: true)
        try kernels.softmaxRows(logits, into: pRows)
        let lp = try logP.f32Elements("scratch"), p = try pRows.f32Elements("scratch")
        let g = try gradient.f32Elements("gradient")
        let inverseBatch = 1 / Float(batch)
        var total: Double = 0
        for b in 0..<batch {
            let row = b * classes
            var qSum: Float = 0
            for j in 0..<classes {
                total -= Double(q[row + j]) * Double(lp[row + j])
                qSum += q[row + j]
            }
            for j in 0..<classes { g[row + j] = (p[row + j] * qSum - q[row + j]) * inverseBatch }
        }
        return Float(total / Double(batch))
    }
}
