import Foundation
import Lichen
import Testing

/// Loads Debian's Fashion-MNIST files (package `dataset-fashion-mnist`) through Lichen's
/// gzip shim and IDX parser, and compares with Python's gzip + numpy reading the same files.
@Suite("Fashion-MNIST from Debian's files")
struct FashionMNISTTests {
    static let directory = FashionMNIST.defaultDirectory

    /// Budget for a split: its two decompressed files plus the arena's own minimum.
    static func arena(for split: FashionMNIST.Split) throws -> Arena {
        let sizes = try FashionMNIST.decompressedByteCounts(split, directory: directory)
        return try Arena(byteCount: Arena.minimumByteCount + sizes.images + sizes.labels + 4096)
    }

    @Test("train: 60000 images of 28x28, 6000 of each class")
    func train() throws {
        let arena = try Self.arena(for: .train)
        let data = try FashionMNIST.load(.train, directory: Self.directory, arena: arena)
        #expect(data.count == 60000)
        #expect(data.images.rows == 28 && data.images.columns == 28)
        var histogram = [Int](repeating: 0, count: 10)
        for i in 0..<data.count { histogram[data.label(i)] += 1 }
        #expect(histogram == [Int](repeating: 6000, count: 10))
    }

    @Test("test: 10000 images, 1000 of each class; first image matches Python's gzip + numpy")
    func test() throws {
        let arena = try Self.arena(for: .test)
        let data = try FashionMNIST.load(.test, directory: Self.directory, arena: arena)
        #expect(data.count == 10000)
        var histogram = [Int](repeating: 0, count: 10)
        for i in 0..<data.count { histogram[data.label(i)] += 1 }
        #expect(histogram == [Int](repeating: 1000, count: 10))

        var sum = 0
        for r in 0..<28 { for c in 0..<28 { sum += Int(data.images.pixel(image: 0, row: r, column: c)) } }
        let python = try Self.python("""
            import gzip, numpy as np
            d = np.frombuffer(gzip.open('\(Self.directory)/t10k-images-idx3-ubyte.gz').read(), dtype=np.uint8, offset=16)
            l = np.frombuffer(gzip.open('\(Self.directory)/t10k-labels-idx1-ubyte.gz').read(), dtype=np.uint8, offset=8)
            print(int(d[:784].astype(np.int64).sum()), int(l[0]), int(d.astype(np.int64).sum()))
            """)
        let fields = python.split(separator: " ").map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(fields.count == 3)
        #expect(fields.first ?? nil == sum, "first test image pixel sum: Lichen \(sum), Python \(python)")
        #expect(fields.count > 1 && fields[1] == data.label(0))
        var total = 0
        for i in 0..<data.count { for k in 0..<784 { total += Int(data.images.bytes[16 + i * 784 + k]) } }
        #expect(fields.count > 2 && fields[2] == total, "pixel sum over the test set")

        // A batch in f32: pixel / 255, in [0, 1].
        let x = try TensorView.allocateForTest(arena: arena, count: 784)
        try data.writeBatch(start: 0, images: x)
        var floatSum: Double = 0
        let values = try x.f32Elements("x")
        for k in 0..<784 {
            #expect(values[k] >= 0 && values[k] <= 1)
            floatSum += Double(values[k])
        }
        #expect(abs(floatSum - Double(sum) / 255) < 1e-3)
    }

    @Test("caller-provided buffers; too small a buffer and a missing file throw")
    func callerBuffers() throws {
        let sizes = try FashionMNIST.decompressedByteCounts(.test, directory: Self.directory)
        #expect(sizes.images == 16 + 10000 * 784 && sizes.labels == 8 + 10000)
        let images = UnsafeMutableRawPointer.allocate(byteCount: sizes.images, alignment: 16)
        let labels = UnsafeMutableRawPointer.allocate(byteCount: sizes.labels, alignment: 16)
        defer {
            images.deallocate()
            labels.deallocate()
        }
        let data = try FashionMNIST.load(
            .test, directory: Self.directory, imageBuffer: try ByteView(base: images, byteCount: sizes.images),
            labelBuffer: try ByteView(base: labels, byteCount: sizes.labels))
        #expect(data.count == 10000)
        #expect(throws: LichenError.bufferTooSmall(operand: "gzip output", needed: sizes.images, available: sizes.images - 1)) {
            try FashionMNIST.load(
                .test, directory: Self.directory, imageBuffer: try ByteView(base: images, byteCount: sizes.images - 1),
                labelBuffer: try ByteView(base: labels, byteCount: sizes.labels))
        }
        #expect(throws: LichenError.fileError(path: "/nonexistent-lichen/t10k-images-idx3-ubyte.gz", call: "lcr_gzip_size_hint", errno: ENOENT)) {
            try FashionMNIST.decompressedByteCounts(.test, directory: "/nonexistent-lichen")
        }
    }

    @Test("a truncated and a corrupted copy of the test labels throw with the path and offset")
    func hostileCopies() throws {
        let source = Self.directory + "/t10k-labels-idx1-ubyte.gz"
        let original = try Data(contentsOf: URL(fileURLWithPath: source))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-fmnist-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let images = try Data(contentsOf: URL(fileURLWithPath: Self.directory + "/t10k-images-idx3-ubyte.gz"))
        try images.write(to: dir.appendingPathComponent("t10k-images-idx3-ubyte.gz"))
        let labelPath = dir.appendingPathComponent("t10k-labels-idx1-ubyte.gz")

        // Truncated: cut in the middle of the deflate data, keeping a plausible trailer out.
        let arena = try Self.arena(for: .test)
        let buffer = try ByteView.allocate(byteCount: 8 + 10000, from: arena)
        try original.prefix(original.count / 2).write(to: labelPath)
        #expect(throws: LichenError.corruptFile(path: labelPath.path, offset: original.count / 2, reason: "gzip data is truncated")) {
            _ = try buffer.inflateGzipFile(path: labelPath.path)
        }
        // Corrupted: one byte of the deflate data flipped.
        var corrupted = original
        corrupted[corrupted.count / 2] ^= 0x55
        try corrupted.write(to: labelPath)
        do {
            _ = try FashionMNIST.load(.test, directory: dir.path, arena: arena)
            Issue.record("a corrupted file loaded")
        } catch {
            guard case .corruptFile(let path, let offset, _) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(path == labelPath.path)
            #expect(offset > 10 && offset <= original.count, "offset \(offset)")
        }
    }

    /// Runs python3 and returns its stdout; fails (does not skip) when python3 or numpy is missing.
    static func python(_ script: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            Issue.record("cannot start python3: run ports/host/setup (it installs python3 and numpy): \(error)")
            throw error
        }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            Issue.record("python3 failed; if python3 or numpy is missing, run ports/host/setup: \(String(decoding: errors, as: UTF8.self))")
            throw CancellationError()
        }
        return String(decoding: output, as: UTF8.self)
    }
}

extension TensorView {
    /// An f32 view of `count` values from the arena, for the tests.
    static func allocateForTest(arena: Arena, count: Int) throws -> TensorView {
        try arena.persistentTensor(.f32, try Shape(1, count))
    }
}
