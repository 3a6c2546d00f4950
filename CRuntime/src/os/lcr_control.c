#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lcr_control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* One connection slot. Buffers point into the caller's storage. */
typedef struct {
    int fd;                 // -1 when free
    int closing;            // close once the pending answer is written
    uint64_t deadline_ms;   // monotonic time by which the current phase must finish
    uint64_t since_ms;      // when the current phase (idle, request, answer) began
    uint64_t round;         // accept round the connection came in
    size_t in_used;         // bytes of the current frame received (prefix + body)
    size_t out_length;      // bytes of the answer frame to send
    size_t out_sent;
    uint8_t *in;            // 4 + max_request
    uint8_t *out;           // 4 + max_response
} client_slot;

struct lcr_control {
    int listen_fd;
    int wake_read, wake_write;
    uint32_t max_clients;
    size_t max_request, max_response;
    int io_timeout_ms;
    lcr_control_handler handler;
    void *context;
    pthread_t thread;
    _Atomic int stopping;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    client_slot *clients;
    struct pollfd *polls;   // 2 + max_clients
    _Atomic uint64_t accepted, requests, rejected_busy, rejected_frames, timeouts, abandoned, evicted;
    uint64_t accept_round;  // server thread only
    _Atomic uint32_t open_connections;
};

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Writes an error body (version, status, u16 length, message) framed into out; returns the
 * frame length. `capacity` is at least 4 + 4 + 64 (checked at start). */
static size_t error_frame(uint8_t *out, size_t capacity, uint8_t status, const char *message) {
    size_t n = strlen(message);
    if (n > capacity - 8) n = capacity - 8;
    put_u32(out, (uint32_t)(4 + n));
    out[4] = LCR_CONTROL_VERSION;
    out[5] = status;
    out[6] = (uint8_t)n;
    out[7] = (uint8_t)(n >> 8);
    memcpy(out + 8, message, n);
    return 8 + n;
}

size_t lcr_control_storage_size(uint32_t max_clients, size_t max_request, size_t max_response) {
    size_t per_client = align16(4 + max_request) + align16(4 + max_response);
    return align16(sizeof(lcr_control)) + align16(sizeof(client_slot) * max_clients) +
           align16(sizeof(struct pollfd) * (2 + (size_t)max_clients)) + per_client * max_clients;
}

static int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void close_client(lcr_control *s, client_slot *c) {
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
        atomic_fetch_sub(&s->open_connections, 1);
    }
}

/* Tries to send the rest of c's answer. Returns 0 while the connection stays open. */
static void flush_client(lcr_control *s, client_slot *c) {
    while (c->out_sent < c->out_length) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_length - c->out_sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        atomic_fetch_add(&s->abandoned, 1);
        close_client(s, c);
        return;
    }
    // Answer written: the next request gets a fresh deadline.
    c->out_length = c->out_sent = 0;
    c->in_used = 0;
    c->since_ms = now_ms();
    c->deadline_ms = c->since_ms + (uint64_t)s->io_timeout_ms;
    if (c->closing) close_client(s, c);
}

static void answer(lcr_control *s, client_slot *c) {
    uint32_t length = get_u32(c->in);
    atomic_fetch_add(&s->requests, 1);
    size_t n = s->handler(s->context, c->in + 4, length, c->out + 4, s->max_response);
    if (n == 0 || n > s->max_response) {
        c->out_length = error_frame(c->out, 4 + s->max_response, LCR_CONTROL_STATUS_INTERNAL,
                                    "the handler produced no answer");
    } else {
        put_u32(c->out, (uint32_t)n);
        c->out_length = 4 + n;
    }
    c->out_sent = 0;
    c->since_ms = now_ms();
    c->deadline_ms = c->since_ms + (uint64_t)s->io_timeout_ms;
    flush_client(s, c);
}

