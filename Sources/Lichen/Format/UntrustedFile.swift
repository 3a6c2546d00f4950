import CRuntime

/// The one way Lichen opens a file whose path came from outside (a caller, a flag, a control
/// socket peer): checked before a byte is read, and read only up to what was checked.
///
/// - A path holding a NUL byte is refused (C would silently cut it at the NUL and open
///   another file than the one named).
/// - `open` never blocks: O_NONBLOCK, so a FIFO without a writer or a device answers at once.
/// - The descriptor is `fstat`ed: only a regular file is taken (a FIFO, socket, device or
///   directory is refused with `.fileRefused`).
/// - Its size is compared with `maximumBytes` (what the caller may take: the budget's heap for
///   an adapter) before anything is read or mapped, so a sparse multi-gigabyte file costs nothing.
/// - Symbolic links: `followSymbolicLinks: false` adds O_NOFOLLOW, refusing a link as the last
///   component. Adapter files use it: their paths arrive over the control socket from any local
///   process that may connect, and a link planted in a shared directory must not make the
///   runtime read a file its peer could not name directly. Model files follow links: the
///   embedding binary or the operator names them at start, and a "current model" link is the
///   usual way to roll out a new one.
///
/// Errors name the path: `.fileError(path:call:errno:)` for a failed system call,
/// `.fileRefused(path:reason:byteCount:limit:)` for a refusal.
struct UntrustedFile: ~Copyable {
    /// The open descriptor (closed on deinit).
    let descriptor: Int32
    /// The file's size in bytes, checked against the limit.
    let byteCount: Int
    /// The path as given.
    let path: String

    static let nulInPath: StaticString = "the path holds a NUL byte"
    static let notRegular: StaticString = "not a regular file (a FIFO, socket, device or directory)"
    static let symbolicLink: StaticString = "a symbolic link (adapter paths are not followed through links)"
    static let tooLarge: StaticString = "the file is larger than the caller may read"

    /// Opens and checks `path` (see the type).
    /// - Throws: `.fileRefused` for a NUL in the path, a file that is not regular, a symbolic
    ///   link with `followSymbolicLinks: false`, a file over `maximumBytes` (its size and the
    ///   limit in the error); `.fileError(path:call: "open" or "fstat", errno:)`.
    /// - Note: The corresponding C function is `lcr_file_open_untrusted`.
    init(path: String, maximumBytes: Int, followSymbolicLinks: Bool = true) throws(LichenError) {
        guard !path.utf8.contains(0) else { throw .fileRefused(path: path, reason: UntrustedFile.nulInPath, byteCount: 0, limit: 0) }
        let limit = max(maximumBytes, 0)
        var fd: Int32 = -1
        var size: UInt64 = 0
        let status = path.withCString {
            lcr_file_open_untrusted($0, followSymbolicLinks ? 0 : LCR_FILE_NO_FOLLOW, UInt64(limit), &fd, &size)
        }
        switch status {
        case 0: break
        case LCR_FILE_NOT_REGULAR:
            throw .fileRefused(path: path, reason: UntrustedFile.notRegular, byteCount: 0, limit: 0)
        case LCR_FILE_SYMLINK:
            throw .fileRefused(path: path, reason: UntrustedFile.symbolicLink, byteCount: 0, limit: 0)
        case LCR_FILE_TOO_LARGE:
            throw .fileRefused(path: path, reason: UntrustedFile.tooLarge,
                               byteCount: Int(clamping: size), limit: limit)
        default:
            throw .fileError(path: path, call: "open", errno: status)
        }
        // safe: size <= limit <= Int.max was checked in C.
        descriptor = fd
        byteCount = Int(clamping: size)
        self.path = path
    }

    deinit {
        _ = lcr_file_close(descriptor)
    }

    /// Reads the whole file (exactly `byteCount` bytes, checked at open) into `buffer`.
    /// - Throws: `.fileError(path:call: "read", errno:)` (EIO when the file shrank since it was opened).
    func readAll(into buffer: UnsafeMutableRawPointer) throws(LichenError) {
        let status = lcr_file_read_all(descriptor, buffer, byteCount)
        guard status == 0 else { throw .fileError(path: path, call: "read", errno: status) }
    }

    /// Maps the file read-only (`byteCount` bytes, > 0).
    /// - Throws: `.fileError(path:call: "mmap", errno:)`.
    func map(shared: Bool) throws(LichenError) -> UnsafeRawPointer {
        var address: UnsafeRawPointer? = nil
        let status = lcr_file_map(descriptor, byteCount, shared ? 1 : 0, &address)
        guard status == 0, let mapped = address else { throw .fileError(path: path, call: "mmap", errno: status) }
        return mapped
    }
}
