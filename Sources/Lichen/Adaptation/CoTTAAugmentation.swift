/// CoTTA's test-time augmentation for 1-channel images (research/tta.md §3.4, the default
/// "not soft" ranges), applied to a whole batch with one parameter draw shared by every image;
/// only the Gaussian noise differs per element. Pipeline, in order:
///
/// 1. clip to [0, 1];
/// 2. colour jitter: brightness f ∈ [0.6, 1.4] (x ← clip(f x)), contrast f ∈ [0.7, 1.3]
///    (x ← clip(f x + (1 − f) m), m the image's mean), saturation f ∈ [0.5, 1.5] and hue
///    h ∈ [−0.06, 0.06] (no-ops on one channel, as in torchvision, but still drawn), gamma
///    γ ∈ [0.7, 1.3] (x ← clip(clamp(x, 1e-8, 1)^γ)), run in a fresh random order each draw;
/// 3. edge-replication padding by ⌊H/2⌋ rows and ⌊W/2⌋ columns on each side (28 → 56);
/// 4. random affine about the padded image's centre, bilinear, fill 0: rotation ∈ [−15°, 15°],
///    translation t = round-half-even(U[−P/16, P/16]) pixels per axis (P the padded size),
///    scale ∈ [0.9, 1.1], no shear. A padded-image pixel at (x, y) (relative to the centre
///    (P − 1)/2, y down) samples the source at
///        x_s = ( cos θ (x − t_x) + sin θ (y − t_y)) / s,   y_s = (−sin θ (x − t_x) + cos θ (y − t_y)) / s
///    (relative to the centre), grid_sample's bilinear rule with zero outside the image;
/// 5. Gaussian blur, 5 × 5, σ ∈ [0.001, 0.5] (weights exp(−k²/2σ²), k = −2…2, normalised;
///    separable, rows then columns), reflect padding;
/// 6. centre crop back to H × W (top ⌊H/2⌋, left ⌊W/2⌋);
/// 7. horizontal flip of the whole batch with probability 0.5;
/// 8. additive Gaussian noise N(0, 0.005²) per element;
/// 9. clip to [0, 1].
///
/// Only what the crop keeps is computed: the affine output over the crop plus the blur's
/// 2-pixel reach, then the blur over the crop. This equals the full pipeline whenever
/// ⌊H/2⌋ >= 2 and ⌊W/2⌋ >= 2 (so H, W >= 4 is required): the blur's reflect padding then
/// lies outside what the crop keeps. With the ranges above the kept samples also never
/// reach past the padded image (crop corner at 14√2 px from the centre for 28 px, at most
/// 14√2 / 0.9 + 3.5 < 27.5 px away after the inverse map), so torchvision's fill mask has no
/// effect on the output either.
///
/// Random numbers come from the `SplitMix64Random` the caller owns (a session's), so a seed
/// fixes every draw. Noise pairs come from Marsaglia's polar method.
///
/// - Note: Scratch (three planes of at most (H + 4) × (W + 4) values) comes from the arena at
///   construction; `draw`, `apply` and `augment` allocate nothing.
public struct CoTTAAugmentation {
    /// One draw of every shared random parameter.
    public struct Parameters: Equatable, Sendable {
        /// The colour-jitter order: operation at position i is `(jitterOrder >> (3 i)) & 7`
        /// for i in 0..<5, with 0 brightness, 1 contrast, 2 saturation, 3 hue, 4 gamma.
        public var jitterOrder: UInt32
        public var brightness: Double
        public var contrast: Double
        public var saturation: Double
        public var hue: Double
        public var gamma: Double
        /// Rotation in degrees.
        public var angle: Double
        /// Translation in pixels (x right, y down).
        public var translateX: Int
        public var translateY: Int
        public var scale: Double
        /// Blur σ in pixels.
        public var sigma: Double
        public var flip: Bool

        /// The identity order (brightness, contrast, saturation, hue, gamma).
        public static let identityOrder: UInt32 = 0 | (1 << 3) | (2 << 6) | (3 << 9) | (4 << 12)

        public init(
            jitterOrder: UInt32 = identityOrder, brightness: Double = 1, contrast: Double = 1, saturation: Double = 1,
            hue: Double = 0, gamma: Double = 1, angle: Double = 0, translateX: Int = 0, translateY: Int = 0,
            scale: Double = 1, sigma: Double = 0.001, flip: Bool = false
        ) {
            self.jitterOrder = jitterOrder
            self.brightness = brightness
            self.contrast = contrast
            self.saturation = saturation
            self.hue = hue
            self.gamma = gamma
            self.angle = angle
            self.translateX = translateX
            self.translateY = translateY
            self.scale = scale
            self.sigma = sigma
            self.flip = flip
        }

