import Foundation

extension Corruption {
    /// Accepted image sides. Parameters are tabulated for 28x28 (README.md); other sizes use
    /// the same pixel-unit parameters.
    public static let supportedSides = 4...4096

    /// Corrupts one grayscale image of `width` x `height` pixels (row-major, values in [0, 1]) at
    /// `severity` 1...5; deterministic in `seed` (the same seed gives the same bits on every platform
    /// with the same libm: see README.md). Returns width*height values in [0, 1] (clipped).
    /// Throws CorruptionError for a bad severity/size, a pixel outside [0, 1] or a libjpeg failure.
    public func apply(to image: [Float], width: Int, height: Int, severity: Int, seed: UInt64) throws -> [Float] {
        guard (1...5).contains(severity) else {
            throw CorruptionError(.badSeverity, "\(rawValue): severity \(severity) is outside 1...5")
        }
        guard Self.supportedSides.contains(width), Self.supportedSides.contains(height) else {
            throw CorruptionError(.badSize, "\(rawValue): \(width)x\(height) is outside \(Self.supportedSides) per side")
        }
        guard image.count == width * height else {
            throw CorruptionError(.badSize, "\(rawValue): \(image.count) pixels for \(width)x\(height)")
        }
        if let i = image.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            throw CorruptionError(.badPixel, "\(rawValue): pixel \(i) is \(image[i]), not in [0, 1]")
        }
        let x = image.map { Double($0) }
        var rng = CorruptionRandom(seed: seed, salt: UInt64(Corruption.allCases.firstIndex(of: self)! + 1))
        let s = severity - 1
        let out = try CorruptionKernels.apply(self, x, width, height, s, &rng)
        return out.map { Float(ImageOps.clip01($0)) }
    }

    /// The parameter(s) used at `severity`, as text for docs and `lichen stream show`
    /// (e.g. "sigma 0.10"); "invalid severity N" outside 1...5.
    public func parameterDescription(severity: Int) -> String {
        guard (1...5).contains(severity) else { return "invalid severity \(severity)" }
        let s = severity - 1
        typealias P = CorruptionParameters
        func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
        switch self {
        case .gaussianNoise: return "sigma \(f(P.gaussianSigma[s]))"
        case .shotNoise: return "Poisson(\(Int(P.shotRate[s]))x)/\(Int(P.shotRate[s]))"
        case .impulseNoise: return "salt-and-pepper fraction \(f(P.impulseAmount[s]))"
        case .defocusBlur:
            return "disk radius \(f(P.defocus[s].radius, 1)) px, alias sigma \(f(P.defocus[s].alias, 1))"
        case .glassBlur:
            let g = P.glass[s]
            return "sigma \(f(g.sigma, 3)) px, delta \(g.delta) px, \(g.iterations) iteration\(g.iterations == 1 ? "" : "s"), swap probability \(f(g.swapProbability, 1))"
        case .motionBlur:
            return "radius \(f(P.motion[s].radius, 3)) px, sigma \(f(P.motion[s].sigma, 3)) px, angle U(-45, 45) deg"
        case .zoomBlur: return "zooms 1.00...\(f(1 + Double(P.zoomMaxPercent[s]) / 100)) step 0.01"
        case .snow:
            let p = P.snow[s]
            return "flakes N(\(f(p.mean)), \(f(p.std))) zoom \(f(p.zoom)) threshold \(f(p.threshold)), "
                + "blur radius \(f(p.radius, 3)) sigma \(f(p.sigma, 3)) px, image weight \(f(p.keep))"
        case .frost: return "\(f(P.frost[s].image)) x + \(f(P.frost[s].frost)) frost"
        case .fog: return "plasma amount \(f(P.fog[s].amount)), decay \(f(P.fog[s].decay))"
        case .brightness: return "+\(f(P.brightness[s]))"
        case .contrast: return "factor \(f(P.contrast[s]))"
        case .elasticTransform:
            let e = P.elastic[s]
            return "alpha \(f(e.alpha)) px, sigma \(f(e.sigma)) px, affine \(f(e.affine)) px"
        case .pixelate:
            return "box down to \(P.pixelateSide[s]) px and back (at 28 px)"
        case .jpegCompression: return "quality \(P.jpegQuality[s])"
        }
    }
}

/// The corruption implementations on Double planes (values unclipped until the end).
enum CorruptionKernels {
    typealias P = CorruptionParameters

