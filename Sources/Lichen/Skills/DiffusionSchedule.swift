/// The diffusion pieces of PSEC's IDQL-style policy that live outside the noise-prediction
/// network (methods.md §1.2): the VP schedule, forward noising for the training loss, one DDPM
/// sampler step with clipping, and the Fourier time features.
///
/// Every function works in place on caller memory and allocates nothing.
public struct VPSchedule: Sendable {
    /// T: denoising steps.
    public let stepCount: Int
    /// α_t, t = 1...T at index t − 1: `exp(−b_min/T − ½(b_max − b_min)(2t − 1)/T²)`.
    public let alphas: [Float]
    /// β_t = 1 − α_t.
    public let betas: [Float]
    /// ᾱ_t = ∏_{j ≤ t} α_j.
    public let alphaBars: [Float]

    /// The VP schedule with T steps (IDQL / PSEC: T = 5, b_min = 0.1, b_max = 10), computed in Double.
    /// - Throws: `.invalidArgument(name: "diffusion steps", ...)` for T outside 1...1000;
    ///   `.outOfRange` for b_min, b_max not finite or not 0 <= b_min <= b_max <= 100.
    /// - Note: Allocates (build time).
    public init(stepCount: Int = 5, betaMin: Double = 0.1, betaMax: Double = 10) throws(LichenError) {
        guard stepCount >= 1 && stepCount <= 1000 else {
            throw .invalidArgument(name: "diffusion steps", value: stepCount, reason: "must be in 1...1000")
        }
        guard betaMin.isFinite && betaMax.isFinite && betaMin >= 0 && betaMin <= betaMax && betaMax <= 100 else {
            throw .outOfRange(name: "b_min, b_max", value: floatText(Float(betaMin)) + ", " + floatText(Float(betaMax)),
                              allowed: "0 <= b_min <= b_max <= 100")
        }
        let t = Double(stepCount)
        var a: [Float] = [], b: [Float] = [], ab: [Float] = []
        var product = 1.0
        for k in 1...stepCount {
            let alpha = GraphMath.exp(-betaMin / t - 0.5 * (betaMax - betaMin) * (2 * Double(k) - 1) / (t * t))
            product *= alpha
            a.append(Float(alpha))
            b.append(Float(1 - alpha))
            ab.append(Float(product))
        }
        self.stepCount = stepCount
        alphas = a
        betas = b
        alphaBars = ab
    }

    /// The training input at step index `t` (0-based: schedule step t + 1):
    /// `x_t = √ᾱ_t · a + √(1 − ᾱ_t) · ε`, written into `noisy` (all three the same count).
    /// - Throws: `.invalidArgument(name: "diffusion step", ...)`; `.shapeMismatch` for different counts.
    public func noise(action: F32Elements, epsilon: F32Elements, step t: Int, into noisy: F32Elements) throws(LichenError) {
        try checkStep(t)
        guard epsilon.count == action.count && noisy.count == action.count else {
            throw .shapeMismatch(operand: "epsilon", dimension: 0, expected: action.count, got: epsilon.count == action.count ? noisy.count : epsilon.count)
        }
        let s = alphaBars[t].squareRoot(), r = (1 - alphaBars[t]).squareRoot()
        for i in 0..<action.count { noisy[i] = s * action[i] + r * epsilon[i] }
    }

    /// One DDPM step at index `t` (0-based), in place:
    /// `x ← (1/√α_t)(x − (1 − α_t)/√(1 − ᾱ_t) · ε̂)`, plus `√β_t · temperature · z` when t > 0,
    /// then clipped to [−1, 1]. `z` (standard normal, same count) is read only when t > 0.
    /// - Throws: `.invalidArgument(name: "diffusion step", ...)`; `.shapeMismatch` for different counts.
    public func denoise(_ x: F32Elements, predictedNoise: F32Elements, step t: Int, noise z: F32Elements, temperature: Float = 1)
        throws(LichenError)
    {
        try checkStep(t)
        guard predictedNoise.count == x.count && (t == 0 || z.count >= x.count) else {
            throw .shapeMismatch(operand: "predictedNoise", dimension: 0, expected: x.count, got: predictedNoise.count)
        }
        let inv = 1 / alphas[t].squareRoot()
        let c = (1 - alphas[t]) / (1 - alphaBars[t]).squareRoot()
        let sigma = betas[t].squareRoot() * temperature
        for i in 0..<x.count {
            var v = inv * (x[i] - c * predictedNoise[i])
            if t > 0 { v += sigma * z[i] }
            x[i] = min(1, max(-1, v))
        }
    }

