import Foundation
import Testing

/// `lichen adapt --learn`: online supervised learning from the stream's labels through the
/// runtime's assembly (`RunningMethod.learn`, what `lichen_learn` calls), on the shipped f32 MLP
/// and a small stream whose contrast domain the source model gets mostly wrong.
@Suite("lichen adapt --learn")
struct AdaptLearnTests {
    static var model: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../models/fmnist-mlp/fmnist-mlp-f32.gguf").standardizedFileURL.path
    }

    @Test("learning from every label lowers the contrast domain's error; the JSON reports what was learned")
    func learnsFromLabels() throws {
        let dir = try CLIRunner.temporaryFolder("adapt-learn")
        defer { try? FileManager.default.removeItem(at: dir) }
        let stream = try CLIRunner.makeStream(["--kind", "custom", "--domains", "clean,contrast", "--severity", "5", "--per-domain", "300",
                                               "--seed", "2"], in: dir)
        func run(_ extra: [String]) throws -> [String: Any] {
            let r = try CLIRunner.run(["adapt", "--model", Self.model, "--stream", stream, "--method", "source", "--window", "16", "--json"] + extra)
            try #require(r.status == 0, "stderr: \(r.stderr)")
            return try AdaptCommandTests.json(r)
        }
        let plain = try #require((try run([]))["methods"] as? [[String: Any]]).first
        let learnedDoc = try run(["--learn", "lrh", "--learn-rate", "1e-2", "--learn-every", "2"])
        let learned = try #require((learnedDoc["methods"] as? [[String: Any]])?.first)
        let before = try #require((plain?["domains"] as? [[String: Any]])?.compactMap { $0["error"] as? Double })
        let after = try #require((learned["domains"] as? [[String: Any]])?.compactMap { $0["error"] as? Double })
        #expect(plain?["learning"] is NSNull)
        #expect(after[1] < before[1] - 0.1, "contrast: \(after[1]) with learning vs \(before[1]) without")
        let l = try #require(learned["learning"] as? [String: Any])
        #expect(l["policy"] as? String == "lrh" && l["samples"] as? Int == 300 && l["updates"] as? Int == 30)
        // LRH decides every 10 samples once more than 20 were seen: 30, 40, ..., 290.
        #expect(l["decisions"] as? Int == 27)
        let rate = try #require(l["rate_end"] as? Double)
        #expect(rate >= 1e-8 && rate <= 1e-2 + 27e-3 + 1e-12, "eta \(rate) moved by more than its decisions allow")
        let learn = try #require(learnedDoc["learn"] as? [String: Any])
        #expect(learn["every"] as? Int == 2 && learn["rate"] as? Double == 1e-2)
    }

    @Test("--learn is refused without frame mode, with another method and with a bad policy or rate")
    func usageErrors() throws {
        for args in [["--method", "source", "--learn", "lrh"], ["--method", "source", "--window", "16", "--learn", "sometimes"],
                     ["--method", "source", "--window", "16", "--learn", "lrh", "--learn-rate", "-1"],
                     ["--method", "source", "--window", "16", "--learn", "lrh", "--learn-every", "0"]] {
            let r = try CLIRunner.run(["adapt", "--model", Self.model, "--stream", "/nonexistent.stream"] + args)
            #expect(r.status == 2, "\(args): status \(r.status), stderr \(r.stderr)")
        }
        let dir = try CLIRunner.temporaryFolder("adapt-learn-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let stream = try CLIRunner.makeStream(["--kind", "custom", "--domains", "clean", "--per-domain", "20", "--seed", "1"], in: dir)
        let tent = try CLIRunner.run(["adapt", "--model", Self.model, "--stream", stream, "--method", "tent", "--window", "8", "--learn", "lrh"])
        #expect(tent.status != 0 && tent.stderr.contains("run it with the source method"), "stderr: \(tent.stderr)")
    }
}
