/// One test-time adaptation method running over a loaded model, batch by batch (the online
/// protocol of research/tta.md §1): `step(batch:)` predicts a batch and then adapts on it, the
/// prediction coming from the same forward, before that batch's update.
///
/// - Source: an inference graph (running statistics); nothing changes.
/// - BN-adapt: a graph normalising with each batch's own mean and biased variance; no
///   parameter or buffer changes (the running statistics are neither read nor updated).
/// - Tent: a training graph with batch statistics; L = (1/B) Σ_b H(softmax(z_b)); one
///   backward and one optimizer step per batch over the trainable parameters (norm γ, β in
///   frugal mode, plus the A and B of a LoRA adapter when `lora` is given; every f32 parameter
///   in full mode). The returned logits are the pre-update ones.
/// - CoTTA: delegated to a `CoTTA` policy (its own graphs, teacher, anchor and optimizer);
///   the returned logits are its teacher-side ones.
/// - RMT: delegated to an `RMT` policy; the returned logits are student + teacher.
///
/// The session owns the graph, the loss, the optimizer, its logits and gradient buffers and a
/// snapshot of the initial values of every parameter it may change, so `reset()` returns the
/// model (and optimizer) to where construction found it. It sets the store's trainable flags
/// (Tent: exactly the parameters it trains; other methods leave the flags alone).
///
/// Bad input (wrong type or shape, a batch of 0 or above `batchSize`, NaN or infinity) throws
/// before anything changes: parameters, optimizer moments and step counts stay as they were.
///
/// - Note: Construction allocates (graph region, loss scratch, optimizer state, snapshots);
///   `step` and `reset` allocate nothing.
public final class AdaptationSession {
    public let method: AdaptationMethod
    public let mode: AdaptationMode
    public let optimizerConfiguration: AdaptationOptimizer
    public let graph: Graph
    public let store: ParameterStore
    /// The largest batch `step` takes.
    public let batchSize: Int
    /// Logit count per sample.
    public let classes: Int
    /// Indices (into `store`) of the parameters the method updates (empty for Source and BN-adapt;
    /// LoRA's A and B are not store parameters: see `loraAdapter`).
    public let trainedParameters: [Int]
    /// The LoRA adapter trained beside the norm parameters (frugal mode with `lora`), else nil.
    public var loraAdapter: LoRAAdapter? { cotta?.loraAdapter ?? rmt?.loraAdapter ?? trainables?.adapter }
    /// Values the method trains: store parameters and LoRA A, B (RMT's projector not counted).
    public var trainedValueCount: Int { cotta?.trainedValueCount ?? rmt?.trainedValueCount ?? trainables?.valueCount ?? 0 }
    /// Batches adapted on since construction or the last `reset()`.
    public private(set) var stepCount = 0
    /// The loss of the last step (Tent's mean entropy before its update; 0 for the others).
    public private(set) var lastLoss: Float = 0

    private enum Optimizer {
        case none
        case adam(Adam)
        case sgd(SGD)
    }

    /// The CoTTA policy the session delegates to (method `.cotta`).
    public let cotta: CoTTA?
    /// The RMT policy the session delegates to (method `.rmt`).
    public let rmt: RMT?

    private let optimizer: Optimizer
    private let loss: EntropyLoss?
    /// [batchSize, classes]: the logits returned by a gradient method (copied out of the graph
    /// before backward) and dL/dlogits.
    private let logits: TensorView?
    private let logitGradient: TensorView?
    /// Tent's trained values (store parameters, then LoRA A and B) and their initial values.
    private let trainables: Trainables?
    private let snapshots: ParameterCopies?

