import Foundation
import Testing

/// `lichen homeostasis run` on a few hundred Fashion-MNIST samples: the JSON contract, the
/// protocol's counts (swaps, decisions), the plot's swap marks, determinism from the seed, and
/// usage errors.
@Suite("lichen homeostasis run")
struct HomeostasisCommandTests {
    static func json(_ outcome: CLIRunner.Outcome) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8))
        return try #require(object as? [String: Any], "stdout is one JSON object: \(outcome.stdout)")
    }

    @Test func lrhJSONAndPlot() throws {
        let plot = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-homeostasis-\(getpid()).svg").path
        defer { try? FileManager.default.removeItem(atPath: plot) }
        let outcome = try CLIRunner.run(["homeostasis", "run", "--learner", "lrh", "--swaps", "5", "--epochs", "2", "--seeds", "2",
                                         "--limit", "500", "--test-limit", "200", "--json", "--plot", plot])
        try #require(outcome.status == 0, "stderr: \(outcome.stderr)")
        let doc = try Self.json(outcome)
        #expect(doc["learner"] as? String == "lrh")
        #expect(doc["train_examples_per_epoch"] as? Int == 500)
        let runs = try #require(doc["runs"] as? [[String: Any]])
        #expect(runs.count == 2)
        for run in runs {
            let epochs = try #require(run["epochs"] as? [[String: Any]])
            #expect(epochs.count == 2)
            for e in epochs {
                // Swaps every 500 / 5 = 100 samples, checked after each minibatch of 10 (not after the first).
                #expect(e["swaps"] as? Int == 5)
                // LRH decides at samples 30, 40, ..., 490 of each epoch (index > 20, a multiple of 10).
                #expect(e["decisions"] as? Int == 47)
                let train = try #require(e["train_accuracy"] as? Double), test = try #require(e["test_accuracy"] as? Double)
                #expect(train >= 0 && train <= 1 && test >= 0 && test <= 1)
                #expect((e["train_seconds"] as? Double ?? 0) > 0)
                let low = try #require(e["rate_min"] as? Double), high = try #require(e["rate_max"] as? Double)
                #expect(low >= 1e-8 && low <= high)
            }
            let events = try #require(run["swap_events"] as? [[Int]])
            #expect(events.count == 10)
            #expect(events.allSatisfy { $0[1] % 100 == 0 && $0[2] != $0[3] && (0..<10).contains($0[2]) && (0..<10).contains($0[3]) })
        }
        let summary = try #require(doc["summary"] as? [String: Any])
        #expect(summary["last_epochs"] as? Int == 2)
        let test = try #require(summary["test_accuracy"] as? [String: Any])
        #expect(test["n"] as? Int == 2)
        let svg = try String(contentsOfFile: plot, encoding: .utf8)
        #expect(svg.components(separatedBy: "class=\"event\"").count - 1 == 10, "one mark per swap of the first seed")
        #expect(svg.contains("class=\"trace\""))
    }

    @Test func sameSeedSameRun() throws {
        let args = ["homeostasis", "run", "--learner", "lrr", "--swaps", "3", "--epochs", "1", "--limit", "300", "--test-limit", "100",
                    "--seed", "7", "--json"]
        let a = try Self.json(try CLIRunner.run(args)), b = try Self.json(try CLIRunner.run(args))
        func strip(_ doc: [String: Any]) throws -> [[String: Any]] {
            let run = try #require((doc["runs"] as? [[String: Any]])?.first)
            var epochs = try #require(run["epochs"] as? [[String: Any]])
            for i in 0..<epochs.count {
                epochs[i]["train_seconds"] = nil
                epochs[i]["test_seconds"] = nil
            }
            return epochs
        }
        #expect(NSArray(array: try strip(a)).isEqual(to: try strip(b)), "two runs from seed 7 differ")
        let ra = (a["runs"] as? [[String: Any]])?.first?["rate_trace"] as? [[Double]]
        let rb = (b["runs"] as? [[String: Any]])?.first?["rate_trace"] as? [[Double]]
        #expect(ra != nil && ra == rb)
    }

    @Test func severalLearnersInOneRun() throws {
        let outcome = try CLIRunner.run(["homeostasis", "run", "--learner", "lrh,constant", "--epochs", "1", "--limit", "200",
                                         "--test-limit", "50", "--json"])
        try #require(outcome.status == 0, "stderr: \(outcome.stderr)")
        let doc = try Self.json(outcome)
        let learners = try #require(doc["learners"] as? [[String: Any]])
        #expect(learners.map { $0["learner"] as? String } == ["lrh", "constant"])
        let speeds = try #require(doc["train_seconds_per_epoch"] as? [String: Double])
        #expect(Set(speeds.keys) == ["lrh", "constant"] && speeds.values.allSatisfy { $0 > 0 })
        // The constant learner never decides; LRH decides at 30, 40, ..., 190.
        let decisions = learners.map { (($0["runs"] as? [[String: Any]])?.first?["epochs"] as? [[String: Any]])?.first?["decisions"] as? Int }
        #expect(decisions == [17, 0])
    }

    @Test(arguments: [["--learner", "foo"], ["--learner", "lrh,lrh"], ["--learner", "lrh", "--schedule", "0,x"], ["--learner", "lrh", "--excitatory", "5,12"],
                      ["--learner", "lrh", "--limit", "5"]])
    func usageErrors(_ args: [String]) throws {
        let outcome = try CLIRunner.run(["homeostasis", "run"] + args)
        #expect(outcome.status == 2, "stderr: \(outcome.stderr)")
        #expect(outcome.stdout.isEmpty)
    }
}
