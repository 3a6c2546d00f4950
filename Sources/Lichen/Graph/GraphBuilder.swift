/// Builds a `Graph`'s nodes and memory plan: validation, shape inference, parameter
/// resolution, backward bookkeeping and buffer lifetimes. Build time only (allocates).
struct GraphBuilder {
    let spec: ModelSpec
    let store: ParameterStore
    let batchSize: Int
    let options: GraphOptions

    var nodes: [GraphNode] = []
    var valueBuffer: [Int] = []
    var gradientBuffer: [Int] = []
    var planner = Planner()
    var inputShape: Shape

    init(spec: ModelSpec, store: ParameterStore, batchSize: Int, options: GraphOptions) {
        self.spec = spec
        self.store = store
        self.batchSize = batchSize
        self.options = options
        self.inputShape = spec.inputShape
    }

    // MARK: - Errors and shapes

    static func key(_ i: Int, _ attribute: String) -> String {
        "lichen.layer." + String(i) + "." + attribute
    }

    static func shapeText(_ s: Shape) -> String {
        var t = "["
        for i in 0..<s.rank {
            if i > 0 { t += ", " }
            t += String(s[i])
        }
        return t + "]"
    }

    func fail(_ i: Int, _ attribute: String, _ value: Int, _ reason: StaticString) -> LichenError {
        .invalidModel(key: GraphBuilder.key(i, attribute), value: String(value), reason: reason)
    }

    func make(_ dims: [Int]) throws(LichenError) -> Shape { try Shape(dimensions: dims) }

    /// [batchSize] + per-sample dimensions.
    func withBatch(_ perSample: [Int]) throws(LichenError) -> Shape { try Shape(dimensions: [batchSize] + perSample) }

    // MARK: - Build

    mutating func build() throws(LichenError) {
        let L = spec.layers.count
        guard L >= 1 else {
            throw .invalidModel(key: "lichen.layer_count", value: "0", reason: "a model needs at least one layer")
        }
        let input = spec.inputShape.dimensions
        guard input.count >= 1 && input.count <= 3 else {
            throw .invalidModel(key: "lichen.input_shape", value: GraphBuilder.shapeText(spec.inputShape),
                                reason: "the per-sample input shape must have rank 1 to 3")
        }
        for d in input where d < 1 || d > ModelSpecLimits.maximumExtent {
            throw .invalidModel(key: "lichen.input_shape", value: GraphBuilder.shapeText(spec.inputShape),
                                reason: "input dimensions must be in 1...16777216")
        }
        inputShape = try withBatch(input)
        let placeholder = Shape.scalarPlaceholder
        // Per-sample output dimensions of every layer (index 0 = model input, k + 1 = layer k).
        var dims: [[Int]] = [input]
        var storageOf: [Int] = [0]
        for (i, layer) in spec.layers.enumerated() {
            guard !layer.name.isEmpty else {
                throw .invalidModel(key: GraphBuilder.key(i, "name"), value: "\"\"", reason: "layer names must not be empty")
            }
            for j in 0..<i where spec.layers[j].name == layer.name {
                throw .invalidModel(key: GraphBuilder.key(i, "name"), value: layer.name, reason: "layer names must be unique")
            }
            let wanted = layer.kind == .add || layer.kind == .concat ? 2 : 1
            guard layer.inputs.count == wanted else {
                throw fail(i, "inputs", layer.inputs.count, wanted == 2 ? "add and concat take two inputs" : "this layer takes one input")
            }
            for k in layer.inputs where k < -1 || k >= i {
                throw fail(i, "inputs", k, "inputs must be -1 (the model input) or an earlier layer")
            }
            var node = GraphNode(kind: layer.kind, index: i, placeholder: placeholder)
            node.input0 = storageOf[layer.inputs[0] + 1]
            if wanted == 2 { node.input1 = storageOf[layer.inputs[1] + 1] }
            let x = dims[layer.inputs[0] + 1]
            node.inShape = try withBatch(x)
            let out = try configure(&node, layer, i, x, wanted == 2 ? dims[layer.inputs[1] + 1] : [])
            for d in out where d < 1 || d > ModelSpecLimits.maximumExtent {
                throw fail(i, "output_shape", d, "every output dimension must be in 1...16777216")
            }
            guard out.count <= 3 else { throw fail(i, "output_shape", out.count, "per-sample ranks above 3 are not supported") }
            node.outShape = try withBatch(out)
            node.storage = layer.kind == .flatten ? node.input0 : i + 1
            storageOf.append(node.storage)
            dims.append(out)
            nodes.append(node)
        }
        try planBackward()
        try planMemory()
    }

