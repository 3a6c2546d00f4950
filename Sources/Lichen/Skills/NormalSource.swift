/// Seeded standard normals for the diffusion policy's training noise and sampler (Box–Muller over
/// `SplitMix64Random`), in plain Swift: the core has no libm binding, so `log` is computed here
/// and `cos` / `sin` are `FourierTime`'s. The same sequence on every target.
///
/// - Note: Allocates nothing.
public struct NormalSource {
    var random: SplitMix64Random
    var spare: Float = 0
    var hasSpare = false

    public init(seed: UInt64) { random = SplitMix64Random(seed: seed) }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(random.next() >> 11) * (1.0 / Double(UInt64(1) << 53)) }

    /// Uniform in `0 ..< bound` (bound >= 1).
    public mutating func index(below bound: Int) -> Int { Int(random.next(below: UInt64(max(bound, 1)))) }

    /// A standard normal (Box–Muller; the second value of each pair is kept for the next call).
    public mutating func next() -> Float {
        if hasSpare {
            hasSpare = false
            return spare
        }
        let u1 = max(unit(), 1e-300), u2 = unit()
        let r = (-2 * NormalSource.log(u1)).squareRoot(), phase = 2 * Double.pi * u2
        spare = Float(r * FourierTime.sin(phase))
        hasSpare = true
        return Float(r * FourierTime.cos(phase))
    }

    /// Fills `values` with standard normals.
    public mutating func fill(_ values: F32Elements) {
        for i in 0..<values.count { values[i] = next() }
    }

    /// The natural logarithm of a positive finite x: x = m · 2^e with m in [√½, √2], then
    /// log m = 2 atanh((m − 1)/(m + 1)) by its series (|z| <= 0.172, 20 terms: below 1e-16).
    static func log(_ x: Double) -> Double {
        guard x > 0 && x.isFinite else { return x == 0 ? -Double.infinity : Double.nan }
        var m = x.significand
        var k = Double(x.exponent)
        if m > 1.4142135623730951 {
            m /= 2
            k += 1
        }
        let z = (m - 1) / (m + 1), z2 = z * z
        var term = z, sum = 0.0, n = 1.0
        while n < 40 {
            sum += term / n
            term *= z2
            n += 2
        }
        return k * 0.6931471805599453 + 2 * sum
    }
}
