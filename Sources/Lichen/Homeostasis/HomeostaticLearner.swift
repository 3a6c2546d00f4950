/// One decision of a regulating learner, as taken: what it saw, what the trials scored and
/// where η ended (for logs, plots and checks).
public struct HomeostaticDecision: Sendable, Equatable {
    /// The sample index the decision was taken at (counted since construction or `startEpoch()`).
    public var sampleIndex: Int
    /// The class the network predicted for that sample (before any update), and its true label.
    public var guess: Int
    public var label: Int
    /// η before the decision and after it.
    public var rateBefore: Double
    public var rateAfter: Double
    /// LRH: the rate of the "take it" trial, and how many of the remembered samples each trial
    /// update classified right. LRR: the take rate is η moved by the true label's effect, and
    /// both counts are -1 (nothing is scored; `rateAfter` differs when the coin said take).
    public var takeRate: Double
    public var leaveCorrect: Int
    public var takeCorrect: Int
}

/// A supervised online learner whose learning rate η is an internal state it regulates
/// (Man, Damasio, Neven, arXiv 2205.08645; research/methods.md section 2): a wrapper over a
/// Lichen model (a training `Graph` and its `ParameterStore`) and plain SGD.
///
/// Each sample, in order (the authors' `lrh.py`):
///
/// 1. forward: the prediction (the class with the largest logit, the first on a tie) is made
///    with the weights as they are, before this sample's update;
/// 2. backward of softmax cross-entropy: the sample's gradient `(softmax(z) − onehot(y))`
///    through the graph is added to the minibatch's running sum;
/// 3. at a decision index i (LRH: i > memory and i a multiple of interval): "leave it" writes
///    `w − (η / m) Σ∇` into trial buffer 0, "take it" writes `w − (η' / m) Σ∇` into trial buffer 1
///    with η' = η ± Δ by the effect of the *predicted* class (floored), where Σ∇ is the partial
///    minibatch gradient so far (sample i included); each trial network classifies the last
///    `memory` samples (i − memory ... i − 1, with their labels as they are now); if "take it"
///    got strictly more right, η moves by the effect of the sample's *true* label (floored).
///    LRR instead, at i != 0 and i a multiple of interval, flips a fair coin and on heads
///    applies the true label's effect. The constant policy never decides;
/// 4. the sample joins the memory (a ring of the last `memory` frames and labels);
/// 5. after `minibatch` samples: `w ← w − (η / m) Σ∇` (plain SGD at rate η / m, the same
///    arithmetic as `SGD.step` without momentum or decay), then Σ∇ = 0.
///
/// Samples can be given one at a time (`learn(frame:label:)`, what a runtime calls per labelled
/// frame) or many at once (`learn(frames:labels:predictions:)`), which cuts them into forward /
/// backward batches at decision and minibatch boundaries; both give the same decisions and
/// updates (up to the summation order of the products).
///
/// Memory: the two trial weight buffers (a copy of every trainable parameter each), two
/// inference graphs over them built for a batch of `memory`, the memory ring and a logit
/// gradient row block all come from the arena at construction. A step allocates nothing.
///
/// The parameters trained are those trainable in the store at construction; they must stay
/// trainable. The graph must be built for training, without LoRA adapters, its output one
/// logit per class.
public final class HomeostaticLearner {
    public let graph: Graph
    public let configuration: HomeostasisConfiguration
    public let classCount: Int
    /// η now.
    public private(set) var learningRate: Double
    /// Samples seen since construction or the last `startEpoch()`: the index of the next sample.
    public private(set) var sampleIndex = 0
    /// Samples in the minibatch being gathered (0 ..< minibatch).
    public private(set) var samplesInMinibatch = 0
    /// Updates applied since construction.
    public private(set) var updateCount = 0
    /// Decisions taken since construction, and how many took the effect (LRH: "take it" won;
    /// LRR: the coin said take), whether or not the floor let η move.
    public private(set) var decisionCount = 0
    public private(set) var takenCount = 0
    /// The last decision, or nil before the first.
    public private(set) var lastDecision: HomeostaticDecision?
    /// Bytes of the arena the learner took at construction (trial buffers, trial graphs' step
    /// regions, the memory ring, scratch).
    public let arenaBytes: Int

