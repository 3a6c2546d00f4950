import CRuntime

/// A stream file: a sequence of labelled grayscale frames split into domains (a corruption at
/// a severity), as `lichen stream make` writes it (layout in Format/README.md, "Stream files").
///
/// Opening checks the whole file before anything else is done with it: magic, version, kind,
/// frame geometry, counts bounded by the file size with overflow-checked arithmetic, every
/// domain record (name, severity, frame range; the ranges must cover the frames exactly, in
/// order), the exact file length, the CRC-32 trailer and every label. Any violation throws
/// `LichenError.corruptFile(path:offset:reason:)` naming the byte offset of the offending
/// field or section (reasons in `StreamFileReason`), or `.unsupportedVersion`; no input can
/// make it trap. Afterwards frames and labels are read in place (zero-copy over the mapping).
///
/// Memory: one `Domain` per domain record (their count bounded by the file size first);
/// frames are never copied except into the caller's tensors.
public final class StreamFile {
    /// How the stream was made.
    public enum Kind: UInt32, Sendable {
        /// Every domain at one severity, one after the other.
        case continual = 0
        /// Each domain's severity rising and falling (one record per severity segment).
        case gradual = 1
        /// Any list of domains and severities.
        case custom = 2

        /// "continual", "gradual", "custom".
        public var name: String {
            switch self {
            case .continual: return "continual"
            case .gradual: return "gradual"
            case .custom: return "custom"
            }
        }
    }

    /// One domain record: frames `firstFrame ..< firstFrame + frameCount` are `name` at `severity`.
    public struct Domain: Equatable, Sendable {
        /// The corruption name ("gaussian_noise", ..., or "clean").
        public let name: String
        /// 1...5, or 0 for clean frames.
        public let severity: Int
        public let firstFrame: Int
        public let frameCount: Int

        public init(name: String, severity: Int, firstFrame: Int, frameCount: Int) {
            self.name = name
            self.severity = severity
            self.firstFrame = firstFrame
            self.frameCount = frameCount
        }

        /// `firstFrame ..< firstFrame + frameCount`.
        public var frames: Range<Int> { firstFrame..<(firstFrame + frameCount) }
    }

    /// How `init(path:mode:)` brings the file into memory.
    public enum LoadMode: Sendable {
        /// mmap, MAP_PRIVATE, read-only (the default).
        case map
        /// Read the whole file into memory Lichen allocates (boards without mmap).
        case read
    }

    public static let magic: (UInt8, UInt8, UInt8, UInt8) = (0x4C, 0x43, 0x48, 0x53)  // "LCHS"
    public static let version = 1
    public static let headerByteCount = 48
    /// Fixed bytes of a domain record before its name.
    public static let domainRecordByteCount = 18
    public static let maximumDimension = 4096
    public static let maximumNameLength = 64
    public static let maximumSeverity = 5

    private enum Storage {
        case mapped
        case owned
        case borrowed
    }

    /// Everything validation produces.
    struct Layout {
        var kind = Kind.custom
        var width = 0
        var height = 0
        var channels = 1
        var classCount = 0
        var frameCount = 0
        var seed: UInt64 = 0
        var domains: [Domain] = []
        var labelsOffset = 0
        var framesOffset = 0
        var checksum: UInt32 = 0
    }

    private let storage: Storage
    private let base: UnsafeRawPointer
    /// Size of the file in bytes.
    public let byteCount: Int
    /// The path, or the name given for a buffer: errors and messages name it.
    public let path: String
    let layout: Layout

    public var kind: Kind { layout.kind }
    /// Frame width and height in pixels, channels per pixel (1).
    public var width: Int { layout.width }
    public var height: Int { layout.height }
    public var channels: Int { layout.channels }
    /// Bytes (and f32 values) per frame: width × height × channels.
    public var pixelsPerFrame: Int { layout.width * layout.height * layout.channels }
    /// Labels are in `0 ..< classCount`.
    public var classCount: Int { layout.classCount }
    public var frameCount: Int { layout.frameCount }
    /// The seed the stream was made from.
    public var seed: UInt64 { layout.seed }
    /// The domain records in file order; their frame ranges cover `0 ..< frameCount` in order.
    public var domains: [Domain] { layout.domains }
    /// The stored CRC-32 (of every byte before the trailer).
    public var checksum: UInt32 { layout.checksum }
    /// Whether the bytes are a mapping of the file.
    public var isMapped: Bool { if case .mapped = storage { return true } else { return false } }

    // MARK: - Opening

