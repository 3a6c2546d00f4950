import CRuntime

/// Builds an `InferenceModel`'s step list: fuses layers, folds batch norm, chooses each
/// convolution's method and layout, allocates the folded parameters from the arena's low end
/// and plans every step buffer with `Planner`.
///
/// Fusions (each only when the fused layer is the next one and the sole reader of the previous):
/// - conv2d / conv1d / linear, then batch norm (running statistics): folded into the weights
///   and bias (`BatchNormFolding`); linear only when its output is one feature vector per sample;
/// - such a layer (folded or not), then relu: applied in the layer's epilogue;
/// - batch norm that cannot be folded becomes a per-channel affine step, with a following relu;
/// - relu, then max pooling: max pooling runs on relu's input and applies relu to its output
///   (`max(relu(x)) = relu(max(x))`), so relu touches a quarter of the values;
/// - a direct quantized conv2d (`InferenceConvMethod.quantizedDirect`, folded and with its relu
///   or not), then a 2 x 2 stride-2 unpadded max pooling: pooled in the convolution's epilogue
///   (max, then bias and relu, which commute with it), so the full-size output is never stored;
/// - flatten is a view of its input (no step).
struct InferenceBuilder {
    let spec: ModelSpec
    let store: ParameterStore
    let batchSize: Int
    let arena: Arena
    let kernels: Kernels
    /// Whether to record where each batch norm is folded (`RefoldEntry`), for `InferenceModel.refold`.
    let refoldable: Bool

    var shapes: [Shape] = []
    /// The storage holding each layer's output (-1 while unknown; flatten and fused layers share).
    var storageOf: [Int] = []
    /// Floats per sample of each storage (storage 0 is the model input).
    var storageFloats: [Int] = []
    /// Step index (1-based; 0 is the input) that writes each storage, and the last that reads it.
    var firstUse: [Int] = []
    var lastUse: [Int] = []
    var steps: [InferenceStep] = []
    var planner = Planner()
    /// Bytes of folded parameters allocated from the low end.
    var persistentBytes = 0
    /// Refoldable builds: every folded norm and affine step, and their channels in total.
    var refoldEntries: [RefoldEntry] = []
    var refoldChannels = 0

    init(spec: ModelSpec, store: ParameterStore, batchSize: Int, arena: Arena, kernels: Kernels, refoldable: Bool = false) {
        self.spec = spec
        self.store = store
        self.batchSize = batchSize
        self.arena = arena
        self.kernels = kernels
        self.refoldable = refoldable
    }

    /// Records batch norm `norm` folded into layer `producer` (-1: an affine step) with its
    /// folded values at `target` and `bias`, when the build is refoldable.
    mutating func recordRefold(producer: Int, norm: Int, channels: Int, depth: Int, target: RefoldEntry.Target,
                               bias: UnsafePointer<Float>?) throws(LichenError)
    {
        guard refoldable, norm >= 0 else { return }
        guard let bias else {
            throw .invalidModel(key: spec.layers[norm].name + ".bias", value: "none", reason: "a folded norm has a folded bias")
        }
        var weight: TensorView? = nil, layerBias: TensorView? = nil
        if producer >= 0 {
            weight = try parameter(producer, "weight")
            if spec.layers[producer].hasBias { layerBias = try f32Parameter(producer, "bias", count: channels) }
        }
        // safe: `target` and `bias` are this build's own copies in the arena's low end (a layer is
        // copied exactly when a norm is folded into it), never the read-only file mapping.
        refoldEntries.append(RefoldEntry(
            producer: producer, norm: norm, channels: channels, depth: depth, epsilon: spec.layers[norm].epsilon, target: target,
            bias: UnsafeMutablePointer(mutating: bias), weight: weight, layerBias: layerBias, factorOffset: refoldChannels))
        refoldChannels += channels
    }

    /// The refold target of folded weights from `weightsAndBias`.
    static func foldedTarget(f32: UnsafePointer<Float>?, quantized: UnsafeRawPointer?, rowBytes: Int) -> RefoldEntry.Target? {
        // safe: folded weights are the build's own arena copies (see `recordRefold`).
        if let f32 { return .f32(UnsafeMutablePointer(mutating: f32)) }
        if let quantized { return .blocks(UnsafeMutableRawPointer(mutating: quantized), rowBytes: rowBytes) }
        return nil
    }

