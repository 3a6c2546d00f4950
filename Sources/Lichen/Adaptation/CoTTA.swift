/// CoTTA, continual test-time adaptation (Wang et al. 2022; research/tta.md §3): a student
/// trained on a consistency loss against an EMA teacher whose prediction is averaged over
/// augmented copies when a frozen anchor is unsure, with stochastic restore of the student
/// towards the source weights.
///
/// One step on a batch x of B images, every forward with its own batch statistics:
/// 1. anchor confidence c = (1/B) Σ_b max_k softmax(f_θ₀(x))_bk (one batch-mean scalar);
/// 2. teacher logits z′ = f_θ′(x);
/// 3. if c < p_th: ẑ = (1/N) Σ_i f_θ′(A_i(x)) over N independent draws of `CoTTAAugmentation`
///    (logits averaged, the whole batch switched); else ẑ = z′;
/// 4. student logits z = f_θ(x); L = (1/B) Σ_b −Σ_k softmax(ẑ_b)_k log softmax(z_b)_k (soft
///    cross-entropy; symmetric CE selectable); one optimizer step (Adam, lr 1e-3, betas
///    (0.9, 0.999));
/// 5. teacher EMA θ′ ← α θ′ + (1 − α) θ, α = 0.999;
/// 6. then stochastic restore: every trained value is reset to its source value with
///    probability p = 0.01 (independent per element); the optimizer moments are untouched;
/// 7. the step returns ẑ, the teacher-side logits from before the update.
///
/// Departures from the CIFAR reference code, on purpose:
/// - The N augmented teacher passes run only when the gate fires (the reference CIFAR code
///   runs them on every step and discards them when c >= p_th; mariodoebler's variant and
///   CoTTA's ImageNet code run them only when needed). Outputs are the same.
/// - The threshold p_th is not CIFAR's 0.92: it is computed from our source model as the
///   CoTTA maintainer describes (`sourceConfidenceThreshold`: 5 % quantile of max-softmax
///   confidence on source images minus 0.05); the caller passes it in.
/// - Frugal mode (the default here) trains only the norm layers' affine parameters (plus, with
///   `lora`, the A and B of a LoRA adapter, B starting at 0) over a frozen, possibly quantized
///   base, and the teacher and anchor hold only those; restore resets A and B elements to their
///   initial values like any other trained value. The reference trains every parameter (full mode).
/// - Restore masks come from our own seeded SplitMix64 stream (not torch.rand); the
///   augmentation draws from a second stream. `reset()` re-seeds both.
///
/// Memory: the student graph (training), one inference graph shared by teacher and anchor
/// (its trained slots are loaded from the teacher or anchor copy before each pass; frozen
/// weights are shared, not copied), teacher and anchor copies of the trainables (the anchor
/// doubles as the restore source), the optimizer's moments, the augmented batch, the logits.
///
/// - Note: Construction allocates everything from the arena; `step` and `reset` allocate nothing.
public final class CoTTA {
    /// The consistency loss between student and teacher-side logits.
    public enum ConsistencyLoss: Sendable, Equatable {
        /// −Σ q log p (the CIFAR configuration).
        case softCrossEntropy
        /// ½ (−Σ q log p) + ½ (−Σ p log q) (the ImageNet configuration).
        case symmetricCrossEntropy
    }

    /// CoTTA's settings; the defaults are the CIFAR configuration (research/tta.md §3.2) but
    /// for the threshold, which must come from the source model.
    public struct Configuration: Sendable, Equatable {
        /// p_th: augment when the anchor's batch-mean confidence is strictly below it.
        public var threshold: Float
        /// N, augmented teacher passes when the gate fires (32).
        public var augmentations: Int
        /// α of the teacher EMA (0.999).
        public var emaMomentum: Float
        /// p of stochastic restore (0.01; 0 disables it).
        public var restoreProbability: Float
        public var consistencyLoss: ConsistencyLoss
        public var optimizer: AdaptationOptimizer
        /// Seed of the augmentation and restore streams.
        public var seed: UInt64