    static func apply(_ c: Corruption, _ x: [Double], _ w: Int, _ h: Int, _ s: Int, _ rng: inout CorruptionRandom) throws -> [Double] {
        switch c {
        case .gaussianNoise:
            let sigma = P.gaussianSigma[s]
            return x.map { $0 + sigma * rng.gaussian() }
        case .shotNoise:
            let rate = P.shotRate[s]
            return x.map { Double(rng.poisson($0 * rate)) / rate }
        case .impulseNoise:
            // skimage `random_noise(mode="s&p")`: each pixel flips with probability `amount`,
            // to 1 or 0 with equal odds.
            let amount = P.impulseAmount[s]
            return x.map { v in
                let flip = rng.uniform() < amount
                let salt = rng.uniform() < 0.5
                return flip ? (salt ? 1 : 0) : v
            }
        case .defocusBlur: return defocus(x, w, h, P.defocus[s])
        case .glassBlur: return glass(x, w, h, P.glass[s], &rng)
        case .motionBlur:
            let angle = rng.uniform(-45, 45)
            return ImageOps.motionBlur(x, w, h, radius: P.motion[s].radius, sigma: P.motion[s].sigma, angle: angle)
        case .zoomBlur:
            var sum = x
            for percent in 0...P.zoomMaxPercent[s] {
                let z = ImageOps.clippedZoom(x, w, h, factor: 1 + Double(percent) / 100)
                for i in sum.indices { sum[i] += z[i] }
            }
            let n = Double(P.zoomMaxPercent[s] + 2)
            return sum.map { $0 / n }
        case .snow: return snow(x, w, h, P.snow[s], &rng)
        case .frost:
            let texture = FrostTexture.make(width: w, height: h, rng: &rng)
            let p = P.frost[s]
            return zip(x, texture).map { p.image * $0 + p.frost * $1 }
        case .fog:
            let p = P.fog[s]
            let maximum = x.max() ?? 0
            let plasma = Plasma.fractal(width: w, height: h, decay: p.decay, rng: &rng)
            return zip(x, plasma).map { ($0 + p.amount * $1) * maximum / (maximum + p.amount) }
        case .brightness:
            // HSV value + c; for gray (saturation 0) that is the pixel itself + c.
            return x.map { $0 + P.brightness[s] }
        case .contrast:
            let mean = x.reduce(0, +) / Double(x.count)
            return x.map { ($0 - mean) * P.contrast[s] + mean }
        case .elasticTransform: return elastic(x, w, h, P.elastic[s], &rng)
        case .pixelate:
            let side = P.pixelateSide[s]
            let nw = max(1, w * side / 28), nh = max(1, h * side / 28)
            let small = ImageOps.boxResize(x, w, h, to: nw, nh)
            return ImageOps.boxResize(small, nw, nh, to: w, h)
        case .jpegCompression:
            let bytes = x.map { UInt8((ImageOps.clip01($0) * 255).rounded(.toNearestOrEven)) }
            let decoded = try JPEGCodec.roundTrip(bytes, width: w, height: h, quality: P.jpegQuality[s])
            return decoded.map { Double($0) / 255 }
        }
    }

    /// CIFAR-C's `disk`: a 17x17 grid (−8...8) with 1 where x² + y² ≤ r², normalised, smoothed
    /// by a 3x3 Gaussian of σ = alias (OpenCV's getGaussianKernel), applied with
    /// cv2.filter2D's default reflect-101 border.
    static func defocus(_ x: [Double], _ w: Int, _ h: Int, _ p: (radius: Double, alias: Double)) -> [Double] {
        let n = 17, r = 8
        var disk = [Double](repeating: 0, count: n * n)
        for y in -r...r { for c in -r...r where Double(y * y + c * c) <= p.radius * p.radius {
            disk[(y + r) * n + c + r] = 1
        } }
        let total = disk.reduce(0, +)
        for i in disk.indices { disk[i] /= total }
        var g = (-1...1).map { exp(-Double($0 * $0) / (2 * p.alias * p.alias)) }
        let gs = g.reduce(0, +)
        for i in g.indices { g[i] /= gs }
        let kernel = ImageOps.separable(disk, n, n, kernel: g, border: .reflect101)
        return ImageOps.filter2D(x, w, h, kernel: kernel, size: n, border: .reflect101)
    }

    /// Glass blur (CIFAR-C's algorithm with MNIST-C's swap probability): Gaussian blur (skimage),
    /// truncation to 8 bits, then `iterations` sweeps from the bottom-right corner, each pixel
    /// swapped with probability `swapProbability` with a neighbour offset by numpy-style
    /// randint(−δ, δ) (upper bound exclusive), then the Gaussian blur again.
    static func glass(_ x: [Double], _ w: Int, _ h: Int, _ p: (sigma: Double, delta: Int, iterations: Int, swapProbability: Double), _ rng: inout CorruptionRandom) -> [Double] {
        var y = ImageOps.gaussianBlur(x, w, h, sigma: p.sigma).map(ImageOps.truncate8)
        let d = p.delta
        for _ in 0..<p.iterations {
            for r in stride(from: h - d, to: d, by: -1) {
                for c in stride(from: w - d, to: d, by: -1) {
                    let dx = rng.integer(-d, d), dy = rng.integer(-d, d)
                    if rng.uniform() < p.swapProbability { y.swapAt(r * w + c, (r + dy) * w + c + dx) }
                }
            }
        }
        return ImageOps.gaussianBlur(y, w, h, sigma: p.sigma)
    }

