import CRuntime

/// Directory access for folders of files Lichen manages (the skill library): create, list the
/// entry names, remove a file. The one place outside `GGUFWriter` that touches directories.
public enum Directory {
    /// Largest listing read (bytes of names plus one NUL each); a folder with more is refused.
    public static let maximumListingBytes = 1 << 20

    /// Creates the directory `path` unless it already is one.
    /// - Throws: `.fileRefused` for a NUL in the path; `.fileError(path:call: "mkdir", errno:)`
    ///   (ENOTDIR when `path` exists and is not a directory).
    /// - Note: The corresponding C function is `lcr_dir_create`.
    public static func create(_ path: String) throws(LichenError) {
        try refuseNUL(path)
        let status = path.withCString { lcr_dir_create($0) }
        guard status == 0 else { throw .fileError(path: path, call: "mkdir", errno: status) }
    }

    /// The names of the entries of directory `path` (not "." and ".."), sorted by their bytes.
    /// - Throws: `.fileRefused` for a NUL in the path or a listing over `maximumListingBytes`;
    ///   `.fileError(path:call: "opendir", errno:)`.
    /// - Note: Allocates (control thread, never the step). The corresponding C function is `lcr_dir_list`.
    public static func entries(_ path: String) throws(LichenError) -> [String] {
        try refuseNUL(path)
        var capacity = 4096
        while true {
            var buffer = [UInt8](repeating: 0, count: capacity)
            var used = 0
            let status = path.withCString { p in
                buffer.withUnsafeMutableBytes { b in
                    // safe: b holds `capacity` bytes; C writes at most that many.
                    lcr_dir_list(p, b.baseAddress?.assumingMemoryBound(to: CChar.self), capacity, &used)
                }
            }
            if status == LCR_DIR_TOO_SMALL {
                guard used <= maximumListingBytes else {
                    throw .fileRefused(path: path, reason: "the directory listing is too large", byteCount: used, limit: maximumListingBytes)
                }
                capacity = used + 256
                continue
            }
            guard status == 0 else { throw .fileError(path: path, call: "opendir", errno: status) }
            var names: [String] = []
            var start = 0
            for i in 0..<used where buffer[i] == 0 {
                names.append(String(decoding: buffer[start..<i], as: UTF8.self))
                start = i + 1
            }
            return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        }
    }

    /// Removes the file at `path`.
    /// - Throws: `.fileError(path:call: "unlink", errno:)` (ENOENT when it does not exist).
    /// - Note: The corresponding C function is `lcr_file_remove`.
    public static func removeFile(_ path: String) throws(LichenError) {
        try refuseNUL(path)
        let status = path.withCString { lcr_file_remove($0) }
        guard status == 0 else { throw .fileError(path: path, call: "unlink", errno: status) }
    }

    /// Flushes the directory holding `path`, so that a removal or a new file survives a power loss.
    /// - Throws: `.fileError(path:call: "fsync", errno:)`.
    public static func syncParent(of path: String) throws(LichenError) {
        let status = path.withCString { lcr_file_sync_parent_directory($0) }
        guard status == 0 else { throw .fileError(path: path, call: "fsync", errno: status) }
    }

    /// Whether a file (of any kind) exists at `path`, without following a final symbolic link.
    public static func exists(_ path: String) -> Bool {
        guard !path.utf8.contains(0) else { return false }
        return path.withCString { lcr_file_exists($0) } == 0
    }

    private static func refuseNUL(_ path: String) throws(LichenError) {
        guard !path.utf8.contains(0) else { throw .fileRefused(path: path, reason: UntrustedFile.nulInPath, byteCount: 0, limit: 0) }
    }
}