    /// The refold target of packed direct weights: the f32 scales `[nb][stride]` after the codes.
    static func packedTarget(_ packed: UnsafeRawPointer, codeBytes: Int, stride: Int) -> RefoldEntry.Target {
        // safe: the packed weights are the build's own arena copy; the scales follow the codes
        // (lcr_kernels.h, "Direct quantized products"), 4-byte aligned as the buffer is 64-aligned
        // and codeBytes a multiple of 32.
        .packed(UnsafeMutableRawPointer(mutating: packed + codeBytes).assumingMemoryBound(to: Float.self), stride: stride)
    }

    static func key(_ i: Int, _ attribute: String) -> String { ModelSpec.layerKey(i, attribute) }

    // MARK: - Storages

    mutating func newStorage(floatsPerSample: Int) -> Int {
        storageFloats.append(floatsPerSample)
        firstUse.append(steps.count + 1)
        lastUse.append(steps.count + 1)
        return storageFloats.count - 1
    }

    /// Marks storage `s` as read by the step about to be appended.
    mutating func read(_ s: Int) {
        lastUse[s] = max(lastUse[s], steps.count + 1)
    }

    /// Scratch for the step about to be appended.
    mutating func scratch(bytes: Int) throws(LichenError) -> Int {
        try planner.addBuffer(byteCount: bytes, firstUse: steps.count + 1, lastUse: steps.count + 1)
    }

    func count(_ s: Shape) -> Int { s.elementCount ?? 0 }

    // MARK: - Parameters

    func parameter(_ layer: Int, _ suffix: String) throws(LichenError) -> TensorView {
        try store.parameter(named: spec.layers[layer].name + "." + suffix).value
    }

    /// An f32 parameter of exactly `count` values.
    func f32Parameter(_ layer: Int, _ suffix: String, count n: Int) throws(LichenError) -> TensorView {
        let name = spec.layers[layer].name + "." + suffix
        let v = try store.parameter(named: name).value
        guard v.type == .f32 else { throw .invalidModel(key: name, value: v.type.name, reason: "must be f32") }
        guard v.elementCount == n else {
            throw .parameterShapeMismatch(tensor: name, expected: String(n) + " values", got: String(v.elementCount) + " values")
        }
        return v
    }

    /// A weight of `rows` rows of `depth` values: f32 (any shape of that size) or quantized
    /// rows `[rows, depth]` with depth a multiple of 32.
    func weightParameter(_ layer: Int, rows: Int, depth: Int) throws(LichenError) -> TensorView {
        let name = spec.layers[layer].name + ".weight"
        let v = try store.parameter(named: name).value
        switch v.type {
        case .f32:
            guard v.elementCount == rows * depth else {
                throw .parameterShapeMismatch(tensor: name, expected: String(rows * depth) + " values",
                                              got: String(v.elementCount) + " values")
            }
        case .q8_0, .q4_0:
            guard depth % 32 == 0, v.shape.last == depth, v.rowCount == rows else {
                throw .parameterShapeMismatch(tensor: name, expected: "[" + String(rows) + ", " + String(depth) + "] in whole blocks",
                                              got: String(v.rowCount) + " rows of " + String(v.shape.last))
            }
        case .f16:
            throw .invalidModel(key: name, value: v.type.name, reason: "must be f32, q8_0 or q4_0")
        }
        return v
    }

    // MARK: - Build

