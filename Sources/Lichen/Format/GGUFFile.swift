import CRuntime

/// A GGUF file (versions 3 and 2), checked completely when it is opened and then read in
/// place: metadata values and tensor data are read from the file's bytes, never copied.
///
/// Opening validates the whole header before anything else is done with it: magic,
/// version, counts bounded by the file size, every string inside the file and valid UTF-8,
/// value types, arrays (nested at most `maximumArrayDepth` deep), bools, `general.alignment`,
/// and every tensor: name, rank, dimensions, element type, block rows, aligned offset, data
/// inside the file and not overlapping another tensor. Any violation throws
/// `LichenError.malformedFile(offset:reason:)` naming the byte offset of the offending field
/// (or `.unsupportedVersion`, `.unsupportedTensorType`); no input can make it trap.
///
/// Memory: one entry per metadata key and per tensor (counts bounded by the file size before
/// anything is reserved); arrays are not copied until asked for.
///
/// - Warning: Tensor views made by `tensor(_:)` point into the file's bytes, which are
///   read-only (a `PROT_READ` mapping, or a caller's buffer). `TensorView.base` is
///   mutable-typed for the kernels' sake: never write through a weight view — on a mapping
///   that faults. Views are valid only while the `GGUFFile` is alive.
public final class GGUFFile {
    /// How `init(path:mode:)` brings the file into memory.
    public enum LoadMode: Sendable {
        /// mmap, MAP_PRIVATE, read-only (the default).
        case map
        /// mmap, MAP_SHARED, read-only: page-cache pages shared with other processes.
        case mapShared
        /// Read the whole file into memory Lichen allocates (boards without mmap).
        case read
    }

    /// Deepest array nesting accepted (an array of arrays has depth 2).
    public static let maximumArrayDepth = 4
    /// Longest tensor name accepted, in bytes.
    public static let maximumTensorNameLength = 64
    /// Longest metadata key accepted, in bytes.
    public static let maximumKeyLength = 65535
    /// Data alignment when `general.alignment` is absent.
    public static let defaultAlignment = 32

    private enum Storage {
        case mapped
        case owned
        case borrowed
    }

    struct Entry {
        let keyStart: Int
        let keyLength: Int
        let keyOffset: Int  // offset of the key's length field: where the record starts
        let type: GGUFValueType
        let valueOffset: Int
    }

    /// Everything validation produces.
    struct Layout {
        var version = 0
        var alignment = GGUFFile.defaultAlignment
        var dataOffset = 0
        var entries: [Entry] = []
        var entryOrder: [Int] = []  // entry indices sorted by key bytes
        var tensors: [GGUFTensorInfo] = []
        var tensorOrder: [Int] = []  // tensor indices sorted by name bytes
    }

    private let storage: Storage
    let bytes: GGUFBytes
    let layout: Layout

