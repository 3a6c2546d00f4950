import Foundation
import Testing

/// `lichen inspect --method`: the budget each adaptation method takes, checked against what
/// the file says (the norm layers' sizes) and against the step plans inspect prints anyway.
@Suite("lichen inspect --method")
struct InspectMethodTests {
    @Test func budgetsAgreeWithTheModel() throws {
        let r = try CLIRunner.run(["inspect", "--model", AdaptCommandTests.model, "--batch", "8", "--method", "all", "--window", "8", "--json"])
        try #require(r.status == 0, "stderr: \(r.stderr)")
        let doc = try AdaptCommandTests.json(r)
        let methods = try #require(doc["methods"] as? [[String: Any]])
        #expect(methods.compactMap { $0["method"] as? String } == ["source", "bn", "tent", "cotta", "rmt"])
        let tentPersistent = try #require(methods.first { $0["method"] as? String == "tent" }?["session_persistent_bytes"] as? Int)
        // Tent (frugal) trains every norm layer's scale and shift: count them in the tensor list.
        let tensors = try #require(doc["tensors"] as? [[String: Any]])
        var normValues = 0, normLayers = 0
        for t in tensors {
            let name = t["name"] as? String ?? ""
            guard name.hasPrefix("bn"), name.hasSuffix(".weight") || name.hasSuffix(".bias") else { continue }
            normValues += (t["shape"] as? [Int] ?? []).reduce(1, *)
            if name.hasSuffix(".weight") { normLayers += 1 }
        }
        #expect(normValues > 0)
        let step = try #require(doc["step_memory"] as? [String: Any])
        let frameBytes = (doc["input_shape"] as? [Int] ?? []).reduce(1, *) * 4
        for m in methods {
            let name = m["method"] as? String ?? ""
            let planned = try #require(m["planned_step_bytes"] as? Int)
            let persistent = try #require(m["session_persistent_bytes"] as? Int)
            let snapshots = try #require(m["snapshot_bytes"] as? Int), optimizer = try #require(m["optimizer_state_bytes"] as? Int)
            // Frame mode: the ring of 8 frames, and the saved batch statistics (a mean and a
            // variance per norm channel, i.e. normValues floats) of each graph that predicts
            // between updates: none for source, the teacher's for CoTTA, student and teacher for
            // RMT. Each 64-byte-aligned allocation may add padding.
            let graphs = name == "source" ? 0 : name == "rmt" ? 2 : 1
            let frameModeBytes = 8 * frameBytes + graphs * 4 * normValues
            let window = try #require(m["window_bytes"] as? Int)
            #expect(window >= frameModeBytes && window < frameModeBytes + 64 * (1 + 2 * graphs * normLayers),
                    "\(name): the window holds 8 frames and \(graphs) graphs' saved statistics, \(window) bytes")
            // Frame mode predicts between updates through fused batch-1 models (RMT: two).
            let fused = try #require(m["fused_bytes"] as? Int)
            #expect(fused > 0, "\(name): the fused models take budget")
            #expect(try #require(m["total_bytes"] as? Int) >= planned + persistent + frameModeBytes + fused + (m["parameter_bytes_in_budget"] as? Int ?? 0))
            if name == "cotta" || name == "rmt" {
                // Teacher (and CoTTA's anchor) copies, augmentation and projector buffers come on top of Tent's.
                #expect(persistent > tentPersistent, "\(name): \(persistent) vs tent \(tentPersistent)")
            } else if name == "tent" {
                #expect(m["trained_values"] as? Int == normValues)
                #expect(snapshots == 4 * normValues && optimizer == 8 * normValues, "one snapshot, Adam's two moments")
                // Gradients of the trained values come on top of snapshots and moments.
                #expect(persistent >= snapshots + optimizer + 4 * normValues)
                #expect(planned == step["training_planned_bytes"] as? Int, "Tent's graph is the batch-stat training graph")
            } else {
                // Nothing trained; the one persistent value is the adapted state's counter (the
                // session's step count, 8 bytes), which the state file keeps.
                #expect(m["trained_values"] as? Int == 0 && snapshots == 0 && optimizer == 0)
                #expect(persistent == 8, "\(name): the session's step count only, \(persistent) bytes")
                #expect(planned == step["inference_planned_bytes"] as? Int, "\(name): an inference graph")
            }
        }
    }

    /// --learner: the learner's memory is a second set of fused models plus the window snapshot
    /// and its counters; the other columns are those of the synchronous plan.
    @Test func learnerMemory() throws {
        func methods(_ extra: [String]) throws -> [[String: Any]] {
            let r = try CLIRunner.run(["inspect", "--model", AdaptCommandTests.model, "--method", "source,tent,rmt", "--window", "8",
                                       "--json"] + extra)
            try #require(r.status == 0, "stderr: \(r.stderr)")
            return try #require(try AdaptCommandTests.json(r)["methods"] as? [[String: Any]])
        }
        let sync = try methods([]), learner = try methods(["--learner"])
        let frameBytes = 784 * 4
        for (a, b) in zip(sync, learner) {
            let name = a["method"] as? String ?? ""
            #expect(a["learner_bytes"] is NSNull)
            for key in ["planned_step_bytes", "session_persistent_bytes", "window_bytes", "fused_bytes"] {
                #expect(a[key] as? Int == b[key] as? Int, "\(name) \(key)")
            }
            if name == "source" {
                #expect(b["learner_bytes"] is NSNull, "source learns nothing: no learner")
                continue
            }
            let bytes = try #require(b["learner_bytes"] as? Int), fused = try #require(b["fused_bytes"] as? Int)
            #expect(bytes >= fused + 8 * frameBytes, "\(name): a second version and the snapshot, \(bytes) bytes")
            #expect(bytes < fused + 8 * frameBytes + 65536, "\(name): and little else, \(bytes) bytes")
            // The total grows by the learner's bytes; those include the alignment padding before
            // its first buffer, which moves what follows, so the growth may be up to one
            // 64-byte alignment less.
            let grown = try #require(b["total_bytes"] as? Int) - (try #require(a["total_bytes"] as? Int))
            #expect(grown <= bytes && grown > bytes - 64, "\(name): total grew by \(grown), learner \(bytes)")
        }
    }

    @Test func unknownMethodIsAUsageError() throws {
        let r = try CLIRunner.run(["inspect", "--model", AdaptCommandTests.model, "--method", "nope"])
        #expect(r.status == 2 && r.stderr.contains("unknown method 'nope'"), "stderr: \(r.stderr)")
    }
}