    mutating func build() throws(LichenError) {
        shapes = try spec.inferShapes()
        let layerCount = spec.layers.count
        var readers = [Int](repeating: 0, count: layerCount)
        for l in spec.layers { for j in l.inputs where j >= 0 { readers[j] += 1 } }
        readers[layerCount - 1] += 1  // the caller reads the model output
        storageOf = [Int](repeating: -1, count: layerCount)
        _ = newStorage(floatsPerSample: count(spec.inputShape))  // storage 0: the caller's frame

        /// Whether layer j exists, is of `kind`, reads only layer i, and layer i has no other reader.
        func follows(_ j: Int, _ i: Int, _ kind: LayerKind) -> Bool {
            j < layerCount && spec.layers[j].kind == kind && spec.layers[j].inputs.count == 1
                && spec.layers[j].inputs[0] == i && readers[i] == 1
        }
        func inputStorage(_ i: Int, _ slot: Int = 0) -> Int {
            let j = spec.layers[i].inputs[slot]
            return j < 0 ? 0 : storageOf[j]
        }
        func inputShape(_ i: Int, _ slot: Int = 0) -> Shape {
            let j = spec.layers[i].inputs[slot]
            return j < 0 ? spec.inputShape : shapes[j]
        }

        var i = 0
        while i < layerCount {
            let layer = spec.layers[i]
            switch layer.kind {
            case .conv2d, .conv1d, .linear:
                var last = i
                var norm = -1
                let outShape = shapes[i]
                let foldable = layer.kind != .linear || outShape.rank == 1
                if foldable && follows(i + 1, i, .batchNorm) {
                    norm = i + 1
                    last = i + 1
                }
                var act: Int32 = LCR_ACT_NONE
                if follows(last + 1, last, .relu) {
                    act = LCR_ACT_RELU
                    last += 1
                }
                var pool = false
                if layer.kind == .conv2d, try directMethod(i) != nil, follows(last + 1, last, .maxPool2d) {
                    let p = spec.layers[last + 1]
                    if p.kernelH == 2 && p.kernelW == 2 && p.strideH == 2 && p.strideW == 2 && p.padH == 0 && p.padW == 0 {
                        pool = true
                        last += 1
                    }
                }
                let input = inputStorage(i)
                if layer.kind == .linear {
                    try addLinear(i, norm: norm, act: act, input: input, inShape: inputShape(i))
                } else {
                    try addConv(i, norm: norm, act: act, pool: pool ? last : -1, input: input, inShape: inputShape(i))
                }
                for j in i...last { storageOf[j] = storageOf[i] }
                i = last + 1
            case .batchNorm:
                var act: Int32 = LCR_ACT_NONE
                var last = i
                if follows(i + 1, i, .relu) {
                    act = LCR_ACT_RELU
                    last += 1
                }
                try addAffine(i, act: act, input: inputStorage(i), inShape: inputShape(i))
                for j in i...last { storageOf[j] = storageOf[i] }
                i = last + 1
            case .relu where follows(i + 1, i, .maxPool2d):
                try addPool(i + 1, act: LCR_ACT_RELU, input: inputStorage(i), inShape: inputShape(i))
                storageOf[i] = storageOf[i + 1]
                i += 2
            case .relu, .gelu, .silu, .tanh, .elu:
                let input = inputStorage(i)
                read(input)
                let out = newStorage(floatsPerSample: count(shapes[i]))
                steps.append(.activation(InferenceActivation(input: input, output: out, kind: layer.kind, perSample: count(shapes[i]))))
                storageOf[i] = out
                i += 1
            case .maxPool2d, .avgPool2d:
                try addPool(i, act: LCR_ACT_NONE, input: inputStorage(i), inShape: inputShape(i))
                i += 1
            case .globalAvgPool:
                let input = inputStorage(i)
                let s = inputShape(i)
                read(input)
                let out = newStorage(floatsPerSample: count(shapes[i]))
                steps.append(.globalAvgPool(InferenceGlobalPool(input: input, output: out, channels: s[0], spatial: count(s) / max(s[0], 1))))
                storageOf[i] = out
                i += 1
            case .flatten:
                storageOf[i] = inputStorage(i)
                i += 1
            case .add:
                let a = inputStorage(i, 0), b = inputStorage(i, 1)
                read(a)
                read(b)
                let out = newStorage(floatsPerSample: count(shapes[i]))
                steps.append(.add(InferenceAdd(a: a, b: b, output: out, perSample: count(shapes[i]))))
                storageOf[i] = out
                i += 1
            case .softmax:
                let input = inputStorage(i)
                read(input)
                let out = newStorage(floatsPerSample: count(shapes[i]))
                steps.append(.softmax(InferenceSoftmax(input: input, output: out, features: count(shapes[i]))))
                storageOf[i] = out
                i += 1
            case .groupNorm, .layerNorm, .concat, .slice:
                throw .invalidModel(key: InferenceBuilder.key(i, "kind"), value: layer.kind.name,
                                    reason: "not supported by the inference path (use Graph)")
            }
        }
        let output = storageOf[layerCount - 1]
        guard output > 0 else {
            throw .invalidModel(key: InferenceBuilder.key(layerCount - 1, "kind"), value: spec.layers[layerCount - 1].kind.name,
                                reason: "the inference path needs a computing layer before the output")
        }
        lastUse[output] = steps.count + 1
    }

    // MARK: - Layers