    /// Store indices of the trained parameters, their values and gradients.
    private let trainedIndices: [Int]
    private let values: [TensorView]
    private let gradients: [TensorView]
    /// Trial weights: 0 = "leave it", 1 = "take it"; aligned with `values`.
    private let leaveValues: [TensorView]
    private let takeValues: [TensorView]
    private let leaveGraph: Graph
    private let takeGraph: Graph
    /// The last `memory` samples: frames `[memory, input...]` and labels `[memory]` (class indices as f32).
    private let memoryFrames: TensorView
    private let memoryLabels: TensorView
    /// Samples remembered since construction (the ring's write position is this modulo memory).
    private var rememberedCount = 0
    /// `[batchSize, classes]` d loss / d logits of one forward batch.
    private let logitGradient: TensorView
    /// One frame `[1, input...]` and its label, for `learn(frame:label:)`.
    private let singleFrameShape: Shape
    private let singleLabel: TensorView
    private let perSampleValues: Int
    private var random: SplitMix64Random

    /// - Parameters:
    ///   - graph: a graph built with `GraphOptions(training: true)` over the model's store; its
    ///     batch size bounds the forward batches (1 is enough: samples are then taken one by one).
    ///   - configuration: the policy and its constants (`validate()` is called).
    ///   - arena: trial buffers, trial graphs and the memory come from its low end.
    /// - Throws: what `HomeostasisConfiguration.validate()` throws;
    ///   `.invalidArgument(name: "graph", ...)` for a graph not built for training, with adapters,
    ///   without a trainable parameter, or whose output is not one logit per class;
    ///   `.shapeMismatch(operand: "effects", ...)` when the effect map's length is not the class
    ///   count; `.budgetExceeded`.
    /// - Note: Allocates (construction only).
    public init(graph: Graph, configuration: HomeostasisConfiguration, arena: Arena) throws(LichenError) {
        try configuration.validate()
        guard graph.options.training else {
            throw .invalidArgument(name: "graph", value: 0, reason: "the learner needs a graph built for training")
        }
        guard graph.adapters == nil else {
            throw .invalidArgument(name: "graph", value: 1, reason: "the learner trains the store's parameters; remove the LoRA adapters")
        }
        let out = graph.outputShape
        guard out.rank == 1 && out[0] >= 1 else {
            throw .invalidArgument(name: "graph", value: out.rank, reason: "the output must be one logit per class ([classes])")
        }
        let classes = out[0]
        guard configuration.effects.count == classes else {
            throw .shapeMismatch(operand: "effects", dimension: 0, expected: classes, got: configuration.effects.count)
        }
        let before = arena.stats.lowUsedBytes
        let store = graph.store
        var indices: [Int] = [], values: [TensorView] = [], gradients: [TensorView] = []
        try store.forEachTrainable { (index, value, gradient) throws(LichenError) in
            indices.append(index)
            values.append(value)
            gradients.append(gradient)
        }
        guard !indices.isEmpty else {
            throw .invalidArgument(name: "graph", value: 0, reason: "the store has no trainable parameter")
        }
        // Two trial stores: trained parameters get a buffer of their own, the rest are shared read-only.
        var leave: [TensorView] = [], take: [TensorView] = []
        let leaveStore = ParameterStore(arena: arena), takeStore = ParameterStore(arena: arena)
        for k in 0..<store.count {
            let p = store[k]
            if indices.contains(k) {
                let a = try arena.persistentTensor(.f32, p.value.shape)
                let b = try arena.persistentTensor(.f32, p.value.shape)
                try a.copy(from: p.value)
                try b.copy(from: p.value)
                try leaveStore.adopt(name: p.name, role: p.role, view: a, writable: true)
                try takeStore.adopt(name: p.name, role: p.role, view: b, writable: true)
                leave.append(a)
                take.append(b)
            } else {
                try leaveStore.adopt(name: p.name, role: p.role, view: p.value)
                try takeStore.adopt(name: p.name, role: p.role, view: p.value)
            }
        }
        let trialOptions = GraphOptions(batchNormMode: graph.options.batchNormMode)
        leaveGraph = try Graph(spec: graph.spec, store: leaveStore, batchSize: configuration.memory, arena: arena,
                               options: trialOptions, kernels: graph.kernels)
        takeGraph = try Graph(spec: graph.spec, store: takeStore, batchSize: configuration.memory, arena: arena,
                              options: trialOptions, kernels: graph.kernels)
        let input = graph.spec.inputShape.dimensions
        var perSample = 1
        for d in input { perSample *= d }
        memoryFrames = try arena.persistentTensor(.f32, try Shape(dimensions: [configuration.memory] + input))
        memoryLabels = try arena.persistentTensor(.f32, try Shape(dimensions: [configuration.memory]))
        logitGradient = try arena.persistentTensor(.f32, try Shape(dimensions: [graph.batchSize, classes]))
        singleLabel = try arena.persistentTensor(.f32, try Shape(dimensions: [1]))
        singleFrameShape = try Shape(dimensions: [1] + input)
        try store.zeroGradients()
        self.graph = graph
        self.configuration = configuration
        self.classCount = classes
        self.learningRate = configuration.initialLearningRate
        self.trainedIndices = indices
        self.values = values
        self.gradients = gradients
        self.leaveValues = leave
        self.takeValues = take
        self.perSampleValues = perSample
        self.random = SplitMix64Random(seed: configuration.seed)
        self.arenaBytes = arena.stats.lowUsedBytes - before
    }

