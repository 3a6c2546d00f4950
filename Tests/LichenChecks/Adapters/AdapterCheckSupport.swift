import Lichen

/// A small model for the adapter checks: conv2d (2 -> 4 channels, 4x4 kernel, pad 1: a weight
/// row of 32 values) -> relu -> flatten (64) -> linear 64 -> 32 -> relu -> linear 32 -> 3.
/// Every weight row is whole 32-value blocks, so the base can be f32, q8_0 or q4_0.
struct AdapterCheckModel {
    let arena: Arena
    let store: ParameterStore
    let graph: Graph
    let base: AdapterBase
    /// The weights as the graph sees them (dequantized for a quantized base), row form, in `targets` order.
    let weights: [[Float]]
    static let inputDims = [2, 5, 5]
    static let targets: [(name: String, bias: String, rows: Int, k: Int)] = [
        ("conv.weight", "conv.bias", 4, 32), ("fc1.weight", "fc1.bias", 32, 64), ("fc2.weight", "fc2.bias", 3, 32),
    ]

    static var spec: ModelSpec {
        graphSpec(inputDims, [
            graphLayer(.conv2d, "conv", [-1]) { $0.outputs = 4; $0.kernelH = 4; $0.kernelW = 4; $0.padH = 1; $0.padW = 1 },
            graphLayer(.relu, "relu1", [0]),
            graphLayer(.flatten, "flat", [1]),
            graphLayer(.linear, "fc1", [2]) { $0.outputs = 32 },
            graphLayer(.relu, "relu2", [3]),
            graphLayer(.linear, "fc2", [4]) { $0.outputs = 3 },
        ])
    }

    /// The model with weights of `type` from `seed`, batch `batch`.
    init(type: ElementType, seed: UInt64, batch: Int, options: GraphOptions = GraphOptions(), name: String = "check-base",
         biasSeed: UInt64 = 99)
        throws(LichenError)
    {
        var rng = SplitMix64(seed: seed)
        var biasRng = SplitMix64(seed: biasSeed)
        arena = try Arena(byteCount: 32 << 20)
        store = ParameterStore(arena: arena)
        var weights: [[Float]] = []
        for t in AdapterCheckModel.targets {
            let values = rng.floats(t.rows * t.k, -0.5, 0.5)
            if type == .f32 {
                try store.add(name: t.name, role: .weight, shape: try Shape(t.rows, t.k), values: values, trainable: false)
                weights.append(values)
            } else {
                let (q, d) = try graphDequantized(values, rows: t.rows, k: t.k, type)
                try store.add(name: t.name, role: .weight, copying: try q.view(type, [t.rows, t.k]))
                weights.append(d.map { Float($0) })
            }
            try store.add(name: t.bias, role: .bias, shape: try Shape(t.rows), values: biasRng.floats(t.rows, -0.1, 0.1), trainable: false)
        }
        self.weights = weights
        graph = try Graph(spec: AdapterCheckModel.spec, store: store, batchSize: batch, arena: arena, options: options)
        base = try AdapterBase(name: name, store: store)
    }

    /// An adapter over `targets` (weight name, rank) with random A and B.
    func adapter(_ name: String, alpha: Float, _ targets: [(String, Int)], seed: UInt64, trainable: Bool = false)
        throws(LichenError) -> LoRAAdapter
    {
        var shapes: [LoRATargetShape] = []
        for (w, r) in targets {
            for t in AdapterCheckModel.targets where t.name == w {
                shapes.append(LoRATargetShape(weightName: w, rank: r, inputCount: t.k, outputCount: t.rows))
            }
        }
        let a = try LoRAAdapter(name: name, base: base, alpha: alpha, shapes: shapes, trainable: trainable, arena: arena)
        var rng = SplitMix64(seed: seed)
        for t in a.targets {
            try t.a.copy(from: rng.floats(t.a.elementCount, -0.5, 0.5))
            try t.b.copy(from: rng.floats(t.b.elementCount, -0.5, 0.5))
        }
        return a
    }
}

