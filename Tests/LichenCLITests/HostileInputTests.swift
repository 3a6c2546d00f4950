import Foundation
import Lichen
import Testing

/// Numbers and files a careless or hostile user hands the CLI: each is refused with a message
/// naming it (exit 1, or 2 for a flag), never a trap (a process killed by a signal).
@Suite("lichen: hostile input")
struct HostileInputTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func modelPath() -> String {
        root.appendingPathComponent("models/fmnist-cnn/fmnist-cnn-f32.gguf").path
    }

    @Test("--lora-alpha 1e38 and -1e38 are usage errors naming the flag and its range (1e38 trapped in the text of the LoRA setting)")
    func loraAlphaOutOfRange() throws {
        for value in ["1e38", "-1e38", "3.4e38", "nan"] {
            let r = try CLIRunner.run(["inspect", "--model", Self.modelPath(), "--method", "tent", "--lora-rank", "4", "--lora-alpha=" + value])
            #expect(r.status == 2, "\(value): status \(r.status), stderr: \(r.stderr)")
            #expect(r.stderr.contains("--lora-alpha") && r.stderr.contains("65536"), "\(value): \(r.stderr)")
        }
        let ok = try CLIRunner.run(["inspect", "--model", Self.modelPath(), "--method", "tent", "--lora-rank", "4", "--lora-alpha", "60000"])
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
    }

    @Test("a PEFT rank of 2^32 or more is refused with exit 1 naming 'r' (it trapped in a UInt32 conversion)", arguments: [
        "{\"r\": 4294967296}", "{\"r\": 1e300}", "{\"r\": 5000}", "{\"r\": 2.5}",
    ])
    func peftRankOutOfRange(_ config: String) throws {
        let dir = try ModelFixtures.directory()
        let base = try ImportPEFTTests.fixture(dir, extraConfig: config)
        let out = dir.appendingPathComponent("a.gguf").path
        let r = try CLIRunner.run(["import", "--peft", dir.appendingPathComponent("peft").path, "--base", base, "--out", out])
        #expect(r.status == 1, "\(config): status \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.contains("adapter_config.json") && r.stderr.contains("'r'") && r.stderr.contains("4096"), "\(config): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("PEFT configs with strings or nulls where numbers or booleans belong are refused, naming the key", arguments: [
        ("{\"use_rslora\": \"yes\"}", "use_rslora"), ("{\"use_rslora\": null}", "use_rslora"), ("{\"use_dora\": \"true\"}", "use_dora"),
        ("{\"lora_alpha\": \"8\"}", "lora_alpha"), ("{\"lora_alpha\": true}", "lora_alpha"), ("{\"lora_alpha\": null}", "lora_alpha"),
        ("{\"r\": \"4\"}", "'r'"), ("{\"r\": true}", "'r'"), ("{\"fan_in_fan_out\": 0}", "fan_in_fan_out"),
        ("{\"bias\": 5}", "bias"), ("{\"target_modules\": 7}", "target_modules"), ("{\"lora_alpha\": 1e300}", "lora_alpha"),
    ])
    func peftMistypedConfig(_ config: String, _ key: String) throws {
        let dir = try ModelFixtures.directory()
        let base = try ImportPEFTTests.fixture(dir, extraConfig: config)
        let out = dir.appendingPathComponent("a.gguf").path
        let r = try CLIRunner.run(["import", "--peft", dir.appendingPathComponent("peft").path, "--base", base, "--out", out])
        #expect(r.status == 1, "\(config): status \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.contains(key), "\(config): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
