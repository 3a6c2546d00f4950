/// Refolding: folding other batch norm statistics and affine values into a fused model that is
/// already built, so adapted models predict through the fused path.
///
/// Frame-by-frame adaptation predicts the frames between two updates with a batch-1 `Graph`
/// forward that normalises every batch norm layer with the statistics saved by the last
/// update's forward and the current γ, β (`Graph.forward(input:statistics: .saved)`). That is
/// batch norm with fixed statistics, which folds exactly as the running statistics fold at load:
/// for output channel c, with `s_c = γ_c / sqrt(σ²_c + eps)`,
///
/// - f32 weights: `w'_c = s_c · w_c`, from the weights the model was built from (or the
///   source's, for full-mode adaptation that trains them);
/// - q8_0 / q4_0 weights: codes unchanged, each block's scale `d' = fp16(f32(d) · s_c)` from the
///   load-time block scale `d` (the unfolded weights stay in the store / file mapping and are
///   re-read each time, so refolds never compound); weights packed for the direct kernels get
///   the same value as their f32 scale (`f32(d')`);
/// - bias: `Float((b_c − μ_c) · s_c + β_c)` in Double;
/// - an unfoldable norm (a per-channel affine step): its scale `s_c` and shift.
///
/// The arithmetic is the load-time fold's (`BatchNormFolding.channelFactor`), so refolding the
/// running statistics and affine values the model was built from gives it back bit for bit.
///
/// Why block scales and not a per-channel output scale in the kernels' epilogue: the epilogue
/// would spare the fp16 rounding of `d'` (at most 2^-11 relative per weight, well below the
/// Q8_0 activation rounding the quantized products already make), but every table's direct
/// convolution applies bias and relu after the fused 2 x 2 max pool, and a negative `s_c`
/// (γ < 0) does not commute with the max, so each table's epilogue would need a scale before
/// the pool: new SIMD code in every table for no measurable gain. Rewriting scales touches
/// `channels × depth / 32` values per layer, and no kernel changes.
///
/// Atomicity: a refold computes and checks every factor, folded bias and folded block scale of
/// every layer first (into buffers planned at construction), and writes the model only when all
/// pass; a refused refold leaves the model as it was.
extension InferenceModel {
    /// The batch norm layers this model folds, in step order (empty unless built refoldable).
    /// - Note: Allocates the array.
    public var refoldedNorms: [RefoldedNorm] {
        var out: [RefoldedNorm] = []
        for e in refoldEntries { out.append(RefoldedNorm(layer: e.norm, producer: e.producer, channels: e.channels)) }
        return out
    }

    /// A source from any tensors: `values` is called once per refolded norm, in step order, and
    /// returns the views the refolds will read (a teacher's copies of γ, β, statistics kept
    /// elsewhere, ...).
    ///
    /// - Throws: `.invalidArgument(name: "refoldable", ...)` for a model built without
    ///   `refoldable: true`; what `values` throws; `.unsupportedElementType` for a view that is not
    ///   f32 (weights: not the load-time type); `.parameterShapeMismatch` (tensor = the layer's
    ///   parameter name) for a view of the wrong size; `.invalidArgument(name: "weight", ...)` for
    ///   q8_0 / q4_0 weights other than the load-time tensor, or a bias for a layer without one.
    /// - Note: Allocates (the source's list); make it once, at setup.
    public func refoldSource(_ values: (RefoldedNorm) throws(LichenError) -> RefoldValues) throws(LichenError) -> RefoldSource {
        try makeRefoldSource(graph: nil, store: nil, values)
    }

