import CRuntime

/// Writes files so that a crash at any moment leaves either the old file or the new one:
/// a temporary file in the same folder, written whole, fsync'd, renamed over the target, then
/// the folder fsync'd (the rename itself made durable).
enum AtomicFile {
    /// Writes what `body` emits, in order, as the new content of `path`, through `temporary` (a
    /// path in the same folder). On failure the temporary file is removed and `path` is untouched.
    /// With `replacing` false the finished temporary is published with link(2) instead of
    /// rename(2), which fails with EEXIST when `path` exists: an existing file is never replaced.
    ///
    /// - Throws: `.fileError(path:call:errno:)` naming the failed call ("rename" or "link").
    /// - Note: Allocates nothing itself (given native strings). The corresponding C functions
    ///   are `lcr_file_create`, `lcr_file_write_all`, `lcr_file_sync`, `lcr_file_rename`,
    ///   `lcr_file_sync_parent_directory`.
    static func write(path: String, temporary: String, replacing: Bool = true,
                      _ body: (_ emit: (UnsafeRawBufferPointer) -> Void) -> Void) throws(LichenError) {
        var fd: Int32 = -1
        let created = temporary.withCString { lcr_file_create($0, &fd) }
        guard created == 0 else { throw .fileError(path: temporary, call: "open", errno: created) }
        var failure: LichenError? = nil
        body { bytes in
            guard failure == nil, let base = bytes.baseAddress, bytes.count > 0 else { return }
            let status = lcr_file_write_all(fd, base, bytes.count)
            if status != 0 { failure = .fileError(path: temporary, call: "write", errno: status) }
        }
        if failure == nil {
            let status = lcr_file_sync(fd)
            if status != 0 { failure = .fileError(path: temporary, call: "fsync", errno: status) }
        }
        let closed = lcr_file_close(fd)
        if failure == nil, closed != 0 { failure = .fileError(path: temporary, call: "close", errno: closed) }
        if failure == nil {
            let status = temporary.withCString { from in
                path.withCString { to in replacing ? lcr_file_rename(from, to) : lcr_file_link_new(from, to) }
            }
            if status != 0 { failure = .fileError(path: path, call: replacing ? "rename" : "link", errno: status) }
        }
        if let failure {
            _ = temporary.withCString { lcr_file_remove($0) }
            throw failure
        }
        let synced = path.withCString { lcr_file_sync_parent_directory($0) }
        guard synced == 0 else { throw .fileError(path: path, call: "fsync", errno: synced) }
    }
}
