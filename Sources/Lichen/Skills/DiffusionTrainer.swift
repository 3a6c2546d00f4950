/// State–action pairs to imitate (demonstrations, or a skill's dataset): row-major f32 values in
/// host arrays, read when minibatches are drawn (training time, never a control step).
public struct Demonstrations {
    public let states: [Float]
    public let actions: [Float]
    public let stateCount: Int
    public let actionCount: Int
    /// Pairs.
    public var count: Int { actions.count / actionCount }

    /// - Throws: `.invalidArgument` for no pairs or counts that are not whole rows of the same
    ///   number of pairs; `.nonFiniteValue(operand: "states" / "actions", index:)`.
    public init(states: [Float], actions: [Float], stateCount: Int, actionCount: Int) throws(LichenError) {
        guard stateCount >= 1 && actionCount >= 1 else {
            throw .invalidArgument(name: "demonstrations", value: min(stateCount, actionCount), reason: "state and action counts must be >= 1")
        }
        guard !actions.isEmpty && actions.count % actionCount == 0 && states.count == actions.count / actionCount * stateCount else {
            throw .invalidArgument(name: "demonstrations", value: states.count, reason: "states and actions must be whole rows of the same pairs")
        }
        for (i, v) in states.enumerated() where !v.isFinite { throw .nonFiniteValue(operand: "states", index: i) }
        for (i, v) in actions.enumerated() where !v.isFinite { throw .nonFiniteValue(operand: "actions", index: i) }
        self.states = states
        self.actions = actions
        self.stateCount = stateCount
        self.actionCount = actionCount
    }
}

/// The training loop behind every PSEC policy part (methods.md §1.2–1.4): minibatches of `batchSize`
/// pairs drawn with replacement from demonstrations, ε standard normal and the diffusion step t
/// uniform in 0..<T per sample, all from one seed; one loss with backward and one Adam step per
/// iteration, with the learning rate on a cosine decay (lr · ½(1 + cos(π i / steps))).
///
/// - `trainPolicy`: every trainable parameter of a policy (the base π0 by behaviour cloning, or a
///   whole network from scratch).
/// - `trainSkill`: one LoRA skill over the frozen base (expansion, or a skill per behaviour).
/// - `trainComposition`: the context-aware module α(s; θ) of a composition, base and skills frozen,
///   with the loss of the level the skills are mixed at: parameter (PSEC: the composed policy's
///   denoising loss), noise (NSEC: the denoising loss of ε̂ = Σ α_i ε̂_i) or action (ASEC: the squared
///   error of a = Σ α_i a_i, each a_i sampled by skill i alone).
///
/// Memory: the batch buffers (and the per-skill buffers for `skillCount` skills) in one
/// `HeapBuffer` at build; each `train*` call builds its Adam (moments from the arena). An
/// iteration allocates nothing but the Swift array of steps it reuses.
public final class DiffusionTrainer {
    public let shape: DiffusionPolicyShape
    public let batchSize: Int
    public let skillCount: Int
    /// The current minibatch: actions `[B, act]`, states `[B, state]`, ε `[B, act]`, steps.
    public let actions: TensorView
    public let states: TensorView
    public let epsilon: TensorView
    public private(set) var steps: [Int]
    var noise: NormalSource
    let storage: HeapBuffer
    /// Per skill, a prediction or an action `[k, B, act]`; α copy and dα `[B, k]`; sampler noise `[T, B, act]`.
    let perSkill: TensorView
    let alphaCopy: TensorView
    let alphaGradient: TensorView
    let samplerNoise: TensorView

