/*
 * lcr_gzip.h — whole-file gzip decompression (RFC 1952) into a caller's buffer, through
 * zlib's inflate. Used to read the IDX files of Fashion-MNIST as Debian ships them.
 *
 * Every function returns 0 on success or an errno value; none aborts. Failure codes:
 *   EBADMSG  the data is not gzip or is corrupt (bad header, bad deflate data, CRC-32 or
 *            length mismatch, bytes after a member that do not start another member);
 *   ENODATA  the input ended before the end of the gzip stream (truncated);
 *   EFBIG    the decompressed data does not fit in `capacity` bytes;
 *   ENOMEM   zlib could not allocate its state;
 *   others   from open/fstat/read (ENOENT, EACCES, EISDIR, EIO, ...).
 * `result` always says how far the call got (see lcr_gzip_result).
 *
 * Memory: zlib allocates its inflate state (about 7 KiB) and window (32 KiB) with malloc
 * for the duration of one call and frees them before returning. The file variant reads
 * through a 16 KiB buffer on the stack. Nothing else is allocated.
 * Link with -lz.
 */
#ifndef LCR_GZIP_H
#define LCR_GZIP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The failure codes above, as constants for callers that do not include <errno.h>
/// (lcr_gzip.c asserts they equal the errno values).
enum {
    LCR_GZIP_CORRUPT = 74,   /* EBADMSG */
    LCR_GZIP_TRUNCATED = 61, /* ENODATA */
    LCR_GZIP_TOO_LARGE = 27, /* EFBIG */
};

/// How far a decompression got.
typedef struct lcr_gzip_result {
    /// Decompressed bytes written to the buffer.
    uint64_t output_bytes;
    /// Compressed bytes consumed. On EBADMSG: the offset in the input at which inflate
    /// stopped (zlib detects corruption within its input window, at or after the bad byte);
    /// on ENODATA: the input length; on EFBIG: the input offset reached when the buffer filled.
    uint64_t input_offset;
    /// zlib's last return code (Z_OK = 0, Z_STREAM_END = 1, Z_DATA_ERROR = -3, ...).
    int32_t zlib_status;
    /// Number of gzip members decompressed completely.
    int32_t members;
} lcr_gzip_result;

/// Decompresses the whole gzip file at `path` (one or more members) into `buffer`, at most
/// `capacity` bytes. `result` may not be NULL.
int lcr_gzip_inflate_file(const char *path, void *buffer, size_t capacity, lcr_gzip_result *result);

/// Decompresses `input_bytes` bytes of gzip data at `input` into `buffer` (same rules).
int lcr_gzip_inflate_memory(const void *input, size_t input_bytes, void *buffer, size_t capacity,
                            lcr_gzip_result *result);

/// Reads the size field (ISIZE, the uncompressed length mod 2^32, little-endian) from the
/// last four bytes of the gzip file at `path` into `*uncompressed_bytes`, and the file's
/// length into `*file_bytes`. A hint for sizing the buffer only: it is right for a
/// single-member file under 4 GiB and says nothing about whether the data is intact.
/// EBADMSG when the file is shorter than a gzip header and trailer (18 bytes).
int lcr_gzip_size_hint(const char *path, uint64_t *uncompressed_bytes, uint64_t *file_bytes);

#ifdef __cplusplus
}
#endif

#endif
