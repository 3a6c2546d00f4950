/// The sizes of PSEC's IDQL-style noise predictor ε_θ(a_t, s, t) (methods.md §1.2).
public struct DiffusionPolicyShape: Equatable, Sendable {
    public var actionCount: Int
    public var stateCount: Int
    /// Fourier kernel size h (the time embedding has 2h values).
    public var timeFeatures: Int
    /// Width of the condition MLP on the time embedding.
    public var conditionWidth: Int
    /// Width of the residual stream.
    public var hidden: Int
    /// Width inside each residual block.
    public var blockInner: Int
    public var blockCount: Int
    /// T.
    public var stepCount: Int

    public init(actionCount: Int, stateCount: Int, timeFeatures: Int, conditionWidth: Int, hidden: Int, blockInner: Int,
                blockCount: Int, stepCount: Int = 5) {
        self.actionCount = actionCount
        self.stateCount = stateCount
        self.timeFeatures = timeFeatures
        self.conditionWidth = conditionWidth
        self.hidden = hidden
        self.blockInner = blockInner
        self.blockCount = blockCount
        self.stepCount = stepCount
    }

    /// The paper's size: time embedding 64 (h = 32), condition 128, hidden 256, 3 blocks of 1024, T = 5.
    public static func paper(actionCount: Int, stateCount: Int) -> DiffusionPolicyShape {
        DiffusionPolicyShape(actionCount: actionCount, stateCount: stateCount, timeFeatures: 32, conditionWidth: 128,
                             hidden: 256, blockInner: 1024, blockCount: 3)
    }

    /// The small CPU size (methods.md §1.6): hidden 64, 2 blocks (inner 4 × 64), time embedding
    /// 32 (h = 16), condition 64, T = 5.
    public static func small(actionCount: Int, stateCount: Int) -> DiffusionPolicyShape {
        DiffusionPolicyShape(actionCount: actionCount, stateCount: stateCount, timeFeatures: 16, conditionWidth: 64,
                             hidden: 64, blockInner: 256, blockCount: 2)
    }

    /// Features of the network's input row `[a_t, s, embedding(t)]`.
    public var inputCount: Int { actionCount + stateCount + 2 * timeFeatures }
}

/// PSEC's diffusion policy (methods.md §1.2) as one `Graph` over the input row
/// `[a_t, s, [cos 2πtw, sin 2πtw]]`:
///
/// `xs` = slice(a_t, s) · `temb` = slice(embedding) · `cond1` Dense(c) · silu · `cond2` Dense(c) ·
/// `cat` = concat(xs, cond) · `in` Dense(hidden) · per block i: `b<i>_ln` LayerNorm ·
/// `b<i>_fc1` Dense(inner) · silu · `b<i>_fc2` Dense(hidden) · `b<i>_add` (residual) ·
/// silu · `out` Dense(act_dim).
///
/// Every Dense layer is a linear layer of the graph, so a LoRA skill may adapt every one
/// (`denseLayerNames`), through an `AdapterSet` or a `ComposedLinear` per layer. The Fourier
/// kernel w (h values) lives outside the graph, frozen (a uniform draw with IDQL's N(0, 0.2)
/// spread: ±0.2·√3). Dropout (p = 0.1 in the paper's blocks, training only) is not applied: the
/// graph has no dropout layer.
///
/// `denoisingLoss` is the IDQL loss `mean_n Σ_j (ε − ε̂)²`; `sample` runs the DDPM sampler with
/// caller-given standard normals. Neither allocates after build.
public final class DiffusionPolicy {
    public let shape: DiffusionPolicyShape
    public let schedule: VPSchedule
    public let store: ParameterStore
    public let graph: Graph
    /// The Fourier kernel, f32 `[h]`, frozen.
    public let kernel: TensorView
    let inputRows: TensorView
    let lossGradient: TensorView
    let storage: HeapBuffer

