/// Elementary functions and random draws for the adaptation methods, in plain Swift (the core
/// links no libm wrapper and the Embedded standard library has none). Computed in Double, so
/// every target draws the same augmentation parameters from the same seed.
enum AdaptationMath {
    /// Natural logarithm for x > 0: x = m · 2^e with m in [√½, √2), then
    /// log m = 2 atanh(s), s = (m − 1)/(m + 1), |s| <= 0.172, by its odd series (error < 1e-17).
    /// Returns −inf for 0, NaN for negative or NaN input.
    static func log(_ x: Double) -> Double {
        if x.isNaN || x < 0 { return .nan }
        if x == 0 { return -.infinity }
        if x == .infinity { return x }
        var m = x.significand  // in [1, 2)
        var e = Double(x.exponent)
        if m > 1.4142135623730951 {
            m *= 0.5
            e += 1
        }
        let s = (m - 1) / (m + 1), s2 = s * s
        var term = s, sum = 0.0
        var k = 1.0
        for _ in 0..<14 {
            sum += term / k
            term *= s2
            k += 2
        }
        return 2 * sum + e * 0.6931471805599453
    }

    /// x^y for x > 0 as e^(y log x); 0 for x == 0 and y > 0.
    static func pow(_ x: Double, _ y: Double) -> Double {
        if x == 0 { return y > 0 ? 0 : (y == 0 ? 1 : .infinity) }
        return GraphMath.exp(y * log(x))
    }

    /// sin and cos of `x` radians: reduced to [−π, π], then Taylor series to x^29 (error < 1e-15).
    static func sinCos(_ x: Double) -> (sin: Double, cos: Double) {
        let twoPi = 6.283185307179586
        var r = x - (x / twoPi).rounded() * twoPi
        if r > 3.141592653589793 { r -= twoPi }
        let r2 = r * r
        var s = 0.0, c = 0.0
        var sTerm = r, cTerm = 1.0
        var n = 1.0
        for _ in 0..<15 {
            s += sTerm
            c += cTerm
            sTerm *= -r2 / ((n + 1) * (n + 2))
            cTerm *= -r2 / (n * (n + 1))
            n += 2
        }
        return (s, c)
    }
}

extension SplitMix64Random {
    /// Uniform in [0, 1) with 53 random bits.
    mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in [lower, upper).
    mutating func uniform(_ lower: Double, _ upper: Double) -> Double {
        lower + (upper - lower) * nextUnitDouble()
    }

    /// Two independent standard normal draws (Marsaglia's polar method: no trigonometry).
    mutating func standardNormalPair() -> (Double, Double) {
        while true {
            let u = 2 * nextUnitDouble() - 1, v = 2 * nextUnitDouble() - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                let f = (-2 * AdaptationMath.log(s) / s).squareRoot()
                return (u * f, v * f)
            }
        }
    }
}
