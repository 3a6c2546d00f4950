/*
 * lcr_file.c — POSIX implementation of lcr_file.h. Errors come back as errno values.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* pread, O_CLOEXEC, O_DIRECTORY without the package flags */
#endif

#include "lcr_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

int lcr_file_open_read(const char *path, int *fd) {
    if (path == NULL || fd == NULL) return EINVAL;
    int d;
    do {
        d = open(path, O_RDONLY | O_CLOEXEC);
    } while (d < 0 && errno == EINTR);
    if (d < 0) return errno;
    *fd = d;
    return 0;
}

int lcr_file_open_untrusted(const char *path, int flags, uint64_t max_bytes, int *fd, uint64_t *byte_count) {
    if (path == NULL || fd == NULL || byte_count == NULL) return EINVAL;
    int oflags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
    if (flags & LCR_FILE_NO_FOLLOW) oflags |= O_NOFOLLOW;
    int d;
    do {
        d = open(path, oflags);
    } while (d < 0 && errno == EINTR);
    if (d < 0) {
        /* O_NOFOLLOW on a symbolic link fails with ELOOP. */
        if (errno == ELOOP && (flags & LCR_FILE_NO_FOLLOW)) return LCR_FILE_SYMLINK;
        return errno;
    }
    struct stat st;
    if (fstat(d, &st) != 0) {
        int e = errno;
        close(d);
        return e;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 0) {
        close(d);
        return LCR_FILE_NOT_REGULAR;
    }
    *byte_count = (uint64_t)st.st_size;
    if ((uint64_t)st.st_size > max_bytes) {
        close(d);
        return LCR_FILE_TOO_LARGE;
    }
    int fl = fcntl(d, F_GETFL);
    if (fl >= 0) (void)fcntl(d, F_SETFL, fl & ~O_NONBLOCK);
    *fd = d;
    return 0;
}

int lcr_file_size(int fd, uint64_t *byte_count) {
    if (byte_count == NULL) return EINVAL;
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    if (!S_ISREG(st.st_mode) || st.st_size < 0) return EINVAL;
    *byte_count = (uint64_t)st.st_size;
    return 0;
}

int lcr_file_map(int fd, size_t byte_count, int shared, const void **address) {
    if (address == NULL || byte_count == 0) return EINVAL;
    void *p = mmap(NULL, byte_count, PROT_READ, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return errno;
    *address = p;
    return 0;
}

int lcr_file_unmap(const void *address, size_t byte_count) {
    if (address == NULL || byte_count == 0) return EINVAL;
    /* munmap takes a non-const pointer; the mapping is read-only, nothing is written. */
    if (munmap((void *)(uintptr_t)address, byte_count) != 0) return errno;
    return 0;
}

int lcr_file_read_all(int fd, void *buffer, size_t byte_count) {
    if (buffer == NULL && byte_count != 0) return EINVAL;
    unsigned char *out = buffer;
    size_t done = 0;
    while (done < byte_count) {
        size_t chunk = byte_count - done;
        if (chunk > (size_t)SSIZE_MAX) chunk = (size_t)SSIZE_MAX;
        if ((uint64_t)done > (uint64_t)INT64_MAX) return EOVERFLOW;
        ssize_t n = pread(fd, out + done, chunk, (off_t)done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO; /* the file is shorter than byte_count */
        done += (size_t)n;
    }
    return 0;
}

int lcr_file_close(int fd) {
    /* Not retried on EINTR: on Linux the descriptor is released either way. */
    if (close(fd) != 0) return errno;
    return 0;
}

int lcr_file_create(const char *path, int *fd) {
    if (path == NULL || fd == NULL) return EINVAL;
    int d;
    do {
        d = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    } while (d < 0 && errno == EINTR);
    if (d < 0) return errno;
    *fd = d;
    return 0;
}

int lcr_file_write_all(int fd, const void *bytes, size_t byte_count) {
    if (bytes == NULL && byte_count != 0) return EINVAL;
    const unsigned char *in = bytes;
    size_t done = 0;
    while (done < byte_count) {
        size_t chunk = byte_count - done;
        if (chunk > (size_t)SSIZE_MAX) chunk = (size_t)SSIZE_MAX;
        ssize_t n = write(fd, in + done, chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO;
        done += (size_t)n;
    }
    return 0;
}

int lcr_file_sync(int fd) {
    int r;
    do {
        r = fsync(fd);
    } while (r != 0 && errno == EINTR);
    return r == 0 ? 0 : errno;
}

int lcr_file_rename(const char *from, const char *to) {
    if (from == NULL || to == NULL) return EINVAL;
    if (rename(from, to) != 0) return errno;
    return 0;
}

int lcr_file_remove(const char *path) {
    if (path == NULL) return EINVAL;
    if (unlink(path) != 0) return errno;
    return 0;
}

int lcr_file_sync_parent_directory(const char *path) {
    if (path == NULL) return EINVAL;
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        dir[0] = '.';
        dir[1] = '\0';
    } else if (slash == path) {
        dir[0] = '/';
        dir[1] = '\0';
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) return ENAMETOOLONG;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int d;
    do {
        d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (d < 0 && errno == EINTR);
    if (d < 0) return errno;
    int r = lcr_file_sync(d);
    close(d);
    /* Some file systems cannot fsync a directory; the rename itself is still atomic. */
    if (r == EINVAL || r == EROFS) r = 0;
    return r;
}

int lcr_file_link_new(const char *from, const char *to) {
    if (from == NULL || to == NULL) return EINVAL;
    if (link(from, to) != 0) return errno;
    if (unlink(from) != 0) return errno;
    return 0;
}

int lcr_dir_create(const char *path) {
    if (path == NULL) return EINVAL;
    if (mkdir(path, 0755) == 0) return 0;
    int e = errno;
    if (e != EEXIST) return e;
    struct stat st;
    if (stat(path, &st) != 0) return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

int lcr_dir_list(const char *path, char *buffer, size_t capacity, size_t *byte_count) {
    if (path == NULL || byte_count == NULL || (buffer == NULL && capacity > 0)) return EINVAL;
    DIR *dir = opendir(path);
    if (dir == NULL) return errno;
    size_t used = 0;
    int status = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (e == NULL) {
            if (errno != 0) status = errno;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        size_t n = strlen(e->d_name) + 1;
        if (used + n <= capacity) memcpy(buffer + used, e->d_name, n);
        used += n;
    }
    closedir(dir);
    *byte_count = used;
    if (status != 0) return status;
    return used > capacity ? LCR_DIR_TOO_SMALL : 0;
}

int lcr_file_exists(const char *path) {
    if (path == NULL) return EINVAL;
    struct stat st;
    return lstat(path, &st) == 0 ? 0 : errno;
}