    /// Opens and validates the stream file at `path`.
    ///
    /// - Throws: `.fileRefused` (a NUL in the path, not a regular file); `.fileError(path:call:errno:)`
    ///   when the file cannot be opened, mapped or read; the validation errors listed on the type.
    /// - Note: The corresponding C functions are `lcr_file_open_untrusted`, `lcr_file_map`,
    ///   `lcr_file_read_all`.
    public init(path: String, mode: LoadMode = .map) throws(LichenError) {
        let file = try UntrustedFile(path: path, maximumBytes: Int.max / 2)
        let count = file.byteCount
        guard count > 0 else { throw .corruptFile(path: path, offset: 0, reason: StreamFileReason.truncated) }
        let start: UnsafeRawPointer
        switch mode {
        case .map:
            start = try file.map(shared: false)
            storage = .mapped
        case .read:
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
            do throws(LichenError) {
                try file.readAll(into: buffer)
            } catch {
                buffer.deallocate()
                throw error
            }
            start = UnsafeRawPointer(buffer)
            storage = .owned
        }
        base = start
        byteCount = count
        self.path = path
        do {
            layout = try StreamFile.validate(StreamBytes(base: start, count: count, path: path))
        } catch {
            StreamFile.release(storage, start, count)
            throw error
        }
    }

    /// Validates a copy of `source` (allocated here, freed with the file). `name` stands for
    /// the path in errors.
    public init(copying source: UnsafeRawBufferPointer, name: String = "stream") throws(LichenError) {
        let buffer = StreamFile.copy(source)
        storage = .owned
        base = UnsafeRawPointer(buffer)
        byteCount = source.count
        path = name
        do {
            layout = try StreamFile.validate(StreamBytes(base: base, count: source.count, path: name))
        } catch {
            StreamFile.release(storage, base, source.count)
            throw error
        }
    }

    /// Validates a copy of `bytes` (allocated here, freed with the file). `name` stands for
    /// the path in errors.
    public init(bytes: [UInt8], name: String = "stream") throws(LichenError) {
        let buffer = bytes.withUnsafeBytes { StreamFile.copy($0) }
        storage = .owned
        base = UnsafeRawPointer(buffer)
        byteCount = bytes.count
        path = name
        do {
            layout = try StreamFile.validate(StreamBytes(base: base, count: bytes.count, path: name))
        } catch {
            StreamFile.release(storage, base, bytes.count)
            throw error
        }
    }

