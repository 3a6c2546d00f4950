/// Symmetric cross-entropy between student logits a and teacher logits t, mean over the
/// batch (RMT's self-training loss, and CoTTA's ImageNet consistency loss):
///
///     SCE(a, t) = −α Σ_k q_k log p_k − (1 − α) Σ_k p_k log q_k,   p = softmax(a), q = softmax(t)
///     L = (1/B) Σ_b SCE(a_b, t_b)
///     ∂L/∂a_bj = [ α (p_bj − q_bj) + (1 − α) p_bj (⟨p_b, log q_b⟩ − log q_bj) ] / B
///
/// α = 1/2 is the reference (mariodoebler/test-time-adaptation). Only the student receives a
/// gradient: the teacher is an EMA copy whose parameters take no gradient, so its logits
/// are constants here.
///
/// - Note: Scratch (four `[maximumBatch, classes]` f32 buffers) comes from the arena at
///   construction; `compute` allocates nothing.
public struct SymmetricCrossEntropyLoss {
    public let classes: Int
    public let maximumBatch: Int
    /// Weight of the student-under-teacher term −Σ q log p (the other term has 1 − α).
    public let alpha: Float
    private let kernels: Kernels
    private let scratch: LossScratch

    /// - Throws: `.invalidArgument` for a batch or class count < 1, or α outside [0, 1]
    ///   (value: α in thousandths); `.budgetExceeded`.
    public init(
        maximumBatch: Int, classes: Int, alpha: Float = 0.5, arena: Arena, kernels: Kernels = .best
    ) throws(LichenError) {
        guard alpha >= 0 && alpha <= 1 else {
            throw .invalidArgument(name: "alpha", value: alpha.isFinite ? Int(alpha * 1000) : Int.min, reason: "must lie in [0, 1]")
        }
        scratch = try LossScratch(maximumBatch: maximumBatch, classes: classes, count: 4, arena: arena)
        self.classes = classes
        self.maximumBatch = maximumBatch
        self.alpha = alpha
        self.kernels = kernels
    }

    /// The mean SCE over the batch; writes ∂L/∂(student logits) into `gradient`.
    ///
    /// - Parameters:
    ///   - logits: student f32 `[batch, classes]`.
    ///   - teacherLogits: f32 `[batch, classes]` (held constant).
    ///   - gradient: f32 `[batch, classes]`, overwritten (may alias `logits`).
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`; `.invalidArgument` naming
    ///   "logits" or "teacherLogits" and the flat index of a NaN or infinite value.
    public func compute(logits: TensorView, teacherLogits: TensorView, gradient: TensorView) throws(LichenError) -> Float {
        let batch = try LossOperands.batch(of: logits, "logits", classes: classes, maximumBatch: maximumBatch)
        let teacherBatch = try LossOperands.batch(of: teacherLogits, "teacherLogits", classes: classes, maximumBatch: maximumBatch)
        guard teacherBatch == batch else {
            throw .shapeMismatch(operand: "teacherLogits", dimension: 0, expected: batch, got: teacherBatch)
        }
        try LossOperands.requireRows(gradient, "gradient", batch: batch, classes: classes)
        let logP = try scratch.rows(0, batch: batch), pRows = try scratch.rows(1, batch: batch)
        let logQ = try scratch.rows(2, batch: batch), qRows = try scratch.rows(3, batch: batch)
        try kernels.softmaxRows(logits, into: logP, log: true)
        try kernels.softmaxRows(logits, into: pRows)
        try kernels.softmaxRows(teacherLogits, into: logQ, log: true)
        try kernels.softmaxRows(teacherLogits, into: qRows)
        let lp = try logP.f32Elements("scratch"), p = try pRows.f32Elements("scratch")
        let lq = try logQ.f32Elements("scratch"), q = try qRows.f32Elements("scratch")
        let g = try gradient.f32Elements("gradient")
        let a = alpha, ra = 1 - alpha
        let inverseBatch = 1 / Float(batch)
        var total: Double = 0
        for b in 0..<batch {
            let row = b * classes
            var forward: Double = 0, reverse: Double = 0  // −Σ q log p, −Σ p log q
            for j in 0..<classes {
                forward -= Double(q[row + j]) * Double(lp[row + j])
                reverse -= Double(p[row + j]) * Double(lq[row + j])
            }
            total += Double(a) * forward + Double(ra) * reverse
            let pDotLogQ = Float(-reverse)
            for j in 0..<classes {
                let pj = p[row + j]
                g[row + j] = (a * (pj - q[row + j]) + ra * pj * (pDotLogQ - lq[row + j])) * inverseBatch
            }
        }
        return Float(total / Double(batch))
    }
}
