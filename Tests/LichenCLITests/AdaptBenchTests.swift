import Foundation
import Testing

/// The CLI contract of `lichen bench adapt`: one JSON document with a result per method and
/// protocol (frame mode once per prediction), consistent figures. (Speeds are not asserted: timing belongs to the benchmark.)
@Suite("lichen bench adapt")
struct AdaptBenchTests {
    @Test func jsonHasEveryMethodAndProtocol() throws {
        let f = try AdaptFramesTests.Fixture()
        let r = try CLIRunner.run(["bench", "adapt", "--model", AdaptCommandTests.model, "--stream", f.stream, "--methods", "source,tent",
                                   "--window", "4", "--every", "2", "--batch", "8", "--frames", "8", "--warmup", "2",
                                   "--runtime-frames", "12", "--json"])
        try #require(r.status == 0, "stderr: \(r.stderr)")
        let doc = try AdaptCommandTests.json(r)
        #expect(doc["benchmark"] as? String == "adapt")
        let results = try #require(doc["results"] as? [[String: Any]])
        let keys = results.map { x in
            "\(x["method"] as? String ?? "?") \(x["protocol"] as? String ?? "?")" + ((x["frame_predict"] as? String).map { " " + $0 } ?? "")
        }
        #expect(keys == ["source frame window", "source frame saved", "source batch", "tent frame window", "tent frame saved", "tent batch"])
        var persistent: [String: Int] = [:]
        for (i, x) in results.enumerated() {
            let p50 = try #require(x["p50_ms"] as? Double), p99 = try #require(x["p99_ms"] as? Double)
            #expect(p50 > 0 && p50 <= p99, "\(x)")
            #expect(try #require(x["frames_per_second"] as? Double) > 0)
            let isFrame = x["protocol"] as? String == "frame"
            #expect(x["frames_per_step"] as? Int == (isFrame ? 1 : 8))
            #expect(x["steps"] as? Int == (isFrame ? 8 : 5), "timed steps: --frames frames, or at least 5 batches")
            #expect(try #require(x["planned_bytes"] as? Int) > 0)
            let rss = try #require(x["process_rss_bytes"] as? Int), peak = try #require(x["process_peak_rss_bytes"] as? Int)
            #expect(rss > 0 && peak >= rss)
            persistent[keys[i]] = x["persistent_bytes"] as? Int
        }
        // Tent keeps snapshots and Adam moments of its trainables on top of what source holds.
        #expect((persistent["tent frame window"] ?? 0) > (persistent["source frame window"] ?? 0), "\(persistent)")
        // The saved prediction adds the saved statistics and the fused models (source: the fused model alone).
        #expect((persistent["tent frame saved"] ?? 0) > (persistent["tent frame window"] ?? 0), "\(persistent)")
        #expect((persistent["source frame saved"] ?? 0) > (persistent["source frame window"] ?? 0), "\(persistent)")
        // The runtime column: every method through Runtime.step, between updates and update frames apart.
        #expect(try #require(doc["fused_source_p50_ms"] as? Double) > 0)
        let runtime = try #require(doc["runtime"] as? [[String: Any]])
        #expect(runtime.compactMap { $0["method"] as? String } == ["source", "tent"])
        for x in runtime {
            let between = try #require(x["between_updates_frames"] as? Int), updates = try #require(x["update_frames"] as? Int)
            // 12 timed frames with window 4, every 2: Tent updates on every other frame; source
            // (fused) runs no update frames.
            let expected = x["method"] as? String == "source" ? 0 : 6
            #expect(between + updates == 12 && updates == expected, "\(x)")
            #expect(try #require(x["between_updates_p50_ms"] as? Double) > 0)
        }
        #expect((persistent["tent batch"] ?? 0) > (persistent["source batch"] ?? 0), "\(persistent)")
    }

    /// Loop mode: every (method, learner) pair once, each tick either stepped or skipped, the
    /// learner's figures only where it ran.
    @Test func loopModeJSON() throws {
        let f = try AdaptFramesTests.Fixture()
        let r = try CLIRunner.run(["bench", "adapt", "--model", AdaptCommandTests.model, "--stream", f.stream, "--methods", "source,tent",
                                   "--window", "4", "--every", "4", "--loop-hz", "100", "--loop-frames", "40", "--json"])
        try #require(r.status == 0, "stderr: \(r.stderr)")
        let doc = try AdaptCommandTests.json(r)
        #expect(doc["benchmark"] as? String == "adapt-loop")
        #expect(doc["loop_hz"] as? Double == 100)
        let results = try #require(doc["results"] as? [[String: Any]])
        let keys = results.map { "\($0["method"] as? String ?? "?") \($0["learner"] as? Bool == true ? "learner" : "step")" }
        #expect(keys == ["source step", "tent step", "tent learner"])
        for x in results {
            let steps = try #require(x["steps"] as? Int), skipped = try #require(x["skipped_ticks"] as? Int)
            #expect(steps >= 1 && steps + skipped >= 40 && steps <= 40, "\(x)")
            let p50 = try #require(x["step_p50_ms"] as? Double), p99 = try #require(x["step_p99_ms"] as? Double)
            let max = try #require(x["step_max_ms"] as? Double)
            #expect(p50 > 0 && p50 <= p99 && p99 <= max)
            let misses = try #require(x["deadline_misses"] as? Int)
            #expect(misses >= 0 && misses <= steps)
            let error = try #require(x["online_error"] as? Double)
            #expect(error >= 0 && error <= 1)
            let learner = x["learner"] as? Bool == true
            #expect((x["learner_lag_max_frames"] is Int) == learner, "\(x)")
        }
        #expect(results[0]["p99_over_source_p99"] as? Double == 1)
        // The reference error (every frame, no clock) is one per method, on every row of it.
        let tentReference = try #require(results[1]["reference_error"] as? Double)
        #expect(tentReference >= 0 && tentReference <= 1 && results[2]["reference_error"] as? Double == tentReference)
        // Source learns nothing: when its paced run skipped no tick it stepped the same frames,
        // so its error is the reference's exactly.
        if results[0]["skipped_ticks"] as? Int == 0 {
            #expect(results[0]["reference_error"] as? Double == results[0]["online_error"] as? Double)
        }
    }

    @Test func usageErrors() throws {
        for args in [["--methods", "nope"], ["--window", "0"], ["--frames", "0"], ["--every", "0"], ["--frame-predict", "batch"],
                     ["--loop-hz", "0"], ["--learner", "maybe"], ["--learner-nice", "30"]] {
            let r = try CLIRunner.run(["bench", "adapt", "--model", AdaptCommandTests.model, "--stream", "/nonexistent"] + args)
            #expect(r.status == 2, "\(args): status \(r.status)")
        }
    }
}
