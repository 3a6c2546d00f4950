/*
 * lcr_os.h — the operating-system calls Lichen's Swift core needs, as plain C shims.
 *
 * Sources/Lichen never imports Glibc (it must also compile as Embedded Swift), so every
 * system call it makes goes through one of these functions. They are thin: no hidden
 * allocation, no global state except what the kernel keeps (errno).
 *
 * Errors: functions that can fail return NULL / a negative value and leave errno set;
 * read it with lcr_os_errno() right after the call, on the same thread.
 */
#ifndef LCR_OS_H
#define LCR_OS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- memory ---- */

/// The kernel's page size in bytes (sysconf(_SC_PAGESIZE)).
size_t lcr_os_page_size(void);

/// Reserves `bytes` of anonymous, private, zero-filled address space
/// (mmap PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE). Pages are backed
/// only when first touched. Returns NULL on failure (errno set) or when `bytes` is 0.
void *lcr_os_reserve(size_t bytes);

/// Releases `bytes` at `address` (munmap; both page-aligned ranges from lcr_os_reserve).
/// Returns 0, or -1 with errno set.
int lcr_os_release(void *address, size_t bytes);

/* ---- errors and time ---- */

/// The calling thread's errno.
int lcr_os_errno(void);

/// CLOCK_MONOTONIC in nanoseconds (for metrics and benchmarks; never for test assertions).
uint64_t lcr_os_monotonic_ns(void);

/// Wall-clock time (CLOCK_REALTIME), nanoseconds since the Unix epoch; 0 when unavailable.
uint64_t lcr_os_realtime_ns(void);

/* ---- process memory, from /proc/self/status ---- */

/// Resident set size now (VmRSS) in bytes, or -1 when it cannot be read.
int64_t lcr_os_rss_bytes(void);
/// Peak resident set size (VmHWM) in bytes, or -1 when it cannot be read.
int64_t lcr_os_peak_rss_bytes(void);

/* ---- mutex over caller-provided storage (no allocation) ----
 * Storage must be lcr_os_mutex_size() bytes aligned to lcr_os_mutex_alignment(). */

size_t lcr_os_mutex_size(void);
size_t lcr_os_mutex_alignment(void);
/// Returns 0, or an errno value.
int lcr_os_mutex_init(void *storage);
void lcr_os_mutex_destroy(void *storage);
void lcr_os_mutex_lock(void *storage);
void lcr_os_mutex_unlock(void *storage);

/* ---- process (for the Embedded test runner) ---- */

/// Terminates the process with `status` (exit(3): stdio is flushed).
void lcr_os_exit(int status);
/// Writes `count` bytes to standard output, retrying short writes. Returns bytes written or -1.
long lcr_os_write_stdout(const char *bytes, size_t count);
/// Writes `count` bytes to standard error, retrying short writes. Returns bytes written or -1.
long lcr_os_write_stderr(const char *bytes, size_t count);

/// The calling thread's last error text (lichen_runtime_create's reason, which no runtime holds):
/// set copies up to 511 bytes; get copies it NUL-terminated, cut to capacity, and gives its full
/// length. Thread-local storage: no allocation, no lock.
void lcr_os_thread_error_set(const char *text, size_t length);
size_t lcr_os_thread_error_get(char *buffer, size_t capacity);

#ifdef __cplusplus
}
#endif
#endif /* LCR_OS_H */
