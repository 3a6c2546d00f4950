/// Elementary functions for the activation layers, in plain Swift (the core links no libm
/// wrapper of its own and the Embedded standard library has none). Computed in Double and
/// rounded once to Float, so results are the same on every target.
enum GraphMath {
    /// e^x - 1 for |x| <= 0.35 by its Taylor series (relative error < 1e-16 there).
    @inline(__always)
    static func expm1Small(_ x: Double) -> Double {
        // Horner form of x + x^2/2! + ... + x^13/13!
        var t = 1.0 / 6_227_020_800.0
        t = t * x + 1.0 / 479_001_600.0
        t = t * x + 1.0 / 39_916_800.0
        t = t * x + 1.0 / 3_628_800.0
        t = t * x + 1.0 / 362_880.0
        t = t * x + 1.0 / 40_320.0
        t = t * x + 1.0 / 5_040.0
        t = t * x + 1.0 / 720.0
        t = t * x + 1.0 / 120.0
        t = t * x + 1.0 / 24.0
        t = t * x + 1.0 / 6.0
        t = t * x + 0.5
        t = t * x + 1.0
        return t * x
    }

    /// e^x in Double: x = k ln2 + r with |r| <= ln2/2, e^r by series, scaled by 2^k.
    /// Saturates to 0 below -745 and to +inf above 709.8.
    static func exp(_ x: Double) -> Double {
        if x.isNaN { return x }
        if x > 709.78 { return .infinity }
        if x < -745.2 { return 0 }
        let ln2Hi = 6.93147180369123816490e-01, ln2Lo = 1.90821492927058770002e-10
        let k = (x * 1.4426950408889634).rounded()
        let r = (x - k * ln2Hi) - k * ln2Lo
        // |r| <= 0.347: split once more so the series stays in its accurate range.
        let h = r * 0.5
        let e = expm1Small(h) + 1
        let er = e * e
        let ki = Int(k)
        // 2^k may be subnormal or overflow in one step: scale in two halves.
        let k1 = ki / 2, k2 = ki - k1
        return er * Double(sign: .plus, exponent: k1, significand: 1) * Double(sign: .plus, exponent: k2, significand: 1)
    }

    /// e^x - 1, accurate near 0.
    static func expm1(_ x: Double) -> Double {
        if abs(x) <= 0.35 { return expm1Small(x) }
        return exp(x) - 1
    }

    /// tanh x = expm1(2x) / (expm1(2x) + 2), by odd symmetry from |x|; 1 for |x| > 20.
    static func tanh(_ x: Double) -> Double {
        if x.isNaN { return x }
        let a = abs(x)
        if a > 20 { return x < 0 ? -1 : 1 }
        let e = expm1(2 * a)
        let t = e / (e + 2)
        return x < 0 ? -t : t
    }

    /// Logistic sigmoid 1 / (1 + e^-x).
    static func sigmoid(_ x: Double) -> Double {
        if x >= 0 { return 1 / (1 + exp(-x)) }
        let e = exp(x)
        return e / (1 + e)
    }
}
