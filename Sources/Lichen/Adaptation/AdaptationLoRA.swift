/// Frugal mode's optional LoRA trainables: one adapter of rank r on the chosen conv and linear
/// layers, `y = W x + (alpha / r) · B (A x)` over the frozen (possibly quantized) base, trained
/// beside the norm layers' affine parameters. A starts as PEFT's (uniform in ±1/sqrt(n_in) from
/// `seed`), B = 0, so the adapted model starts equal to the source model.
public struct AdaptationLoRA: Sendable, Equatable {
    /// r, the rank of every target (1 ... min(n_in, n_out) of each).
    public var rank: Int
    /// alpha: B·A is scaled by alpha / r (alpha 0: by 1, llama.cpp's rule).
    public var alpha: Float
    /// "conv" (every conv layer, grouped ones skipped), "linear" (every linear layer), or layer names.
    public var targets: [String]
    /// Seed of A's initial values.
    public var seed: UInt64

    public init(rank: Int, alpha: Float? = nil, targets: [String] = ["conv", "linear"], seed: UInt64 = 1) {
        self.rank = rank
        self.alpha = alpha ?? Float(2 * rank)
        self.targets = targets
        self.seed = seed
    }

    /// The target shapes on `spec`'s layers, in layer order (each layer once).
    ///
    /// - Throws: `.invalidArgument(name: "lora.targets", ...)` for an empty selection or a named
    ///   layer that is not a linear or ungrouped conv layer; `.notFound(kind: "LoRA target layer",
    ///   name:)` for a name that is no layer; `.invalidArgument(name: "LoRA rank", value: r, ...)`
    ///   when r is outside 1 ... min(n_in, n_out) of a chosen layer; what `inferShapes` throws.
    public func targetShapes(spec: ModelSpec) throws(LichenError) -> [LoRATargetShape] {
        let outputs = try spec.inferShapes()
        var chosen = [Bool](repeating: false, count: spec.layers.count)
        for item in targets {
            switch item {
            case "conv":
                for i in 0..<spec.layers.count where AdaptationLoRA.isConv(spec.layers[i].kind) && spec.layers[i].groups == 1 {
                    chosen[i] = true
                }
            case "linear":
                for i in 0..<spec.layers.count where spec.layers[i].kind == .linear { chosen[i] = true }
            default:
                var found = -1
                for i in 0..<spec.layers.count where spec.layers[i].name == item { found = i }
                guard found >= 0 else { throw .notFound(kind: "LoRA target layer", name: item) }
                let layer = spec.layers[found]
                guard layer.kind == .linear || (AdaptationLoRA.isConv(layer.kind) && layer.groups == 1) else {
                    throw .invalidArgument(name: "lora.targets", value: found,
                                           reason: "LoRA applies to linear and ungrouped conv layers; the layer at this index is neither")
                }
                chosen[found] = true
            }
        }
        var shapes: [LoRATargetShape] = []
        for i in 0..<spec.layers.count where chosen[i] {
            let layer = spec.layers[i]
            let source = layer.inputs.isEmpty ? -1 : layer.inputs[0]
            let input = source < 0 ? spec.inputShape : outputs[source]
            let inputCount: Int
            if layer.kind == .linear {
                inputCount = input[input.rank - 1]
            } else {
                inputCount = input[0] * layer.kernelW * (layer.kind == .conv2d ? layer.kernelH : 1)
            }
            let shape = LoRATargetShape(weightName: layer.name + ".weight", rank: rank, inputCount: inputCount,
                                        outputCount: layer.outputs)
            try LoRAAdapter.validate(shape)
            shapes.append(shape)
        }
        guard !shapes.isEmpty else {
            throw .invalidArgument(name: "lora.targets", value: targets.count, reason: "the targets select no linear or conv layer")
        }
        return shapes
    }

    static func isConv(_ kind: LayerKind) -> Bool { kind == .conv2d || kind == .conv1d }
}

