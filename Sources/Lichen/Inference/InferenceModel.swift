import CRuntime

/// A model built for pure inference: conv + batch norm (running statistics) + activation folded
/// at load, layouts and kernels chosen at load, and every step buffer planned once with
/// `Planner` inside the arena. Kept apart from `Graph`, which training and adaptation use
/// because they need the norm statistics.
///
/// Built from the same `(ModelSpec, ParameterStore)` as a graph. The step list is static:
/// `forward` walks it with one switch per step and calls the kernels on pointers resolved at
/// load; it allocates nothing. Quantized weights that need no folding are read in place (the
/// file mapping); folded weights and biases are copied into the arena's low end once.
///
/// Supported layers: linear, conv2d, conv1d, batch norm (running statistics), relu, gelu, silu,
/// tanh, elu, max / average pooling, global average pooling, flatten, add, softmax. Group and layer
/// norm are refused (`Graph` runs them).
public final class InferenceModel {
    public let spec: ModelSpec
    public let kernels: Kernels
    /// The largest batch `forward` takes.
    public let batchSize: Int
    /// The planned step region (activations and scratch).
    public let region: PlannedRegion
    /// Bytes of folded weights and biases copied into the arena's low end at load.
    public let persistentBytes: Int
    /// Whether `refold` can rewrite the folded batch norms (`init(..., refoldable: true)`).
    public var refoldable: Bool { refoldFactors != nil }
    /// Bytes a refoldable build took for refolding (two floats per refolded channel); 0 otherwise.
    public let refoldBytes: Int
    /// Number of steps after fusion (layers fused into one step count once).
    public var stepCount: Int { steps.count }

    /// f32 convolutions with at most this many values per output use the register-tiled
    /// small-depth product instead of BLIS.
    public static let smallDepth = 64

    /// Values per quantized-convolution chunk of the im2row path (`InferenceConvMethod.quantized`,
    /// used where the direct kernels are not native): 65,536 floats of columns, and as many in
    /// rows, 256 KiB each. The quantized GEMM repacks its weight panel on every call, once per chunk,
    /// so fewer, larger chunks cost less than chunks sized for L2: the shipped CNN's conv2
    /// (196 positions x depth 288) is one chunk, and its Q8_0 frame measured 112 us p50 against
    /// 138 us with 12,288-value chunks (5 per frame), alternating runs of `lichen-infer-worker`.
    public static let chunkValues = 65_536

    /// Largest activation panel of a direct quantized convolution chunk, in bytes (see
    /// `InferenceBuilder.addConv`).
    public static let directPanelBytes = 96 * 1024

    let steps: [InferenceStep]
    let table: lcr_kernel_table
    /// Address of each storage's buffer (index 0 is set to the caller's input by `forward`).
    var pointers: [UnsafeMutablePointer<Float>]
    /// Address of each planned scratch buffer, by planner id.
    let scratchPointers: [UnsafeMutableRawPointer]
    /// [batchSize, input shape...] and [batchSize, output shape...].
    let inputShape: Shape
    let outputShape: Shape
    let outputStorage: Int
    /// Refoldable builds: each folded batch norm (and affine step), in step order, and the
    /// validated factors and folded biases of a refold in progress (`refoldChannels` floats
    /// each, scales then biases), so a refused refold writes nothing into the model.
    let refoldEntries: [RefoldEntry]
    let refoldFactors: UnsafeMutablePointer<Float>?
    let refoldChannels: Int
    /// The source the last `refold(savedStatisticsOf:parameters:)` built, reused while the
    /// graph and the store are the same objects.
    var refoldCache: RefoldSource? = nil

    /// Bytes of the step region.
    public var plannedBytes: Int { region.plan.plannedBytes }

