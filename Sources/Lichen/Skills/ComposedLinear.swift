/// How a composed layer applies its skills.
public enum CompositionPath: UInt8, Sendable {
    /// Per sample: `y = W0 x + b0 + Σ_i α_i · s_i · B_i (A_i x)`. Any batch of different states.
    case factored = 0
    /// Once per control step: `W = W0 + Σ_i α_i · s_i · B_i A_i` for one α, then `y = W x + b0`
    /// for every pass that shares that α (the N candidates × T denoising steps of one state).
    case merged = 1

    public var name: String { self == .factored ? "factored" : "merged" }

    /// Multiply-adds spent on the skills per control step, for each path (methods.md §1.4,
    /// "Runtime note"): merging costs `R · d_in · d_out` once (R = Σ_i r_i), after which each
    /// pass costs what the base alone costs; the factored path costs `R · (d_in + d_out)` on
    /// every pass on top of the base. The base product `d_in · d_out` per pass is the same for both.
    public static func skillCosts(rankSum: Int, inputCount: Int, outputCount: Int, passesPerMerge: Int)
        -> (merge: Int, factored: Int)
    {
        let merge = rankSum.multipliedReportingOverflow(by: inputCount).partialValue
            .multipliedReportingOverflow(by: outputCount).partialValue
        let factored = passesPerMerge.multipliedReportingOverflow(by: rankSum).partialValue
            .multipliedReportingOverflow(by: inputCount + outputCount).partialValue
        return (merge, factored)
    }

    /// The cheaper path: `.merged` when `R · d_in · d_out < P · R · (d_in + d_out)`, i.e. when
    /// `d_in · d_out < P · (d_in + d_out)`, with `P` the passes sharing one α (0 or 1 when every
    /// sample has its own state: merging cannot pay then). Ties go to `.factored` (no merge buffer is touched).
    public static func cheaper(rankSum: Int, inputCount: Int, outputCount: Int, passesPerMerge: Int) -> CompositionPath {
        guard rankSum > 0 && passesPerMerge > 1 else { return .factored }
        let c = skillCosts(rankSum: rankSum, inputCount: inputCount, outputCount: outputCount, passesPerMerge: passesPerMerge)
        return c.merge < c.factored ? .merged : .factored
    }
}

/// One linear layer composed in parameter space from a frozen base and k LoRA skills (PSEC,
/// methods.md §1.4): `W(s) = W0 + Σ_{i=1..k} α_i(s) · s_i · B_i A_i`, with `s_i` the skill's
/// own factor (`LoRAAdapter.effectiveScale(1, ...)`: alpha / r, or 1 when alpha is 0) and
/// α(s) the context-aware weights (unconstrained reals, one per skill).
///
/// Two paths with equal outputs: `forwardFactored` (per sample α, any batch) and `merge` +
/// `forwardMerged` (one α, weights merged once). `path` is the one `CompositionPath.cheaper`
/// picks for the layer's sizes and the passes per merge given at build; both paths are always
/// available. `backward` gives dLoss/dα (for training the context-aware module) and dLoss/dx;
/// base and skills stay frozen (no gradient is formed for them).
///
/// A skill that does not adapt this layer contributes nothing here (its α still counts in k).
/// Memory: the merged weight `[d_out, d_in]` and a scratch of `2 · max r + d_out` floats, one
/// `HeapBuffer` from the arena's heap, allocated at build.
public final class ComposedLinear {
    /// d_in, d_out.
    public let inputCount: Int
    public let outputCount: Int
    /// k: skills (columns of α).
    public let skillCount: Int
    /// The base weight's name.
    public let weightName: String
    /// The path `CompositionPath.cheaper` chose at build.
    public let path: CompositionPath
    /// Σ r_i over the skills adapting this layer.
    public let rankSum: Int
    /// Passes sharing one α the choice was made for.
    public let passesPerMerge: Int

    let weight: F32Elements
    let bias: F32Elements?
    /// Per term (a skill adapting this layer): A `[r, d_in]`, B `[d_out, r]`, s_i, r, skill index.
    let termA: [F32Elements]
    let termB: [F32Elements]
    let termScale: [Float]
    let termRank: [Int]
    let termSkill: [Int]
    let storage: HeapBuffer?
    let merged: F32Elements
    let scratch: F32Elements
    let maxRank: Int
    /// Whether `merge(alpha:)` has run (the merged weight is valid).
    public private(set) var isMerged = false

