/// The SupCon loss in its label-free form (Khosla et al. 2020; RMT's contrastive loss,
/// research/tta.md §4.4): N = V·n vectors, V views of n items stacked view-major (row
/// v·n + b is view v of item b); the positives of an anchor are the other views of its item.
///
///     u_a = y_a / max(‖y_a‖, 1e-12)                      (F.normalize)
///     s_ak = u_a · u_k / τ
///     ℓ_a = −(1/(V−1)) Σ_{p ∈ Pos(a)} [ s_ap − log Σ_{k ≠ a} exp(s_ak) ]
///     L = (1/N) Σ_a ℓ_a
///
/// Gradient: G_ak = ∂L/∂s_ak = (1/N) [softmax_{k≠a}(s_a·)_k − 1[k ∈ Pos(a)]/(V−1)] (G_aa = 0);
/// ∂L/∂u_a = (1/τ) Σ_k (G_ak + G_ka) u_k; ∂L/∂y_a = (∂L/∂u_a − (∂L/∂u_a · u_a) u_a) / ‖y_a‖
/// (plain scaling by 1/1e-12 below the norm floor). The reference's τ / τ_base factor is 1.
/// Logarithms and exponentials are taken in Double, rows max-subtracted.
///
/// - Note: Scratch (u `[maximumRows, d]`, the similarity matrix `[maximumRows, maximumRows]`,
///   the norms) comes from the arena at construction; `compute` allocates nothing.
public struct SupervisedContrastiveLoss {
    public let maximumRows: Int
    public let dimension: Int
    public let temperature: Float
    private let unit: TensorView
    private let similarity: TensorView
    private let norms: TensorView

    /// - Throws: `.invalidArgument` for rows or dimension < 1, a temperature that is not
    ///   finite and > 0; `.budgetExceeded`.
    public init(maximumRows: Int, dimension: Int, temperature: Float = 0.1, arena: Arena) throws(LichenError) {
        guard maximumRows >= 2 else { throw .invalidArgument(name: "maximumRows", value: maximumRows, reason: "must be >= 2") }
        guard dimension >= 1 else { throw .invalidArgument(name: "dimension", value: dimension, reason: "must be >= 1") }
        guard temperature.isFinite && temperature > 0 else {
            throw .invalidArgument(name: "temperature", value: 0, reason: "must be finite and > 0")
        }
        self.maximumRows = maximumRows
        self.dimension = dimension
        self.temperature = temperature
        unit = try arena.persistentTensor(.f32, try Shape(maximumRows, dimension))
        similarity = try arena.persistentTensor(.f32, try Shape(maximumRows, maximumRows))
        norms = try arena.persistentTensor(.f32, try Shape(maximumRows))
    }

    /// The mean loss; writes ∂L/∂y into `gradient`.
    ///
    /// - Parameters:
    ///   - features: f32 `[V·n, dimension]`, view-major, finite.
    ///   - views: V >= 2.
    ///   - gradient: f32, the shape of `features` (must not alias it).
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`; `.invalidArgument` for V < 2, a row
    ///   count that is not a multiple of V or above `maximumRows`, or a NaN / infinite feature
    ///   (value = flat index). Nothing is written when it throws.
    public func compute(features: TensorView, views: Int, gradient: TensorView) throws(LichenError) -> Float {
        let y = try features.f32Elements("features")
        try gradient.require(.f32, "gradient")
        guard features.shape.last == dimension else {
            throw .shapeMismatch(operand: "features", dimension: max(features.shape.rank - 1, 0), expected: dimension, got: features.shape.last)
        }
        let rows = features.rowCount
        guard views >= 2 else { throw .invalidArgument(name: "views", value: views, reason: "must be >= 2") }
        guard rows >= views && rows <= maximumRows && rows % views == 0 else {
            throw .invalidArgument(name: "features.rows", value: rows, reason: "must be a multiple of views, at most maximumRows")
        }
        guard gradient.elementCount == rows * dimension else {
            throw .shapeMismatch(operand: "gradient", dimension: 0, expected: rows, got: gradient.rowCount)
        }
        if let bad = y.firstNonFiniteIndex() {
            throw .invalidArgument(name: "features", value: bad, reason: "value at this flat index is NaN or infinite")
        }
        let g = try gradient.f32Elements("gradient")
        let u = try unit.f32Elements("scratch"), s = try similarity.f32Elements("scratch"), len = try norms.f32Elements("scratch")
        let d = dimension, n = rows / views
        let inverseTemperature = 1 / Double(temperature)
        for a in 0..<rows {
            var squares: Double = 0
            for j in 0..<d { squares += Double(y[a * d + j]) * Double(y[a * d + j]) }
            let norm = max(squares.squareRoot(), 1e-12)
            len[a] = Float(norm)
            for j in 0..<d { u[a * d + j] = Float(Double(y[a * d + j]) / norm) }
        }
        for a in 0..<rows {
            for k in a..<rows {
                var dot: Double = 0
                for j in 0..<d { dot += Double(u[a * d + j]) * Double(u[k * d + j]) }
                let v = Float(dot * inverseTemperature)
                s[a * rows + k] = v
                s[k * rows + a] = v
            }
        }
        // Row a of s becomes G_a· (softmax over k ≠ a minus the positive mass), scaled by 1/N.
        let positives = Double(views - 1)
        let inverseRows = 1 / Double(rows)
        var total: Double = 0
        for a in 0..<rows {
            let item = a % n
            var m = -Double.infinity
            for k in 0..<rows where k != a { m = max(m, Double(s[a * rows + k])) }
            var z: Double = 0
            for k in 0..<rows where k != a { z += GraphMath.exp(Double(s[a * rows + k]) - m) }
            let logZ = m + AdaptationMath.log(z)
            var positiveSum: Double = 0
            for k in 0..<rows where k != a && k % n == item { positiveSum += Double(s[a * rows + k]) - logZ }
            total -= positiveSum / positives
            for k in 0..<rows {
                if k == a {
                    s[a * rows + k] = 0
                    continue
                }
                var gk = GraphMath.exp(Double(s[a * rows + k]) - logZ)
                if k % n == item { gk -= 1 / positives }
                s[a * rows + k] = Float(gk * inverseRows)
            }
        }
        // ∂L/∂u_a = (1/τ) Σ_k (G_ak + G_ka) u_k, then through the normalisation.
        for a in 0..<rows {
            for j in 0..<d { g[a * d + j] = 0 }
            for k in 0..<rows where k != a {
                let w = Float(Double(s[a * rows + k] + s[k * rows + a]) * inverseTemperature)
                for j in 0..<d { g[a * d + j] += w * u[k * d + j] }
            }
            let norm = Double(len[a])
            var dotGU: Double = 0
            for j in 0..<d { dotGU += Double(g[a * d + j]) * Double(u[a * d + j]) }
            let below = norm <= 1e-12
            for j in 0..<d {
                let gu = Double(g[a * d + j])
                g[a * d + j] = Float(below ? gu / 1e-12 : (gu - dotGU * Double(u[a * d + j])) / norm)
            }
        }
        return Float(total * inverseRows)
    }
}