    /// - Parameters:
    ///   - method: what to run.
    ///   - spec, store: the model; `store` holds every parameter `spec` needs.
    ///   - batchSize: the largest batch (the reference uses 200).
    ///   - arena: where the graph's step region, the loss scratch, the optimizer state and the
    ///     snapshots come from.
    ///   - mode: which parameters Tent trains (ignored by Source and BN-adapt).
    ///   - optimizer: Tent's optimizer; the default is the reference's CIFAR setting (Adam, lr
    ///     1e-3, betas (0.9, 0.999)) for batches of 200. The learning rate is used as given for
    ///     any batch size.
    ///   - cotta: CoTTA's settings (its threshold comes from `sourceConfidenceThreshold`);
    ///     required for `.cotta`, ignored otherwise.
    ///   - rmt, source: RMT's settings and its source batches (needed unless the settings use
    ///     no source data); ignored by the other methods.
    ///   - lora: frugal mode's optional LoRA trainables for Tent, CoTTA and RMT (nil: the norm
    ///     parameters alone); ignored by Source and BN-adapt.
    /// - Throws: what `Graph.init` throws; `.invalidArgument(name: "mode", value: parameter
    ///   index, ...)` when full mode meets a parameter that cannot train (quantized or
    ///   read-only); `.invalidArgument(name: "trainable", ...)` when Tent finds nothing to train;
    ///   `.invalidArgument(name: "lora", ...)` for LoRA in full mode, and what
    ///   `AdaptationLoRA.targetShapes` throws;
    ///   what the optimizers and the loss throw for bad settings; `.budgetExceeded`.
    public init(
        method: AdaptationMethod, spec: ModelSpec, store: ParameterStore, batchSize: Int, arena: Arena,
        mode: AdaptationMode = .frugal, optimizer: AdaptationOptimizer = .tentCIFAR, cotta: CoTTA.Configuration? = nil,
        rmt: RMT.Configuration = RMT.Configuration(), source: SourceBatchProvider? = nil, lora: AdaptationLoRA? = nil,
        kernels: Kernels = .best
    ) throws(LichenError) {
        self.method = method
        self.mode = mode
        self.optimizerConfiguration = optimizer
        self.store = store
        self.batchSize = batchSize
        var tentTrainables: Trainables? = nil
        let options: GraphOptions
        if method == .cotta {
            guard let cotta else {
                throw .invalidArgument(name: "cotta", value: 0, reason: "CoTTA needs its configuration (the confidence threshold)")
            }
            let policy = try CoTTA(spec: spec, store: store, batchSize: batchSize, arena: arena, mode: mode,
                                   configuration: cotta, lora: lora, kernels: kernels)
            self.cotta = policy
            self.rmt = nil
            graph = policy.graph
            classes = policy.classes
            trainedParameters = policy.trainedParameters
            self.optimizer = .none
            self.loss = nil
            self.logits = nil
            self.logitGradient = nil
            self.trainables = nil
            self.snapshots = nil
            return
        }
        self.cotta = nil
        if method == .rmt {
            let policy = try RMT(spec: spec, store: store, batchSize: batchSize, arena: arena, mode: mode,
                                 configuration: rmt, source: source, lora: lora, kernels: kernels)
            self.rmt = policy
            graph = policy.graph
            classes = policy.classes
            trainedParameters = policy.trainedParameters
            self.optimizer = .none
            self.loss = nil
            self.logits = nil
            self.logitGradient = nil
            self.trainables = nil
            self.snapshots = nil
            return
        }
        self.rmt = nil
        switch method {
        case .source:
            options = GraphOptions()
        case .bnAdapt:
            options = GraphOptions(batchNormMode: .batchStatistics)
        case .tent:
            options = GraphOptions(training: true, batchNormMode: .batchStatistics, trainAdapters: lora != nil)
            tentTrainables = try Trainables(store: store, spec: spec, mode: mode, lora: lora, arena: arena)
        case .cotta, .rmt:
            throw .invalidArgument(name: "method", value: 0, reason: "handled above")
        }
        graph = try Graph(spec: spec, store: store, batchSize: batchSize, arena: arena, options: options, kernels: kernels)
        classes = graph.outputShape.elementCount ?? 0
        trainedParameters = tentTrainables?.parameterIndices ?? []
        guard method == .tent, let tentTrainables else {
            self.optimizer = .none
            self.loss = nil
            self.logits = nil
            self.logitGradient = nil
            self.trainables = nil
            self.snapshots = nil
            return
        }
        loss = try EntropyLoss(maximumBatch: batchSize, classes: classes, arena: arena, kernels: kernels)
        logits = try arena.persistentTensor(.f32, try Shape(batchSize, classes))
        logitGradient = try arena.persistentTensor(.f32, try Shape(batchSize, classes))
        try tentTrainables.attach(to: graph, arena: arena)
        let list = tentTrainables.trainableParameters()
        trainables = tentTrainables
        snapshots = try ParameterCopies(of: tentTrainables.values, arena: arena)
        switch optimizer {
        case .adam(let lr, let b1, let b2, let eps):
            self.optimizer = .adam(try Adam(
                parameters: list, groups: [Adam.Group(learningRate: lr, beta1: b1, beta2: b2, epsilon: eps)], arena: arena))
        case .sgd(let lr, let momentum, let nesterov):
            self.optimizer = .sgd(try SGD(
                parameters: list, groups: [SGD.Group(learningRate: lr, momentum: momentum, nesterov: nesterov)], arena: arena))
        }
        try zeroTrainedGradients()
    }

