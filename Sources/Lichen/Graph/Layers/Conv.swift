/// Convolution (conv2d NCHW, conv1d NCL as height 1) with stride, padding, dilation and
/// groups, lowered per sample to im2col plus one matrix product per group:
/// `y_g[OCg, P] = W_g[OCg, Kg] . cols_g[Kg, P]` (Kg = in/groups * kh * kw, P = output positions).
/// f32 weights go through BLIS sgemm; frozen q8_0/q4_0 weight rows through the quantized GEMM
/// on the transposed columns (`[P, Kg] . W_g^T`), transposed back.
extension Graph {
    func convForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        guard let geometry = node.geometry else { return }
        let x = try value(node.input0, Graph.batched(node.inShape, n))
        let y = try value(node.storage, Graph.batched(node.outShape, n))
        let w = try parameterValue(node.weight).reshaped(node.weightRowsShape)
        let cols = try scratch(node.columns, node.columnsShape)
        let inCount = node.imageShape.elementCount ?? 0, outCount = node.outImageShape.elementCount ?? 0
        let kg = node.groupDepth, ocg = node.groupOutChannels, p = node.positions
        for b in 0..<n {
            let xb = try x.subview(valueOffset: b * inCount, shape: node.imageShape)
            let yb = try y.subview(valueOffset: b * outCount, shape: node.outImageShape)
            try Kernels.im2col(xb, into: cols, geometry: geometry)
            for g in 0..<node.groups {
                let wg = try w.subview(valueOffset: g * ocg * kg, shape: node.groupWeightShape)
                let cg = try cols.subview(valueOffset: g * kg * p, shape: node.groupColumnsShape)
                let yg = try yb.subview(valueOffset: g * ocg * p, shape: node.groupOutShape)
                if node.quantizedWeight {
                    let ct = try scratch(node.columnsT, node.columnsTShape)
                    let ot = try scratch(node.outT, node.outTShape)
                    try TensorView.transpose(cg, into: ct)
                    try kernels.gemm(weights: wg, input: ct, output: ot, scratchView: try scratch(node.gemmScratch, node.scratchShape))
                    try TensorView.transpose(ot, into: yg)
                } else {
                    try Kernels.sgemm(wg, cg, into: yg)
                }
            }
            if let set = adapters, set.hasEntries(node.index) { try loraConvForward(set, node, sample: b, columns: cols, output: yb) }
            if let set = skillAdapters, set.hasEntries(node.index) {
                try loraConvForward(set, node, sample: b, columns: cols, output: yb)
            }
            if node.bias >= 0 { try addChannelBias(yb, parameterValue(node.bias), spatial: p) }
        }
    }

    func convBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        guard let geometry = node.geometry else { return }
        let dy = try gradient(node.storage, Graph.batched(node.outShape, n))
        let w = try parameterValue(node.weight).reshaped(node.weightRowsShape)
        let inCount = node.imageShape.elementCount ?? 0, outCount = node.outImageShape.elementCount ?? 0
        let kg = node.groupDepth, ocg = node.groupOutChannels, p = node.positions
        let db = trainableGradient(node.bias)
        let dw: TensorView? = node.quantizedWeight ? nil : try trainableGradient(node.weight)?.reshaped(node.weightRowsShape)
        let x: TensorView? = dw == nil ? nil : try value(node.input0, Graph.batched(node.inShape, n))
        let dx: TensorView? = node.gradInput0 ? try gradient(node.input0, Graph.batched(node.inShape, n)) : nil
        for b in 0..<n {
            let dyb = try dy.subview(valueOffset: b * outCount, shape: node.outImageShape)
            if let db { try accumulateChannelSums(dyb, into: db, spatial: p) }
            if let dw, let x {
                let cols = try scratch(node.gradColumnsForWeight, node.columnsShape)
                try Kernels.im2col(try x.subview(valueOffset: b * inCount, shape: node.imageShape), into: cols, geometry: geometry)
                for g in 0..<node.groups {
                    let cg = try cols.subview(valueOffset: g * kg * p, shape: node.groupColumnsShape)
                    let dyg = try dyb.subview(valueOffset: g * ocg * p, shape: node.groupOutShape)
                    let dwg = try dw.subview(valueOffset: g * ocg * kg, shape: node.groupWeightShape)
                    // dW_g[OCg, Kg] += dy_g[OCg, P] . cols_g^T[P, Kg]
                    try Kernels.sgemm(dyg, cg, transposeB: true, into: dwg, beta: 1)
                }
            }
            guard let dx else { continue }
            let dcols = try scratch(node.gradColumns, node.columnsShape)
            for g in 0..<node.groups {
                let wg = try w.subview(valueOffset: g * ocg * kg, shape: node.groupWeightShape)
                let dyg = try dyb.subview(valueOffset: g * ocg * p, shape: node.groupOutShape)
                let dcg = try dcols.subview(valueOffset: g * kg * p, shape: node.groupColumnsShape)
                if node.quantizedWeight {
                    // dcols_g^T[P, Kg] = dy_g^T[P, OCg] . W_g[OCg, Kg]
                    let dyt = try scratch(node.gradOutT, node.outTShape)
                    let dct = try scratch(node.gradColumnsT, node.columnsTShape)
                    try TensorView.transpose(dyg, into: dyt)
                    try kernels.gemmTransposed(weights: wg, outputGradient: dyt, inputGradient: dct)
                    try TensorView.transpose(dct, into: dcg)
                } else {
                    // dcols_g[Kg, P] = W_g^T[Kg, OCg] . dy_g[OCg, P]
                    try Kernels.sgemm(wg, transposeA: true, dyg, into: dcg)
                }
            }
            let dxb = try dx.subview(valueOffset: b * inCount, shape: node.imageShape)
            if node.overwrite0 { try dxb.fill(0) }
            try Kernels.col2im(dcols, into: dxb, geometry: geometry)
        }
    }

    /// `y[c, s] += b[c]` for `y [C, spatial]`.
    func addChannelBias(_ y: TensorView, _ b: TensorView, spatial: Int) throws(LichenError) {
        let channels = y.elementCount / max(spatial, 1)
        try y.withFloats { (ys) throws(LichenError) in
            try b.withFloats { (bs) throws(LichenError) in
                for c in 0..<channels {
                    let v = bs[c], o = c * spatial
                    for s in 0..<spatial { ys[o + s] += v }
                }
            }
        }
    }

    /// `g[c] += sum_s dy[c, s]` for `dy [C, spatial]`.
    func accumulateChannelSums(_ dy: TensorView, into g: TensorView, spatial: Int) throws(LichenError) {
        let channels = dy.elementCount / max(spatial, 1)
        try dy.withFloats { (ds) throws(LichenError) in
            try g.withFloats { (gs) throws(LichenError) in
                for c in 0..<channels {
                    var s: Float = 0
                    let o = c * spatial
                    for k in 0..<spatial { s += ds[o + k] }
                    gs[c] += s
                }
            }
        }
    }
}