    /// - Parameters:
    ///   - skillCount: the skills of the compositions trained here at the noise or action level (0: none).
    /// - Throws: `.invalidArgument` for a batch outside 1...65536 or a skill count outside
    ///   0...256; `.budgetExceeded`.
    /// - Note: Allocates (build time).
    public init(shape: DiffusionPolicyShape, batchSize: Int, skillCount: Int = 0, seed: UInt64, arena: Arena) throws(LichenError) {
        guard batchSize >= 1 && batchSize <= 65536 else {
            throw .invalidArgument(name: "batch", value: batchSize, reason: "must be in 1...65536")
        }
        guard skillCount >= 0 && skillCount <= AdapterSet.maximumMemberCount else {
            throw .invalidArgument(name: "skill count", value: skillCount, reason: "must be in 0...256")
        }
        self.shape = shape
        self.batchSize = batchSize
        self.skillCount = skillCount
        let b = batchSize, act = shape.actionCount, k = max(skillCount, 1)
        func bytes(_ floats: Int) -> Int { (floats * 4 + 63) / 64 * 64 }
        let sizes = [b * act, b * shape.stateCount, b * act, k * b * act, b * k, b * k, shape.stepCount * b * act]
        var offsets: [Int] = []
        var total = 0
        for s in sizes {
            offsets.append(total)
            total += bytes(s)
        }
        storage = try HeapBuffer(arena: arena, byteCount: total)
        actions = try storage.view(byteOffset: offsets[0], type: .f32, shape: try Shape(b, act))
        states = try storage.view(byteOffset: offsets[1], type: .f32, shape: try Shape(b, shape.stateCount))
        epsilon = try storage.view(byteOffset: offsets[2], type: .f32, shape: try Shape(b, act))
        perSkill = try storage.view(byteOffset: offsets[3], type: .f32, shape: try Shape(k, b, act))
        alphaCopy = try storage.view(byteOffset: offsets[4], type: .f32, shape: try Shape(b, k))
        alphaGradient = try storage.view(byteOffset: offsets[5], type: .f32, shape: try Shape(b, k))
        samplerNoise = try storage.view(byteOffset: offsets[6], type: .f32, shape: try Shape(shape.stepCount, b, act))
        steps = [Int](repeating: 0, count: b)
        noise = NormalSource(seed: seed)
    }

    func check(_ data: Demonstrations) throws(LichenError) {
        guard data.stateCount == shape.stateCount else {
            throw .shapeMismatch(operand: "demonstration states", dimension: 1, expected: shape.stateCount, got: data.stateCount)
        }
        guard data.actionCount == shape.actionCount else {
            throw .shapeMismatch(operand: "demonstration actions", dimension: 1, expected: shape.actionCount, got: data.actionCount)
        }
    }

    /// Draws the next minibatch from `data` (pairs with replacement, ε, t).
    /// - Throws: `.shapeMismatch` for data of other state or action counts.
    /// - Note: Allocates nothing.
    public func drawBatch(from data: Demonstrations) throws(LichenError) {
        try check(data)
        let a = try actions.f32Elements("actions"), s = try states.f32Elements("states"), e = try epsilon.f32Elements("epsilon")
        let act = shape.actionCount, sc = shape.stateCount
        for r in 0..<batchSize {
            let i = noise.index(below: data.count)
            for j in 0..<act { a[r * act + j] = data.actions[i * act + j] }
            for j in 0..<sc { s[r * sc + j] = data.states[i * sc + j] }
            for j in 0..<act { e[r * act + j] = noise.next() }
            steps[r] = noise.index(below: shape.stepCount)
        }
    }

    /// `steps` iterations of: draw a batch, `zero()`, `loss()` (which runs backward), an Adam step
    /// at the cosine-decayed rate. Returns the mean loss of the last tenth of the iterations.
    /// - Throws: `.invalidArgument(name: "steps", ...)` for a negative count; what the closures and Adam throw.
    public func train(_ data: Demonstrations, steps count: Int, optimizer: Adam, learningRate: Float,
                      zero: () throws(LichenError) -> Void, loss: () throws(LichenError) -> Float) throws(LichenError) -> Float {
        guard count >= 0 else { throw .invalidArgument(name: "steps", value: count, reason: "must be >= 0") }
        var tail = 0.0, tailCount = 0
        let tailStart = count - max(count / 10, 1)
        for i in 0..<count {
            try drawBatch(from: data)
            let decay = 0.5 * (1 + FourierTime.cos(Double.pi * Double(i) / Double(max(count, 1))))
            try optimizer.setLearningRate(learningRate * Float(decay), group: 0)
            try zero()
            let l = try loss()
            try optimizer.step()
            if i >= tailStart {
                tail += Double(l)
                tailCount += 1
            }
        }
        return tailCount > 0 ? Float(tail / Double(tailCount)) : Float.nan
    }