        public init(
            threshold: Float, augmentations: Int = 32, emaMomentum: Float = 0.999, restoreProbability: Float = 0.01,
            consistencyLoss: ConsistencyLoss = .softCrossEntropy, optimizer: AdaptationOptimizer = .tentCIFAR, seed: UInt64 = 1
        ) {
            self.threshold = threshold
            self.augmentations = augmentations
            self.emaMomentum = emaMomentum
            self.restoreProbability = restoreProbability
            self.consistencyLoss = consistencyLoss
            self.optimizer = optimizer
            self.seed = seed
        }
    }

    public let configuration: Configuration
    public let mode: AdaptationMode
    public let store: ParameterStore
    /// The student's training graph.
    public let graph: Graph
    public let batchSize: Int
    public let classes: Int
    /// Store indices of the trained parameters.
    public let trainedParameters: [Int]
    /// The trained LoRA adapter (frugal mode with `lora`), else nil.
    public var loraAdapter: LoRAAdapter? { trainables.adapter }
    public let augmentation: CoTTAAugmentation
    /// Batches adapted on since construction or `reset()`.
    public private(set) var stepCount = 0
    /// The last step's consistency loss (before its update).
    public private(set) var lastLoss: Float = 0
    /// The last step's anchor confidence c.
    public private(set) var lastAnchorConfidence: Float = 0
    /// Whether the last step averaged augmented teacher passes.
    public private(set) var lastStepAugmented = false
    /// Steps (since construction or reset) that averaged augmented passes.
    public private(set) var augmentedStepCount = 0
    /// Values reset to source by the last step's restore.
    public private(set) var lastRestoredCount = 0

    let trainables: Trainables
    let teacherGraph: SharedWeightGraph
    let teacher: ParameterCopies
    /// The frozen anchor θ₀ = the source values S used by restore and reset.
    let anchor: ParameterCopies
    let optimizer: AdaptationOptimizerState
    private let softLoss: SoftCrossEntropyLoss?
    private let symmetricLoss: SymmetricCrossEntropyLoss?
    /// [B, C]: ẑ (returned), the student's logits, dL/dz, softmax scratch, augmented-logit sum.
    private let output: TensorView
    private let studentLogits: TensorView
    private let logitGradient: TensorView
    private let probabilities: TensorView
    /// [B, input...]: the augmented batch.
    private let augmented: TensorView
    private var augmentationRandom: SplitMix64Random
    private var restoreRandom: SplitMix64Random
    private let restoreThreshold: UInt64
    /// Whether the teacher graph's slots hold the teacher's current values (`predict`).
    private var teacherLoaded = false

