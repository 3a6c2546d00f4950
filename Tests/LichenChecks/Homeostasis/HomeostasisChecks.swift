import Lichen

/// Checks of the homeostatic learners (Sources/Lichen/Homeostasis): the regulation rule
/// against hand-computed cases, the trial updates against a real SGD update, the learner
/// against an independent step-by-step reference of the authors' loop, LRR and the constant
/// baseline, and bad input.
let homeostasisChecks: [Check] = [
    Check("Homeostasis/Rule", "hand-computed cases: a take that wins, a tie and a loss that leave eta alone, a wrong guess that moves eta the wrong way, the floor") { c in
        let d = 1e-4, floor = 1e-8
        // A take that wins: guess 7 (excitatory) -> trial at 1.1e-3; label 7: eta 1e-3 -> 1.1e-3.
        let take = HomeostaticRule.takeRate(1e-3, guessEffect: .excitatory, step: d, floor: floor)
        c.expect(abs(take - 0.0011) < 1e-15, "take rate of an excitatory guess at 1e-3: " + show(Float(take)))
        let won = HomeostaticRule.decide(1e-3, leaveCorrect: 11, takeCorrect: 12, trueEffect: .excitatory, step: d, floor: floor)
        c.expect(abs(won - 0.0011) < 1e-15, "take wins 12 > 11, true label excitatory: " + show(Float(won)))
        // A tie leaves eta exactly where it was; so does a loss.
        c.expect(HomeostaticRule.decide(1e-3, leaveCorrect: 15, takeCorrect: 15, trueEffect: .excitatory, step: d, floor: floor) == 1e-3,
                 "a tie (15 = 15) moved eta")
        c.expect(HomeostaticRule.decide(1e-3, leaveCorrect: 16, takeCorrect: 15, trueEffect: .inhibitory, step: d, floor: floor) == 1e-3,
                 "a loss (15 < 16) moved eta")
        // A wrong guess: guess 7 (excitatory) made the winning trial raise eta to 1.1e-3, but the
        // true label 2 is inhibitory, so eta goes down to 0.9e-3.
        let wrong = HomeostaticRule.decide(1e-3, leaveCorrect: 3, takeCorrect: 4, trueEffect: .inhibitory, step: d, floor: floor)
        c.expect(abs(wrong - 0.0009) < 1e-15 && wrong < 1e-3 && take > 1e-3,
                 "wrong guess: trial went up, eta must go down to 9e-4: " + show(Float(wrong)))
        // The floor: 5e-5 - 1e-4 < 1e-8 -> 1e-8, for the take trial and for the applied effect;
        // at the floor an inhibitory effect stays there, an excitatory one adds Delta to it.
        c.expect(HomeostaticRule.takeRate(5e-5, guessEffect: .inhibitory, step: d, floor: floor) == 1e-8, "take trial below the floor")
        c.expect(HomeostaticRule.decide(5e-5, leaveCorrect: 0, takeCorrect: 1, trueEffect: .inhibitory, step: d, floor: floor) == 1e-8,
                 "applied effect below the floor")
        c.expect(HomeostaticRule.moved(1e-8, by: .inhibitory, step: d, floor: floor) == 1e-8, "inhibitory at the floor")
        c.expect(abs(HomeostaticRule.moved(1e-8, by: .excitatory, step: d, floor: floor) - 1.0001e-4) < 1e-18, "excitatory from the floor")
        // Exactly Delta above zero lands on 0, below the floor: raised to it.
        c.expect(HomeostaticRule.moved(1e-4, by: .inhibitory, step: 1e-4, floor: floor) == 1e-8, "a move to exactly 0 is floored")
        // No upper bound; a neutral class does nothing.
        c.expect(HomeostaticRule.moved(10, by: .excitatory, step: 1, floor: floor) == 11, "no upper bound")
        c.expect(HomeostaticRule.moved(0.25, by: .neutral, step: 1, floor: floor) == 0.25, "neutral effect")
        // The paper's map.
        let map = HomeostasisConfiguration.paperEffects(classCount: 10)
        var ok = map.count == 10
        for k in 0..<map.count where map[k] != (k >= 5 ? ClassEffect.excitatory : .inhibitory) { ok = false }
        c.expect(ok, "paper effects: classes 0-4 inhibitory, 5-9 excitatory")
        let policies: [(String, LearningRatePolicy)] = [("lrh", .homeostatic), ("lrr", .random), ("constant", .constant)]
        for (name, policy) in policies {
            c.expect(LearningRatePolicy(name: name) == policy && policy.name == name, "policy name " + name)
        }
        c.expect(LearningRatePolicy(name: "LRH") == nil, "policy names are lower case")
    },

    Check("Homeostasis/Model", "the paper's MLP (784-80-60-10, elu): parameters from ParameterInitializer, a training graph, and the inference path's logits equal the graph's") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 16 << 20)
            let spec = ModelSpec.homeostaticMLP
            let store = ParameterStore(arena: arena)
            try ParameterInitializer.initialize(spec, into: store, seed: 12)
            c.expect(store.count == 6 && store.trainableValueCount == 784 * 80 + 80 + 80 * 60 + 60 + 60 * 10 + 10, "parameter count")
            let graph = try Graph(spec: spec, store: store, batchSize: 3, arena: arena, options: GraphOptions(training: true))
            c.expect(graph.outputShape.dimensions == [10] && graph.layerCount == 5, "output [10], 5 layers")
            let inference = try InferenceModel(spec: spec, store: store, batchSize: 3, arena: arena)
            var rng = SplitMix64(seed: 13)
            let x = CheckMemory.floats(rng.floats(3 * 784, 0, 1))
            let a = try graph.forward(input: try x.view(.f32, [3, 784])).toArray()
            let b = try inference.forward(input: try x.view(.f32, [3, 784])).toArray()
            graphExpectAllClose(&c, b, a.map { Double($0) }, atol: 1e-5, rtol: 1e-5, "inference vs graph logits")
        }
    },

    Check("Homeostasis/Learner", "the trial updates equal a real SGD update with that eta (weights bit for bit, score; both trials in one pass alike); the partial gradient is the minibatch sum (finite differences)") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 41)
            let (graph, arena) = try homeostasisTinyModel(&rng, batch: 1)
            let config = HomeostasisConfiguration(policy: .constant, initialLearningRate: 0.05, minibatch: 8, memory: 4,
                                                  effects: [.inhibitory, .excitatory, .excitatory])
            let learner = try HomeostaticLearner(graph: graph, configuration: config, arena: arena)
            let samples = homeostasisSamples(&rng, count: 5)
            for (x, y) in samples {
                let m = CheckMemory.floats(x)
                _ = try learner.learn(frame: try m.view(.f32, [6]), label: y)
            }
            c.expect(learner.samplesInMinibatch == 5 && learner.updateCount == 0, "5 samples gathered, no update yet")
            let store = graph.store
            var before: [[Float]] = []
            for k in 0..<store.count { before.append(try store[k].value.toArray()) }
            // The partial gradient: d/dw of the summed cross-entropy of the 5 samples, by central differences.
            let eval = try Graph(spec: graph.spec, store: store, batchSize: 5, arena: arena)
            var all: [Float] = []
            for (x, _) in samples { all += x }
            let allMemory = CheckMemory.floats(all)
            func summedLoss() throws(LichenError) -> Double {
                let z = try eval.forward(input: try allMemory.view(.f32, [5, 6])).toArray()
                var total = 0.0
                for b in 0..<5 {
                    var mx = Double(z[b * 3])
                    for j in 1..<3 { mx = max(mx, Double(z[b * 3 + j])) }
                    var s = 0.0
                    for j in 0..<3 { s += homeostasisExp(Double(z[b * 3 + j]) - mx) }
                    total += -(Double(z[b * 3 + samples[b].1]) - mx - homeostasisLog(s))
                }
                return total
            }
            for k in 0..<store.count {
                guard let g = store[k].gradient else { continue }
                let analytic = try g.toArray()
                var probe = SplitMix64(seed: UInt64(90 + k))
                for _ in 0..<4 {
                    let j = Int(probe.next() % UInt64(analytic.count))
                    let e: Float = 1e-2
                    let keep = before[k][j]
                    try store[k].value.withFloats { (v) throws(LichenError) in v[j] = keep + e }
                    let lp = try summedLoss()
                    try store[k].value.withFloats { (v) throws(LichenError) in v[j] = keep - e }
                    let lm = try summedLoss()
                    try store[k].value.withFloats { (v) throws(LichenError) in v[j] = keep }
                    let fd = Float((lp - lm) / (2 * Double(e)))
                    c.expectClose(analytic[j], fd, absolute: 3e-3, relative: 3e-2, store[k].name + " partial gradient (sum over the 5 samples)")
                }
            }
            // Trial "take it" at eta' = 0.37, "leave it" at 0.05; the model is untouched.
            try learner.writeTrial(1, learningRate: 0.37)
            try learner.writeTrial(0, learningRate: 0.05)
            let takeScore = try learner.scoreTrial(1)
            var trial: [[Float]] = []
            for k in 0..<store.count {
                c.expect(try store[k].value.toArray() == before[k], store[k].name + ": writing a trial changed the model")
                if let t = learner.trialValue(1, parameter: k) { trial.append(try t.toArray()) } else { trial.append([]) }
            }
            // Both trials in one pass: the same bits as the two writes.
            var leaveTrial: [[Float]] = []
            for k in 0..<store.count { leaveTrial.append(try learner.trialValue(0, parameter: k)?.toArray() ?? []) }
            try learner.writeTrials(leave: 0.05, take: 0.37)
            for k in 0..<store.count {
                let leave = try learner.trialValue(0, parameter: k)?.toArray() ?? []
                let take = try learner.trialValue(1, parameter: k)?.toArray() ?? []
                c.expect(leave == leaveTrial[k] && take == trial[k], store[k].name + ": writeTrials differs from writeTrial 0 and 1")
            }
            // The real update with that eta: SGD at eta' / m over the same gradients.
            var trainables: [TrainableParameter] = []
            try store.forEachTrainable { (_, value, gradient) throws(LichenError) in
                trainables.append(TrainableParameter(value: value, gradient: gradient))
            }
            let sgd = try SGD(parameters: trainables, groups: [SGD.Group(learningRate: Float(0.37 / 8.0))], arena: arena)
            try sgd.step()
            for k in 0..<store.count {
                c.expect(try store[k].value.toArray() == trial[k], store[k].name + ": trial 'take it' differs from the real update")
            }
            // Its score: the updated model on the last 4 samples (1...4).
            var memoryFrames: [Float] = []
            for b in 1..<5 { memoryFrames += samples[b].0 }
            let mm = CheckMemory.floats(memoryFrames)
            let z = try eval.forward(input: try mm.view(.f32, [4, 6])).toArray()
            var right = 0
            for b in 0..<4 where homeostasisArgmax(z, row: b, classes: 3) == samples[b + 1].1 { right += 1 }
            c.expect(takeScore == right, "trial score \(takeScore), the updated model gets \(right) of 4")
            c.expect(learner.trialValue(0, parameter: 0) != nil && learner.trialValue(2, parameter: 0) == nil, "trial index check")
            withExtendedLifetime(allMemory) {}
        }
    },

    Check("Homeostasis/Learner", "LRH matches an independent step-by-step reference of the authors' loop (eta after every sample, decisions, final weights); samples in batches match samples one by one") { c in
        checking(&c) { c throws(LichenError) in
            let effects: [ClassEffect] = [.inhibitory, .excitatory, .inhibitory]
            // A large Delta against eta so the two trials often score differently.
            let config = HomeostasisConfiguration(policy: .homeostatic, initialLearningRate: 0.6, step: 0.5, minibatch: 5, interval: 3,
                                                  memory: 4, effects: effects)
            var rng = SplitMix64(seed: 43)
            let samples = homeostasisSamples(&rng, count: 90)
            var initRng = SplitMix64(seed: 44)
            let (graph, arena) = try homeostasisTinyModel(&initRng, batch: 1)
            let learner = try HomeostaticLearner(graph: graph, configuration: config, arena: arena)
            var rates: [Double] = []
            var takes = 0, ties = 0, wrongWay = 0, decisions = 0
            var lastSeen = -1
            for (x, y) in samples {
                let m = CheckMemory.floats(x)
                let guess = try learner.learn(frame: try m.view(.f32, [6]), label: y)
                rates.append(learner.learningRate)
                if let d = learner.lastDecision, d.sampleIndex != lastSeen {
                    lastSeen = d.sampleIndex
                    decisions += 1
                    c.expect(d.sampleIndex > 4 && d.sampleIndex % 3 == 0, "decision at sample \(d.sampleIndex)")
                    c.expect(d.guess == guess && d.label == y, "decision guess/label")
                    c.expect(d.takeRate == HomeostaticRule.takeRate(d.rateBefore, guessEffect: effects[d.guess], step: 0.5, floor: 1e-8),
                             "take rate from the guess")
                    c.expect(d.rateAfter == HomeostaticRule.decide(d.rateBefore, leaveCorrect: d.leaveCorrect, takeCorrect: d.takeCorrect,
                                                                   trueEffect: effects[d.label], step: 0.5, floor: 1e-8), "rule applied")
                    if d.takeCorrect > d.leaveCorrect {
                        takes += 1
                        if effects[d.guess] != effects[d.label] { wrongWay += 1 }
                    } else if d.takeCorrect == d.leaveCorrect {
                        ties += 1
                    }
                }
            }
            c.expect(decisions == 28, "decisions at 6, 9, ..., 87 (28 of them): \(decisions)")
            c.expect(takes > 0 && ties > 0 && wrongWay > 0, "the run covers wins (\(takes)), ties (\(ties)) and wrong-way moves (\(wrongWay))")
            var refRng = SplitMix64(seed: 44)
            let reference = try homeostasisReference(&refRng, samples: samples, config: config)
            var same = reference.rates.count == rates.count
            for i in 0..<min(rates.count, reference.rates.count) where rates[i] != reference.rates[i] { same = false }
            c.expect(same, "eta after every sample equals the reference's")
            for k in 0..<graph.store.count {
                graphExpectAllClose(&c, try graph.store[k].value.toArray(), reference.weights[k].map { Double($0) }, atol: 0, rtol: 0,
                                    graph.store[k].name + " final weights vs reference")
            }
            // The same samples given as 9 batches of 10 rows, through a graph built for batch 8.
            var batchRng = SplitMix64(seed: 44)
            let (graph8, arena8) = try homeostasisTinyModel(&batchRng, batch: 8)
            let batched = try HomeostaticLearner(graph: graph8, configuration: config, arena: arena8)
            var correctBatched = 0
            for chunk in 0..<9 {
                var xs: [Float] = [], ys: [Float] = []
                for b in 0..<10 {
                    xs += samples[chunk * 10 + b].0
                    ys.append(Float(samples[chunk * 10 + b].1))
                }
                let xm = CheckMemory.floats(xs), ym = CheckMemory.floats(ys)
                correctBatched += try batched.learn(frames: try xm.view(.f32, [10, 6]), labels: try ym.view(.f32, [10]))
            }
            c.expect(batched.learningRate == learner.learningRate && batched.decisionCount == learner.decisionCount
                     && batched.takenCount == learner.takenCount,
                     "batched: eta " + show(Float(batched.learningRate)) + ", one by one " + show(Float(learner.learningRate)))
            c.expect(correctBatched == reference.correct, "online correct count, batched \(correctBatched), reference \(reference.correct)")
            for k in 0..<graph.store.count {
                graphExpectAllClose(&c, try graph8.store[k].value.toArray(), reference.weights[k].map { Double($0) }, atol: 1e-5, rtol: 1e-4,
                                    graph.store[k].name + " batched vs one by one")
            }
        }
    },

    Check("Homeostasis/Learner", "LRR moves eta by the true label's effect on about half its decisions, at every interval from sample 1 on; the constant policy never decides") { c in
        checking(&c) { c throws(LichenError) in
            let effects: [ClassEffect] = [.inhibitory, .excitatory, .excitatory]
            var rng = SplitMix64(seed: 45)
            let samples = homeostasisSamples(&rng, count: 400)
            for policy in [LearningRatePolicy.random, .constant] {
                var initRng = SplitMix64(seed: 46)
                let (graph, arena) = try homeostasisTinyModel(&initRng, batch: 4)
                let config = HomeostasisConfiguration(policy: policy, initialLearningRate: 0.01, step: 0.001, minibatch: 4, interval: 2,
                                                      memory: 6, effects: effects, seed: 9)
                let learner = try HomeostaticLearner(graph: graph, configuration: config, arena: arena)
                var lastSeen = -1, moved = 0, decisions = 0
                for (x, y) in samples {
                    let m = CheckMemory.floats(x)
                    _ = try learner.learn(frame: try m.view(.f32, [6]), label: y)
                    if let d = learner.lastDecision, d.sampleIndex != lastSeen {
                        lastSeen = d.sampleIndex
                        decisions += 1
                        c.expect(d.sampleIndex != 0 && d.sampleIndex % 2 == 0, "LRR decision at \(d.sampleIndex)")
                        let effect = HomeostaticRule.moved(d.rateBefore, by: effects[d.label], step: 0.001, floor: 1e-8)
                        c.expect(d.rateAfter == d.rateBefore || d.rateAfter == effect, "LRR moves by the true label's effect or not at all")
                        if d.rateAfter != d.rateBefore { moved += 1 }
                    }
                }
                if policy == .random {
                    c.expect(decisions == 199, "LRR decisions at 2, 4, ..., 398: \(decisions)")
                    c.expect(moved >= 70 && moved <= 130, "LRR took \(moved) of \(decisions) (a fair coin)")
                } else {
                    c.expect(decisions == 0 && learner.learningRate == 0.01 && learner.updateCount == 100, "constant: no decision, eta stays, 100 updates")
                }
            }
        }
    },

    Check("Homeostasis/Learner", "remembered labels follow a swap; startEpoch restarts the schedule; bad input throws the exact error and learns nothing") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 47)
            let (graph, arena) = try homeostasisTinyModel(&rng, batch: 2)
            let config = HomeostasisConfiguration(policy: .homeostatic, initialLearningRate: 0.1, minibatch: 3, interval: 5, memory: 4,
                                                  effects: [.inhibitory, .excitatory, .excitatory])
            let learner = try HomeostaticLearner(graph: graph, configuration: config, arena: arena)
            let samples = homeostasisSamples(&rng, count: 6)
            for (x, y) in samples {
                let m = CheckMemory.floats(x)
                _ = try learner.learn(frame: try m.view(.f32, [6]), label: y)
            }
            // The remembered samples are 2...5; score the current weights before and after a swap.
            try learner.writeTrial(0, learningRate: 0)
            let eval = try Graph(spec: graph.spec, store: graph.store, batchSize: 4, arena: arena)
            var frames: [Float] = []
            for b in 2..<6 { frames += samples[b].0 }
            let fm = CheckMemory.floats(frames)
            let z = try eval.forward(input: try fm.view(.f32, [4, 6])).toArray()
            var plain = 0, swapped = 0
            for b in 0..<4 {
                let p = homeostasisArgmax(z, row: b, classes: 3), y = samples[b + 2].1
                if p == y { plain += 1 }
                if p == (y == 0 ? 2 : y == 2 ? 0 : y) { swapped += 1 }
            }
            c.expect(try learner.scoreTrial(0) == plain, "score before the swap")
            try learner.swapRememberedLabels(0, 2)
            c.expect(try learner.scoreTrial(0) == swapped, "score after swapping classes 0 and 2: \(swapped)")
            c.expectThrows(.invalidArgument(name: "b", value: 3, reason: "must be a class index"), "swap with class 3") {
                () throws(LichenError) in try learner.swapRememberedLabels(0, 3)
            }
            // Bad input.
            let index = learner.sampleIndex, rate = learner.learningRate
            let good = CheckMemory.floats(samples[0].0)
            c.expectThrows(.invalidArgument(name: "label", value: 3, reason: "must be a class index in 0..<classCount"), "label 3") {
                () throws(LichenError) in try learner.learn(frame: try good.view(.f32, [6]), label: 3)
            }
            let short = CheckMemory.floats([1, 2, 3, 4, 5])
            c.expectThrows(.shapeMismatch(operand: "frame", dimension: -1, expected: 6, got: 5), "5-value frame") {
                () throws(LichenError) in try learner.learn(frame: try short.view(.f32, [5]), label: 0)
            }
            var nanFrame = samples[0].0
            nanFrame[4] = Float.nan
            let nan = CheckMemory.floats(nanFrame)
            c.expectThrows(.nonFiniteValue(operand: "frames", index: 4), "NaN frame") {
                () throws(LichenError) in try learner.learn(frame: try nan.view(.f32, [6]), label: 0)
            }
            let two = CheckMemory.floats(samples[0].0 + samples[1].0), badLabels = CheckMemory.floats([1, 1.5])
            c.expectThrows(.invalidArgument(name: "labels", value: 1, reason: "label of this row is not a class index in 0..<classCount"),
                           "label 1.5") { () throws(LichenError) in
                try learner.learn(frames: try two.view(.f32, [2, 6]), labels: try badLabels.view(.f32, [2]))
            }
            c.expect(learner.sampleIndex == index && learner.learningRate == rate, "a refused sample was learned")
            // startEpoch: the next decision comes at index 5 + ... > memory again.
            try learner.startEpoch()
            c.expect(learner.sampleIndex == 0 && learner.samplesInMinibatch == 0, "startEpoch resets the schedule")
            // Construction errors.
            c.expectThrows(.shapeMismatch(operand: "effects", dimension: 0, expected: 3, got: 10), "paper map on 3 classes") {
                () throws(LichenError) in
                try HomeostaticLearner(graph: graph, configuration: HomeostasisConfiguration(policy: .homeostatic), arena: arena)
            }
            c.expectThrows(.invalidArgument(name: "graph", value: 0, reason: "the learner needs a graph built for training"), "inference graph") {
                () throws(LichenError) in try HomeostaticLearner(graph: eval, configuration: config, arena: arena)
            }
            var badFloor = config
            badFloor.floor = 0
            c.expectThrows(.invalidArgument(name: "floor", value: 0, reason: "must be finite and > 0"), "floor 0") {
                () throws(LichenError) in try HomeostaticLearner(graph: graph, configuration: badFloor, arena: arena)
            }
            withExtendedLifetime((good, short, nan, two, badLabels, fm)) {}
        }
    },
]

