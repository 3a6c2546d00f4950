/*
 * lcr_gzip.c — lcr_gzip.h over zlib's inflate (windowBits 15 + 16: gzip wrapper only).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "lcr_gzip.h"
#include "lcr_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

_Static_assert(LCR_GZIP_CORRUPT == EBADMSG, "LCR_GZIP_CORRUPT must be EBADMSG");
_Static_assert(LCR_GZIP_TRUNCATED == ENODATA, "LCR_GZIP_TRUNCATED must be ENODATA");
_Static_assert(LCR_GZIP_TOO_LARGE == EFBIG, "LCR_GZIP_TOO_LARGE must be EFBIG");

enum { LCR_GZIP_CHUNK = 16384 };

/* Where compressed bytes come from: a descriptor read chunk by chunk, or memory. */
typedef struct source {
    int fd;                      /* -1 for memory */
    const unsigned char *memory; /* memory input */
    size_t memory_bytes;
    size_t memory_offset;        /* bytes of memory handed to inflate so far */
    unsigned char chunk[LCR_GZIP_CHUNK];
    int ended;                   /* no more input */
} source;

/* Hands the next piece of input to `z`. Returns 0 (possibly with src->ended set) or errno. */
static int source_refill(source *src, z_stream *z) {
    if (src->fd < 0) {
        size_t left = src->memory_bytes - src->memory_offset;
        if (left == 0) {
            src->ended = 1;
            return 0;
        }
        uInt n = left > (size_t)UINT_MAX ? UINT_MAX : (uInt)left;
        z->next_in = (Bytef *)(uintptr_t)(src->memory + src->memory_offset); /* inflate does not write input */
        z->avail_in = n;
        src->memory_offset += n;
        return 0;
    }
    for (;;) {
        ssize_t n = read(src->fd, src->chunk, sizeof src->chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) {
            src->ended = 1;
            return 0;
        }
        z->next_in = src->chunk;
        z->avail_in = (uInt)n;
        return 0;
    }
}

static int inflate_all(source *src, void *buffer, size_t capacity, lcr_gzip_result *result) {
    memset(result, 0, sizeof *result);
    if (buffer == NULL && capacity != 0) return EINVAL;
    z_stream z;
    memset(&z, 0, sizeof z);
    int zs = inflateInit2(&z, 15 + 16);
    result->zlib_status = zs;
    if (zs == Z_MEM_ERROR) return ENOMEM;
    if (zs != Z_OK) return EINVAL;

    unsigned char *out = buffer;
    uint64_t consumed_before = 0; /* input consumed by finished members (total_in restarts on reset) */
    size_t written = 0;
    int status = 0;
    int in_member = 1;            /* inside a member (header seen or expected first) */
    unsigned char sink;           /* one-byte target once the buffer is full, to detect overflow */

    for (;;) {
        if (z.avail_in == 0) {
            status = source_refill(src, &z);
            if (status != 0) break;
            if (src->ended) {
                /* Input ended: fine between members, truncation inside one. */
                if (in_member) status = ENODATA;
                break;
            }
        }
        if (!in_member) {
            /* More bytes after a complete member: they must start another member. */
            if (inflateReset(&z) != Z_OK) { status = EBADMSG; break; }
            in_member = 1;
        }
        size_t room = capacity - written;
        int full = room == 0;
        z.next_out = full ? &sink : out + written;
        z.avail_out = full ? 1 : (room > (size_t)UINT_MAX ? UINT_MAX : (uInt)room);
        uInt avail_before = z.avail_out;
        zs = inflate(&z, Z_NO_FLUSH);
        result->zlib_status = zs;
        size_t produced = (size_t)(avail_before - z.avail_out);
        if (full && produced > 0) {
            status = EFBIG;
            break;
        }
        if (!full) written += produced;
        if (zs == Z_STREAM_END) {
            result->members += 1;
            consumed_before += z.total_in;
            /* total_in of the next member restarts at 0 after inflateReset. */
            z.total_in = 0;
            in_member = 0;
            continue;
        }
        if (zs == Z_DATA_ERROR || zs == Z_NEED_DICT || zs == Z_STREAM_ERROR) { status = EBADMSG; break; }
        if (zs == Z_MEM_ERROR) { status = ENOMEM; break; }
        /* Z_OK, or Z_BUF_ERROR (no progress possible): loop to refill input or detect overflow. */
        if (zs == Z_BUF_ERROR && z.avail_in != 0 && !full && z.avail_out != 0) { status = EBADMSG; break; }
    }
    result->output_bytes = written;
    result->input_offset = consumed_before + (in_member ? z.total_in : 0);
    inflateEnd(&z);
    return status;
}

int lcr_gzip_inflate_memory(const void *input, size_t input_bytes, void *buffer, size_t capacity,
                            lcr_gzip_result *result) {
    if (result == NULL) return EINVAL;
    if (input == NULL && input_bytes != 0) {
        memset(result, 0, sizeof *result);
        return EINVAL;
    }
    static const unsigned char empty[1] = {0};
    source src;
    src.fd = -1;
    src.memory = input != NULL ? input : empty;
    src.memory_bytes = input_bytes;
    src.memory_offset = 0;
    src.ended = 0;
    return inflate_all(&src, buffer, capacity, result);
}

int lcr_gzip_inflate_file(const char *path, void *buffer, size_t capacity, lcr_gzip_result *result) {
    if (result == NULL) return EINVAL;
    memset(result, 0, sizeof *result);
    if (path == NULL) return EINVAL;
    /* The untrusted-path routine: O_NONBLOCK (a FIFO never blocks the open), regular files only. */
    int fd = -1;
    uint64_t size = 0;
    int opened = lcr_file_open_untrusted(path, 0, UINT64_MAX, &fd, &size);
    if (opened == LCR_FILE_NOT_REGULAR) return EINVAL;
    if (opened != 0) return opened;
    source src;
    src.fd = fd;
    src.memory = NULL;
    src.memory_bytes = 0;
    src.memory_offset = 0;
    src.ended = 0;
    int status = inflate_all(&src, buffer, capacity, result);
    close(fd);
    return status;
}

int lcr_gzip_size_hint(const char *path, uint64_t *uncompressed_bytes, uint64_t *file_bytes) {
    if (path == NULL || uncompressed_bytes == NULL || file_bytes == NULL) return EINVAL;
    int fd = -1;
    uint64_t size = 0;
    int opened = lcr_file_open_untrusted(path, 0, UINT64_MAX, &fd, &size);
    if (opened == LCR_FILE_NOT_REGULAR) return EINVAL;
    if (opened != 0) return opened;
    struct stat st;
    int status = 0;
    if (fstat(fd, &st) != 0) {
        status = errno;
    } else if (st.st_size < 18) {
        *file_bytes = (uint64_t)st.st_size;
        status = EBADMSG;
    } else {
        unsigned char tail[4];
        ssize_t n;
        do {
            n = pread(fd, tail, 4, (off_t)(st.st_size - 4));
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            status = errno;
        } else if (n != 4) {
            status = EIO;
        } else {
            *uncompressed_bytes = (uint64_t)tail[0] | ((uint64_t)tail[1] << 8) | ((uint64_t)tail[2] << 16) |
                                  ((uint64_t)tail[3] << 24);
            *file_bytes = (uint64_t)st.st_size;
        }
    }
    close(fd);
    return status;
}
