import Foundation
import Testing

/// `lichen stream make|show` and `lichen eval --stream`: determinism, the domains and frames a
/// small stream holds, one JSON document, a valid PNG contact sheet (checked independently with
/// Python's zlib), and per-domain errors that agree exactly with `lichen eval --limit`.
@Suite("lichen stream")
struct StreamCommandTests {
    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("lichen-stream-\(getpid())-\(name)").path
    }

    static func json(_ outcome: CLIRunner.Outcome) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
    }

    static func make(_ out: String, seed: Int, extra: [String] = []) throws -> CLIRunner.Outcome {
        try CLIRunner.run(["stream", "make", "--kind", "custom", "--domains", "clean,gaussian_noise,fog:2",
                           "--per-domain", "20", "--seed", String(seed), "--out", out] + extra)
    }

    @Test func sameSeedWritesTheSameBytes() throws {
        let a = Self.temporaryPath("a.stream"), b = Self.temporaryPath("b.stream"), c = Self.temporaryPath("c.stream")
        defer { for p in [a, b, c] { try? FileManager.default.removeItem(atPath: p) } }
        for (path, seed) in [(a, 5), (b, 5), (c, 6)] {
            let outcome = try Self.make(path, seed: seed)
            #expect(outcome.status == 0, "stderr: \(outcome.stderr)")
        }
        let bytesA = try Data(contentsOf: URL(fileURLWithPath: a))
        #expect(bytesA == (try Data(contentsOf: URL(fileURLWithPath: b))), "the same seed wrote different files")
        #expect(bytesA != (try Data(contentsOf: URL(fileURLWithPath: c))), "another seed wrote the same file")
        #expect(bytesA.prefix(4) == Data("LCHS".utf8))
    }

    @Test func showPrintsOneDocumentAndAValidContactSheet() throws {
        let stream = Self.temporaryPath("show.stream"), sheet = Self.temporaryPath("sheet.png")
        defer { for p in [stream, sheet] { try? FileManager.default.removeItem(atPath: p) } }
        let made = try Self.make(stream, seed: 3, extra: ["--json"])
        #expect(made.status == 0, "stderr: \(made.stderr)")
        #expect(try Self.json(made)["frames"] as? Int == 60)
        let shown = try CLIRunner.run(["stream", "show", "--stream", stream, "--out", sheet, "--json"])
        #expect(shown.status == 0, "stderr: \(shown.stderr)")
        let doc = try Self.json(shown)
        #expect(doc["kind"] as? String == "custom")
        #expect(doc["seed"] as? String == "3")
        #expect(doc["frames"] as? Int == 60)
        let domains = try #require(doc["domains"] as? [[String: Any]])
        #expect(domains.map { $0["name"] as? String } == ["clean", "gaussian_noise", "fog"])
        #expect(domains.map { $0["severity"] as? Int } == [0, 5, 2])
        #expect(domains.map { $0["first_frame"] as? Int } == [0, 20, 40])
        #expect(domains.map { $0["frames"] as? Int } == [20, 20, 20])
        let histogram = try #require(doc["label_histogram"] as? [Int])
        #expect(histogram.count == 10 && histogram.reduce(0, +) == 60)
        let info = try #require(doc["sheet"] as? [String: Any])
        let width = try #require(info["width"] as? Int), height = try #require(info["height"] as? Int)
        // PNG signature and IHDR, read here.
        let png = try Data(contentsOf: URL(fileURLWithPath: sheet))
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        #expect(png.subdata(in: 12..<16) == Data("IHDR".utf8))
        func be32(_ at: Int) -> Int { png[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        #expect(be32(8) == 13 && be32(16) == width && be32(20) == height)
        #expect(png[24] == 8 && png[25] == 0, "8-bit grayscale")
        // Every chunk's CRC and the pixel data, checked with Python's zlib.
        let script = """
            import struct, sys, zlib
            d = open(sys.argv[1], 'rb').read()
            assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
            i, idat, w, h = 8, b'', 0, 0
            while i < len(d):
                n, t = struct.unpack('>I4s', d[i:i+8]); body = d[i+8:i+8+n]
                assert struct.unpack('>I', d[i+8+n:i+12+n])[0] == zlib.crc32(t + body), t
                if t == b'IHDR': w, h = struct.unpack('>II', body[:8])
                if t == b'IDAT': idat += body
                i += 12 + n
            raw = zlib.decompress(idat)
            assert len(raw) == h * (w + 1) and all(raw[r * (w + 1)] == 0 for r in range(h))
            print(w, h)
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        python.arguments = ["-c", script, sheet]
        let pipe = Pipe()
        python.standardOutput = pipe
        try python.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        #expect(python.terminationStatus == 0)
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "\(width) \(height)")
    }

    @Test func evalOnAStreamAgreesWithEvalOnTheTestSet() throws {
        let model = Self.temporaryPath("model.gguf"), clean = Self.temporaryPath("clean.stream"), mixed = Self.temporaryPath("mixed.stream")
        defer { for p in [model, clean, mixed] { try? FileManager.default.removeItem(atPath: p) } }
        let trained = try CLIRunner.run(["train", "--data", "fashion-mnist", "--arch", "mlp", "--epochs", "1", "--limit", "512",
                                         "--test-limit", "100", "--seed", "1", "--out", model])
        #expect(trained.status == 0, "stderr: \(trained.stderr)")
        // The first 100 test images, unshuffled and unchanged: the same predictions as eval --limit 100.
        let made = try CLIRunner.run(["stream", "make", "--kind", "custom", "--domains", "clean", "--per-domain", "100",
                                      "--order", "original", "--seed", "1", "--out", clean])
        #expect(made.status == 0, "stderr: \(made.stderr)")
        let onStream = try Self.json(try CLIRunner.run(["eval", "--model", model, "--stream", clean, "--batch", "32", "--json"]))
        let onTest = try Self.json(try CLIRunner.run(["eval", "--model", model, "--limit", "100", "--batch", "32", "--json"]))
        let domains = try #require(onStream["domains"] as? [[String: Any]])
        #expect(domains.count == 1 && domains[0]["name"] as? String == "clean" && domains[0]["frames"] as? Int == 100)
        let accuracy = try #require(onTest["clean_accuracy"] as? Double)
        let error = try #require(domains[0]["error"] as? Double)
        #expect(abs(error - (1 - accuracy)) < 1e-12, "stream error \(error), test accuracy \(accuracy)")
        #expect(onStream["mean_error"] as? Double == error)

        // Several domains: errors are fractions, the mean is their mean.
        let mixedMade = try Self.make(mixed, seed: 2)
        #expect(mixedMade.status == 0, "stderr: \(mixedMade.stderr)")
        let outcome = try CLIRunner.run(["eval", "--model", model, "--stream", mixed, "--json"])
        #expect(outcome.status == 0, "stderr: \(outcome.stderr)")
        let doc = try Self.json(outcome)
        let rows = try #require(doc["domains"] as? [[String: Any]])
        #expect(rows.map { $0["name"] as? String } == ["clean", "gaussian_noise", "fog"])
        #expect(rows.map { $0["severity"] as? Int } == [0, 5, 2])
        let errors = rows.compactMap { $0["error"] as? Double }
        #expect(errors.count == 3 && errors.allSatisfy { $0 >= 0 && $0 <= 1 })
        // 20 frames per domain: each error is a multiple of 1/20.
        #expect(errors.allSatisfy { abs($0 * 20 - ($0 * 20).rounded()) < 1e-9 })
        let mean = try #require(doc["mean_error"] as? Double)
        #expect(abs(mean - errors.reduce(0, +) / 3) < 1e-12)
        // The table: one column per domain and the mean.
        let table = try CLIRunner.run(["eval", "--model", model, "--stream", mixed])
        #expect(table.status == 0)
        #expect(table.stdout.contains("method") && table.stdout.contains("gaussian") && table.stdout.contains("mean")
                && table.stdout.contains("source"), "stdout: \(table.stdout)")
    }

    @Test func badRequestsAreUsageErrors() throws {
        let out = Self.temporaryPath("never.stream")
        for args in [["stream", "make", "--kind", "custom", "--seed", "1", "--out", out],
                     ["stream", "make", "--kind", "continual", "--severity", "6", "--seed", "1", "--out", out],
                     ["stream", "make", "--kind", "custom", "--domains", "rain", "--seed", "1", "--out", out],
                     ["stream", "make", "--kind", "custom", "--domains", "fog", "--per-domain", "10001", "--seed", "1", "--out", out],
                     ["stream", "make", "--kind", "gradual", "--severity", "3", "--seed", "1", "--out", out],
                     ["stream", "make", "--kind", "sideways", "--seed", "1", "--out", out],
                     ["stream", "make", "--kind", "continual", "--out", out],
                     ["stream", "show", "--stream", out, "--scale", "0"],
                     ["eval", "--model", "m.gguf", "--stream", out, "--limit", "5"]] {
            let outcome = try CLIRunner.run(args)
            #expect(outcome.status == 2, "\(args): status \(outcome.status), stderr \(outcome.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func missingAndCorruptStreamsFailWithStatus1() throws {
        let missing = try CLIRunner.run(["stream", "show", "--stream", "/nonexistent/x.stream"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("/nonexistent/x.stream"), "stderr: \(missing.stderr)")
        let good = Self.temporaryPath("good.stream"), cut = Self.temporaryPath("cut.stream")
        defer { for p in [good, cut] { try? FileManager.default.removeItem(atPath: p) } }
        #expect(try Self.make(good, seed: 4).status == 0)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        bytes.removeLast(100)
        try bytes.write(to: URL(fileURLWithPath: cut))
        let outcome = try CLIRunner.run(["stream", "show", "--stream", cut, "--json"])
        #expect(outcome.status == 1)
        #expect(outcome.stdout.isEmpty)
        // 100 bytes short of 60 frames: the frame count no longer fits the file (field at byte 32).
        #expect(outcome.stderr.contains("corrupt file '\(cut)' at byte offset 32") && outcome.stderr.contains("truncated"),
                "stderr: \(outcome.stderr)")
    }
}
