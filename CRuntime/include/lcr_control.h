/*
 * lcr_control.h — the control endpoint's transport: a Unix-domain stream socket served by
 * one thread of its own, with length-prefixed frames, and a small client for tools and tests.
 *
 * Frames (both directions): a u32 little-endian length N, then N bytes of body. A request
 * body is 1...max_request bytes; what the body means (version byte, operation, fields) is the
 * handler's business (Sources/Lichen/Runtime/ControlProtocol.swift, documented in
 * Sources/Lichen/Runtime/README.md). The server itself answers only what it can tell from
 * the frame: a length of 0 or above max_request (LCR_CONTROL_STATUS_MALFORMED /
 * LCR_CONTROL_STATUS_TOO_LARGE, then it closes the connection), no free client slot
 * (LCR_CONTROL_STATUS_BUSY), a handler that produced nothing (LCR_CONTROL_STATUS_INTERNAL).
 * Those answers have the body layout every response has: u8 version (1), u8 status,
 * u16 LE message length, message (UTF-8).
 *
 * The server thread: poll(2) over the listening socket, up to max_clients connections and a
 * wake pipe; every socket is non-blocking. A connection must deliver a whole request within
 * io_timeout_ms of being accepted (or of its previous answer being written) and must take an
 * answer within io_timeout_ms; otherwise it is closed. A slow or dead client therefore holds
 * a slot for at most io_timeout_ms per request and never blocks the thread, and nothing
 * outside the thread ever waits on it. Requests are handled one at a time, in the order they
 * complete.
 *
 * Fairness: clients that keep their slots (idle between requests, or trickling a request a
 * byte at a time) cannot starve a newcomer. When every slot is taken, a new connection takes
 * the slot of the connection that has waited longest without a request in progress; failing
 * that, of the one whose request has been arriving longest; failing that, of the one slowest
 * to take its answer (counted in `evicted`). Connections accepted in the same round are never
 * evicted for each other; only if every slot was filled in this round is the newcomer told
 * LCR_CONTROL_STATUS_BUSY.
 *
 * The socket file is created owner-only (fchmod 0600 before bind, chmod 0600 after). An
 * existing socket file at the path is first connected to: if a server answers there, the
 * path is live and start fails with EADDRINUSE (a second runtime must not take over, and later
 * remove, the first one's socket); only a stale socket (ECONNREFUSED) is removed and replaced.
 * Any other existing file is an error (EEXIST).
 *
 * Memory: the server's state and every connection's buffers live in caller storage of
 * lcr_control_storage_size() bytes; the thread's stack is LCR_CONTROL_STACK_BYTES.
 */
#ifndef LCR_CONTROL_H
#define LCR_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Response status codes (the second byte of every response body). Appended only.
enum {
    LCR_CONTROL_STATUS_OK = 0,
    /// The frame or the request body cannot be parsed.
    LCR_CONTROL_STATUS_MALFORMED = 1,
    /// The body's version byte is not one this server speaks.
    LCR_CONTROL_STATUS_UNSUPPORTED_VERSION = 2,
    /// The operation code is unknown.
    LCR_CONTROL_STATUS_UNKNOWN_OPERATION = 3,
    /// The frame's length is above the server's maximum request.
    LCR_CONTROL_STATUS_TOO_LARGE = 4,
    /// Every client slot is taken.
    LCR_CONTROL_STATUS_BUSY = 5,
    /// The operation was refused or failed; the message says why; nothing changed.
    LCR_CONTROL_STATUS_FAILED = 6,
    /// No such adapter (or other named thing).
    LCR_CONTROL_STATUS_NOT_FOUND = 7,
    /// The handler could not answer (a bug; the message says so).
    LCR_CONTROL_STATUS_INTERNAL = 8,
};

/// The version byte of the bodies the server writes itself.
#define LCR_CONTROL_VERSION 1
/// Stack of the server thread, in bytes.
#define LCR_CONTROL_STACK_BYTES (2u << 20)

/// Answers one request. `request` holds the body (without the length prefix). Writes the
/// response body into `response` (at most `response_capacity` bytes) and returns its length;
/// 0 means "could not answer" (the server sends LCR_CONTROL_STATUS_INTERNAL). Runs on the
/// server thread.
typedef size_t (*lcr_control_handler)(void *context, const uint8_t *request, size_t request_length,
                                      uint8_t *response, size_t response_capacity);

typedef struct lcr_control lcr_control;

/// Counters of a running server (for tests and status; read while it runs).
typedef struct {
    uint64_t accepted;          // connections accepted into a slot
    uint64_t requests;          // requests handed to the handler
    uint64_t rejected_busy;     // connections refused because every slot was taken
    uint64_t rejected_frames;   // frames refused for their length (0 or too large)
    uint64_t timeouts;          // connections closed for being slow
    uint64_t abandoned;         // connections the client closed mid-request or before taking its answer
    uint32_t open_connections;  // connections open now
    uint64_t evicted;           // connections closed to give their slot to a newcomer
} lcr_control_stats;

/// Bytes of caller storage a server with these limits needs (16-byte aligned storage).
size_t lcr_control_storage_size(uint32_t max_clients, size_t max_request, size_t max_response);

/// Creates the socket at `path`, and starts the server thread.
/// Returns 0 and stores the server in *out, or an errno value (ENAMETOOLONG for a path that
/// does not fit sockaddr_un, EEXIST for a non-socket file at the path, EADDRINUSE for a socket
/// a live server answers on, EINVAL for bad limits
/// or too little storage, or what socket/bind/listen/pthread_create returned); nothing is
/// left behind on failure.
int lcr_control_start(void *storage, size_t storage_bytes, const char *path, uint32_t max_clients,
                      size_t max_request, size_t max_response, int io_timeout_ms,
                      lcr_control_handler handler, void *context, lcr_control **out);

/// Stops the thread (waits for the request being handled, if any), closes every socket and
/// removes the socket file. NULL is ignored.
void lcr_control_stop(lcr_control *server);

/// A snapshot of the counters.
void lcr_control_get_stats(lcr_control *server, lcr_control_stats *stats);

/* ---- client ---- */

/// Connects to the server at `path` (blocking connect, then non-blocking I/O).
/// Returns the socket (>= 0) or -errno.
int lcr_control_connect(const char *path);
/// Writes `length` raw bytes (no framing) within `timeout_ms`. Returns 0 or an errno value.
int lcr_control_send_raw(int fd, const uint8_t *bytes, size_t length, int timeout_ms);
/// Reads one frame within `timeout_ms`: stores its body in `body` (capacity `capacity`) and
/// its length in *length. Returns 0, or an errno value: ETIMEDOUT, ECONNRESET (closed before
/// a whole frame), EMSGSIZE (the body is larger than `capacity`), EPROTO (length 0).
int lcr_control_read_frame(int fd, uint8_t *body, size_t capacity, size_t *length, int timeout_ms);
/// Closes a client socket.
void lcr_control_close(int fd);
/// One round trip: connect, send `request` as a frame, read the response frame, close.
/// Returns 0 or an errno value as the calls above.
int lcr_control_call(const char *path, const uint8_t *request, size_t request_length, uint8_t *response,
                     size_t response_capacity, size_t *response_length, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* LCR_CONTROL_H */
