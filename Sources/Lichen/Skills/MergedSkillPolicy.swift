extension DiffusionPolicy {
    /// A copy of `source` (same shape, every parameter and the Fourier kernel copied by value),
    /// built for `batchSize` with its own graph; nothing of it is trainable.
    /// - Parameters:
    ///   - training: build the copy's graph for backward (false: an inference graph).
    /// - Throws: as `init(shape:batchSize:seed:arena:training:trainAdapters:)`; `.budgetExceeded`.
    /// - Note: Allocates (build time).
    public convenience init(copying source: DiffusionPolicy, batchSize: Int, arena: Arena, training: Bool = false) throws(LichenError) {
        try self.init(shape: source.shape, batchSize: batchSize, seed: 0, arena: arena, training: training)
        for i in 0..<source.store.count {
            let p = source.store[i]
            try store.parameter(named: p.name).value.copy(from: p.value)
        }
        try kernel.copy(from: source.kernel)
        store.freezeAll()
    }
}

/// PSEC's merged path for one robot state per control step (methods.md §1.4, "Runtime note"):
/// α is computed once for the state, every Dense layer's weight of an inference copy of the
/// policy is set to `W = W0 + Σ_i α_i · s_i · B_i A_i` (one f32 GEMM per skill and layer), and the
/// N candidates × T denoising passes of that step run over the merged weights with no skill path.
///
/// The factored path of the same composition is `SkillComposition.sample(states:noise:level:
/// .parameter, into:)`; both give the same actions up to rounding.
///
/// Memory: the copy's parameters and planned step region, and a `[N, state]` + `[k]` buffer, from
/// the arena at build; `merge` and `step` allocate nothing.
public final class MergedSkillPolicy {
    /// The composition whose base, skills and α it merges.
    public let composition: SkillComposition
    /// The inference copy whose Dense weights hold W(α) after `merge(alpha:)`.
    public let policy: DiffusionPolicy
    /// N: candidate actions sampled per control step.
    public let candidateCount: Int

    struct Term {
        let a: TensorView
        let b: TensorView
        let scale: Float
        let skill: Int
    }

    struct Layer {
        let merged: TensorView
        let base: TensorView
        let terms: [Term]
    }

    let layers: [Layer]
    let storage: HeapBuffer
    let stateRows: TensorView
    let fixedAlpha: TensorView

    /// Builds the merged path of `composition` for `candidates` actions per control step.
    /// - Throws: `.invalidArgument(name: "candidates", ...)` outside 1...4096; `.unsupportedElementType`
    ///   for a base weight that is not f32 (merging needs its values); as `DiffusionPolicy(copying:...)`.
    /// - Note: Allocates (build time).
    public init(composition: SkillComposition, candidates: Int, arena: Arena) throws(LichenError) {
        guard candidates >= 1 && candidates <= 4096 else {
            throw .invalidArgument(name: "candidates", value: candidates, reason: "must be in 1...4096")
        }
        let source = composition.policy
        policy = try DiffusionPolicy(copying: source, batchSize: candidates, arena: arena)
        var layers: [Layer] = []
        for name in DiffusionPolicy.denseLayerNames(source.shape) {
            let base = try source.store.parameter(named: name + ".weight").value
            try base.require(.f32, "base weight")
            var terms: [Term] = []
            for (i, skill) in composition.skills.enumerated() {
                guard let t = skill.targetIndex(of: name + ".weight") else { continue }
                terms.append(Term(a: skill.targets[t].a, b: skill.targets[t].b, scale: skill.effectiveScale(1, target: t), skill: i))
            }
            layers.append(Layer(merged: try policy.store.parameter(named: name + ".weight").value, base: base, terms: terms))
        }
        self.layers = layers
        self.composition = composition
        candidateCount = candidates
        let sc = source.shape.stateCount, k = composition.skills.count
        let rowBytes = (candidates * sc * 4 + 63) / 64 * 64
        storage = try HeapBuffer(arena: arena, byteCount: rowBytes + k * 4)
        stateRows = try storage.view(byteOffset: 0, type: .f32, shape: try Shape(candidates, sc))
        fixedAlpha = try storage.view(byteOffset: rowBytes, type: .f32, shape: try Shape(k))
    }

    /// Sets every Dense weight of the copy to `W0 + Σ_i α_i s_i B_i A_i` for α (f32, first k values used).
    /// - Throws: `.shapeMismatch(operand: "alpha", ...)` for fewer than k values; `.nonFiniteValue(operand: "alpha", index:)`.
    /// - Note: Allocates nothing.
    public func merge(alpha: TensorView) throws(LichenError) {
        let k = composition.skills.count
        guard alpha.elementCount >= k else { throw .shapeMismatch(operand: "alpha", dimension: 0, expected: k, got: alpha.elementCount) }
        let al = try alpha.f32Elements("alpha")
        for i in 0..<k where !al[i].isFinite { throw .nonFiniteValue(operand: "alpha", index: i) }
        for layer in layers {
            try layer.merged.copy(from: layer.base)
            for t in layer.terms {
                let c = al[t.skill] * t.scale
                if c == 0 { continue }
                // W[out, in] += c · B[out, r] · A[r, in]
                try Kernels.sgemm(t.b, t.a, into: layer.merged, alpha: c, beta: 1)
            }
        }
    }

    /// One control step: α for `state` (f32 `[1, state]`) from the composition's mode, `merge`, then
    /// the DDPM sampler for the N candidates of that state over `noise` (f32 `[T, N, act]`) into
    /// `actions` (f32 `[N, act]`).
    /// - Throws: as `merge`, `ContextAwareModule.forward`, `DiffusionPolicy.sample`; `.shapeMismatch(operand: "state", ...)`.
    /// - Note: Allocates nothing.
    public func step(state: TensorView, noise: TensorView, into actions: TensorView) throws(LichenError) {
        let sc = policy.shape.stateCount
        guard state.elementCount == sc && state.shape.rank == 2 else {
            throw .shapeMismatch(operand: "state", dimension: 0, expected: sc, got: state.elementCount)
        }
        switch composition.mode {
        case .contextAware:
            try merge(alpha: try composition.module.forward(states: state))
        case .fixed(let alpha):
            let f = try fixedAlpha.f32Elements("alpha")
            for i in 0..<f.count { f[i] = alpha[i] }
            try merge(alpha: fixedAlpha)
        }
        let s = try state.f32Elements("state"), rows = try stateRows.f32Elements("state rows")
        for r in 0..<candidateCount { for j in 0..<sc { rows[r * sc + j] = s[j] } }
        try policy.sample(states: stateRows, noise: noise, into: actions)
    }
}
