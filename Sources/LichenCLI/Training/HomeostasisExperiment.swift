import Foundation
import Lichen

/// The homeostatic learners' protocol on Fashion-MNIST (research/methods.md 2.2 and 2.4; the
/// authors' `lrh.py` / `lrr.py`): the paper's MLP, learned online by a `HomeostaticLearner`
/// in minibatches, with concept shifts (two classes swap labels, train and test alike) spaced
/// evenly through each epoch.
struct HomeostasisExperiment {
    struct Settings {
        var configuration: HomeostasisConfiguration
        /// Swaps per epoch for each epoch (a constant rate, or the expanded block schedule).
        var swapsPerEpoch: [Int]
        var trainExamples: Int
        var testExamples: Int
        /// η samples kept for the trace: one every `traceEvery` minibatches.
        var traceEvery: Int
    }

    struct Epoch {
        var epoch: Int
        var swapRate: Int
        var swaps: Int
        var trainAccuracy: Double
        var testAccuracy: Double
        var rateEnd: Double
        var rateMin: Double
        var rateMax: Double
        var rateMean: Double
        var decisions: Int
        var taken: Int
        /// Wall time of the epoch's training pass (data preparation, learning, swaps), and of the test pass.
        var trainSeconds: Double
        var testSeconds: Double
    }

    struct SwapEvent {
        var epoch: Int
        /// Samples seen in the epoch when the swap happened.
        var sample: Int
        var a: Int
        var b: Int
    }

    struct Run {
        var seed: UInt64
        var epochs: [Epoch] = []
        var swapEvents: [SwapEvent] = []
        /// (epoch position as a fraction: epoch − 1 + samples / N, η).
        var rateTrace: [(Double, Double)] = []
        var arenaBytes = 0
    }

    let settings: Settings
    let train: FashionMNIST
    let test: FashionMNIST
    let arena: Arena

