import Foundation

/// Image helpers of the corruptions: row-major Double planes of `width` x `height`.
enum ImageOps {
    enum Border {
        /// OpenCV BORDER_REFLECT_101: `gfedcb|abcdefgh|gfedcba` (edge not repeated).
        case reflect101
        /// scipy.ndimage "reflect" (half-sample symmetric): `dcba|abcd|dcba`.
        case reflect
        /// scipy.ndimage "nearest" / ImageMagick edge: `aaaa|abcd|dddd`.
        case nearest
    }

    static func index(_ i: Int, _ n: Int, _ border: Border) -> Int {
        if i >= 0 && i < n { return i }
        if n == 1 { return 0 }
        var j = i
        switch border {
        case .nearest:
            return j < 0 ? 0 : n - 1
        case .reflect101:
            while j < 0 || j >= n {
                if j < 0 { j = -j }
                if j >= n { j = 2 * n - 2 - j }
            }
        case .reflect:
            while j < 0 || j >= n {
                if j < 0 { j = -j - 1 }
                if j >= n { j = 2 * n - 1 - j }
            }
        }
        return j
    }

    /// scipy's 1-D Gaussian: radius ⌊truncate·σ + 0.5⌋, weights exp(−x²/2σ²) normalised.
    /// σ ≈ 0 gives the identity (scipy skips such axes).
    static func gaussianKernel(sigma: Double, truncate: Double) -> [Double] {
        if sigma <= 1e-15 { return [1] }
        let radius = Int(truncate * sigma + 0.5)
        var k = (-radius...radius).map { x in exp(-0.5 * Double(x * x) / (sigma * sigma)) }
        let s = k.reduce(0, +)
        for i in k.indices { k[i] /= s }
        return k
    }

    /// Separable correlation with a symmetric odd 1-D kernel along rows, then columns.
    static func separable(_ x: [Double], _ w: Int, _ h: Int, kernel: [Double], border: Border) -> [Double] {
        if kernel.count == 1 { return x.map { $0 * kernel[0] } }
        let r = kernel.count / 2
        var tmp = [Double](repeating: 0, count: w * h)
        for y in 0..<h {
            for c in 0..<w {
                var s = 0.0
                for t in 0..<kernel.count { s += kernel[t] * x[y * w + index(c + t - r, w, border)] }
                tmp[y * w + c] = s
            }
        }
        var out = [Double](repeating: 0, count: w * h)
        for y in 0..<h {
            for c in 0..<w {
                var s = 0.0
                for t in 0..<kernel.count { s += kernel[t] * tmp[index(y + t - r, h, border) * w + c] }
                out[y * w + c] = s
            }
        }
        return out
    }

    /// Gaussian blur as skimage.filters.gaussian (scipy, truncate 4, border "nearest").
    static func gaussianBlur(_ x: [Double], _ w: Int, _ h: Int, sigma: Double) -> [Double] {
        separable(x, w, h, kernel: gaussianKernel(sigma: sigma, truncate: 4), border: .nearest)
    }

    /// 2-D correlation with a square odd kernel (`size` x `size`), as cv2.filter2D.
    static func filter2D(_ x: [Double], _ w: Int, _ h: Int, kernel: [Double], size: Int, border: Border) -> [Double] {
        let r = size / 2
        var taps: [(dy: Int, dx: Int, weight: Double)] = []
        for ky in 0..<size { for kx in 0..<size where kernel[ky * size + kx] != 0 {
            taps.append((ky - r, kx - r, kernel[ky * size + kx]))
        } }
        var out = [Double](repeating: 0, count: w * h)
        for y in 0..<h {
            for c in 0..<w {
                var s = 0.0
                for t in taps { s += t.weight * x[index(y + t.dy, h, border) * w + index(c + t.dx, w, border)] }
                out[y * w + c] = s
            }
        }
        return out
    }

    /// Bilinear sample at (row `y`, column `x`) with the border rule applied to each tap.
    static func bilinear(_ img: [Double], _ w: Int, _ h: Int, y: Double, x: Double, border: Border) -> Double {
        let y0 = y.rounded(.down), x0 = x.rounded(.down)
        let fy = y - y0, fx = x - x0
        let iy = Int(y0), ix = Int(x0)
        let r0 = index(iy, h, border) * w, r1 = index(iy + 1, h, border) * w
        let c0 = index(ix, w, border), c1 = index(ix + 1, w, border)
        let top = img[r0 + c0] * (1 - fx) + img[r0 + c1] * fx
        let bottom = img[r1 + c0] * (1 - fx) + img[r1 + c1] * fx
        return top * (1 - fy) + bottom * fy
    }