    /// A source that folds the batch statistics `graph` saved (`Graph+SavedStatistics.swift`)
    /// with the affine values of `parameters` (default: the graph's own store): what
    /// `graph.forward(input:statistics: .saved)` normalises with. The producers' weights and
    /// biases come from `parameters` too (f32 weights as they are now; quantized weights must be
    /// the load-time tensors, as a store sharing the model's frozen weights has them).
    ///
    /// - Parameters:
    ///   - graph: a batch-statistics graph of the same spec with saved statistics reserved
    ///     (`reserveSavedStatistics(arena:)`).
    ///   - parameters: where γ, β, the weights and biases are looked up by name.
    /// - Throws: as `refoldSource(_:)`; `.invalidArgument(name: "graph", ...)` for a graph of
    ///   another spec; what `graph.savedStatistics(layer:)` throws (none reserved);
    ///   `.invalidArgument(name: "adapters", ...)` when the graph applies adapters;
    ///   `.notFound(kind: "parameter", ...)`.
    /// - Note: Allocates (the source's list); make it once, at setup.
    public func refoldSource(savedStatisticsOf graph: Graph, parameters: ParameterStore? = nil) throws(LichenError) -> RefoldSource {
        let store = parameters ?? graph.store
        guard graph.spec.layers.count == spec.layers.count else {
            throw .invalidArgument(name: "graph", value: graph.spec.layers.count, reason: "the graph's spec has another number of layers")
        }
        try requireNoAdapters(graph)
        return try makeRefoldSource(graph: graph, store: store) { (norm) throws(LichenError) in
            guard graph.spec.layers[norm.layer].name == spec.layers[norm.layer].name
                && graph.spec.layers[norm.layer].kind == .batchNorm
            else {
                throw .invalidArgument(name: "graph", value: norm.layer, reason: "the graph's layer at this index is not the model's batch norm")
            }
            let saved = try graph.savedStatistics(layer: norm.layer)
            return try storeValues(store, norm: norm, mean: saved.mean, variance: saved.variance)
        }
    }

    /// A source that folds the running statistics and affine values of `store` (the load-time
    /// fold, re-done: with the build's store and its values unchanged, a refold from it restores
    /// the model bit for bit). For a source-only prediction after adapted ones, or after a reset.
    ///
    /// - Throws: as `refoldSource(_:)`; `.notFound(kind: "parameter", ...)`.
    /// - Note: Allocates (the source's list); make it once, at setup.
    public func refoldSource(runningStatisticsOf store: ParameterStore) throws(LichenError) -> RefoldSource {
        try makeRefoldSource(graph: nil, store: store) { (norm) throws(LichenError) in
            let name = spec.layers[norm.layer].name
            return try storeValues(store, norm: norm, mean: try store.parameter(named: name + ".running_mean").value,
                                   variance: try store.parameter(named: name + ".running_var").value)
        }
    }

    /// Folds `source`'s current values into the model: every folded weight, block scale, bias and
    /// affine step of every refolded norm (see the extension's doc for the arithmetic).
    ///
    /// - Throws, leaving the model as it was:
    ///   - `.invalidArgument(name: "refoldable", ...)`: built without `refoldable: true`;
    ///     `.invalidArgument(name: "source", ...)`: a source made for another model;
    ///   - saved-statistics sources: `.invalidArgument(name: "statistics", ...)` when the graph
    ///     has no saved statistics (none since its last failed forward, or never);
    ///     `.invalidArgument(name: "adapters", ...)` when it applies adapters now (the fused
    ///     model does not apply them, so it could not match the graph);
    ///   - `.invalidModel(key:value:reason:)` naming the value that cannot be folded:
    ///     `<norm>.weight` / `.bias` / `.mean` / `.variance` or `<layer>.bias` "not finite";
    ///     `<norm>.variance` "variance + epsilon must be > 0" or "folded factor is not finite";
    ///     `<norm>.weight` "folded block scale overflows fp16" (value: s_c);
    ///     `<layer>.weight` "folded weight is not finite".
    /// - Note: Allocates nothing (the error path builds its message).
    public func refold(_ source: RefoldSource) throws(LichenError) {
        guard let factors = refoldFactors else {
            throw .invalidArgument(name: "refoldable", value: 0, reason: "the model was built without refoldable: true")
        }
        guard source.model == ObjectIdentifier(self) && source.values.count == refoldEntries.count else {
            throw .invalidArgument(name: "source", value: source.values.count, reason: "the refold source was made for another model")
        }
        if let graph = source.graph {
            guard graph.savedStatisticsBatch > 0 else {
                throw .invalidArgument(name: "statistics", value: 0,
                                       reason: "no batch statistics saved (reserve them and run a .computedAndSaved forward first)")
            }
            try requireNoAdapters(graph)
        }
        let scales = factors, biases = factors + refoldChannels
        // Everything is checked (and the factors kept) before anything is written.
        var e = 0
        while e < refoldEntries.count {
            try refoldCheck(refoldEntries[e], source.values[e], scales, biases)
            e += 1
        }
        e = 0
        while e < refoldEntries.count {
            refoldWrite(refoldEntries[e], source.values[e], scales, biases)
            e += 1
        }
    }