    /// CIFAR-C's snow on gray: a N(mean, std) flake layer, centre-zoomed, thresholded, clipped,
    /// truncated to 8 bits, motion-blurred at an angle U(−135°, −45°) (ImageMagick-style kernel,
    /// see ImageOps.motionBlur); the image brightened as keep·x + (1 − keep)·max(x, 1.5x + 0.5);
    /// the layer and its 180° rotation added.
    static func snow(_ x: [Double], _ w: Int, _ h: Int, _ p: (mean: Double, std: Double, zoom: Double, threshold: Double, radius: Double, sigma: Double, keep: Double), _ rng: inout CorruptionRandom) -> [Double] {
        var layer = (0..<(w * h)).map { _ in p.mean + p.std * rng.gaussian() }
        layer = ImageOps.clippedZoom(layer, w, h, factor: p.zoom)
        layer = layer.map { $0 < p.threshold ? 0 : ImageOps.truncate8($0) }
        let angle = rng.uniform(-135, -45)
        layer = ImageOps.motionBlur(layer, w, h, radius: p.radius, sigma: p.sigma, angle: angle)
        let n = w * h
        return (0..<n).map { i in
            let v = x[i]
            let bright = p.keep * v + (1 - p.keep) * max(v, 1.5 * v + 0.5)
            return bright + layer[i] + layer[n - 1 - i]
        }
    }

    /// CIFAR-C's elastic transform: a random affine warp (three points of a centred square
    /// moved by U(−affine, affine) px; bilinear, reflect-101 border, as cv2.warpAffine), then a
    /// displacement field of U(−1, 1) noise smoothed by a Gaussian (σ, truncate 3, reflect)
    /// and scaled by α, sampled bilinearly with the reflect border (scipy map_coordinates).
    static func elastic(_ x: [Double], _ w: Int, _ h: Int, _ p: (alpha: Double, sigma: Double, affine: Double), _ rng: inout CorruptionRandom) -> [Double] {
        let cy = Double(h / 2), cx = Double(w / 2)
        let sq = Double(min(w, h) / 3)
        // (first, second) coordinate pairs as CIFAR-C builds them; cv2 reads them as (x, y).
        let src: [(Double, Double)] = [(cy + sq, cx + sq), (cy + sq, cx - sq), (cy - sq, cx - sq)]
        var dst = src
        for i in 0..<3 {
            dst[i].0 += rng.uniform(-p.affine, p.affine)
            dst[i].1 += rng.uniform(-p.affine, p.affine)
        }
        // Inverse map dst -> src (warpAffine samples the source at M⁻¹·(x, y)).
        let inverse = affine(from: dst, to: src)
        var warped = [Double](repeating: 0, count: w * h)
        for r in 0..<h {
            for c in 0..<w {
                let (xc, yc) = (Double(c), Double(r))
                let sx = inverse[0] * xc + inverse[1] * yc + inverse[2]
                let sy = inverse[3] * xc + inverse[4] * yc + inverse[5]
                warped[r * w + c] = ImageOps.bilinear(x, w, h, y: sy, x: sx, border: .reflect101)
            }
        }
        let kernel = ImageOps.gaussianKernel(sigma: p.sigma, truncate: 3)
        let fieldX = ImageOps.separable((0..<(w * h)).map { _ in rng.uniform(-1, 1) }, w, h, kernel: kernel, border: .reflect)
        let fieldY = ImageOps.separable((0..<(w * h)).map { _ in rng.uniform(-1, 1) }, w, h, kernel: kernel, border: .reflect)
        var out = [Double](repeating: 0, count: w * h)
        for r in 0..<h {
            for c in 0..<w {
                let i = r * w + c
                out[i] = ImageOps.bilinear(warped, w, h, y: Double(r) + p.alpha * fieldY[i], x: Double(c) + p.alpha * fieldX[i], border: .reflect)
            }
        }
        return out
    }

    /// The affine map (a, b, c, d, e, f) with x' = a·x + b·y + c, y' = d·x + e·y + f taking the
    /// three points `from` (as (x, y)) to `to` (Cramer's rule).
    static func affine(from p: [(Double, Double)], to q: [(Double, Double)]) -> [Double] {
        let (x1, y1) = p[0], (x2, y2) = p[1], (x3, y3) = p[2]
        let det = x1 * (y2 - y3) - y1 * (x2 - x3) + (x2 * y3 - x3 * y2)
        func solve(_ v1: Double, _ v2: Double, _ v3: Double) -> (Double, Double, Double) {
            let a = (v1 * (y2 - y3) - y1 * (v2 - v3) + (v2 * y3 - v3 * y2)) / det
            let b = (x1 * (v2 - v3) - v1 * (x2 - x3) + (x2 * v3 - x3 * v2)) / det
            let c = (x1 * (y2 * v3 - y3 * v2) - y1 * (x2 * v3 - x3 * v2) + v1 * (x2 * y3 - x3 * y2)) / det
            return (a, b, c)
        }
        let (a, b, c) = solve(q[0].0, q[1].0, q[2].0)
        let (d, e, f) = solve(q[0].1, q[1].1, q[2].1)
        return [a, b, c, d, e, f]
    }
}