        /// The operation at jitter position `i` (0 brightness … 4 gamma).
        public func jitterOperation(at i: Int) -> Int { Int((jitterOrder >> UInt32(3 * i)) & 7) }
    }

    public let height: Int
    public let width: Int
    public let maximumBatch: Int
    /// Standard deviation of the per-element noise (0.005 in the reference).
    public let noiseStandardDeviation: Float
    /// Padding per side: ⌊H/2⌋ rows, ⌊W/2⌋ columns.
    public var padTop: Int { height / 2 }
    public var padLeft: Int { width / 2 }
    public var paddedHeight: Int { height + 2 * padTop }
    public var paddedWidth: Int { width + 2 * padLeft }

    /// [H, W]: the jittered image; [H + 4, W + 4]: the affine output over the crop and the
    /// blur's reach; [H + 4, W]: the horizontal blur pass.
    private let jittered: TensorView
    private let region: TensorView
    private let rowBlurred: TensorView

    /// - Parameters:
    ///   - height, width: the image size (one channel), each >= 4.
    ///   - maximumBatch: the largest batch `apply` takes.
    ///   - noiseStandardDeviation: finite and >= 0 (0.005 in the reference).
    /// - Throws: `.invalidArgument` for sizes below 4 or a bad noise level; `.budgetExceeded`.
    public init(
        height: Int, width: Int, maximumBatch: Int, noiseStandardDeviation: Float = 0.005, arena: Arena
    ) throws(LichenError) {
        guard height >= 4 && height <= 1 << 14 else {
            throw .invalidArgument(name: "augmentation.height", value: height, reason: "must be in 4...16384")
        }
        guard width >= 4 && width <= 1 << 14 else {
            throw .invalidArgument(name: "augmentation.width", value: width, reason: "must be in 4...16384")
        }
        guard maximumBatch >= 1 else {
            throw .invalidArgument(name: "augmentation.maximumBatch", value: maximumBatch, reason: "must be >= 1")
        }
        guard noiseStandardDeviation.isFinite && noiseStandardDeviation >= 0 else {
            throw .invalidArgument(name: "augmentation.noise", value: 0, reason: "standard deviation must be finite and >= 0")
        }
        self.height = height
        self.width = width
        self.maximumBatch = maximumBatch
        self.noiseStandardDeviation = noiseStandardDeviation
        jittered = try arena.persistentTensor(.f32, try Shape(height, width))
        region = try arena.persistentTensor(.f32, try Shape(height + 4, width + 4))
        rowBlurred = try arena.persistentTensor(.f32, try Shape(height + 4, width))
    }

    // MARK: - Draw