static void read_client(lcr_control *s, client_slot *c) {
    for (;;) {
        size_t want;
        if (c->in_used < 4) {
            want = 4 - c->in_used;
        } else {
            want = 4 + (size_t)get_u32(c->in) - c->in_used;
        }
        if (want == 0) break;
        ssize_t n = recv(c->fd, c->in + c->in_used, want, 0);
        if (n > 0) {
            if (c->in_used == 0) c->since_ms = now_ms();  // a request begins
            c->in_used += (size_t)n;
            if (c->in_used == 4) {
                uint32_t length = get_u32(c->in);
                if (length == 0 || length > s->max_request) {
                    atomic_fetch_add(&s->rejected_frames, 1);
                    c->out_length = length == 0
                        ? error_frame(c->out, 4 + s->max_response, LCR_CONTROL_STATUS_MALFORMED,
                                      "frame length 0: a request body has at least a version byte")
                        : error_frame(c->out, 4 + s->max_response, LCR_CONTROL_STATUS_TOO_LARGE,
                                      "frame length above the server's maximum request");
                    c->out_sent = 0;
                    c->closing = 1;
                    c->deadline_ms = now_ms() + (uint64_t)s->io_timeout_ms;
                    flush_client(s, c);
                    return;
                }
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        // 0: the client closed; or a hard error. Between requests that is a normal goodbye.
        if (c->in_used > 0 || n < 0) atomic_fetch_add(&s->abandoned, 1);
        close_client(s, c);
        return;
    }
    answer(s, c);
}

/* Serves what the connected clients have sent (without waiting), so that slots of clients
 * that have already closed are free before a newcomer is refused. */
static void serve_ready_clients(lcr_control *s) {
    struct pollfd *p = s->polls + 2;
    for (uint32_t i = 0; i < s->max_clients; i++) {
        client_slot *c = &s->clients[i];
        p[i] = (struct pollfd){.fd = c->fd, .events = c->out_length > c->out_sent ? POLLOUT : POLLIN};
    }
    if (poll(p, s->max_clients, 0) <= 0) return;
    for (uint32_t i = 0; i < s->max_clients; i++) {
        client_slot *c = &s->clients[i];
        short r = p[i].revents;
        if (c->fd < 0 || r == 0) continue;
        if (c->out_length > c->out_sent) {
            if (r & (POLLOUT | POLLERR | POLLHUP)) flush_client(s, c);
        } else if (r & (POLLIN | POLLERR | POLLHUP)) {
            read_client(s, c);
        }
    }
}

static client_slot *free_slot(lcr_control *s) {
    for (uint32_t i = 0; i < s->max_clients; i++) {
        if (s->clients[i].fd < 0) return &s->clients[i];
    }
    return NULL;
}

/* The slot a newcomer may take when none is free (see the header's "Fairness"), or NULL when
 * every connection came in this round. Ranks: idle between requests (0), a request arriving
 * (1), an answer not yet taken (2); within a rank the oldest phase goes first. */
static client_slot *eviction_victim(lcr_control *s) {
    client_slot *best = NULL;
    int best_rank = 3;
    for (uint32_t i = 0; i < s->max_clients; i++) {
        client_slot *c = &s->clients[i];
        if (c->fd < 0 || c->round == s->accept_round) continue;
        int rank = c->out_length > c->out_sent ? 2 : (c->in_used > 0 ? 1 : 0);
        if (rank < best_rank || (rank == best_rank && c->since_ms < best->since_ms)) {
            best = c;
            best_rank = rank;
        }
    }
    return best;
}

static void accept_clients(lcr_control *s) {
    s->accept_round++;
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            return;  // EAGAIN, or a transient error: poll again later
        }
        client_slot *slot = free_slot(s);
        if (slot == NULL) {
            serve_ready_clients(s);
            slot = free_slot(s);
        }
        if (slot == NULL) {
            slot = eviction_victim(s);
            if (slot != NULL) {
                atomic_fetch_add(&s->evicted, 1);
                close_client(s, slot);
            }
        }
        if (slot == NULL) {
            uint8_t frame[80];
            size_t n = error_frame(frame, sizeof frame, LCR_CONTROL_STATUS_BUSY, "every client slot is taken");
            atomic_fetch_add(&s->rejected_busy, 1);
            (void)send(fd, frame, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        slot->fd = fd;
        slot->closing = 0;
        slot->in_used = 0;
        slot->out_length = slot->out_sent = 0;
        slot->since_ms = now_ms();
        slot->round = s->accept_round;
        slot->deadline_ms = slot->since_ms + (uint64_t)s->io_timeout_ms;
        atomic_fetch_add(&s->accepted, 1);
        atomic_fetch_add(&s->open_connections, 1);
    }
}

static void *serve(void *argument) {
    lcr_control *s = argument;
    while (!atomic_load(&s->stopping)) {
        struct pollfd *p = s->polls;
        p[0] = (struct pollfd){.fd = s->wake_read, .events = POLLIN};
        p[1] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
        for (uint32_t i = 0; i < s->max_clients; i++) {
            client_slot *c = &s->clients[i];
            p[2 + i] = (struct pollfd){.fd = c->fd, .events = c->out_length > c->out_sent ? POLLOUT : POLLIN};
        }
        int ready = poll(p, 2 + s->max_clients, 100);
        if (ready < 0 && errno != EINTR) break;
        if (atomic_load(&s->stopping)) break;
        if (ready > 0) {
            for (uint32_t i = 0; i < s->max_clients; i++) {
                client_slot *c = &s->clients[i];
                short r = p[2 + i].revents;
                if (c->fd < 0 || r == 0) continue;
                if (c->out_length > c->out_sent) {
                    if (r & (POLLOUT | POLLERR | POLLHUP)) flush_client(s, c);
                } else if (r & (POLLIN | POLLERR | POLLHUP)) {
                    read_client(s, c);
                }
            }
            if (p[1].revents & POLLIN) accept_clients(s);
        }
        uint64_t t = now_ms();
        for (uint32_t i = 0; i < s->max_clients; i++) {
            client_slot *c = &s->clients[i];
            if (c->fd >= 0 && t > c->deadline_ms) {
                atomic_fetch_add(&s->timeouts, 1);
                close_client(s, c);
            }
        }
    }
    return NULL;
}

int lcr_control_start(void *storage, size_t storage_bytes, const char *path, uint32_t max_clients,
                      size_t max_request, size_t max_response, int io_timeout_ms,
                      lcr_control_handler handler, void *context, lcr_control **out) {
    if (out) *out = NULL;
    if (storage == NULL || path == NULL || handler == NULL || out == NULL || max_clients == 0 ||
        max_clients > 1024 || max_request == 0 || max_request > (16u << 20) || max_response < 128 ||
        max_response > (16u << 20) || io_timeout_ms <= 0 || ((uintptr_t)storage & 15) != 0 ||
        storage_bytes < lcr_control_storage_size(max_clients, max_request, max_response)) {
        return EINVAL;
    }
    size_t path_length = strlen(path);
    lcr_control *s = storage;
    if (path_length == 0 || path_length >= sizeof s->path) return ENAMETOOLONG;

    memset(s, 0, sizeof *s);
    uint8_t *cursor = (uint8_t *)storage + align16(sizeof *s);
    s->clients = (client_slot *)cursor;
    cursor += align16(sizeof(client_slot) * max_clients);
    s->polls = (struct pollfd *)cursor;
    cursor += align16(sizeof(struct pollfd) * (2 + (size_t)max_clients));
    for (uint32_t i = 0; i < max_clients; i++) {
        client_slot *c = &s->clients[i];
        memset(c, 0, sizeof *c);
        c->fd = -1;
        c->in = cursor;
        cursor += align16(4 + max_request);
        c->out = cursor;
        cursor += align16(4 + max_response);
    }
    s->max_clients = max_clients;
    s->max_request = max_request;
    s->max_response = max_response;
    s->io_timeout_ms = io_timeout_ms;
    s->handler = handler;
    s->context = context;
    memcpy(s->path, path, path_length + 1);

    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return EEXIST;
        /* Connect first: a live server there keeps its socket; only a stale one goes. */
        int probe = lcr_control_connect(path);
        if (probe >= 0) {
            close(probe);
            return EADDRINUSE;
        }
        if (probe != -ECONNREFUSED && probe != -ENOENT) return -probe;
        if (probe == -ECONNREFUSED && unlink(path) != 0 && errno != ENOENT) return errno;
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    int error = 0;
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    memcpy(address.sun_path, path, path_length + 1);
    // Owner-only from the start: Linux creates the file with the socket inode's mode.
    if (fchmod(fd, 0600) != 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        error = errno;
        close(fd);
        return error;
    }
    if (chmod(path, 0600) != 0 || listen(fd, 16) != 0 || set_nonblocking(fd) != 0) {
        error = errno;
        close(fd);
        unlink(path);
        return error;
    }
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        error = errno;
        close(fd);
        unlink(path);
        return error;
    }
    s->listen_fd = fd;
    s->wake_read = pipe_fds[0];
    s->wake_write = pipe_fds[1];

    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, LCR_CONTROL_STACK_BYTES);
    error = pthread_create(&s->thread, &attributes, serve, s);
    pthread_attr_destroy(&attributes);
    if (error != 0) {
        close(fd);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        unlink(path);
        return error;
    }
    *out = s;
    return 0;
}

