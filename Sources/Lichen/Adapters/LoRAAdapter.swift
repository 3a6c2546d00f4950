/// The shape of one LoRA target: which base weight it adapts, its rank, and the weight's
/// row length and row count.
public struct LoRATargetShape: Equatable, Sendable {
    /// The base weight's parameter name, `<layer name>.weight`.
    public let weightName: String
    /// r: rows of A, columns of B.
    public let rank: Int
    /// n_in: the base weight's row length (linear: in features; conv: in * kh * kw).
    public let inputCount: Int
    /// n_out: the base weight's rows (linear: out features; conv: out channels).
    public let outputCount: Int

    public init(weightName: String, rank: Int, inputCount: Int, outputCount: Int) {
        self.weightName = weightName
        self.rank = rank
        self.inputCount = inputCount
        self.outputCount = outputCount
    }
}

/// One adapted weight of a `LoRAAdapter`: `ΔW = B · A` with A f32 `[r, n_in]` and B f32
/// `[n_out, r]` (PEFT's `lora_A.weight` / `lora_B.weight` shapes; ggml `ne` `[n_in, r]` and
/// `[r, n_out]`, llama.cpp's). For a conv weight n_in is `in * kh * kw`: A is a conv with the
/// layer's kernel geometry and r output channels, B a 1x1 conv from r to the out channels.
public struct LoRATarget {
    public let shape: LoRATargetShape
    /// f32 `[r, n_in]`.
    public let a: TensorView
    /// f32 `[n_out, r]`.
    public let b: TensorView
    /// Gradients of A and B (same shapes) when the adapter was made trainable, else nil.
    public let gradientA: TensorView?
    public let gradientB: TensorView?

    public var weightName: String { shape.weightName }
    public var rank: Int { shape.rank }
}

/// A LoRA adapter: low-rank updates of some of a base model's linear and conv weights,
/// `y = W x + s · B (A x)` with `s = scale · alpha / r` (llama.cpp: `scale` alone when
/// alpha is 0), applied unmerged by the graph through an `AdapterSet`.
///
/// Values (and gradients, when trainable) live in one `HeapBuffer` from the arena's heap, so an
/// adapter loaded while running comes out of the budget and goes back to it when the last
/// reference is dropped. `byteCount` is what `list` reports.
///
/// The adapter's tensors are written only by its owner (an optimizer while training, a loader
/// while filling it); its targets, rank and alpha never change. `@unchecked Sendable` on that
/// basis: an adapter loaded on the control thread may be read by the loop.
public final class LoRAAdapter: @unchecked Sendable {
    /// Largest rank accepted (also bounded by min(n_in, n_out) of each target).
    public static let maximumRank = 4096
    /// Largest alpha taken (files, flags, PEFT configs): alpha / r scales B·A, and a larger
    /// factor turns one ordinary frame into infinite activations.
    public static let maximumAlpha: Float = 65536
    /// Largest number of targets.
    public static let maximumTargetCount = 4096

    /// A name for listings (the file name it was loaded from, or the one given).
    public let name: String
    /// The base model the adapter belongs to.
    public let base: AdapterBase
    /// `adapter.lora.alpha` (0: the user scale alone, llama.cpp's rule).
    public let alpha: Float
    /// The adapted weights, in order.
    public let targets: [LoRATarget]
    /// Bytes held in the arena's heap for values and gradients (as asked; see `storage.usableByteCount`).
    public var byteCount: Int { storage.byteCount }
    /// Whether gradients were allocated.
    public var isTrainable: Bool { targets.first?.gradientA != nil }
    /// The memory of every tensor of the adapter.
    public let storage: HeapBuffer