    /// Builds the step list, folds and plans.
    ///
    /// - Parameters:
    ///   - spec, store: as for `Graph` (the same parameter names and shapes; quantized conv
    ///     weights in the row form `[out, in/groups * kh * kw]`).
    ///   - batchSize: the largest batch a forward takes (>= 1).
    ///   - arena: folded parameters and the step region come from its low end; on failure the
    ///     low end is rolled back to where it was.
    ///   - refoldable: record where every batch norm is folded and take `refoldBytes` (2 floats
    ///     per folded channel) from the arena, so `refold` can later fold other statistics and
    ///     affine values into this model without allocating (`InferenceModel+Refold.swift`).
    ///     Without it nothing is recorded or reserved and `refold` throws.
    /// - Throws: `.invalidModel` for a bad description, an unsupported layer (key
    ///   `lichen.layer.<i>.kind`) or an unfoldable norm (key = the norm parameter);
    ///   `.notFound(kind: "parameter")`, `.parameterShapeMismatch`; `.invalidArgument` for a bad
    ///   batch size; `.budgetExceeded`.
    /// - Note: Allocates (build time only).
    public init(
        spec: ModelSpec, store: ParameterStore, batchSize: Int, arena: Arena, kernels: Kernels = .best, refoldable: Bool = false
    ) throws(LichenError)
    {
        guard batchSize >= 1 && batchSize <= ModelSpecLimits.maximumExtent else {
            throw .invalidArgument(name: "batchSize", value: batchSize, reason: "must be in 1...16777216")
        }
        let mark = arena.lowEndMark()
        do {
            var b = InferenceBuilder(spec: spec, store: store, batchSize: batchSize, arena: arena, kernels: kernels,
                                     refoldable: refoldable)
            try b.build()
            var factors: UnsafeMutablePointer<Float>? = nil
            if refoldable {
                let floats = max(2 * b.refoldChannels, 1)
                factors = try arena.allocatePersistent(byteCount: floats * 4, alignment: 64).bindMemory(to: Float.self, capacity: floats)
            }
            // Storage buffers first (ids 0..<storages in a second planner), then the scratch ids.
            var planner = Planner()
            var storageBuffer = [Int](repeating: -1, count: b.storageFloats.count)
            for s in 1..<b.storageFloats.count {
                storageBuffer[s] = try planner.addBuffer(byteCount: b.storageFloats[s] * batchSize * 4,
                                                         firstUse: b.firstUse[s], lastUse: b.lastUse[s])
            }
            let scratchBase = planner.buffers.count
            for buffer in b.planner.buffers { planner.add(buffer) }
            let region = try arena.reservePlan(try planner.plan())
            var pointers: [UnsafeMutablePointer<Float>] = []
            for s in 0..<b.storageFloats.count {
                // Storage 0 is the caller's input, set by each forward.
                let raw = s == 0 ? region.base : try region.pointer(forBuffer: storageBuffer[s])
                pointers.append(raw.assumingMemoryBound(to: Float.self))
            }
            var scratch: [UnsafeMutableRawPointer] = []
            for id in 0..<b.planner.buffers.count { scratch.append(try region.pointer(forBuffer: scratchBase + id)) }
            var inDims = [batchSize], outDims = [batchSize]
            inDims.append(contentsOf: spec.inputShape.dimensions)
            outDims.append(contentsOf: b.shapes[spec.layers.count - 1].dimensions)
            self.inputShape = try Shape(dimensions: inDims)
            self.outputShape = try Shape(dimensions: outDims)
            self.spec = spec
            self.kernels = kernels
            self.batchSize = batchSize
            self.region = region
            self.persistentBytes = b.persistentBytes
            self.steps = b.steps
            self.table = kernels.table.pointee
            self.pointers = pointers
            self.scratchPointers = scratch
            self.outputStorage = b.storageOf[spec.layers.count - 1]
            self.refoldEntries = b.refoldEntries
            self.refoldFactors = factors
            self.refoldChannels = b.refoldChannels
            self.refoldBytes = refoldable ? max(2 * b.refoldChannels, 1) * 4 : 0
        } catch {
            // The mark was taken just above, so it is never ahead of the low end.
            try? arena.resetLowEnd(to: mark)
            throw error
        }
    }