    /// The folded (or original) weights and bias of a conv or linear layer of `rows` outputs.
    mutating func weightsAndBias(_ i: Int, norm: Int, rows: Int, depth: Int)
        throws(LichenError) -> (f32: UnsafePointer<Float>?, quantized: UnsafeRawPointer?, type: ElementType, rowBytes: Int, bias: UnsafePointer<Float>?)
    {
        let layer = spec.layers[i]
        let w = try weightParameter(i, rows: rows, depth: depth)
        let b: TensorView? = layer.hasBias ? try f32Parameter(i, "bias", count: rows) : nil
        guard norm >= 0 else {
            let bias: UnsafePointer<Float>? = b.map { UnsafePointer($0.floats) }
            if w.type == .f32 { return (UnsafePointer(w.floats), nil, .f32, depth * 4, bias) }
            return (nil, UnsafeRawPointer(w.base), w.type, w.rowByteCount, bias)
        }
        let n = spec.layers[norm]
        let f = try BatchNormFolding.factors(
            channels: rows, bias: b, gamma: try f32Parameter(norm, "weight", count: rows), beta: try f32Parameter(norm, "bias", count: rows),
            mean: try f32Parameter(norm, "running_mean", count: rows), variance: try f32Parameter(norm, "running_var", count: rows),
            epsilon: n.epsilon, normName: n.name)
        let biasPointer = try persistentFloats(f.bias)
        if w.type == .f32 {
            let bytes = rows * depth * 4
            let p = try arena.allocatePersistent(byteCount: bytes, alignment: 64)
            persistentBytes += bytes
            let floats = p.bindMemory(to: Float.self, capacity: rows * depth)
            try BatchNormFolding.foldF32(w, into: floats, channels: rows, depth: depth, scale: f.scale)
            return (UnsafePointer(floats), nil, .f32, depth * 4, biasPointer)
        }
        let bytes = rows * w.rowByteCount
        let p = try arena.allocatePersistent(byteCount: bytes, alignment: 64)
        persistentBytes += bytes
        try BatchNormFolding.foldBlocks(w, into: p, channels: rows, scale: f.scale, normName: n.name)
        return (nil, UnsafeRawPointer(p), w.type, w.rowByteCount, biasPointer)
    }

    /// Whether the table's direct quantized kernels are its own SIMD code (`qconv_native`).
    var directKernels: Bool { kernels.table.pointee.qconv_native != 0 }

    /// The direct method of conv layer `i`, or nil: with native direct kernels, one group,
    /// stride 1 along the width and kernels at most 16 wide and high, `.quantizedDirect` for
    /// quantized weights in whole blocks, `.f32Direct` for f32 weights of at most
    /// `InferenceModel.smallDepth` values per output that also have stride 1 along the height.
    func directMethod(_ i: Int) throws(LichenError) -> InferenceConvMethod? {
        let layer = spec.layers[i]
        let is1d = layer.kind == .conv1d
        guard directKernels, layer.groups == 1, layer.strideW == 1, layer.kernelW <= 16, is1d || layer.kernelH <= 16 else {
            return nil
        }
        let w = try parameter(i, "weight")
        if w.type == .q8_0 || w.type == .q4_0 { return w.shape.last % 32 == 0 ? .quantizedDirect : nil }
        let taps = layer.kernelW * (is1d ? 1 : layer.kernelH)
        let depth = w.elementCount / max(layer.outputs, 1)
        guard w.type == .f32, is1d || layer.strideH == 1, taps > 0, depth <= InferenceModel.smallDepth else { return nil }
        return .f32Direct
    }

