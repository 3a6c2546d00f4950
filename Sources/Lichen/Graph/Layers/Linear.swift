/// Linear layer: `y[r, o] = sum_i x[r, i] * W[o, i] + b[o]` over the last dimension (every
/// other dimension, the batch included, is a row). W is f32 `[out, in]` (BLIS sgemm) or
/// frozen q8_0/q4_0 `[out, in]` (the quantized GEMM; the input is quantized to Q8_0 per row).
extension Graph {
    func linearForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let x = try value(node.input0, Graph.rows(node.inRowsShape, n, perSample: node.rowsPerSample))
        let y = try value(node.storage, Graph.rows(node.outRowsShape, n, perSample: node.rowsPerSample))
        let w = parameterValue(node.weight)
        if node.quantizedWeight {
            let b: TensorView? = node.bias >= 0 ? parameterValue(node.bias) : nil
            try kernels.gemm(weights: w, input: x, bias: b, output: y, scratchView: try scratch(node.gemmScratch, node.scratchShape))
            return
        }
        try Kernels.sgemm(x, w, transposeB: true, into: y)
        if node.bias >= 0 { try addRowBias(y, parameterValue(node.bias)) }
    }

    func linearBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let rows = node.rowsPerSample
        let dy = try gradient(node.storage, Graph.rows(node.outRowsShape, n, perSample: rows))
        if let db = trainableGradient(node.bias) { try accumulateColumnSums(dy, into: db) }
        let w = parameterValue(node.weight)
        if !node.quantizedWeight, let dw = trainableGradient(node.weight) {
            let x = try value(node.input0, Graph.rows(node.inRowsShape, n, perSample: rows))
            // dW[out, in] += dy^T[out, rows] . x[rows, in]
            try Kernels.sgemm(dy, transposeA: true, x, into: try dw.reshaped(w.shape), beta: 1)
        }
        guard node.gradInput0 else { return }
        let dx = try gradient(node.input0, Graph.rows(node.inRowsShape, n, perSample: rows))
        if node.quantizedWeight {
            try kernels.gemmTransposed(weights: w, outputGradient: dy, inputGradient: dx, accumulate: !node.overwrite0)
        } else {
            try Kernels.sgemm(dy, w, into: dx, beta: node.overwrite0 ? 0 : 1)
        }
    }

    /// `y[r, c] += b[c]` for every row r of `y [rows, columns]`.
    func addRowBias(_ y: TensorView, _ b: TensorView) throws(LichenError) {
        let rows = y.rowCount, cols = y.shape.last
        try y.withFloats { (ys) throws(LichenError) in
            try b.withFloats { (bs) throws(LichenError) in
                for r in 0..<rows {
                    let o = r * cols
                    for c in 0..<cols { ys[o + c] += bs[c] }
                }
            }
        }
    }

    /// `g[c] += sum_r dy[r, c]` for `dy [rows, columns]`.
    func accumulateColumnSums(_ dy: TensorView, into g: TensorView) throws(LichenError) {
        let rows = dy.rowCount, cols = dy.shape.last
        try dy.withFloats { (ds) throws(LichenError) in
            try g.withFloats { (gs) throws(LichenError) in
                for c in 0..<cols {
                    var s: Float = 0
                    for r in 0..<rows { s += ds[r * cols + c] }
                    gs[c] += s
                }
            }
        }
    }
}