    // MARK: - Layers

    /// Validates layer `i`, resolves its parameters and fills its node; returns its per-sample output shape.
    mutating func configure(_ node: inout GraphNode, _ layer: LayerSpec, _ i: Int, _ x: [Int], _ second: [Int])
        throws(LichenError) -> [Int]
    {
        var features = 1
        for d in x { features *= d }
        node.features = features
        node.channels = x[0]
        node.spatial = features / x[0]
        node.sampleRowsShape = try make([batchSize, features])
        switch layer.kind {
        case .linear:
            guard layer.outputs >= 1 && layer.outputs <= ModelSpecLimits.maximumExtent else {
                throw fail(i, "outputs", layer.outputs, "must be in 1...16777216")
            }
            let inF = x[x.count - 1]
            node.inFeatures = inF
            node.outFeatures = layer.outputs
            node.rowsPerSample = features / inF
            node.inRowsShape = try make([batchSize * node.rowsPerSample, inF])
            node.outRowsShape = try make([batchSize * node.rowsPerSample, layer.outputs])
            try resolveWeight(&node, layer, i, rows: layer.outputs, rowLength: inF, fullShape: [layer.outputs, inF])
            var out = x
            out[out.count - 1] = layer.outputs
            return out

        case .conv2d, .conv1d:
            let is2d = layer.kind == .conv2d
            guard x.count == (is2d ? 3 : 2) else {
                throw fail(i, "inputs", x.count, is2d ? "conv2d takes [C, H, W]" : "conv1d takes [C, L]")
            }
            guard layer.outputs >= 1 && layer.outputs <= ModelSpecLimits.maximumExtent else {
                throw fail(i, "outputs", layer.outputs, "must be in 1...16777216")
            }
            let g = layer.groups
            guard g >= 1 && x[0] % g == 0 && layer.outputs % g == 0 else {
                throw fail(i, "groups", g, "must be >= 1 and divide the input and output channels")
            }
            let kh = is2d ? layer.kernelH : 1, sh = is2d ? layer.strideH : 1
            let ph = is2d ? layer.padH : 0, dh = is2d ? layer.dilationH : 1
            try checkWindow(i, kh: kh, kw: layer.kernelW, sh: sh, sw: layer.strideW, ph: ph, pw: layer.padW, dh: dh, dw: layer.dilationW)
            let h = is2d ? x[1] : 1, w = is2d ? x[2] : x[1]
            let geometry: ConvGeometry
            do {
                geometry = try ConvGeometry(
                    channels: x[0], height: h, width: w, kernelHeight: kh, kernelWidth: layer.kernelW,
                    strideHeight: sh, strideWidth: layer.strideW, padHeight: ph, padWidth: layer.padW,
                    dilationHeight: dh, dilationWidth: layer.dilationW)
            } catch {
                throw fail(i, "kernel", layer.kernelW, "the kernel is larger than the padded input")
            }
            let oc = layer.outputs, p = geometry.outputHeight * geometry.outputWidth
            let kg = (x[0] / g) * kh * layer.kernelW, ocg = oc / g
            node.geometry = geometry
            node.groups = g
            node.outChannels = oc
            node.positions = p
            node.groupDepth = kg
            node.groupOutChannels = ocg
            node.imageShape = try make([x[0], h * w])
            node.outImageShape = try make([oc, p])
            node.weightRowsShape = try make([oc, kg])
            node.groupWeightShape = try make([ocg, kg])
            node.columnsShape = try make([geometry.columnRows, p])
            node.groupColumnsShape = try make([kg, p])
            node.groupOutShape = try make([ocg, p])
            node.columnsTShape = try make([p, kg])
            node.outTShape = try make([p, ocg])
            let full = is2d ? [oc, x[0] / g, kh, layer.kernelW] : [oc, x[0] / g, layer.kernelW]
            try resolveWeight(&node, layer, i, rows: oc, rowLength: kg, fullShape: full)
            return is2d ? [oc, geometry.outputHeight, geometry.outputWidth] : [oc, geometry.outputWidth]

        case .batchNorm, .groupNorm, .layerNorm:
            guard layer.epsilon.isFinite && layer.epsilon > 0 else { throw fail(i, "epsilon", 0, "must be finite and > 0") }
            guard layer.momentum.isFinite && layer.momentum >= 0 && layer.momentum <= 1 else {
                throw fail(i, "momentum", 0, "must be in [0, 1]")
            }
            node.epsilon = layer.epsilon
            node.momentum = layer.momentum
            var c = x[0]
            if layer.kind == .batchNorm {
                node.statShape = try make([c])
            } else if layer.kind == .groupNorm {
                guard layer.groups >= 1 && c % layer.groups == 0 else {
                    throw fail(i, "groups", layer.groups, "must be >= 1 and divide the channels")
                }
                node.groups = layer.groups
                node.statShape = try make([batchSize * layer.groups])
            } else {
                // Layer norm: every feature is a channel of its own, one group per sample.
                c = features
                node.channels = features
                node.spatial = 1
                node.groups = 1
                node.statShape = try make([batchSize])
            }
            node.weight = try resolveF32(layer.name + ".weight", [c])
            node.bias = try resolveF32(layer.name + ".bias", [c])
            if layer.kind == .batchNorm && (options.batchNormMode == .runningStatistics || options.updateRunningStatistics) {
                node.runningMean = try resolveF32(layer.name + ".running_mean", [c])
                node.runningVariance = try resolveF32(layer.name + ".running_var", [c])
                if options.updateRunningStatistics {
                    for k in [node.runningMean, node.runningVariance] where !store.parameters[k].isWritable {
                        throw .invalidModel(key: store.parameters[k].name, value: "read-only",
                                            reason: "running statistics must be writable to be updated")
                    }
                }
            }
            return x

        case .relu, .gelu, .silu, .tanh, .elu, .softmax:
            return x

        case .maxPool2d, .avgPool2d:
            guard x.count == 3 else { throw fail(i, "inputs", x.count, "pooling takes [C, H, W]") }
            try checkWindow(i, kh: layer.kernelH, kw: layer.kernelW, sh: layer.strideH, sw: layer.strideW,
                            ph: layer.padH, pw: layer.padW, dh: layer.dilationH, dw: layer.dilationW)
            guard layer.dilationH == 1 && layer.dilationW == 1 else {
                throw fail(i, "dilation", max(layer.dilationH, layer.dilationW), "pooling takes no dilation")
            }
            guard layer.padH * 2 <= layer.kernelH && layer.padW * 2 <= layer.kernelW else {
                throw fail(i, "padding", max(layer.padH, layer.padW), "pooling padding must be at most half the kernel")
            }
            let oh = (x[1] + 2 * layer.padH - layer.kernelH) / layer.strideH + 1
            let ow = (x[2] + 2 * layer.padW - layer.kernelW) / layer.strideW + 1
            guard x[1] + 2 * layer.padH >= layer.kernelH && x[2] + 2 * layer.padW >= layer.kernelW else {
                throw fail(i, "kernel", layer.kernelH, "the kernel is larger than the padded input")
            }
            node.kernelH = layer.kernelH
            node.kernelW = layer.kernelW
            node.strideH = layer.strideH
            node.strideW = layer.strideW
            node.padH = layer.padH
            node.padW = layer.padW
            return [x[0], oh, ow]

        case .globalAvgPool:
            guard x.count >= 2 else { throw fail(i, "inputs", x.count, "global average pooling takes [C, spatial...]") }
            return [x[0]]

        case .flatten:
            return [features]

        case .add:
            guard second == x else {
                throw .invalidModel(key: GraphBuilder.key(i, "inputs"), value: GraphBuilder.shapeText(try make(second)),
                                    reason: "add takes two inputs of the same shape")
            }
            return x

        case .concat:
            guard x.count == 1 && second.count == 1 else {
                throw .invalidModel(key: GraphBuilder.key(i, "inputs"), value: GraphBuilder.shapeText(try make(x + second)),
                                    reason: "concat takes two [features] inputs")
            }
            node.inFeatures = x[0]
            node.outFeatures = x[0] + second[0]
            node.secondInShape = try withBatch(second)
            return [x[0] + second[0]]

        case .slice:
            guard x.count == 1 else { throw fail(i, "inputs", x.count, "slice takes a [features] input") }
            guard layer.outputs >= 1 && layer.outputs <= x[0] else { throw fail(i, "outputs", layer.outputs, "must be in 1...the input's features") }
            guard layer.start >= 0 && layer.start <= x[0] - layer.outputs else {
                throw fail(i, "start", layer.start, "start + outputs must be at most the input's features")
            }
            node.inFeatures = x[0]
            node.outFeatures = layer.outputs
            node.sliceStart = layer.start
            return [layer.outputs]
        }
    }