    /// A zero-filled adapter (B = 0 makes it a no-op; `initializeForTraining(seed:)` fills A).
    ///
    /// - Parameters:
    ///   - trainable: also allocate f32 gradients of A and B.
    ///   - arena: the heap the memory comes from.
    /// - Throws: `.invalidArgument` for an empty or too long target list, a rank of 0 or above
    ///   `maximumRank` or min(n_in, n_out) (value = the rank), counts below 1;
    ///   `.outOfRange` for alpha outside 0...`maximumAlpha` or not finite; `.duplicateName(kind: "LoRA target", ...)`; `.budgetExceeded` (nothing
    ///   is allocated then).
    /// - Note: Allocates (load time).
    public init(name: String, base: AdapterBase, alpha: Float, shapes: [LoRATargetShape], trainable: Bool = false, arena: Arena)
        throws(LichenError)
    {
        guard !shapes.isEmpty && shapes.count <= LoRAAdapter.maximumTargetCount else {
            throw .invalidArgument(name: "LoRA targets", value: shapes.count, reason: "an adapter has 1...4096 targets")
        }
        _ = try Checked.finite(alpha, name: "adapter.lora.alpha", in: 0...LoRAAdapter.maximumAlpha)
        var total = 0
        var offsets: [Int] = []
        for (i, s) in shapes.enumerated() {
            try LoRAAdapter.validate(s)
            for j in 0..<i where shapes[j].weightName == s.weightName {
                throw .duplicateName(kind: "LoRA target", name: s.weightName)
            }
            let sizes = [s.rank * s.inputCount, s.outputCount * s.rank]
            for _ in 0..<(trainable ? 2 : 1) {
                for n in sizes {
                    offsets.append(total)
                    total += (n * 4 + 63) / 64 * 64
                }
            }
        }
        let storage = try HeapBuffer(arena: arena, byteCount: total)
        var targets: [LoRATarget] = []
        targets.reserveCapacity(shapes.count)
        var k = 0
        for s in shapes {
            let aShape = try Shape(s.rank, s.inputCount), bShape = try Shape(s.outputCount, s.rank)
            let a = try storage.view(byteOffset: offsets[k], type: .f32, shape: aShape)
            let b = try storage.view(byteOffset: offsets[k + 1], type: .f32, shape: bShape)
            k += 2
            var ga: TensorView? = nil, gb: TensorView? = nil
            if trainable {
                ga = try storage.view(byteOffset: offsets[k], type: .f32, shape: aShape)
                gb = try storage.view(byteOffset: offsets[k + 1], type: .f32, shape: bShape)
                k += 2
            }
            targets.append(LoRATarget(shape: s, a: a, b: b, gradientA: ga, gradientB: gb))
        }
        self.name = name
        self.base = base
        self.alpha = alpha
        self.targets = targets
        self.storage = storage
    }

    static func validate(_ s: LoRATargetShape) throws(LichenError) {
        guard !s.weightName.isEmpty else {
            throw .invalidArgument(name: "LoRA target name", value: 0, reason: "must not be empty")
        }
        guard s.inputCount >= 1 && s.inputCount <= ModelSpecLimits.maximumExtent
            && s.outputCount >= 1 && s.outputCount <= ModelSpecLimits.maximumExtent
        else {
            throw .invalidArgument(name: "LoRA target size", value: min(s.inputCount, s.outputCount), reason: "n_in and n_out must be in 1...16777216")
        }
        guard s.rank >= 1 && s.rank <= LoRAAdapter.maximumRank && s.rank <= min(s.inputCount, s.outputCount) else {
            throw .invalidArgument(name: "LoRA rank", value: s.rank, reason: "must be in 1...min(n_in, n_out, 4096)")
        }
    }

    /// The effective multiplier of `B · A` for a user scale: `scale · alpha / r`, or `scale` when
    /// alpha is 0 (llama.cpp's `build_lora_mm`; PEFT always divides, with alpha = r by default).
    public func effectiveScale(_ scale: Float, target: Int) -> Float {
        alpha == 0 ? scale : scale * alpha / Float(targets[target].rank)
    }

    /// The index of the target adapting `weightName`, or nil.
    public func targetIndex(of weightName: String) -> Int? {
        for i in 0..<targets.count where targets[i].weightName == weightName { return i }
        return nil
    }

    /// PEFT's initialisation: A uniform in [-1/sqrt(n_in), 1/sqrt(n_in)] (kaiming_uniform with
    /// a = sqrt(5), as `ParameterInitializer`), B = 0, so the adapter starts as an exact no-op.
    /// The same seed gives the same bits everywhere (SplitMix64, 24-bit uniforms).
    public func initializeForTraining(seed: UInt64) throws(LichenError) {
        var random = SplitMix64Random(seed: seed)
        for t in targets {
            let bound = 1 / Float(t.shape.inputCount).squareRoot()
            try t.a.withFloats { (v) throws(LichenError) in
                for i in 0..<v.count {
                    let unit = Float(random.next() >> 40) * (1.0 / Float(1 << 24))
                    v[i] = (2 * unit - 1) * bound
                }
            }
            try t.b.fill(0)
        }
        try zeroGradients()
    }

    /// Sets every gradient to 0 (nothing when not trainable).
    /// - Note: Allocates nothing.
    public func zeroGradients() throws(LichenError) {
        for t in targets {
            if let g = t.gradientA { try g.fill(0) }
            if let g = t.gradientB { try g.fill(0) }
        }
    }

    /// A and B of every target with their gradients, for `SGD` / `Adam` (empty when not trainable).
    public func trainableParameters(group: Int = 0) -> [TrainableParameter] {
        var out: [TrainableParameter] = []
        for t in targets {
            if let ga = t.gradientA, let gb = t.gradientB {
                out.append(TrainableParameter(value: t.a, gradient: ga, group: group))
                out.append(TrainableParameter(value: t.b, gradient: gb, group: group))
            }
        }
        return out
    }
}
