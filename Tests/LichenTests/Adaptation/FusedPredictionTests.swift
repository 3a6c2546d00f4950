import Foundation
import Lichen
import LichenChecks
import Testing

/// Frames between updates through the fused path equal the graph's saved-statistics prediction,
/// for every method through its real session (BN-adapt and Tent: the student; CoTTA: the EMA
/// teacher; RMT: student + teacher): two frame adapters over twin sessions step the same frames,
/// one with fused prediction and one without. Updates are the same on both (prediction does not
/// change state), so every frame's logits are compared: bit for bit on update frames, within the
/// fold's rounding between updates (1e-4 of the logit range + 1 for f32 weights, 2e-2 for Q8_0,
/// whose folded block scales round to fp16: the refold checks' bounds).
@Suite("Fused prediction")
struct FusedPredictionTests {
    static let cases: [(String, String)] = [
        ("fmnist-cnn-f32.gguf", "source"), ("fmnist-cnn-f32.gguf", "bn"), ("fmnist-cnn-f32.gguf", "tent"),
        ("fmnist-cnn-f32.gguf", "cotta"), ("fmnist-cnn-f32.gguf", "rmt"),
        ("fmnist-cnn-q8_0.gguf", "source"), ("fmnist-cnn-q8_0.gguf", "bn"), ("fmnist-cnn-q8_0.gguf", "tent"),
        ("fmnist-cnn-q8_0.gguf", "cotta"), ("fmnist-cnn-q8_0.gguf", "rmt"),
    ]

    /// The frame adapter, and the model file whose mapping its quantized weights are read from.
    static func adapter(_ file: String, _ method: AdaptationMethod, fused: Bool) throws -> (FrameAdapter, GGUFFile) {
        let gguf = try GGUFFile(path: StepAllocationTests.modelPath(file))
        let spec = try ModelFile.readSpec(gguf)
        let arena = try Arena(byteCount: 96 << 20)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(gguf, spec: spec, into: store, trainable: false)
        var plan = AdaptationPlan(method, framing: .frames(window: 8, every: 4, prediction: .saved), cottaThreshold: .given(0.6),
                                  fusedPrediction: fused)
        plan.cotta = CoTTA.Configuration(threshold: 0, augmentations: 2)
        plan.rmt = RMT.Configuration(projectionDimension: 16, warmUpSamples: 16, prototypeSamples: 16)
        let running = try plan.assemble(spec: spec, store: store, arena: arena,
                                        source: StepAllocationTests.RandomSource(classes: spec.classCount))
        return (try #require(running.frames), gguf)
    }

    @Test("the fused path predicts what the graph's saved statistics predict", arguments: 0..<cases.count)
    func fusedEqualsGraph(_ index: Int) throws {
        let (file, name) = Self.cases[index]
        let method = try #require(AdaptationMethod(name: name))
        let (fused, fusedFile) = try Self.adapter(file, method, fused: true)
        let (graph, graphFile) = try Self.adapter(file, method, fused: false)
        defer { withExtendedLifetime((fusedFile, graphFile)) {} }
        #expect(fused.fused != nil && graph.fused == nil)
        let tolerance: Float = file.contains("f32") ? 1e-4 : 2e-2
        let arena = try Arena(byteCount: 4 << 20)
        let x = try arena.persistentTensor(.f32, try Shape(1, 1, 28, 28))
        var rng = SplitMix64(seed: 17)
        var worst: Float = 0
        for t in 0..<40 {
            // Frames of a shifted distribution (brighter, noisy), so batch statistics matter.
            try x.copy(from: (0..<784).map { _ in min(1, 0.3 + 0.7 * rng.nextUnit()) })
            let a = try fused.step(frame: x).toArray()
            let b = try graph.step(frame: x).toArray()
            let range = (b.max() ?? 0) - (b.min() ?? 0)
            let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            worst = max(worst, diff / (range + 1))
            if fused.lastFrameAdapted {
                #expect(a == b, "\(name) \(file) frame \(t): an update frame's logits differ")
            } else {
                #expect(diff <= tolerance * (range + 1), "\(name) \(file) frame \(t): \(diff) over a range of \(range)")
            }
        }
        // Source on the fused path never runs the window's forward (it learns nothing).
        #expect(graph.adaptationCount == (40 - 8) / 4 + 1)
        #expect(fused.adaptationCount == (method == .source ? 0 : graph.adaptationCount), "\(name): \(fused.adaptationCount) updates")
        #expect(fused.fusedPredictionCount > 0 && graph.fusedPredictionCount == 0, "\(name): \(fused.fusedPredictionCount) fused predictions")
        if let f = fused.fused, method != .source { #expect(f.refoldCount >= 1 && f.refusedRefoldCount == 0) }
        print("\(name) \(file): worst fused-vs-graph difference \(worst) of the logit range + 1")
    }
}