    func checkWindow(_ i: Int, kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int, dh: Int, dw: Int) throws(LichenError) {
        let m = ModelSpecLimits.maximumExtent
        guard kh >= 1 && kh <= m else { throw fail(i, "kernel_h", kh, "must be in 1...16777216") }
        guard kw >= 1 && kw <= m else { throw fail(i, "kernel_w", kw, "must be in 1...16777216") }
        guard sh >= 1 && sh <= m else { throw fail(i, "stride_h", sh, "must be in 1...16777216") }
        guard sw >= 1 && sw <= m else { throw fail(i, "stride_w", sw, "must be in 1...16777216") }
        guard ph >= 0 && ph <= m else { throw fail(i, "pad_h", ph, "must be in 0...16777216") }
        guard pw >= 0 && pw <= m else { throw fail(i, "pad_w", pw, "must be in 0...16777216") }
        guard dh >= 1 && dh <= m else { throw fail(i, "dilation_h", dh, "must be in 1...16777216") }
        guard dw >= 1 && dw <= m else { throw fail(i, "dilation_w", dw, "must be in 1...16777216") }
    }

    /// Resolves a linear or conv weight (and bias): f32 of `fullShape` or `[rows, rowLength]`,
    /// or q8_0/q4_0 `[rows, rowLength]`.
    mutating func resolveWeight(_ node: inout GraphNode, _ layer: LayerSpec, _ i: Int, rows: Int, rowLength: Int, fullShape: [Int])
        throws(LichenError)
    {
        let name = layer.name + ".weight"
        guard let w = store.index(of: name) else { throw .notFound(kind: "parameter", name: name) }
        let v = store.parameters[w].value
        let expected = try make(fullShape)
        switch v.type {
        case .f32:
            let rowForm = v.shape.rank == 2 && v.shape[0] == rows && v.shape[1] == rowLength
            guard v.shape == expected || rowForm else {
                throw .parameterShapeMismatch(tensor: name, expected: GraphBuilder.shapeText(expected), got: GraphBuilder.shapeText(v.shape))
            }
        case .q8_0, .q4_0:
            let rowShape = try make([rows, rowLength])
            guard v.shape == rowShape else {
                throw .parameterShapeMismatch(tensor: name, expected: GraphBuilder.shapeText(rowShape), got: GraphBuilder.shapeText(v.shape))
            }
            node.quantizedWeight = true
        case .f16:
            throw .invalidModel(key: name, value: v.type.name, reason: "weights must be f32, q8_0 or q4_0")
        }
        node.weight = w
        if layer.hasBias { node.bias = try resolveF32(layer.name + ".bias", [rows]) }
    }

