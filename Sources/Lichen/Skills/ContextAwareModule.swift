/// PSEC's context-aware composition module α(s; θ) (methods.md §1.4): an MLP on the state
/// (default two hidden layers of 256, ReLU) with a linear head of k outputs, one weight per
/// skill. No softmax and no normalisation: the weights are unconstrained reals.
///
/// It is a `Graph` of linear and relu layers (`spec(stateCount:hidden:skillCount:)`), so its
/// forward and backward are the graph's: `backward(alphaGradient:)` takes dLoss/dα (from
/// `ComposedLinear.backward` summed over the composed layers) and adds dLoss/dθ into the
/// module's own parameter gradients. Only θ trains; base and skills are not in its store.
public final class ContextAwareModule {
    /// State features.
    public let stateCount: Int
    /// k: skills.
    public let skillCount: Int
    /// θ: the layers' weights and biases, trainable.
    public let store: ParameterStore
    /// The MLP.
    public let graph: Graph

    /// The module's architecture: `fc1` (hidden[0]) · relu · `fc2` (hidden[1]) · relu · ... · `head` (k).
    public static func spec(stateCount: Int, hidden: [Int], skillCount: Int) throws(LichenError) -> ModelSpec {
        var layers: [LayerSpec] = []
        var from = -1
        for (i, h) in hidden.enumerated() {
            var l = LayerSpec(kind: .linear, name: "fc" + String(i + 1), inputs: [from])
            l.outputs = h
            layers.append(l)
            layers.append(LayerSpec(kind: .relu, name: "relu" + String(i + 1), inputs: [layers.count - 1]))
            from = layers.count - 1
        }
        var head = LayerSpec(kind: .linear, name: "head", inputs: [from])
        head.outputs = skillCount
        layers.append(head)
        return ModelSpec(architecture: "psec-alpha", inputShape: try Shape(stateCount), classCount: skillCount, layers: layers)
    }

    /// A module with PyTorch-default initialised θ (`ParameterInitializer`, seeded).
    ///
    /// - Parameters:
    ///   - hidden: hidden layer widths (methods.md: 256, 256; the small reproduction 64, 64).
    ///   - batchSize: largest batch of states.
    /// - Throws: `.invalidArgument` for k or a width outside 1...16777216, an empty `hidden`;
    ///   `.invalidModel` from the spec's validation; `.budgetExceeded`.
    /// - Note: Allocates (build time).
    public init(stateCount: Int, hidden: [Int] = [256, 256], skillCount: Int, batchSize: Int, seed: UInt64, arena: Arena)
        throws(LichenError)
    {
        guard skillCount >= 1 && skillCount <= AdapterSet.maximumMemberCount else {
            throw .invalidArgument(name: "skill count", value: skillCount, reason: "must be in 1...256")
        }
        guard !hidden.isEmpty else { throw .invalidArgument(name: "hidden layers", value: 0, reason: "at least one hidden layer") }
        let spec = try ContextAwareModule.spec(stateCount: stateCount, hidden: hidden, skillCount: skillCount)
        let store = ParameterStore(arena: arena)
        try ParameterInitializer.initialize(spec, into: store, seed: seed)
        graph = try Graph(spec: spec, store: store, batchSize: batchSize, arena: arena, options: GraphOptions(training: true))
        self.store = store
        self.stateCount = stateCount
        self.skillCount = skillCount
    }

    /// α for a batch of states (f32 `[n, stateCount]`): a view `[n, k]` of the graph's output,
    /// valid until the next forward.
    /// - Throws: as `Graph.forward(input:)` (`.nonFiniteValue(operand: "input", ...)` for a NaN state).
    /// - Note: Allocates nothing.
    public func forward(states: TensorView) throws(LichenError) -> TensorView {
        try graph.forward(input: states)
    }

    /// Adds dLoss/dθ for `alphaGradient` (f32 `[n, k]`, the last forward's n) into θ's gradients.
    /// - Throws: as `Graph.backward(outputGradient:)`.
    /// - Note: Allocates nothing.
    public func backward(alphaGradient: TensorView) throws(LichenError) {
        try graph.backward(outputGradient: alphaGradient)
    }

    /// θ with gradients, for `Adam` / `SGD`.
    public func trainableParameters(group: Int = 0) throws(LichenError) -> [TrainableParameter] {
        var out: [TrainableParameter] = []
        try store.forEachTrainable { (_, value, gradient) throws(LichenError) in
            out.append(TrainableParameter(value: value, gradient: gradient, group: group))
        }
        return out
    }
}