    /// Runs the model on `input` and returns its output.
    ///
    /// - Parameter input: f32 `[n, input shape...]` with 1 <= n <= `batchSize`, all values finite.
    ///   It is read in place (not copied) and must not overlap the model's region.
    /// - Returns: `[n, output shape...]`, a view into the step region, valid until the next `forward`.
    /// - Throws: `.unsupportedElementType` (not f32); `.shapeMismatch(operand: "input", ...)`;
    ///   `.invalidArgument(name: "input.batch", ...)`; `.nonFiniteValue(operand: "input", index:)`.
    /// - Note: Allocates nothing.
    public func forward(input: TensorView) throws(LichenError) -> TensorView {
        try input.require(.f32, "input")
        guard input.shape.rank == inputShape.rank else {
            throw .shapeMismatch(operand: "input", dimension: -1, expected: inputShape.rank, got: input.shape.rank)
        }
        let n = input.shape[0]
        guard n >= 1 && n <= batchSize else {
            throw .invalidArgument(name: "input.batch", value: n, reason: "must be in 1...the batch size the model was built for")
        }
        for d in 1..<inputShape.rank where input.shape[d] != inputShape[d] {
            throw .shapeMismatch(operand: "input", dimension: d, expected: inputShape[d], got: input.shape[d])
        }
        if let i = try input.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "input", index: i) }
        pointers[0] = input.floats
        // By index: a for-in over the array allocated 192 bytes per forward in debug builds
        // (Tests/LichenTests/Inference/InferenceAllocationTests.swift).
        var index = 0
        while index < steps.count {
            let step = steps[index]
            index += 1
            switch step {
            case .conv(let c): runConv(c, n)
            case .linear(let l): runLinear(l, n)
            case .affine(let a): runAffine(a, n)
            case .activation(let a): runActivation(a, n)
            case .pool(let p): runPool(p, n)
            case .globalAvgPool(let g): runGlobalPool(g, n)
            case .add(let a): table.add(pointers[a.a], pointers[a.b], pointers[a.output], Int64(n * a.perSample))
            case .softmax(let s): table.softmax_rows(pointers[s.input], pointers[s.output], Int64(n), Int64(s.features))
            }
        }
        var shape = outputShape
        shape[0] = n
        return try TensorView(base: UnsafeMutableRawPointer(pointers[outputStorage]),
                              byteCount: (shape.elementCount ?? 0) * 4, type: .f32, shape: shape)
    }

    // MARK: - Steps

    func runConv(_ c: InferenceConv, _ n: Int) {
        var geometry = c.geometry
        var groupGeometry = c.groupGeometry
        let p = c.positions, k = c.depth, oc = c.outChannels, g = c.groups, ocg = oc / g
        let planeFloats = Int(c.geometry.height * c.geometry.width)
        for b in 0..<n {
            let x = pointers[c.input] + b * c.inPerSample
            let y = pointers[c.output] + b * c.outPerSample
            switch c.method {
            case .smallDepth, .blis:
                guard let w = c.weightsF32 else { return }
                var cols = UnsafePointer(x)
                if !c.pointwise {
                    let buffer = scratchPointers[c.columns].assumingMemoryBound(to: Float.self)
                    lcr_im2col(&geometry, x, buffer)
                    cols = UnsafePointer(buffer)
                }
                for gi in 0..<g {
                    let wg = w + gi * ocg * k, cg = cols + gi * k * p, yg = y + gi * ocg * p
                    if c.method == .smallDepth {
                        table.sgemm_small_k(wg, cg, c.bias.map { $0 + gi * ocg }, yg, Int64(ocg), Int64(k), Int64(p),
                                            Int64(p), Int64(p), c.act)
                    } else {
                        lcr_sgemm(0, 0, Int64(ocg), Int64(p), Int64(k), 1, wg, Int64(k), cg, Int64(p), 0, yg, Int64(p))
                    }
                }
                if c.method == .blis { table.bias_act(y, c.bias, Int64(oc), Int64(p), c.act) }
            case .quantized:
                guard let w = c.weightsQuantized else { return }
                let rows = scratchPointers[c.columns].assumingMemoryBound(to: Float.self)
                let columns = scratchPointers[c.transposeScratch].assumingMemoryBound(to: Float.self)
                let product = scratchPointers[c.productT].assumingMemoryBound(to: Float.self)
                let scratch = scratchPointers[c.gemmScratch]
                let oh = Int(c.outputHeight), ow = p / max(oh, 1)
                for gi in 0..<g {
                    let xg = x + gi * Int(groupGeometry.channels) * planeFloats
                    let wg = w + gi * ocg * c.weightRowBytes
                    let bias = c.bias.map { $0 + gi * ocg }
                    // Output rows in chunks, so the columns and rows of a chunk stay in cache.
                    var oy0 = 0
                    while oy0 < oh {
                        let oy1 = min(oh, oy0 + c.chunkRows), n = (oy1 - oy0) * ow
                        table.im2row(&groupGeometry, xg, rows, columns, Int64(oy0), Int64(oy1))
                        let out = product + oy0 * ow * oc + gi * ocg
                        if c.weightType == .q8_0 {
                            table.gemm_q8_0(wg.assumingMemoryBound(to: lcr_block_q8_0.self), rows, out, bias,
                                            Int64(n), Int64(ocg), Int64(k), Int64(oc), scratch)
                        } else {
                            table.gemm_q4_0(wg.assumingMemoryBound(to: lcr_block_q4_0.self), rows, out, bias,
                                            Int64(n), Int64(ocg), Int64(k), Int64(oc), scratch)
                        }
                        oy0 = oy1
                    }
                }
                table.transpose_bias_act(product, nil, y, Int64(p), Int64(oc), Int64(oc), c.act)
            case .f32Direct:
                guard let w = c.weightsF32 else { return }
                table.conv_f32_direct(&geometry, x, w, c.bias, Int64(oc), y, c.act, c.pool ? 1 : 0)
            case .quantizedDirect:
                guard let w = c.packed else { return }
                let acts = scratchPointers[c.actsScratch]
                let oh = Int(c.outputHeight), ow = Int(c.outputWidth)
                // With the pool fused, an odd last output row has no partner and is not computed.
                let end = c.pool ? oh / 2 * 2 : oh
                let ldc = c.pool ? (oh / 2) * (ow / 2) : oh * ow
                var oy0 = 0
                while oy0 < end {
                    let oy1 = min(end, oy0 + c.chunkRows)
                    table.qconv_acts(&geometry, x, Int64(oy0), Int64(oy1), acts)
                    let out = c.pool ? y + (oy0 / 2) * (ow / 2) : y + oy0 * ow
                    table.qconv_gemm(w, Int64(oc), Int64(k), acts, Int64(oy1 - oy0), Int64(ow), c.bias, out, Int64(ldc), c.act,
                                     c.pool ? 1 : 0)
                    oy0 = oy1
                }
            }
        }
    }

    func runLinear(_ l: InferenceLinear, _ n: Int) {
        let rows = n * l.rowsPerSample
        let x = pointers[l.input], y = pointers[l.output]
        if let p = l.packed {
            table.qgemv(p, x, y, l.bias, Int64(rows), Int64(l.outFeatures), Int64(l.inFeatures), Int64(l.outFeatures), l.act,
                        scratchPointers[l.gemmScratch])
            return
        }
        if let w = l.weightsF32 {
            if let bias = l.bias {
                for r in 0..<rows { (y + r * l.outFeatures).update(from: bias, count: l.outFeatures) }
            }
            lcr_sgemm(0, 1, Int64(rows), Int64(l.outFeatures), Int64(l.inFeatures), 1, x, Int64(l.inFeatures), w,
                      Int64(l.inFeatures), l.bias == nil ? 0 : 1, y, Int64(l.outFeatures))
        } else if let w = l.weightsQuantized {
            let scratch = scratchPointers[l.gemmScratch]
            if l.weightType == .q8_0 {
                table.gemm_q8_0(w.assumingMemoryBound(to: lcr_block_q8_0.self), x, y, l.bias, Int64(rows), Int64(l.outFeatures),
                                Int64(l.inFeatures), Int64(l.outFeatures), scratch)
            } else {
                table.gemm_q4_0(w.assumingMemoryBound(to: lcr_block_q4_0.self), x, y, l.bias, Int64(rows), Int64(l.outFeatures),
                                Int64(l.inFeatures), Int64(l.outFeatures), scratch)
            }
        }
        if l.act == LCR_ACT_RELU { table.relu(y, y, Int64(rows * l.outFeatures)) }
    }

    func runAffine(_ a: InferenceAffine, _ n: Int) {
        guard let scale = a.scale, let shift = a.shift else { return }
        let x = pointers[a.input], y = pointers[a.output]
        for b in 0..<n {
            for c in 0..<a.channels {
                let o = (b * a.channels + c) * a.spatial
                let s = scale[c], t = shift[c]
                for i in 0..<a.spatial {
                    let v = x[o + i] * s + t
                    y[o + i] = a.act == LCR_ACT_RELU ? (v > 0 ? v : 0) : v
                }
            }
        }
    }

    func runActivation(_ a: InferenceActivation, _ n: Int) {
        let x = pointers[a.input], y = pointers[a.output]
        let count = n * a.perSample
        if a.kind == .relu {
            table.relu(x, y, Int64(count))
            return
        }
        if a.kind == .elu {  // the graph's kernel, so both paths give the same values
            table.elu(x, y, Int64(count))
            return
        }
        for i in 0..<count {
            let v = Double(x[i])
            switch a.kind {
            case .gelu: y[i] = Float(0.5 * v * (1 + GraphMath.tanh(Graph.geluC * (v + Graph.geluA * v * v * v))))
            case .silu: y[i] = Float(v * GraphMath.sigmoid(v))
            default: y[i] = Float(GraphMath.tanh(v))
            }
        }
    }

    func runPool(_ p: InferencePool, _ n: Int) {
        var geometry = p.geometry
        for b in 0..<n {
            lcr_pool2d(&geometry, pointers[p.input] + b * p.inPerSample, pointers[p.output] + b * p.outPerSample,
                       p.isMax ? 1 : 0, p.act)
        }
    }

    func runGlobalPool(_ g: InferenceGlobalPool, _ n: Int) {
        let x = pointers[g.input], y = pointers[g.output]
        for plane in 0..<(n * g.channels) {
            var s: Float = 0
            for i in 0..<g.spatial { s += x[plane * g.spatial + i] }
            y[plane] = s / Float(g.spatial)
        }
    }
}
