#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lcr_os.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

size_t lcr_os_page_size(void) {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

void *lcr_os_reserve(size_t bytes) {
    if (bytes == 0) {
        errno = EINVAL;
        return NULL;
    }
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int lcr_os_release(void *address, size_t bytes) {
    if (address == NULL || bytes == 0) return 0;
    return munmap(address, bytes);
}

int lcr_os_errno(void) { return errno; }

uint64_t lcr_os_realtime_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t lcr_os_monotonic_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Reads one "Key:   123 kB" line of /proc/self/status. Uses read(2) into a stack buffer
 * rather than stdio so that it allocates nothing. */
static int64_t status_kib(const char *key) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, buf + used, sizeof buf - 1 - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        used += (size_t)n;
        if (used == sizeof buf - 1) break;
    }
    close(fd);
    buf[used] = 0;
    size_t klen = strlen(key);
    for (const char *line = buf; line && *line; ) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *p = line + klen + 1;
            while (*p == ' ' || *p == '\t') p++;
            int64_t v = 0;
            int digits = 0;
            while (*p >= '0' && *p <= '9') {
                v = v * 10 + (*p - '0');
                p++;
                digits++;
            }
            return digits ? v : -1;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    return -1;
}

int64_t lcr_os_rss_bytes(void) {
    int64_t k = status_kib("VmRSS");
    return k < 0 ? -1 : k * 1024;
}

int64_t lcr_os_peak_rss_bytes(void) {
    int64_t k = status_kib("VmHWM");
    return k < 0 ? -1 : k * 1024;
}

size_t lcr_os_mutex_size(void) { return sizeof(pthread_mutex_t); }
size_t lcr_os_mutex_alignment(void) { return _Alignof(pthread_mutex_t); }
int lcr_os_mutex_init(void *storage) { return pthread_mutex_init((pthread_mutex_t *)storage, NULL); }
void lcr_os_mutex_destroy(void *storage) { pthread_mutex_destroy((pthread_mutex_t *)storage); }
void lcr_os_mutex_lock(void *storage) { pthread_mutex_lock((pthread_mutex_t *)storage); }
void lcr_os_mutex_unlock(void *storage) { pthread_mutex_unlock((pthread_mutex_t *)storage); }

void lcr_os_exit(int status) { exit(status); }

static long write_fd_all(int fd, const char *bytes, size_t count) {
    size_t done = 0;
    while (done < count) {
        ssize_t n = write(fd, bytes + done, count - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        done += (size_t)n;
    }
    return (long)done;
}

long lcr_os_write_stdout(const char *bytes, size_t count) { return write_fd_all(STDOUT_FILENO, bytes, count); }

long lcr_os_write_stderr(const char *bytes, size_t count) { return write_fd_all(STDERR_FILENO, bytes, count); }

static _Thread_local char thread_error[512];
static _Thread_local size_t thread_error_length;

void lcr_os_thread_error_set(const char *text, size_t length) {
    if (length > sizeof thread_error - 1) length = sizeof thread_error - 1;
    if (text != NULL && length > 0) memcpy(thread_error, text, length);
    thread_error[length] = 0;
    thread_error_length = length;
}

size_t lcr_os_thread_error_get(char *buffer, size_t capacity) {
    if (buffer != NULL && capacity > 0) {
        size_t n = thread_error_length < capacity - 1 ? thread_error_length : capacity - 1;
        memcpy(buffer, thread_error, n);
        buffer[n] = 0;
    }
    return thread_error_length;
}
