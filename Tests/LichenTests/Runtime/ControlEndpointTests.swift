import CRuntime
import Foundation
import Lichen
import Testing

/// The control endpoint over a real Unix-domain socket: every operation's framing, malformed
/// and oversized requests, clients that vanish or stall, several clients at once.
@Suite("Control endpoint")
struct ControlEndpointTests {
    typealias S = RuntimeTestSupport

    static func runtime(timeoutMs: Int = 2000, clients: Int = 4) throws -> (Runtime, String) {
        let path = S.socketPath()
        let rt = try Runtime(budgetBytes: 24 << 20,
                             configuration: RuntimeConfiguration(socketPath: path, maximumClients: clients, ioTimeoutMilliseconds: timeoutMs))
        return (rt, path)
    }

    @Test("the socket file is owner-only and goes away with the runtime")
    func socketFileMode() throws {
        var (rt, path): (Runtime?, String) = try Self.runtime()
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect((attributes[.type] as? FileAttributeType) == .typeSocket)
        #expect(rt?.socketPath == path)
        rt = nil
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a regular file at the socket path is refused, and left alone")
    func existingFileRefused() throws {
        let path = S.socketPath()
        try Data("keep".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: LichenError.fileError(path: path, call: "lcr_control_start", errno: EEXIST)) {
            _ = try Runtime(budgetBytes: 24 << 20, configuration: RuntimeConfiguration(socketPath: path))
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep")
    }

    @Test("status reports the budget, counters and method before a model is loaded")
    func statusBeforeModel() throws {
        let (rt, path) = try Self.runtime()
        let r = try S.call(path, .status)
        #expect(r.status == .ok)
        let s = try #require(r.state)
        #expect(s.budgetBytes == 24 << 20)
        #expect(s.budgetBytes == rt.arena.stats.reservedBytes)
        #expect(s.usedBytes == rt.arena.stats.reservedBytes - rt.arena.stats.bytesLeft)
        #expect(s.steps == 0 && s.resets == 0 && s.swaps == 0)
        #expect(s.method == "source")
        #expect(!s.modelLoaded)
        #expect(s.activeAdapters == 0)
    }

    @Test("list answers the (empty) active set")
    func listEmpty() throws {
        let (rt, path) = try Self.runtime()
        let r = try S.call(path, .list)
        #expect(r.status == .ok)
        #expect(r.adapters.isEmpty)
        #expect(rt.controlStats?.requests == 1)
    }

    @Test("every operation round-trips through the request codec")
    func requestCodec() throws {
        let requests: [ControlRequest] = [
            .list, .status, .load(path: "/a/b.gguf", scale: 0.5), .unload(name: "ä-adapter"),
            .swap([ControlAdapterSpec(path: "x.gguf", scale: 1), ControlAdapterSpec(path: "y.gguf", scale: -2)]),
            .swap([]), .scale(name: "n", scale: 3.25),
        ]
        for q in requests {
            let body = q.encoded()
            let decoded = body.withUnsafeBytes { ControlRequest.decode($0) }
            #expect(decoded == .request(q))
            // Every strict prefix is refused as malformed (or, for the bare version byte, as such).
            for cut in 0..<body.count {
                let d = Array(body[0..<cut]).withUnsafeBytes { ControlRequest.decode($0) }
                guard case .refused(let status, _) = d else {
                    Issue.record("prefix \(cut) of \(q.operation.name) was accepted")
                    continue
                }
                #expect(status == .malformed)
            }
        }
    }

    @Test("a name or path that is not UTF-8 is refused, not decoded into another name")
    func invalidUTF8() throws {
        // unload, name of 3 bytes: 'a', then 0xFF (never valid in UTF-8), then 'b'.
        let body: [UInt8] = [1, 3, 3, 0, 0x61, 0xFF, 0x62]
        let d = body.withUnsafeBytes { ControlRequest.decode($0) }
        #expect(d == .refused(.malformed, "unload: expected name (UTF-8 string)"))
        // A load path with a lone continuation byte.
        let load: [UInt8] = [1, 2, 2, 0, 0x2F, 0x80] + [0, 0, 0x80, 0x3F]
        let l = load.withUnsafeBytes { ControlRequest.decode($0) }
        #expect(l == .refused(.malformed, "load: expected path (UTF-8 string) and scale (f32)"))
    }

    @Test("malformed bodies are answered with their status and the server keeps serving")
    func malformedBodies() throws {
        let (rt, path) = try Self.runtime()
        let cases: [([UInt8], ControlProtocol.Status)] = [
            ([2, 6], .unsupportedVersion),
            ([1, 99], .unknownOperation),
            ([1, 0], .unknownOperation),
            ([1], .malformed),
            ([1, 6, 0], .malformed),                 // trailing byte after status
            ([1, 2, 5, 0, 65], .malformed),          // load: string claims 5 bytes, has 1
            ([1, 4, 65, 0], .malformed),             // swap: 65 adapters, above the maximum
            ([1, 5, 1, 0, 65, 0, 0], .malformed),    // scale: f32 truncated
        ]
        for (body, expected) in cases {
            let answer = try S.callRaw(path, body)
            let (status, message) = try S.statusOf(answer)
            #expect(status == expected, "body \(body): \(message)")
            #expect(!message.isEmpty)
        }
        #expect(try S.call(path, .status).status == .ok)
        #expect(rt.controlStats?.requests == UInt64(cases.count + 1))
    }

    @Test("a zero-length frame and an oversized frame are refused and the connection closed")
    func frameLengths() throws {
        let (rt, path) = try Self.runtime()
        for (length, expected) in [(UInt32(0), ControlProtocol.Status.malformed),
                                   (UInt32(ControlProtocol.maximumRequestBytes + 1), .tooLarge),
                                   (UInt32.max, .tooLarge)] {
            let fd = lcr_control_connect(path)
            #expect(fd >= 0)
            #expect(S.send(fd, S.prefix(length)) == 0)
            let (rc, body) = S.readFrame(fd)
            #expect(rc == 0)
            #expect(try S.statusOf(body).0 == expected)
            // The server closed this connection: the next read sees the end.
            #expect(S.readFrame(fd, timeoutMs: 2000).rc == ECONNRESET)
            lcr_control_close(fd)
        }
        // A body of exactly the maximum is read whole (and refused for its content, not its size).
        var big: [UInt8] = [1, 2]
        big += [UInt8](repeating: 0, count: ControlProtocol.maximumRequestBytes - 2)
        let (status, _) = try S.statusOf(try S.callRaw(path, big))
        #expect(status == .malformed)
        #expect(rt.controlStats?.rejectedFrames == 3)
        #expect(try S.call(path, .status).status == .ok)
    }

    @Test("a client that disconnects mid-request costs nothing")
    func disconnectMidRequest() throws {
        let (rt, path) = try Self.runtime()
        for split in [1, 3, 4, 6] {
            let whole = S.frame(ControlRequest.load(path: "/nowhere/adapter.gguf", scale: 1).encoded())
            let fd = lcr_control_connect(path)
            #expect(S.send(fd, Array(whole[0..<split])) == 0)
            lcr_control_close(fd)
        }
        let after = try S.call(path, .status)
        #expect(after.status == .ok, "\(after.message)")
        // The four vanished clients were noticed (the server polls their sockets).
        let deadline = Date().addingTimeInterval(3)
        while rt.controlStats!.abandoned < 4 && Date() < deadline { usleep(10_000) }
        #expect(rt.controlStats?.abandoned == 4)
        #expect(rt.controlStats?.requests == 1)
    }

    @Test("a stalled client is closed after the timeout while others are answered at once")
    func stalledClient() throws {
        let (rt, path) = try Self.runtime(timeoutMs: 300)
        let slow = lcr_control_connect(path)
        #expect(S.send(slow, S.prefix(20) + [1, 6]) == 0)  // promises 20 bytes, sends 2
        // Others are served while it stalls.
        for _ in 0..<5 { #expect(try S.call(path, .status, timeoutMs: 250).status == .ok) }
        // It is closed within the timeout (plus a poll tick).
        let (rc, _) = S.readFrame(slow, timeoutMs: 3000)
        #expect(rc == ECONNRESET)
        lcr_control_close(slow)
        #expect(rt.controlStats?.timeouts == 1)
    }

    @Test("two clients interleave: each gets its own answer")
    func twoClientsInterleaved() throws {
        let (rt, path) = try Self.runtime()
        defer { withExtendedLifetime(rt) {} }
        let a = lcr_control_connect(path), b = lcr_control_connect(path)
        defer { lcr_control_close(a); lcr_control_close(b) }
        let list = S.frame(ControlRequest.list.encoded())
        let status = S.frame(ControlRequest.status.encoded())
        #expect(S.send(a, Array(list[0..<3])) == 0)
        #expect(S.send(b, status) == 0)
        let rb = S.readFrame(b)
        #expect(rb.rc == 0)
        let sb = try rb.body.withUnsafeBytes { try ControlResponse.decode($0, operation: .status) }
        #expect(sb.state != nil)
        #expect(S.send(a, Array(list[3...])) == 0)
        let ra = S.readFrame(a)
        let sa = try ra.body.withUnsafeBytes { try ControlResponse.decode($0, operation: .list) }
        #expect(sa.status == .ok && sa.state == nil)
        // A connection serves several requests in turn.
        #expect(S.send(a, status) == 0)
        #expect(S.readFrame(a).rc == 0)
    }

    @Test("two clients at once, many requests each, all answered")
    func twoClientsConcurrently() async throws {
        let (rt, path) = try Self.runtime()
        try await withThrowingTaskGroup(of: Int.self) { group in
            for k in 0..<2 {
                group.addTask {
                    var ok = 0
                    for i in 0..<100 {
                        let r = try S.call(path, (i + k) % 2 == 0 ? .status : .list)
                        if r.status == .ok { ok += 1 }
                    }
                    return ok
                }
            }
            var total = 0
            for try await n in group { total += n }
            #expect(total == 200)
        }
        #expect(rt.controlStats?.requests == 200)
    }

    @Test("with every slot held by idle clients a new client is served; the longest idle one gives up its slot")
    func idleSlotsGoToNewcomer() throws {
        let (rt, path) = try Self.runtime(clients: 2)
        let a = lcr_control_connect(path), b = lcr_control_connect(path)
        defer { lcr_control_close(a); lcr_control_close(b) }
        // Make sure both were accepted before the third arrives (a answered first: idle longest).
        #expect(S.send(a, S.frame(ControlRequest.status.encoded())) == 0)
        #expect(S.readFrame(a).rc == 0)
        #expect(S.send(b, S.frame(ControlRequest.status.encoded())) == 0)
        #expect(S.readFrame(b).rc == 0)
        let answer = try S.callRaw(path, ControlRequest.status.encoded())
        let (st, message) = try S.statusOf(answer)
        #expect(st == .ok, "\(message)")
        #expect(rt.controlStats?.rejectedBusy == 0)
        #expect(rt.controlStats?.evicted == 1)
        #expect(S.readFrame(a, timeoutMs: 2000).rc == ECONNRESET)
        // b kept its slot and is still served.
        #expect(S.send(b, S.frame(ControlRequest.status.encoded())) == 0)
        #expect(S.readFrame(b).rc == 0)
    }

    @Test("four clients trickling requests a byte at a time do not starve a fresh client (it was told busy)")
    func tricklersDoNotStarve() throws {
        let (rt, path) = try Self.runtime(timeoutMs: 60_000)
        var held: [Int32] = []
        defer { for fd in held { lcr_control_close(fd) } }
        let request = S.frame(ControlRequest.status.encoded())
        for _ in 0..<4 {
            let fd = lcr_control_connect(path)
            #expect(fd >= 0)
            #expect(S.send(fd, Array(request[0..<2])) == 0)  // a request begun, never finished
            held.append(fd)
            usleep(20_000)
        }
        for k in 0..<3 {
            let answer = try S.callRaw(path, ControlRequest.status.encoded(), timeoutMs: 2000)
            let (st, message) = try S.statusOf(answer)
            #expect(st == .ok, "fresh client \(k): \(message)")
            for fd in held { _ = S.send(fd, [0]) }  // keep trickling
        }
        #expect(rt.controlStats?.rejectedBusy == 0)
        #expect(rt.controlStats?.evicted == 1)  // the first fresh client took a trickler's slot; the later ones, its freed slot
    }

    @Test("a second runtime on a live socket path is refused and leaves the first one's socket serving; a stale socket is replaced")
    func liveSocketRefused() throws {
        let (first, path) = try Self.runtime()
        #expect(throws: LichenError.fileError(path: path, call: "lcr_control_start", errno: EADDRINUSE)) {
            _ = try Runtime(budgetBytes: 24 << 20, configuration: RuntimeConfiguration(socketPath: path))
        }
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try S.call(path, .status).status == .ok)
        withExtendedLifetime(first) {}
        // A stale socket: bound, then its server gone without removing the file.
        let stale = S.socketPath()
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in stale.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        close(fd)
        let second = try Runtime(budgetBytes: 24 << 20, configuration: RuntimeConfiguration(socketPath: stale))
        #expect(try S.call(stale, .status).status == .ok)
        withExtendedLifetime(second) {}
    }
}
