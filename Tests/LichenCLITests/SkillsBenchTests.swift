import Foundation
import Testing

/// `lichen skills bench`: the JSON contract (one document, its fields) at tiny sizes, the same
/// output for the same seed. No result is asserted (the sizes are far too small to learn).
@Suite("lichen skills bench")
struct SkillsBenchTests {
    @Test("skills bench: tiny sizes, the JSON shape, the same output for the same seed, another for another seed")
    func benchmarkJSON() throws {
        let dir = "/tmp/lichen-cli-skills-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tiny = ["skills", "bench", "--seeds", "2", "--episodes", "2", "--demos", "2", "--transitions", "100", "--base-steps", "3",
                    "--skill-steps", "3", "--alpha-steps", "3", "--task-steps", "3", "--batch", "4", "--max-steps", "4", "--json"]
        let one = try CLIRunner.run(tiny + ["--seed", "5", "--svg", dir + "/psec.svg"])
        #expect(one.status == 0, "stderr: \(one.stderr)")
        let two = try CLIRunner.run(tiny + ["--seed", "5"])
        #expect(two.status == 0 && two.stdout == one.stdout, "two runs with seed 5 differ")
        let m = try SkillsCommandTests.json(one)
        #expect(m["command"] as? String == "skills bench" && m["seeds"] as? Int == 2 && m["episodes"] as? Int == 2 && m["demos"] as? Int == 2)
        let methods = try #require(m["methods"] as? [[String: Any]])
        #expect(methods.map { $0["name"] as? String } == ["expert", "base", "psec", "nsec", "asec", "fixed-alpha", "new-lora", "scratch"])
        #expect(methods.map { $0["mix_level"] as? String } == ["-", "-", "parameter", "noise", "action", "parameter", "-", "-"])
        for method in methods {
            for key in ["return_mean", "return_std", "return_seed_std", "cost_mean", "cost_std", "reached_fraction"] {
                #expect(method[key] is Double || method[key] is Int, "\(method["name"] ?? "?"): \(key) is not a number")
            }
            #expect((method["per_seed"] as? [[String: Any]])?.count == 2)
        }
        let fixed = try #require(m["fixed_alpha"] as? [[Double]])
        #expect(fixed.count == 2 && fixed.allSatisfy { $0.count == 3 && $0.allSatisfy { [0, 0.5, 1].contains($0) } })
        let library = try #require(m["library"] as? [String: Any])
        #expect((library["skills"] as? [[String: Any]])?.map { $0["name"] as? String } == ["reach", "avoid", "heading"])
        let svg = try String(contentsOfFile: dir + "/psec.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("class=\"path\""))
        let other = try CLIRunner.run(tiny + ["--seed", "6"])
        #expect(other.status == 0 && other.stdout != one.stdout)
        let bad = try CLIRunner.run(["skills", "bench", "--seeds", "0"])
        #expect(bad.status == 2 && bad.stderr.contains("--seeds must be in 1...1000"), "\(bad.stderr)")
    }
}