    /// The mean of `loss()` (no backward: the closure decides) over `batches` minibatches drawn
    /// from `seed`; the training sequence is left where it was (model selection, grid searches).
    public func evaluate(_ data: Demonstrations, batches: Int, seed: UInt64, loss: () throws(LichenError) -> Float) throws(LichenError) -> Float {
        let saved = noise
        noise = NormalSource(seed: seed)
        defer { noise = saved }
        var sum = 0.0
        for _ in 0..<max(batches, 1) {
            try drawBatch(from: data)
            sum += Double(try loss())
        }
        return Float(sum / Double(max(batches, 1)))
    }

    /// Trains every trainable parameter of `policy` (no adapters) with the denoising loss.
    /// - Throws: as `train`; `.invalidArgument(name: "batch", ...)` when the policy's graph takes a smaller batch.
    public func trainPolicy(_ policy: DiffusionPolicy, data: Demonstrations, steps count: Int, learningRate: Float,
                            arena: Arena) throws(LichenError) -> Float {
        try requireBatch(policy)
        var params: [TrainableParameter] = []
        try policy.store.forEachTrainable { (_, value, gradient) throws(LichenError) in
            params.append(TrainableParameter(value: value, gradient: gradient, group: 0))
        }
        let adam = try Adam(parameters: params, groups: [Adam.Group(learningRate: learningRate)], arena: arena)
        try policy.graph.setAdapters(nil)
        return try train(data, steps: count, optimizer: adam, learningRate: learningRate, zero: { () throws(LichenError) in
            try policy.store.zeroGradients()
        }, loss: { () throws(LichenError) -> Float in
            try policy.denoisingLoss(actions: self.actions, states: self.states, epsilon: self.epsilon, steps: self.steps, backward: true)
        })
    }

    /// Trains `skill` (trainable) inside `set` over the frozen `policy` (built with `trainAdapters`).
    /// - Throws: as `train`, `SkillExpansion.trainStep`.
    public func trainSkill(_ skill: LoRAAdapter, set: AdapterSet, policy: DiffusionPolicy, data: Demonstrations, steps count: Int,
                           learningRate: Float, arena: Arena) throws(LichenError) -> Float {
        try requireBatch(policy)
        let adam = try Adam(parameters: skill.trainableParameters(), groups: [Adam.Group(learningRate: learningRate)], arena: arena)
        return try train(data, steps: count, optimizer: adam, learningRate: learningRate, zero: { () throws(LichenError) in
            try skill.zeroGradients()
        }, loss: { () throws(LichenError) -> Float in
            try policy.graph.setAdapters(set)
            return try policy.denoisingLoss(actions: self.actions, states: self.states, epsilon: self.epsilon, steps: self.steps, backward: true)
        })
    }

    /// Trains the context-aware module of `composition` (in `.contextAware` mode) with the loss of `level`.
    /// - Throws: as `train`, `compositionLoss`.
    public func trainComposition(_ composition: SkillComposition, level: SkillComposition.Level, data: Demonstrations, steps count: Int,
                                 learningRate: Float, arena: Arena) throws(LichenError) -> Float {
        try requireBatch(composition.policy)
        try composition.setMode(.contextAware)
        let adam = try Adam(parameters: try composition.module.trainableParameters(), groups: [Adam.Group(learningRate: learningRate)],
                            arena: arena)
        return try train(data, steps: count, optimizer: adam, learningRate: learningRate, zero: { () throws(LichenError) in
            try composition.module.store.zeroGradients()
        }, loss: { () throws(LichenError) -> Float in
            try self.compositionLoss(composition, level: level, backward: true)
        })
    }

    func requireBatch(_ policy: DiffusionPolicy) throws(LichenError) {
        guard policy.graph.batchSize >= batchSize else {
            throw .invalidArgument(name: "batch", value: batchSize, reason: "the policy's graph was built for a smaller batch")
        }
        guard policy.shape == shape else {
            throw .invalidArgument(name: "policy", value: policy.shape.hidden, reason: "the policy's shape differs from the trainer's")
        }
    }

