import Foundation
import Lichen

extension BenchCommand.Infer {
    /// What `--refold` measures for one variant.
    struct RefoldResult {
        /// `InferenceModel.refold(savedStatisticsOf:)` per call, nanoseconds.
        var refoldP50 = 0, refoldP99 = 0
        /// Batch-1 forward of the refolded model, of the plain (load-time) model and the
        /// graph's saved-statistics forward (today's frame-mode prediction), alternating on the
        /// same frames, nanoseconds.
        var refoldedP50 = 0, refoldedP99 = 0, plainP50 = 0, savedGraphP50 = 0, savedGraphP99 = 0
        var count = 0
        /// Max |refolded - graph .saved| over the frames, and the graph's logit range there.
        var maxDiff: Float = 0
        var range: Float = 0
        /// Bytes the refoldable build reserved for refolding.
        var refoldBytes = 0
    }

    /// `--refold`: builds a refoldable batch-1 model and a batch-statistics `Graph` at --batch
    /// over the variant's store, saves the batch statistics of the --batch frames
    /// (`.computedAndSaved`), and times, alternately until --seconds have passed: a refold of
    /// those statistics with the store's γ, β; the refolded model's batch-1 forward; the plain
    /// model's; and the graph's `.saved` batch-1 forward (what frame-mode adaptation predicts
    /// with without refolding).
    func measureRefold(_ v: InferVariant) throws -> RefoldResult {
        let (spec, store, arena) = (v.loaded.spec, v.loaded.store, v.loaded.arena)
        // The same --seed frames as `measure`.
        let seeded = try SeededFrames(spec: spec, count: batch, seed: seed)
        defer { withExtendedLifetime(seeded) {} }
        let all = seeded.all, frames = seeded.frames
        let refolded = try naming(v.path) { () throws(LichenError) in
            try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena, refoldable: true)
        }
        let graph = try naming(v.path) { () throws(LichenError) in
            let g = try Graph(spec: spec, store: store, batchSize: frames.count, arena: arena,
                              options: GraphOptions(batchNormMode: .batchStatistics))
            try g.reserveSavedStatistics(arena: arena)
            _ = try g.forward(input: all, statistics: .computedAndSaved)
            return g
        }
        var result = RefoldResult()
        result.refoldBytes = refolded.refoldBytes
        // The first call builds and keeps the source (allocates); the timed ones reuse it.
        try naming("refold") { () throws(LichenError) in try refolded.refold(savedStatisticsOf: graph) }
        var lo = Float.infinity, hi = -Float.infinity
        for f in frames {
            let a = try naming("forward") { () throws(LichenError) in try refolded.forward(input: f).toArray() }
            let b = try naming("graph") { () throws(LichenError) in try graph.forward(input: f, statistics: .saved).toArray() }
            for k in 0..<min(a.count, b.count) {
                result.maxDiff = max(result.maxDiff, abs(a[k] - b[k]))
                lo = min(lo, b[k])
                hi = max(hi, b[k])
            }
        }
        result.range = hi - lo
        var refolds: [Int] = [], fused: [Int] = [], plain: [Int] = [], saved: [Int] = []
        let start = nowNanoseconds()
        var i = 0
        while refolds.count < 200 || nowNanoseconds() - start < Int(seconds * 1e9) {
            let f = frames[i % frames.count]
            let t0 = nowNanoseconds()
            try naming("refold") { () throws(LichenError) in try refolded.refold(savedStatisticsOf: graph) }
            let t1 = nowNanoseconds()
            _ = try naming("forward") { () throws(LichenError) in try refolded.forward(input: f) }
            let t2 = nowNanoseconds()
            _ = try naming("forward") { () throws(LichenError) in try v.single.forward(input: f) }
            let t3 = nowNanoseconds()
            _ = try naming("graph") { () throws(LichenError) in try graph.forward(input: f, statistics: .saved) }
            let t4 = nowNanoseconds()
            refolds.append(t1 - t0)
            fused.append(t2 - t1)
            plain.append(t3 - t2)
            saved.append(t4 - t3)
            i += 1
            if refolds.count >= 1_000_000 { break }
        }
        refolds.sort()
        fused.sort()
        plain.sort()
        saved.sort()
        result.refoldP50 = quantile(refolds, 0.5)
        result.refoldP99 = quantile(refolds, 0.99)
        result.refoldedP50 = quantile(fused, 0.5)
        result.refoldedP99 = quantile(fused, 0.99)
        result.plainP50 = quantile(plain, 0.5)
        result.savedGraphP50 = quantile(saved, 0.5)
        result.savedGraphP99 = quantile(saved, 0.99)
        result.count = refolds.count
        return result
    }
}