    /// The graph description for `shape`.
    /// - Throws: `.invalidArgument` for a size outside 1...16777216 (naming it).
    public static func spec(_ s: DiffusionPolicyShape) throws(LichenError) -> ModelSpec {
        for (name, v) in [("action count", s.actionCount), ("state count", s.stateCount), ("time features", s.timeFeatures),
                          ("condition width", s.conditionWidth), ("hidden", s.hidden), ("block inner", s.blockInner)] as [(StaticString, Int)] {
            guard v >= 1 && v <= ModelSpecLimits.maximumExtent else { throw .invalidArgument(name: name, value: v, reason: "must be in 1...16777216") }
        }
        guard s.blockCount >= 0 && s.blockCount <= 64 else {
            throw .invalidArgument(name: "block count", value: s.blockCount, reason: "must be in 0...64")
        }
        var layers: [LayerSpec] = []
        func add(_ kind: LayerKind, _ name: String, _ inputs: [Int], outputs: Int = 0, start: Int = 0) -> Int {
            var l = LayerSpec(kind: kind, name: name, inputs: inputs)
            l.outputs = outputs
            l.start = start
            layers.append(l)
            return layers.count - 1
        }
        let xs = add(.slice, "xs", [-1], outputs: s.actionCount + s.stateCount)
        let temb = add(.slice, "temb", [-1], outputs: 2 * s.timeFeatures, start: s.actionCount + s.stateCount)
        var h = add(.linear, "cond1", [temb], outputs: s.conditionWidth)
        h = add(.silu, "cond_act", [h])
        let cond = add(.linear, "cond2", [h], outputs: s.conditionWidth)
        let cat = add(.concat, "cat", [xs, cond])
        var x = add(.linear, "in", [cat], outputs: s.hidden)
        for b in 0..<s.blockCount {
            let p = "b" + String(b) + "_"
            var y = add(.layerNorm, p + "ln", [x])
            y = add(.linear, p + "fc1", [y], outputs: s.blockInner)
            y = add(.silu, p + "act", [y])
            y = add(.linear, p + "fc2", [y], outputs: s.hidden)
            x = add(.add, p + "add", [x, y])
        }
        x = add(.silu, "out_act", [x])
        _ = add(.linear, "out", [x], outputs: s.actionCount)
        return ModelSpec(architecture: "psec-diffusion", inputShape: try Shape(s.inputCount), classCount: s.actionCount, layers: layers)
    }

    /// The names of every Dense layer (LoRA targets are `<name>.weight`).
    public static func denseLayerNames(_ s: DiffusionPolicyShape) -> [String] {
        var names = ["cond1", "cond2", "in"]
        for b in 0..<s.blockCount { names += ["b" + String(b) + "_fc1", "b" + String(b) + "_fc2"] }
        return names + ["out"]
    }

    /// A policy with freshly initialised parameters (`ParameterInitializer`, seeded) and kernel.
    /// - Parameters:
    ///   - training: build the graph for backward (pretraining, skills, α).
    ///   - trainAdapters: also let backward reach trainable LoRA adapters (skill training).
    /// - Throws: as `spec(_:)`, `VPSchedule(stepCount:)`, `Graph.init`; `.budgetExceeded`.
    /// - Note: Allocates (build time).
    public init(shape: DiffusionPolicyShape, batchSize: Int, seed: UInt64, arena: Arena, training: Bool = true,
                trainAdapters: Bool = false) throws(LichenError) {
        let spec = try DiffusionPolicy.spec(shape)
        schedule = try VPSchedule(stepCount: shape.stepCount)
        let store = ParameterStore(arena: arena)
        try ParameterInitializer.initialize(spec, into: store, seed: seed)
        graph = try Graph(spec: spec, store: store, batchSize: batchSize, arena: arena, options: GraphOptions(training: training || trainAdapters, trainAdapters: trainAdapters))
        self.store = store
        self.shape = shape
        let h = shape.timeFeatures
        let kernelBytes = (h * 4 + 63) / 64 * 64
        let inputBytes = (batchSize * shape.inputCount * 4 + 63) / 64 * 64
        storage = try HeapBuffer(arena: arena, byteCount: kernelBytes + inputBytes + batchSize * shape.actionCount * 4)
        kernel = try storage.view(byteOffset: 0, type: .f32, shape: try Shape(h))
        inputRows = try storage.view(byteOffset: kernelBytes, type: .f32, shape: try Shape(batchSize, shape.inputCount))
        lossGradient = try storage.view(byteOffset: kernelBytes + inputBytes, type: .f32, shape: try Shape(batchSize, shape.actionCount))
        var random = SplitMix64Random(seed: seed ^ 0x5EC5_EC5E_C5EC_5EC5)
        let w = try kernel.f32Elements("kernel")
        let bound: Float = 0.2 * Float(3).squareRoot()
        for j in 0..<h {
            let unit = Float(random.next() >> 40) * (1.0 / Float(1 << 24))
            w[j] = (2 * unit - 1) * bound
        }
    }

