import Foundation
import Testing

/// `lichen train` and `lichen eval`: determinism (the same command writes the same bytes), the
/// recorded provenance, and the CLI contract. Short runs on a subset; the shipped models' cards
/// give the full commands.
@Suite("lichen train and eval")
struct TrainCommandTests {
    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("lichen-train-\(getpid())-\(name)").path
    }

    static func train(_ out: String, seed: Int, arch: String = "mlp") throws -> CLIRunner.Outcome {
        try CLIRunner.run(["train", "--data", "fashion-mnist", "--arch", arch, "--epochs", "2", "--seed", String(seed),
                           "--limit", "256", "--test-limit", "200", "--batch", "32", "--out", out, "--json"])
    }

    @Test(arguments: ["mlp", "cnn"])
    func sameCommandWritesTheSameBytes(arch: String) throws {
        let a = Self.temporaryPath("\(arch)-a.gguf"), b = Self.temporaryPath("\(arch)-b.gguf"), c = Self.temporaryPath("\(arch)-c.gguf")
        defer { for p in [a, b, c] { try? FileManager.default.removeItem(atPath: p) } }
        let first = try Self.train(a, seed: 7, arch: arch)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        let second = try Self.train(b, seed: 7, arch: arch)
        #expect(second.status == 0, "stderr: \(second.stderr)")
        let third = try Self.train(c, seed: 8, arch: arch)
        #expect(third.status == 0, "stderr: \(third.stderr)")
        let bytesA = try Data(contentsOf: URL(fileURLWithPath: a))
        let bytesB = try Data(contentsOf: URL(fileURLWithPath: b))
        let bytesC = try Data(contentsOf: URL(fileURLWithPath: c))
        #expect(bytesA.count > 10_000)
        #expect(bytesA == bytesB, "two runs of the same command wrote different files")
        #expect(bytesA != bytesC, "a different seed wrote the same file")
        // The JSON summary is one document; the loss falls over two epochs of the same subset.
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        let epochs = try #require(doc["epochs"] as? [[String: Any]])
        #expect(epochs.count == 2)
        let l1 = try #require(epochs[0]["loss"] as? Double), l2 = try #require(epochs[1]["loss"] as? Double)
        #expect(l2 < l1, "loss \(l1) -> \(l2)")
        let accuracy = try #require(doc["clean_test_accuracy"] as? Double)
        #expect(accuracy > 0.3 && accuracy <= 1, "accuracy \(accuracy) after 512 examples")
    }

    @Test func evalReadsTheAccuracyTheFileRecords() throws {
        let path = Self.temporaryPath("eval.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let trained = try Self.train(path, seed: 3)
        #expect(trained.status == 0, "stderr: \(trained.stderr)")
        let train = try #require(try JSONSerialization.jsonObject(with: Data(trained.stdout.utf8)) as? [String: Any])
        let eval = try CLIRunner.run(["eval", "--model", path, "--limit", "200", "--batch", "50", "--json"])
        #expect(eval.status == 0, "stderr: \(eval.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        // The same 200 test images, a different batch size: the same predictions.
        #expect(doc["clean_accuracy"] as? Double == train["clean_test_accuracy"] as? Double)
        #expect(doc["examples"] as? Int == 200)
        let error = try #require(doc["clean_error"] as? Double)
        let accuracy = try #require(doc["clean_accuracy"] as? Double)
        #expect(abs(error + accuracy - 1) < 1e-12)
        // Provenance: the recorded command is the command without --out.
        let inspect = try CLIRunner.run(["inspect", "--model", path, "--json"])
        #expect(inspect.status == 0, "stderr: \(inspect.stderr)")
        let meta = try #require((try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])?["metadata"] as? [String: Any])
        let command = try #require(meta["lichen.train.command"] as? String)
        #expect(command == "lichen train --data fashion-mnist --arch mlp --epochs 2 --seed 3 --batch 32 --lr 0.002 "
                + "--weight-decay 0.0001 --schedule cosine --limit 256 --test-limit 200")
    }

    @Test func badFlagsAreUsageErrors() throws {
        for args in [["train", "--arch", "rnn", "--out", "/tmp/x.gguf"], ["train", "--epochs", "0", "--out", "/tmp/x.gguf"],
                     ["train", "--data", "cifar", "--out", "/tmp/x.gguf"], ["eval", "--model", "m.gguf", "--batch", "0"]] {
            let outcome = try CLIRunner.run(args)
            #expect(outcome.status == 2, "\(args): status \(outcome.status), stderr \(outcome.stderr)")
        }
    }

    @Test func evalOfAMissingModelFailsWithStatus1() throws {
        let outcome = try CLIRunner.run(["eval", "--model", "/nonexistent/model.gguf"])
        #expect(outcome.status == 1)
        #expect(outcome.stderr.contains("/nonexistent/model.gguf"), "stderr: \(outcome.stderr)")
    }
}