    // MARK: - Learning

    /// Learns from one labelled sample (steps 1-5 of the type's comment) and returns the class
    /// predicted for it before its update.
    ///
    /// - Parameters:
    ///   - frame: f32 holding one sample's input values (`[input...]` or `[1, input...]`).
    ///   - label: the true class, 0 ..< classCount.
    /// - Throws: `.invalidArgument(name: "label", ...)`; `.shapeMismatch(operand: "frame", ...)`
    ///   for a frame of another size; `.nonFiniteValue(operand: "frames", ...)`;
    ///   `.unsupportedElementType`. Nothing is learned when it throws.
    /// - Note: Allocates nothing.
    @discardableResult
    public func learn(frame: TensorView, label: Int) throws(LichenError) -> Int {
        guard label >= 0 && label < classCount else {
            throw .invalidArgument(name: "label", value: label, reason: "must be a class index in 0..<classCount")
        }
        try frame.require(.f32, "frame")
        guard frame.elementCount == perSampleValues else {
            throw .shapeMismatch(operand: "frame", dimension: -1, expected: perSampleValues, got: frame.elementCount)
        }
        try singleLabel.f32Elements("label")[0] = Float(label)
        let prediction = singleLabel  // overwritten with the prediction after the label is read
        _ = try learn(frames: try frame.reshaped(singleFrameShape), labels: singleLabel, predictions: prediction)
        return Int(try prediction.f32Elements("prediction")[0])
    }

    /// Learns from `n` labelled samples in order, exactly as `n` calls of `learn(frame:label:)`
    /// would (forward and backward run on runs of samples between decision and minibatch
    /// boundaries, at most the graph's batch size at a time).
    ///
    /// - Parameters:
    ///   - frames: f32 `[n, input...]`, n >= 1.
    ///   - labels: f32, n class indices.
    ///   - predictions: f32 with n values, or nil: receives each sample's predicted class
    ///     (made before its update). It may be the `labels` view itself (each label is read
    ///     before its prediction is written).
    /// - Returns: how many predictions were right.
    /// - Throws: `.unsupportedElementType`; `.shapeMismatch` ("frames": wrong rank or
    ///   per-sample dimension; "labels" / "predictions": not n values);
    ///   `.invalidArgument(name: "frames", ...)` for n = 0; `.invalidArgument(name: "labels",
    ///   value: row, ...)` for a label that is not a class index; `.nonFiniteValue(operand:
    ///   "frames", index:)`. These are checked before anything is learned. A non-finite
    ///   loss gradient (a diverged model) throws from the graph, a non-finite parameter gradient
    ///   `.nonFiniteValue(operand: "gradient", ...)` before the update.
    /// - Note: Allocates nothing.
    @discardableResult
    public func learn(frames: TensorView, labels: TensorView, predictions: TensorView? = nil) throws(LichenError) -> Int {
        let n = try validate(frames: frames, labels: labels, predictions: predictions)
        let y = try labels.f32Elements("labels")
        let out = try predictions?.f32Elements("predictions")
        let m = configuration.minibatch
        let classes = classCount
        var correct = 0
        var r = 0
        while r < n {
            var length = min(n - r, m - samplesInMinibatch, graph.batchSize)
            var decides = false
            if configuration.policy != .constant {
                for k in 0..<length where isDecisionIndex(sampleIndex + k) {
                    length = k + 1
                    decides = true
                    break
                }
            }
            let x = try frames.leadingRows(r, count: length)
            let logits = try graph.forward(input: x)
            let g = try logitGradient.leadingRows(0, count: length)
            try graph.kernels.softmaxRows(logits, into: g)
            let z = try logits.f32Elements("logits"), gs = try g.f32Elements("logit gradient")
            var lastGuess = 0, lastLabel = 0
            for b in 0..<length {
                let row = b * classes
                var best = 0
                var bestValue = z[row]
                for j in 1..<classes where z[row + j] > bestValue {
                    best = j
                    bestValue = z[row + j]
                }
                let label = Int(y[r + b])
                if best == label { correct += 1 }
                // Σ over the minibatch of (softmax − onehot): the authors' error4, summed.
                gs[row + label] -= 1
                lastGuess = best
                lastLabel = label
                // The samples before a decision sample are in the memory when it is scored;
                // the decision sample joins after its decision.
                if !(decides && b == length - 1) { try remember(frames, row: r + b, label: label) }
                // Written after the label is read: `predictions` may be the labels' view.
                if let out { out[r + b] = Float(best) }
            }
            try graph.backward(outputGradient: g)
            if decides {
                try decide(guess: lastGuess, label: lastLabel)
                try remember(frames, row: r + length - 1, label: lastLabel)
            }
            sampleIndex += length
            samplesInMinibatch += length
            r += length
            if samplesInMinibatch == m { try update() }
        }
        return correct
    }