    /// The quantized weights (folded when `norm >= 0`) of a conv or linear layer packed for the
    /// table's direct kernels (`lcr_qconv_pack_weights` for a convolution, else
    /// `lcr_qgemv_pack_weights`), and its bias, in the arena's low end. A folded copy made only
    /// as the packing's input is given back to the arena.
    mutating func packedWeights(_ i: Int, norm: Int, rows: Int, depth: Int, convolution: Bool)
        throws(LichenError) -> (packed: UnsafeRawPointer, bias: UnsafePointer<Float>?)
    {
        let mark = arena.lowEndMark()
        let before = persistentBytes
        let wb = try weightsAndBias(i, norm: norm, rows: rows, depth: depth)
        guard let w = wb.quantized else {
            throw .invalidModel(key: spec.layers[i].name + ".weight", value: wb.type.name, reason: "must be q8_0 or q4_0")
        }
        let isQ4: Int32 = wb.type == .q4_0 ? 1 : 0
        let bytes = convolution ? Int(lcr_qconv_weights_bytes(Int64(rows), Int64(depth)))
                                : Int(lcr_qgemv_weights_bytes(Int64(rows), Int64(depth)))
        var staging = [UInt8](repeating: 0, count: bytes)
        staging.withUnsafeMutableBytes { buffer in
            if convolution {
                lcr_qconv_pack_weights(w, isQ4, Int64(rows), Int64(depth), buffer.baseAddress)
            } else {
                lcr_qgemv_pack_weights(w, isQ4, Int64(rows), Int64(depth), buffer.baseAddress)
            }
        }
        var biasValues: [Float] = []
        if let b = wb.bias { biasValues = Array(UnsafeBufferPointer(start: b, count: rows)) }
        // The mark was taken above, in this builder, so it is never ahead of the low end.
        try arena.resetLowEnd(to: mark)
        persistentBytes = before
        let p = try arena.allocatePersistent(byteCount: bytes, alignment: 64)
        persistentBytes += bytes
        staging.withUnsafeBytes { source in
            if let base = source.baseAddress { p.copyMemory(from: base, byteCount: bytes) }
        }
        let bias: UnsafePointer<Float>? = wb.bias == nil ? nil : try persistentFloats(biasValues)
        return (UnsafeRawPointer(p), bias)
    }

    mutating func persistentFloats(_ values: [Float]) throws(LichenError) -> UnsafePointer<Float> {
        let p = try arena.allocatePersistent(byteCount: max(values.count, 1) * 4, alignment: 64)
        persistentBytes += max(values.count, 1) * 4
        let floats = p.bindMemory(to: Float.self, capacity: max(values.count, 1))
        for (k, v) in values.enumerated() { floats[k] = v }
        return UnsafePointer(floats)
    }