    /// One draw of the shared parameters, in torchvision's order: the jitter order (a random
    /// permutation of 5), the five jitter factors, rotation, translation (x, y), scale, blur σ,
    /// flip.
    /// - Note: Allocates nothing.
    public func draw(_ random: inout SplitMix64Random) -> Parameters {
        var ops: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 1, 2, 3, 4)
        // Fisher–Yates from the top.
        var i = 4
        while i > 0 {
            let j = Int(random.next(below: UInt64(i + 1)))
            let a = CoTTAAugmentation.slot(ops, i), b = CoTTAAugmentation.slot(ops, j)
            CoTTAAugmentation.setSlot(&ops, i, b)
            CoTTAAugmentation.setSlot(&ops, j, a)
            i -= 1
        }
        var p = Parameters()
        p.jitterOrder = ops.0 | (ops.1 << 3) | (ops.2 << 6) | (ops.3 << 9) | (ops.4 << 12)
        p.brightness = random.uniform(0.6, 1.4)
        p.contrast = random.uniform(0.7, 1.3)
        p.saturation = random.uniform(0.5, 1.5)
        p.hue = random.uniform(-0.06, 0.06)
        p.gamma = random.uniform(0.7, 1.3)
        p.angle = random.uniform(-15, 15)
        let maxX = Double(paddedWidth) / 16, maxY = Double(paddedHeight) / 16
        p.translateX = Int(random.uniform(-maxX, maxX).rounded(.toNearestOrEven))
        p.translateY = Int(random.uniform(-maxY, maxY).rounded(.toNearestOrEven))
        p.scale = random.uniform(0.9, 1.1)
        p.sigma = random.uniform(0.001, 0.5)
        p.flip = random.nextUnitDouble() < 0.5
        return p
    }

    private static func slot(_ t: (UInt32, UInt32, UInt32, UInt32, UInt32), _ i: Int) -> UInt32 {
        switch i {
        case 0: return t.0
        case 1: return t.1
        case 2: return t.2
        case 3: return t.3
        default: return t.4
        }
    }

    private static func setSlot(_ t: inout (UInt32, UInt32, UInt32, UInt32, UInt32), _ i: Int, _ v: UInt32) {
        switch i {
        case 0: t.0 = v
        case 1: t.1 = v
        case 2: t.2 = v
        case 3: t.3 = v
        default: t.4 = v
        }
    }

    // MARK: - Apply

    /// Draws parameters from `random` and applies them (noise from `random` too).
    /// - Note: Allocates nothing.
    @discardableResult
    public func augment(
        _ input: TensorView, into output: TensorView, random: inout SplitMix64Random
    ) throws(LichenError) -> Parameters {
        let p = draw(&random)
        try apply(p, to: input, into: output, random: &random)
        return p
    }

    /// Applies one parameter draw to every image of `input` ([n, 1, H, W] or [n, H, W] f32,
    /// 1 <= n <= maximumBatch), writing `output` (same shape; must not alias `input`). Noise
    /// values come from `random` in element order (none drawn when the noise level is 0).
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch` (operand "augmentation.input" or
    ///   "augmentation.output"), `.invalidArgument(name: "augmentation.batch", ...)`.
    /// - Note: Allocates nothing.
    public func apply(
        _ p: Parameters, to input: TensorView, into output: TensorView, random: inout SplitMix64Random
    ) throws(LichenError) {
        let n = try requireImages(input, "augmentation.input")
        let m = try requireImages(output, "augmentation.output")
        guard m == n else { throw .shapeMismatch(operand: "augmentation.output", dimension: 0, expected: n, got: m) }
        let x = try input.f32Elements("augmentation.input"), y = try output.f32Elements("augmentation.output")
        let image = try jittered.f32Elements("scratch"), mapped = try region.f32Elements("scratch")
        let rows = try rowBlurred.f32Elements("scratch")
        let h = height, w = width, pixels = h * w
        let regionW = w + 4, regionH = h + 4
        // Affine: inverse map of §3.4 step 4, about the padded centre.
        let trig = AdaptationMath.sinCos(p.angle * 0.017453292519943295)
        let inverseScale = 1 / p.scale
        let cosS = trig.cos * inverseScale, sinS = trig.sin * inverseScale
        let centreX = Double(paddedWidth - 1) / 2, centreY = Double(paddedHeight - 1) / 2
        let tx = Double(p.translateX), ty = Double(p.translateY)
        // Blur weights exp(−k²/2σ²), k = −2…2, normalised.
        var weights: (Float, Float, Float, Float, Float) = (0, 0, 0, 0, 0)
        var total = 0.0
        var kernel: (Double, Double, Double) = (0, 0, 0)  // |k| = 0, 1, 2
        for k in 0..<3 {
            let v = GraphMath.exp(-0.5 * Double(k * k) / (p.sigma * p.sigma))
            switch k {
            case 0: kernel.0 = v
            case 1: kernel.1 = v
            default: kernel.2 = v
            }
        }
        total = kernel.0 + 2 * kernel.1 + 2 * kernel.2
        weights = (Float(kernel.2 / total), Float(kernel.1 / total), Float(kernel.0 / total),
                   Float(kernel.1 / total), Float(kernel.2 / total))
        let noise = noiseStandardDeviation
        var spare: Double? = nil
        for b in 0..<n {
            let base = b * pixels
            // 1. clip; 2. colour jitter.
            for i in 0..<pixels { image[i] = min(max(x[base + i], 0), 1) }
            for position in 0..<5 {
                switch p.jitterOperation(at: position) {
                case 0:
                    let f = Float(p.brightness)
                    for i in 0..<pixels { image[i] = min(max(f * image[i], 0), 1) }
                case 1:
                    var sum: Double = 0
                    for i in 0..<pixels { sum += Double(image[i]) }
                    let mean = Float(sum / Double(pixels)), f = Float(p.contrast)
                    for i in 0..<pixels { image[i] = min(max(f * image[i] + (1 - f) * mean, 0), 1) }
                case 4 where p.gamma != 1:  // γ = 1 is the identity (after the clamp to [1e-8, 1])
                    for i in 0..<pixels {
                        let v = Double(min(max(image[i], 1e-8), 1))
                        image[i] = min(max(Float(AdaptationMath.pow(v, p.gamma)), 0), 1)
                    }
                case 4:
                    for i in 0..<pixels { image[i] = max(image[i], 1e-8) }
                default:
                    break  // saturation and hue: no-ops on one channel
                }
            }
            // 3–4. Edge padding and the affine map, over the crop plus 2 pixels each side.
            for r in 0..<regionH {
                let yc = Double(padTop - 2 + r) - centreY - ty
                for c in 0..<regionW {
                    let xc = Double(padLeft - 2 + c) - centreX - tx
                    let xs = cosS * xc + sinS * yc + centreX
                    let ys = -sinS * xc + cosS * yc + centreY
                    mapped[r * regionW + c] = bilinear(image, xs, ys)
                }
            }
            // 5–6. Blur (rows, then columns) over the crop.
            for r in 0..<regionH {
                for c in 0..<w {
                    let o = r * regionW + c
                    rows[r * w + c] = weights.0 * mapped[o] + weights.1 * mapped[o + 1] + weights.2 * mapped[o + 2]
                        + weights.3 * mapped[o + 3] + weights.4 * mapped[o + 4]
                }
            }
            for r in 0..<h {
                for c in 0..<w {
                    let o = r * w + c
                    let v = weights.0 * rows[o] + weights.1 * rows[o + w] + weights.2 * rows[o + 2 * w]
                        + weights.3 * rows[o + 3 * w] + weights.4 * rows[o + 4 * w]
                    // 7. flip.
                    let column = p.flip ? w - 1 - c : c
                    y[base + r * w + column] = v
                }
            }
            // 8–9. Noise per element, clip.
            for i in 0..<pixels {
                var v = y[base + i]
                if noise > 0 {
                    let z: Double
                    if let s = spare {
                        z = s
                        spare = nil
                    } else {
                        let pair = random.standardNormalPair()
                        z = pair.0
                        spare = pair.1
                    }
                    v += noise * Float(z)
                }
                y[base + i] = min(max(v, 0), 1)
            }
        }
    }

    /// The padded image (edge replication of `image`, zero outside the padded frame) sampled
    /// bilinearly at padded coordinates (xs, ys), grid_sample's rule: neighbours outside
    /// the padded frame count as 0.
    @inline(__always)
    private func bilinear(_ image: F32Elements, _ xs: Double, _ ys: Double) -> Float {
        let x0 = xs.rounded(.down), y0 = ys.rounded(.down)
        let fx = Float(xs - x0), fy = Float(ys - y0)
        let ix = Int(x0), iy = Int(y0)
        let a = padded(image, iy, ix), b = padded(image, iy, ix + 1)
        let c = padded(image, iy + 1, ix), d = padded(image, iy + 1, ix + 1)
        return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
    }

    @inline(__always)
    private func padded(_ image: F32Elements, _ row: Int, _ column: Int) -> Float {
        guard row >= 0 && row < paddedHeight && column >= 0 && column < paddedWidth else { return 0 }
        let r = min(max(row - padTop, 0), height - 1), c = min(max(column - padLeft, 0), width - 1)
        return image[r * width + c]
    }

    /// The batch of an f32 `[n, 1, H, W]` or `[n, H, W]` view.
    private func requireImages(_ v: TensorView, _ operand: StaticString) throws(LichenError) -> Int {
        try v.require(.f32, operand)
        let s = v.shape
        guard s.rank == 3 || s.rank == 4 else { throw .shapeMismatch(operand: operand, dimension: -1, expected: 4, got: s.rank) }
        if s.rank == 4 && s[1] != 1 { throw .shapeMismatch(operand: operand, dimension: 1, expected: 1, got: s[1]) }
        let hd = s.rank - 2
        if s[hd] != height { throw .shapeMismatch(operand: operand, dimension: hd, expected: height, got: s[hd]) }
        if s[hd + 1] != width { throw .shapeMismatch(operand: operand, dimension: hd + 1, expected: width, got: s[hd + 1]) }
        let n = s[0]
        guard n >= 1 && n <= maximumBatch else {
            throw .invalidArgument(name: "augmentation.batch", value: n, reason: "must be in 1...the maximum batch")
        }
        return n
    }
}