    /// Restarts the sample count that decisions and minibatches are aligned to, as the authors'
    /// per-epoch loop index restarts: the next sample is index 0, the next decision comes once
    /// more than `memory` samples have been seen again. A partial minibatch's gradient is dropped.
    /// η, the weights and the memory ring are kept (the ring is refilled before it is read).
    /// - Note: Allocates nothing.
    public func startEpoch() throws(LichenError) {
        sampleIndex = 0
        samplesInMinibatch = 0
        try zeroGradients()
    }

    /// Starts over as construction left the learner: η back to η0, the sample count, the
    /// minibatch's gradient sum and the memory emptied, LRR's coin reseeded (the counters of
    /// updates and decisions carry on). The weights are the caller's to put back.
    /// - Note: Allocates nothing.
    public func restart() throws(LichenError) {
        learningRate = configuration.initialLearningRate
        sampleIndex = 0
        samplesInMinibatch = 0
        rememberedCount = 0
        lastDecision = nil
        random = SplitMix64Random(seed: configuration.seed)
        try zeroGradients()
    }

    /// `restart()` with η set to `rate` instead of η0 (a saved learner resumed: its weights were
    /// put back by the caller, its minibatch and memory start empty).
    /// - Throws: `.invalidArgument(name: "learningRate", ...)` for a rate that is not finite or
    ///   below the floor; nothing changes then.
    /// - Note: Allocates nothing.
    public func resume(learningRate rate: Double) throws(LichenError) {
        guard rate.isFinite && rate >= 0 && (rate >= configuration.floor || configuration.policy == .constant) else {
            throw .invalidArgument(name: "learningRate", value: 0, reason: "must be finite and at least the floor")
        }
        try restart()
        learningRate = rate
    }

    /// Drops the minibatch being gathered (its gradient sum and its count), for a caller that
    /// got an error from the graph partway through a sample; η, the weights and the memory stay.
    /// - Note: Allocates nothing.
    public func dropMinibatch() throws(LichenError) {
        samplesInMinibatch = 0
        try zeroGradients()
    }

    /// Swaps classes `a` and `b` among the remembered labels: the concept-shift protocol relabels
    /// every sample, the ones the learner remembers included (the authors' `swap_labels`).
    /// - Throws: `.invalidArgument` for a class outside `0 ..< classCount`.
    /// - Note: Allocates nothing.
    public func swapRememberedLabels(_ a: Int, _ b: Int) throws(LichenError) {
        guard a >= 0 && a < classCount else { throw .invalidArgument(name: "a", value: a, reason: "must be a class index") }
        guard b >= 0 && b < classCount else { throw .invalidArgument(name: "b", value: b, reason: "must be a class index") }
        let labels = try memoryLabels.f32Elements("memory labels")
        let fa = Float(a), fb = Float(b)
        for s in 0..<labels.count {
            if labels[s] == fa { labels[s] = fb } else if labels[s] == fb { labels[s] = fa }
        }
    }

    // MARK: - Trials (public for inspection and checks)

