import Lichen

/// Fashion-MNIST's training split as the source data of CoTTA's threshold and RMT's
/// prototypes, warm-up and replay: batches in a seeded shuffled order, reshuffled (next seed)
/// each time the split is exhausted (the reference's shuffled, restarting source loader).
/// Loaded into its own arena, so the method's budget holds only what the method needs.
final class FashionMNISTSource: SourceBatchProvider {
    let data: FashionMNIST
    let arena: Arena
    private let order: SeededPermutation
    private var seed: UInt64
    private var cursor = 0

    /// Loads the training split from `directory` (the `lichen train --data fashion-mnist` files).
    init(directory: String, seed: UInt64) throws {
        let counts = try naming(directory) { () throws(LichenError) in try FashionMNIST.decompressedByteCounts(.train, directory: directory) }
        let bytes = counts.images + counts.labels + 60_000 * 4 + (8 << 20)
        arena = try naming("source arena") { () throws(LichenError) in try Arena(byteCount: bytes) }
        let arena = self.arena
        data = try naming(directory) { () throws(LichenError) in try FashionMNIST.load(.train, directory: directory, arena: arena) }
        let count = data.count
        order = try naming("source order") { () throws(LichenError) in try SeededPermutation(count: count, arena: arena) }
        self.seed = seed
        order.shuffle(seed: seed)
    }

    var count: Int { data.count }

    func nextSourceBatch(images: TensorView, labels: TensorView) throws(LichenError) {
        let n = images.shape.rank == 0 ? 1 : images.shape[0]
        guard n <= data.count else {
            throw .invalidArgument(name: "source batch", value: n, reason: "larger than the source set")
        }
        if cursor + n > data.count {
            seed &+= 1
            order.shuffle(seed: seed)
            cursor = 0
        }
        try data.writeBatch(order: order, start: cursor, images: images, labels: labels)
        cursor += n
    }
}
