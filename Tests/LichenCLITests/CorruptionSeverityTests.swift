import Foundation
import Testing

/// The corruptions hurt the shipped source model more as severity rises: on a fixed subset
/// (200 test images per domain, seed 1), the mean error over the 15 domains rises strictly from
/// severity 1 to 5, every corruption's error at 5 is above its error at 1, and no step down
/// between neighbouring severities exceeds 3 points (the sampling noise of 200 images; measured
/// drops: pixelate 14.0 -> 11.5 and jpeg 10.0 -> 8.5 at severities 3 -> 4).
/// The pixel-change side of the same property is in LichenStreamsTests.
@Suite("Corruption severity vs the source model")
struct CorruptionSeverityTests {
    @Test func sourceErrorRisesWithSeverity() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-severity-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = ShippedModelsTests.path("cnn", "q8_0")
        var errors: [[Double]] = []  // [severity][domain]
        var means: [Double] = []
        var names: [String] = []
        for severity in 1...5 {
            let stream = dir.appendingPathComponent("s\(severity).stream").path
            let make = try CLIRunner.run(["stream", "make", "--kind", "continual", "--severity", String(severity),
                                          "--per-domain", "200", "--seed", "1", "--out", stream])
            #expect(make.status == 0, "stderr: \(make.stderr)")
            let eval = try CLIRunner.run(["eval", "--model", model, "--stream", stream, "--json"])
            #expect(eval.status == 0, "stderr: \(eval.stderr)")
            let doc = try ShippedModelsTests.json(eval)
            let domains = try #require(doc["domains"] as? [[String: Any]])
            #expect(domains.count == 15)
            errors.append(try domains.map { try #require($0["error"] as? Double) })
            names = domains.compactMap { $0["name"] as? String }
            means.append(try #require(doc["mean_error"] as? Double))
        }
        for s in 1..<5 {
            #expect(means[s] > means[s - 1], "mean error \(means[s - 1]) at severity \(s) -> \(means[s]) at \(s + 1)")
        }
        for d in 0..<15 {
            #expect(errors[4][d] > errors[0][d], "\(names[d]): error \(errors[0][d]) at severity 1, \(errors[4][d]) at 5")
            for s in 1..<5 {
                #expect(errors[s][d] >= errors[s - 1][d] - 0.03,
                        "\(names[d]): error \(errors[s - 1][d]) at severity \(s) -> \(errors[s][d]) at \(s + 1)")
            }
        }
    }
}
