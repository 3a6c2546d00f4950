import Foundation
import Testing

/// The CLI contract of `lichen bench infer`: the variants found by name, `--json` printing one
/// document with the fields, usage errors, and the `--serve` protocol the peer benchmark uses.
/// (Figures are not asserted: timing belongs to the benchmark itself.)
@Suite("lichen bench infer")
struct BenchInferCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let cnn = root.appendingPathComponent("models/fmnist-cnn/fmnist-cnn-q8_0.gguf").path

    @Test func jsonHasEveryVariantAndField() throws {
        let outcome = try CLIRunner.run(["bench", "infer", "--model", Self.cnn, "--seconds", "0.01", "--batch", "2", "--json"])
        #expect(outcome.status == 0, "stderr: \(outcome.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        #expect(object["benchmark"] as? String == "infer")
        let results = try #require(object["results"] as? [[String: Any]])
        #expect(results.compactMap { $0["weights"] as? String } == ["F32", "Q8_0", "Q4_0"])
        for r in results {
            for key in ["p50_ms", "p99_ms", "graph_p50_ms", "throughput_frames_per_s", "max_abs_diff_vs_graph", "logit_range"] {
                let v = try #require(r[key] as? Double, "\(key) missing in \(r)")
                #expect(v.isFinite && v >= 0, "\(key) = \(v)")
            }
            for key in ["step_bytes_batch1", "step_bytes_batch", "budget_in_use_bytes_batch1", "process_peak_rss_bytes",
                        "heap_in_use_bytes", "folded_parameter_bytes"] {
                #expect(r[key] as? Int != nil, "\(key) missing in \(r)")
            }
            let p50 = try #require(r["p50_ms"] as? Double), p99 = try #require(r["p99_ms"] as? Double)
            #expect(p50 > 0 && p99 >= p50)
            let diff = try #require(r["max_abs_diff_vs_graph"] as? Double), range = try #require(r["logit_range"] as? Double)
            #expect(diff <= 0.02 * (range + 1), "inference path and Graph disagree: \(diff) for a range of \(range)")
        }
    }

    @Test func refoldAddsItsFields() throws {
        let outcome = try CLIRunner.run(["bench", "infer", "--model", Self.cnn, "--seconds", "0.01", "--batch", "4", "--refold", "--json"])
        #expect(outcome.status == 0, "stderr: \(outcome.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        let results = try #require(object["results"] as? [[String: Any]])
        #expect(results.count == 3)
        for r in results {
            for key in ["refold_p50_us", "refold_p99_us", "refolded_p50_ms", "refold_plain_p50_ms", "graph_saved_p50_ms",
                        "refold_max_abs_diff_vs_graph_saved", "refold_logit_range"] {
                let v = try #require(r[key] as? Double, "\(key) missing in \(r)")
                #expect(v.isFinite && v >= 0, "\(key) = \(v)")
            }
            #expect((r["refold_bytes"] as? Int ?? 0) > 0, "refold_bytes in \(r)")
            let diff = try #require(r["refold_max_abs_diff_vs_graph_saved"] as? Double)
            let range = try #require(r["refold_logit_range"] as? Double)
            #expect(diff <= 0.02 * (range + 1), "refolded model and Graph .saved disagree: \(diff) for a range of \(range)")
        }
    }

    @Test func serveWithoutFramesIsAUsageError() throws {
        let outcome = try CLIRunner.run(["bench", "infer", "--model", Self.cnn, "--serve"])
        #expect(outcome.status == 2)
        #expect(outcome.stderr.contains("--serve needs --frames"), "stderr: \(outcome.stderr)")
    }

    @Test func serveWritesLogitsAndAnswersRuns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-serve-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var frames = [Float](repeating: 0, count: 3 * 784)
        for i in 0..<frames.count { frames[i] = Float((i * 37) % 255) / 255 }
        let framesPath = dir.appendingPathComponent("frames.f32").path
        let outputsPath = dir.appendingPathComponent("out.f32").path
        try frames.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: framesPath))

        let process = Process()
        process.executableURL = CLIRunner.executable
        process.arguments = ["bench", "infer", "--model", Self.cnn, "--serve", "--frames", framesPath, "--outputs", outputsPath]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data("run 2 4\nquit\n".utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2, "output: \(text)")
        #expect(lines.first == "ready")
        let latencies = lines.count > 1 ? lines[1].split(separator: " ").compactMap { Int($0) } : []
        #expect(latencies.count == 4 && latencies.allSatisfy { $0 > 0 }, "latencies: \(text)")

        // Ten logits for each of the three frames.
        let logits = try Data(contentsOf: URL(fileURLWithPath: outputsPath))
        #expect(logits.count == 3 * 10 * 4)
        let values = logits.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(values.allSatisfy { $0.isFinite })
        #expect(values[0..<10] != values[10..<20], "different frames give different logits")
    }
}
