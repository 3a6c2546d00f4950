import Foundation
import Lichen

/// SplitMix64: the simulator's only source of randomness, so a run repeats from its seed.
public struct SimRandom {
    /// The core's SplitMix64 (`SplitMix64Random`): the same sequence as the runtime's seeded draws.
    private var generator: SplitMix64Random
    public var state: UInt64 { generator.state }

    public init(seed: UInt64) { generator = SplitMix64Random(seed: seed) }

    public mutating func next() -> UInt64 { generator.next() }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// Uniform in [lower, upper).
    public mutating func uniform(_ lower: Double, _ upper: Double) -> Double { lower + (upper - lower) * unit() }

    /// Uniform integer in lower...upper.
    public mutating func int(_ lower: Int, _ upper: Int) -> Int { lower + Int(next() % UInt64(upper - lower + 1)) }

    /// Standard normal (Box-Muller, one value per call).
    public mutating func gaussian() -> Double {
        let u1 = max(unit(), 1e-300), u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// A hash of two integers and a seed, for lattice noise (no state).
    public static func hash(_ seed: UInt64, _ i: Int, _ j: Int) -> Double {
        var r = SimRandom(seed: seed ^ (UInt64(bitPattern: Int64(i)) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(bitPattern: Int64(j)) &* 0xC2B2_AE3D_27D4_EB4F))
        return r.unit()
    }
}
