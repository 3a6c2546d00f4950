import Lichen
import LichenStreams

/// A fixed subset of real Fashion-MNIST test images (Debian's `dataset-fashion-mnist`):
/// every 313th image of the test split (indices 0, 313, ..., 9703), 32 images, as [0, 1] floats.
enum CorruptionFixtures {
    static let side = 28
    static let indices = (0..<32).map { $0 * 313 }

    /// The subset; throws when the Fashion-MNIST test split is not readable.
    static func subset() throws -> [[Float]] { try loaded.get() }

    private static let loaded: Result<[[Float]], any Error> = Result {
        let sizes = try FashionMNIST.decompressedByteCounts(.test)
        let arena = try Arena(byteCount: Arena.minimumByteCount + sizes.images + sizes.labels + 4096)
        let data = try FashionMNIST.load(.test, arena: arena)
        return indices.map { i in
            var image = [Float](repeating: 0, count: side * side)
            for r in 0..<side {
                for c in 0..<side { image[r * side + c] = Float(data.images.pixel(image: i, row: r, column: c)) / 255 }
            }
            return image
        }
    }

    /// Mean absolute pixel change of `corruption` at `severity` over the subset, image k
    /// corrupted with seed = its test-split index.
    static func meanAbsoluteChange(_ corruption: Corruption, severity: Int) throws -> Double {
        let images = try subset()
        var total = 0.0
        for (k, image) in images.enumerated() {
            let out = try corruption.apply(to: image, width: side, height: side, severity: severity, seed: UInt64(indices[k]))
            for i in image.indices { total += Double(abs(out[i] - image[i])) }
        }
        return total / Double(images.count * side * side)
    }

    /// FNV-1a over the bit patterns of `values`.
    static func fingerprint(_ values: [Float]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for v in values {
            var bits = v.bitPattern
            for _ in 0..<4 {
                h = (h ^ UInt64(bits & 0xFF)) &* 0x0000_0100_0000_01B3
                bits >>= 8
            }
        }
        return h
    }
}
