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

/// Concat and slice over rank-1 samples (the diffusion policy's `[a_t, s, cond]` input and its
/// time-embedding branch). Concat: `y[n] = [a[n], b[n]]`, backward splits `dy`. Slice:
/// `y[n] = x[n][start ..< start + count]`, backward adds `dy` into that range of `dx` (zero
/// elsewhere when it is the first writer).
extension Graph {
    func concatForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let a = try value(node.input0, Graph.batched(node.inShape, n)).f32Elements("concat input 0")
        let b = try value(node.input1, Graph.batched(node.secondInShape, n)).f32Elements("concat input 1")
        let y = try value(node.storage, Graph.batched(node.outShape, n)).f32Elements("concat output")
        let fa = node.inFeatures, fy = node.outFeatures, fb = fy - fa
        for r in 0..<n {
            for k in 0..<fa { y[r * fy + k] = a[r * fa + k] }
            for k in 0..<fb { y[r * fy + fa + k] = b[r * fb + k] }
        }
    }

    func concatBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let dy = try gradient(node.storage, Graph.batched(node.outShape, n)).f32Elements("concat gradient")
        let fa = node.inFeatures, fy = node.outFeatures, fb = fy - fa
        if node.gradInput0 {
            let da = try gradient(node.input0, Graph.batched(node.inShape, n)).f32Elements("concat input 0 gradient")
            for r in 0..<n {
                for k in 0..<fa {
                    if node.overwrite0 { da[r * fa + k] = dy[r * fy + k] } else { da[r * fa + k] += dy[r * fy + k] }
                }
            }
        }
        if node.gradInput1 {
            let db = try gradient(node.input1, Graph.batched(node.secondInShape, n)).f32Elements("concat input 1 gradient")
            for r in 0..<n {
                for k in 0..<fb {
                    if node.overwrite1 { db[r * fb + k] = dy[r * fy + fa + k] } else { db[r * fb + k] += dy[r * fy + fa + k] }
                }
            }
        }
    }

    func sliceForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let x = try value(node.input0, Graph.batched(node.inShape, n)).f32Elements("slice input")
        let y = try value(node.storage, Graph.batched(node.outShape, n)).f32Elements("slice output")
        let fx = node.inFeatures, fy = node.outFeatures, s = node.sliceStart
        for r in 0..<n {
            for k in 0..<fy { y[r * fy + k] = x[r * fx + s + k] }
        }
    }

    func sliceBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        guard node.gradInput0 else { return }
        let dy = try gradient(node.storage, Graph.batched(node.outShape, n)).f32Elements("slice gradient")
        let dx = try gradient(node.input0, Graph.batched(node.inShape, n)).f32Elements("slice input gradient")
        let fx = node.inFeatures, fy = node.outFeatures, s = node.sliceStart
        for r in 0..<n {
            if node.overwrite0 {
                for k in 0..<fx { dx[r * fx + k] = 0 }
            }
            for k in 0..<fy { dx[r * fx + s + k] += dy[r * fy + k] }
        }
    }
}
