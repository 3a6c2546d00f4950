import Foundation

/// A procedural surface texture: lattice value noise at a fixed spatial frequency, over the
/// surface coordinate u (metres along the surface) and, for a 2-D texture, the height v.
/// A textureless surface has amplitude 0: stereo finds nothing to match on it.
public struct SurfaceTexture: Sendable {
    /// Mean grey level (0...255).
    public var base: Double
    /// Peak deviation from the mean (0 = textureless).
    public var amplitude: Double
    /// Cycles per metre.
    public var frequency: Double
    /// Whether the noise varies with height too.
    public var twoDimensional: Bool
    public var seed: UInt64

    public var isTextureless: Bool { amplitude < 1 }

    public init(base: Double, amplitude: Double, frequency: Double, twoDimensional: Bool, seed: UInt64) {
        self.base = base
        self.amplitude = amplitude
        self.frequency = frequency
        self.twoDimensional = twoDimensional
        self.seed = seed
    }

    /// The noise in [-1, 1] at (u, v): smoothstep-interpolated random lattice values.
    public func noise(_ u: Double, _ v: Double) -> Double {
        let x = u * frequency, y = twoDimensional ? v * frequency : 0
        let i = Int(floor(x)), j = Int(floor(y))
        let fx = x - floor(x), fy = y - floor(y)
        let sx = fx * fx * (3 - 2 * fx), sy = fy * fy * (3 - 2 * fy)
        let a = SimRandom.hash(seed, i, j), b = SimRandom.hash(seed, i + 1, j)
        let c = SimRandom.hash(seed, i, j + 1), d = SimRandom.hash(seed, i + 1, j + 1)
        let top = a + (b - a) * sx, bottom = c + (d - c) * sx
        return 2 * (top + (bottom - top) * sy) - 1
    }

    /// The grey level seen at (u, v) when one pixel spans `footprint` metres of the surface:
    /// the noise's contrast falls as more of its cycles fall into one pixel (a first-order
    /// low-pass: factor 1 / (1 + (footprint · frequency)²)).
    public func grey(_ u: Double, _ v: Double, footprint: Double) -> Double {
        let cyclesPerPixel = footprint * frequency
        return base + amplitude * noise(u, v) / (1 + cyclesPerPixel * cyclesPerPixel)
    }
}
