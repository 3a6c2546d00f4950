import Foundation
import Lichen
import Testing

/// Parity between the CLI and the runtime a robot links: `lichen adapt --window W --every K
/// --predictions P` and a loop over the same stream through `Runtime.step` (what `lichen_step`
/// calls) with the same plan and seed predict the same class for every frame, for each
/// method. Both build through `AdaptationPlan.assemble`; CoTTA's threshold and RMT's
/// prototypes, warm-up and replay read the same source pack.
@Suite("CLI and runtime parity")
struct RuntimeParityTests {
    final class Fixture {
        let dir: URL
        let stream: String
        let pack: String
        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-parity-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            stream = dir.appendingPathComponent("s.stream").path
            pack = dir.appendingPathComponent("pack.stream").path
            let make = try CLIRunner.run(["stream", "make", "--kind", "custom", "--domains", "gaussian_noise,contrast", "--severity", "4",
                                          "--per-domain", "40", "--seed", "5", "--out", stream])
            try #require(make.status == 0, "stderr: \(make.stderr)")
            let p = try CLIRunner.run(["source-pack", "--model", AdaptCommandTests.model, "--frames", "64", "--out", pack, "--seed", "2"])
            try #require(p.status == 0, "stderr: \(p.stderr)")
        }
        deinit { try? FileManager.default.removeItem(at: dir) }
    }

    /// (method, extra CLI flags, the same plan for the runtime).
    static func cases(pack: String) -> [(String, [String], AdaptationPlan)] {
        func plan(_ m: AdaptationMethod) -> AdaptationPlan {
            var p = AdaptationPlan(m, framing: .frames(window: 8, every: 4, prediction: .saved), seed: 3)
            p.cottaThreshold = .fromSource(quantile: 0.05, margin: 0.05, frames: 64)
            p.cotta = CoTTA.Configuration(threshold: 0, augmentations: 4, seed: 3)
            p.rmt = RMT.Configuration(warmUpSamples: 16, prototypeSamples: 64, seed: 3)
            p.sourcePack = pack
            p.collapseGuard = AdaptationPlan.Guard(minimumEffectiveClasses: 1.5, window: 32)
            return p
        }
        var tentLoRA = plan(.tent)
        tentLoRA.lora = AdaptationLoRA(rank: 2, targets: ["linear"], seed: 3)
        return [
            ("bn", [], plan(.bnAdapt)),
            ("tent", [], plan(.tent)),
            ("tent", ["--lora-rank", "2", "--lora-targets", "linear"], tentLoRA),
            ("cotta", ["--augmentations", "4"], plan(.cotta)),
            ("rmt", ["--warmup-samples", "16", "--prototype-samples", "64"], plan(.rmt)),
        ]
    }

    @Test("lichen adapt and Runtime.step predict the same class for every frame", arguments: 0..<5)
    func parity(_ index: Int) throws {
        let f = try Fixture()
        let (method, extra, plan) = Self.cases(pack: f.pack)[index]
        let out = f.dir.appendingPathComponent("p.txt").path
        let r = try CLIRunner.run(["adapt", "--model", AdaptCommandTests.model, "--stream", f.stream, "--method", method,
                                   "--window", "8", "--every", "4", "--seed", "3", "--source-pack", f.pack, "--guard", "1.5",
                                   "--guard-window", "32", "--predictions", out, "--json"] + extra)
        try #require(r.status == 0, "stderr: \(r.stderr)")
        let cli = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map { line -> Int in
            Int(line.split(separator: " ")[2]) ?? -2
        }
        let rt = try Runtime(budgetBytes: 64 << 20)
        try rt.loadModel(path: AdaptCommandTests.model)
        try rt.setMethod(plan)
        let file = try StreamFile(path: f.stream)
        let frame = try Arena(byteCount: 4 << 20)
        let x = try frame.persistentTensor(.f32, try Shape(1, 784))
        var runtime: [Int] = []
        var logits = [Float](repeating: 0, count: 10)
        for i in 0..<file.frameCount {
            try file.writeFrames(start: i, count: 1, into: x)
            let k = try logits.withUnsafeMutableBufferPointer { z in
                try rt.step(frame: UnsafeBufferPointer(start: x.floats, count: 784), logits: z)
            }
            runtime.append(k)
        }
        #expect(cli.count == file.frameCount)
        #expect(cli == runtime, "\(method) \(extra): the CLI and the runtime differ at frames \(zip(cli, runtime).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset).prefix(10))")
        let updates = rt.methodFigures().updates
        #expect(method == "bn" || updates == UInt64((file.frameCount - 8) / 4 + 1), "\(method): \(updates) updates")
    }
}