    /// `refold(refoldSource(savedStatisticsOf: graph, parameters: parameters))`, keeping the
    /// source it builds: called again with the same graph and store (the same objects), it
    /// reuses it. The call after each adaptation update.
    ///
    /// - Throws: what `refoldSource(savedStatisticsOf:parameters:)` and `refold(_:)` throw;
    ///   the model is left as it was.
    /// - Note: The first call for a (graph, store) pair allocates the source; later ones
    ///   allocate nothing. Call it once at setup (after the graph's first saved forward) or make
    ///   the source yourself to keep the allocation out of the loop.
    public func refold(savedStatisticsOf graph: Graph, parameters: ParameterStore? = nil) throws(LichenError) {
        let store = parameters ?? graph.store
        if let cached = refoldCache, cached.graph === graph, cached.store === store {
            try refold(cached)
            return
        }
        let source = try refoldSource(savedStatisticsOf: graph, parameters: store)
        // Kept before the refold: values that cannot fold now may fold after the next update.
        refoldCache = source
        try refold(source)
    }

    // MARK: - Support

    func requireNoAdapters(_ graph: Graph) throws(LichenError) {
        if let set = graph.adapters {
            throw .invalidArgument(name: "adapters", value: set.members.count,
                                   reason: "the fused model applies no adapters; predict this graph through Graph")
        }
    }

    /// γ, β, the producer's weight and bias from `store` by name, with the given statistics.
    func storeValues(_ store: ParameterStore, norm: RefoldedNorm, mean: TensorView, variance: TensorView) throws(LichenError)
        -> RefoldValues
    {
        let name = spec.layers[norm.layer].name
        var v = RefoldValues(mean: mean, variance: variance, gamma: try store.parameter(named: name + ".weight").value,
                             beta: try store.parameter(named: name + ".bias").value)
        if norm.producer >= 0 {
            let producer = spec.layers[norm.producer]
            v.weight = try store.parameter(named: producer.name + ".weight").value
            if producer.hasBias { v.bias = try store.parameter(named: producer.name + ".bias").value }
        }
        return v
    }

    func makeRefoldSource(graph: Graph?, store: ParameterStore?, _ values: (RefoldedNorm) throws(LichenError) -> RefoldValues)
        throws(LichenError) -> RefoldSource
    {
        guard refoldFactors != nil else {
            throw .invalidArgument(name: "refoldable", value: 0, reason: "the model was built without refoldable: true")
        }
        var list: [RefoldValues] = []
        for e in refoldEntries {
            let v = try values(RefoldedNorm(layer: e.norm, producer: e.producer, channels: e.channels))
            try validate(v, e)
            list.append(v)
        }
        return RefoldSource(model: ObjectIdentifier(self), values: list, graph: graph, store: store)
    }

