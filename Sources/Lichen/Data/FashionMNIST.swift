/// Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 28×28 grayscale images of ten clothing
/// classes, 60,000 for training and 10,000 for test, as IDX files compressed with gzip
/// (Debian's `dataset-fashion-mnist` installs them in `defaultDirectory`).
///
/// The images stay bytes (one 28×28 `UInt8` image each) in one buffer; `writeBatch` converts a
/// batch to f32 in [0, 1] (pixel / 255) in a caller's `TensorView`, in the order of a
/// `SeededPermutation` or in file order.
public struct FashionMNIST {
    /// Which file pair.
    public enum Split: Sendable {
        /// `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz` (60,000 images).
        case train
        /// `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz` (10,000 images).
        case test

        var prefix: String {
            switch self {
            case .train: return "train"
            case .test: return "t10k"
            }
        }
    }

    /// Where Debian's `dataset-fashion-mnist` installs the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    public static let classCount = 10
    public static let imageRows = 28
    public static let imageColumns = 28
    public static let pixelsPerImage = 28 * 28

    /// The class names, by label (the dataset's own names).
    public static let classNames: [StaticString] = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    public let images: IDXImages
    public let labels: IDXLabels

    /// Number of examples.
    public var count: Int { images.count }

    /// A dataset from parsed IDX content.
    /// - Throws: `.shapeMismatch(operand: "images", dimension: 1 or 2, expected: 28, ...)` for
    ///   images that are not 28×28; `.shapeMismatch(operand: "labels", dimension: 0, expected:
    ///   image count, got: label count)` when the counts differ.
    public init(images: IDXImages, labels: IDXLabels) throws(LichenError) {
        guard images.rows == FashionMNIST.imageRows else {
            throw .shapeMismatch(operand: "images", dimension: 1, expected: FashionMNIST.imageRows, got: images.rows)
        }
        guard images.columns == FashionMNIST.imageColumns else {
            throw .shapeMismatch(operand: "images", dimension: 2, expected: FashionMNIST.imageColumns, got: images.columns)
        }
        guard labels.count == images.count else {
            throw .shapeMismatch(operand: "labels", dimension: 0, expected: images.count, got: labels.count)
        }
        self.images = images
        self.labels = labels
    }

    /// Paths of a split's two files under `directory`.
    public static func paths(_ split: Split, directory: String = defaultDirectory) -> (images: String, labels: String) {
        (directory + "/" + split.prefix + "-images-idx3-ubyte.gz", directory + "/" + split.prefix + "-labels-idx1-ubyte.gz")
    }

    /// Bytes the decompressed files take, from their gzip size fields (a hint; `load` checks).
    /// - Throws: as `ByteView.gzipSizeHint(path:)`.
    public static func decompressedByteCounts(
        _ split: Split, directory: String = defaultDirectory
    ) throws(LichenError) -> (images: Int, labels: Int) {
        let p = paths(split, directory: directory)
        return (try ByteView.gzipSizeHint(path: p.images).uncompressedByteCount,
                try ByteView.gzipSizeHint(path: p.labels).uncompressedByteCount)
    }

    /// Loads a split into buffers taken from `arena` (sized by the files' gzip size fields:
    /// 47,040,016 + 60,008 bytes for train, 7,840,016 + 10,008 for test).
    ///
    /// - Throws: `.fileError(path:call:errno:)` (missing or unreadable file);
    ///   `.corruptFile(path:offset:reason:)` for corrupt or truncated gzip data (offset in the
    ///   compressed file), for content larger than the size field says, and for malformed IDX
    ///   content (offset in the decompressed content, reason starting "IDX"); `.budgetExceeded`;
    ///   `.shapeMismatch` as `init(images:labels:)`.
    /// - Note: zlib mallocs about 40 KiB while a file decompresses; everything else is in the arena.
    public static func load(_ split: Split, directory: String = defaultDirectory, arena: Arena) throws(LichenError) -> FashionMNIST {
        let p = paths(split, directory: directory)
        let imageHint = try ByteView.gzipSizeHint(path: p.images)
        let labelHint = try ByteView.gzipSizeHint(path: p.labels)
        let imageBuffer = try ByteView.allocate(byteCount: imageHint.uncompressedByteCount, from: arena)
        let labelBuffer = try ByteView.allocate(byteCount: labelHint.uncompressedByteCount, from: arena)
        return try load(split, directory: directory, imageBuffer: imageBuffer, labelBuffer: labelBuffer, sizedByHint: true)
    }