void lcr_control_stop(lcr_control *s) {
    if (s == NULL) return;
    atomic_store(&s->stopping, 1);
    uint8_t byte = 1;
    ssize_t ignored = write(s->wake_write, &byte, 1);
    (void)ignored;
    pthread_join(s->thread, NULL);
    for (uint32_t i = 0; i < s->max_clients; i++) close_client(s, &s->clients[i]);
    close(s->listen_fd);
    close(s->wake_read);
    close(s->wake_write);
    unlink(s->path);
}

void lcr_control_get_stats(lcr_control *s, lcr_control_stats *stats) {
    stats->accepted = atomic_load(&s->accepted);
    stats->requests = atomic_load(&s->requests);
    stats->rejected_busy = atomic_load(&s->rejected_busy);
    stats->rejected_frames = atomic_load(&s->rejected_frames);
    stats->timeouts = atomic_load(&s->timeouts);
    stats->abandoned = atomic_load(&s->abandoned);
    stats->open_connections = atomic_load(&s->open_connections);
    stats->evicted = atomic_load(&s->evicted);
}

/* ---- client ---- */

int lcr_control_connect(const char *path) {
    if (path == NULL) return -EINVAL;
    struct sockaddr_un address;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof address.sun_path) return -ENAMETOOLONG;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    memcpy(address.sun_path, path, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    while (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        if (errno == EINTR) continue;
        int error = errno;
        close(fd);
        return -error;
    }
    if (set_nonblocking(fd) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

static int wait_for(int fd, short events, uint64_t deadline) {
    for (;;) {
        uint64_t t = now_ms();
        if (t >= deadline) return ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(deadline - t));
        if (r > 0) return 0;
        if (r == 0) return ETIMEDOUT;
        if (errno != EINTR) return errno;
    }
}

int lcr_control_send_raw(int fd, const uint8_t *bytes, size_t length, int timeout_ms) {
    uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    size_t sent = 0;
    while (sent < length) {
        ssize_t n = send(fd, bytes + sent, length - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int e = wait_for(fd, POLLOUT, deadline);
            if (e) return e;
            continue;
        }
        return n < 0 ? errno : EPIPE;
    }
    return 0;
}

static int read_exact(int fd, uint8_t *into, size_t length, uint64_t deadline) {
    size_t got = 0;
    while (got < length) {
        ssize_t n = recv(fd, into + got, length - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0) return ECONNRESET;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int e = wait_for(fd, POLLIN, deadline);
            if (e) return e;
            continue;
        }
        return errno;
    }
    return 0;
}

