import CRuntime

/// The runtime's control endpoint: a Unix-domain socket served by its own thread
/// (CRuntime's `lcr_control`), answering `ControlProtocol` requests with the runtime's
/// operations. Its state and every connection's buffers come from the arena's low end.
///
/// The C server handles framing, length bounds, timeouts and slow or vanished clients; each
/// complete request body is handed to `Runtime.answerControl` on the endpoint's thread.
final class ControlEndpoint {
    let path: String
    private let storage: UnsafeMutableRawPointer
    private let storageBytes: Int
    private let configuration: RuntimeConfiguration
    private var server: OpaquePointer?
    /// The errno of a failed start (0 if it started).
    private(set) var startError: Int32 = 0

    var isRunning: Bool { server != nil }

    /// - Throws: `.fileRefused` for a path holding a NUL byte (C would cut it and bind another
    ///   path); `.invalidArgument` for limits outside what lcr_control takes; `.budgetExceeded`.
    init(path: String, arena: Arena, configuration: RuntimeConfiguration) throws(LichenError) {
        guard !path.utf8.contains(0) else { throw .fileRefused(path: path, reason: "the path holds a NUL byte", byteCount: 0, limit: 0) }
        guard configuration.maximumClients >= 1 && configuration.maximumClients <= 64 else {
            throw .invalidArgument(name: "maximumClients", value: configuration.maximumClients, reason: "must be in 1...64")
        }
        guard configuration.ioTimeoutMilliseconds >= 1 && configuration.ioTimeoutMilliseconds <= 600_000 else {
            throw .invalidArgument(name: "ioTimeoutMilliseconds", value: configuration.ioTimeoutMilliseconds, reason: "must be in 1...600000")
        }
        self.path = path
        self.configuration = configuration
        storageBytes = lcr_control_storage_size(
            UInt32(configuration.maximumClients), ControlProtocol.maximumRequestBytes, ControlProtocol.maximumResponseBytes)
        storage = try arena.allocatePersistent(byteCount: storageBytes, alignment: 16)
    }

    /// Starts the server thread with `context` (an unretained `Runtime`) for the handler.
    /// On failure `isRunning` is false and `startError` holds the errno.
    func start(context: UnsafeMutableRawPointer) {
        var out: OpaquePointer? = nil
        let rc = path.withCString { p in
            lcr_control_start(
                storage, storageBytes, p, UInt32(configuration.maximumClients), ControlProtocol.maximumRequestBytes,
                ControlProtocol.maximumResponseBytes, Int32(configuration.ioTimeoutMilliseconds),
                { context, request, length, response, capacity in
                    guard let context, let response else { return 0 }
                    // safe: the runtime stops the endpoint in deinit before it goes away.
                    let runtime = Unmanaged<Runtime>.fromOpaque(context).takeUnretainedValue()
                    let body = UnsafeRawBufferPointer(start: request, count: request == nil ? 0 : length)
                    return runtime.answerControl(body, response: UnsafeMutableRawPointer(response), capacity: capacity)
                },
                context, &out)
        }
        startError = rc
        server = rc == 0 ? out : nil
    }

    /// Stops the thread, closes the sockets and removes the socket file.
    func stop() {
        if let server { lcr_control_stop(server) }
        server = nil
    }

    /// The server's counters.
    var stats: lcr_control_stats {
        var s = lcr_control_stats()
        if let server { lcr_control_get_stats(server, &s) }
        return s
    }
}
