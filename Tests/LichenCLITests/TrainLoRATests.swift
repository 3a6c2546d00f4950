import Foundation
import Testing

/// `lichen train --lora` and `lichen eval --adapter`: a short adapter run over the shipped Q8_0
/// CNN on glass_blur, the adapter file it writes, and eval applying it (scale 1 reproduces the
/// error train measured; scale 0 is the base; another base is refused).
@Suite("lichen train --lora and eval --adapter")
struct TrainLoRATests {
    static func model(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../models/\(name)").standardizedFileURL.path
    }

    static func json(_ outcome: CLIRunner.Outcome) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8))
        return try #require(object as? [String: Any], "stdout is one JSON object: \(outcome.stdout)")
    }

    @Test("an adapter trained on glass_blur lowers that domain's error; eval --adapter reproduces train's numbers")
    func trainAndEval() throws {
        let dir = try ModelFixtures.directory()
        let out = dir.appendingPathComponent("glass.gguf").path
        let base = Self.model("fmnist-cnn/fmnist-cnn-q8_0.gguf")
        let r = try CLIRunner.run(["train", "--lora", "--base", base, "--corruption", "glass_blur", "--severity", "5",
                                   "--targets", "conv2,fc1,fc2", "--rank", "4", "--epochs", "2", "--limit", "512",
                                   "--test-limit", "200", "--batch", "32", "--lr", "0.005", "--out", out, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let doc = try Self.json(r)
        let before = try #require(doc["domain_error_before"] as? Double), after = try #require(doc["domain_error"] as? Double)
        let clean = try #require(doc["clean_error"] as? Double), cleanBefore = try #require(doc["clean_error_before"] as? Double)
        #expect(after < before, "glass_blur error \(before) -> \(after)")
        #expect((doc["targets"] as? [[String: Any]])?.map { $0["tensor"] as? String ?? "" } == ["conv2.weight", "fc1.weight", "fc2.weight"])
        // The file is an adapter for this base, readable by gguf-py, with the numbers recorded.
        let check = try ModelFixtures.python("""
            import sys, gguf
            r = gguf.GGUFReader(sys.argv[1])
            def field(k):
                f = r.fields[k]
                return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]]
            assert field("general.type") == "adapter" and field("adapter.type") == "lora"
            assert field("lichen.adapter.base.name") == "fmnist-cnn", field("lichen.adapter.base.name")
            names = sorted(t.name for t in r.tensors)
            assert names == ["conv2.weight.lora_a", "conv2.weight.lora_b", "fc1.weight.lora_a", "fc1.weight.lora_b",
                             "fc2.weight.lora_a", "fc2.weight.lora_b"], names
            shapes = {t.name: [int(s) for s in t.shape] for t in r.tensors}
            assert shapes["conv2.weight.lora_a"] == [288, 4] and shapes["conv2.weight.lora_b"] == [4, 64], shapes
            print("OK", float(field("lichen.eval.clean_error")))
            """, [out])
        #expect(check.hasPrefix("OK"), "gguf-py: \(check)")
        // eval applies it: the same 200 clean test images give train's clean error.
        let e = try CLIRunner.run(["eval", "--model", base, "--limit", "200", "--adapter", out, "--json"])
        #expect(e.status == 0, "stderr: \(e.stderr)")
        let evalClean = try #require(try Self.json(e)["clean_error"] as? Double)
        #expect(abs(evalClean - clean) < 1e-9, "eval \(evalClean), train \(clean)")
        let zero = try CLIRunner.run(["eval", "--model", base, "--limit", "200", "--adapter", out + ":0", "--json"])
        let zeroClean = try #require(try Self.json(zero)["clean_error"] as? Double)
        #expect(abs(zeroClean - cleanBefore) < 1e-9, "scale 0 \(zeroClean), base \(cleanBefore)")
        // Another base model: refused with exit status 1, naming the adapter.
        let other = try CLIRunner.run(["eval", "--model", Self.model("fmnist-mlp/fmnist-mlp-f32.gguf"), "--limit", "10", "--adapter", out])
        #expect(other.status == 1 && other.stderr.contains("another base model"), "stderr: \(other.stderr)")
        let usage = try CLIRunner.run(["train", "--lora", "--out", out])
        #expect(usage.status != 0 && usage.stderr.contains("--base"), "stderr: \(usage.stderr)")
    }

    @Test("--stream S --domain NAME trains on that domain's frames (the CLI contract's form, --model as --base)")
    func streamDomain() throws {
        let dir = try ModelFixtures.directory()
        let stream = dir.appendingPathComponent("s.stream").path
        let made = try CLIRunner.run(["stream", "make", "--kind", "custom", "--domains", "fog,contrast", "--severity", "5",
                                      "--per-domain", "96", "--seed", "5", "--out", stream])
        #expect(made.status == 0, "stderr: \(made.stderr)")
        let out = dir.appendingPathComponent("fog.gguf").path
        let r = try CLIRunner.run(["train", "--lora", "--model", Self.model("fmnist-cnn/fmnist-cnn-q4_0.gguf"), "--stream", stream,
                                   "--domain", "contrast", "--rank", "2", "--targets", "fc1,fc2", "--epochs", "1", "--test-limit", "100",
                                   "--out", out, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let doc = try Self.json(r)
        #expect(doc["domain_images"] as? Int == 96)
        #expect((doc["command"] as? String)?.contains("--stream s.stream --domain contrast") == true)
        #expect(FileManager.default.fileExists(atPath: out))
        let missing = try CLIRunner.run(["train", "--lora", "--base", Self.model("fmnist-cnn/fmnist-cnn-q4_0.gguf"), "--stream", stream,
                                         "--domain", "snow", "--out", out])
        #expect(missing.status == 1 && missing.stderr.contains("no domain 'snow'"), "stderr: \(missing.stderr)")
        let usage = try CLIRunner.run(["train", "--lora", "--base", Self.model("fmnist-cnn/fmnist-cnn-q4_0.gguf"), "--stream", stream, "--out", out])
        #expect(usage.status != 0 && usage.stderr.contains("--stream and --domain go together"), "stderr: \(usage.stderr)")
    }
}
