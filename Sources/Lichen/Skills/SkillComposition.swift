/// PSEC's composition of a skill library into one policy (methods.md §1.4): every Dense layer
/// of the diffusion policy computes `W(s) = W0 + Σ_i α_i(s) · s_i · B_i A_i`, with α from the
/// context-aware module (`.contextAware`) or given (`.fixed`), through an `AdapterSet` with
/// per-sample weights over the policy's graph. Base and skills stay frozen; only θ trains.
public final class SkillComposition {
    /// Where α comes from.
    public enum Mode {
        /// α(s; θ) from the module, trained with the composed policy's denoising loss.
        case contextAware
        /// The same α for every state (given, or picked by a grid search).
        case fixed([Float])
    }

    /// Where the skills are mixed (the paper's Figure 4).
    public enum Level {
        /// PSEC: inside every layer, `W(s) = W0 + Σ α_i s_i B_i A_i`; one network pass per step.
        case parameter
        /// NSEC: each skill's own network predicts noise, mixed per step: `ε̂ = Σ α_i ε̂_i`.
        case noise
        /// ASEC: each skill samples a whole action, mixed: `a = clip(Σ α_i a_i)`.
        case action
    }

    public let policy: DiffusionPolicy
    public let skills: [LoRAAdapter]
    public let set: AdapterSet
    public let module: ContextAwareModule
    public private(set) var mode: Mode

    /// Composes `skills` over `policy` (built with `trainAdapters: true`, so every Dense layer runs
    /// backward and dα reaches every layer).
    ///
    /// - Parameters:
    ///   - hidden: the module's hidden widths (paper 256, 256; small 64, 64).
    /// - Throws: `.invalidArgument(name: "policy", ...)` for a policy graph built without
    ///   `trainAdapters`; as `AdapterSet(... perSampleWeights: true)` (skills of another base or
    ///   shape) and `ContextAwareModule`; `.budgetExceeded`.
    /// - Note: Allocates (build time). Freezes every parameter of the policy's store.
    public init(policy: DiffusionPolicy, skills: [LoRAAdapter], base: AdapterBase, hidden: [Int], seed: UInt64, arena: Arena,
                mode: Mode = .contextAware) throws(LichenError) {
        guard policy.graph.options.trainAdapters else {
            throw .invalidArgument(name: "policy", value: 0, reason: "build the policy with trainAdapters: true to compose skills")
        }
        policy.store.freezeAll()
        set = try AdapterSet(members: skills.map { AdapterSet.Member($0) }, graph: policy.graph, base: base, arena: arena,
                             perSampleWeights: true)
        module = try ContextAwareModule(stateCount: policy.shape.stateCount, hidden: hidden, skillCount: skills.count,
                                        batchSize: policy.graph.batchSize, seed: seed, arena: arena)
        self.policy = policy
        self.skills = skills
        self.mode = .contextAware
        let n = policy.graph.batchSize, act = policy.shape.actionCount
        mixStorage = try HeapBuffer(arena: arena, byteCount: 4 * (n * skills.count + 2 * n * act))
        alphaCopy = try mixStorage.view(byteOffset: 0, type: .f32, shape: try Shape(n, skills.count))
        mixed = try mixStorage.view(byteOffset: 4 * n * skills.count, type: .f32, shape: try Shape(n, act))
        skillActions = try mixStorage.view(byteOffset: 4 * (n * skills.count + n * act), type: .f32, shape: try Shape(n, act))
        try setMode(mode)
    }

    let mixStorage: HeapBuffer
    /// α of the states being sampled, the mixed noise or actions, one skill's actions.
    let alphaCopy: TensorView
    let mixed: TensorView
    let skillActions: TensorView

