/// Arena copies of a fixed list of a store's parameters: a teacher, an anchor, a source
/// snapshot. Index k of `tensors` belongs to store index `indices[k]`.
///
/// - Note: Construction allocates; every other call allocates nothing.
struct ParameterCopies {
    let indices: [Int]
    let tensors: [TensorView]

    /// Copies of the current values of `indices` in `store` (each must be f32).
    init(of store: ParameterStore, indices: [Int], arena: Arena) throws(LichenError) {
        var list: [TensorView] = []
        list.reserveCapacity(indices.count)
        for i in indices {
            let v = store[i].value
            try v.require(.f32, "parameter")
            let copy = try arena.persistentTensor(.f32, v.shape)
            try copy.copy(from: v)
            list.append(copy)
        }
        self.indices = indices
        self.tensors = list
    }

    /// Writes these values into `store` (same indices).
    func load(into store: ParameterStore) throws(LichenError) {
        for k in 0..<indices.count { try store[indices[k]].value.copy(from: tensors[k]) }
    }

    /// Overwrites these values with `store`'s.
    func save(from store: ParameterStore) throws(LichenError) {
        for k in 0..<indices.count { try tensors[k].copy(from: store[indices[k]].value) }
    }

    /// Overwrites these values with `other`'s (same indices and shapes).
    func copy(from other: ParameterCopies) throws(LichenError) {
        for k in 0..<tensors.count { try tensors[k].copy(from: other.tensors[k]) }
    }

    /// Mean-teacher update over every value, in f32: θ′ ← α θ′ + (1 − α) θ, θ from `store`.
    func exponentialMovingAverage(towards store: ParameterStore, momentum alpha: Float) throws(LichenError) {
        let beta = 1 - alpha
        for k in 0..<indices.count {
            let t = try tensors[k].f32Elements("teacher"), s = try store[indices[k]].value.f32Elements("student")
            for j in 0..<t.count { t[j] = alpha * t[j] + beta * s[j] }
        }
    }

    /// Total number of values.
    var valueCount: Int {
        var n = 0
        for t in tensors { n += t.elementCount }
        return n
    }
}

/// An inference graph with batch statistics over a second `ParameterStore` that shares the
/// student store's frozen parameters (adopted read-only, no copy) and holds its own copies of
/// the trained ones (the "slots"), so teacher and anchor passes need only the trainables.
/// Parameter indices are the student store's.
///
/// - Note: Construction allocates (slots, the graph's step region); nothing else does.
final class SharedWeightGraph {
    let store: ParameterStore
    let graph: Graph
    /// The slot tensors, in the order of `trained`.
    let slots: ParameterCopies

    init(
        spec: ModelSpec, student: ParameterStore, trained: [Int], batchSize: Int, arena: Arena, kernels: Kernels,
        tapLayer: Int = -1
    ) throws(LichenError) {
        let shared = ParameterStore(arena: arena)
        var isTrained = [Bool](repeating: false, count: student.count)
        for i in trained { isTrained[i] = true }
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
        for i in trained { tensors.append(shared[i].value) }
        slots = ParameterCopies(indices: trained, tensors: tensors)
        store = shared
        graph = try Graph(spec: spec, store: shared, batchSize: batchSize, arena: arena,
                          options: GraphOptions(batchNormMode: .batchStatistics, tapLayer: tapLayer), kernels: kernels)
    }

    /// Loads `values` into the slots.
    func load(_ values: ParameterCopies) throws(LichenError) {
        try slots.copy(from: values)
    }
}

extension ParameterCopies {
    /// Copies that view existing tensors (no allocation).
    init(indices: [Int], tensors: [TensorView]) {
        self.indices = indices
        self.tensors = tensors
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