    /// Fills input row `n` with `[x, s, embedding(t)]`.
    func stage(row n: Int, x: F32Elements, xOffset: Int, states: F32Elements, step t: Int) throws(LichenError) {
        let rows = try inputRows.f32Elements("input rows")
        let a = shape.actionCount, s = shape.stateCount, f = shape.inputCount, o = n * f
        for j in 0..<a { rows[o + j] = x[xOffset + j] }
        for j in 0..<s { rows[o + a + j] = states[n * s + j] }
        let w = try kernel.f32Elements("kernel")
        let h = shape.timeFeatures
        for j in 0..<h {
            let phase = 2 * Double.pi * Double(t) * Double(w[j])
            rows[o + a + s + j] = Float(FourierTime.cos(phase))
            rows[o + a + s + h + j] = Float(FourierTime.sin(phase))
        }
    }

    func checkBatch(_ v: TensorView, _ columns: Int, _ operand: StaticString) throws(LichenError) -> Int {
        try v.require(.f32, operand)
        guard v.shape.rank == 2 else { throw .shapeMismatch(operand: operand, dimension: -1, expected: 2, got: v.shape.rank) }
        guard v.shape[1] == columns else { throw .shapeMismatch(operand: operand, dimension: 1, expected: columns, got: v.shape[1]) }
        let n = v.shape[0]
        guard n >= 1 && n <= graph.batchSize else {
            throw .invalidArgument(name: "batch", value: n, reason: "must be in 1...the batch size the policy was built for")
        }
        if let i = try v.firstNonFiniteIndex() { throw .nonFiniteValue(operand: operand, index: i) }
        return n
    }

    /// The denoising loss `(1/n) Σ_n Σ_j (ε[n, j] − ε̂(√ᾱ_t a + √(1 − ᾱ_t) ε, s, t)[n, j])²` with
    /// step index `steps[n]` (0-based) per sample; with `backward`, also adds its gradient into
    /// every trainable parameter (and the LoRA adapters the graph is set to train).
    ///
    /// - Parameters: actions, epsilon f32 `[n, act]`; states f32 `[n, state]`; steps n values in 0..<T.
    /// - Throws: shape errors naming the operand; `.nonFiniteValue`; `.invalidArgument(name:
    ///   "diffusion step", ...)`; `.invalidArgument(name: "steps", ...)` for a count other than n.
    /// - Note: Allocates nothing.
    public func denoisingLoss(actions: TensorView, states: TensorView, epsilon: TensorView, steps: [Int], backward: Bool)
        throws(LichenError) -> Float
    {
        let n = try checkBatch(actions, shape.actionCount, "actions")
        guard try checkBatch(states, shape.stateCount, "states") == n, try checkBatch(epsilon, shape.actionCount, "epsilon") == n else {
            throw .shapeMismatch(operand: "states", dimension: 0, expected: n, got: states.shape[0])
        }
        guard steps.count == n else { throw .invalidArgument(name: "steps", value: steps.count, reason: "one step index per sample") }
        let a = try actions.f32Elements("actions"), e = try epsilon.f32Elements("epsilon"), s = try states.f32Elements("states")
        let rows = try inputRows.f32Elements("input rows")
        let f = shape.inputCount, act = shape.actionCount
        for r in 0..<n {
            let t = steps[r]
            guard t >= 0 && t < shape.stepCount else { throw .invalidArgument(name: "diffusion step", value: t, reason: "must be in 0..<T") }
            try stage(row: r, x: a, xOffset: r * act, states: s, step: t)
            let sa = schedule.alphaBars[t].squareRoot(), se = (1 - schedule.alphaBars[t]).squareRoot()
            for j in 0..<act { rows[r * f + j] = sa * a[r * act + j] + se * e[r * act + j] }
        }
        let predicted = try graph.forward(input: try inputRows.leadingRows(0, count: n)).f32Elements("predicted noise")
        let g = try lossGradient.f32Elements("loss gradient")
        var loss: Double = 0
        for i in 0..<(n * act) {
            let d = predicted[i] - e[i]
            loss += Double(d) * Double(d)
            g[i] = 2 * d / Float(n)
        }
        if backward { try graph.backward(outputGradient: try lossGradient.leadingRows(0, count: n)) }
        return Float(loss / Double(n))
    }

