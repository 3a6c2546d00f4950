/// Arena copies of a fixed list of trained values (a teacher, an anchor, a source snapshot):
/// `tensors[k]` mirrors the k-th value of the list it was made from (`Trainables.values`, or
/// a store's parameters by index).
///
/// - Note: Construction allocates; every other call allocates nothing.
struct ParameterCopies {
    let tensors: [TensorView]

    /// Copies of the current values of `values` (each must be f32).
    init(of values: [TensorView], arena: Arena) throws(LichenError) {
        var list: [TensorView] = []
        list.reserveCapacity(values.count)
        for v in values {
            try v.require(.f32, "parameter")
            let copy = try arena.persistentTensor(.f32, v.shape)
            try copy.copy(from: v)
            list.append(copy)
        }
        self.tensors = list
    }

    /// Copies of the current values of `indices` in `store` (each must be f32).
    init(of store: ParameterStore, indices: [Int], arena: Arena) throws(LichenError) {
        var values: [TensorView] = []
        for i in indices { values.append(store[i].value) }
        try self.init(of: values, arena: arena)
    }

    /// Copies that view existing tensors (no allocation).
    init(tensors: [TensorView]) {
        self.tensors = tensors
    }

    /// Writes these values into `values` (same order and shapes).
    func load(into values: [TensorView]) throws(LichenError) {
        for k in 0..<tensors.count { try values[k].copy(from: tensors[k]) }
    }

    /// Overwrites these values with `values`'.
    func save(from values: [TensorView]) throws(LichenError) {
        for k in 0..<tensors.count { try tensors[k].copy(from: values[k]) }
    }

    /// Overwrites these values with `other`'s (same order and shapes).
    func copy(from other: ParameterCopies) throws(LichenError) {
        for k in 0..<tensors.count { try tensors[k].copy(from: other.tensors[k]) }
    }

    /// Mean-teacher update over every value, in f32: θ′ ← α θ′ + (1 − α) θ, θ from `values`.
    func exponentialMovingAverage(towards values: [TensorView], momentum alpha: Float) throws(LichenError) {
        let beta = 1 - alpha
        for k in 0..<tensors.count {
            let t = try tensors[k].f32Elements("teacher"), s = try values[k].f32Elements("student")
            for j in 0..<t.count { t[j] = alpha * t[j] + beta * s[j] }
        }
    }

    /// Total number of values.
    var valueCount: Int {
        var n = 0
        for k in 0..<tensors.count { n += tensors[k].elementCount }
        return n
    }
}

/// An inference graph with batch statistics over a second `ParameterStore` that shares the
/// student store's frozen parameters (adopted read-only, no copy) and holds its own copies of
/// the trained ones (the "slots"), so teacher and anchor passes need only the trainables. With
/// a LoRA adapter among the trainables the graph applies a frozen copy of it, whose A and B are
/// the last slots. Slot k mirrors `trainables.values[k]`.
///
/// - Note: Construction allocates (slots, the adapter copy and its set, the graph's step
///   region); nothing else does.
final class SharedWeightGraph {
    let store: ParameterStore
    let graph: Graph
    /// The slot tensors, in the order of `trainables.values`.
    let slots: ParameterCopies
    /// The frozen copy of the student's adapter this graph applies (nil without LoRA).
    let adapter: LoRAAdapter?
    private let adapterSet: AdapterSet?

