import Foundation
import Lichen
import Testing

/// `lichen-infer-worker`, the peer benchmark's lean Lichen side: its logits against the unfolded
/// `Graph` computed here on the same frames (the independent reference: no folding, no fused
/// steps), the serve protocol it shares with `lichen bench infer --serve`, and its errors.
/// (Figures are not asserted: timing belongs to the benchmark itself.)
@Suite("lichen-infer-worker")
struct InferWorkerTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var executable: URL {
        CLIRunner.executable.deletingLastPathComponent().appendingPathComponent("lichen-infer-worker")
    }

    static func model(_ tag: String) -> String { root.appendingPathComponent("models/fmnist-cnn/fmnist-cnn-\(tag).gguf").path }

    /// Runs the worker on `frames` with `input` as stdin; returns its status, stdout, stderr and logits.
    static func serve(model: String, frames: [Float], input: String) throws -> (status: Int32, stdout: String, stderr: String, logits: [Float]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-worker-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let framesPath = dir.appendingPathComponent("frames.f32").path
        let outputsPath = dir.appendingPathComponent("out.f32").path
        try frames.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: framesPath))
        let process = Process()
        process.executableURL = executable
        process.arguments = [model, framesPath, outputsPath]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let data = (try? Data(contentsOf: URL(fileURLWithPath: outputsPath))) ?? Data()
        let logits = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return (process.terminationStatus, out, err, logits)
    }

    static func frames(_ count: Int) -> [Float] {
        var frames = [Float](repeating: 0, count: count * 784)
        for i in 0..<frames.count { frames[i] = Float((i * 37 + i / 784 * 11) % 255) / 255 }
        return frames
    }

    /// The unfolded Graph's logits for each frame, one at a time.
    static func graphLogits(model path: String, frames: [Float]) throws -> [Float] {
        let file = try GGUFFile(path: path)
        let spec = try ModelFile.readSpec(file)
        let arena = try Arena(byteCount: 64 << 20)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
        let graph = try Graph(spec: spec, store: store, batchSize: 1, arena: arena)
        var result: [Float] = []
        var copy = frames
        try copy.withUnsafeMutableBytes { raw in
            for i in 0..<(frames.count / 784) {
                let x = try TensorView(base: raw.baseAddress! + i * 784 * 4, byteCount: 784 * 4, type: .f32,
                                       shape: try Shape(dimensions: [1, 1, 28, 28]))
                result.append(contentsOf: try graph.forward(input: x).toArray())
            }
        }
        return result
    }

    @Test(arguments: ["f32", "q8_0"])
    func logitsMatchTheGraphAndRunsAreAnswered(tag: String) throws {
        let frames = Self.frames(3)
        let r = try Self.serve(model: Self.model(tag), frames: frames, input: "run 2 4\nrun 0 1\nquit\n")
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 3, "output: \(r.stdout)")
        #expect(lines.first == "ready")
        for (line, count) in zip(lines.dropFirst(), [4, 1]) {
            let latencies = line.split(separator: " ").compactMap { Int($0) }
            #expect(latencies.count == count && latencies.allSatisfy { $0 > 0 }, "line: \(line)")
        }
        let reference = try Self.graphLogits(model: Self.model(tag), frames: frames)
        try #require(r.logits.count == reference.count && reference.count == 3 * 10, "\(r.logits.count) logits")
        let range = reference.max()! - reference.min()!
        // Folding rounds differently: f32 folds in f32 products; q8_0 rounds each folded block scale to fp16.
        let tolerance = tag == "f32" ? 1e-4 * range : 0.02 * range
        for k in 0..<reference.count {
            #expect(abs(r.logits[k] - reference[k]) <= tolerance, "logit \(k): \(r.logits[k]) vs graph \(reference[k])")
        }
        #expect(r.logits[0..<10] != r.logits[10..<20], "different frames give different logits")
    }

    @Test func badInputIsAnError() throws {
        let missing = try Self.serve(model: Self.root.appendingPathComponent("models/none.gguf").path, frames: Self.frames(1), input: "quit\n")
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("none.gguf"), "stderr: \(missing.stderr)")
        let partial = try Self.serve(model: Self.model("q8_0"), frames: [Float](repeating: 0, count: 700), input: "quit\n")
        #expect(partial.status == 1)
        #expect(partial.stderr.contains("not a whole number of 784-value f32 frames"), "stderr: \(partial.stderr)")
        let garbage = try Self.serve(model: Self.model("q8_0"), frames: Self.frames(1), input: "jump 1\n")
        #expect(garbage.status == 1)
        #expect(garbage.stdout == "ready\n" && garbage.stderr.contains("expected 'run START COUNT'"), "stderr: \(garbage.stderr)")
    }
}