    /// Writes trial weights `w − (rate / minibatch) Σ∇` (Σ∇ the partial minibatch gradient now)
    /// into trial buffer `trial` (0 = "leave it", 1 = "take it"): bit for bit what the update
    /// with η = `rate` (or `SGD.step` at rate / minibatch) would write into the model.
    /// - Throws: `.invalidArgument` for a trial other than 0 or 1 or a negative or non-finite rate.
    /// - Note: Allocates nothing.
    public func writeTrial(_ trial: Int, learningRate rate: Double) throws(LichenError) {
        guard trial == 0 || trial == 1 else { throw .invalidArgument(name: "trial", value: trial, reason: "must be 0 or 1") }
        guard rate.isFinite && rate >= 0 else { throw .invalidArgument(name: "rate", value: 0, reason: "must be finite and >= 0") }
        let lr = stepRate(rate)
        let targets = trial == 0 ? leaveValues : takeValues
        for j in 0..<values.count {
            let v = try values[j].f32Elements("value"), g = try gradients[j].f32Elements("gradient")
            // The same expression as SGD.step with no momentum or decay: value − lr · gradient.
            try targets[j].f32Elements("trial").assignDifference(v, scaled: lr, g)
        }
    }

    /// `writeTrial(0, learningRate: leave)` and `writeTrial(1, learningRate: take)` in one pass
    /// over the values and gradients (the same bits).
    /// - Throws: `.invalidArgument` for a negative or non-finite rate.
    /// - Note: Allocates nothing.
    public func writeTrials(leave: Double, take: Double) throws(LichenError) {
        guard leave.isFinite && leave >= 0 && take.isFinite && take >= 0 else {
            throw .invalidArgument(name: "rate", value: 0, reason: "must be finite and >= 0")
        }
        let r0 = stepRate(leave), r1 = stepRate(take)
        for j in 0..<values.count {
            try leaveValues[j].f32Elements("trial").assignDifferences(
                try takeValues[j].f32Elements("trial"), try values[j].f32Elements("value"), scaled: r0, r1,
                try gradients[j].f32Elements("gradient"))
        }
    }

    /// How many of the remembered samples the network with trial weights `trial` classifies as
    /// their (current) labels.
    /// - Throws: `.invalidArgument` for a trial other than 0 or 1, or before `memory` samples
    ///   were remembered.
    /// - Note: Allocates nothing.
    public func scoreTrial(_ trial: Int) throws(LichenError) -> Int {
        guard trial == 0 || trial == 1 else { throw .invalidArgument(name: "trial", value: trial, reason: "must be 0 or 1") }
        guard rememberedCount >= configuration.memory else {
            throw .invalidArgument(name: "memory", value: rememberedCount, reason: "fewer samples remembered than the memory holds")
        }
        let logits = try (trial == 0 ? leaveGraph : takeGraph).forward(input: memoryFrames)
        return try countCorrect(logits, memoryLabels)
    }

    /// The trial value of store parameter `index` in trial buffer `trial` (0 or 1), or nil for a
    /// parameter the learner does not train.
    public func trialValue(_ trial: Int, parameter index: Int) -> TensorView? {
        guard trial == 0 || trial == 1 else { return nil }
        for j in 0..<trainedIndices.count where trainedIndices[j] == index {
            return trial == 0 ? leaveValues[j] : takeValues[j]
        }
        return nil
    }

    /// The rate an update with η = `rate` multiplies the gradient sum by: η / minibatch in f32.
    @inline(__always)
    func stepRate(_ rate: Double) -> Float { Float(rate / Double(configuration.minibatch)) }

    // MARK: - Steps

    /// Whether sample index `i` is a decision point of the policy.
    @inline(__always)
    func isDecisionIndex(_ i: Int) -> Bool {
        switch configuration.policy {
        case .constant: return false
        case .random: return i != 0 && i % configuration.interval == 0
        case .homeostatic: return i > configuration.memory && i % configuration.interval == 0
        }
    }