/// Naive merge in Double: `W + Σ s · B · A` for one weight, row form [rows, k].
func adapterNaiveMerge(_ w: [Float], rows: Int, k: Int, _ members: [AdapterSet.Member], weightName: String) throws(LichenError) -> [Float] {
    var out = w.map { Double($0) }
    for m in members {
        guard let ti = m.adapter.targetIndex(of: weightName) else { continue }
        let t = m.adapter.targets[ti]
        let a = try t.a.toArray(), b = try t.b.toArray()
        let s = m.adapter.alpha == 0 ? Double(m.scale) : Double(m.scale) * Double(m.adapter.alpha) / Double(t.rank)
        for o in 0..<rows {
            for i in 0..<k {
                var d = 0.0
                for r in 0..<t.rank { d += Double(b[o * t.rank + r]) * Double(a[r * k + i]) }
                out[o * k + i] += s * d
            }
        }
    }
    return out.map { Float($0) }
}

/// An f32 graph over the merged weights `W + Σ s · B · A` computed naively from the weights the
/// model's graph uses, with the model's biases.
func adapterMergedGraph(_ m: AdapterCheckModel, _ members: [AdapterSet.Member], batch: Int) throws(LichenError) -> Graph {
    let store = ParameterStore(arena: m.arena)
    for (i, t) in AdapterCheckModel.targets.enumerated() {
        let w = try adapterNaiveMerge(m.weights[i], rows: t.rows, k: t.k, members, weightName: t.name)
        try store.add(name: t.name, role: .weight, shape: try Shape(t.rows, t.k), values: w, trainable: false)
        try store.add(name: t.bias, role: .bias, copying: try m.store.parameter(named: t.bias).value, trainable: false)
    }
    return try Graph(spec: AdapterCheckModel.spec, store: store, batchSize: batch, arena: m.arena)
}

/// Largest |a - b| over two equally long arrays (infinity when the lengths differ).
func adapterMaxDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    var d: Float = 0
    for i in 0..<a.count { d = max(d, abs(a[i] - b[i])) }
    return d
}

/// Central finite differences of `sum(y * r)` against the A and B gradients backward left in
/// `adapters` (sampled elements), and against `dx` when given.
func adapterGradientCheck(
    _ c: inout CheckContext, _ graph: Graph, _ input: TensorView, _ xm: CheckMemory, _ r: [Float], _ adapters: [LoRAAdapter],
    dx: CheckMemory?, _ label: String, seed: UInt64
) throws(LichenError) {
    var rng = SplitMix64(seed: seed)
    let eps: Float = 1e-2
    func loss() throws(LichenError) -> Double { graphWeightedSum(try graph.forward(input: input).toArray(), r) }
    func compare(_ analytic: Float, _ fd: Float, _ what: String) {
        let err = abs(analytic - fd) - (2e-3 + 2e-2 * max(abs(analytic), abs(fd)))
        c.expect(err <= 0, label + " " + what + ": backward " + show(analytic) + ", finite difference " + show(fd))
    }
    for adapter in adapters {
        for t in adapter.targets {
            for (value, gradient, half) in [(t.a, t.gradientA, "A"), (t.b, t.gradientB, "B")] {
                guard let gradient else { c.expect(false, label + ": no gradient"); continue }
                let g = try gradient.toArray()
                for j in graphSampleIndices(value.elementCount, 8, &rng) {
                    var keep: Float = 0
                    try value.withFloats { (v) throws(LichenError) in keep = v[j] }
                    try value.withFloats { (v) throws(LichenError) in v[j] = keep + eps }
                    let lp = try loss()
                    try value.withFloats { (v) throws(LichenError) in v[j] = keep - eps }
                    let lm = try loss()
                    try value.withFloats { (v) throws(LichenError) in v[j] = keep }
                    compare(g[j], Float((lp - lm) / (2 * Double(eps))), adapter.name + " " + t.weightName + " " + half + "[\(j)]")
                }
            }
        }
    }
    guard let dx else { return }
    for j in graphSampleIndices(input.elementCount, 12, &rng) {
        let keep = xm.floats[j]
        xm.floats[j] = keep + eps
        let lp = try loss()
        xm.floats[j] = keep - eps
        let lm = try loss()
        xm.floats[j] = keep
        compare(dx.floats[j], Float((lp - lm) / (2 * Double(eps))), "input[\(j)]")
    }
}
