import Foundation
import Testing

/// `lichen cues sim|show|bench`: the JSON contract (exactly one document), determinism from the
/// seeds, the stereo-failure rule seen from the CLI, the plots, and usage errors.
@Suite("lichen cues")
struct CuesCommandTests {
    static func json(_ outcome: CLIRunner.Outcome) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8))
        return try #require(object as? [String: Any], "stdout is one JSON object: \(outcome.stdout)")
    }

    static let short = ["--seeds", "1", "--rooms", "1", "--learn-seconds", "60", "--test-seconds", "60", "--failure-seconds", "60"]

    @Test func simJSONIsOneDocumentAndRepeats() throws {
        let args = ["cues", "sim", "--protocols", "A,D-stereo", "--json"] + Self.short
        let first = try CLIRunner.run(args)
        try #require(first.status == 0, "stderr: \(first.stderr)")
        let doc = try Self.json(first)
        #expect(doc["command"] as? String == "cues sim" && doc["seeds"] as? Int == 1 && doc["rooms"] as? Int == 1)
        let protocols = try #require(doc["protocols"] as? [[String: Any]])
        #expect(protocols.map { $0["protocol"] as? String } == ["A", "D-stereo"])
        for p in protocols {
            let collisions = try #require(p["collisions_per_minute"] as? [String: Any])
            #expect((collisions["mean"] as? Double ?? -1) >= 0 && collisions["n"] as? Int == 1)
        }
        // Stereo-only flight after the failure: the last valid target holds for the 10-tick timeout
        // (2 s at 5 Hz), then no cue may drive and the drone stops.
        let flown = try #require(protocols[1]["seconds_flown_after_failure"] as? [String: Any])
        #expect(flown["mean"] as? Double == 2)
        #expect(protocols[0]["seconds_flown_after_failure"] is NSNull)
        let second = try CLIRunner.run(args)
        #expect(second.stdout == first.stdout, "the same seeds fly the same runs")
    }

    @Test func showWritesBothPlots() throws {
        let dir = FileManager.default.temporaryDirectory
        let plot = dir.appendingPathComponent("lichen-cues-\(getpid()).svg").path
        let roc = dir.appendingPathComponent("lichen-cues-roc-\(getpid()).svg").path
        defer {
            try? FileManager.default.removeItem(atPath: plot)
            try? FileManager.default.removeItem(atPath: roc)
        }
        let outcome = try CLIRunner.run(["cues", "show", "--protocol", "D-ssl", "--learn-seconds", "60", "--failure-seconds", "60",
                                         "--plot", plot, "--roc", roc, "--json"])
        try #require(outcome.status == 0, "stderr: \(outcome.stderr)")
        let doc = try Self.json(outcome)
        let phases = try #require(doc["phases"] as? [[String: Any]])
        #expect(phases.map { $0["phase"] as? String } == ["learn", "failure"])
        for path in [plot, roc] {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.hasPrefix("<svg") && text.hasSuffix("</svg>\n"), "\(path)")
        }
        let top = try String(contentsOfFile: plot, encoding: .utf8)
        #expect(top.contains("polyline") && top.contains("stereo drives"))
    }

    @Test func benchJSON() throws {
        for args in [["cues", "bench"], ["bench", "cues"]] {
            let outcome = try CLIRunner.run(args + ["--ticks", "300", "--json"])
            try #require(outcome.status == 0, "stderr: \(outcome.stderr)")
            let doc = try Self.json(outcome)
            // Ten 64-byte-aligned f32 blocks: 2 x 2435 x 21, 5 x 2435, 2 x 5, 5 -> 2 x 204544 + 5 x 9792 + 3 x 64.
            #expect(doc["threads"] as? Int == 1 && doc["arena_bytes"] as? Int == 458_240)
            // 300 ticks at one sample each after a full buffer: a retrain every 200 samples.
            #expect((doc["ticks"] as? Int ?? 0) + (doc["retrains"] as? Int ?? 0) == 300)
            #expect((doc["retrains"] as? Int ?? 0) >= 1)
            for key in ["tick_p50_us", "tick_p99_us", "retrain_p50_ms", "texton_feature_us"] {
                #expect((doc[key] as? Double ?? 0) > 0, "\(key)")
            }
        }
    }

    @Test func usageErrors() throws {
        let unknown = try CLIRunner.run(["cues", "sim", "--protocols", "E"])
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown protocol 'E'"))
        let short = try CLIRunner.run(["cues", "sim", "--test-seconds", "10"])
        #expect(short.status != 0 && short.stderr.contains("--test-seconds must be in 60...86400"))
        let ticks = try CLIRunner.run(["cues", "bench", "--ticks", "5"])
        #expect(ticks.status != 0 && ticks.stderr.contains("--ticks must be in 200...1000000"))
    }
}
