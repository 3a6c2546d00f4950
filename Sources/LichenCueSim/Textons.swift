import Foundation

/// The complementary cue's feature (research/methods.md 3.2, the authors' `Textons`): 10
/// intensity and 10 horizontal-gradient textons of 5 × 5 patches, 49 patches on a 7 × 7 grid,
/// each patch counted for its nearest texton (Euclidean) in each dictionary; the two
/// histograms are normalised to sum 0.5 each, and their entropy (bits) is the 21st value.
public struct TextonDictionary: Sendable {
    public static let patch = 5
    public static let patchValues = 25
    public static let perKind = 10
    public static let grid = 7
    public static let featureCount = 2 * perKind + 1

    /// Textons, `perKind` rows of 25 values each.
    public var intensity: [[Double]]
    public var gradient: [[Double]]

    public init(intensity: [[Double]], gradient: [[Double]]) {
        self.intensity = intensity
        self.gradient = gradient
    }

    /// The top-left corners of the 49 grid patches (the authors' grid: step (size − 5) / 7,
    /// offset half a step).
    public static func gridCorners(columns: Int, rows: Int) -> [(Int, Int)] {
        let gx = (columns - patch) / grid, gy = (rows - patch) / grid
        var corners: [(Int, Int)] = []
        for nx in 0..<grid { for ny in 0..<grid { corners.append((gx * nx + gx / 2, gy * ny + gy / 2)) } }
        return corners
    }

    /// The intensity patch at (x, y) and its x-gradient patch: central differences inside the
    /// patch, twice the one-sided difference at its left and right edges (the authors' scaling).
    public static func patches(_ image: [UInt8], columns: Int, x: Int, y: Int) -> ([Double], [Double]) {
        var p = [Double](repeating: 0, count: patchValues), g = p
        for yy in 0..<patch {
            for xx in 0..<patch {
                let at = { (dx: Int) in Double(image[(y + yy) * columns + x + xx + dx]) }
                p[yy * patch + xx] = at(0)
                if xx == 0 { g[yy * patch + xx] = 2 * (at(1) - at(0)) }
                else if xx == patch - 1 { g[yy * patch + xx] = 2 * (at(0) - at(-1)) }
                else { g[yy * patch + xx] = at(1) - at(-1) }
            }
        }
        return (p, g)
    }

    static func nearest(_ textons: [[Double]], _ x: [Double]) -> Int {
        var best = 0, bestDistance = Double.infinity
        for (i, t) in textons.enumerated() {
            var s = 0.0
            for j in 0..<x.count { s += (t[j] - x[j]) * (t[j] - x[j]) }
            if s < bestDistance { bestDistance = s; best = i }
        }
        return best
    }

    /// The 21-D feature of a grey image.
    public func features(_ image: [UInt8], columns: Int, rows: Int) -> [Float] {
        var hist = [Double](repeating: 0, count: 2 * Self.perKind)
        for (x, y) in Self.gridCorners(columns: columns, rows: rows) {
            let (p, g) = Self.patches(image, columns: columns, x: x, y: y)
            hist[Self.nearest(intensity, p)] += 1
            hist[Self.perKind + Self.nearest(gradient, g)] += 1
        }
        let n = Double(Self.grid * Self.grid)
        var out = [Float](repeating: 0, count: Self.featureCount)
        var entropy = 0.0
        for i in 0..<hist.count {
            let f = hist[i] / (2 * n)
            out[i] = Float(f)
            if f > 0 { entropy -= f * log2(f) }
        }
        out[2 * Self.perKind] = Float(entropy)
        return out
    }

    /// Learns both dictionaries by winner-take-all competitive learning (Kohonen style, rate
    /// `rate`): textons start as random patches of the frames; then, `passes` times, `samples`
    /// random patches per frame each pull their nearest texton towards themselves.
    public static func learn(frames: [[UInt8]], columns: Int, rows: Int, rate: Double = 0.02, samples: Int = 49,
                             passes: Int = 2, seed: UInt64) -> TextonDictionary {
        var random = SimRandom(seed: seed)
        func randomPatches(_ frame: [UInt8]) -> ([Double], [Double]) {
            let x = random.int(0, columns - patch), y = random.int(0, rows - patch)
            return patches(frame, columns: columns, x: x, y: y)
        }
        var intensity: [[Double]] = [], gradient: [[Double]] = []
        for _ in 0..<perKind {
            let (p, g) = randomPatches(frames[random.int(0, frames.count - 1)])
            intensity.append(p)
            gradient.append(g)
        }
        for _ in 0..<passes {
            for frame in frames {
                for _ in 0..<samples {
                    let (p, g) = randomPatches(frame)
                    let i = nearest(intensity, p), j = nearest(gradient, g)
                    for k in 0..<patchValues {
                        intensity[i][k] += rate * (p[k] - intensity[i][k])
                        gradient[j][k] += rate * (g[k] - gradient[j][k])
                    }
                }
            }
        }
        return TextonDictionary(intensity: intensity, gradient: gradient)
    }
}
