/// Frames between updates through the fused inference path (`InferenceModel`): the method's
/// predicting models rebuilt as fused batch-1 models, refolded after each update with the batch
/// statistics the update's forward saved and the current γ, β (`InferenceModel.refold`), so a
/// frame costs a fused forward instead of a `Graph` forward while the model adapts.
///
/// Which models, per method (`AdaptationPolicy.makeFused`): source, the load-time fused model
/// (never refolded); BN-adapt and Tent, the student's; CoTTA, its EMA teacher's; RMT, student
/// and teacher, their logits summed. The fused models apply no adapters, so the frame adapter
/// uses them only while no adapter is applied (no LoRA trainables, no hot-swapped skills), and
/// falls back to the graph otherwise, or when a refold is refused.
///
/// Their outputs equal the graph's saved-statistics prediction within the fold's own rounding
/// (`RefoldChecks`: 1e-4 of the logit range for f32 weights, 2e-2 for Q8_0 / Q4_0, whose folded
/// block scales round to fp16).
///
/// - Note: Construction allocates (the fused models' folded copies, step regions and refold
///   factors, from the arena); `refold` and `predict` allocate nothing.
public final class FusedPrediction {
    /// The fused models (one, or RMT's student and teacher).
    public let models: [InferenceModel]
    /// Their refold sources (none for the source method).
    let sources: [RefoldSource]
    /// [1, classes]: the sum of two models' logits (RMT).
    let sum: TensorView?
    /// Bytes construction took from the arena: in all, of which planned step regions and
    /// persistent (folded copies, refold factors, the sum row).
    public let byteCount: Int
    public let plannedBytes: Int
    public let persistentBytes: Int
    /// Refolds made, and refolds refused (the graph predicted instead).
    public private(set) var refoldCount = 0
    public private(set) var refusedRefoldCount = 0

    init(models: [InferenceModel], sources: [RefoldSource], sum: TensorView?, byteCount: Int, plannedBytes: Int, persistentBytes: Int) {
        self.persistentBytes = persistentBytes
        self.models = models
        self.sources = sources
        self.sum = sum
        self.byteCount = byteCount
        self.plannedBytes = plannedBytes
    }

    /// Folds the current statistics and values into every model; false (and nothing changed)
    /// when a refold is refused.
    /// - Note: Allocates nothing.
    func refold(_ policy: AdaptationPolicy) -> Bool {
        guard !sources.isEmpty else { return true }
        do {
            try policy.prepareFusedRefold()
            // By index: a for-in over the arrays allocates in debug builds.
            var i = 0
            while i < models.count {
                try models[i].refold(sources[i])
                i += 1
            }
            refoldCount += 1
            return true
        } catch {
            refusedRefoldCount += 1
            return false
        }
    }

    /// The logits `[1, classes]` of one frame.
    /// - Note: Allocates nothing.
    func predict(_ frame: TensorView) throws(LichenError) -> TensorView {
        let z = try models[0].forward(input: frame)
        guard let sum, models.count == 2 else { return z }
        try sum.copy(from: z)
        try models[1].kernels.axpy(1, try models[1].forward(input: frame), sum)
        return sum
    }
}