// MARK: - Support

/// input [6] · fc1 (6→5) · elu · fc2 (5→3): a small homeostatic-style MLP with seeded parameters.
func homeostasisTinyModel(_ rng: inout SplitMix64, batch: Int) throws(LichenError) -> (Graph, Arena) {
    let spec = graphSpec([6], [graphLayer(.linear, "fc1", [-1]) { $0.outputs = 5 }, graphLayer(.elu, "a1", [0]),
                               graphLayer(.linear, "fc2", [1]) { $0.outputs = 3 }])
    let arena = try Arena(byteCount: 8 << 20)
    let store = ParameterStore(arena: arena)
    try store.add(name: "fc1.weight", role: .weight, shape: try Shape(5, 6), values: rng.floats(30, -0.8, 0.8))
    try store.add(name: "fc1.bias", role: .bias, shape: try Shape(5), values: rng.floats(5, -0.5, 0.5))
    try store.add(name: "fc2.weight", role: .weight, shape: try Shape(3, 5), values: rng.floats(15, -0.8, 0.8))
    try store.add(name: "fc2.bias", role: .bias, shape: try Shape(3), values: rng.floats(3, -0.5, 0.5))
    let graph = try Graph(spec: spec, store: store, batchSize: batch, arena: arena, options: GraphOptions(training: true))
    return (graph, arena)
}

