/// Normalisation layers.
///
/// Batch norm over channels (dimension 1): `y = (x - mean_c) * invstd_c * gamma_c + beta_c` with
/// `invstd = 1 / sqrt(var + eps)`, the statistics either the running ones or the current
/// batch's (mean and biased variance over batch and spatial positions). With
/// `updateRunningStatistics` the running ones move toward the batch's with the layer's momentum
/// (the variance with the unbiased batch variance, as PyTorch).
///
/// Group norm: the same per sample and group of channels, affine per channel. Layer norm: one
/// group of all features of a sample, affine per feature.
extension Graph {
    // MARK: - Batch norm

    func batchNormForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let x = try value(node.input0, Graph.batched(node.inShape, n))
        let y = try value(node.storage, Graph.batched(node.outShape, n))
        let mean = try scratch(node.statMean, node.statShape)
        let invStd = try scratch(node.statInvStd, node.statShape)
        let c = node.channels, s = node.spatial, eps = Double(node.epsilon)
        let count = n * s
        if normStatistics == .saved, let savedMean = savedMeans[node.index], let savedVariance = savedVariances[node.index] {
            // The statistics of the last `.computedAndSaved` forward (Graph+SavedStatistics.swift).
            try mean.copy(from: savedMean)
            try savedVariance.withFloats { (sv) throws(LichenError) in
                try invStd.withFloats { (vs) throws(LichenError) in
                    for ch in 0..<c { vs[ch] = Float(1 / (Double(sv[ch]) + eps).squareRoot()) }
                }
            }
        } else if options.batchNormMode == .batchStatistics {
            let saving = normStatistics == .computedAndSaved
            try x.withFloats { (xs) throws(LichenError) in
                try mean.withFloats { (ms) throws(LichenError) in
                    try invStd.withFloats { (vs) throws(LichenError) in
                        for ch in 0..<c {
                            var sum = 0.0
                            for b in 0..<n {
                                let o = (b * c + ch) * s
                                for k in 0..<s { sum += Double(xs[o + k]) }
                            }
                            let mu = sum / Double(count)
                            var sq = 0.0
                            for b in 0..<n {
                                let o = (b * c + ch) * s
                                for k in 0..<s {
                                    let d = Double(xs[o + k]) - mu
                                    sq += d * d
                                }
                            }
                            let variance = sq / Double(count)
                            ms[ch] = Float(mu)
                            vs[ch] = Float(1 / (variance + eps).squareRoot())
                            if saving { try saveStatistics(node, ch, mean: mu, variance: variance) }
                            if options.updateRunningStatistics {
                                let unbiased = count > 1 ? sq / Double(count - 1) : variance
                                try updateRunning(node, ch, mean: mu, variance: unbiased)
                            }
                        }
                    }
                }
            }
        } else {
            let rm = parameterValue(node.runningMean), rv = parameterValue(node.runningVariance)
            try rm.withFloats { (rms) throws(LichenError) in
                try rv.withFloats { (rvs) throws(LichenError) in
                    try mean.withFloats { (ms) throws(LichenError) in
                        try invStd.withFloats { (vs) throws(LichenError) in
                            for ch in 0..<c {
                                ms[ch] = rms[ch]
                                vs[ch] = Float(1 / (Double(rvs[ch]) + eps).squareRoot())
                            }
                        }
                    }
                }
            }
        }
        try normalizePerChannel(x, y, mean, invStd, node, n)
    }

    /// running = (1 - momentum) * running + momentum * batch, for channel `ch`.
    func updateRunning(_ node: GraphNode, _ ch: Int, mean: Double, variance: Double) throws(LichenError) {
        let m = Double(node.momentum)
        try parameterValue(node.runningMean).withFloats { (rm) throws(LichenError) in
            rm[ch] = Float((1 - m) * Double(rm[ch]) + m * mean)
        }
        try parameterValue(node.runningVariance).withFloats { (rv) throws(LichenError) in
            rv[ch] = Float((1 - m) * Double(rv[ch]) + m * variance)
        }
    }

    /// y = (x - mean_c) * invstd_c * gamma_c + beta_c over `[n, C, S]`.
    func normalizePerChannel(
        _ x: TensorView, _ y: TensorView, _ mean: TensorView, _ invStd: TensorView, _ node: GraphNode, _ n: Int
    ) throws(LichenError) {
        let c = node.channels, s = node.spatial
        let gamma = parameterValue(node.weight), beta = parameterValue(node.bias)
        try x.withFloats { (xs) throws(LichenError) in
            try y.withFloats { (ys) throws(LichenError) in
                try mean.withFloats { (ms) throws(LichenError) in
                    try invStd.withFloats { (vs) throws(LichenError) in
                        try gamma.withFloats { (gs) throws(LichenError) in
                            try beta.withFloats { (bs) throws(LichenError) in
                                for b in 0..<n {
                                    for ch in 0..<c {
                                        let scale = vs[ch] * gs[ch], mu = ms[ch], shift = bs[ch]
                                        let o = (b * c + ch) * s
                                        for k in 0..<s { ys[o + k] = (xs[o + k] - mu) * scale + shift }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func batchNormBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let x = try value(node.input0, Graph.batched(node.inShape, n))
        let dy = try gradient(node.storage, Graph.batched(node.outShape, n))
        let mean = try scratch(node.statMean, node.statShape)
        let invStd = try scratch(node.statInvStd, node.statShape)
        let dGamma = trainableGradient(node.weight), dBeta = trainableGradient(node.bias)
        let dx: TensorView? = node.gradInput0 ? try gradient(node.input0, Graph.batched(node.inShape, n)) : nil
        let c = node.channels, s = node.spatial, count = Float(n * s)
        let batchStats = options.batchNormMode == .batchStatistics
        let overwrite = node.overwrite0
        let gamma = parameterValue(node.weight)
        try x.withFloats { (xs) throws(LichenError) in
            try dy.withFloats { (ds) throws(LichenError) in
                try mean.withFloats { (ms) throws(LichenError) in
                    try invStd.withFloats { (vs) throws(LichenError) in
                        try gamma.withFloats { (gs) throws(LichenError) in
                            for ch in 0..<c {
                                let mu = ms[ch], inv = vs[ch]
                                var sumDy: Float = 0, sumDyXhat: Float = 0
                                for b in 0..<n {
                                    let o = (b * c + ch) * s
                                    for k in 0..<s {
                                        let d = ds[o + k]
                                        sumDy += d
                                        sumDyXhat += d * (xs[o + k] - mu) * inv
                                    }
                                }
                                if let dGamma { try dGamma.withFloats { (g) throws(LichenError) in g[ch] += sumDyXhat } }
                                if let dBeta { try dBeta.withFloats { (g) throws(LichenError) in g[ch] += sumDy } }
                                guard let dx else { continue }
                                let scale = gs[ch] * inv
                                let meanDy = batchStats ? sumDy / count : 0
                                let meanDyXhat = batchStats ? sumDyXhat / count : 0
                                try dx.withFloats { (dxs) throws(LichenError) in
                                    for b in 0..<n {
                                        let o = (b * c + ch) * s
                                        for k in 0..<s {
                                            let xhat = (xs[o + k] - mu) * inv
                                            let v = scale * (ds[o + k] - meanDy - xhat * meanDyXhat)
                                            if overwrite { dxs[o + k] = v } else { dxs[o + k] += v }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: - Group and layer norm

    func groupNormForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let x = try value(node.input0, Graph.batched(node.inShape, n))
        let y = try value(node.storage, Graph.batched(node.outShape, n))
        let mean = try scratch(node.statMean, node.statShape)
        let invStd = try scratch(node.statInvStd, node.statShape)
        let c = node.channels, s = node.spatial, groups = node.groups, cg = c / groups
        let m = cg * s, eps = Double(node.epsilon)
        let gamma = parameterValue(node.weight), beta = parameterValue(node.bias)
        try x.withFloats { (xs) throws(LichenError) in
            try y.withFloats { (ys) throws(LichenError) in
                try mean.withFloats { (ms) throws(LichenError) in
                    try invStd.withFloats { (vs) throws(LichenError) in
                        try gamma.withFloats { (gs) throws(LichenError) in
                            try beta.withFloats { (bs) throws(LichenError) in
                                for b in 0..<n {
                                    for g in 0..<groups {
                                        let o = (b * c + g * cg) * s
                                        var sum = 0.0
                                        for k in 0..<m { sum += Double(xs[o + k]) }
                                        let mu = sum / Double(m)
                                        var sq = 0.0
                                        for k in 0..<m {
                                            let d = Double(xs[o + k]) - mu
                                            sq += d * d
                                        }
                                        let inv = Float(1 / (sq / Double(m) + eps).squareRoot())
                                        let muF = Float(mu)
                                        ms[b * groups + g] = muF
                                        vs[b * groups + g] = inv
                                        for j in 0..<cg {
                                            let ch = g * cg + j
                                            let scale = inv * gs[ch], shift = bs[ch]
                                            let oc = o + j * s
                                            for k in 0..<s { ys[oc + k] = (xs[oc + k] - muF) * scale + shift }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func groupNormBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let x = try value(node.input0, Graph.batched(node.inShape, n))
        let dy = try gradient(node.storage, Graph.batched(node.outShape, n))
        let mean = try scratch(node.statMean, node.statShape)
        let invStd = try scratch(node.statInvStd, node.statShape)
        let dGamma = trainableGradient(node.weight), dBeta = trainableGradient(node.bias)
        let dx: TensorView? = node.gradInput0 ? try gradient(node.input0, Graph.batched(node.inShape, n)) : nil
        let c = node.channels, s = node.spatial, groups = node.groups, cg = c / groups
        let m = Float(cg * s)
        let overwrite = node.overwrite0
        let gamma = parameterValue(node.weight)
        try x.withFloats { (xs) throws(LichenError) in
            try dy.withFloats { (ds) throws(LichenError) in
                try mean.withFloats { (ms) throws(LichenError) in
                    try invStd.withFloats { (vs) throws(LichenError) in
                        try gamma.withFloats { (gs) throws(LichenError) in
                            for b in 0..<n {
                                for g in 0..<groups {
                                    let mu = ms[b * groups + g], inv = vs[b * groups + g]
                                    let o = (b * c + g * cg) * s
                                    // Per-channel parameter gradients and the group's sums of dxhat and dxhat * xhat.
                                    var sum1: Float = 0, sum2: Float = 0
                                    for j in 0..<cg {
                                        let ch = g * cg + j, oc = o + j * s
                                        var sdy: Float = 0, sdyx: Float = 0
                                        for k in 0..<s {
                                            let d = ds[oc + k], xhat = (xs[oc + k] - mu) * inv
                                            sdy += d
                                            sdyx += d * xhat
                                        }
                                        if let dGamma { try dGamma.withFloats { (gg) throws(LichenError) in gg[ch] += sdyx } }
                                        if let dBeta { try dBeta.withFloats { (gb) throws(LichenError) in gb[ch] += sdy } }
                                        sum1 += gs[ch] * sdy
                                        sum2 += gs[ch] * sdyx
                                    }
                                    guard let dx else { continue }
                                    try dx.withFloats { (dxs) throws(LichenError) in
                                        for j in 0..<cg {
                                            let ch = g * cg + j, oc = o + j * s
                                            for k in 0..<s {
                                                let xhat = (xs[oc + k] - mu) * inv
                                                let v = inv * (gs[ch] * ds[oc + k] - (sum1 + xhat * sum2) / m)
                                                if overwrite { dxs[oc + k] = v } else { dxs[oc + k] += v }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
