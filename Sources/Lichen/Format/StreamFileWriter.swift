import CRuntime

/// Builds a stream file (layout in Format/README.md, "Stream files"): domains in the order
/// begun, frames appended to the last domain begun, written in memory (`serialized()`) or
/// atomically to a path (temporary file, fsync, rename).
///
/// Everything is validated when added, so a file this writer produces always opens.
///
/// - Note: Frames are kept in memory until written (one byte per pixel and one per label); the
///   writer is a tool for making streams, not for the step.
public struct StreamFileWriter {
    public let kind: StreamFile.Kind
    public let width: Int
    public let height: Int
    public let classCount: Int
    public let seed: UInt64
    public private(set) var domains: [StreamFile.Domain] = []
    private var labels: [UInt8] = []
    private var pixels: [UInt8] = []

    /// A writer for `width` × `height` grayscale frames labelled `0 ..< classCount`.
    /// - Throws: `.invalidArgument` for a width or height outside 1...4096 or a class count
    ///   outside 1...256.
    public init(kind: StreamFile.Kind, width: Int, height: Int, classCount: Int, seed: UInt64) throws(LichenError) {
        guard width >= 1 && width <= StreamFile.maximumDimension else {
            throw .invalidArgument(name: "width", value: width, reason: "must be in 1...4096")
        }
        guard height >= 1 && height <= StreamFile.maximumDimension else {
            throw .invalidArgument(name: "height", value: height, reason: "must be in 1...4096")
        }
        guard classCount >= 1 && classCount <= 256 else {
            throw .invalidArgument(name: "classCount", value: classCount, reason: "must be in 1...256")
        }
        self.kind = kind
        self.width = width
        self.height = height
        self.classCount = classCount
        self.seed = seed
    }

    /// Frames appended so far.
    public var frameCount: Int { labels.count }

    /// Reserves memory for `frames` more frames.
    public mutating func reserveCapacity(frames: Int) {
        guard frames > 0 else { return }
        labels.reserveCapacity(labels.count + frames)
        pixels.reserveCapacity(pixels.count + frames * width * height)
    }

    /// Starts a new domain record; the frames appended next belong to it.
    /// - Throws: `.invalidArgument` for an empty name, a name longer than 64 UTF-8 bytes, a
    ///   severity outside 0...5, or when the previous domain has no frames.
    public mutating func beginDomain(name: String, severity: Int) throws(LichenError) {
        let length = name.utf8.count
        guard length >= 1 && length <= StreamFile.maximumNameLength else {
            throw .invalidArgument(name: "name", value: length, reason: "domain name must be 1 to 64 UTF-8 bytes")
        }
        guard severity >= 0 && severity <= StreamFile.maximumSeverity else {
            throw .invalidArgument(name: "severity", value: severity, reason: "must be in 0...5")
        }
        if let last = domains.last, last.frameCount == 0 {
            throw .invalidArgument(name: "domain", value: domains.count - 1, reason: "the previous domain has no frames")
        }
        domains.append(StreamFile.Domain(name: name, severity: severity, firstFrame: frameCount, frameCount: 0))
    }

    /// Appends one frame (`width × height` bytes, row-major) with its label to the last domain.
    /// - Throws: `.invalidArgument` before any domain is begun or for a label outside
    ///   `0 ..< classCount`; `.shapeMismatch(operand: "frame", ...)` for a frame of another size.
    public mutating func append(frame: [UInt8], label: Int) throws(LichenError) {
        guard let last = domains.last else {
            throw .invalidArgument(name: "domain", value: 0, reason: "begin a domain before appending frames")
        }
        guard label >= 0 && label < classCount else {
            throw .invalidArgument(name: "label", value: label, reason: "must be below the class count")
        }
        guard frame.count == width * height else {
            throw .shapeMismatch(operand: "frame", dimension: 0, expected: width * height, got: frame.count)
        }
        labels.append(UInt8(label))
        pixels.append(contentsOf: frame)
        domains[domains.count - 1] = StreamFile.Domain(
            name: last.name, severity: last.severity, firstFrame: last.firstFrame, frameCount: last.frameCount + 1)
    }

    /// Header and domain table.
    func headerBytes() throws(LichenError) -> [UInt8] {
        guard !domains.isEmpty else {
            throw .invalidArgument(name: "domains", value: 0, reason: "a stream needs at least one domain")
        }
        if let last = domains.last, last.frameCount == 0 {
            throw .invalidArgument(name: "domain", value: domains.count - 1, reason: "the last domain has no frames")
        }
        guard domains.count <= Int(UInt32.max) else {
            throw .invalidArgument(name: "domains", value: domains.count, reason: "too many domains")
        }
        var out: [UInt8] = [0x4C, 0x43, 0x48, 0x53]
        put32(&out, UInt32(StreamFile.version))
        put32(&out, kind.rawValue)
        put32(&out, UInt32(width))
        put32(&out, UInt32(height))
        put32(&out, 1)
        put32(&out, UInt32(classCount))
        put32(&out, UInt32(domains.count))
        put64(&out, UInt64(frameCount))
        put64(&out, seed)
        for d in domains {
            put64(&out, UInt64(d.firstFrame))
            put64(&out, UInt64(d.frameCount))
            out.append(UInt8(d.severity))
            out.append(UInt8(d.name.utf8.count))
            out.append(contentsOf: d.name.utf8)
        }
        return out
    }

    /// The whole file.
    /// - Throws: `.invalidArgument` with no domain or an empty last domain.
    public func serialized() throws(LichenError) -> [UInt8] {
        var out = try headerBytes()
        out.reserveCapacity(out.count + labels.count + pixels.count + 4)
        out.append(contentsOf: labels)
        out.append(contentsOf: pixels)
        put32(&out, CRC32.checksum(out))
        return out
    }

    /// Writes the file to `path` atomically: to `path + ".tmp"`, fsync, rename over `path`,
    /// fsync of the directory. On failure the temporary file is removed and `path` is untouched.
    ///
    /// - Throws: `.fileError(path:call:errno:)` naming the failed call; `.invalidArgument` as
    ///   `serialized()`.
    /// - Note: The corresponding C functions are `lcr_file_create`, `lcr_file_write_all`,
    ///   `lcr_file_sync`, `lcr_file_rename`, `lcr_file_sync_parent_directory`.
    public func write(toPath path: String) throws(LichenError) {
        let header = try headerBytes()
        var crc = CRC32()
        crc.update(header)
        crc.update(labels)
        crc.update(pixels)
        var trailer: [UInt8] = []
        put32(&trailer, crc.value)
        try AtomicFile.write(path: path, temporary: path + ".tmp") { emit in
            header.withUnsafeBytes { emit($0) }
            labels.withUnsafeBytes { emit($0) }
            pixels.withUnsafeBytes { emit($0) }
            trailer.withUnsafeBytes { emit($0) }
        }
    }
}

private func put32(_ out: inout [UInt8], _ v: UInt32) {
    for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
}

private func put64(_ out: inout [UInt8], _ v: UInt64) {
    for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
}
