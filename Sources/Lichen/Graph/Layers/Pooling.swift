/// Pooling over NCHW: max and average over kh x kw windows with stride and padding (floor
/// output size; padding at most half the kernel, so every window holds an input value), and
/// the global average over all spatial positions.
///
/// Max pooling pads with -infinity and sends the gradient to the first maximum of each window
/// in row-major order (found again in backward from the saved input). Average pooling counts
/// padding as zeros: every window divides by kh * kw.
extension Graph {
    func poolForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let x = try value(node.input0, Graph.batched(node.inShape, n))
        let y = try value(node.storage, Graph.batched(node.outShape, n))
        let c = node.inShape[1], h = node.inShape[2], w = node.inShape[3]
        let oh = node.outShape[2], ow = node.outShape[3]
        let isMax = node.kind == .maxPool2d
        let area = Float(node.kernelH * node.kernelW)
        try x.withFloats { (xs) throws(LichenError) in
            try y.withFloats { (ys) throws(LichenError) in
                for plane in 0..<(n * c) {
                    let xo = plane * h * w, yo = plane * oh * ow
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let y0 = oy * node.strideH - node.padH, x0 = ox * node.strideW - node.padW
                            var acc: Float = isMax ? -Float.infinity : 0
                            for ky in 0..<node.kernelH {
                                let iy = y0 + ky
                                if iy < 0 || iy >= h { continue }
                                for kx in 0..<node.kernelW {
                                    let ix = x0 + kx
                                    if ix < 0 || ix >= w { continue }
                                    let v = xs[xo + iy * w + ix]
                                    if isMax { if v > acc { acc = v } } else { acc += v }
                                }
                            }
                            ys[yo + oy * ow + ox] = isMax ? acc : acc / area
                        }
                    }
                }
            }
        }
    }

    func poolBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        guard node.gradInput0 else { return }
        let dy = try gradient(node.storage, Graph.batched(node.outShape, n))
        let dx = try gradient(node.input0, Graph.batched(node.inShape, n))
        if node.overwrite0 { try dx.fill(0) }
        let c = node.inShape[1], h = node.inShape[2], w = node.inShape[3]
        let oh = node.outShape[2], ow = node.outShape[3]
        let isMax = node.kind == .maxPool2d
        let area = Float(node.kernelH * node.kernelW)
        // Average pooling reads no saved value: the input view is only made for max pooling.
        let x = isMax ? try value(node.input0, Graph.batched(node.inShape, n)) : dy
        try x.withFloats { (xs) throws(LichenError) in
            try dy.withFloats { (ds) throws(LichenError) in
                try dx.withFloats { (dxs) throws(LichenError) in
                    for plane in 0..<(n * c) {
                        let xo = plane * h * w, yo = plane * oh * ow
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                let y0 = oy * node.strideH - node.padH, x0 = ox * node.strideW - node.padW
                                let g = ds[yo + oy * ow + ox]
                                var best = -Float.infinity, bestIndex = -1
                                for ky in 0..<node.kernelH {
                                    let iy = y0 + ky
                                    if iy < 0 || iy >= h { continue }
                                    for kx in 0..<node.kernelW {
                                        let ix = x0 + kx
                                        if ix < 0 || ix >= w { continue }
                                        let idx = xo + iy * w + ix
                                        if isMax {
                                            let v = xs[idx]
                                            if v > best || bestIndex < 0 { best = v; bestIndex = idx }
                                        } else {
                                            dxs[idx] += g / area
                                        }
                                    }
                                }
                                if isMax && bestIndex >= 0 { dxs[bestIndex] += g }
                            }
                        }
                    }
                }
            }
        }
    }

    func globalAvgPoolForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let x = try value(node.input0, Graph.batched(node.inShape, n))
        let y = try value(node.storage, Graph.batched(node.outShape, n))
        let planes = n * node.channels, s = node.spatial
        try x.withFloats { (xs) throws(LichenError) in
            try y.withFloats { (ys) throws(LichenError) in
                for p in 0..<planes {
                    var sum: Float = 0
                    for k in 0..<s { sum += xs[p * s + k] }
                    ys[p] = sum / Float(s)
                }
            }
        }
    }

    func globalAvgPoolBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        guard node.gradInput0 else { return }
        let dy = try gradient(node.storage, Graph.batched(node.outShape, n))
        let dx = try gradient(node.input0, Graph.batched(node.inShape, n))
        let planes = n * node.channels, s = node.spatial, overwrite = node.overwrite0
        try dy.withFloats { (ds) throws(LichenError) in
            try dx.withFloats { (dxs) throws(LichenError) in
                for p in 0..<planes {
                    let g = ds[p] / Float(s)
                    for k in 0..<s {
                        if overwrite { dxs[p * s + k] = g } else { dxs[p * s + k] += g }
                    }
                }
            }
        }
    }
}