    /// A 64-byte aligned copy of `source` (at least one byte allocated).
    private static func copy(_ source: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(source.count, 1), alignment: 64)
        if let from = source.baseAddress, source.count > 0 {
            buffer.copyMemory(from: from, byteCount: source.count)
        }
        return buffer
    }

    /// Validates `source` in place, without copying it.
    ///
    /// - Warning: `source` must stay valid and unchanged for as long as this file is used.
    public init(borrowing source: UnsafeRawBufferPointer, name: String = "stream") throws(LichenError) {
        storage = .borrowed
        let empty = UnsafeRawPointer(bitPattern: 64)
        guard let start = source.baseAddress ?? empty else {
            throw .corruptFile(path: name, offset: 0, reason: StreamFileReason.truncated)
        }
        base = start
        byteCount = source.count
        path = name
        layout = try StreamFile.validate(StreamBytes(base: start, count: source.count, path: name))
    }

    deinit {
        StreamFile.release(storage, base, byteCount)
    }

    private static func release(_ storage: Storage, _ base: UnsafeRawPointer, _ count: Int) {
        switch storage {
        case .mapped: _ = lcr_file_unmap(base, count)
        case .owned: UnsafeMutableRawPointer(mutating: base).deallocate()
        case .borrowed: break
        }
    }

    // MARK: - Reading

    /// The label of frame `index`.
    /// - Throws: `.invalidArgument(name: "frame", ...)` outside `0 ..< frameCount`.
    public func label(_ index: Int) throws(LichenError) -> Int {
        guard index >= 0 && index < frameCount else {
            throw .invalidArgument(name: "frame", value: index, reason: "no frame with this index")
        }
        // safe: labelsOffset + frameCount <= byteCount was validated at open.
        return Int(base.load(fromByteOffset: layout.labelsOffset + index, as: UInt8.self))
    }

    /// How many frames carry each label (`classCount` counts).
    public func labelHistogram() -> [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for i in 0..<frameCount {
            // safe: inside the validated label section; every label is < classCount.
            counts[Int(base.load(fromByteOffset: layout.labelsOffset + i, as: UInt8.self))] += 1
        }
        return counts
    }

    /// The index of the domain record holding frame `index`.
    /// - Throws: `.invalidArgument(name: "frame", ...)` outside `0 ..< frameCount`.
    public func domainIndex(ofFrame index: Int) throws(LichenError) -> Int {
        guard index >= 0 && index < frameCount else {
            throw .invalidArgument(name: "frame", value: index, reason: "no frame with this index")
        }
        let d = layout.domains
        var low = 0, high = d.count - 1
        while low < high {
            let mid = low + (high - low + 1) / 2
            if d[mid].firstFrame <= index { low = mid } else { high = mid - 1 }
        }
        return low
    }

    /// The pixels of frame `index` (row-major bytes), copied into a new array.
    /// - Throws: `.invalidArgument(name: "frame", ...)` outside `0 ..< frameCount`.
    /// - Note: Allocates; a tool's accessor (contact sheets), not for the step.
    public func framePixels(_ index: Int) throws(LichenError) -> [UInt8] {
        guard index >= 0 && index < frameCount else {
            throw .invalidArgument(name: "frame", value: index, reason: "no frame with this index")
        }
        let n = pixelsPerFrame
        let offset = layout.framesOffset + index * n  // safe: validated not to overflow at open
        return [UInt8](UnsafeRawBufferPointer(start: base + offset, count: n))
    }

    /// Writes frames `start ..< start + count` as f32 pixel / 255 (values in [0, 1]) into
    /// `frames`: any f32 view of `count` × `pixelsPerFrame` values whose outer dimension is
    /// `count` (`[count, 1, 28, 28]`, `[count, 784]`).
    ///
    /// - Throws: `.unsupportedElementType(operand: "frames", ...)`; `.shapeMismatch(operand:
    ///   "frames", ...)`; `.invalidArgument(name: "start", ...)` when the range leaves
    ///   `0 ..< frameCount`.
    /// - Note: Allocates nothing. The division is a true division by 255, as
    ///   `FashionMNIST.writeBatch` does, so clean frames give the same floats.
    public func writeFrames(start: Int, count: Int, into frames: TensorView) throws(LichenError) {
        try frames.require(.f32, "frames")
        try checkRange(start: start, count: count)
        let n = pixelsPerFrame
        guard frames.shape.rank >= 1, frames.shape[0] == count else {
            throw .shapeMismatch(operand: "frames", dimension: 0, expected: count,
                                 got: frames.shape.rank == 0 ? 1 : frames.shape[0])
        }
        let values = frames.shape.elementCount ?? 0
        guard values == count * n else {
            throw .shapeMismatch(operand: "frames", dimension: 1, expected: n, got: count == 0 ? 0 : values / count)
        }
        guard count > 0 else { return }
        // safe: frames holds count × n f32 values (checked above); the source range lies inside
        // the validated frame section (start + count <= frameCount).
        let src = (base + layout.framesOffset + start * n).assumingMemoryBound(to: UInt8.self)
        let dst = frames.floats
        for i in 0..<(count * n) { dst[i] = Float(src[i]) / 255 }
    }

    /// Writes the labels of frames `start ..< start + count` as f32 class indices into
    /// `labels` (an f32 view of `count` values).
    ///
    /// - Throws: `.unsupportedElementType(operand: "labels", ...)`; `.shapeMismatch(operand:
    ///   "labels", ...)`; `.invalidArgument(name: "start", ...)`.
    /// - Note: Allocates nothing.
    public func writeLabels(start: Int, count: Int, into labels: TensorView) throws(LichenError) {
        try labels.require(.f32, "labels")
        try checkRange(start: start, count: count)
        let values = labels.shape.elementCount ?? 0
        guard values == count else {
            throw .shapeMismatch(operand: "labels", dimension: 0, expected: count, got: values)
        }
        guard count > 0 else { return }
        // safe: count values in `labels`, and labels start ..< start + count inside the file.
        let src = (base + layout.labelsOffset + start).assumingMemoryBound(to: UInt8.self)
        let dst = labels.floats
        for i in 0..<count { dst[i] = Float(src[i]) }
    }

    private func checkRange(start: Int, count: Int) throws(LichenError) {
        guard start >= 0, count >= 0, start <= frameCount, count <= frameCount - start else {
            throw .invalidArgument(name: "start", value: start, reason: "frames run past the end of the stream")
        }
    }
}

/// Bounds-checked little-endian reads over a stream file's bytes; every failed read throws
/// `.corruptFile(path:offset:reason: truncated)` naming its own offset.
struct StreamBytes {
    let base: UnsafeRawPointer
    let count: Int
    let path: String

    func fail(_ offset: Int, _ reason: StaticString) -> LichenError {
        .corruptFile(path: path, offset: offset, reason: reason)
    }

    @inline(__always)
    func require(_ offset: Int, _ length: Int) throws(LichenError) {
        // safe: offset and length are >= 0 here; the subtraction cannot underflow.
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else {
            throw fail(offset, StreamFileReason.truncated)
        }
    }

    func u8(_ offset: Int) throws(LichenError) -> UInt8 {
        try require(offset, 1)
        return base.load(fromByteOffset: offset, as: UInt8.self)
    }

    func u32(_ offset: Int) throws(LichenError) -> UInt32 {
        try require(offset, 4)
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(_ offset: Int) throws(LichenError) -> UInt64 {
        try require(offset, 8)
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The bytes `start ..< start + length` (already validated).
    func slice(_ start: Int, _ length: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + start, count: length)
    }
}
