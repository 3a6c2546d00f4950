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
    /// What the method does (`AdaptationPolicy`: one case per method).
    public let policy: AdaptationPolicy
    public let store: ParameterStore
    /// The largest batch `step` takes.
    public let batchSize: Int
    /// Logit count per sample.
    public let classes: Int
    /// Batches adapted on since construction or the last `reset()`.
    public private(set) var stepCount = 0
    /// The loss of the last step (Tent's mean entropy before its update; 0 for source and BN-adapt).
    public private(set) var lastLoss: Float = 0

    /// The student graph.
    public var graph: Graph { policy.graph }
    /// Indices (into `store`) of the parameters the method updates (empty for Source and BN-adapt;
    /// LoRA's A and B are not store parameters: see `loraAdapter`).
    public var trainedParameters: [Int] { policy.trainedParameters }
    /// The LoRA adapter trained beside the norm parameters (frugal mode with `lora`), else nil.
    public var loraAdapter: LoRAAdapter? { policy.loraAdapter }
    /// Values the method trains: store parameters and LoRA A, B (RMT's projector not counted).
    public var trainedValueCount: Int { policy.trainedValueCount }
    /// The CoTTA policy (method `.cotta`), for its figures.
    public var cotta: CoTTA? { if case .cotta(let c) = policy { return c } else { return nil } }
    /// The RMT policy (method `.rmt`), for its figures.
    public var rmt: RMT? { if case .rmt(let r) = policy { return r } else { return nil } }

    /// - Parameters:
    ///   - method: what to run.
    ///   - spec, store: the model; `store` holds every parameter `spec` needs.
    ///   - batchSize: the largest batch (the reference uses 200).
    ///   - arena: where the graph's step region, the loss scratch, the optimizer state and the
    ///     snapshots come from.
    ///   - mode: which parameters a gradient method trains (ignored by Source and BN-adapt).
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
        policy = try AdaptationPolicy.make(method, spec: spec, store: store, batchSize: batchSize, arena: arena, mode: mode,
                                           optimizer: optimizer, cotta: cotta, rmt: rmt, source: source, lora: lora, kernels: kernels)
        classes = policy.classes
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
        let z = try policy.step(batch: input)
        lastLoss = policy.lastLoss
        stepCount += 1
        return z
    }

    /// Sets the step count (an adapted state restored: `AdaptedState`).
    func restoreStepCount(_ n: Int) { stepCount = max(0, n) }

    /// Restores the initial values of every trained parameter, clears the optimizer's state
    /// and the gradients, and sets `stepCount` to 0.
    /// - Note: Allocates nothing.
    public func reset() throws(LichenError) {
        try policy.reset()
        stepCount = 0
        lastLoss = 0
    }
}