    /// Types and sizes of a source's views for entry `e`.
    func validate(_ v: RefoldValues, _ e: RefoldEntry) throws(LichenError) {
        let norm = spec.layers[e.norm].name
        for (view, suffix) in [(v.mean, ".mean"), (v.variance, ".variance"), (v.gamma, ".weight"), (v.beta, ".bias")] {
            try view.require(.f32, "refold value")
            guard view.elementCount == e.channels else {
                throw .parameterShapeMismatch(tensor: norm + suffix, expected: String(e.channels) + " values",
                                              got: String(view.elementCount) + " values")
            }
        }
        guard e.producer >= 0 else { return }
        let producer = spec.layers[e.producer].name
        if let w = v.weight, let loaded = e.weight {
            try w.require(loaded.type, "weight")
            if loaded.type == .f32 {
                guard w.elementCount == e.channels * e.depth else {
                    throw .parameterShapeMismatch(tensor: producer + ".weight", expected: String(e.channels * e.depth) + " values",
                                                  got: String(w.elementCount) + " values")
                }
            } else if w.base != loaded.base || w.shape != loaded.shape {
                throw .invalidArgument(name: "weight", value: e.producer,
                                       reason: "quantized weights are frozen: refold from the tensor the model was built from")
            }
        }
        if let b = v.bias {
            guard e.layerBias != nil else {
                throw .invalidArgument(name: "bias", value: e.producer, reason: "the layer has no bias")
            }
            try b.require(.f32, "bias")
            guard b.elementCount == e.channels else {
                throw .parameterShapeMismatch(tensor: producer + ".bias", expected: String(e.channels) + " values",
                                              got: String(b.elementCount) + " values")
            }
        }
    }

    /// Computes entry `e`'s factors and folded biases into `scales` / `biases` and checks
    /// every value the write will produce.
    func refoldCheck(
        _ e: RefoldEntry, _ v: RefoldValues, _ scales: UnsafeMutablePointer<Float>, _ biases: UnsafeMutablePointer<Float>
    ) throws(LichenError) {
        // safe: every view was checked to be f32 with `channels` values by `validate`.
        let g = v.gamma.floats, be = v.beta.floats, m = v.mean.floats, va = v.variance.floats
        let layerBias: UnsafeMutablePointer<Float>? = e.producer >= 0 ? (v.bias ?? e.layerBias)?.floats : nil
        var c = 0
        while c < e.channels {
            let b = layerBias?[c] ?? 0
            guard g[c].isFinite else { throw notFinite(e.norm, ".weight", g[c]) }
            guard be[c].isFinite else { throw notFinite(e.norm, ".bias", be[c]) }
            guard m[c].isFinite else { throw notFinite(e.norm, ".mean", m[c]) }
            guard va[c].isFinite else { throw notFinite(e.norm, ".variance", va[c]) }
            guard b.isFinite else { throw notFinite(e.producer, ".bias", b) }
            let f = BatchNormFolding.channelFactor(gamma: g[c], beta: be[c], mean: m[c], variance: va[c], bias: b, epsilon: e.epsilon)
            switch f.failure {
            case .none: break
            case .variance:
                throw .invalidModel(key: spec.layers[e.norm].name + ".variance", value: floatText(va[c]),
                                    reason: "variance + epsilon must be > 0")
            case .factor:
                throw .invalidModel(key: spec.layers[e.norm].name + ".variance", value: floatText(va[c]),
                                    reason: "folded factor is not finite")
            }
            scales[e.factorOffset + c] = f.scale
            biases[e.factorOffset + c] = f.bias
            c += 1
        }
        guard let w = v.weight ?? e.weight else { return }
        let s = scales + e.factorOffset
        switch e.target {
        case .affine:
            return
        case .f32:
            // safe: f32 with channels * depth values (validate, or the build's own check).
            let ws = w.floats
            c = 0
            while c < e.channels {
                var k = 0
                while k < e.depth {
                    guard (ws[c * e.depth + k] * s[c]).isFinite else {
                        throw .invalidModel(key: spec.layers[e.producer].name + ".weight", value: floatText(s[c]),
                                            reason: "folded weight is not finite")
                    }
                    k += 1
                }
                c += 1
            }
        case .blocks, .packed:
            let rowBytes = w.rowByteCount, blockBytes = w.type.blockByteCount, blocks = rowBytes / blockBytes
            let base = UnsafeRawPointer(w.base)
            c = 0
            while c < e.channels {
                var b = 0
                while b < blocks {
                    // safe: `channels` rows of `rowBytes` (checked by the build); d is the block's first 2 bytes.
                    let d = Kernels.float(fromHalfBits: UInt16(littleEndian: (base + c * rowBytes + b * blockBytes)
                        .loadUnaligned(as: UInt16.self)))
                    let product = d * s[c]
                    guard product.isFinite && abs(product) <= 65504 else {
                        throw .invalidModel(key: spec.layers[e.norm].name + ".weight", value: floatText(s[c]),
                                            reason: "folded block scale overflows fp16")
                    }
                    b += 1
                }
                c += 1
            }
        }
    }