    /// The store parameters a gradient method trains in `mode` (an empty list is refused unless
    /// `allowEmpty`: LoRA adapters alone may be the trainables).
    static func selectTrainable(_ store: ParameterStore, mode: AdaptationMode, allowEmpty: Bool = false) throws(LichenError) -> [Int] {
        var out: [Int] = []
        for i in 0..<store.count {
            let p = store[i]
            switch mode {
            case .frugal:
                if (p.role == .normWeight || p.role == .normBias) && p.canTrain { out.append(i) }
            case .full:
                if p.role.isRunningStatistic { continue }
                guard p.canTrain else {
                    throw .invalidArgument(name: "mode", value: i,
                                           reason: "full mode trains every parameter; the one at this index is quantized or read-only (use frugal mode or an f32 model)")
                }
                out.append(i)
            }
        }
        guard !out.isEmpty || allowEmpty else {
            throw .invalidArgument(name: "trainable", value: 0, reason: "the model has no parameter this mode can train")
        }
        return out
    }

    private func zeroTrainedGradients() throws(LichenError) {
        try trainables?.zeroGradients()
    }

    // MARK: - Step

    /// Predicts `input` and adapts on it.
    ///
    /// - Parameter input: f32 `[n, input shape...]`, 1 <= n <= `batchSize`, every value finite.
    /// - Returns: the logits `[n, classes]` computed before this batch's update: a view valid
    ///   until the next `step` or `reset`.
    /// - Throws: `.nonFiniteValue(operand: "input", index:)`, `.unsupportedElementType`,
    ///   `.shapeMismatch`, `.invalidArgument(name: "input.batch", ...)` — all before any change;
    ///   what the loss and the optimizer throw (non-finite logits or gradients; nothing is
    ///   updated then).
    /// - Note: Allocates nothing.
    public func step(batch input: TensorView) throws(LichenError) -> TensorView {
        try input.require(.f32, "input")
        if let i = try input.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "input", index: i) }
        if let cotta {
            let z = try cotta.step(batch: input)
            lastLoss = cotta.lastLoss
            stepCount += 1
            return z
        }
        if let rmt {
            let z = try rmt.step(batch: input)
            lastLoss = rmt.lastLoss
            stepCount += 1
            return z
        }
        // Saved statistics (when reserved) let frame mode predict single frames between steps.
        let out = try graph.forward(input: input, statistics: .computedAndSaved)
        guard let loss, let logits, let logitGradient else {
            stepCount += 1
            lastLoss = 0
            return out
        }
        let n = out.shape[0]
        let z = try logits.leadingRows(0, count: n)
        try z.copy(from: out)
        let g = try logitGradient.leadingRows(0, count: n)
        let value = try loss.compute(logits: z, gradient: g)
        try zeroTrainedGradients()
        try graph.backward(outputGradient: try g.reshaped(out.shape))
        switch optimizer {
        case .adam(let adam): try adam.step()
        case .sgd(let sgd): try sgd.step()
        case .none: break
        }
        lastLoss = value
        stepCount += 1
        return z
    }

    /// Restores the initial values of every trained parameter, clears the optimizer's state
    /// and the gradients, and sets `stepCount` to 0.
    /// - Note: Allocates nothing.
    public func reset() throws(LichenError) {
        if let cotta { try cotta.reset() }
        if let rmt { try rmt.reset() }
        if let trainables, let snapshots { try snapshots.load(into: trainables.values) }
        switch optimizer {
        case .adam(let adam): try adam.resetState()
        case .sgd(let sgd): try sgd.resetState()
        case .none: break
        }
        try zeroTrainedGradients()
        stepCount = 0
        lastLoss = 0
    }
}
