/// Labelled source frames for a board: what RMT (prototypes, warm-up, replay) and CoTTA (its
/// confidence threshold) read where the training set is not at hand. A source pack is a stream
/// file (LCHS v1, `lichen source-pack` writes one: a few hundred to a few thousand clean
/// training frames with their labels, one "clean" domain), read whole into the budget at
/// construction and validated there, so it costs exactly its file size of budget and nothing
/// outside it.
///
/// Batches come in a seeded shuffled order, reshuffled with the next seed each time the pack
/// is exhausted (the reference's restarting, shuffled source loader), like
/// `FashionMNISTSource` in the CLI over the whole training split.
///
/// - Note: Construction allocates (the file's bytes and the order, from the arena's low end);
///   `nextSourceBatch` allocates nothing.
public final class SourcePack: SourceBatchProvider {
    /// The pack's path (as given).
    public let path: String
    /// The validated frames, viewing the arena's copy.
    public let file: StreamFile
    /// Bytes taken from the budget: the file and the order.
    public let byteCount: Int
    private let order: SeededPermutation
    private var seed: UInt64
    private var cursor = 0

    /// Frames in the pack.
    public var frameCount: Int { file.frameCount }

    /// Reads the pack at `path` into `arena` and checks that it fits `spec` (frame size and
    /// class count).
    ///
    /// - Throws: `.fileError(path:call:errno:)` when it cannot be opened, sized or read;
    ///   `.corruptFile(path:...)` and the other stream-file validation errors;
    ///   `.invalidModel(key: "lichen.source_pack", ...)` when its frames or classes do not
    ///   match the model, or it holds no frame; `.budgetExceeded` when the budget cannot hold
    ///   it (checked against the file's size before anything is read).
    public init(path: String, spec: ModelSpec, arena: Arena, seed: UInt64) throws(LichenError) {
        // Sized against the budget before a byte is read (a FIFO, a link to a device or a sparse
        // file of gigabytes is refused at open).
        let left = arena.stats.bytesLeft
        let opened: UntrustedFile
        do throws(LichenError) {
            opened = try UntrustedFile(path: path, maximumBytes: left)
        } catch {
            if case .fileRefused(_, _, let size, let limit) = error, size > limit { throw .budgetExceeded(asked: size, left: left) }
            throw error
        }
        guard opened.byteCount > 0 else { throw .corruptFile(path: path, offset: 0, reason: StreamFileReason.truncated) }
        let count = opened.byteCount
        let bytes = try arena.allocatePersistent(byteCount: count, alignment: 64)
        try opened.readAll(into: bytes)
        // safe: the arena's bytes outlive this object (they are given back only by a low-end
        // reset, which the runtime makes after letting go of the method that holds the pack).
        file = try StreamFile(borrowing: UnsafeRawBufferPointer(start: bytes, count: count), name: path)
        try SourcePack.requireFits(file, path: path, spec: spec)
        self.path = path
        let before = arena.stats.lowUsedBytes
        order = try SeededPermutation(count: file.frameCount, arena: arena)
        byteCount = count + (arena.stats.lowUsedBytes - before)
        self.seed = seed
        order.shuffle(seed: seed)
    }

    /// Writes the next `images.shape[0]` frames of the shuffled order (pixel / 255) and their
    /// labels; starts a new order (next seed) when fewer than that are left.
    ///
    /// - Throws: `.invalidArgument(name: "source batch", ...)` for a batch larger than the
    ///   pack; what `StreamFile.writeFrames` / `writeLabels` throw for bad shapes.
    /// - Note: Allocates nothing.
    public func nextSourceBatch(images: TensorView, labels: TensorView) throws(LichenError) {
        let n = images.shape.rank == 0 ? 1 : images.shape[0]
        guard n <= order.count else {
            throw .invalidArgument(name: "source batch", value: n, reason: "larger than the source pack")
        }
        if cursor + n > order.count {
            seed &+= 1
            order.shuffle(seed: seed)
            cursor = 0
        }
        for b in 0..<n {
            let frame = order[cursor + b]
            try file.writeFrames(start: frame, count: 1, into: try images.leadingRows(b, count: 1))
            try file.writeLabels(start: frame, count: 1, into: try labels.leadingRows(b, count: 1))
        }
        cursor += n
    }
}

extension SourcePack {
    /// Checks, without reading it into any budget, that the pack at `path` opens, is a valid
    /// stream file (mapped read-only while it is checked) and fits `spec`: what `init` would
    /// refuse but the budget.
    ///
    /// - Throws: as `init`, but `.budgetExceeded`.
    public static func check(path: String, spec: ModelSpec) throws(LichenError) {
        try requireFits(try StreamFile(path: path, mode: .map), path: path, spec: spec)
    }

    /// Throws unless `file`'s frames and classes are the model's and it holds a frame.
    static func requireFits(_ file: StreamFile, path: String, spec: ModelSpec) throws(LichenError) {
        guard file.pixelsPerFrame == (spec.inputShape.elementCount ?? 0) else {
            throw .invalidModel(key: "lichen.source_pack", value: path,
                                reason: "the pack's frames do not have as many values as the model's input")
        }
        guard file.classCount == spec.classCount else {
            throw .invalidModel(key: "lichen.source_pack", value: path, reason: "the pack's class count is not the model's")
        }
        guard file.frameCount >= 1 else {
            throw .invalidModel(key: "lichen.source_pack", value: path, reason: "the pack holds no frame")
        }
    }
}