    /// CIFAR-C's `clipped_zoom`: crop the centre ⌈n/z⌉ (per axis), zoom it by `z` with
    /// scipy's order-1 spline (output size round(crop·z), input coordinate o·(crop−1)/(out−1)),
    /// then trim the centre n.
    static func clippedZoom(_ x: [Double], _ w: Int, _ h: Int, factor z: Double) -> [Double] {
        func axis(_ n: Int) -> (top: Int, crop: Int, out: Int, trim: Int) {
            let crop = Int((Double(n) / z).rounded(.up))
            let top = (n - crop) / 2
            let out = Int((Double(crop) * z).rounded(.toNearestOrEven))
            return (top, crop, out, (out - n) / 2)
        }
        let ay = axis(h), ax = axis(w)
        func source(_ o: Int, _ a: (top: Int, crop: Int, out: Int, trim: Int)) -> Double {
            let oo = o + a.trim
            let scale = a.out > 1 ? Double(a.crop - 1) / Double(a.out - 1) : 0
            return Double(a.top) + Double(oo) * scale
        }
        var out = [Double](repeating: 0, count: w * h)
        for r in 0..<h {
            let sy = source(r, ay)
            for c in 0..<w {
                out[r * w + c] = bilinear(x, w, h, y: sy, x: source(c, ax), border: .nearest)
            }
        }
        return out
    }

    /// Motion blur after ImageMagick's MotionBlurImage: width = 2⌈radius⌉ + 1 taps at
    /// offsets i = 0 ..< width along the direction `angle` (degrees; 0 = +x, rounded to whole
    /// pixels as ⌈i·cos − 0.5⌉, ⌈i·sin − 0.5⌉), weights exp(−i²/2σ²) normalised, edge pixels
    /// repeated outside the image. One-sided: each output pixel averages pixels "behind" it.
    static func motionBlur(_ x: [Double], _ w: Int, _ h: Int, radius: Double, sigma: Double, angle: Double) -> [Double] {
        let width = Int(2 * radius.rounded(.up) + 1)
        var weights = (0..<width).map { i in exp(-Double(i * i) / (2 * sigma * sigma)) }
        let total = weights.reduce(0, +)
        for i in weights.indices { weights[i] /= total }
        let radians = angle * Double.pi / 180
        let cx = cos(radians), sy = sin(radians)
        let offsets = (0..<width).map { i -> (dx: Int, dy: Int) in
            (Int((Double(i) * cx - 0.5).rounded(.up)), Int((Double(i) * sy - 0.5).rounded(.up)))
        }
        var out = [Double](repeating: 0, count: w * h)
        for r in 0..<h {
            for c in 0..<w {
                var s = 0.0
                for i in 0..<width {
                    let rr = index(r + offsets[i].dy, h, .nearest), cc = index(c + offsets[i].dx, w, .nearest)
                    s += weights[i] * x[rr * w + cc]
                }
                out[r * w + c] = s
            }
        }
        return out
    }

    /// PIL's BOX resampling coefficients along one axis (`precompute_coeffs` with the box
    /// filter, support 0.5 scaled by the downscale factor): output o averages the input pixels
    /// whose centres fall in (centre − support, centre + support].
    static func boxCoefficients(input n: Int, output m: Int) -> [(start: Int, weights: [Double])] {
        let scale = Double(n) / Double(m)
        let filterScale = max(scale, 1)
        let support = 0.5 * filterScale
        return (0..<m).map { o in
            let centre = (Double(o) + 0.5) * scale
            var lo = Int(centre - support + 0.5)
            if lo < 0 { lo = 0 }
            var hi = Int(centre + support + 0.5)
            if hi > n { hi = n }
            var weights: [Double] = []
            for i in lo..<max(hi, lo) {
                let t = (Double(i) - centre + 0.5) / filterScale
                weights.append(t > -0.5 && t <= 0.5 ? 1 : 0)
            }
            let s = weights.reduce(0, +)
            if s > 0 { for i in weights.indices { weights[i] /= s } }
            return (lo, weights)
        }
    }

    /// PIL-style BOX resize (horizontal pass, then vertical).
    static func boxResize(_ x: [Double], _ w: Int, _ h: Int, to nw: Int, _ nh: Int) -> [Double] {
        let cw = boxCoefficients(input: w, output: nw)
        var tmp = [Double](repeating: 0, count: nw * h)
        for r in 0..<h {
            for o in 0..<nw {
                var s = 0.0
                for (k, wt) in cw[o].weights.enumerated() { s += wt * x[r * w + cw[o].start + k] }
                tmp[r * nw + o] = s
            }
        }
        let ch = boxCoefficients(input: h, output: nh)
        var out = [Double](repeating: 0, count: nw * nh)
        for o in 0..<nh {
            for c in 0..<nw {
                var s = 0.0
                for (k, wt) in ch[o].weights.enumerated() { s += wt * tmp[(ch[o].start + k) * nw + c] }
                out[o * nw + c] = s
            }
        }
        return out
    }

    static func clip01(_ v: Double) -> Double { min(max(v, 0), 1) }

    /// Truncation to 8 bits, as numpy's `np.uint8(v * 255)` on values in [0, 1], back in [0, 1].
    static func truncate8(_ v: Double) -> Double { (clip01(v) * 255).rounded(.towardZero) / 255 }
}
