/// Which statistics batch norm normalises with in one forward of a batch-statistics graph
/// (`Graph.forward(input:statistics:)`).
public enum NormStatistics: Sendable, Equatable {
    /// As the graph was built: the batch's own statistics (or the running ones).
    case computed
    /// The batch's own, and each batch norm layer's per-channel mean and biased variance are
    /// kept (when `reserveSavedStatistics(arena:)` made room for them; else as `.computed`).
    case computedAndSaved
    /// The statistics kept by the last `.computedAndSaved` forward, whatever the batch: a
    /// batch of 1 is normalised as if it were part of that batch.
    case saved
}

/// Saved batch statistics: a forward over a full batch keeps each batch norm layer's mean and
/// biased variance, and a later forward of a single frame normalises with them. Frame-by-frame
/// adaptation uses this to predict a frame with a batch-1 forward instead of a forward over its
/// whole window (`FrameAdapter.Prediction.saved`).
///
/// y = (x − μ_c) / sqrt(σ²_c + eps) · γ_c + β_c with μ_c, σ²_c the saved values (σ² stored as a
/// float; eps the layer's); γ, β are read at the time of the forward. Group and layer norm
/// use per-sample statistics and are not affected.
extension Graph {
    /// Reserves room for the saved statistics of every batch norm layer (2 × channels floats
    /// each). Calling it again does nothing.
    ///
    /// - Throws: `.invalidArgument(name: "statistics", ...)` when the graph normalises with
    ///   running statistics; `.budgetExceeded`.
    /// - Note: Allocates from `arena` (construction time).
    public func reserveSavedStatistics(arena: Arena) throws(LichenError) {
        guard options.batchNormMode == .batchStatistics else {
            throw .invalidArgument(name: "statistics", value: 0, reason: "only a batch-statistics graph saves batch statistics")
        }
        guard savedMeans.isEmpty else { return }
        var means: [TensorView?] = [], variances: [TensorView?] = []
        for node in nodes {
            if node.kind == .batchNorm {
                let shape = try Shape(node.channels)
                let m = try arena.persistentTensor(.f32, shape), v = try arena.persistentTensor(.f32, shape)
                try m.fill(0)
                try v.fill(1)
                means.append(m)
                variances.append(v)
            } else {
                means.append(nil)
                variances.append(nil)
            }
        }
        savedMeans = means
        savedVariances = variances
    }

    /// Whether `reserveSavedStatistics(arena:)` ran.
    public var reservesSavedStatistics: Bool { !savedMeans.isEmpty }

    /// The saved mean and biased variance of batch norm layer `layer`, `[C]` each: views of
    /// the graph's own storage (read them, do not keep them across forwards).
    /// - Throws: `.invalidArgument(name: "layer", ...)` for a layer that is not batch norm or
    ///   when nothing was reserved.
    public func savedStatistics(layer: Int) throws(LichenError) -> (mean: TensorView, variance: TensorView) {
        guard layer >= 0 && layer < savedMeans.count, let m = savedMeans[layer], let v = savedVariances[layer] else {
            throw .invalidArgument(name: "layer", value: layer, reason: "no saved statistics for this layer (not batch norm, or none reserved)")
        }
        return (m, v)
    }

    /// Keeps channel `ch`'s batch mean and biased variance (a `.computedAndSaved` forward).
    func saveStatistics(_ node: GraphNode, _ ch: Int, mean: Double, variance: Double) throws(LichenError) {
        guard let m = savedMeans[node.index], let v = savedVariances[node.index] else { return }
        try m.withFloats { (ms) throws(LichenError) in ms[ch] = Float(mean) }
        try v.withFloats { (vs) throws(LichenError) in vs[ch] = Float(variance) }
    }
}
