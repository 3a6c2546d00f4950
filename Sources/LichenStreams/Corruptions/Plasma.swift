/// Plasma fractal by diamond-square, as CIFAR-C's `plasma_fractal` (a modification of
/// FLHerne/mapgen's diamondsquare.py): a square map whose side is the smallest power of two
/// covering the image (32 for 28 px), wrapping neighbours (numpy `roll`), random "wibble"
/// 100 · U(−100, 100) divided by `decay` at each halving, normalised to [0, 1], then cropped
/// to the top-left `height` x `width` as CIFAR-C / MNIST-C do.
enum Plasma {
    static func fractal(width: Int, height: Int, decay: Double, rng: inout CorruptionRandom) -> [Double] {
        var n = 2
        while n < max(width, height) { n *= 2 }
        var map = [Double](repeating: 0, count: n * n)
        var step = n
        var wibble = 100.0
        func wibbled(_ sum: Double, _ rng: inout CorruptionRandom) -> Double {
            sum / 4 + wibble * rng.uniform(-wibble, wibble)
        }
        while step >= 2 {
            let half = step / 2
            let m = n / step  // grid points per side at this step
            // Squares: centre = mean of the four corners (wrapping) + wibble.
            var centres = [Double](repeating: 0, count: m * m)
            for i in 0..<m { for j in 0..<m {
                let i1 = (i + 1) % m, j1 = (j + 1) % m
                let sum = map[i * step * n + j * step] + map[i1 * step * n + j * step]
                    + map[i * step * n + j1 * step] + map[i1 * step * n + j1 * step]
                centres[i * m + j] = wibbled(sum, &rng)
            } }
            for i in 0..<m { for j in 0..<m { map[(i * step + half) * n + j * step + half] = centres[i * m + j] } }
            // Diamonds: (row i·step, col j·step + half) from the centres above/below and the
            // corners left/right; then (row i·step + half, col j·step) likewise transposed.
            func dr(_ i: Int, _ j: Int) -> Double { map[(((i % m) + m) % m * step + half) * n + ((j % m) + m) % m * step + half] }
            func ul(_ i: Int, _ j: Int) -> Double { map[(((i % m) + m) % m * step) * n + ((j % m) + m) % m * step] }
            var top = [Double](repeating: 0, count: m * m)
            for i in 0..<m { for j in 0..<m {
                top[i * m + j] = wibbled(dr(i, j) + dr(i - 1, j) + ul(i, j) + ul(i, j + 1), &rng)
            } }
            for i in 0..<m { for j in 0..<m { map[i * step * n + j * step + half] = top[i * m + j] } }
            var left = [Double](repeating: 0, count: m * m)
            for i in 0..<m { for j in 0..<m {
                left[i * m + j] = wibbled(dr(i, j) + dr(i, j - 1) + ul(i, j) + ul(i + 1, j), &rng)
            } }
            for i in 0..<m { for j in 0..<m { map[(i * step + half) * n + j * step] = left[i * m + j] } }
            step /= 2
            wibble /= decay
        }
        let lo = map.min()!
        let hi = map.max()! - lo
        var out = [Double](repeating: 0, count: width * height)
        for r in 0..<height { for c in 0..<width { out[r * width + c] = hi > 0 ? (map[r * n + c] - lo) / hi : 0 } }
        return out
    }
}
