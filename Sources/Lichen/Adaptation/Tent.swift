/// Tent (Wang et al. 2021; research/tta.md §2): a training graph normalising with each batch's
/// own statistics; L = (1/B) Σ_b H(softmax(z_b)); one backward and one optimizer step per batch
/// over the trainable parameters (norm γ, β in frugal mode, plus the A and B of a LoRA adapter
/// when `lora` is given; every f32 parameter in full mode). The returned logits are the
/// pre-update ones.
///
/// - Note: Construction allocates (graph region, loss scratch, optimizer state, snapshots);
///   `step` and `reset` allocate nothing.
public final class Tent {
    public let graph: Graph
    public let classes: Int
    /// Store indices of the trained parameters.
    public let trainedParameters: [Int]
    /// The trained LoRA adapter (frugal mode with `lora`), else nil.
    public var loraAdapter: LoRAAdapter? { trainables.adapter }
    /// Values trained (store parameters, then LoRA A and B).
    public var trainedValueCount: Int { trainables.valueCount }
    /// The mean entropy of the last step, before its update.
    public private(set) var lastLoss: Float = 0

    private enum Optimizer {
        case adam(Adam)
        case sgd(SGD)
    }

    private let optimizer: Optimizer
    private let loss: EntropyLoss
    /// [batchSize, classes]: the logits returned (copied out of the graph before backward) and dL/dlogits.
    private let logits: TensorView
    private let logitGradient: TensorView
    private let trainables: Trainables
    /// The trained values at construction (what `reset` returns to).
    private let snapshots: ParameterCopies

    /// - Throws: what `Graph.init`, `Trainables` (nothing to train, LoRA in full mode, bad rank),
    ///   the loss and the optimizers throw; `.budgetExceeded`.
    init(spec: ModelSpec, store: ParameterStore, batchSize: Int, arena: Arena, mode: AdaptationMode, optimizer: AdaptationOptimizer,
         lora: AdaptationLoRA?, kernels: Kernels) throws(LichenError) {
        let trainables = try Trainables(store: store, spec: spec, mode: mode, lora: lora, arena: arena)
        graph = try Graph(spec: spec, store: store, batchSize: batchSize, arena: arena,
                          options: GraphOptions(training: true, batchNormMode: .batchStatistics, trainAdapters: lora != nil),
                          kernels: kernels)
        classes = graph.outputShape.elementCount ?? 0
        trainedParameters = trainables.parameterIndices
        loss = try EntropyLoss(maximumBatch: batchSize, classes: classes, arena: arena, kernels: kernels)
        logits = try arena.persistentTensor(.f32, try Shape(batchSize, classes))
        logitGradient = try arena.persistentTensor(.f32, try Shape(batchSize, classes))
        try trainables.attach(to: graph, arena: arena)
        let list = trainables.trainableParameters()
        self.trainables = trainables
        snapshots = try ParameterCopies(of: trainables.values, arena: arena)
        switch optimizer {
        case .adam(let lr, let b1, let b2, let eps):
            self.optimizer = .adam(try Adam(
                parameters: list, groups: [Adam.Group(learningRate: lr, beta1: b1, beta2: b2, epsilon: eps)], arena: arena))
        case .sgd(let lr, let momentum, let nesterov):
            self.optimizer = .sgd(try SGD(
                parameters: list, groups: [SGD.Group(learningRate: lr, momentum: momentum, nesterov: nesterov)], arena: arena))
        }
        try trainables.zeroGradients()
    }

    /// Predicts `input` and takes one entropy-minimisation step on it.
    /// - Returns: the logits `[n, classes]` from before the update.
    /// - Throws: what the graph, the loss and the optimizer throw (non-finite logits or
    ///   gradients: nothing is updated).
    /// - Note: Allocates nothing.
    func step(batch input: TensorView) throws(LichenError) -> TensorView {
        // Saved statistics (when reserved) let frame mode predict single frames between steps.
        let out = try graph.forward(input: input, statistics: .computedAndSaved)
        let n = out.shape[0]
        let z = try logits.leadingRows(0, count: n)
        try z.copy(from: out)
        let g = try logitGradient.leadingRows(0, count: n)
        let value = try loss.compute(logits: z, gradient: g)  // Tent eq. (1): mean entropy
        try trainables.zeroGradients()
        try graph.backward(outputGradient: try g.reshaped(out.shape))
        switch optimizer {
        case .adam(let adam): try adam.step()
        case .sgd(let sgd): try sgd.step()
        }
        lastLoss = value
        return z
    }

    /// The trained values back to construction's, the optimizer's state and the gradients cleared.
    /// - Note: Allocates nothing.
    func reset() throws(LichenError) {
        try snapshots.load(into: trainables.values)
        switch optimizer {
        case .adam(let adam): try adam.resetState()
        case .sgd(let sgd): try sgd.resetState()
        }
        try trainables.zeroGradients()
        lastLoss = 0
    }
}

extension Tent {
    /// The adapted state's parts (`AdaptedState`): the trained values, their names, the optimizer.
    func stateParts(store: ParameterStore) -> (values: [TensorView], names: [String], optimizer: AdaptationOptimizerState) {
        let o: AdaptationOptimizerState
        switch optimizer {
        case .adam(let a): o = .adam(a)
        case .sgd(let s): o = .sgd(s)
        }
        return (trainables.values, trainables.stateNames(store: store), o)
    }
}