    /// `pool` is the index of a fused 2 x 2 max pooling layer, or -1.
    mutating func addConv(_ i: Int, norm: Int, act: Int32, pool: Int, input: Int, inShape: Shape) throws(LichenError) {
        let layer = spec.layers[i]
        let out = shapes[i]
        let is1d = layer.kind == .conv1d
        let c = inShape[0], h = is1d ? 1 : inShape[1], w = is1d ? inShape[1] : inShape[2]
        let geometry = try ConvGeometry(
            channels: c, height: h, width: w, kernelHeight: is1d ? 1 : layer.kernelH, kernelWidth: layer.kernelW,
            strideHeight: is1d ? 1 : layer.strideH, strideWidth: layer.strideW, padHeight: is1d ? 0 : layer.padH,
            padWidth: layer.padW, dilationHeight: is1d ? 1 : layer.dilationH, dilationWidth: layer.dilationW)
        var conv = InferenceConv()
        conv.groups = layer.groups
        conv.inChannels = c
        conv.outChannels = out[0]
        conv.positions = count(out) / out[0]
        conv.depth = c / layer.groups * geometry.kernelHeight * geometry.kernelWidth
        conv.inPerSample = count(inShape)
        conv.outPerSample = count(out)
        conv.geometry = geometry.c
        var gg = geometry
        gg.channels = c / layer.groups
        conv.groupGeometry = gg.c
        conv.act = act
        let direct = try directMethod(i)
        if direct == .f32Direct {
            let wb = try weightsAndBias(i, norm: norm, rows: conv.outChannels, depth: conv.depth)
            if let t = InferenceBuilder.foldedTarget(f32: wb.f32, quantized: wb.quantized, rowBytes: wb.rowBytes) {
                try recordRefold(producer: i, norm: norm, channels: conv.outChannels, depth: conv.depth, target: t, bias: wb.bias)
            }
            conv.method = .f32Direct
            conv.weightsF32 = wb.f32
            conv.bias = wb.bias
            let oh = is1d ? 1 : out[1]
            conv.outputHeight = Int64(oh)
            conv.outputWidth = Int64(conv.positions / oh)
            conv.pool = pool >= 0
            if conv.pool { conv.outPerSample = count(shapes[pool]) }
            read(input)
            conv.input = input
            conv.output = newStorage(floatsPerSample: conv.outPerSample)
            storageOf[i] = conv.output
            steps.append(.conv(conv))
            return
        }
        if direct == .quantizedDirect {
            let packed = try packedWeights(i, norm: norm, rows: conv.outChannels, depth: conv.depth, convolution: true)
            let codeBytes = conv.outChannels * conv.depth
            try recordRefold(producer: i, norm: norm, channels: conv.outChannels, depth: conv.depth,
                             target: InferenceBuilder.packedTarget(packed.packed, codeBytes: codeBytes, stride: conv.outChannels),
                             bias: packed.bias)
            conv.method = .quantizedDirect
            conv.packed = packed.packed
            conv.bias = packed.bias
            conv.weightType = try parameter(i, "weight").type
            let oh = is1d ? 1 : out[1], ow = conv.positions / oh
            conv.outputHeight = Int64(oh)
            conv.outputWidth = Int64(ow)
            conv.pool = pool >= 0
            if conv.pool { conv.outPerSample = count(shapes[pool]) }
            // Chunks of an even number of output rows (the pooled pairs) with a panel of at most
            // about 96 KiB: the GEMM walks it a row pair at a time, every channel tile reading the
            // pair from L1. The shipped CNN's conv2 (14 rows, 72.6 KiB) is one chunk: in a C
            // harness (thread CPU time, loaded machine) it took 36-38 us against 39-41 us as
            // seven 2-row chunks.
            let rowBytes = Int(lcr_qconv_lanes(Int64(ow))) * (conv.depth + conv.depth / 32 * 4)
            conv.chunkRows = max(2, min(oh + oh % 2, (InferenceModel.directPanelBytes / max(rowBytes, 1)) & ~1))
            read(input)
            conv.input = input
            conv.actsScratch = try scratch(bytes: Int(lcr_qconv_acts_bytes(Int64(conv.chunkRows), Int64(ow), Int64(conv.depth))))
            conv.output = newStorage(floatsPerSample: conv.outPerSample)
            storageOf[i] = conv.output
            steps.append(.conv(conv))
            return
        }
        let wb = try weightsAndBias(i, norm: norm, rows: conv.outChannels, depth: conv.depth)
        if let t = InferenceBuilder.foldedTarget(f32: wb.f32, quantized: wb.quantized, rowBytes: wb.rowBytes) {
            try recordRefold(producer: i, norm: norm, channels: conv.outChannels, depth: conv.depth, target: t, bias: wb.bias)
        }
        conv.weightsF32 = wb.f32
        conv.weightsQuantized = wb.quantized
        conv.weightType = wb.type
        conv.weightRowBytes = wb.rowBytes
        conv.bias = wb.bias
        conv.pointwise = geometry.kernelHeight == 1 && geometry.kernelWidth == 1 && geometry.strideHeight == 1
            && geometry.strideWidth == 1 && geometry.padHeight == 0 && geometry.padWidth == 0
        let p = conv.positions, k = conv.depth, ocg = conv.outChannels / conv.groups
        read(input)
        conv.input = input
        if wb.type == .f32 {
            conv.method = k <= InferenceModel.smallDepth ? .smallDepth : .blis
            if !conv.pointwise { conv.columns = try scratch(bytes: c * geometry.kernelHeight * geometry.kernelWidth * p * 4) }
        } else {
            conv.method = .quantized
            // Chunks of output rows whose columns and rows (2 x chunk x depth floats) take about
            // 512 KiB, at least one output row.
            let oh = is1d ? 1 : out[1], ow = p / oh
            conv.outputHeight = Int64(oh)
            conv.chunkRows = max(1, min(oh, InferenceModel.chunkValues / max(k * ow, 1)))
            let chunk = conv.chunkRows * ow
            conv.columns = try scratch(bytes: chunk * k * 4)
            conv.transposeScratch = try scratch(bytes: chunk * k * 4)
            conv.productT = try scratch(bytes: p * conv.outChannels * 4)
            conv.gemmScratchBytes = try Kernels.gemmScratchByteCount(rows: chunk, outputs: ocg, depth: k)
            conv.gemmScratch = try scratch(bytes: conv.gemmScratchBytes)
        }
        conv.output = newStorage(floatsPerSample: conv.outPerSample)
        storageOf[i] = conv.output
        steps.append(.conv(conv))
    }

