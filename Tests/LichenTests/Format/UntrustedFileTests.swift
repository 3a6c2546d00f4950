import Foundation
import Lichen
import Testing

/// Paths from outside go through one routine (`UntrustedFile`, C `lcr_file_open_untrusted`):
/// a FIFO, a directory, a symbolic link to an adapter, a path with a NUL byte and a file larger
/// than the caller may take are refused before anything is read, each naming the path.
@Suite("Untrusted file paths")
struct UntrustedFileTests {
    typealias S = RuntimeTestSupport

    static func directory() -> String {
        (S.socketPath() as NSString).deletingLastPathComponent
    }

    /// The error `body` throws (nil when it returns).
    static func caught(_ body: () throws(LichenError) -> Void) -> LichenError? {
        do { try body() } catch { return error }
        return nil
    }

    static let notRegular: StaticString = "not a regular file (a FIFO, socket, device or directory)"

    @Test("a FIFO with no writer is refused at once as not a regular file (open blocked forever before)")
    func fifoIsRefused() throws {
        let fifo = Self.directory() + "/model.gguf"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: LichenError.fileRefused(path: fifo, reason: Self.notRegular, byteCount: 0, limit: 0)) {
            _ = try GGUFFile(path: fifo)
        }
        #expect(throws: LichenError.fileRefused(path: fifo, reason: Self.notRegular, byteCount: 0, limit: 0)) {
            _ = try StreamFile(path: fifo)
        }
        // Through the runtime, as a control client's load would: refused, the runtime still answers.
        let rt = try RuntimeTests.loaded()
        #expect(throws: LichenError.fileRefused(path: fifo, reason: Self.notRegular, byteCount: 0, limit: 0)) {
            try rt.loadAdapter(path: fifo, scale: 1)
        }
        #expect(rt.adapterList().adapters.isEmpty)
        // The gzip reader (Fashion-MNIST's IDX files) opens through the same routine.
        #expect(throws: LichenError.fileError(path: fifo, call: "lcr_gzip_size_hint", errno: EINVAL)) {
            _ = try ByteView.gzipSizeHint(path: fifo)
        }
    }

    @Test("a control socket path with an embedded NUL is refused (it bound the path cut at the NUL)")
    func socketPathWithNul() throws {
        let path = S.socketPath() + "\u{0}x"
        #expect(throws: LichenError.fileRefused(path: path, reason: "the path holds a NUL byte", byteCount: 0, limit: 0)) {
            _ = try Runtime(budgetBytes: 24 << 20, configuration: RuntimeConfiguration(socketPath: path))
        }
    }

    @Test("a directory is refused as not a regular file")
    func directoryIsRefused() throws {
        let dir = Self.directory()
        #expect(throws: LichenError.fileRefused(path: dir, reason: Self.notRegular, byteCount: 0, limit: 0)) {
            _ = try GGUFFile(path: dir, mode: .read)
        }
    }

    @Test("a path with an embedded NUL is refused, not cut at the NUL (which loaded the model under a second name)")
    func embeddedNulIsRefused() throws {
        let path = S.model() + "\u{0}.evil"
        #expect(throws: LichenError.fileRefused(path: path, reason: "the path holds a NUL byte", byteCount: 0, limit: 0)) {
            _ = try GGUFFile(path: path)
        }
        let rt = try Runtime(budgetBytes: 48 << 20)
        #expect(throws: LichenError.fileRefused(path: path, reason: "the path holds a NUL byte", byteCount: 0, limit: 0)) {
            try rt.loadModel(path: path)
        }
        try rt.loadModel(path: S.model())
        #expect(throws: LichenError.fileRefused(path: path, reason: "the path holds a NUL byte", byteCount: 0, limit: 0)) {
            try rt.loadAdapter(path: path, scale: 1)
        }
    }

    @Test("a sparse 8 GiB adapter file is refused against the budget's heap before a byte is read")
    func sparseAdapterIsRefused() throws {
        let path = Self.directory() + "/huge.gguf"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("GGUF".utf8)))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 8 << 30)
        try handle.close()
        let rt = try RuntimeTests.loaded()
        let heapBefore = rt.arena.stats.heapInUseBytes
        let e = Self.caught { () throws(LichenError) in _ = try rt.loadAdapter(path: path, scale: 1) }
        if case .budgetExceeded(let asked, let left) = e {
            #expect(asked == 8 << 30 && left < 48 << 20)
        } else {
            Issue.record("\(String(describing: e))")
        }
        #expect(rt.arena.stats.heapInUseBytes == heapBefore)
        // The same through the file API with a small arena.
        let arena = try Arena(byteCount: 4 << 20)
        #expect(throws: LichenError.self) { _ = try AdapterFile.read(path: path, arena: arena) }
        // A model file over a stated maximum is refused with both sizes.
        #expect(throws: LichenError.fileRefused(path: path, reason: "the file is larger than the caller may read",
                                                byteCount: 8 << 30, limit: 1 << 20)) {
            _ = try GGUFFile(path: path, mode: .read, maximumBytes: 1 << 20)
        }
    }

    @Test("a valid adapter padded to 1 GiB is refused instead of read outside the budget")
    func paddedAdapterIsRefused() throws {
        let dir = Self.directory()
        let path = dir + "/padded.gguf"
        try RuntimeAdapterTests.writeAdapter(path, seed: 3, base: try RuntimeAdapterTests.base())
        let rt = try RuntimeTests.loaded()
        try rt.loadAdapter(path: path, scale: 1)
        try rt.unloadAdapter(name: "padded")
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 1 << 30)
        try handle.close()
        let e = Self.caught { () throws(LichenError) in _ = try rt.loadAdapter(path: path, scale: 1) }
        if case .budgetExceeded(let asked, _) = e {
            #expect(asked == 1 << 30)
        } else {
            Issue.record("\(String(describing: e))")
        }
    }

    @Test("adapter paths are not followed through a symbolic link (O_NOFOLLOW); model paths are")
    func symbolicLinks() throws {
        let dir = Self.directory()
        let target = dir + "/skill.gguf"
        try RuntimeAdapterTests.writeAdapter(target, seed: 4, base: try RuntimeAdapterTests.base())
        let link = dir + "/link.gguf"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let rt = try RuntimeTests.loaded()
        #expect(throws: LichenError.fileRefused(path: link, reason: "a symbolic link (adapter paths are not followed through links)",
                                                byteCount: 0, limit: 0)) {
            try rt.loadAdapter(path: link, scale: 1)
        }
        let modelLink = dir + "/model.gguf"
        try FileManager.default.createSymbolicLink(atPath: modelLink, withDestinationPath: S.model())
        _ = try GGUFFile(path: modelLink)
    }
}
