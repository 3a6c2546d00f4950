import CRuntime
import Foundation
import Lichen

/// Shared helpers of the runtime tests: model paths, socket paths, a protocol client over the
/// C client (lcr_control_call), seeded frames.
enum RuntimeTestSupport {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func model(_ arch: String = "cnn", _ type: String = "q8_0") -> String {
        root.appendingPathComponent("models/fmnist-\(arch)/fmnist-\(arch)-\(type).gguf").path
    }

    nonisolated(unsafe) static var counter = 0
    static let counterLock = NSLock()

    /// A fresh socket path (short enough for sockaddr_un) in a fresh private directory.
    static func socketPath() -> String {
        counterLock.lock()
        counter += 1
        let n = counter
        counterLock.unlock()
        let dir = "/tmp/lichen-rt-\(getpid())-\(n)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        return dir + "/c.sock"
    }

    /// One request/response round trip.
    static func call(_ path: String, _ request: ControlRequest, timeoutMs: Int32 = 5000) throws -> ControlResponse {
        let raw = try callRaw(path, request.encoded(), timeoutMs: timeoutMs)
        return try raw.withUnsafeBytes { body in
            try ControlResponse.decode(body, operation: request.operation)
        }
    }

    struct TransportError: Error { let errno: Int32 }

    static func callRaw(_ path: String, _ body: [UInt8], timeoutMs: Int32 = 5000) throws -> [UInt8] {
        var response = [UInt8](repeating: 0, count: ControlProtocol.maximumResponseBytes)
        var length = 0
        let rc = body.withUnsafeBufferPointer { b in
            response.withUnsafeMutableBufferPointer { r in
                lcr_control_call(path, b.baseAddress, b.count, r.baseAddress, r.count, &length, timeoutMs)
            }
        }
        guard rc == 0 else { throw TransportError(errno: rc) }
        return Array(response[0..<length])
    }

    /// Reads one response frame on an open client socket.
    static func readFrame(_ fd: Int32, timeoutMs: Int32 = 5000) -> (rc: Int32, body: [UInt8]) {
        var response = [UInt8](repeating: 0, count: ControlProtocol.maximumResponseBytes)
        var length = 0
        let rc = response.withUnsafeMutableBufferPointer { r in
            lcr_control_read_frame(fd, r.baseAddress, r.count, &length, timeoutMs)
        }
        return (rc, rc == 0 ? Array(response[0..<length]) : [])
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBufferPointer { lcr_control_send_raw(fd, $0.baseAddress, $0.count, 2000) }
    }

    static func frame(_ body: [UInt8]) -> [UInt8] {
        let n = UInt32(body.count)
        return [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)] + body
    }

    static func prefix(_ n: UInt32) -> [UInt8] {
        [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
    }

    /// The status byte and message of a response body.
    static func statusOf(_ body: [UInt8]) throws -> (ControlProtocol.Status?, String) {
        let r = try body.withUnsafeBytes { try ControlResponse.decode($0, operation: .status) }
        return (r.status, r.message)
    }

    /// n frames of `count` seeded values in [0, 1).
    static func frames(_ n: Int, count: Int, seed: UInt64) -> [[Float]] {
        var state = seed
        func next() -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 24)
        }
        return (0..<n).map { _ in (0..<count).map { _ in next() } }
    }
}