    /// DDPM sampling (methods.md §1.2): `x_T = z_0`; for t = T−1 … 0, ε̂ = ε_θ(x, s, t) and one
    /// `VPSchedule.denoise` step (clipped to [−1, 1]; noise `z_{T−t}` when t > 0). Writes the
    /// actions into `actions`.
    ///
    /// - Parameters:
    ///   - states: f32 `[n, state]`.
    ///   - noise: f32 `[T, n, act]` standard normals (caller-drawn, so a seed decides every action).
    ///   - actions: f32 `[n, act]`, the result.
    /// - Throws: shape errors naming the operand; `.nonFiniteValue`.
    /// - Note: Allocates nothing.
    public func sample(states: TensorView, noise: TensorView, into actions: TensorView, temperature: Float = 1) throws(LichenError) {
        try sample(states: states, noise: noise, into: actions, temperature: temperature) { (_, n) throws(LichenError) in
            try self.graph.forward(input: try self.inputRows.leadingRows(0, count: n)).f32Elements("predicted noise")
        }
    }

    /// The sampler with the noise prediction given by `predict(t, n)`, called once per step after
    /// the input rows `[x, s, embedding(t)]` are staged (`predictNoise(rows:)` runs the graph on them):
    /// NSEC mixes several predictions there.
    /// - Note: Allocates nothing (the closure does not escape).
    public func sample(states: TensorView, noise: TensorView, into actions: TensorView, temperature: Float = 1,
                       predict: (_ step: Int, _ count: Int) throws(LichenError) -> F32Elements) throws(LichenError) {
        let n = try checkBatch(states, shape.stateCount, "states")
        let act = shape.actionCount, steps = shape.stepCount
        guard noise.elementCount == steps * n * act else {
            throw .shapeMismatch(operand: "noise", dimension: 0, expected: steps * n * act, got: noise.elementCount)
        }
        guard actions.elementCount == n * act else {
            throw .shapeMismatch(operand: "actions", dimension: 0, expected: n * act, got: actions.elementCount)
        }
        let z = try noise.f32Elements("noise"), x = try actions.f32Elements("actions"), s = try states.f32Elements("states")
        if let i = z.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "noise", index: i) }
        for i in 0..<(n * act) { x[i] = z[i] }
        var t = steps - 1
        while t >= 0 {
            for r in 0..<n { try stage(row: r, x: x, xOffset: r * act, states: s, step: t) }
            let eps = try predict(t, n)
            guard eps.count >= n * act else {
                throw .shapeMismatch(operand: "predicted noise", dimension: 0, expected: n * act, got: eps.count)
            }
            let block = (steps - t) % steps * n * act  // z_{T−t} for t > 0 (unused at t = 0)
            for i in 0..<(n * act) {
                var v = (x[i] - (1 - schedule.alphas[t]) / (1 - schedule.alphaBars[t]).squareRoot() * eps[i]) / schedule.alphas[t].squareRoot()
                if t > 0 { v += schedule.betas[t].squareRoot() * temperature * z[block + i] }
                x[i] = min(1, max(-1, v))
            }
            t -= 1
        }
    }

    /// The graph's noise prediction for the staged input rows (first `count`), valid until the next forward.
    /// - Note: Allocates nothing.
    public func predictStagedNoise(count: Int) throws(LichenError) -> F32Elements {
        try graph.forward(input: try inputRows.leadingRows(0, count: count)).f32Elements("predicted noise")
    }
}
