import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// `lichen adapt` frame mode, passes, collapse guard, periodic reset, plot and bad streams, on a
/// tiny custom stream (clean and contrast at severity 5, 24 frames each, seed 3) with the
/// shipped Q8_0 CNN. Expected counts come from the defining rules (adaptation at t >= B with
/// (t - B) % K == 0; a reset every N predictions), not from earlier runs.
@Suite("lichen adapt frames")
struct AdaptFramesTests {
    static let perDomain = 24

    final class Fixture {
        let dir: URL
        let stream: String
        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-adapt-frames-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            stream = dir.appendingPathComponent("s.stream").path
            let make = try CLIRunner.run(["stream", "make", "--kind", "custom", "--domains", "clean,contrast", "--severity", "5",
                                          "--per-domain", String(AdaptFramesTests.perDomain), "--seed", "3", "--out", stream])
            try #require(make.status == 0, "stderr: \(make.stderr)")
        }
        deinit { try? FileManager.default.removeItem(at: dir) }
    }

    static func adapt(_ f: Fixture, _ args: [String]) throws -> [String: Any] {
        let r = try CLIRunner.run(["adapt", "--model", AdaptCommandTests.model, "--stream", f.stream, "--json"] + args)
        try #require(r.status == 0, "\(args): stderr \(r.stderr)")
        return try AdaptCommandTests.json(r)
    }

    static func methods(_ doc: [String: Any]) throws -> [[String: Any]] { try #require(doc["methods"] as? [[String: Any]]) }

    static func errors(_ domains: Any?) throws -> [Double] {
        let list = try #require(domains as? [[String: Any]])
        return try list.map { try #require($0["error"] as? Double) }
    }

    /// Source predicts each frame independently (running statistics), so frame mode and batch
    /// mode give the same errors; passes repeat it; BN-adapt's adaptation count follows the
    /// schedule over both passes (the window carries on from one pass to the next); the plot
    /// draws exactly the JSON's numbers.
    @Test func frameModePassesAndPlot() throws {
        let f = try Fixture()
        let svg = f.dir.appendingPathComponent("p.svg").path
        let frames = try Self.adapt(f, ["--compare", "source,bn", "--window", "4", "--every", "2", "--passes", "2", "--plot", svg])
        let batch = try Self.adapt(f, ["--method", "source", "--batch", "8"])
        #expect(frames["protocol"] as? String == "frame" && frames["window"] as? Int == 4 && frames["every"] as? Int == 2)
        #expect(batch["protocol"] as? String == "batch" && batch["batch"] as? Int == 8)
        let ms = try Self.methods(frames)
        let sourceFrames = try Self.errors(ms[0]["domains"])
        let sourceBatch = try Self.errors(try Self.methods(batch)[0]["domains"])
        #expect(sourceFrames == sourceBatch, "source: frame mode \(sourceFrames) vs batch mode \(sourceBatch)")
        let total = 2 * Self.perDomain * 2  // frames over both passes
        #expect(ms[1]["adaptation_steps"] as? Int == (total - 4) / 2 + 1, "bn adaptation steps: \(ms[1]["adaptation_steps"] ?? "nil")")
        #expect(ms[0]["rejected_frames"] as? Int == 0)

        var expectedBars: [String: Double] = [:]  // "series|category" → value in %
        for m in ms {
            let passes = try #require(m["passes"] as? [[String: Any]])
            #expect(passes.count == 2)
            #expect(try Self.errors(passes[0]["domains"]) == Self.errors(m["domains"]), "the method's domains are pass 1's")
            for p in passes {
                let e = try Self.errors(p["domains"])
                let mean = try #require(p["mean_error"] as? Double)
                #expect(abs(mean - e.reduce(0, +) / Double(e.count)) < 1e-12)
                let name = (m["method"] as? String ?? "") + ", pass \(p["pass"] as? Int ?? 0)"
                for (category, value) in zip(["clean", "contrast", "mean"], e + [mean]) {
                    expectedBars["\(name)|\(category)"] = 100 * value
                }
            }
            if m["method"] as? String == "source" {
                #expect(try Self.errors(passes[0]["domains"]) == Self.errors(passes[1]["domains"]), "source repeats itself")
            }
        }

        final class Collector: NSObject, XMLParserDelegate {
            var bars: [String: String] = [:]
            var legend = 0, axisLabels: [String] = [], inAxisLabel = false, text = ""
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String] = [:]) {
                if name == "rect" && attributes["class"] == "bar" {
                    bars["\(attributes["data-series"] ?? "")|\(attributes["data-category"] ?? "")"] = attributes["data-value"] ?? ""
                }
                if name == "g" && attributes["class"] == "legend" { legend += 1 }
                inAxisLabel = name == "text" && attributes["class"] == "axis-label"
                text = ""
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) { if inAxisLabel { text += string } }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
                if inAxisLabel { axisLabels.append(text) }
                inAxisLabel = false
            }
        }
        let parser = try #require(XMLParser(contentsOf: URL(fileURLWithPath: svg)))
        let collector = Collector()
        parser.delegate = collector
        #expect(parser.parse(), "the plot parses as XML: \(String(describing: parser.parserError))")
        #expect(Set(collector.bars.keys) == Set(expectedBars.keys), "bars \(collector.bars.keys) vs JSON \(expectedBars.keys)")
        for (key, value) in expectedBars {
            let drawn = try #require(collector.bars[key].flatMap { Double($0) }, "bar \(key)")
            #expect(abs(drawn - value) <= 0.005 + 1e-9, "\(key): drawn \(drawn), JSON \(value)")
        }
        #expect(collector.legend == 4, "legend entries: one per series (2 methods x first and last pass)")
        #expect(collector.axisLabels == ["online error (%)", "domain"])
    }

    /// A reset every 10 frames: 9 over 96 predictions; a guard whose bound is the class count
    /// fires whenever its 8-prediction history is full (8 predictions cannot cover 10 classes
    /// evenly): 12 collapse resets over 96 predictions.
    @Test func guardAndPeriodicResetsAreCounted() throws {
        let f = try Fixture()
        let total = 2 * Self.perDomain * 2
        let periodic = try Self.methods(try Self.adapt(f, ["--method", "tent", "--window", "4", "--every", "2", "--passes", "2",
                                                           "--reset-every", "10"]))[0]
        let passes = try #require(periodic["passes"] as? [[String: Any]])
        let perPass = passes.compactMap { $0["periodic_resets"] as? Int }
        #expect(perPass.reduce(0, +) == total / 10 && periodic["resets"] as? Int == total / 10, "periodic resets \(perPass)")
        #expect(passes.compactMap { $0["collapse_resets"] as? Int } == [0, 0])

        let guarded = try Self.adapt(f, ["--method", "bn", "--window", "4", "--passes", "2", "--guard", "10", "--guard-window", "8"])
        let g = try Self.methods(guarded)[0]
        let collapses = try #require(g["passes"] as? [[String: Any]]).compactMap { $0["collapse_resets"] as? Int }
        #expect(collapses.reduce(0, +) == total / 8, "collapse resets \(collapses)")
        let setting = try #require(guarded["guard"] as? [String: Any])
        #expect(setting["min_effective_classes"] as? Double == 10 && setting["window"] as? Int == 8)

        let table = try CLIRunner.run(["adapt", "--model", AdaptCommandTests.model, "--stream", f.stream, "--method", "bn",
                                       "--window", "4", "--passes", "2", "--reset-every", "10"])
        try #require(table.status == 0, "stderr: \(table.stderr)")
        #expect(table.stdout.contains("pass") && table.stdout.contains("resets") && table.stdout.contains("frame mode, window 4, every 4"),
                "table: \(table.stdout)")
        #expect(table.stdout.contains("mean error (%) by pass: bn: "))
        #expect(!table.stderr.contains("["), "no progress bar when stderr is not a terminal: \(table.stderr)")
    }

    /// --frame-predict: both predictions run the same schedule (the same adaptation steps) and
    /// say which they used; with every = window BN-adapt's adaptation frames are predicted by
    /// the same step in both, and source does not depend on it at all.
    @Test func framePrediction() throws {
        let f = try Fixture()
        var docs: [String: [String: Any]] = [:]
        for prediction in ["saved", "window"] {
            docs[prediction] = try Self.adapt(f, ["--compare", "source,bn", "--window", "4", "--every", "4", "--frame-predict", prediction])
            #expect(docs[prediction]?["frame_predict"] as? String == prediction)
        }
        let defaulted = try Self.adapt(f, ["--method", "bn", "--window", "4"])
        #expect(defaulted["frame_predict"] as? String == "saved", "the default prediction")
        let saved = try Self.methods(try #require(docs["saved"])), window = try Self.methods(try #require(docs["window"]))
        #expect(try Self.errors(saved[0]["domains"]) == Self.errors(window[0]["domains"]), "source ignores the prediction")
        let steps = (2 * Self.perDomain - 4) / 4 + 1
        #expect(saved[1]["adaptation_steps"] as? Int == steps && window[1]["adaptation_steps"] as? Int == steps)
        let batch = try Self.adapt(f, ["--method", "source", "--batch", "8"])
        #expect(batch["frame_predict"] is NSNull, "no frame prediction in batch mode")
    }

    @Test func usageErrors() throws {
        for args in [["--window", "4", "--batch", "8"], ["--every", "2"], ["--window", "0"], ["--window", "4", "--every", "0"],
                     ["--passes", "0"], ["--guard", "0"], ["--guard", "-1"], ["--reset-every", "0"], ["--guard-window", "0"],
                     ["--frame-predict", "saved"], ["--window", "4", "--frame-predict", "batch"]] {
            let r = try CLIRunner.run(["adapt", "--model", AdaptCommandTests.model, "--stream", "/nonexistent.stream", "--method", "bn"] + args)
            #expect(r.status == 2, "\(args): status \(r.status), stderr \(r.stderr)")
        }
    }

    /// An empty stream and a stream whose frames have the model's pixel count but not its
    /// geometry (56 x 14 instead of 28 x 28) fail with a message naming the file.
    @Test func badStreamsFailClearly() throws {
        let f = try Fixture()
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: f.stream)))
        func put32(_ value: UInt32, at offset: Int) { for i in 0..<4 { bytes[offset + i] = UInt8((value >> (8 * UInt32(i))) & 0xFF) } }
        func crc32(_ data: ArraySlice<UInt8>) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in data {
                c ^= UInt32(b)
                for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
            }
            return ~c
        }
        let original = bytes
        put32(14, at: 12)
        put32(56, at: 16)
        put32(crc32(bytes[0..<(bytes.count - 4)]), at: bytes.count - 4)
        let wide = f.dir.appendingPathComponent("wide.stream").path
        try Data(bytes).write(to: URL(fileURLWithPath: wide))
        bytes = original
        for i in 32..<40 { bytes[i] = 0 }
        let empty = f.dir.appendingPathComponent("empty.stream").path
        try Data(bytes).write(to: URL(fileURLWithPath: empty))
        for (path, message) in [(wide, "do not fit the input"), (empty, "frame count is zero")] {
            for mode in [["--window", "4"], ["--batch", "8"]] {
                let r = try CLIRunner.run(["adapt", "--model", AdaptCommandTests.model, "--stream", path, "--method", "tent"] + mode)
                #expect(r.status == 1, "\(path) \(mode): status \(r.status)")
                #expect(r.stderr.contains(path) && r.stderr.contains(message), "\(path): stderr \(r.stderr)")
                #expect(r.stdout.isEmpty, "nothing on stdout: \(r.stdout)")
            }
        }
    }
}