    /// Samples actions for `states` with the skills mixed at `level` (α from the mode), over
    /// caller-drawn standard normals `noise` f32 `[T, n, act]` (the same noise for every skill at
    /// the noise and action levels).
    /// - Throws: as `DiffusionPolicy.sample` and `ContextAwareModule.forward`.
    /// - Note: Allocates nothing.
    public func sample(states: TensorView, noise: TensorView, level: Level, into actions: TensorView) throws(LichenError) {
        let n = states.shape.rank == 2 ? states.shape[0] : 0
        guard n >= 1 && n <= policy.graph.batchSize else {
            throw .invalidArgument(name: "batch", value: n, reason: "must be in 1...the batch size the policy was built for")
        }
        let k = skills.count, act = policy.shape.actionCount
        try writeAlpha(states: states, n: n)
        guard let weights = set.sampleWeights else { return }
        let w = try weights.f32Elements("sample weights"), alpha = try alphaCopy.f32Elements("alpha")
        for i in 0..<(n * k) { alpha[i] = w[i] }
        try policy.graph.setAdapters(set)
        /// Sets every sample's weights to skill `i` alone.
        func only(_ i: Int) {
            for r in 0..<n { for j in 0..<k { w[r * k + j] = j == i ? 1 : 0 } }
        }
        switch level {
        case .parameter:
            try policy.sample(states: states, noise: noise, into: actions)
        case .noise:
            let mix = try mixed.f32Elements("mixed noise")
            try policy.sample(states: states, noise: noise, into: actions) { (_, count) throws(LichenError) in
                for i in 0..<(count * act) { mix[i] = 0 }
                for i in 0..<k {
                    only(i)
                    let e = try self.policy.predictStagedNoise(count: count)
                    for r in 0..<count { for j in 0..<act { mix[r * act + j] += alpha[r * k + i] * e[r * act + j] } }
                }
                return mix
            }
        case .action:
            let mix = try mixed.f32Elements("mixed actions"), one = try skillActions.f32Elements("skill actions")
            for i in 0..<(n * act) { mix[i] = 0 }
            for i in 0..<k {
                only(i)
                try policy.sample(states: states, noise: noise, into: try skillActions.leadingRows(0, count: n))
                for r in 0..<n { for j in 0..<act { mix[r * act + j] += alpha[r * k + i] * one[r * act + j] } }
            }
            guard actions.elementCount == n * act else {
                throw .shapeMismatch(operand: "actions", dimension: 0, expected: n * act, got: actions.elementCount)
            }
            let out = try actions.f32Elements("actions")
            for i in 0..<(n * act) { out[i] = min(1, max(-1, mix[i])) }
        }
        for i in 0..<(n * k) { w[i] = alpha[i] }
    }

    /// Switches between the context-aware module and a fixed α.
    /// - Throws: `.shapeMismatch(operand: "alpha", ...)` for a fixed α of another count than k;
    ///   `.nonFiniteValue(operand: "alpha", ...)`.
    public func setMode(_ mode: Mode) throws(LichenError) {
        if case .fixed(let alpha) = mode {
            guard alpha.count == skills.count else {
                throw .shapeMismatch(operand: "alpha", dimension: 0, expected: skills.count, got: alpha.count)
            }
            for (i, a) in alpha.enumerated() where !a.isFinite { throw .nonFiniteValue(operand: "alpha", index: i) }
        }
        self.mode = mode
    }

    /// Writes α for the n states into the set's per-sample weights.
    func writeAlpha(states: TensorView, n: Int) throws(LichenError) {
        guard let weights = set.sampleWeights else { return }
        let w = try weights.f32Elements("sample weights")
        let k = skills.count
        switch mode {
        case .contextAware:
            let a = try module.forward(states: states).f32Elements("alpha")
            for i in 0..<(n * k) { w[i] = a[i] }
        case .fixed(let alpha):
            for r in 0..<n { for i in 0..<k { w[r * k + i] = alpha[i] } }
        }
    }

    /// The composed policy's denoising loss (`DiffusionPolicy.denoisingLoss`) with α from the
    /// mode; with `backward` in `.contextAware` mode, adds dLoss/dθ into the module's gradients
    /// (zero them between steps with `module.store.zeroGradients()`).
    /// - Throws: as `DiffusionPolicy.denoisingLoss` and `ContextAwareModule.forward`.
    /// - Note: Allocates nothing.
    public func loss(actions: TensorView, states: TensorView, epsilon: TensorView, steps: [Int], backward: Bool) throws(LichenError) -> Float {
        let n = states.shape.rank == 2 ? states.shape[0] : 0
        guard n >= 1 && n <= policy.graph.batchSize else {
            throw .invalidArgument(name: "batch", value: n, reason: "must be in 1...the batch size the policy was built for")
        }
        try writeAlpha(states: states, n: n)
        try set.sampleWeightGradient?.fill(0)
        try policy.graph.setAdapters(set)
        let value = try policy.denoisingLoss(actions: actions, states: states, epsilon: epsilon, steps: steps, backward: backward)
        if backward, case .contextAware = mode, let g = set.sampleWeightGradient {
            try module.backward(alphaGradient: try g.leadingRows(0, count: n))
        }
        return value
    }
}