/// The values a gradient method trains, in one order shared by the optimizer, the teacher,
/// anchor and snapshot copies, restore and reset: the store's trained parameters (norm γ, β in
/// frugal mode, every f32 parameter in full mode) by store index, then A and B of every target
/// of the LoRA adapter, when there is one.
///
/// Construction sets the store's trainable flags and makes the adapter (memory from the
/// arena's heap); `attach(to:arena:)` makes the student graph apply it. The adapter set and
/// the graph reference each other: `deinit` clears the graph's set so both can go.
///
/// - Note: Construction and `attach` allocate; nothing else does.
final class Trainables {
    /// Store indices of the trained parameters.
    let parameterIndices: [Int]
    /// The live values (store parameters, then A, B of each target) and their gradients.
    let values: [TensorView]
    let gradients: [TensorView]
    /// The trainable LoRA adapter (nil without `lora`).
    let adapter: LoRAAdapter?
    /// The base identity the adapter was made for.
    let base: AdapterBase?
    /// The student graph's set, once attached.
    private(set) var studentSet: AdapterSet?

    /// - Throws: `.invalidArgument(name: "lora", ...)` for LoRA in full mode or a bad rank /
    ///   alpha; what `AdaptationLoRA.targetShapes` and `selectTrainable` throw (nothing to train);
    ///   `.budgetExceeded`.
    init(store: ParameterStore, spec: ModelSpec, mode: AdaptationMode, lora: AdaptationLoRA?, arena: Arena) throws(LichenError) {
        var adapter: LoRAAdapter? = nil
        var base: AdapterBase? = nil
        if let lora {
            guard mode == .frugal else {
                throw .invalidArgument(name: "lora", value: lora.rank, reason: "LoRA adapters are frugal mode's trainables; full mode trains every weight")
            }
            _ = try Checked.finite(lora.alpha, name: "lora.alpha", in: 0...LoRAAdapter.maximumAlpha)
            let shapes = try lora.targetShapes(spec: spec)
            let identity = try AdapterBase(name: spec.architecture, store: store)
            let a = try LoRAAdapter(name: "adaptation", base: identity, alpha: lora.alpha, shapes: shapes, trainable: true, arena: arena)
            try a.initializeForTraining(seed: lora.seed)
            adapter = a
            base = identity
        }
        let indices = try AdaptationSession.selectTrainable(store, mode: mode, allowEmpty: adapter != nil)
        store.freezeAll()
        for i in indices { try store.setTrainable(true, index: i) }
        var values: [TensorView] = [], gradients: [TensorView] = []
        for i in indices {
            guard let g = store[i].gradient else {
                throw .invalidArgument(name: "trainable", value: i, reason: "a trained parameter has no gradient")
            }
            values.append(store[i].value)
            gradients.append(g)
        }
        if let adapter {
            for t in adapter.targets {
                guard let ga = t.gradientA, let gb = t.gradientB else {
                    throw .invalidArgument(name: "lora", value: 0, reason: "the adapter has no gradients")
                }
                values.append(t.a)
                gradients.append(ga)
                values.append(t.b)
                gradients.append(gb)
            }
        }
        parameterIndices = indices
        self.values = values
        self.gradients = gradients
        self.adapter = adapter
        self.base = base
    }

    deinit {
        if let studentSet { try? studentSet.graph.setAdapters(nil) }
    }

    /// Makes `graph` (built with `trainAdapters` when there is an adapter) apply the adapter.
    func attach(to graph: Graph, arena: Arena) throws(LichenError) {
        guard let adapter, let base else { return }
        let set = try AdapterSet(members: [AdapterSet.Member(adapter)], graph: graph, base: base, arena: arena)
        try graph.setAdapters(set)
        studentSet = set
    }

    /// Every value with its gradient, for the optimizer.
    func trainableParameters(group: Int = 0) -> [TrainableParameter] {
        var list: [TrainableParameter] = []
        for k in 0..<values.count { list.append(TrainableParameter(value: values[k], gradient: gradients[k], group: group)) }
        return list
    }

    /// Sets every gradient to 0.
    /// - Note: Allocates nothing.
    func zeroGradients() throws(LichenError) {
        for k in 0..<gradients.count { try gradients[k].fill(0) }
    }

    /// Number of trained values.
    var valueCount: Int {
        var n = 0
        for k in 0..<values.count { n += values[k].elementCount }
        return n
    }
}

extension Trainables {
    /// A name per value, in the order of `values`: the store parameter's name, then
    /// "lora.<weight>.a" and "lora.<weight>.b" per adapter target (the adapted state's file).
    func stateNames(store: ParameterStore) -> [String] {
        var names: [String] = []
        for i in parameterIndices { names.append(store[i].name) }
        if let adapter {
            for t in adapter.targets {
                names.append("lora." + t.weightName + ".a")
                names.append("lora." + t.weightName + ".b")
            }
        }
        return names
    }
}