    /// The loss of `composition` on the current minibatch at `level` (α from its mode); with
    /// `backward` in `.contextAware` mode, adds dLoss/dθ into the module's gradients.
    ///
    /// - parameter: `SkillComposition.loss` (the composed policy's denoising loss).
    /// - noise: `(1/B) Σ_n Σ_j (ε − Σ_i α_i ε̂_i)²` with ε̂_i skill i's prediction alone on the same noisy
    ///   input; `dα_i = (2/B) Σ_j (Σ α ε̂ − ε)_j ε̂_i,j`.
    /// - action: each skill samples an action for the states (DDPM over fresh standard normals from
    ///   the trainer's sequence), `a = Σ_i α_i a_i`, loss `(1/B) Σ_n Σ_j (a − a_demo)²`, `dα_i = (2/B) Σ_j (a − a_demo)_j a_i,j`.
    /// - Throws: `.invalidArgument(name: "skill count", ...)` at the noise and action levels for a
    ///   composition of another number of skills than the trainer was built for; as `DiffusionPolicy.denoisingLoss` / `sample`, `ContextAwareModule`.
    /// - Note: Allocates nothing.
    public func compositionLoss(_ composition: SkillComposition, level: SkillComposition.Level, backward: Bool) throws(LichenError) -> Float {
        if case .parameter = level {
            return try composition.loss(actions: actions, states: states, epsilon: epsilon, steps: steps, backward: backward)
        }
        let k = composition.skills.count, n = batchSize, act = shape.actionCount
        guard k == skillCount else { throw .invalidArgument(name: "skill count", value: k, reason: "the trainer was built for another number of skills") }
        let policy = composition.policy
        try requireBatch(policy)
        let states = try self.states.leadingRows(0, count: n)
        try composition.writeAlpha(states: states, n: n)
        guard let weights = composition.set.sampleWeights else { return Float.nan }
        let w = try weights.f32Elements("sample weights"), alpha = try alphaCopy.f32Elements("alpha")
        for r in 0..<n { for i in 0..<k { alpha[r * k + i] = w[r * k + i] } }
        try policy.graph.setAdapters(composition.set)
        let outputs = try perSkill.f32Elements("per-skill outputs")
        let target = try (level == .noise ? epsilon : actions).f32Elements("target")
        if level == .noise {
            // Stage the noisy inputs x_t = √ᾱ_t a + √(1 − ᾱ_t) ε once; every skill predicts on them.
            let a = try actions.f32Elements("actions"), e = try epsilon.f32Elements("epsilon"), s = try states.f32Elements("states")
            let rows = try policy.inputRows.f32Elements("input rows")
            let f = shape.inputCount
            for r in 0..<n {
                let t = steps[r]
                try policy.stage(row: r, x: a, xOffset: r * act, states: s, step: t)
                let sa = policy.schedule.alphaBars[t].squareRoot(), se = (1 - policy.schedule.alphaBars[t]).squareRoot()
                for j in 0..<act { rows[r * f + j] = sa * a[r * act + j] + se * e[r * act + j] }
            }
            for i in 0..<k {
                for r in 0..<n { for j in 0..<k { w[r * k + j] = j == i ? 1 : 0 } }
                let p = try policy.predictStagedNoise(count: n)
                for v in 0..<(n * act) { outputs[i * n * act + v] = p[v] }
            }
        } else {
            let z = try samplerNoise.f32Elements("sampler noise")
            noise.fill(z)
            for i in 0..<k {
                for r in 0..<n { for j in 0..<k { w[r * k + j] = j == i ? 1 : 0 } }
                try policy.sample(states: states, noise: samplerNoise, into: try perSkill.skillBlock(i, rows: n, columns: act))
            }
        }
        for v in 0..<(n * k) { w[v] = alpha[v] }
        let g = try alphaGradient.f32Elements("alpha gradient")
        var loss = 0.0
        for r in 0..<n {
            for i in 0..<k { g[r * k + i] = 0 }
            for j in 0..<act {
                var mix: Float = 0
                for i in 0..<k { mix += alpha[r * k + i] * outputs[i * n * act + r * act + j] }
                let d = mix - target[r * act + j]
                loss += Double(d) * Double(d)
                for i in 0..<k { g[r * k + i] += 2 * d * outputs[i * n * act + r * act + j] / Float(n) }
            }
        }
        if backward, case .contextAware = composition.mode {
            try composition.module.backward(alphaGradient: try alphaGradient.leadingRows(0, count: n))
        }
        return Float(loss / Double(n))
    }
}

extension TensorView {
    /// Skill i's `[rows, columns]` block of a `[k, B, columns]` view (contiguous rows i·B ..< i·B + rows).
    func skillBlock(_ i: Int, rows: Int, columns: Int) throws(LichenError) -> TensorView {
        let all = try reshaped(try Shape(shape[0] * shape[1], columns))
        return try all.leadingRows(i * shape[1], count: rows)
    }
}
