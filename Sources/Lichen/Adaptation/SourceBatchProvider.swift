/// Where the methods that read source data (CoTTA's threshold, RMT's prototypes, warm-up and
/// replay) get it: labelled batches of the training set, supplied by the caller (the CLI reads
/// Fashion-MNIST's training split). A class protocol, so a session can hold one.
public protocol SourceBatchProvider: AnyObject {
    /// Writes the next source batch: `images` f32 `[n, input shape...]` with values in [0, 1],
    /// `labels` f32 `[n]` class indices, n = `images.shape[0]`. Starts over from the beginning
    /// (reshuffled or not, the provider's choice) when the source set is exhausted.
    /// - Note: Must allocate nothing (RMT's replay calls it on every step).
    func nextSourceBatch(images: TensorView, labels: TensorView) throws(LichenError)
}

/// CoTTA's confidence threshold p_th, computed from the source model the way the CoTTA
/// maintainer describes (research/tta.md §3.2, qinenergy/cotta#16): run the source model on
/// source images, take the `quantile` (5 %) of the max-softmax confidence, subtract `margin`
/// (0.05).
///
/// The source model runs as deployed before adaptation: an inference graph with the running
/// statistics (eval mode). The quantile interpolates linearly between order statistics
/// (numpy's and torch's default): position q (N − 1) in the sorted confidences.
///
/// - Parameters:
///   - batchCount: batches of `batchSize` drawn from `provider` (N = batchCount · batchSize).
/// - Returns: the threshold (may be below 0 for a very unsure model; CoTTA then never augments).
/// - Throws: `.invalidArgument` for a batch or batch count below 1 or a quantile outside
///   [0, 1]; what the graph and the provider throw; `.budgetExceeded`.
/// - Note: Everything it allocates (an inference graph, the batch and the confidences) is
///   taken from `arena`'s low end and given back before it returns.
public func sourceConfidenceThreshold(
    spec: ModelSpec, store: ParameterStore, provider: SourceBatchProvider, batchSize: Int, batchCount: Int,
    arena: Arena, quantile: Float = 0.05, margin: Float = 0.05, kernels: Kernels = .best
) throws(LichenError) -> Float {
    guard batchCount >= 1 else { throw .invalidArgument(name: "batchCount", value: batchCount, reason: "must be >= 1") }
    guard quantile >= 0 && quantile <= 1 else {
        throw .invalidArgument(name: "quantile", value: quantile.isFinite ? Int(quantile * 1000) : Int.min, reason: "must lie in [0, 1]")
    }
    let mark = arena.lowEndMark()
    defer { try? arena.resetLowEnd(to: mark) }
    let graph = try Graph(spec: spec, store: store, batchSize: batchSize, arena: arena, kernels: kernels)
    var dims = [batchSize]
    dims += spec.inputShape.dimensions
    let images = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
    let labels = try arena.persistentTensor(.f32, try Shape(batchSize))
    let classes = spec.classCount
    let probabilities = try arena.persistentTensor(.f32, try Shape(batchSize, classes))
    let total = batchCount * batchSize
    let confidences = try arena.persistentTensor(.f32, try Shape(total))
    let c = try confidences.f32Elements("confidences")
    for batch in 0..<batchCount {
        try provider.nextSourceBatch(images: images, labels: labels)
        let z = try graph.forward(input: images)
        try kernels.softmaxRows(z, into: probabilities)
        let p = try probabilities.f32Elements("probabilities")
        for b in 0..<batchSize {
            var best = p[b * classes]
            for k in 1..<classes { best = max(best, p[b * classes + k]) }
            c[batch * batchSize + b] = best
        }
    }
    heapSort(c.pointer, count: c.count)
    let position = Double(quantile) * Double(total - 1)
    let low = Int(position.rounded(.down))
    let high = min(low + 1, total - 1)
    let fraction = Float(position - Double(low))
    let q = c[low] + (c[high] - c[low]) * fraction
    return q - margin
}