    /// The file's bytes (read-only).
    public var rawBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes.base, count: bytes.count) }
    /// Size of the file in bytes.
    public var byteCount: Int { bytes.count }
    /// Whether the bytes are a mapping of the file (true) or a copy or a caller's buffer.
    public var isMapped: Bool { if case .mapped = storage { return true } else { return false } }
    /// GGUF version (3, or 2).
    public var version: Int { layout.version }
    /// Data alignment in bytes (`general.alignment`, or 32).
    public var alignment: Int { layout.alignment }
    /// Absolute offset of the tensor-data section.
    public var dataOffset: Int { layout.dataOffset }

    // MARK: - Opening

    /// Opens and validates the GGUF file at `path`.
    ///
    /// - Parameters:
    ///   - path: File system path (untrusted: opened through `UntrustedFile`).
    ///   - mode: `.map` (default) maps it read-only and reads it in place; `.read` copies it
    ///     into memory allocated here, for boards without mmap.
    ///   - maximumBytes: the largest file taken; a larger one is refused before anything is
    ///     read or mapped.
    ///   - followSymbolicLinks: false refuses a symbolic link as the last path component.
    /// - Throws: `.fileRefused` (a NUL in the path, not a regular file, a symbolic link when
    ///   not followed, larger than `maximumBytes`); `.fileError(path:call:errno:)` when the file
    ///   cannot be opened, mapped or read (`.malformedFile(offset: 0, ...)` for an empty file);
    ///   the validation errors listed on the type.
    /// - Note: Allocates the metadata and tensor tables, and the whole file in `.read` mode.
    ///   The corresponding C functions are `lcr_file_open_untrusted`, `lcr_file_map`,
    ///   `lcr_file_read_all`.
    public init(path: String, mode: LoadMode = .map, maximumBytes: Int = Int.max, followSymbolicLinks: Bool = true)
        throws(LichenError)
    {
        let file = try UntrustedFile(path: path, maximumBytes: maximumBytes, followSymbolicLinks: followSymbolicLinks)
        let count = file.byteCount
        guard count > 0 else { throw .malformedFile(offset: 0, reason: GGUFReason.truncated) }

        let base: UnsafeRawPointer
        switch mode {
        case .map, .mapShared:
            base = try file.map(shared: mode == .mapShared)
            storage = .mapped
        case .read:
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
            do throws(LichenError) {
                try file.readAll(into: buffer)
            } catch {
                buffer.deallocate()
                throw error
            }
            base = UnsafeRawPointer(buffer)
            storage = .owned
        }
        bytes = GGUFBytes(base: base, count: count)
        do {
            layout = try GGUFFile.validate(bytes)
        } catch {
            GGUFFile.release(storage, bytes)
            throw error
        }
    }

    /// Validates a copy of `source` (allocated here, 64-byte aligned, freed with the file).
    ///
    /// - Throws: The validation errors listed on the type.
    public init(copying source: UnsafeRawBufferPointer) throws(LichenError) {
        let count = source.count
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        if let from = source.baseAddress, count > 0 {
            buffer.copyMemory(from: from, byteCount: count)
        }
        storage = .owned
        bytes = GGUFBytes(base: UnsafeRawPointer(buffer), count: count)
        do {
            layout = try GGUFFile.validate(bytes)
        } catch {
            GGUFFile.release(storage, bytes)
            throw error
        }
    }

    /// Validates `source` in place, without copying it.
    ///
    /// - Warning: `source` must stay valid and unchanged for as long as this file and any
    ///   view made from it are used. Tensor views need it aligned for their element type
    ///   (a misaligned buffer makes `tensor(_:)` throw `.misaligned`).
    /// - Throws: The validation errors listed on the type.
    public init(borrowing source: UnsafeRawBufferPointer) throws(LichenError) {
        storage = .borrowed
        // An empty buffer may have no base address; any valid pointer serves for 0 bytes.
        let empty = UnsafeRawPointer(bitPattern: 64)
        guard let base = source.baseAddress ?? empty else {
            throw .malformedFile(offset: 0, reason: GGUFReason.truncated)
        }
        bytes = GGUFBytes(base: base, count: source.count)
        layout = try GGUFFile.validate(bytes)
    }

    deinit {
        GGUFFile.release(storage, bytes)
    }

    private static func release(_ storage: Storage, _ bytes: GGUFBytes) {
        switch storage {
        case .mapped: _ = lcr_file_unmap(bytes.base, bytes.count)
        case .owned: UnsafeMutableRawPointer(mutating: bytes.base).deallocate()
        case .borrowed: break
        }
    }

    // MARK: - Tensors

    /// Number of tensors.
    public var tensorCount: Int { layout.tensors.count }

    /// The tensors in file order.
    public var tensors: [GGUFTensorInfo] { layout.tensors }

    /// The tensor named `name`.
    /// - Throws: `.notFound(kind: "tensor", name:)`.
    public func tensorInfo(_ name: String) throws(LichenError) -> GGUFTensorInfo {
        guard let index = tensorIndex(name) else { throw .notFound(kind: "tensor", name: name) }
        return layout.tensors[index]
    }

    /// Whether the file has a tensor named `name`.
    public func containsTensor(_ name: String) -> Bool { tensorIndex(name) != nil }

    /// A view of tensor `name` over the file's bytes (zero-copy).
    ///
    /// - Warning: Read-only data behind a mutable-typed base; see the type's warning.
    /// - Throws: `.notFound`; `.misaligned` when a borrowed buffer is misaligned for the type.
    public func tensor(_ name: String) throws(LichenError) -> TensorView {
        let info = try tensorInfo(name)
        return try view(info)
    }

    /// A view of the tensor described by `info` (which must come from this file).
    public func view(_ info: GGUFTensorInfo) throws(LichenError) -> TensorView {
        try bytes.require(info.fileOffset, info.byteCount)
        // safe: the range was validated at open; the bytes are read-only by contract.
        let base = UnsafeMutableRawPointer(mutating: bytes.base + info.fileOffset)
        return try TensorView(base: base, byteCount: info.byteCount, type: info.type, shape: info.shape)
    }

    /// The bytes of tensor `name` (exactly `byteCount` of them).
    public func tensorBytes(_ name: String) throws(LichenError) -> UnsafeRawBufferPointer {
        let info = try tensorInfo(name)
        return bytes.slice(info.fileOffset, info.byteCount)
    }

    private func tensorIndex(_ name: String) -> Int? {
        var key = name
        return key.withUTF8 { utf8 -> Int? in
            let wanted = UnsafeRawBufferPointer(utf8)
            let t = layout.tensors
            return GGUFFile.search(layout.tensorOrder, wanted) { bytes.slice(t[$0].nameStart, t[$0].nameLength) }
        }
    }

    /// Binary search of `order` (indices sorted by their key bytes) for `wanted`.
    static func search(
        _ order: [Int], _ wanted: UnsafeRawBufferPointer, _ keyOf: (Int) -> UnsafeRawBufferPointer
    ) -> Int? {
        var low = 0, high = order.count
        while low < high {
            let mid = low + (high - low) / 2
            let c = compare(keyOf(order[mid]), wanted)
            if c == 0 { return order[mid] }
            if c < 0 { low = mid + 1 } else { high = mid }
        }
        return nil
    }
}

extension GGUFFile {
    /// The file's content hash: its byte count in the high 32 bits and the CRC-32 of every
    /// byte in the low 32 (the model an adapted state was learned on: `StateFile`; a skill's
    /// adapter file: `SkillMetadata`). Unlike
    /// `AdapterBase.hash`, it tells a model from its quantizations.
    /// - Note: Reads the whole file (load time).
    public func contentHash() -> UInt64 { GGUFFile.contentHash(of: rawBytes) }

    /// `contentHash()` of a file's bytes given in memory (what a writer is about to write).
    public static func contentHash(of bytes: UnsafeRawBufferPointer) -> UInt64 {
        var crc = CRC32()
        crc.update(bytes)
        return UInt64(UInt32(truncatingIfNeeded: bytes.count)) << 32 | UInt64(crc.value)
    }
}
