import CRuntime

/// What a gzip file's trailer says about its size (`ByteView.gzipSizeHint(path:)`).
public struct GzipSizeHint: Sendable {
    /// The trailer's ISIZE: the uncompressed length mod 2^32 of the last member.
    public let uncompressedByteCount: Int
    /// The length of the compressed file.
    public let fileByteCount: Int
}

extension ByteView {
    /// Reads the uncompressed-size field from the gzip file at `path` (its last four bytes).
    /// Right for single-member files under 4 GiB; it does not prove the data intact.
    ///
    /// - Throws: `.fileError(path:call:errno:)` when the file cannot be opened or read;
    ///   `.corruptFile(path:offset:reason:)` when it is shorter than a gzip header plus trailer.
    /// - Note: The corresponding C function is `lcr_gzip_size_hint`.
    public static func gzipSizeHint(path: String) throws(LichenError) -> GzipSizeHint {
        guard !path.utf8.contains(0) else { throw .fileRefused(path: path, reason: "the path holds a NUL byte", byteCount: 0, limit: 0) }
        var uncompressed: UInt64 = 0, file: UInt64 = 0
        let status = path.withCString { lcr_gzip_size_hint($0, &uncompressed, &file) }
        if status == EBADMSG_VALUE {
            throw .corruptFile(path: path, offset: Int(file), reason: "file is shorter than a gzip header and trailer")
        }
        guard status == 0 else { throw .fileError(path: path, call: "lcr_gzip_size_hint", errno: status) }
        return GzipSizeHint(uncompressedByteCount: Int(uncompressed), fileByteCount: Int(file))
    }

    /// Decompresses the whole gzip file at `path` (one or more members) into this view.
    ///
    /// - Returns: the number of bytes written (from the start of the view).
    /// - Throws: `.fileError` (open/read failed); `.corruptFile(path:offset:reason:)` with the
    ///   offset in the compressed file where inflate stopped, for corrupt data (bad header,
    ///   deflate data, CRC-32 or length) or a truncated file (offset = file length);
    ///   `.bufferTooSmall(operand: "gzip output", needed: count + 1, available: count)` when the
    ///   content is larger than the view (`needed` is a lower bound).
    /// - Note: zlib mallocs about 40 KiB of inflate state for the duration of the call.
    ///   The corresponding C function is `lcr_gzip_inflate_file`.
    public func inflateGzipFile(path: String) throws(LichenError) -> Int {
        guard !path.utf8.contains(0) else { throw .fileRefused(path: path, reason: "the path holds a NUL byte", byteCount: 0, limit: 0) }
        var result = lcr_gzip_result()
        let status = path.withCString { lcr_gzip_inflate_file($0, base, count, &result) }
        switch status {
        case 0: return Int(result.output_bytes)
        case EBADMSG_VALUE:
            throw .corruptFile(path: path, offset: Int(result.input_offset), reason: "corrupt gzip data (header, deflate stream, CRC-32 or length)")
        case ENODATA_VALUE:
            throw .corruptFile(path: path, offset: Int(result.input_offset), reason: "gzip data is truncated")
        case EFBIG_VALUE:
            throw .bufferTooSmall(operand: "gzip output", needed: count + 1, available: count)
        default:
            throw .fileError(path: path, call: "lcr_gzip_inflate_file", errno: status)
        }
    }

    /// Decompresses the gzip data in `compressed` into this view.
    ///
    /// - Returns: the number of bytes written.
    /// - Throws: `.malformedFile(offset:reason:)` (offset in `compressed`) for corrupt or
    ///   truncated data; `.bufferTooSmall(operand: "gzip output", ...)` as `inflateGzipFile`;
    ///   `.systemError(call: "inflate", ...)` when zlib cannot allocate its state.
    /// - Note: The corresponding C function is `lcr_gzip_inflate_memory`.
    public func inflateGzip(from compressed: ByteView) throws(LichenError) -> Int {
        var result = lcr_gzip_result()
        let status = lcr_gzip_inflate_memory(compressed.base, compressed.count, base, count, &result)
        switch status {
        case 0: return Int(result.output_bytes)
        case EBADMSG_VALUE:
            throw .malformedFile(offset: Int(result.input_offset), reason: "corrupt gzip data (header, deflate stream, CRC-32 or length)")
        case ENODATA_VALUE:
            throw .malformedFile(offset: Int(result.input_offset), reason: "gzip data is truncated")
        case EFBIG_VALUE:
            throw .bufferTooSmall(operand: "gzip output", needed: count + 1, available: count)
        default:
            throw .systemError(call: "inflate", errno: status)
        }
    }
}

private let EBADMSG_VALUE = Int32(LCR_GZIP_CORRUPT)
private let ENODATA_VALUE = Int32(LCR_GZIP_TRUNCATED)
private let EFBIG_VALUE = Int32(LCR_GZIP_TOO_LARGE)
