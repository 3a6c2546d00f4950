/// Mean squared error over all elements (PyTorch's `F.mse_loss`, reduction "mean"):
///
///     L = (1/N) Σ_i (x_i − t_i)²,   ∂L/∂x_i = 2 (x_i − t_i) / N
///
/// N is the element count of the predictions (batch × features), not the batch size.
/// - Note: Needs no scratch; allocates nothing.
public struct MeanSquaredErrorLoss {
    public init() {}

    /// The mean squared error; writes ∂L/∂predictions into `gradient`.
    ///
    /// - Parameters:
    ///   - predictions: f32, N > 0 values.
    ///   - targets: f32 with the same shape.
    ///   - gradient: f32 with the same shape, overwritten (may alias `predictions`).
    /// - Throws: `.unsupportedElementType`; `.shapeMismatch` (first differing dimension);
    ///   `.invalidArgument` for N = 0, or naming "predictions"/"targets" and the flat index of a
    ///   NaN or infinite value.
    public func compute(predictions: TensorView, targets: TensorView, gradient: TensorView) throws(LichenError) -> Float {
        let x = try predictions.f32Elements("predictions")
        let t = try targets.f32Elements("targets")
        let g = try gradient.f32Elements("gradient")
        try MeanSquaredErrorLoss.requireSameShape(targets, as: predictions, "targets")
        try MeanSquaredErrorLoss.requireSameShape(gradient, as: predictions, "gradient")
        let n = x.count
        guard n > 0 else { throw .invalidArgument(name: "predictions", value: 0, reason: "a loss needs at least one value") }
        if let bad = x.firstNonFiniteIndex() {
            throw .invalidArgument(name: "predictions", value: bad, reason: "value at this flat index is NaN or infinite")
        }
        if let bad = t.firstNonFiniteIndex() {
            throw .invalidArgument(name: "targets", value: bad, reason: "value at this flat index is NaN or infinite")
        }
        let scale = 2 / Float(n)
        var total: Double = 0
        for i in 0..<n {
            let d = x[i] - t[i]
            total += Double(d) * Double(d)
            g[i] = scale * d
        }
        return Float(total / Double(n))
    }

    private static func requireSameShape(_ view: TensorView, as reference: TensorView, _ operand: StaticString) throws(LichenError) {
        guard view.shape.rank == reference.shape.rank else {
            throw .shapeMismatch(operand: operand, dimension: 0, expected: reference.shape.rank, got: view.shape.rank)
        }
        for i in 0..<reference.shape.rank where view.shape[i] != reference.shape[i] {
            throw .shapeMismatch(operand: operand, dimension: i, expected: reference.shape[i], got: view.shape[i])
        }
    }
}
