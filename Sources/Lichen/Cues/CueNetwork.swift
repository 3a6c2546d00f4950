/// The second complementary-cue regressor: a small Lichen network (features → hidden, ELU →
/// 1) trained online by backprop with the training engine (`Graph`, `MeanSquaredErrorLoss`):
/// one plain SGD step, w ← w − η ∂L/∂w, on each learned sample, batch 1. The update is
/// `SGD.step`'s arithmetic without momentum or decay, written out over the trainables (as the
/// homeostatic learner does), because `SGD.step` allocates in a debug build. Targets are divided by `targetScale`
/// (τ_gt) so that the obstacle boundary sits near 1; estimates are multiplied back.
///
/// Memory: the parameters, gradients, the training graph's step memory and three small tensors
/// come from the arena's low end at construction. `predict` and `learn` allocate nothing.
public final class CueNetwork {
    public let graph: Graph
    public let store: ParameterStore
    let values: [TensorView]
    let gradients: [TensorView]
    let learningRate: Float
    let input: TensorView
    let target: TensorView
    let gradient: TensorView
    let targetScale: Float
    /// SGD steps taken.
    public private(set) var stepCount = 0

    /// - Throws: `.invalidArgument` for a bad size or rate; what `Graph` and `SGD` throw;
    ///   `.budgetExceeded`.
    public init(featureCount: Int, hidden: Int, learningRate: Float, targetScale: Float, seed: UInt64, arena: Arena)
        throws(LichenError)
    {
        guard hidden >= 1 && hidden <= 1024 else {
            throw .invalidArgument(name: "CueNetwork.hidden", value: hidden, reason: "must be in 1...1024")
        }
        guard learningRate.isFinite && learningRate > 0 && learningRate <= 1 else {
            throw .invalidArgument(name: "CueNetwork.learningRate", value: 0, reason: "must be in (0, 1]")
        }
        guard targetScale.isFinite && targetScale > 0 else {
            throw .invalidArgument(name: "CueNetwork.targetScale", value: 0, reason: "must be finite and > 0")
        }
        var fc1 = LayerSpec(kind: .linear, name: "fc1", inputs: [-1])
        fc1.outputs = hidden
        let elu = LayerSpec(kind: .elu, name: "elu1", inputs: [0])
        var fc2 = LayerSpec(kind: .linear, name: "fc2", inputs: [1])
        fc2.outputs = 1
        let spec = ModelSpec(architecture: "cue-mlp", inputShape: try Shape(featureCount), classCount: 1, layers: [fc1, elu, fc2])
        store = ParameterStore(arena: arena)
        try ParameterInitializer.initialize(spec, into: store, seed: seed)
        graph = try Graph(spec: spec, store: store, batchSize: 1, arena: arena, options: GraphOptions(training: true))
        var values: [TensorView] = [], gradients: [TensorView] = []
        try store.forEachTrainable { (_, value, gradient) throws(LichenError) in
            values.append(value)
            gradients.append(gradient)
        }
        self.values = values
        self.gradients = gradients
        self.learningRate = learningRate
        input = try arena.persistentTensor(.f32, try Shape(1, featureCount))
        target = try arena.persistentTensor(.f32, try Shape(1, 1))
        gradient = try arena.persistentTensor(.f32, try Shape(1, 1))
        self.targetScale = targetScale
    }

    /// The network's estimate for `x` on the target's scale.
    /// - Note: Allocates nothing.
    public func predict(_ x: F32Elements) throws(LichenError) -> Float {
        try load(x)
        return try graph.forward(input: input).f32Elements("output")[0] * targetScale
    }

    /// One SGD step on (x, target): forward, MSE gradient, backward, update. Returns the loss
    /// on the scaled target before the step.
    /// - Throws: `.invalidArgument` when the output is not finite, `.nonFiniteValue(operand:
    ///   "gradient", ...)` for a non-finite gradient (the network diverged; the weights are left
    ///   as they were).
    /// - Note: Allocates nothing.
    @discardableResult
    public func learn(_ x: F32Elements, target value: Float) throws(LichenError) -> Float {
        try load(x)
        try store.zeroGradients()
        let output = try graph.forward(input: input)
        try target.f32Elements("target")[0] = value / targetScale
        let loss = try MeanSquaredErrorLoss().compute(predictions: output, targets: target, gradient: gradient)
        try graph.backward(outputGradient: gradient)
        // Nothing is updated unless every gradient is finite.
        for j in 0..<gradients.count {
            if let i = try gradients[j].f32Elements("gradient").firstNonFiniteIndex() {
                throw .nonFiniteValue(operand: "gradient", index: i)
            }
        }
        for j in 0..<values.count {
            let w = try values[j].f32Elements("value"), g = try gradients[j].f32Elements("gradient")
            for i in 0..<w.count { w[i] -= learningRate * g[i] }
        }
        stepCount += 1
        return loss
    }

    private func load(_ x: F32Elements) throws(LichenError) {
        let v = try input.f32Elements("input")
        for i in 0..<v.count { v[i] = x[i] }
    }
}
