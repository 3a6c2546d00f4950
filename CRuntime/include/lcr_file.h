/*
 * lcr_file.h — file access for Lichen's Swift core: read-only mapping of model files, a
 * read-into-buffer fallback for boards without mmap, and the calls an atomic write needs
 * (create, write, fsync, rename).
 *
 * Every function returns 0 on success or an errno value on failure; none aborts, none
 * allocates. Descriptors are plain ints and are opened with O_CLOEXEC.
 */
#ifndef LCR_FILE_H
#define LCR_FILE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reading ---- */

/// Opens `path` read-only. On success stores the descriptor in `*fd`.
/// Trusted paths only (files Lichen itself wrote); input goes through lcr_file_open_untrusted.
int lcr_file_open_read(const char *path, int *fd);

/* Results of lcr_file_open_untrusted besides 0 and errno values (negative, so they never
 * collide with an errno). */
#define LCR_FILE_NOT_REGULAR (-1) /* a FIFO, socket, device or directory */
#define LCR_FILE_TOO_LARGE (-2)   /* larger than max_bytes; *byte_count holds the size */
#define LCR_FILE_SYMLINK (-3)     /* the last component is a symbolic link (LCR_FILE_NO_FOLLOW) */

/* Flags of lcr_file_open_untrusted. */
#define LCR_FILE_NO_FOLLOW 1 /* refuse a symbolic link as the last component (O_NOFOLLOW) */

/// Opens `path`, which came from outside (a caller, a flag, a socket peer), for reading, and
/// checks it before anything is read:
/// - open(2) with O_RDONLY | O_CLOEXEC | O_NONBLOCK, so a FIFO without a writer or a device
///   cannot block the caller in open(); plus O_NOFOLLOW when `flags` has LCR_FILE_NO_FOLLOW
///   (LCR_FILE_SYMLINK then);
/// - fstat(2) on the descriptor (no race with a rename of the path): anything but a regular
///   file is LCR_FILE_NOT_REGULAR and is closed unread;
/// - the size against `max_bytes`: a larger file (a sparse multi-gigabyte one too) is
///   LCR_FILE_TOO_LARGE, closed unread, with its size in `*byte_count`.
/// O_NONBLOCK is cleared again on success (it means nothing for a regular file).
/// On success stores the descriptor in `*fd` and the size in `*byte_count`; reads after it
/// should be bounded by that size (lcr_file_read_all reads exactly what it is asked).
int lcr_file_open_untrusted(const char *path, int flags, uint64_t max_bytes, int *fd, uint64_t *byte_count);

/// Stores the size in bytes of the regular file behind `fd` in `*byte_count` (fstat).
/// Returns EINVAL if `fd` is not a regular file.
int lcr_file_size(int fd, uint64_t *byte_count);

/// Maps the first `byte_count` bytes of `fd` with PROT_READ, MAP_SHARED when `shared` is
/// nonzero (page-cache backed, shared between processes) and MAP_PRIVATE otherwise.
/// Stores the address in `*address`. `byte_count` must be nonzero (EINVAL otherwise).
/// The mapping stays valid after the descriptor is closed.
int lcr_file_map(int fd, size_t byte_count, int shared, const void **address);

/// Unmaps a mapping made by lcr_file_map (same address and byte count).
int lcr_file_unmap(const void *address, size_t byte_count);

/// Reads exactly `byte_count` bytes from offset 0 of `fd` into `buffer` (pread, retried on
/// EINTR and short reads). Returns EIO if the file ends first.
int lcr_file_read_all(int fd, void *buffer, size_t byte_count);

/// Closes `fd`.
int lcr_file_close(int fd);

/* ---- writing ---- */

/// Creates `path` for writing (O_WRONLY | O_CREAT | O_TRUNC, mode 0644) and stores the
/// descriptor in `*fd`.
int lcr_file_create(const char *path, int *fd);

/// Writes all `byte_count` bytes (retried on EINTR and short writes).
int lcr_file_write_all(int fd, const void *bytes, size_t byte_count);

/// Flushes the file's data and metadata to the device (fsync).
int lcr_file_sync(int fd);

/// Renames `from` to `to`, replacing `to` atomically (rename(2)).
int lcr_file_rename(const char *from, const char *to);

/// Removes `path` (unlink).
int lcr_file_remove(const char *path);

/// Flushes the directory that holds `path` (the part before the last '/', or "." if there
/// is none), so that a rename into it survives a power loss.
int lcr_file_sync_parent_directory(const char *path);

/* ---- directories (skill libraries) ---- */

#define LCR_DIR_TOO_SMALL (-4) /* lcr_dir_list: the buffer is too small; *byte_count holds the size */

/// Returns 0 when something (a file, directory, link) exists at `path` (lstat), else errno.
int lcr_file_exists(const char *path);

/// Publishes the finished file `from` as `to` without ever replacing a file: link(2) then
/// unlink(2) of `from`. Returns EEXIST (and leaves both paths as they were) when `to` exists.
int lcr_file_link_new(const char *from, const char *to);

/// Creates the directory `path` (mode 0755). Returns 0 when it was created or already is a
/// directory, ENOTDIR when `path` exists and is not one.
int lcr_dir_create(const char *path);

/// Lists the names of the entries of directory `path` (without "." and ".."), each followed
/// by a NUL byte, into `buffer` (`capacity` bytes); `*byte_count` receives the bytes used.
/// Returns LCR_DIR_TOO_SMALL, with `*byte_count` = the bytes needed, when `capacity` is too small.
int lcr_dir_list(const char *path, char *buffer, size_t capacity, size_t *byte_count);

#ifdef __cplusplus
}
#endif

#endif