    init(
        spec: ModelSpec, student: ParameterStore, trainables: Trainables, batchSize: Int, arena: Arena, kernels: Kernels,
        tapLayer: Int = -1
    ) throws(LichenError) {
        let shared = ParameterStore(arena: arena)
        var isTrained = [Bool](repeating: false, count: student.count)
        for i in trainables.parameterIndices { isTrained[i] = true }
        for i in 0..<student.count {
            let p = student[i]
            if isTrained[i] {
                let copy = try arena.persistentTensor(.f32, p.value.shape)
                try copy.copy(from: p.value)
                try shared.adopt(name: p.name, role: p.role, view: copy, writable: true, trainable: false)
            } else {
                try shared.adopt(name: p.name, role: p.role, view: p.value, writable: false, trainable: false)
            }
        }
        var tensors: [TensorView] = []
        for i in trainables.parameterIndices { tensors.append(shared[i].value) }
        store = shared
        graph = try Graph(spec: spec, store: shared, batchSize: batchSize, arena: arena,
                          options: GraphOptions(batchNormMode: .batchStatistics, tapLayer: tapLayer), kernels: kernels)
        if let source = trainables.adapter, let base = trainables.base {
            var shapes: [LoRATargetShape] = []
            for t in source.targets { shapes.append(t.shape) }
            let copy = try LoRAAdapter(name: "adaptation-copy", base: base, alpha: source.alpha, shapes: shapes, trainable: false,
                                       arena: arena)
            for k in 0..<copy.targets.count {
                try copy.targets[k].a.copy(from: source.targets[k].a)
                try copy.targets[k].b.copy(from: source.targets[k].b)
                tensors.append(copy.targets[k].a)
                tensors.append(copy.targets[k].b)
            }
            let set = try AdapterSet(members: [AdapterSet.Member(copy)], graph: graph, base: base, arena: arena)
            try graph.setAdapters(set)
            adapter = copy
            adapterSet = set
        } else {
            adapter = nil
            adapterSet = nil
        }
        slots = ParameterCopies(tensors: tensors)
    }

    deinit {
        if adapterSet != nil { try? graph.setAdapters(nil) }
    }

    /// Loads `values` into the slots.
    func load(_ values: ParameterCopies) throws(LichenError) {
        try slots.copy(from: values)
    }
}

/// The optimizer a gradient method built from an `AdaptationOptimizer`.
enum AdaptationOptimizerState {
    case adam(Adam)
    case sgd(SGD)

    init(_ configuration: AdaptationOptimizer, parameters: [TrainableParameter], groupCount: Int, arena: Arena)
        throws(LichenError)
    {
        switch configuration {
        case .adam(let lr, let b1, let b2, let eps):
            let g = Adam.Group(learningRate: lr, beta1: b1, beta2: b2, epsilon: eps)
            self = .adam(try Adam(parameters: parameters, groups: [Adam.Group](repeating: g, count: groupCount), arena: arena))
        case .sgd(let lr, let momentum, let nesterov):
            let g = SGD.Group(learningRate: lr, momentum: momentum, nesterov: nesterov)
            self = .sgd(try SGD(parameters: parameters, groups: [SGD.Group](repeating: g, count: groupCount), arena: arena))
        }
    }

    var baseLearningRate: Float {
        switch self {
        case .adam(let a): return a.groups[0].learningRate
        case .sgd(let s): return s.groups[0].learningRate
        }
    }

    func step() throws(LichenError) {
        switch self {
        case .adam(let a): try a.step()
        case .sgd(let s): try s.step()
        }
    }

    func resetState() throws(LichenError) {
        switch self {
        case .adam(let a): try a.resetState()
        case .sgd(let s): try s.resetState()
        }
    }

    func zeroGradients() throws(LichenError) {
        switch self {
        case .adam(let a): try a.parameters.zeroGradients()
        case .sgd(let s): try s.parameters.zeroGradients()
        }
    }

    func setLearningRate(_ rate: Float, group: Int) throws(LichenError) {
        switch self {
        case .adam(let a): try a.setLearningRate(rate, group: group)
        case .sgd(let s): try s.setLearningRate(rate, group: group)
        }
    }

    func setEnabled(_ enabled: Bool, group: Int) throws(LichenError) {
        switch self {
        case .adam(let a): try a.setEnabled(enabled, group: group)
        case .sgd(let s): try s.setEnabled(enabled, group: group)
        }
    }
}

extension AdaptationOptimizerState {
    func makeSnapshot(arena: Arena) throws(LichenError) -> OptimizerSnapshot {
        switch self {
        case .adam(let a): return try a.makeSnapshot(arena: arena)
        case .sgd(let s): return try s.makeSnapshot(arena: arena)
        }
    }

    func save(into snapshot: OptimizerSnapshot) throws(LichenError) {
        switch self {
        case .adam(let a): try a.save(into: snapshot)
        case .sgd(let s): try s.save(into: snapshot)
        }
    }

    func restore(from snapshot: OptimizerSnapshot) throws(LichenError) {
        switch self {
        case .adam(let a): try a.restore(from: snapshot)
        case .sgd(let s): try s.restore(from: snapshot)
        }
    }
}