    /// Resolves an f32 parameter of `dims` (any shape with that element count for rank-1 `dims`).
    func resolveF32(_ name: String, _ dims: [Int]) throws(LichenError) -> Int {
        guard let k = store.index(of: name) else { throw .notFound(kind: "parameter", name: name) }
        let v = store.parameters[k].value
        guard v.type == .f32 else { throw .invalidModel(key: name, value: v.type.name, reason: "this parameter must be f32") }
        let expected = try make(dims)
        guard v.shape == expected || (dims.count == 1 && v.elementCount == dims[0]) else {
            throw .parameterShapeMismatch(tensor: name, expected: GraphBuilder.shapeText(expected), got: GraphBuilder.shapeText(v.shape))
        }
        return k
    }

    // MARK: - Backward bookkeeping

    /// Which layers run backward, which input gradients they write, and who writes first.
    mutating func planBackward() throws(LichenError) {
        guard options.training else { return }
        let L = nodes.count
        // Whether a gradient must flow into each storage (something trainable, or the input
        // gradient, lies upstream). Parameters that could ever train count: flags may change after build.
        var requiresGrad = [Bool](repeating: false, count: L + 1)
        requiresGrad[0] = options.inputGradient
        for i in 0..<L {
            let node = nodes[i]
            if node.kind == .flatten { continue }
            var r = requiresGrad[node.input0] || (node.input1 >= 0 && requiresGrad[node.input1])
            for p in [node.weight, node.bias] where p >= 0 && store.parameters[p].canTrain { r = true }
            if options.trainAdapters && (node.kind == .linear || node.kind == .conv2d || node.kind == .conv1d) { r = true }
            requiresGrad[node.storage] = r
        }
        // Whether each storage reaches the output.
        var live = [Bool](repeating: false, count: L + 1)
        let outStorage = nodes[L - 1].storage
        live[outStorage] = true
        var i = L - 1
        while i >= 0 {
            let node = nodes[i]
            if node.kind != .flatten && live[node.storage] {
                live[node.input0] = true
                if node.input1 >= 0 { live[node.input1] = true }
            }
            i -= 1
        }
        // Writers, in backward order: the first overwrites, later ones add.
        var written = [Bool](repeating: false, count: L + 1)
        written[outStorage] = true  // the output gradient is copied in first
        i = L - 1
        while i >= 0 {
            var node = nodes[i]
            if node.kind != .flatten && live[node.storage] && requiresGrad[node.storage] {
                node.runsBackward = true
                if requiresGrad[node.input0] {
                    node.gradInput0 = true
                    node.overwrite0 = !written[node.input0]
                    written[node.input0] = true
                }
                if node.input1 >= 0 && requiresGrad[node.input1] {
                    node.gradInput1 = true
                    node.overwrite1 = !written[node.input1]
                    written[node.input1] = true
                }
            }
            nodes[i] = node
            i -= 1
        }
        gradientFlows = requiresGrad
        liveStorage = live
    }

