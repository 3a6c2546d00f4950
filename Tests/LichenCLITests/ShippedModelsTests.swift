import Foundation
import Testing

/// The models in models/: each opens and validates, holds the weight types its card says, records
/// the command its make.sh runs, and classifies. Full-test-set accuracies are the cards' (release
/// `lichen eval`); here a debug build checks the first 500 test images.
@Suite("Shipped models")
struct ShippedModelsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func path(_ arch: String, _ type: String) -> String {
        root.appendingPathComponent("models/fmnist-\(arch)/fmnist-\(arch)-\(type).gguf").path
    }

    static func json(_ outcome: CLIRunner.Outcome) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
    }

    @Test(arguments: ["cnn", "mlp"])
    func recordsTheCommandOfItsMakeScriptAndTheCardsAccuracy(arch: String) throws {
        let inspect = try CLIRunner.run(["inspect", "--model", Self.path(arch, "f32"), "--json"])
        #expect(inspect.status == 0, "stderr: \(inspect.stderr)")
        let meta = try #require(try Self.json(inspect)["metadata"] as? [String: Any])
        let command = try #require(meta["lichen.train.command"] as? String)
        let invocation = "train --data fashion-mnist --arch \(arch) --epochs 10 --seed 1"
        #expect(command.hasPrefix("lichen " + invocation + " "), "recorded: \(command)")
        let make = try String(contentsOf: Self.root.appendingPathComponent("models/fmnist-\(arch)/make.sh"), encoding: .utf8)
        #expect(make.contains(invocation), "make.sh does not run: \(invocation)")
        let card = try String(contentsOf: Self.root.appendingPathComponent("models/fmnist-\(arch)/MODEL_CARD.md"), encoding: .utf8)
        let accuracy = try #require(meta["lichen.eval.clean_accuracy"] as? Double)
        let percent = String(format: "%.2f %%", 100 * accuracy)
        #expect(card.contains(percent), "the card does not state the recorded accuracy \(percent)")
    }

    @Test(arguments: [("cnn", "f32"), ("cnn", "q8_0"), ("cnn", "q4_0"), ("mlp", "f32"), ("mlp", "q8_0"), ("mlp", "q4_0")])
    func holdsItsWeightTypesAndClassifies(arch: String, type: String) throws {
        let path = Self.path(arch, type)
        let inspect = try CLIRunner.run(["inspect", "--model", path, "--json"])
        #expect(inspect.status == 0, "stderr: \(inspect.stderr)")
        let byType = try #require(try Self.json(inspect)["bytes_by_type"] as? [String: Any])
        #expect(Set(byType.keys) == (type == "f32" ? ["f32"] : ["f32", type]))
        let eval = try CLIRunner.run(["eval", "--model", path, "--limit", "500", "--json"])
        #expect(eval.status == 0, "stderr: \(eval.stderr)")
        let accuracy = try #require(try Self.json(eval)["clean_accuracy"] as? Double)
        // The cards give 92.6-92.8 % (cnn) and 89.2-89.5 % (mlp) on all 10,000 images.
        #expect(accuracy >= (arch == "cnn" ? 0.88 : 0.85), "\(path): \(accuracy) on the first 500 test images")
    }
}
