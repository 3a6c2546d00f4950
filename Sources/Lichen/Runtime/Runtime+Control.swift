import CRuntime

extension Runtime {
    /// Answers one control request body into `response` (at most `capacity` bytes) and
    /// returns the body's length. Runs on the endpoint's thread. A request that does not parse
    /// or names an unknown operation is answered with its status and a message; an operation
    /// that fails is answered `.failed` / `.notFound` with the error's text, and the runtime
    /// (its active adapter set included) stays as it was.
    func answerControl(_ body: UnsafeRawBufferPointer, response: UnsafeMutableRawPointer, capacity: Int) -> Int {
        var w = ControlWriter(base: response, capacity: capacity)
        switch ControlRequest.decode(body) {
        case .refused(let status, let message):
            w.header(status, message)
        case .request(let request):
            answer(request, into: &w)
        }
        if w.overflowed {
            var small = ControlWriter(base: response, capacity: capacity)
            small.header(.internal, "the answer does not fit the endpoint's \(capacity)-byte response buffer")
            return small.count
        }
        return w.count
    }

    /// Runs `request` and writes its response (header and payload).
    func answer(_ request: ControlRequest, into w: inout ControlWriter) {
        switch request {
        case .status:
            let s = status()
            w.header(.ok, "status")
            w.u64(UInt64(s.budgetBytes))
            w.u64(UInt64(s.usedBytes))
            w.u64(UInt64(s.heapInUseBytes))
            w.u64(s.steps)
            w.u64(s.resets)
            w.u64(s.swaps)
            w.string(s.method)
            w.u64(s.stepP50Nanoseconds)
            w.u64(s.stepP99Nanoseconds)
            w.u64(s.stepMaxNanoseconds)
            w.u32(UInt32(s.activeAdapters))
            w.u64(s.generation)
            w.u8(s.modelLoaded ? 1 : 0)
            let f = methodFigures()
            w.u64(f.updates)
            w.u64(f.guardResets)
            w.u64(f.droppedFrames)
            w.u64(f.learnerLag)
            w.u64(f.maximumLearnerLag)
            w.u64(f.version)
            w.u64(f.updateP50Nanoseconds)
            w.u64(f.updateP99Nanoseconds)
            w.u64(f.updateMaxNanoseconds)
            w.u64(f.stateSaves)
            w.u64(f.stateSaveFailures)
            w.u64(f.lastSaveUnixNanoseconds)
            w.u64(f.lastSaveNanoseconds)
            w.u8(UInt8(truncatingIfNeeded: f.stateRestore))
            w.u8(f.learnerRunning ? 1 : 0)
            w.u64(f.lastGoodResets)
        case .list:
            let list = adapterList()
            w.header(.ok, "\(list.adapters.count) active adapter\(list.adapters.count == 1 ? "" : "s")")
            writeAdapters(list.adapters, generation: list.generation, into: &w)
        case .load, .unload, .swap, .scale:
            var failedPath: String? = nil
            do throws(LichenError) {
                let message = try performAdapterOperation(request, failedPath: &failedPath)
                let list = adapterList()
                w.header(.ok, message)
                writeAdapters(list.adapters, generation: list.generation, into: &w)
            } catch {
                // Name the file that was bad (a swap names several), unless the error already does.
                var message = error.description
                if let path = failedPath, !Runtime.text(message, contains: path) { message = "adapter file '" + path + "': " + message }
                if case .notFound = error {
                    w.header(.notFound, message)
                } else {
                    w.header(.failed, message)
                }
            }
        }
    }

    /// Whether `text` holds `part` (UTF-8 bytes; Embedded Swift has no `String.contains(String)`).
    static func text(_ text: String, contains part: String) -> Bool {
        let a = Array(text.utf8), b = Array(part.utf8)
        guard !b.isEmpty else { return true }
        guard a.count >= b.count else { return false }
        for start in 0...(a.count - b.count) where a[start] == b[0] {
            var k = 1
            while k < b.count && a[start + k] == b[k] { k += 1 }
            if k == b.count { return true }
        }
        return false
    }

    func writeAdapters(_ adapters: [ControlAdapterInfo], generation: UInt64, into w: inout ControlWriter) {
        w.u64(generation)
        w.u16(UInt16(truncatingIfNeeded: adapters.count))
        for a in adapters {
            w.string(a.name)
            w.string(a.file)
            w.u32(UInt32(truncatingIfNeeded: a.rank))
            w.f32(a.scale)
            w.u64(UInt64(a.byteCount))
        }
    }

    /// The endpoint's connection counters (nil without an endpoint).
    public var controlStats: ControlEndpointStats? {
        guard let s = endpoint?.stats else { return nil }
        return ControlEndpointStats(
            accepted: s.accepted, requests: s.requests, rejectedBusy: s.rejected_busy, rejectedFrames: s.rejected_frames,
            timeouts: s.timeouts, abandoned: s.abandoned, openConnections: Int(s.open_connections), evicted: s.evicted)
    }

    /// The endpoint's socket path (nil without an endpoint).
    public var socketPath: String? { endpoint?.path }
}

/// The control endpoint's connection counters (`lcr_control_stats`).
public struct ControlEndpointStats: Equatable, Sendable {
    /// Connections accepted into a slot.
    public var accepted: UInt64
    /// Requests handed to the runtime.
    public var requests: UInt64
    /// Connections refused because every slot was taken.
    public var rejectedBusy: UInt64
    /// Frames refused for their length (0, or above the maximum request).
    public var rejectedFrames: UInt64
    /// Connections closed for being too slow.
    public var timeouts: UInt64
    /// Connections the client closed mid-request or before taking its answer.
    public var abandoned: UInt64
    /// Connections open now.
    public var openConnections: Int
    /// Connections closed to give their slot to a newcomer (idle or slow ones first).
    public var evicted: UInt64 = 0
}