    /// Loads a split into the caller's buffers (at least `decompressedByteCounts` bytes each).
    ///
    /// - Throws: as `load(_:directory:arena:)`, and `.bufferTooSmall(operand: "gzip output", ...)`
    ///   when a file does not fit its buffer.
    public static func load(
        _ split: Split, directory: String = defaultDirectory, imageBuffer: ByteView, labelBuffer: ByteView
    ) throws(LichenError) -> FashionMNIST {
        try load(split, directory: directory, imageBuffer: imageBuffer, labelBuffer: labelBuffer, sizedByHint: false)
    }

    private static func load(
        _ split: Split, directory: String, imageBuffer: ByteView, labelBuffer: ByteView, sizedByHint: Bool
    ) throws(LichenError) -> FashionMNIST {
        let p = paths(split, directory: directory)
        let imageContent = try inflate(p.images, into: imageBuffer, sizedByHint: sizedByHint)
        let labelContent = try inflate(p.labels, into: labelBuffer, sizedByHint: sizedByHint)
        let images: IDXImages, labels: IDXLabels
        do {
            images = try IDXImages.parse(imageContent)
        } catch {
            throw withPath(error, p.images)
        }
        do {
            labels = try IDXLabels.parse(labelContent, classCount: classCount)
        } catch {
            throw withPath(error, p.labels)
        }
        return try FashionMNIST(images: images, labels: labels)
    }

    private static func inflate(_ path: String, into buffer: ByteView, sizedByHint: Bool) throws(LichenError) -> ByteView {
        do {
            let n = try buffer.inflateGzipFile(path: path)
            return try buffer.slice(0, byteCount: n)
        } catch {
            if sizedByHint, case .bufferTooSmall = error {
                throw .corruptFile(path: path, offset: buffer.count, reason: "decompressed content is longer than the gzip size field says")
            }
            throw error
        }
    }

    private static func withPath(_ error: LichenError, _ path: String) -> LichenError {
        if case .malformedFile(let offset, let reason) = error {
            return .corruptFile(path: path, offset: offset, reason: reason)
        }
        return error
    }

    /// The label of example `index` (0 ..< count); traps when out of range.
    public func label(_ index: Int) -> Int { labels[index] }

    /// The name of class `label`, or nil outside 0..<10.
    public static func className(_ label: Int) -> StaticString? {
        label >= 0 && label < classCount ? classNames[label] : nil
    }

    /// Writes a batch: examples `order[start + i]` (or `start + i` without an order) for
    /// i in 0 ..< n, where n = `images.shape[0]`, as f32 pixel / 255 in [0, 1] into `images`
    /// (any f32 shape `[n, ...]` of n × 784 values: `[n, 784]`, `[n, 1, 28, 28]`), and their
    /// labels as f32 class indices into `labels` (n values), when given.
    ///
    /// - Throws: `.unsupportedElementType`; `.shapeMismatch` ("images": not n × 784 values;
    ///   "labels": not n values; "order": a permutation of another count);
    ///   `.invalidArgument(name: "start", ...)` when `start ..< start + n` leaves `0 ..< count`.
    /// - Note: Allocates nothing.
    public func writeBatch(
        order: SeededPermutation? = nil, start: Int, images out: TensorView, labels labelsOut: TensorView? = nil
    ) throws(LichenError) {
        let x = try out.f32Elements("images")
        let n = out.shape.rank == 0 ? 1 : out.shape[0]
        let perImage = FashionMNIST.pixelsPerImage
        guard x.count == n * perImage else {
            throw .shapeMismatch(operand: "images", dimension: 1, expected: perImage, got: n == 0 ? 0 : x.count / n)
        }
        if let order, order.count != count {
            throw .shapeMismatch(operand: "order", dimension: 0, expected: count, got: order.count)
        }
        guard start >= 0, start <= count, n <= count - start else {
            throw .invalidArgument(name: "start", value: start, reason: "batch runs past the end of the dataset")
        }
        var y: F32Elements? = nil
        if let labelsOut {
            let v = try labelsOut.f32Elements("labels")
            guard v.count == n else { throw .shapeMismatch(operand: "labels", dimension: 0, expected: n, got: v.count) }
            y = v
        }
        for i in 0..<n {
            let example = order?[start + i] ?? start + i
            try images.bytes.writeFloats(
                from: images.offset(ofImage: example), count: perImage, dividedBy: 255, into: x, at: i * perImage)
            if let y { y[i] = Float(labels[example]) }
        }
    }
}
