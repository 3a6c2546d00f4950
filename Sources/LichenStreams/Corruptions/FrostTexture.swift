import Foundation

/// A procedural grayscale frost texture in [0, 1], standing in for the photographs that
/// CIFAR-C crops (frost1.png ... frost6.jpg, not redistributable here). Two layers, both drawn
/// from the image's seeded generator:
/// - haze: two-octave value noise (lattice spacing 7 and 3.5 px, smoothstep interpolation)
///   (amplitudes 0.65 and 0.35) mapped to 0.12 ... 0.42, the dim, uneven film of a frosted lens;
/// - ice crystals: 6–9 needles grown from random points in random directions, 8–16 px long in
///   half-pixel steps, each step depositing a bright value 0.55–1.0 with a bilinear splat; each
///   step spawns a side branch at ±60° (hexagonal ice) with probability 0.06, half the
///   remaining length (at most 64 needles in all). The needle layer is smoothed by a Gaussian
///   of σ 0.5 px.
/// frost = clip(0.12 + 0.3·haze + needles). Mean ≈ 0.38 over 200 draws (README.md).
enum FrostTexture {
    static func make(width w: Int, height h: Int, rng: inout CorruptionRandom) -> [Double] {
        var haze = [Double](repeating: 0, count: w * h)
        for (spacing, amplitude) in [(7.0, 0.65), (3.5, 0.35)] {
            let gw = Int(Double(w) / spacing) + 2, gh = Int(Double(h) / spacing) + 2
            let lattice = (0..<(gw * gh)).map { _ in rng.uniform() }
            for r in 0..<h {
                let fy = Double(r) / spacing
                let iy = Int(fy), ty = smooth(fy - Double(iy))
                for c in 0..<w {
                    let fx = Double(c) / spacing
                    let ix = Int(fx), tx = smooth(fx - Double(ix))
                    let a = lattice[iy * gw + ix], b = lattice[iy * gw + ix + 1]
                    let d = lattice[(iy + 1) * gw + ix], e = lattice[(iy + 1) * gw + ix + 1]
                    let v = (a * (1 - tx) + b * tx) * (1 - ty) + (d * (1 - tx) + e * tx) * ty
                    haze[r * w + c] += amplitude * v
                }
            }
        }
        var needles = [Double](repeating: 0, count: w * h)
        func deposit(_ y: Double, _ x: Double, _ v: Double) {
            let y0 = y.rounded(.down), x0 = x.rounded(.down)
            let fy = y - y0, fx = x - x0
            for (dy, wy) in [(0, 1 - fy), (1, fy)] {
                for (dx, wx) in [(0, 1 - fx), (1, fx)] {
                    let r = Int(y0) + dy, c = Int(x0) + dx
                    guard r >= 0, r < h, c >= 0, c < w else { continue }
                    let i = r * w + c
                    needles[i] = max(needles[i], v * wy * wx * 1.6)
                }
            }
        }
        struct Needle { var y: Double; var x: Double; var angle: Double; var length: Double; var brightness: Double }
        var pending: [Needle] = []
        let count = rng.integer(6, 10)
        for _ in 0..<count {
            pending.append(Needle(
                y: rng.uniform(0, Double(h)), x: rng.uniform(0, Double(w)), angle: rng.uniform(0, 2 * Double.pi),
                length: rng.uniform(8, 16), brightness: rng.uniform(0.55, 1.0)))
        }
        var drawn = 0
        while let needle = pending.popLast(), drawn < 64 {
            drawn += 1
            let dy = sin(needle.angle) * 0.5, dx = cos(needle.angle) * 0.5
            var t = 0.0
            var (y, x) = (needle.y, needle.x)
            while t < needle.length {
                deposit(y, x, needle.brightness)
                if rng.uniform() < 0.06 {
                    let side = rng.uniform() < 0.5 ? -1.0 : 1.0
                    pending.append(Needle(
                        y: y, x: x, angle: needle.angle + side * Double.pi / 3, length: (needle.length - t) / 2,
                        brightness: needle.brightness * 0.85))
                }
                y += dy
                x += dx
                t += 0.5
            }
        }
        needles = ImageOps.gaussianBlur(needles, w, h, sigma: 0.5)
        return (0..<(w * h)).map { i in ImageOps.clip01(0.12 + 0.3 * haze[i] + needles[i]) }
    }

    private static func smooth(_ t: Double) -> Double { t * t * (3 - 2 * t) }
}