int lcr_control_read_frame(int fd, uint8_t *body, size_t capacity, size_t *length, int timeout_ms) {
    uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    uint8_t prefix[4];
    int e = read_exact(fd, prefix, 4, deadline);
    if (e) return e;
    uint32_t n = get_u32(prefix);
    if (n == 0) return EPROTO;
    if (n > capacity) return EMSGSIZE;
    e = read_exact(fd, body, n, deadline);
    if (e) return e;
    *length = n;
    return 0;
}

void lcr_control_close(int fd) {
    if (fd >= 0) close(fd);
}

int lcr_control_call(const char *path, const uint8_t *request, size_t request_length, uint8_t *response,
                     size_t response_capacity, size_t *response_length, int timeout_ms) {
    if (request_length == 0 || request_length > UINT32_MAX) return EINVAL;
    int fd = lcr_control_connect(path);
    if (fd < 0) return -fd;
    uint8_t prefix[4];
    put_u32(prefix, (uint32_t)request_length);
    int e = lcr_control_send_raw(fd, prefix, 4, timeout_ms);
    if (!e) e = lcr_control_send_raw(fd, request, request_length, timeout_ms);
    // A server that refuses early (busy, too large) answers and closes before reading the
    // rest: the answer is still there to read.
    if (!e || e == EPIPE || e == ECONNRESET) {
        e = lcr_control_read_frame(fd, response, response_capacity, response_length, timeout_ms);
    }
    close(fd);
    return e;
}
