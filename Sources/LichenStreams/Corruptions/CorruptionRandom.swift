import Foundation

/// The per-image random source of the corruptions: SplitMix64 (Steele, Lea and Flood 2014),
/// whose integer outputs are the same on every platform. Doubles are built from the top 53
/// bits; Gaussians use Box–Muller in Double (Foundation's `log`, `sqrt`, `cos`, `sin`), so
/// their bits are pinned per libm: identical wherever the same libm is used (glibc on x86_64
/// and aarch64 computes these functions with the same portable code, but no cross-platform
/// guarantee is made for every libm).
struct CorruptionRandom {
    private(set) var state: UInt64

    /// A generator for one image: `seed` mixed with a per-corruption salt, so two corruptions
    /// of the same image with the same seed draw independent streams.
    init(seed: UInt64, salt: UInt64) {
        state = seed
        state = next() ^ (salt &* 0xD1B5_4A32_D192_ED03)
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Uniform in [low, high).
    mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * uniform()
    }

    /// Uniform integer in `0 ..< bound` without modulo bias (Lemire's multiply-shift with
    /// rejection). `bound` > 0.
    mutating func below(_ bound: Int) -> Int {
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// Uniform integer in `low ..< high` (numpy's `randint(low, high)` convention).
    mutating func integer(_ low: Int, _ high: Int) -> Int {
        low + below(high - low)
    }

    private var spare: Double? = nil

    /// Standard normal by Box–Muller (both values of a pair are used).
    mutating func gaussian() -> Double {
        if let s = spare {
            spare = nil
            return s
        }
        var u1 = uniform()
        while u1 == 0 { u1 = uniform() }
        let u2 = uniform()
        let r = (-2 * log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        spare = r * sin(theta)
        return r * cos(theta)
    }

    /// Poisson(`lambda`) sample. Small means (< 10) use Knuth's product of uniforms; larger
    /// ones Hörmann's transformed rejection with squeeze (PTRS, 1993), the method numpy uses.
    mutating func poisson(_ lambda: Double) -> Int {
        if lambda <= 0 { return 0 }
        if lambda < 10 {
            let limit = exp(-lambda)
            var k = 0
            var product = uniform()
            while product > limit {
                k += 1
                product *= uniform()
            }
            return k
        }
        let sqrtLambda = lambda.squareRoot()
        let logLambda = log(lambda)
        let b = 0.931 + 2.53 * sqrtLambda
        let a = -0.059 + 0.02483 * b
        let inverseAlpha = 1.1239 + 1.1328 / (b - 3.4)
        let vr = 0.9277 - 3.6224 / (b - 2)
        while true {
            let u = uniform() - 0.5
            let v = uniform()
            let us = 0.5 - abs(u)
            let k = ((2 * a / us + b) * u + lambda + 0.43).rounded(.down)
            if us >= 0.07 && v <= vr { return Int(k) }
            if k < 0 || (us < 0.013 && v > us) { continue }
            if log(v) + log(inverseAlpha) - log(a / (us * us) + b)
                <= -lambda + k * logLambda - Self.logGamma(k + 1)
            {
                return Int(k)
            }
        }
    }

    /// log Γ(x) for x ≥ 1 by Stirling's series after shifting x up to ≥ 7 (as numpy's
    /// `random_loggam`).
    static func logGamma(_ x: Double) -> Double {
        let a: [Double] = [
            8.333333333333333e-02, -2.777777777777778e-03, 7.936507936507937e-04,
            -5.952380952380952e-04, 8.417508417508418e-04, -1.917526917526918e-03,
            6.410256410256410e-03, -2.955065359477124e-02, 1.796443723688307e-01,
            -1.39243221690590e+00,
        ]
        if x == 1 || x == 2 { return 0 }
        var x0 = x
        var n = 0
        if x <= 7 {
            n = Int(7 - x)
            x0 = x + Double(n)
        }
        let x2 = 1 / (x0 * x0)
        var gl0 = a[9]
        for k in stride(from: 8, through: 0, by: -1) { gl0 = gl0 * x2 + a[k] }
        var gl = gl0 / x0 + 0.5 * log(2 * Double.pi) + (x0 - 0.5) * log(x0) - x0
        if n > 0 {
            for _ in 1...n {
                x0 -= 1
                gl -= log(x0)
            }
        }
        return gl
    }
}
