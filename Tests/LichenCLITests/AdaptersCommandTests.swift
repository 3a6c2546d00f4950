import Foundation
import Lichen
import Testing

/// `lichen serve` with `lichen adapters ...` talking to it over its socket: every subcommand,
/// tables and JSON, refusals (exit 1, active set unchanged) and an unreachable socket.
@Suite("lichen adapters and lichen serve")
struct AdaptersCommandTests {
    static func model() -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../models/fmnist-cnn/fmnist-cnn-q8_0.gguf").standardizedFileURL.path
    }

    static func json(_ outcome: CLIRunner.Outcome) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8))
        return try #require(object as? [String: Any], "stdout is one JSON object: \(outcome.stdout)")
    }

    /// An adapter on fc2 for the shipped CNN, written with the library.
    static func writeAdapter(_ path: String, seed: Float) throws {
        let arena = try Arena(byteCount: 16 << 20)
        let file = try GGUFFile(path: model())
        let spec = try ModelFile.readSpec(file)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
        let base = try AdapterBase(name: try file.string("general.name"), store: store)
        let adapter = try LoRAAdapter(name: "x", base: base, alpha: 2,
                                      shapes: [LoRATargetShape(weightName: "fc2.weight", rank: 2, inputCount: 128, outputCount: 10)],
                                      arena: arena)
        try adapter.targets[0].a.copy(from: (0..<256).map { Float($0 % 7) * 0.01 * seed })
        try adapter.targets[0].b.copy(from: (0..<20).map { Float($0 % 5) * 0.1 })
        try AdapterFile.write(adapter, toPath: path)
    }

    @Test("status, load, list, swap, scale and unload against a serving runtime")
    func againstServe() throws {
        let dir = "/tmp/lichen-cli-adapters-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/s.sock", stream = dir + "/clean.stream"
        let a = dir + "/skill-a.gguf", b = dir + "/skill-b.gguf"
        try Self.writeAdapter(a, seed: 1)
        try Self.writeAdapter(b, seed: 2)
        let made = try CLIRunner.run(["stream", "make", "--kind", "custom", "--domains", "clean", "--per-domain", "40",
                                      "--seed", "1", "--out", stream])
        #expect(made.status == 0, "stderr: \(made.stderr)")

        let serve = Process()
        serve.executableURL = CLIRunner.executable
        serve.arguments = ["serve", "--model", Self.model(), "--socket", socket, "--stream", stream, "--rate", "100",
                           "--seconds", "60", "--json"]
        let out = Pipe(), err = Pipe()
        serve.standardOutput = out
        serve.standardError = err
        try serve.run()
        defer { if serve.isRunning { serve.terminate() } }
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: socket) && Date() < deadline { usleep(20_000) }

        let status = try CLIRunner.run(["adapters", "status", "--socket", socket, "--json"])
        #expect(status.status == 0, "stderr: \(status.stderr)")
        let s = try Self.json(status)
        #expect(s["operation"] as? String == "status" && s["status"] as? String == "ok")
        #expect(s["budget_bytes"] as? Int == 64 << 20 && s["method"] as? String == "source")
        for key in ["used_bytes", "steps", "resets", "swaps", "active_adapters", "generation", "step_p50_ms", "step_p99_ms"] {
            #expect(s[key] != nil, "status has \(key)")
        }

        let load = try CLIRunner.run(["adapters", "load", a, "--scale", "0.5", "--socket", socket, "--json"])
        #expect(load.status == 0, "stderr: \(load.stderr)")
        let adapters = try #require(try Self.json(load)["adapters"] as? [[String: Any]])
        #expect(adapters.count == 1 && adapters[0]["name"] as? String == "skill-a" && adapters[0]["scale"] as? Double == 0.5)
        #expect(adapters[0]["file"] as? String == a && adapters[0]["rank"] as? Int == 2)

        let table = try CLIRunner.run(["adapters", "list", "--socket", socket])
        #expect(table.status == 0)
        #expect(table.stdout.contains("skill-a") && table.stdout.contains("rank") && table.stdout.contains("bytes"))

        let swap = try CLIRunner.run(["adapters", "swap", b + ":2", a, "--socket", socket, "--json"])
        #expect(swap.status == 0, "stderr: \(swap.stderr)")
        let swapped = try #require(try Self.json(swap)["adapters"] as? [[String: Any]])
        #expect(swapped.map { $0["name"] as? String ?? "" } == ["skill-b", "skill-a"])
        #expect(swapped.map { $0["scale"] as? Double ?? 0 } == [2, 1])

        #expect(try CLIRunner.run(["adapters", "scale", "skill-b", "0.25", "--socket", socket]).status == 0)
        #expect(try CLIRunner.run(["adapters", "unload", "skill-a", "--socket", socket]).status == 0)
        let after = try Self.json(try CLIRunner.run(["adapters", "list", "--socket", socket, "--json"]))
        let left = try #require(after["adapters"] as? [[String: Any]])
        #expect(left.count == 1 && left[0]["name"] as? String == "skill-b" && left[0]["scale"] as? Double == 0.25)

        // Refusals: exit status 1, the reason on stderr (and in the JSON), the set unchanged.
        let missing = try CLIRunner.run(["adapters", "load", dir + "/none.gguf", "--socket", socket, "--json"])
        #expect(missing.status == 1)
        let m = try Self.json(missing)
        #expect(m["status"] as? String == "failed" && (m["message"] as? String ?? "").contains("none.gguf"))
        let unknown = try CLIRunner.run(["adapters", "unload", "nope", "--socket", socket])
        #expect(unknown.status == 1 && unknown.stderr.contains("not found"), "stderr: \(unknown.stderr)")
        let again = try Self.json(try CLIRunner.run(["adapters", "list", "--socket", socket, "--json"]))
        #expect((again["adapters"] as? [[String: Any]])?.count == 1)

        // The loop kept stepping and took the swaps; SIGTERM ends it with its summary.
        usleep(300_000)
        serve.terminate()
        serve.waitUntilExit()
        #expect(serve.terminationStatus == 0)
        let summary = try #require(try JSONSerialization.jsonObject(with: out.fileHandleForReading.readDataToEndOfFile()) as? [String: Any])
        #expect((summary["steps"] as? Int ?? 0) > 0 && (summary["swaps"] as? Int ?? 0) >= 1)
        #expect(summary["active_adapters"] as? Int == 1)
        _ = err.fileHandleForReading.readDataToEndOfFile()

        // Nobody listening: exit status 1.
        let gone = try CLIRunner.run(["adapters", "status", "--socket", socket])
        #expect(gone.status == 1 && gone.stderr.contains("cannot talk to the runtime"), "stderr: \(gone.stderr)")
        let usage = try CLIRunner.run(["adapters", "scale", "x", "--socket", socket])
        #expect(usage.status == 2)
    }
}
