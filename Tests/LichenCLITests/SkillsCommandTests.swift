import Foundation
import Lichen
import Testing

/// `lichen skills list|add|remove` on a real library folder over the shipped CNN: tables and
/// JSON, the adapter file byte-identical in the library after later adds, and refusals (exit 1,
/// naming the file) for an adapter of another base, a taken name and a bad name.
@Suite("lichen skills")
struct SkillsCommandTests {
    static func model(_ name: String = "fmnist-cnn/fmnist-cnn-q8_0.gguf") -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../models/" + name).standardizedFileURL.path
    }

    static func json(_ outcome: CLIRunner.Outcome) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8))
        return try #require(object as? [String: Any], "stdout is one JSON object: \(outcome.stdout)")
    }

    @Test("add, list (table and JSON), remove; refusals exit 1 and change nothing")
    func addListRemove() throws {
        let dir = "/tmp/lichen-cli-skills-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lib = dir + "/lib", a = dir + "/a.gguf", b = dir + "/b.gguf"
        try AdaptersCommandTests.writeAdapter(a, seed: 1)
        try AdaptersCommandTests.writeAdapter(b, seed: 2)
        let common = ["--library", lib, "--base", Self.model()]

        let added = try CLIRunner.run(["skills", "add", a, "--name", "reach", "--purpose", "reach the goal", "--training-data", "seed 1",
                                       "--evaluation", "return=12.5", "--create", "--json"] + common)
        #expect(added.status == 0, "stderr: \(added.stderr)")
        let m = try Self.json(added)
        #expect(m["name"] as? String == "reach" && m["rank"] as? Int == 2 && m["alpha"] as? Double == 2)
        #expect((m["evaluation"] as? [String: Any])?["score"] as? Double == 12.5)
        let reachBytes = try Data(contentsOf: URL(fileURLWithPath: lib + "/reach.lora.gguf"))

        let second = try CLIRunner.run(["skills", "add", b, "--name", "avoid", "--purpose", "keep clear"] + common)
        #expect(second.status == 0 && second.stdout.hasPrefix("added skill avoid: rank 2, alpha 2.0"), "\(second.stdout) \(second.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: lib + "/reach.lora.gguf")) == reachBytes, "adding changed an existing skill file")

        let table = try CLIRunner.run(["skills", "list"] + common)
        #expect(table.status == 0)
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3 && lines[0].hasPrefix("name") && lines[1].hasPrefix("avoid") && lines[2].hasPrefix("reach"), "\(table.stdout)")
        #expect(lines[2].contains("return 12.5") && lines[2].hasSuffix("reach the goal"))

        // Refusals: a taken name, a bad name, an adapter of another base model.
        let taken = try CLIRunner.run(["skills", "add", b, "--name", "reach"] + common)
        #expect(taken.status == 1 && taken.stderr.contains("duplicate name: two skills are named 'reach'"), "\(taken.stderr)")
        let bad = try CLIRunner.run(["skills", "add", b, "--name", "../x"] + common)
        #expect(bad.status == 1 && bad.stderr.contains("a skill name is a-z"), "\(bad.stderr)")
        let otherBase = try CLIRunner.run(["skills", "list", "--library", lib, "--base", Self.model("fmnist-mlp/fmnist-mlp-f32.gguf")])
        #expect(otherBase.status == 1 && otherBase.stderr.contains("the skill belongs to another base model"), "\(otherBase.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: lib).sorted()
                == ["avoid.lora.gguf", "avoid.skill.gguf", "reach.lora.gguf", "reach.skill.gguf"])

        // compose: both skills adapt fc2 (128 -> 10, rank 2 each: R = 4). Merge 4*128*10 = 5120;
        // factored P * 4 * 138 = 552 P: factored at P = 9 (4968), merged at P = 10 (5520).
        let at9 = try Self.json(try CLIRunner.run(["skills", "compose", "--passes", "9", "--json"] + common))
        let layers9 = try #require(at9["layers"] as? [[String: Any]])
        #expect(layers9.count == 1 && layers9[0]["layer"] as? String == "fc2.weight" && layers9[0]["rank_sum"] as? Int == 4)
        #expect(layers9[0]["merge_cost"] as? Int == 5120 && layers9[0]["factored_cost"] as? Int == 4968 && layers9[0]["path"] as? String == "factored")
        let at10 = try CLIRunner.run(["skills", "compose", "--passes", "10"] + common)
        #expect(at10.status == 0 && at10.stdout.contains("fc2.weight") && at10.stdout.hasSuffix("merged\n"), "\(at10.stdout)")

        let removed = try CLIRunner.run(["skills", "remove", "avoid", "--json"] + common)
        #expect(removed.status == 0)
        #expect(try Self.json(removed)["skills"] as? Int == 1)
        let listed = try Self.json(try CLIRunner.run(["skills", "list", "--json"] + common))
        #expect((listed["skills"] as? [[String: Any]])?.map { $0["name"] as? String } == ["reach"])
        let gone = try CLIRunner.run(["skills", "remove", "avoid"] + common)
        #expect(gone.status == 1 && gone.stderr.contains("not found: skill 'avoid'"), "\(gone.stderr)")
        let badEval = try CLIRunner.run(["skills", "add", b, "--name", "x", "--evaluation", "return"] + common)
        #expect(badEval.status == 2 && badEval.stderr.contains("--evaluation must be METRIC=VALUE"), "\(badEval.stderr)")
    }

    @Test("simulate: deterministic from the seed, JSON fields, the SVG written, a bad expert refused")
    func simulate() throws {
        let dir = "/tmp/lichen-cli-sim-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["skills", "simulate", "--expert", "reach-avoid", "--transitions", "1500", "--seed", "7", "--json"]
        let one = try CLIRunner.run(args + ["--svg", dir + "/a.svg"]), two = try CLIRunner.run(args)
        #expect(one.status == 0 && one.stdout == two.stdout, "\(one.stderr)")
        let m = try Self.json(one)
        #expect((m["transitions"] as? Int ?? 0) >= 1500 && (m["episodes"] as? Int ?? 0) >= 1 && m["expert"] as? String == "reach-avoid")
        let svg = try String(contentsOfFile: dir + "/a.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("class=\"path\""))
        let other = try CLIRunner.run(["skills", "simulate", "--expert", "reach-avoid", "--transitions", "1500", "--seed", "8", "--json"])
        #expect(other.status == 0 && other.stdout != one.stdout)
        let bad = try CLIRunner.run(["skills", "simulate", "--expert", "fly"])
        #expect(bad.status == 2 && bad.stderr.contains("--expert must be one of reach, avoid, heading, reach-avoid"), "\(bad.stderr)")
    }
}
