import Foundation
import Testing

/// `lichen bench skills`: the JSON contract (one document, its fields) and the merged and
/// factored paths agreeing. No timing is asserted.
@Suite("lichen bench skills")
struct SkillsSpeedBenchTests {
    @Test("bench skills: one JSON document with p50 / p99 of every measurement; merged equals factored")
    func speedJSON() throws {
        let run = try CLIRunner.run(["bench", "skills", "--seconds", "0.05", "--train-steps", "2", "--train-batch", "8", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let m = try SkillsCommandTests.json(run)
        #expect(m["benchmark"] as? String == "skills" && m["threads"] as? Int == 1 && m["skills"] as? Int == 3 && m["candidates"] as? Int == 1)
        let policy = try #require(m["policy"] as? [String: Any])
        #expect(policy["hidden"] as? Int == 256 && policy["blocks"] as? Int == 3 && policy["diffusion_steps"] as? Int == 5)
        for key in ["factored", "merged", "plain_step", "plain_forward", "alpha_forward", "merge", "alpha_train_step"] {
            let t = try #require(m[key] as? [String: Any], "\(key) missing")
            #expect((t["p50_ms"] as? Double).map { $0 > 0 } == true && (t["p99_ms"] as? Double).map { $0 > 0 } == true, "\(key): \(t)")
            #expect((t["calls"] as? Int ?? 0) >= 2, "\(key): \(t)")
        }
        let diff = try #require(m["max_abs_diff_merged_vs_factored"] as? Double)
        #expect(diff < 1e-3, "merged and factored actions differ by \(diff)")
        #expect((m["skill_bytes"] as? [Int])?.count == 3)
    }
}