    /// One seed of the protocol.
    func run(seed: UInt64, progress: Bool, log: (String) -> Void) throws -> Run {
        let c = settings.configuration
        let m = c.minibatch
        let mark = arena.lowEndMark()
        defer { try? arena.resetLowEnd(to: mark) }
        let spec = ModelSpec.homeostaticMLP
        let store = ParameterStore(arena: arena)
        try naming("model") { () throws(LichenError) in try HomeostasisExperiment.initialize(spec, into: store, seed: seed) }
        var configuration = c
        configuration.seed = seed &* 0x9E37_79B9_7F4A_7C15 &+ 0x4C52_52  // LRR's coin, apart from the other streams
        let evalBatch = 500
        let (learner, evalGraph, frames, labels, order, evalFrames, evalLabels) = try naming("model") { () throws(LichenError) in
            let graph = try Graph(spec: spec, store: store, batchSize: m, arena: arena, options: GraphOptions(training: true))
            let learner = try HomeostaticLearner(graph: graph, configuration: configuration, arena: arena)
            let evalGraph = try Graph(spec: spec, store: store, batchSize: evalBatch, arena: arena)
            let frames = try arena.persistentTensor(.f32, try Shape(m, 784))
            let labels = try arena.persistentTensor(.f32, try Shape(m))
            let order = try SeededPermutation(count: train.count, arena: arena)
            let evalFrames = try arena.persistentTensor(.f32, try Shape(evalBatch, 784))
            let evalLabels = try arena.persistentTensor(.f32, try Shape(evalBatch))
            return (learner, evalGraph, frames, labels, order, evalFrames, evalLabels)
        }
        var result = Run(seed: seed)
        result.arenaBytes = learner.arenaBytes
        // The current label of each original class (the identity until the first swap).
        var labelMap = Array(0..<10)
        var swapRandom = SplitMix64Random(seed: seed &* 0xD1B5_4A32_D192_ED03 &+ 0x5357_4150)
        let n = settings.trainExamples
        let batches = n / m
        for (e, rate) in settings.swapsPerEpoch.enumerated() {
            let epoch = e + 1
            let bar = ProgressBar("seed \(seed) epoch \(epoch)/\(settings.swapsPerEpoch.count)", total: batches * m, enabled: progress)
            let start = now()
            order.shuffle(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch))
            try naming("learner") { () throws(LichenError) in try learner.startEpoch() }
            let decisionsBefore = learner.decisionCount, takenBefore = learner.takenCount
            var correct = 0, swaps = 0
            var rateMin = learner.learningRate, rateMax = learner.learningRate, rateSum = 0.0
            let spacing = rate == 0 ? 0 : n / rate
            for j in 0..<batches {
                correct += try naming("epoch \(epoch), minibatch \(j)") { () throws(LichenError) in
                    try train.writeBatch(order: order, start: j * m, images: frames, labels: labels)
                    let y = try labels.f32Elements("labels")
                    for i in 0..<m { y[i] = Float(labelMap[Int(y[i])]) }
                    return try learner.learn(frames: frames, labels: labels)
                }
                let eta = learner.learningRate
                rateMin = min(rateMin, eta)
                rateMax = max(rateMax, eta)
                rateSum += eta
                let seen = (j + 1) * m
                if j % settings.traceEvery == 0 { result.rateTrace.append((Double(e) + Double(seen) / Double(n), eta)) }
                // lrh.py: after the update, `if swapsperepoch != 0 and j != 0 and sampleidx % (num_train // swapsperepoch) == 0`.
                if rate != 0 && j != 0 && spacing > 0 && seen % spacing == 0 {
                    let a = Int(swapRandom.next(below: 10))
                    var b = Int(swapRandom.next(below: 9))
                    if b >= a { b += 1 }
                    for k in 0..<10 {
                        if labelMap[k] == a { labelMap[k] = b } else if labelMap[k] == b { labelMap[k] = a }
                    }
                    try naming("learner") { () throws(LichenError) in try learner.swapRememberedLabels(a, b) }
                    result.swapEvents.append(SwapEvent(epoch: epoch, sample: seen, a: a, b: b))
                    swaps += 1
                }
                bar.update(seen, suffix: "eta " + String(format: "%.2e", eta))
            }
            bar.finish()
            let trainSeconds = now() - start
            let testStart = now()
            var testCorrect = 0
            var s = 0
            while s < settings.testExamples {
                let k = min(evalBatch, settings.testExamples - s)
                testCorrect += try naming("test") { () throws(LichenError) in
                    let x = try evalFrames.leadingRows(0, count: k), y = try evalLabels.leadingRows(0, count: k)
                    try test.writeBatch(start: s, images: x, labels: y)
                    let ys = try y.f32Elements("labels")
                    for i in 0..<k { ys[i] = Float(labelMap[Int(ys[i])]) }
                    let logits = try evalGraph.forward(input: x)
                    return try HomeostasisExperiment.countCorrect(logits, ys, rows: k)
                }
                s += k
            }
            let record = Epoch(epoch: epoch, swapRate: rate, swaps: swaps, trainAccuracy: Double(correct) / Double(batches * m),
                               testAccuracy: Double(testCorrect) / Double(settings.testExamples), rateEnd: learner.learningRate,
                               rateMin: rateMin, rateMax: rateMax, rateMean: rateSum / Double(max(batches, 1)),
                               decisions: learner.decisionCount - decisionsBefore, taken: learner.takenCount - takenBefore,
                               trainSeconds: trainSeconds, testSeconds: now() - testStart)
            result.epochs.append(record)
            log("seed \(seed) epoch \(epoch): \(swaps) swaps, online train accuracy \(fixed(100 * record.trainAccuracy, 2)) %, "
                + "test accuracy \(fixed(100 * record.testAccuracy, 2)) %, eta \(String(format: "%.3e", record.rateEnd)) "
                + "(min \(String(format: "%.2e", rateMin)), max \(String(format: "%.2e", rateMax))), "
                + "\(record.taken)/\(record.decisions) decisions taken, \(fixed(trainSeconds, 2)) s train + \(fixed(record.testSeconds, 2)) s test")
        }
        return result
    }

    static func countCorrect(_ logits: TensorView, _ labels: F32Elements, rows: Int) throws(LichenError) -> Int {
        let z = try logits.f32Elements("logits")
        let classes = z.count / rows
        var correct = 0
        for r in 0..<rows {
            var best = 0
            for j in 1..<classes where z[r * classes + j] > z[r * classes + best] { best = j }
            if Float(best) == labels[r] { correct += 1 }
        }
        return correct
    }

    /// The authors' initialisation (`initialize_parameters`): weights N(0, 2 / fan_in), biases
    /// N(0, 1), drawn from `seed` (Box-Muller over SplitMix64, the same values everywhere).
    static func initialize(_ spec: ModelSpec, into store: ParameterStore, seed: UInt64) throws(LichenError) {
        var random = SplitMix64Random(seed: seed)
        func gaussian() -> Double {
            let u1 = (Double(random.next() >> 11) + 1) * (1.0 / 9_007_199_254_740_992.0)  // (0, 1]
            let u2 = Double(random.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
            return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
        }
        var width = spec.inputShape.elementCount ?? 0
        for layer in spec.layers where layer.kind == .linear {
            let fanIn = width, out = layer.outputs
            let std = (2.0 / Double(fanIn)).squareRoot()
            var w = [Float](repeating: 0, count: out * fanIn)
            for i in 0..<w.count { w[i] = Float(gaussian() * std) }
            var b = [Float](repeating: 0, count: out)
            for i in 0..<b.count { b[i] = Float(gaussian()) }
            try store.add(name: layer.name + ".weight", role: .weight, shape: try Shape(out, fanIn), values: w)
            try store.add(name: layer.name + ".bias", role: .bias, shape: try Shape(out), values: b)
            width = out
        }
    }
}