    /// - Parameters:
    ///   - spec, store: the model; the store's trainable flags are set to the trained parameters.
    ///   - batchSize: the largest batch (the reference uses 200).
    ///   - mode: frugal (norm γ, β) or full (every f32 parameter; the model must be f32).
    ///   - lora: frugal mode's optional LoRA trainables (nil: none).
    /// - Throws: `.invalidArgument` for bad settings (augmentations outside 1...1024, α or p
    ///   outside [0, 1], a non-finite threshold), for full mode over a quantized or read-only
    ///   parameter, or a model with nothing to train or input not of one channel with H, W >= 4;
    ///   what `Graph.init`, the losses and the optimizers throw; `.budgetExceeded`.
    public init(
        spec: ModelSpec, store: ParameterStore, batchSize: Int, arena: Arena, mode: AdaptationMode = .frugal,
        configuration: Configuration, lora: AdaptationLoRA? = nil, kernels: Kernels = .best
    ) throws(LichenError) {
        guard configuration.threshold.isFinite else {
            throw .invalidArgument(name: "cotta.threshold", value: 0, reason: "must be finite")
        }
        guard configuration.augmentations >= 1 && configuration.augmentations <= 1024 else {
            throw .invalidArgument(name: "cotta.augmentations", value: configuration.augmentations, reason: "must be in 1...1024")
        }
        guard configuration.emaMomentum >= 0 && configuration.emaMomentum <= 1 else {
            throw .invalidArgument(name: "cotta.emaMomentum", value: 0, reason: "must lie in [0, 1]")
        }
        guard configuration.restoreProbability >= 0 && configuration.restoreProbability <= 1 else {
            throw .invalidArgument(name: "cotta.restoreProbability", value: 0, reason: "must lie in [0, 1]")
        }
        let input = spec.inputShape
        let height = input.rank >= 2 ? input[input.rank - 2] : 0, width = input.rank >= 1 ? input[input.rank - 1] : 0
        guard (input.rank == 3 && input[0] == 1) || input.rank == 2 else {
            throw .invalidArgument(name: "cotta.input", value: input.rank, reason: "the augmentation takes one-channel images [1, H, W]")
        }
        self.configuration = configuration
        self.mode = mode
        self.store = store
        self.batchSize = batchSize
        let trainables = try Trainables(store: store, spec: spec, mode: mode, lora: lora, arena: arena)
        self.trainables = trainables
        trainedParameters = trainables.parameterIndices
        graph = try Graph(spec: spec, store: store, batchSize: batchSize, arena: arena,
                          options: GraphOptions(training: true, batchNormMode: .batchStatistics, trainAdapters: lora != nil),
                          kernels: kernels)
        try trainables.attach(to: graph, arena: arena)
        classes = graph.outputShape.elementCount ?? 0
        teacherGraph = try SharedWeightGraph(spec: spec, student: store, trainables: trainables, batchSize: batchSize, arena: arena,
                                             kernels: kernels)
        teacher = try ParameterCopies(of: trainables.values, arena: arena)
        anchor = try ParameterCopies(of: trainables.values, arena: arena)
        optimizer = try AdaptationOptimizerState(configuration.optimizer, parameters: trainables.trainableParameters(), groupCount: 1,
                                                 arena: arena)
        switch configuration.consistencyLoss {
        case .softCrossEntropy:
            softLoss = try SoftCrossEntropyLoss(maximumBatch: batchSize, classes: classes, arena: arena, kernels: kernels)
            symmetricLoss = nil
        case .symmetricCrossEntropy:
            softLoss = nil
            symmetricLoss = try SymmetricCrossEntropyLoss(maximumBatch: batchSize, classes: classes, arena: arena, kernels: kernels)
        }
        let rows = try Shape(batchSize, classes)
        output = try arena.persistentTensor(.f32, rows)
        studentLogits = try arena.persistentTensor(.f32, rows)
        logitGradient = try arena.persistentTensor(.f32, rows)
        probabilities = try arena.persistentTensor(.f32, rows)
        var dims = [batchSize]
        dims += input.dimensions
        augmented = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
        augmentation = try CoTTAAugmentation(height: height, width: width, maximumBatch: batchSize, arena: arena)
        augmentationRandom = SplitMix64Random(seed: configuration.seed)
        restoreRandom = SplitMix64Random(seed: configuration.seed ^ CoTTA.restoreStreamKey)
        restoreThreshold = CoTTA.bernoulliThreshold(configuration.restoreProbability)
        try optimizer.zeroGradients()
    }

    /// XOR-ed into the seed for the restore stream.
    static let restoreStreamKey: UInt64 = 0x5265_7374_6F72_6521

    /// A 64-bit draw u is a success when u < threshold: P = threshold / 2^64 = p (p = 1 always).
    static func bernoulliThreshold(_ p: Float) -> UInt64 {
        if p >= 1 { return UInt64.max }
        if p <= 0 { return 0 }
        return UInt64(Double(p) * 18_446_744_073_709_551_616.0)
    }