    private func decide(guess: Int, label: Int) throws(LichenError) {
        let c = configuration
        let before = learningRate
        var taken = false
        var decision = HomeostaticDecision(sampleIndex: sampleIndex, guess: guess, label: label, rateBefore: before,
                                           rateAfter: before, takeRate: before, leaveCorrect: -1, takeCorrect: -1)
        switch c.policy {
        case .constant:
            return
        case .random:
            decision.takeRate = HomeostaticRule.moved(before, by: c.effects[label], step: c.step, floor: c.floor)
            // lrr.py: `if np.random.rand() > 0.5`, a uniform double in [0, 1).
            let coin = Double(random.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
            if coin > 0.5 {
                learningRate = decision.takeRate
                taken = true
            }
        case .homeostatic:
            let take = HomeostaticRule.takeRate(before, guessEffect: c.effects[guess], step: c.step, floor: c.floor)
            try writeTrials(leave: before, take: take)
            let leaveCorrect = try scoreTrial(0)
            let takeCorrect = try scoreTrial(1)
            learningRate = HomeostaticRule.decide(before, leaveCorrect: leaveCorrect, takeCorrect: takeCorrect,
                                                  trueEffect: c.effects[label], step: c.step, floor: c.floor)
            taken = takeCorrect > leaveCorrect
            decision.takeRate = take
            decision.leaveCorrect = leaveCorrect
            decision.takeCorrect = takeCorrect
        }
        decision.rateAfter = learningRate
        decisionCount += 1
        if taken { takenCount += 1 }
        lastDecision = decision
    }

    /// `w ← w − (η / m) Σ∇`: `SGD.step` without momentum or decay, written out, and Σ∇ = 0 in
    /// the same pass (`F32Elements.subtractScaled(_:clearing:)`, the same arithmetic vectorised).
    private func update() throws(LichenError) {
        for j in 0..<gradients.count {
            if let e = try gradients[j].f32Elements("gradient").firstNonFiniteIndex() {
                throw .nonFiniteValue(operand: "gradient", index: e)
            }
        }
        let lr = stepRate(learningRate)
        for j in 0..<values.count {
            try values[j].f32Elements("value").subtractScaled(lr, clearing: try gradients[j].f32Elements("gradient"))
        }
        samplesInMinibatch = 0
        updateCount += 1
    }

    private func zeroGradients() throws(LichenError) {
        for j in 0..<gradients.count { try gradients[j].f32Elements("gradient").fill(0) }
    }

    private func remember(_ frames: TensorView, row: Int, label: Int) throws(LichenError) {
        let slot = rememberedCount % configuration.memory
        try memoryFrames.leadingRows(slot, count: 1).copy(from: try frames.leadingRows(row, count: 1))
        try memoryLabels.f32Elements("memory labels")[slot] = Float(label)
        rememberedCount += 1
    }

    private func countCorrect(_ logits: TensorView, _ labels: TensorView) throws(LichenError) -> Int {
        let z = try logits.f32Elements("logits"), y = try labels.f32Elements("labels")
        let classes = classCount
        var correct = 0
        for b in 0..<y.count {
            let row = b * classes
            var best = 0
            var bestValue = z[row]
            for j in 1..<classes where z[row + j] > bestValue {
                best = j
                bestValue = z[row + j]
            }
            if Float(best) == y[b] { correct += 1 }
        }
        return correct
    }

    private func validate(frames: TensorView, labels: TensorView, predictions: TensorView?) throws(LichenError) -> Int {
        try frames.require(.f32, "frames")
        let input = graph.spec.inputShape
        guard frames.shape.rank == input.rank + 1 else {
            throw .shapeMismatch(operand: "frames", dimension: -1, expected: input.rank + 1, got: frames.shape.rank)
        }
        for d in 0..<input.rank where frames.shape[d + 1] != input[d] {
            throw .shapeMismatch(operand: "frames", dimension: d + 1, expected: input[d], got: frames.shape[d + 1])
        }
        let n = frames.shape[0]
        guard n >= 1 else { throw .invalidArgument(name: "frames", value: 0, reason: "needs at least one sample") }
        let y = try labels.f32Elements("labels")
        guard y.count == n else { throw .shapeMismatch(operand: "labels", dimension: 0, expected: n, got: y.count) }
        if let predictions {
            let p = try predictions.f32Elements("predictions")
            guard p.count == n else { throw .shapeMismatch(operand: "predictions", dimension: 0, expected: n, got: p.count) }
        }
        let classes = Float(classCount)
        for b in 0..<n {
            let v = y[b]
            guard v.isFinite, v >= 0, v < classes, v == v.rounded(.towardZero) else {
                throw .invalidArgument(name: "labels", value: b, reason: "label of this row is not a class index in 0..<classCount")
            }
        }
        if let i = try frames.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "frames", index: i) }
        return n
    }
}