    var gradientFlows: [Bool] = []
    var liveStorage: [Bool] = []

    // MARK: - Memory plan

    static func floatBytes(_ s: Shape) -> Int { (s.elementCount ?? 0) * 4 }

    mutating func planMemory() throws(LichenError) {
        let L = nodes.count
        let training = options.training
        func fstep(_ i: Int) -> Int { i + 1 }
        func bstep(_ i: Int) -> Int { 2 * L + 1 - i }
        let copyIn = L + 1, copyOut = 2 * L + 2

        // Value lifetimes per storage.
        var first = [Int](repeating: 0, count: L + 1)
        var last = [Int](repeating: 0, count: L + 1)
        var bytes = [Int](repeating: 0, count: L + 1)
        bytes[0] = GraphBuilder.floatBytes(inputShape)
        for i in 0..<L {
            let node = nodes[i]
            if node.kind != .flatten {
                first[i + 1] = fstep(i)
                last[i + 1] = fstep(i)
                bytes[i + 1] = GraphBuilder.floatBytes(node.outShape)
            }
            last[node.input0] = max(last[node.input0], fstep(i))
            if node.input1 >= 0 { last[node.input1] = max(last[node.input1], fstep(i)) }
            if node.runsBackward {
                switch node.kind {
                case .linear, .conv2d, .conv1d:
                    if !node.quantizedWeight || options.trainAdapters { last[node.input0] = max(last[node.input0], bstep(i)) }
                case .batchNorm, .groupNorm, .layerNorm, .gelu, .silu, .elu, .maxPool2d:
                    last[node.input0] = max(last[node.input0], bstep(i))
                case .relu, .tanh, .softmax:
                    last[node.storage] = max(last[node.storage], bstep(i))
                case .avgPool2d, .globalAvgPool, .flatten, .add, .concat, .slice:
                    break
                }
            }
        }
        let outStorage = nodes[L - 1].storage
        last[outStorage] = max(last[outStorage], training ? copyOut : L)
        if options.tapLayer >= 0 && options.tapLayer < L {
            let tapped = nodes[options.tapLayer].input0
            last[tapped] = max(last[tapped], training ? copyOut : L)
        }
        valueBuffer = [Int](repeating: -1, count: L + 1)
        for s in 0...L where s == 0 || nodes[s - 1].kind != .flatten {
            valueBuffer[s] = try planner.addBuffer(byteCount: bytes[s], firstUse: first[s], lastUse: last[s])
        }

        // Gradient lifetimes per storage: from its first writer to its owner's backward.
        gradientBuffer = [Int](repeating: -1, count: L + 1)
        if training {
            var gFirst = [Int](repeating: Int.max, count: L + 1)
            if gradientFlows[outStorage] { gFirst[outStorage] = copyIn }
            for i in 0..<L where nodes[i].runsBackward {
                if nodes[i].gradInput0 { gFirst[nodes[i].input0] = min(gFirst[nodes[i].input0], bstep(i)) }
                if nodes[i].gradInput1 { gFirst[nodes[i].input1] = min(gFirst[nodes[i].input1], bstep(i)) }
            }
            for s in 0...L where gFirst[s] != Int.max {
                let lastUse = s == 0 ? copyOut : bstep(s - 1)
                gradientBuffer[s] = try planner.addBuffer(byteCount: bytes[s], firstUse: gFirst[s], lastUse: max(lastUse, gFirst[s]))
            }
        }

        // Per-layer scratch and saved statistics.
        for i in 0..<L {
            var node = nodes[i]
            let fs = fstep(i), bs = bstep(i)
            switch node.kind {
            case .linear:
                if node.quantizedWeight {
                    let b = try Kernels.gemmScratchByteCount(rows: node.inRowsShape[0], outputs: node.outFeatures, depth: node.inFeatures)
                    node.gemmScratch = try planner.addBuffer(byteCount: b, firstUse: fs, lastUse: fs)
                    node.scratchShape = try make([(b + 3) / 4])
                }
            case .conv2d, .conv1d:
                let colBytes = GraphBuilder.floatBytes(node.columnsShape)
                node.columns = try planner.addBuffer(byteCount: colBytes, firstUse: fs, lastUse: fs)
                if node.quantizedWeight {
                    node.columnsT = try planner.addBuffer(byteCount: GraphBuilder.floatBytes(node.columnsTShape), firstUse: fs, lastUse: fs)
                    node.outT = try planner.addBuffer(byteCount: GraphBuilder.floatBytes(node.outTShape), firstUse: fs, lastUse: fs)
                    let b = try Kernels.gemmScratchByteCount(rows: node.positions, outputs: node.groupOutChannels, depth: node.groupDepth)
                    node.gemmScratch = try planner.addBuffer(byteCount: b, firstUse: fs, lastUse: fs)
                    node.scratchShape = try make([(b + 3) / 4])
                }
                if node.runsBackward {
                    if !node.quantizedWeight || options.trainAdapters {
                        node.gradColumnsForWeight = try planner.addBuffer(byteCount: colBytes, firstUse: bs, lastUse: bs)
                    }
                    if node.gradInput0 {
                        node.gradColumns = try planner.addBuffer(byteCount: colBytes, firstUse: bs, lastUse: bs)
                        if node.quantizedWeight {
                            node.gradColumnsT = try planner.addBuffer(byteCount: GraphBuilder.floatBytes(node.columnsTShape), firstUse: bs, lastUse: bs)
                            node.gradOutT = try planner.addBuffer(byteCount: GraphBuilder.floatBytes(node.outTShape), firstUse: bs, lastUse: bs)
                        }
                    }
                }
            case .batchNorm, .groupNorm, .layerNorm:
                let b = GraphBuilder.floatBytes(node.statShape)
                let lastUse = node.runsBackward ? bs : fs
                node.statMean = try planner.addBuffer(byteCount: b, firstUse: fs, lastUse: lastUse)
                node.statInvStd = try planner.addBuffer(byteCount: b, firstUse: fs, lastUse: lastUse)
            default:
                break
            }
            nodes[i] = node
        }
    }
}
