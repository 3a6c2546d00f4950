import Foundation
@testable import LichenStreams
import Testing

@Suite("Corruption random source")
struct CorruptionRandomTests {
    @Test("Poisson sampler: mean and variance match λ (Knuth below 10, PTRS above)", arguments: [0.3, 3.0, 9.9, 10.0, 37.5, 250.0, 500.0])
    func poisson(_ lambda: Double) {
        var rng = CorruptionRandom(seed: 2024, salt: 1)
        let n = 40_000
        var sum = 0.0, squares = 0.0
        for _ in 0..<n {
            let k = Double(rng.poisson(lambda))
            sum += k
            squares += k * k
        }
        let mean = sum / Double(n)
        let variance = squares / Double(n) - mean * mean
        // 5 standard errors of the mean; variance within 6 % (its standard error is ~0.7 %).
        #expect(abs(mean - lambda) < 5 * (lambda / Double(n)).squareRoot(), "mean \(mean) for λ \(lambda)")
        #expect(abs(variance / lambda - 1) < 0.06, "variance \(variance) for λ \(lambda)")
    }

    @Test("Poisson probabilities at λ = 50 match the pmf")
    func poissonShape() {
        var rng = CorruptionRandom(seed: 7, salt: 2)
        let n = 100_000
        var counts = [Int](repeating: 0, count: 200)
        for _ in 0..<n { counts[min(rng.poisson(50), 199)] += 1 }
        for k in [35, 45, 50, 55, 65] {
            let pmf = exp(-50 + Double(k) * log(50.0) - lgamma(Double(k) + 1))
            let observed = Double(counts[k]) / Double(n)
            #expect(abs(observed - pmf) < 5 * (pmf / Double(n)).squareRoot() + 1e-4, "k \(k): \(observed) vs \(pmf)")
        }
    }

    @Test("logGamma agrees with libm's lgamma")
    func logGamma() {
        for x in [1.0, 2, 3, 5.5, 7, 8, 10, 51, 501, 1e4] {
            #expect(abs(CorruptionRandom.logGamma(x) - lgamma(x)) < 1e-9 * max(1, abs(lgamma(x))), "x \(x)")
        }
    }

    @Test("Gaussian: mean 0, variance 1; uniforms in [0, 1); integers cover low ..< high")
    func gaussianAndUniform() {
        var rng = CorruptionRandom(seed: 99, salt: 3)
        let n = 40_000
        var sum = 0.0, squares = 0.0
        for _ in 0..<n {
            let g = rng.gaussian()
            sum += g
            squares += g * g
        }
        #expect(abs(sum / Double(n)) < 5 / Double(n).squareRoot())
        #expect(abs(squares / Double(n) - 1) < 0.03)
        var seen = Set<Int>()
        for _ in 0..<1000 {
            let u = rng.uniform()
            #expect(u >= 0 && u < 1)
            seen.insert(rng.integer(-1, 1))
        }
        #expect(seen == [-1, 0])
    }

    @Test("seeds and salts give different streams")
    func streams() {
        var a = CorruptionRandom(seed: 1, salt: 1), b = CorruptionRandom(seed: 2, salt: 1), c = CorruptionRandom(seed: 1, salt: 2)
        let x = (0..<4).map { _ in a.next() }, y = (0..<4).map { _ in b.next() }, z = (0..<4).map { _ in c.next() }
        #expect(x != y && x != z && y != z)
    }
}
