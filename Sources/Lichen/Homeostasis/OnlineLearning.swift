/// Online supervised learning for a running model (what `lichen_learn` reaches): a labelled
/// frame at a time, through a `HomeostaticLearner` whose learning-rate policy is constant, LRR
/// or LRH, for when a robot has a trusted source of labels (an operator's correction, another
/// sensor).
///
/// Built by `AdaptationPlan.assemble` when the plan has `learning` set, over the model's own
/// store: every parameter that can train (writable f32, not a running statistic) is trained, so
/// an f32 model learns all its weights and a quantized one its biases and norm parameters
/// (quantized weights stay frozen). Batch norm uses its running statistics and leaves them
/// alone (one frame is no batch). The step graph predicts with the same values, so a frame
/// stepped after an update sees it.
///
/// Memory: a batch-1 training graph, the learner's trial buffers, trial graphs and memory, and
/// one copy of the trained values as the model had them (for `reset`), all from
/// the arena at construction. `learn` and `reset` allocate nothing.
public final class OnlineLearning {
    public let learner: HomeostaticLearner
    /// The trained values (live, the store's own) and their parameters' names, for the adapted state.
    public let values: [TensorView]
    public let names: [String]
    /// The trained values as the model had them (for `reset`).
    private let initial: ParameterCopies
    /// Bytes of the arena taken at construction.
    public let arenaBytes: Int
    /// Labelled frames learned from since construction or the last `reset`.
    public private(set) var sampleCount = 0
    /// Whether the last `learn` applied an update (the weights changed).
    public private(set) var lastLearnUpdated = false

    /// - Throws: what `HomeostasisConfiguration.validate` and `HomeostaticLearner.init` throw;
    ///   `.invalidArgument(name: "learning", ...)` for a model with no parameter that can train;
    ///   `.shapeMismatch(operand: "effects", ...)`; `.budgetExceeded`.
    /// - Note: Allocates (construction only).
    public init(spec: ModelSpec, store: ParameterStore, configuration: HomeostasisConfiguration, arena: Arena,
                kernels: Kernels = .best) throws(LichenError) {
        try configuration.validate()
        let before = arena.stats.lowUsedBytes
        var indices: [Int] = []
        for i in 0..<store.count where store[i].canTrain { indices.append(i) }
        guard !indices.isEmpty else {
            throw .invalidArgument(name: "learning", value: 0, reason: "the model has no f32 parameter to learn (quantized weights stay frozen)")
        }
        store.freezeAll()
        for i in indices { try store.setTrainable(true, index: i) }
        initial = try ParameterCopies(of: store, indices: indices, arena: arena)
        let graph = try Graph(spec: spec, store: store, batchSize: 1, arena: arena,
                              options: GraphOptions(training: true, batchNormMode: .runningStatistics), kernels: kernels)
        learner = try HomeostaticLearner(graph: graph, configuration: configuration, arena: arena)
        values = indices.map { store[$0].value }
        names = indices.map { store[$0].name }
        arenaBytes = arena.stats.lowUsedBytes - before
    }

    /// Learns from one labelled frame and returns the class predicted for it before its update.
    ///
    /// - Throws: what `HomeostaticLearner.learn(frame:label:)` throws. Bad input (a label that
    ///   is not a class, a frame of another size, NaN or infinity) is refused before anything
    ///   changes; an error from the graph partway (a diverged model) drops the minibatch being
    ///   gathered, so the next frame starts a clean one and the weights stay as they were.
    /// - Note: Allocates nothing.
    public func learn(frame: TensorView, label: Int) throws(LichenError) -> Int {
        lastLearnUpdated = false
        let updates = learner.updateCount
        do {
            let p = try learner.learn(frame: frame, label: label)
            sampleCount += 1
            lastLearnUpdated = learner.updateCount != updates
            return p
        } catch {
            // The learner checks the label, the frame's size and its values before anything
            // changes; what fails after that came from the graph or the update.
            switch error {
            case .invalidArgument, .shapeMismatch, .unsupportedElementType:
                break
            case .nonFiniteValue where (try? frame.firstNonFiniteIndex()) != nil:
                break
            default:
                try? learner.dropMinibatch()
            }
            throw error
        }
    }

    /// Puts the trained values back to the model's and starts the learner over (η0, empty
    /// minibatch and memory).
    /// - Note: Allocates nothing.
    public func reset() throws(LichenError) {
        try initial.load(into: values)
        try learner.restart()
        sampleCount = 0
        lastLearnUpdated = true
    }

    /// Counters the adapted state keeps: η (f64 bits) and the labelled frames learned from.
    static let stateCounterCount = 2

    func readStateCounters(_ c: UnsafeMutablePointer<UInt64>) {
        c[0] = learner.learningRate.bitPattern
        c[1] = UInt64(sampleCount)
    }

    /// Takes η and the frame count back from a saved state whose values were just loaded.
    /// - Throws: `.malformedFile` for an η that is not finite or below the floor.
    func writeStateCounters(_ c: UnsafePointer<UInt64>) throws(LichenError) {
        do {
            try learner.resume(learningRate: Double(bitPattern: c[0]))
        } catch {
            throw .malformedFile(offset: 0, reason: "online learning's learning rate is not finite or below the floor")
        }
        sampleCount = Int(truncatingIfNeeded: c[1])
        lastLearnUpdated = true
    }
}