    /// Builds the composed layer over base weight `weight` (f32 `[d_out, d_in]`) and optional
    /// bias (f32 `[d_out]`) named `weightName`, with `skills` in α's column order.
    ///
    /// - Parameters:
    ///   - passesPerMerge: passes that share one α (N candidates × T denoising steps for one
    ///     robot state; 1 or 0 for batches of different states).
    /// - Throws: `.unsupportedElementType` unless the base weight and bias are f32 (merging needs
    ///   the weight's values); `.shapeMismatch(operand: "bias", ...)`; `.parameterShapeMismatch`
    ///   for a skill whose target differs from the base weight's shape; `.invalidModel(key:
    ///   "lichen.adapter.base", ...)` when skills belong to different bases; `.invalidArgument`
    ///   for no skills or more than `AdapterSet.maximumMemberCount`; `.budgetExceeded`.
    /// - Note: Allocates (build time).
    public init(weight: TensorView, bias: TensorView?, weightName: String, skills: [LoRAAdapter], passesPerMerge: Int,
                arena: Arena) throws(LichenError) {
        guard !skills.isEmpty && skills.count <= AdapterSet.maximumMemberCount else {
            throw .invalidArgument(name: "skill count", value: skills.count, reason: "a composed layer takes 1...256 skills")
        }
        guard weight.shape.rank == 2 else {
            throw .shapeMismatch(operand: "weight", dimension: 0, expected: 2, got: weight.shape.rank)
        }
        let dOut = weight.shape[0], dIn = weight.shape[1]
        let w = try weight.f32Elements("weight")
        var bValues: F32Elements? = nil
        if let bias {
            guard bias.elementCount == dOut else {
                throw .shapeMismatch(operand: "bias", dimension: 0, expected: dOut, got: bias.elementCount)
            }
            bValues = try bias.f32Elements("bias")
        }
        var a: [F32Elements] = [], b: [F32Elements] = [], scale: [Float] = [], rank: [Int] = [], owner: [Int] = []
        var maxRank = 0, rankSum = 0
        for (i, s) in skills.enumerated() {
            guard s.base == skills[0].base else {
                throw .invalidModel(key: "lichen.adapter.base", value: s.base.name, reason: "the skills belong to different base models")
            }
            guard let ti = s.targetIndex(of: weightName) else { continue }
            let t = s.targets[ti]
            guard t.shape.inputCount == dIn else {
                throw .parameterShapeMismatch(tensor: weightName + ".lora_a", expected: AdapterSet.text(t.rank, dIn),
                                              got: AdapterSet.text(t.rank, t.shape.inputCount))
            }
            guard t.shape.outputCount == dOut else {
                throw .parameterShapeMismatch(tensor: weightName + ".lora_b", expected: AdapterSet.text(dOut, t.rank),
                                              got: AdapterSet.text(t.shape.outputCount, t.rank))
            }
            a.append(try t.a.f32Elements("lora_a"))
            b.append(try t.b.f32Elements("lora_b"))
            scale.append(s.effectiveScale(1, target: ti))
            rank.append(t.rank)
            owner.append(i)
            maxRank = max(maxRank, t.rank)
            rankSum += t.rank
        }
        let mergedCount = dOut * dIn, scratchCount = 2 * maxRank + dOut
        let mergedBytes = (mergedCount * 4 + 63) / 64 * 64
        let storage = try HeapBuffer(arena: arena, byteCount: mergedBytes + max(scratchCount, 1) * 4)
        merged = try storage.view(byteOffset: 0, type: .f32, shape: try Shape(dOut, dIn)).f32Elements("merged")
        scratch = try storage.view(byteOffset: mergedBytes, type: .f32, shape: try Shape(max(scratchCount, 1))).f32Elements("scratch")
        self.storage = storage
        self.weight = w
        self.bias = bValues
        termA = a; termB = b; termScale = scale; termRank = rank; termSkill = owner
        self.maxRank = maxRank
        self.rankSum = rankSum
        inputCount = dIn
        outputCount = dOut
        skillCount = skills.count
        self.weightName = weightName
        self.passesPerMerge = passesPerMerge
        path = CompositionPath.cheaper(rankSum: rankSum, inputCount: dIn, outputCount: dOut, passesPerMerge: passesPerMerge)
    }