    /// Writes entry `e`'s checked factors (`refoldCheck` ran on the same values) into the model.
    func refoldWrite(_ e: RefoldEntry, _ v: RefoldValues, _ scales: UnsafeMutablePointer<Float>, _ biases: UnsafeMutablePointer<Float>) {
        let s = scales + e.factorOffset
        e.bias.update(from: biases + e.factorOffset, count: e.channels)
        switch e.target {
        case .affine(let dst):
            dst.update(from: s, count: e.channels)
            return
        case .f32(let dst):
            guard let w = v.weight ?? e.weight else { return }
            // The load-time fold's product (BatchNormFolding.foldF32).
            let ws = w.floats
            var c = 0
            while c < e.channels {
                let sc = s[c], row = c * e.depth
                var k = 0
                while k < e.depth {
                    dst[row + k] = ws[row + k] * sc
                    k += 1
                }
                c += 1
            }
        case .blocks(let dst, let dstRowBytes):
            guard let w = e.weight else { return }
            let rowBytes = w.rowByteCount, blockBytes = w.type.blockByteCount, blocks = rowBytes / blockBytes
            let base = UnsafeRawPointer(w.base)
            var c = 0
            while c < e.channels {
                var b = 0
                while b < blocks {
                    let d = Kernels.float(fromHalfBits: UInt16(littleEndian: (base + c * rowBytes + b * blockBytes)
                        .loadUnaligned(as: UInt16.self)))
                    // The load-time fold's rounding (BatchNormFolding.foldBlocks); codes were copied at load.
                    (dst + c * dstRowBytes + b * blockBytes).storeBytes(of: Kernels.halfBits(from: d * s[c]).littleEndian,
                                                                        as: UInt16.self)
                    b += 1
                }
                c += 1
            }
        case .packed(let dst, let stride):
            guard let w = e.weight else { return }
            let rowBytes = w.rowByteCount, blockBytes = w.type.blockByteCount, blocks = rowBytes / blockBytes
            let base = UnsafeRawPointer(w.base)
            var c = 0
            while c < e.channels {
                var b = 0
                while b < blocks {
                    let d = Kernels.float(fromHalfBits: UInt16(littleEndian: (base + c * rowBytes + b * blockBytes)
                        .loadUnaligned(as: UInt16.self)))
                    // Packing converts the folded fp16 scale to f32 exactly (lcr_qconv_pack.c).
                    dst[b * stride + c] = Kernels.float(fromHalfBits: Kernels.halfBits(from: d * s[c]))
                    b += 1
                }
                c += 1
            }
        }
    }

    func notFinite(_ layer: Int, _ suffix: String, _ value: Float) -> LichenError {
        .invalidModel(key: spec.layers[layer].name + suffix, value: floatText(value), reason: "not finite")
    }
}
