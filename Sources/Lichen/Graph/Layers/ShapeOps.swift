/// Residual add and softmax (flatten is a view: its output shares its input's storage, and
/// its gradient its input's gradient, so it does no work at all).
///
/// Softmax is over all features of a sample; backward `dx = y * (dy - sum(dy * y))`.
extension Graph {
    func addForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let a = try value(node.input0, Graph.batched(node.inShape, n))
        let b = try value(node.input1, Graph.batched(node.inShape, n))
        let y = try value(node.storage, Graph.batched(node.outShape, n))
        try kernels.elementwise(.add, a, b, into: y)
    }

    func addBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let dy = try gradient(node.storage, Graph.batched(node.outShape, n))
        if node.gradInput0 {
            let da = try gradient(node.input0, Graph.batched(node.inShape, n))
            if node.overwrite0 { try da.copy(from: dy) } else { try kernels.axpy(1, dy, da) }
        }
        if node.gradInput1 {
            let db = try gradient(node.input1, Graph.batched(node.inShape, n))
            if node.overwrite1 { try db.copy(from: dy) } else { try kernels.axpy(1, dy, db) }
        }
    }

    func softmaxForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let x = try value(node.input0, Graph.batched(node.sampleRowsShape, n))
        let y = try value(node.storage, Graph.batched(node.sampleRowsShape, n))
        try kernels.softmaxRows(x, into: y)
    }

    func softmaxBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        guard node.gradInput0 else { return }
        let y = try value(node.storage, Graph.batched(node.sampleRowsShape, n))
        let dy = try gradient(node.storage, Graph.batched(node.sampleRowsShape, n))
        let dx = try gradient(node.input0, Graph.batched(node.sampleRowsShape, n))
        let f = node.features, overwrite = node.overwrite0
        try y.withFloats { (ys) throws(LichenError) in
            try dy.withFloats { (ds) throws(LichenError) in
                try dx.withFloats { (dxs) throws(LichenError) in
                    for r in 0..<n {
                        let o = r * f
                        var dot: Float = 0
                        for k in 0..<f { dot += ds[o + k] * ys[o + k] }
                        for k in 0..<f {
                            let g = ys[o + k] * (ds[o + k] - dot)
                            if overwrite { dxs[o + k] = g } else { dxs[o + k] += g }
                        }
                    }
                }
            }
        }
    }
}