    /// Checks `view` is f32 `[n, columns]` with n >= 1 and returns n.
    func rows(_ view: TensorView, _ columns: Int, _ operand: StaticString) throws(LichenError) -> Int {
        try view.require(.f32, operand)
        guard view.shape.rank == 2 && view.shape[0] >= 1 else {
            throw .shapeMismatch(operand: operand, dimension: 0, expected: 2, got: view.shape.rank)
        }
        guard view.shape[1] == columns else {
            throw .shapeMismatch(operand: operand, dimension: 1, expected: columns, got: view.shape[1])
        }
        return view.shape[0]
    }

    func sameRows(_ view: TensorView, _ n: Int, _ operand: StaticString) throws(LichenError) {
        guard view.shape[0] == n else { throw .shapeMismatch(operand: operand, dimension: 0, expected: n, got: view.shape[0]) }
    }

    /// The factored path: for every sample n, `y[n] = W0 x[n] + b0 + Σ_i α[n, i] · s_i · B_i (A_i x[n])`.
    ///
    /// - Parameters: input f32 `[n, d_in]`, alpha f32 `[n, k]`, output f32 `[n, d_out]`.
    /// - Throws: `.shapeMismatch` / `.unsupportedElementType` naming the operand;
    ///   `.nonFiniteValue(operand: "alpha", index:)`.
    /// - Note: Allocates nothing.
    public func forwardFactored(input: TensorView, alpha: TensorView, output: TensorView) throws(LichenError) {
        let n = try rows(input, inputCount, "input")
        try sameRows(alpha, n, "alpha"); _ = try rows(alpha, skillCount, "alpha")
        try sameRows(output, n, "output"); _ = try rows(output, outputCount, "output")
        let x = try input.f32Elements("input"), al = try alpha.f32Elements("alpha"), y = try output.f32Elements("output")
        if let i = al.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "alpha", index: i) }
        for s in 0..<n {
            let xo = s * inputCount, yo = s * outputCount
            for o in 0..<outputCount {
                var acc: Float = bias?[o] ?? 0
                let wo = o * inputCount
                for i in 0..<inputCount { acc += weight[wo + i] * x[xo + i] }
                y[yo + o] = acc
            }
            for t in 0..<termA.count {
                let c = al[s * skillCount + termSkill[t]] * termScale[t]
                if c == 0 { continue }
                let r = termRank[t], A = termA[t], B = termB[t]
                // u = A x  (scratch[0..<r])
                for j in 0..<r {
                    var acc: Float = 0
                    for i in 0..<inputCount { acc += A[j * inputCount + i] * x[xo + i] }
                    scratch[j] = acc
                }
                for o in 0..<outputCount {
                    var acc: Float = 0
                    for j in 0..<r { acc += B[o * r + j] * scratch[j] }
                    y[yo + o] += c * acc
                }
            }
        }
    }

    /// Merges the skills for one α (f32 `[k]` or `[1, k]`): `W = W0 + Σ_i α_i · s_i · B_i A_i`
    /// into the layer's merged weight. Call once per control step; `forwardMerged` then runs
    /// every pass of that step.
    /// - Throws: `.shapeMismatch(operand: "alpha", ...)`; `.nonFiniteValue(operand: "alpha", index:)`.
    /// - Note: Allocates nothing.
    public func merge(alpha: TensorView) throws(LichenError) {
        guard alpha.elementCount == skillCount else {
            throw .shapeMismatch(operand: "alpha", dimension: alpha.shape.rank - 1, expected: skillCount, got: alpha.elementCount)
        }
        let al = try alpha.f32Elements("alpha")
        if let i = al.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "alpha", index: i) }
        try merged.copy(from: weight)
        for t in 0..<termA.count {
            let c = al[termSkill[t]] * termScale[t]
            if c == 0 { continue }
            let r = termRank[t], A = termA[t], B = termB[t]
            for o in 0..<outputCount {
                let mo = o * inputCount
                for j in 0..<r {
                    let bj = c * B[o * r + j]
                    if bj == 0 { continue }
                    let ao = j * inputCount
                    for i in 0..<inputCount { merged[mo + i] += bj * A[ao + i] }
                }
            }
        }
        isMerged = true
    }

    /// The merged path: `y[n] = W x[n] + b0` with the weight of the last `merge(alpha:)`.
    /// - Throws: `.invalidArgument(name: "merge", ...)` when nothing was merged yet; shape errors.
    /// - Note: Allocates nothing.
    public func forwardMerged(input: TensorView, output: TensorView) throws(LichenError) {
        guard isMerged else { throw .invalidArgument(name: "merge", value: 0, reason: "merge(alpha:) must run before forwardMerged") }
        let n = try rows(input, inputCount, "input")
        try sameRows(output, n, "output"); _ = try rows(output, outputCount, "output")
        let x = try input.f32Elements("input"), y = try output.f32Elements("output")
        for s in 0..<n {
            let xo = s * inputCount, yo = s * outputCount
            for o in 0..<outputCount {
                var acc: Float = bias?[o] ?? 0
                let wo = o * inputCount
                for i in 0..<inputCount { acc += merged[wo + i] * x[xo + i] }
                y[yo + o] = acc
            }
        }
    }

    /// Backward of the factored path for the same input and α: writes dLoss/dα into
    /// `alphaGradient` (f32 `[n, k]`; a skill not adapting this layer gets 0) and, when given,
    /// dLoss/dx into `inputGradient` (f32 `[n, d_in]`). Base and skills are frozen.
    ///
    /// `dα[n, i] = s_i · (B_iᵀ dy[n]) · (A_i x[n])`; `dx[n] = W0ᵀ dy[n] + Σ_i α[n, i] s_i A_iᵀ (B_iᵀ dy[n])`.
    /// - Throws: shape and type errors naming the operand; `.nonFiniteValue(operand: "alpha" / "outputGradient", index:)`.
    /// - Note: Allocates nothing.
    public func backward(input: TensorView, alpha: TensorView, outputGradient: TensorView, alphaGradient: TensorView,
                         inputGradient: TensorView? = nil) throws(LichenError) {
        let n = try rows(input, inputCount, "input")
        for (v, c, name) in [(alpha, skillCount, "alpha" as StaticString), (outputGradient, outputCount, "outputGradient"),
                             (alphaGradient, skillCount, "alphaGradient")] {
            try sameRows(v, n, name); _ = try rows(v, c, name)
        }
        let x = try input.f32Elements("input"), al = try alpha.f32Elements("alpha")
        let dy = try outputGradient.f32Elements("outputGradient"), da = try alphaGradient.f32Elements("alphaGradient")
        if let i = al.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "alpha", index: i) }
        if let i = dy.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "outputGradient", index: i) }
        var dx: F32Elements? = nil
        if let inputGradient {
            try sameRows(inputGradient, n, "inputGradient"); _ = try rows(inputGradient, inputCount, "inputGradient")
            dx = try inputGradient.f32Elements("inputGradient")
        }
        da.fill(0)
        for s in 0..<n {
            let xo = s * inputCount, yo = s * outputCount
            if let dx {
                for i in 0..<inputCount { dx[xo + i] = 0 }
                for o in 0..<outputCount {
                    let g = dy[yo + o]
                    if g == 0 { continue }
                    let wo = o * inputCount
                    for i in 0..<inputCount { dx[xo + i] += weight[wo + i] * g }
                }
            }
            for t in 0..<termA.count {
                let r = termRank[t], A = termA[t], B = termB[t]
                // u = A x in scratch[0..<r], g = Bᵀ dy in scratch[r..<2r].
                for j in 0..<r {
                    var u: Float = 0
                    for i in 0..<inputCount { u += A[j * inputCount + i] * x[xo + i] }
                    scratch[j] = u
                    var g: Float = 0
                    for o in 0..<outputCount { g += B[o * r + j] * dy[yo + o] }
                    scratch[maxRank + j] = g
                }
                var d: Float = 0
                for j in 0..<r { d += scratch[maxRank + j] * scratch[j] }
                da[s * skillCount + termSkill[t]] += termScale[t] * d
                if let dx {
                    let c = al[s * skillCount + termSkill[t]] * termScale[t]
                    if c == 0 { continue }
                    for j in 0..<r {
                        let g = c * scratch[maxRank + j]
                        for i in 0..<inputCount { dx[xo + i] += g * A[j * inputCount + i] }
                    }
                }
            }
        }
    }
}
