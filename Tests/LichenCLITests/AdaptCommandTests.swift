import Foundation
import Testing

/// `lichen adapt` on a small custom stream (clean, gaussian_noise and contrast at severity 5,
/// 200 frames each, seed 1) with the shipped Q8_0 CNN.
///
/// Measured when written (batch 200): source 6.5 / 13.5 / 80.0 %, bn 5.5 / 8.5 / 45.0 %,
/// tent 5.5 / 8.5 / 45.5 %. BN-adapt's gain on contrast (35 points on 200 frames) is far
/// beyond the sampling noise of 200 frames, so the test asserts it.
@Suite("lichen adapt")
struct AdaptCommandTests {
    static var model: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../models/fmnist-cnn/fmnist-cnn-q8_0.gguf").standardizedFileURL.path
    }

    static func json(_ outcome: CLIRunner.Outcome) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8))
        return try #require(object as? [String: Any], "stdout is one JSON object: \(outcome.stdout)")
    }

    @Test func compareSourceBNTent() throws {
        let dir = try CLIRunner.temporaryFolder("adapt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let stream = try CLIRunner.makeStream(["--kind", "custom", "--domains", "clean,gaussian_noise,contrast", "--severity", "5",
                                               "--per-domain", "200", "--seed", "1"], in: dir)

        let adapt = try CLIRunner.run(["adapt", "--model", Self.model, "--stream", stream, "--compare", "source,bn,tent", "--json"])
        try #require(adapt.status == 0, "stderr: \(adapt.stderr)")
        let doc = try Self.json(adapt)
        let methods = try #require(doc["methods"] as? [[String: Any]])
        #expect(methods.compactMap { $0["method"] as? String } == ["source", "bn", "tent"])
        var errors: [String: [Double]] = [:]
        for m in methods {
            let name = try #require(m["method"] as? String)
            let domains = try #require(m["domains"] as? [[String: Any]])
            #expect(domains.compactMap { $0["name"] as? String } == ["clean", "gaussian_noise", "contrast"])
            #expect(domains.compactMap { $0["frames"] as? Int } == [200, 200, 200])
            let e = try domains.map { try #require($0["error"] as? Double) }
            for x in e { #expect(x >= 0 && x <= 1, "\(name): error \(x) outside [0, 1]") }
            let mean = try #require(m["mean_error"] as? Double)
            #expect(abs(mean - e.reduce(0, +) / 3) < 1e-12, "\(name): mean_error is the mean over domains")
            errors[name] = e
        }
        #expect(methods.last?["mode"] as? String == "frugal")

        // Source is the inference model: exactly what `lichen eval --stream` reports.
        let eval = try CLIRunner.run(["eval", "--model", Self.model, "--stream", stream, "--json"])
        try #require(eval.status == 0, "stderr: \(eval.stderr)")
        let evalDomains = try #require(try Self.json(eval)["domains"] as? [[String: Any]])
        let evalErrors = try evalDomains.map { try #require($0["error"] as? Double) }
        #expect(errors["source"] == evalErrors)

        // BN-adapt's documented effect: batch statistics undo most of the contrast shift.
        let source = try #require(errors["source"]), bn = try #require(errors["bn"])
        #expect(bn[2] < source[2] - 0.1, "contrast: bn \(bn[2]) vs source \(source[2])")
    }

    @Test func usageErrors() throws {
        let stream = "/nonexistent.stream"
        for args in [["--method", "nope"], ["--method", "rmt", "--lambda-src", "-1"], ["--method", "rmt", "--warmup-samples", "-5"],
                     ["--method", "cotta", "--augmentations", "0"],
                     ["--method", "cotta", "--cotta-threshold", "nan"], ["--method", "tent", "--batch", "0"],
                     ["--method", "tent", "--batch", "10001"], ["--method", "tent", "--mode", "half"], [String](),
                     ["--method", "tent", "--lora-alpha", "8"], ["--method", "tent", "--lora-targets", "conv"],
                     ["--method", "tent", "--lora-rank", "0"], ["--method", "tent", "--mode", "full", "--lora-rank", "4"],
                     ["--method", "tent", "--lora-rank", "4", "--lora-alpha", "-1"]] {
            let r = try CLIRunner.run(["adapt", "--model", Self.model, "--stream", stream] + args)
            #expect(r.status == 2, "\(args): status \(r.status), stderr \(r.stderr)")
        }
    }

    /// CoTTA runs over the stream with a given threshold (4 augmentations to keep it short):
    /// one row per domain, errors in [0, 1], mode reported; a threshold above every possible
    /// confidence makes every batch augmented, one below 0 none, and the two differ.
    @Test func cottaRuns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-adapt-cotta-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stream = dir.appendingPathComponent("s.stream").path
        let make = try CLIRunner.run(["stream", "make", "--kind", "custom", "--domains", "clean,contrast",
                                      "--severity", "5", "--per-domain", "100", "--seed", "1", "--out", stream])
        try #require(make.status == 0, "stderr: \(make.stderr)")
        var means: [Double] = []
        for threshold in ["2", "-1"] {
            let r = try CLIRunner.run(["adapt", "--model", Self.model, "--stream", stream, "--method", "cotta", "--batch", "50",
                                       "--cotta-threshold=\(threshold)", "--augmentations", "4", "--json"])
            try #require(r.status == 0, "stderr: \(r.stderr)")
            let methods = try #require(try Self.json(r)["methods"] as? [[String: Any]])
            #expect(methods.count == 1 && methods[0]["method"] as? String == "cotta")
            #expect(methods[0]["mode"] as? String == "frugal")
            let domains = try #require(methods[0]["domains"] as? [[String: Any]])
            #expect(domains.compactMap { $0["frames"] as? Int } == [100, 100])
            for d in domains {
                let e = try #require(d["error"] as? Double)
                #expect(e >= 0 && e <= 1)
            }
            means.append(try #require(methods[0]["mean_error"] as? Double))
        }
        #expect(means[0] != means[1], "augmented and plain teacher predictions differ: \(means)")
    }

    /// RMT runs over the stream (one warm-up step, prototypes from 100 source images): one row
    /// per domain, errors in [0, 1], with and without source replay.
    @Test func rmtRuns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-adapt-rmt-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stream = dir.appendingPathComponent("s.stream").path
        let make = try CLIRunner.run(["stream", "make", "--kind", "custom", "--domains", "clean,contrast",
                                      "--severity", "5", "--per-domain", "100", "--seed", "1", "--out", stream])
        try #require(make.status == 0, "stderr: \(make.stderr)")
        for extra in [[String](), ["--rmt-source-free"]] {
            let r = try CLIRunner.run(["adapt", "--model", Self.model, "--stream", stream, "--method", "rmt", "--batch", "50",
                                       "--warmup-samples", "50", "--prototype-samples", "100", "--json"] + extra)
            try #require(r.status == 0, "stderr: \(r.stderr)")
            let methods = try #require(try Self.json(r)["methods"] as? [[String: Any]])
            #expect(methods.count == 1 && methods[0]["method"] as? String == "rmt")
            #expect(methods[0]["mode"] as? String == "frugal")
            let domains = try #require(methods[0]["domains"] as? [[String: Any]])
            #expect(domains.compactMap { $0["frames"] as? Int } == [100, 100])
            for d in domains {
                let e = try #require(d["error"] as? Double)
                #expect(e >= 0 && e <= 1)
            }
            let mean = try #require(methods[0]["mean_error"] as? Double)
            #expect(mean >= 0 && mean <= 1)
        }
    }

    /// Frugal mode with LoRA trainables (--lora-rank 4, default alpha 8 on every conv and linear
    /// layer): the document names the settings and the trained values, the γ and β of bn1 (32)
    /// and bn2 (64) plus A [4, n_in] and B [n_out, 4] of conv1 (9 → 32), conv2 (288 → 64), fc1
    /// (3136 → 128) and fc2 (128 → 10): 192 + 164 + 1408 + 13056 + 552 = 15372. A target that
    /// is no layer exits 1 naming it.
    @Test func loraTrainables() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-adapt-lora-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stream = dir.appendingPathComponent("s.stream").path
        let make = try CLIRunner.run(["stream", "make", "--kind", "custom", "--domains", "clean,contrast",
                                      "--severity", "5", "--per-domain", "100", "--seed", "1", "--out", stream])
        try #require(make.status == 0, "stderr: \(make.stderr)")
        let r = try CLIRunner.run(["adapt", "--model", Self.model, "--stream", stream, "--compare", "bn,tent", "--batch", "50",
                                   "--lora-rank", "4", "--json"])
        try #require(r.status == 0, "stderr: \(r.stderr)")
        let doc = try Self.json(r)
        let lora = try #require(doc["lora"] as? [String: Any])
        #expect(lora["rank"] as? Int == 4 && lora["alpha"] as? Double == 8 && lora["targets"] as? [String] == ["conv", "linear"])
        let methods = try #require(doc["methods"] as? [[String: Any]])
        #expect(methods.compactMap { $0["trained_values"] as? Int } == [0, 15372])
        #expect(methods[1]["mode"] as? String == "frugal")
        for d in try #require(methods[1]["domains"] as? [[String: Any]]) {
            let e = try #require(d["error"] as? Double)
            #expect(e >= 0 && e <= 1)
        }
        let bad = try CLIRunner.run(["adapt", "--model", Self.model, "--stream", stream, "--method", "tent", "--batch", "50",
                                     "--lora-rank", "4", "--lora-targets", "fc9"])
        #expect(bad.status == 1 && bad.stderr.contains("fc9"), "status \(bad.status), stderr \(bad.stderr)")
    }
}