    mutating func addLinear(_ i: Int, norm: Int, act: Int32, input: Int, inShape: Shape) throws(LichenError) {
        let layer = spec.layers[i]
        var lin = InferenceLinear()
        lin.inFeatures = inShape.last
        lin.outFeatures = layer.outputs
        lin.rowsPerSample = count(inShape) / max(inShape.last, 1)
        lin.act = act
        let w = try parameter(i, "weight")
        if directKernels && (w.type == .q8_0 || w.type == .q4_0) && lin.inFeatures % 32 == 0 {
            let packed = try packedWeights(i, norm: norm, rows: lin.outFeatures, depth: lin.inFeatures, convolution: false)
            let np = Int(lcr_qgemv_padded(Int64(lin.outFeatures)))
            try recordRefold(producer: i, norm: norm, channels: lin.outFeatures, depth: lin.inFeatures,
                             target: InferenceBuilder.packedTarget(packed.packed, codeBytes: np * lin.inFeatures, stride: np),
                             bias: packed.bias)
            lin.packed = packed.packed
            lin.bias = packed.bias
            lin.weightType = w.type
            read(input)
            lin.input = input
            lin.gemmScratchBytes = Int(lcr_qgemv_scratch_bytes(Int64(lin.inFeatures)))
            lin.gemmScratch = try scratch(bytes: lin.gemmScratchBytes)
            lin.output = newStorage(floatsPerSample: count(shapes[i]))
            storageOf[i] = lin.output
            steps.append(.linear(lin))
            return
        }
        let wb = try weightsAndBias(i, norm: norm, rows: lin.outFeatures, depth: lin.inFeatures)
        if let t = InferenceBuilder.foldedTarget(f32: wb.f32, quantized: wb.quantized, rowBytes: wb.rowBytes) {
            try recordRefold(producer: i, norm: norm, channels: lin.outFeatures, depth: lin.inFeatures, target: t, bias: wb.bias)
        }
        lin.weightsF32 = wb.f32
        lin.weightsQuantized = wb.quantized
        lin.weightType = wb.type
        lin.bias = wb.bias
        read(input)
        lin.input = input
        if wb.type != .f32 {
            lin.gemmScratchBytes = try Kernels.gemmScratchByteCount(rows: batchSize * lin.rowsPerSample, outputs: lin.outFeatures,
                                                                     depth: lin.inFeatures)
            lin.gemmScratch = try scratch(bytes: lin.gemmScratchBytes)
        }
        lin.output = newStorage(floatsPerSample: count(shapes[i]))
        storageOf[i] = lin.output
        steps.append(.linear(lin))
    }

    mutating func addAffine(_ i: Int, act: Int32, input: Int, inShape: Shape) throws(LichenError) {
        let layer = spec.layers[i]
        let channels = inShape[0]
        let f = try BatchNormFolding.factors(
            channels: channels, bias: nil, gamma: try f32Parameter(i, "weight", count: channels),
            beta: try f32Parameter(i, "bias", count: channels), mean: try f32Parameter(i, "running_mean", count: channels),
            variance: try f32Parameter(i, "running_var", count: channels), epsilon: layer.epsilon, normName: layer.name)
        var a = InferenceAffine()
        a.channels = channels
        a.spatial = count(inShape) / max(channels, 1)
        a.scale = try persistentFloats(f.scale)
        a.shift = try persistentFloats(f.bias)
        if let scale = a.scale {
            // safe: the step's own arena copy.
            try recordRefold(producer: -1, norm: i, channels: channels, depth: 0, target: .affine(UnsafeMutablePointer(mutating: scale)),
                             bias: a.shift)
        }
        a.act = act
        read(input)
        a.input = input
        a.output = newStorage(floatsPerSample: count(inShape))
        storageOf[i] = a.output
        steps.append(.affine(a))
    }

    mutating func addPool(_ i: Int, act: Int32, input: Int, inShape: Shape) throws(LichenError) {
        let layer = spec.layers[i]
        var pool = InferencePool()
        pool.geometry = lcr_pool_geometry(
            channels: Int64(inShape[0]), height: Int64(inShape[1]), width: Int64(inShape[2]),
            kernel_h: Int64(layer.kernelH), kernel_w: Int64(layer.kernelW), stride_h: Int64(layer.strideH),
            stride_w: Int64(layer.strideW), pad_h: Int64(layer.padH), pad_w: Int64(layer.padW))
        pool.isMax = layer.kind == .maxPool2d
        pool.act = act
        pool.inPerSample = count(inShape)
        pool.outPerSample = count(shapes[i])
        read(input)
        pool.input = input
        pool.output = newStorage(floatsPerSample: pool.outPerSample)
        storageOf[i] = pool.output
        steps.append(.pool(pool))
    }
}