/// Seeded samples: 6 values in [0, 1] and a label in 0..<3 that depends on them (so learning helps).
func homeostasisSamples(_ rng: inout SplitMix64, count: Int) -> [([Float], Int)] {
    var out: [([Float], Int)] = []
    for _ in 0..<count {
        let x = rng.floats(6, 0, 1)
        let label = x[0] + x[1] > x[2] + x[3] ? (x[4] > 0.5 ? 1 : 0) : 2
        out.append((x, label))
    }
    return out
}

func homeostasisArgmax(_ z: [Float], row: Int, classes: Int) -> Int {
    var best = 0
    for j in 1..<classes where z[row * classes + j] > z[row * classes + best] { best = j }
    return best
}

func homeostasisExp(_ x: Double) -> Double { graphRefExp(x) }

/// Natural log by Newton's method on exp (x > 0), for the loss in the gradient check.
func homeostasisLog(_ x: Double) -> Double {
    var y = 0.0
    var v = x
    while v > 2 { v /= 2.718281828459045; y += 1 }
    while v < 0.5 { v *= 2.718281828459045; y -= 1 }
    var t = v - 1
    for _ in 0..<40 { t -= 1 - v / graphRefExp(t) }
    return y + t
}

/// The authors' loop (lrh.py), written out sample by sample over a batch-1 training graph, a
/// trial graph over its own copies of the weights and a plain list of remembered samples.
func homeostasisReference(_ rng: inout SplitMix64, samples: [([Float], Int)], config: HomeostasisConfiguration)
    throws(LichenError) -> (rates: [Double], weights: [[Float]], correct: Int)
{
    let (graph, arena) = try homeostasisTinyModel(&rng, batch: 1)
    let store = graph.store
    let trialStore = ParameterStore(arena: arena)
    for k in 0..<store.count {
        try trialStore.add(name: store[k].name, role: store[k].role, copying: store[k].value, trainable: false)
    }
    let trialGraph = try Graph(spec: graph.spec, store: trialStore, batchSize: config.memory, arena: arena)
    let classes = 3, m = config.minibatch
    let dz = CheckMemory(byteCount: classes * 4)
    var eta = config.initialLearningRate
    var rates: [Double] = [], remembered: [([Float], Int)] = []
    var correct = 0
    try store.zeroGradients()
    func trialScore(_ rate: Double) throws(LichenError) -> Int {
        let lr = Float(rate / Double(m))
        for k in 0..<store.count {
            let v = try store[k].value.toArray(), g = try store[k].gradient?.toArray() ?? []
            var t = v
            for j in 0..<t.count { t[j] = v[j] - lr * g[j] }
            try trialStore[k].value.copy(from: t)
        }
        var xs: [Float] = []
        let recent = remembered.suffix(config.memory)
        for (x, _) in recent { xs += x }
        let xm = CheckMemory.floats(xs)
        let z = try trialGraph.forward(input: try xm.view(.f32, [config.memory, 6])).toArray()
        var right = 0
        for (b, (_, y)) in recent.enumerated() where homeostasisArgmax(z, row: b, classes: classes) == y { right += 1 }
        return right
    }
    for (i, (x, y)) in samples.enumerated() {
        let xm = CheckMemory.floats(x)
        let logits = try graph.forward(input: try xm.view(.f32, [1, 6]))
        let z = try logits.toArray()
        let guess = homeostasisArgmax(z, row: 0, classes: classes)
        if guess == y { correct += 1 }
        let dzv = try dz.view(.f32, [1, classes])
        try graph.kernels.softmaxRows(logits, into: dzv)
        dz.floats[y] -= 1
        try graph.backward(outputGradient: dzv)
        if i > config.memory && i % config.interval == 0 {
            let take = HomeostaticRule.takeRate(eta, guessEffect: config.effects[guess], step: config.step, floor: config.floor)
            let leaveScore = try trialScore(eta)
            let takeScore = try trialScore(take)
            if takeScore > leaveScore {
                eta = HomeostaticRule.moved(eta, by: config.effects[y], step: config.step, floor: config.floor)
            }
        }
        remembered.append((x, y))
        if (i + 1) % m == 0 {
            let lr = Float(eta / Double(m))
            for k in 0..<store.count {
                guard let g = store[k].gradient else { continue }
                let gv = try g.toArray()
                try store[k].value.withFloats { (v) throws(LichenError) in
                    for j in 0..<gv.count { v[j] -= lr * gv[j] }
                }
            }
            try store.zeroGradients()
        }
        rates.append(eta)
    }
    var weights: [[Float]] = []
    for k in 0..<store.count { weights.append(try store[k].value.toArray()) }
    return (rates, weights, correct)
}