    /// The teacher's copy of trained value `k` (store index `trainedParameters[k]`; after them, A
    /// and B of each LoRA target).
    public func teacherValue(_ k: Int) -> TensorView { teacher.tensors[k] }

    /// The anchor's (source) copy of trained value `k`.
    public func anchorValue(_ k: Int) -> TensorView { anchor.tensors[k] }

    /// Values in the trained parameters.
    public var trainedValueCount: Int { anchor.valueCount }

    // MARK: - Step

    /// Predicts `input` with the teacher side and adapts on it (steps 1–7 above).
    ///
    /// - Parameter input: f32 `[n, 1, H, W]`, 1 <= n <= `batchSize`, every value finite.
    /// - Returns: ẑ `[n, classes]`, computed before this batch's update; valid until the next
    ///   `step` or `reset`.
    /// - Throws: `.nonFiniteValue(operand: "input", index:)`, `.unsupportedElementType`,
    ///   `.shapeMismatch`, `.invalidArgument(name: "input.batch", ...)`, all before anything
    ///   changes; what the loss and the optimizer throw (non-finite logits or gradients, before
    ///   any parameter changes).
    /// - Note: Allocates nothing.
    public func step(batch input: TensorView) throws(LichenError) -> TensorView {
        try input.require(.f32, "input")
        if let i = try input.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "input", index: i) }
        // 1. Anchor confidence (the forward validates the shape before anything changes).
        teacherLoaded = false
        try teacherGraph.load(anchor)
        let za = try teacherGraph.graph.forward(input: input)
        let n = za.shape[0]
        let confidence = try meanMaximumProbability(za, n)
        // 2–3. Teacher logits, augmentation-averaged when the gate fires.
        try teacherGraph.load(teacher)
        let zHat = try output.leadingRows(0, count: n)
        try zHat.copy(from: try teacherGraph.graph.forward(input: input, statistics: .computedAndSaved))
        let fires = confidence < configuration.threshold
        if fires {
            let x = try augmented.leadingRows(0, count: n)
            let sum = try zHat.f32Elements("output")
            sum.fill(0)
            for _ in 0..<configuration.augmentations {
                try augmentation.augment(input, into: x, random: &augmentationRandom)
                let z = try teacherGraph.graph.forward(input: x).f32Elements("logits")
                for j in 0..<sum.count { sum[j] += z[j] }
            }
            let inverse = 1 / Float(configuration.augmentations)
            for j in 0..<sum.count { sum[j] *= inverse }
        }
        // 4. Student, consistency loss, one optimizer step.
        let zs = try studentLogits.leadingRows(0, count: n)
        let out = try graph.forward(input: input)
        try zs.copy(from: out)
        let g = try logitGradient.leadingRows(0, count: n)
        let value: Float
        if let softLoss {
            value = try softLoss.compute(logits: zs, teacherLogits: zHat, gradient: g)
        } else if let symmetricLoss {
            value = try symmetricLoss.compute(logits: zs, teacherLogits: zHat, gradient: g)
        } else {
            value = 0
        }
        try optimizer.zeroGradients()
        try graph.backward(outputGradient: try g.reshaped(out.shape))
        try optimizer.step()
        // 5. Teacher EMA, then 6. stochastic restore.
        try teacher.exponentialMovingAverage(towards: trainables.values, momentum: configuration.emaMomentum)
        lastRestoredCount = try restore()
        lastLoss = value
        lastAnchorConfidence = confidence
        lastStepAugmented = fires
        if fires { augmentedStepCount += 1 }
        stepCount += 1
        return zHat
    }

    // MARK: - Frames between updates

    /// Reserves the teacher graph's saved batch statistics (frame mode's `.saved` prediction).
    func reservePrediction(arena: Arena) throws(LichenError) {
        try teacherGraph.graph.reserveSavedStatistics(arena: arena)
    }

    /// Row `row` of `input` through the EMA teacher alone (one forward; no anchor gate, no
    /// augmented passes): the prediction of frames between updates.
    /// - Note: Allocates nothing.
    func predict(input: TensorView, statistics: NormStatistics, row: Int) throws(LichenError) -> TensorView {
        try loadTeacherForPrediction()
        return try teacherGraph.graph.forward(input: input, statistics: statistics).leadingRows(row, count: 1)
    }

    /// Loads the teacher's values into the teacher graph's slots unless they are there.
    /// - Note: Allocates nothing.
    func loadTeacherForPrediction() throws(LichenError) {
        if !teacherLoaded {
            try teacherGraph.load(teacher)
            teacherLoaded = true
        }
    }

    /// c = (1/n) Σ_b max_k softmax(z_b)_k, accumulated in Double.
    private func meanMaximumProbability(_ z: TensorView, _ n: Int) throws(LichenError) -> Float {
        let p = try probabilities.leadingRows(0, count: n)
        try graph.kernels.softmaxRows(z, into: p)
        let v = try p.f32Elements("probabilities")
        var total: Double = 0
        for b in 0..<n {
            var best = v[b * classes]
            for k in 1..<classes { best = max(best, v[b * classes + k]) }
            total += Double(best)
        }
        return Float(total / Double(n))
    }

    /// W ← M ⊙ S + (1 − M) ⊙ W with M_i ~ Bernoulli(p), one 64-bit draw per trained value in
    /// parameter order. Returns how many values were reset.
    private func restore() throws(LichenError) -> Int {
        guard restoreThreshold > 0 else { return 0 }
        var count = 0
        let values = trainables.values
        for k in 0..<values.count {
            let w = try values[k].f32Elements("student")
            let s = try anchor.tensors[k].f32Elements("source")
            for j in 0..<w.count where restoreRandom.next() < restoreThreshold || restoreThreshold == UInt64.max {
                w[j] = s[j]
                count += 1
            }
        }
        return count
    }

    /// Student, teacher and optimizer back to the source state; both random streams re-seeded;
    /// counters cleared. The anchor never changes.
    /// - Note: Allocates nothing.
    public func reset() throws(LichenError) {
        teacherLoaded = false
        try anchor.load(into: trainables.values)
        try teacher.copy(from: anchor)
        try optimizer.resetState()
        try optimizer.zeroGradients()
        augmentationRandom = SplitMix64Random(seed: configuration.seed)
        restoreRandom = SplitMix64Random(seed: configuration.seed ^ CoTTA.restoreStreamKey)
        stepCount = 0
        augmentedStepCount = 0
        lastLoss = 0
        lastAnchorConfidence = 0
        lastStepAugmented = false
        lastRestoredCount = 0
    }
}

extension CoTTA {
    /// The adapted state's parts (`AdaptedState`): student and EMA teacher values (the anchor is
    /// the model as loaded, never changed), their names, the optimizer.
    func stateParts() -> (values: [TensorView], names: [String], optimizer: AdaptationOptimizerState) {
        let names = trainables.stateNames(store: store)
        return (trainables.values + teacher.tensors, names + names.map { "teacher." + $0 }, optimizer)
    }

    /// Counters of the adapted state: steps, augmented steps, the two random streams.
    static let stateCounterCount = 4

    /// - Note: Allocates nothing.
    func readStateCounters(_ out: UnsafeMutablePointer<UInt64>) {
        out[0] = UInt64(stepCount)
        out[1] = UInt64(augmentedStepCount)
        out[2] = augmentationRandom.state
        out[3] = restoreRandom.state
    }

    /// - Note: Allocates nothing.
    func writeStateCounters(_ values: UnsafePointer<UInt64>) {
        stepCount = Int(truncatingIfNeeded: values[0])
        augmentedStepCount = Int(truncatingIfNeeded: values[1])
        augmentationRandom = SplitMix64Random(seed: values[2])
        restoreRandom = SplitMix64Random(seed: values[3])
        teacherLoaded = false
    }
}
