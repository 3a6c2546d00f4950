/// Parameter tables of the 15 corruptions for 28x28 grayscale, index = severity − 1.
/// Sources and the 32 → 28 px scaling are documented in README.md beside this file.
enum CorruptionParameters {
    /// Spatial scale from CIFAR-10-C (32 px) to Fashion-MNIST (28 px).
    static let scale = 28.0 / 32.0

    // Noise (resolution independent: CIFAR-10-C values).
    static let gaussianSigma: [Double] = [0.04, 0.06, 0.08, 0.09, 0.10]
    static let shotRate: [Double] = [500, 250, 100, 75, 50]
    static let impulseAmount: [Double] = [0.01, 0.02, 0.03, 0.05, 0.07]

    // Blur.
    /// (disk radius, alias σ): CIFAR-10-C values, not scaled (the disk is drawn on an integer
    /// grid: radius < 1 is one pixel, 1 is the 5-pixel plus, 1.5 the 3x3 block).
    static let defocus: [(radius: Double, alias: Double)] = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)]
    /// (σ, max δ, iterations, swap probability): MNIST-C's grayscale glass blur (σ 0.7 px, δ 1,
    /// 2 iterations, each swap made with probability 0.5), laddered around it. CIFAR-10-C's
    /// ladder (σ 0.05 to 0.4 px, every swap made) does not suit 28x28 images on a black
    /// background: the σ is too small to blur, and the unconditional swaps drag object pixels
    /// several pixels up and left over the background (each moved value is visited again by the
    /// sweep), so severity 1 already scattered the object (source error 47 %) and the severities
    /// barely differed. Here σ grows (0.4 to 0.85 px), the swap probability is 0.25 at severity 1
    /// and 0.5 after, and the swap passes grow (1, 1, 2, 2, 3), so the image looks seen through
    /// frosted glass and every step changes it more (source error of fmnist-cnn Q8_0 on 1,000
    /// images: 15.7, 20.0, 26.9, 34.2, 41.4 %).
    static let glass: [(sigma: Double, delta: Int, iterations: Int, swapProbability: Double)] = [
        (0.4, 1, 1, 0.25), (0.55, 1, 1, 0.5), (0.65, 1, 2, 0.5), (0.75, 1, 2, 0.5), (0.85, 1, 3, 0.5),
    ]
    /// (radius, σ) = CIFAR (radius, σ) · 28/32, except severity 4, whose CIFAR σ of 2 equals
    /// severity 3's (the extra radius adds taps of weight < 1e-8, so the two were the same
    /// corruption): severity 4 uses σ 2.25 (32 px), midway between severities 3 and 5.
    static let motion: [(radius: Double, sigma: Double)] = [
        (6 * scale, 1 * scale), (6 * scale, 1.5 * scale), (6 * scale, 2 * scale), (8 * scale, 2.25 * scale), (9 * scale, 2.5 * scale),
    ]
    /// Largest zoom factor; factors are 1.00, 1.01, ..., this (CIFAR-10-C; relative, not scaled).
    static let zoomMaxPercent: [Int] = [5, 10, 15, 20, 25]

    // Weather.
    /// (mean, std, zoom, threshold, blur radius, blur σ, image weight): CIFAR-10-C with the
    /// motion-blur radius and σ scaled by 28/32.
    static let snow: [(mean: Double, std: Double, zoom: Double, threshold: Double, radius: Double, sigma: Double, keep: Double)] = [
        (0.1, 0.2, 1, 0.6, 8 * scale, 3 * scale, 0.95),
        (0.1, 0.2, 1, 0.5, 10 * scale, 4 * scale, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10 * scale, 4 * scale, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12 * scale, 6 * scale, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14 * scale, 12 * scale, 0.8),
    ]
    /// (image weight, frost weight): CIFAR-10-C's image weights; frost weights CIFAR's up to
    /// severity 3, then 0.45 and 0.5 (CIFAR: 0.4, 0.45). CIFAR repeats 0.4 at severities 3 and
    /// 4, so severity 4 only darkens the image more, which on Fashion-MNIST's bright garments
    /// cancels the added frost and moved pixels less than severity 3.
    static let frost: [(image: Double, frost: Double)] = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.45), (0.75, 0.5)]
    /// (fog amplitude, plasma wibble decay): CIFAR-10-C (plasma map 32 px, cropped to 28).
    static let fog: [(amount: Double, decay: Double)] = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)]
    static let brightness: [Double] = [0.05, 0.1, 0.15, 0.2, 0.3]

    // Digital.
    static let contrast: [Double] = [0.75, 0.5, 0.4, 0.3, 0.15]
    /// (α, σ, affine) in px = 28 · CIFAR's fractions of the image size for α and σ; the affine
    /// fractions are CIFAR's sorted ascending (CIFAR's run 0.08 → 0.03, which made severity 1
    /// the largest move of the five; here 0.03 → 0.08 so both parts grow with severity).
    static let elastic: [(alpha: Double, sigma: Double, affine: Double)] = [
        (28 * 0, 28 * 0, 28 * 0.03),
        (28 * 0.05, 28 * 0.2, 28 * 0.05),
        (28 * 0.08, 28 * 0.06, 28 * 0.06),
        (28 * 0.1, 28 * 0.04, 28 * 0.07),
        (28 * 0.1, 28 * 0.03, 28 * 0.08),
    ]
    /// Down-sampled side for a 28 px image (other sizes scale it by side/28). CIFAR-10-C's
    /// factors 0.95, 0.9, 0.85, 0.75, 0.65 give 26, 25, 23, 21, 18 px at 28, but 25 px moves
    /// pixels no more than 26 (28/25 and 28/26 alias alike under BOX resampling), and 24 px
    /// more than 23 or 22. Sizes 26, 23, 22, 21, 18 keep CIFAR's ends and grow monotonically.
    static let pixelateSide: [Int] = [26, 23, 22, 21, 18]
    static let jpegQuality: [Int] = [80, 65, 58, 50, 40]
}