    private func checkStep(_ t: Int) throws(LichenError) {
        guard t >= 0 && t < stepCount else {
            throw .invalidArgument(name: "diffusion step", value: t, reason: "must be in 0..<T")
        }
    }
}

/// IDQL's learnable Fourier time features: `f = 2π · t · w` for a kernel w of `half` values,
/// embedding `[cos f, sin f]` (2 · half values; methods.md: half = 32, w ~ N(0, 0.2)).
public enum FourierTime {
    /// Writes `[cos(2π t w_j)]_j ++ [sin(2π t w_j)]_j` into `embedding` (2 · kernel.count values).
    /// - Throws: `.shapeMismatch(operand: "embedding", ...)`.
    public static func embed(time t: Float, kernel w: F32Elements, into embedding: F32Elements) throws(LichenError) {
        let h = w.count
        guard embedding.count == 2 * h else {
            throw .shapeMismatch(operand: "embedding", dimension: 0, expected: 2 * h, got: embedding.count)
        }
        for j in 0..<h {
            let f = 2 * Double.pi * Double(t) * Double(w[j])
            embedding[j] = Float(FourierTime.cos(f))
            embedding[h + j] = Float(FourierTime.sin(f))
        }
    }

    /// Adds dLoss/dw for `embeddingGradient` (dLoss/d embedding) at time t into `kernelGradient`:
    /// `dw_j += 2π t (−sin f_j · g_j + cos f_j · g_{h+j})`.
    /// - Throws: `.shapeMismatch` naming the operand.
    public static func backward(time t: Float, kernel w: F32Elements, embeddingGradient g: F32Elements,
                                kernelGradient dw: F32Elements) throws(LichenError) {
        let h = w.count
        guard g.count == 2 * h else { throw .shapeMismatch(operand: "embeddingGradient", dimension: 0, expected: 2 * h, got: g.count) }
        guard dw.count == h else { throw .shapeMismatch(operand: "kernelGradient", dimension: 0, expected: h, got: dw.count) }
        for j in 0..<h {
            let f = 2 * Double.pi * Double(t) * Double(w[j])
            let d = 2 * Double.pi * Double(t) * (-FourierTime.sin(f) * Double(g[j]) + FourierTime.cos(f) * Double(g[h + j]))
            dw[j] += Float(d)
        }
    }
}

extension FourierTime {
    /// sin in plain Swift (Embedded has no libm binding here): reduction to [−π, π] in Double,
    /// then the Taylor series to x^27 (error below 3e-15 on that interval). Same bits on every target.
    static func sin(_ x: Double) -> Double {
        guard x.isFinite else { return .nan }
        let twoPi = 2 * Double.pi
        let r = x - twoPi * (x / twoPi).rounded()
        var term = r, sum = r
        let r2 = r * r
        var k = 1.0
        while k < 27 {
            term *= -r2 / ((k + 1) * (k + 2))
            sum += term
            k += 2
        }
        return sum
    }

    /// cos as sin(x + π/2) of the reduced argument (see `sin`).
    static func cos(_ x: Double) -> Double {
        guard x.isFinite else { return .nan }
        let twoPi = 2 * Double.pi
        let r = x - twoPi * (x / twoPi).rounded()
        var term = 1.0, sum = 1.0
        let r2 = r * r
        var k = 0.0
        while k < 26 {
            term *= -r2 / ((k + 1) * (k + 2))
            sum += term
            k += 2
        }
        return sum
    }
}
