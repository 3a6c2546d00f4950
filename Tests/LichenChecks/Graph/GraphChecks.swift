import Lichen

/// Checks of Sources/Lichen/Graph: every layer's forward against a naive reference in Double
/// (direct convolution, not im2col), every backward against central finite differences of
/// `sum(y * r)`, frozen quantized weights, small CNN and MLP end to end, the memory plan,
/// determinism, and the errors bad descriptions and inputs get.
let graphChecks: [Check] = [
    Check("Graph/Linear", "f32 forward matches the reference; input, weight and bias gradients match finite differences") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 11)
            for (n, inF, outF, bias) in [(3, 5, 4, true), (1, 7, 3, false), (4, 2, 6, true)] {
                let w = rng.floats(outF * inF), b = rng.floats(outF), x = rng.floats(n * inF, -2, 2)
                var params = [GraphParamInit(name: "fc.weight", role: .weight, dims: [outF, inF], values: w)]
                if bias { params.append(GraphParamInit(name: "fc.bias", role: .bias, dims: [outF], values: b)) }
                let s = graphSpec([inF], [graphLayer(.linear, "fc", [-1]) { $0.outputs = outF; $0.hasBias = bias }])
                let g = try graphMakeGraph(s, params, batch: n, options: GraphOptions(training: true, inputGradient: true))
                let y = try graphRun(g, x, [n, inF])
                graphExpectAllClose(&c, y, graphRefLinear(graphDoubles(x), rows: n, inF: inF, graphDoubles(w), outF: outF, bias ? graphDoubles(b) : nil),
                               atol: 1e-5, rtol: 1e-5, "linear \(n)x\(inF)->\(outF)")
                try graphGradientCheck(&c, g, x, [n, inF], "linear")
            }
            // Over the last dimension of a rank-2 sample: [2, 3, 5] -> [2, 3, 4], rows = batch * 3.
            let w = rng.floats(4 * 5), b = rng.floats(4), x = rng.floats(2 * 3 * 5, -2, 2)
            let g = try graphMakeGraph(graphSpec([3, 5], [graphLayer(.linear, "fc", [-1]) { $0.outputs = 4 }]),
                                       [GraphParamInit(name: "fc.weight", role: .weight, dims: [4, 5], values: w),
                                        GraphParamInit(name: "fc.bias", role: .bias, dims: [4], values: b)],
                                       batch: 2, options: GraphOptions(training: true, inputGradient: true))
            c.expect(g.outputShape == (try Shape(3, 4)), "rank-2 linear output shape")
            graphExpectAllClose(&c, try graphRun(g, x, [2, 3, 5]), graphRefLinear(graphDoubles(x), rows: 6, inF: 5, graphDoubles(w), outF: 4, graphDoubles(b)),
                                atol: 1e-5, rtol: 1e-5, "rank-2 linear")
            try graphGradientCheck(&c, g, x, [2, 3, 5], "rank-2 linear")
            c.expectThrows(.invalidArgument(name: "layer", value: 1, reason: "no such layer"), "layer index") { () throws(LichenError) in
                try g.outputShape(ofLayer: 1)
            }
        }
    },
    Check("Graph/Linear", "frozen q8_0/q4_0 weights: forward within activation-quantization error, input gradient exact for the dequantized weight") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 12)
            for type in [ElementType.q8_0, .q4_0] {
                let n = 3, inF = 64, outF = 5
                let wv = rng.floats(outF * inF), b = rng.floats(outF), x = rng.floats(n * inF, -2, 2)
                let (q, wd) = try graphDequantized(wv, rows: outF, k: inF, type)
                let arena = try Arena(byteCount: 16 << 20)
                let store = ParameterStore(arena: arena)
                try store.add(name: "fc.weight", role: .weight, copying: try q.view(type, [outF, inF]))
                try store.add(name: "fc.bias", role: .bias, shape: try Shape(outF), values: b)
                c.expect(try store.setTrainable(true, role: .weight) == 0, "a quantized weight became trainable")
                let s = graphSpec([inF], [graphLayer(.linear, "fc", [-1]) { $0.outputs = outF }])
                let g = try Graph(spec: s, store: store, batchSize: n, arena: arena, options: GraphOptions(training: true, inputGradient: true))
                let y = try graphRun(g, x, [n, inF])
                // The activation row is quantized to Q8_0: error <= sum |w| * (max|x| / 254) per output.
                graphExpectAllClose(&c, y, graphRefLinear(graphDoubles(x), rows: n, inF: inF, wd, outF: outF, graphDoubles(b)),
                               atol: 64 * 2 / 254 * 1.0, "quantized linear " + type.name)
                let r = rng.floats(n * outF)
                let dx = CheckMemory(byteCount: n * inF * 4)
                try store.zeroGradients()
                let rMemory = CheckMemory.floats(r)  // kept alive across backward
                try g.backward(outputGradient: try rMemory.view(.f32, [n, outF]), inputGradient: try dx.view(.f32, [n, inF]))
                withExtendedLifetime(rMemory) {}
                // d(sum y r)/dx[n, i] = sum_o r[n, o] * Wdq[o, i]: the derivative of the reference with the dequantized weight.
                var expected = [Double](repeating: 0, count: n * inF)
                for bi in 0..<n { for i in 0..<inF { for o in 0..<outF { expected[bi * inF + i] += Double(r[bi * outF + o]) * wd[o * inF + i] } } }
                graphExpectAllClose(&c, dx.array(n * inF), expected, atol: 1e-5, rtol: 1e-4, "quantized linear input gradient " + type.name)
                var db = [Double](repeating: 0, count: outF)
                for bi in 0..<n { for o in 0..<outF { db[o] += Double(r[bi * outF + o]) } }
                graphExpectAllClose(&c, try store.parameter(named: "fc.bias").gradient?.toArray() ?? [], db, atol: 1e-5, "quantized linear bias gradient")
                c.expect(try store.parameter(named: "fc.weight").gradient == nil, "a quantized weight got a gradient")
            }
        }
    },
    Check("Graph/Conv2d", "f32 forward matches direct convolution (odd sizes, stride 2, padding, dilation, groups, depthwise); gradients match finite differences") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 13)
            var cases: [GraphConvParams] = []
            cases.append(GraphConvParams(n: 2, c: 3, h: 7, w: 6, oc: 4, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1))
            cases.append(GraphConvParams(n: 1, c: 2, h: 9, w: 8, oc: 3, kh: 3, kw: 2, sh: 2, sw: 2, ph: 1, pw: 0))
            cases.append(GraphConvParams(n: 2, c: 2, h: 7, w: 7, oc: 2, kh: 3, kw: 3, ph: 2, pw: 2, dh: 2, dw: 2))
            cases.append(GraphConvParams(n: 1, c: 4, h: 5, w: 6, oc: 6, kh: 3, kw: 1, sh: 1, sw: 2, ph: 1, pw: 0, groups: 2))
            cases.append(GraphConvParams(n: 2, c: 3, h: 6, w: 5, oc: 3, kh: 3, kw: 3, sh: 2, sw: 1, ph: 1, pw: 1, groups: 3))
            for (t, p) in cases.enumerated() {
                let cg = p.c / p.groups
                let w = rng.floats(p.oc * cg * p.kh * p.kw), b = rng.floats(p.oc), x = rng.floats(p.n * p.c * p.h * p.w, -2, 2)
                let s = graphSpec([p.c, p.h, p.w], [graphLayer(.conv2d, "conv", [-1]) {
                    $0.outputs = p.oc; $0.kernelH = p.kh; $0.kernelW = p.kw; $0.strideH = p.sh; $0.strideW = p.sw
                    $0.padH = p.ph; $0.padW = p.pw; $0.dilationH = p.dh; $0.dilationW = p.dw; $0.groups = p.groups
                }])
                let g = try graphMakeGraph(s, [GraphParamInit(name: "conv.weight", role: .weight, dims: [p.oc, cg, p.kh, p.kw], values: w),
                                         GraphParamInit(name: "conv.bias", role: .bias, dims: [p.oc], values: b)],
                                      batch: p.n, options: GraphOptions(training: true, inputGradient: true))
                c.expect(g.outputShape == (try Shape(p.oc, p.oh, p.ow)), "conv case \(t): output shape")
                let y = try graphRun(g, x, [p.n, p.c, p.h, p.w])
                graphExpectAllClose(&c, y, graphRefConv(graphDoubles(x), graphDoubles(w), graphDoubles(b), p), atol: 1e-5, rtol: 1e-5, "conv2d case \(t)")
                try graphGradientCheck(&c, g, x, [p.n, p.c, p.h, p.w], "conv2d case \(t)", limit: 16)
            }
        }
    },
    Check("Graph/Conv1d", "f32 forward matches direct convolution; gradients match finite differences") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 14)
            let p = GraphConvParams(n: 2, c: 4, h: 1, w: 11, oc: 4, kh: 1, kw: 3, sh: 1, sw: 2, ph: 0, pw: 1, dh: 1, dw: 2, groups: 2)
            let w = rng.floats(p.oc * 2 * p.kw), b = rng.floats(p.oc), x = rng.floats(p.n * p.c * p.w, -2, 2)
            let s = graphSpec([p.c, p.w], [graphLayer(.conv1d, "conv", [-1]) {
                $0.outputs = p.oc; $0.kernelW = p.kw; $0.strideW = p.sw; $0.padW = p.pw; $0.dilationW = p.dw; $0.groups = p.groups
            }])
            let g = try graphMakeGraph(s, [GraphParamInit(name: "conv.weight", role: .weight, dims: [p.oc, 2, p.kw], values: w),
                                     GraphParamInit(name: "conv.bias", role: .bias, dims: [p.oc], values: b)],
                                  batch: p.n, options: GraphOptions(training: true, inputGradient: true))
            let y = try graphRun(g, x, [p.n, p.c, p.w])
            graphExpectAllClose(&c, y, graphRefConv(graphDoubles(x), graphDoubles(w), graphDoubles(b), p), atol: 1e-5, rtol: 1e-5, "conv1d")
            try graphGradientCheck(&c, g, x, [p.n, p.c, p.w], "conv1d")
        }
    },
    Check("Graph/Conv2d", "frozen q8_0/q4_0 conv weights (dense and grouped, conv1d): forward near the dequantized reference, input gradient exact for it") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 15)
            let cases = [GraphConvParams(n: 2, c: 8, h: 5, w: 6, oc: 3, kh: 2, kw: 2, sh: 1, sw: 2, ph: 1, pw: 1),
                         GraphConvParams(n: 1, c: 16, h: 4, w: 4, oc: 4, kh: 2, kw: 2, sh: 2, sw: 2, ph: 0, pw: 0, groups: 2),
                         GraphConvParams(n: 2, c: 8, h: 1, w: 9, oc: 2, kh: 1, kw: 4, sh: 1, sw: 1, ph: 0, pw: 1)]
            for type in [ElementType.q8_0, .q4_0] {
                for (t, p) in cases.enumerated() {
                    let is1d = p.h == 1
                    let kg = p.c / p.groups * p.kh * p.kw
                    let (q, wd) = try graphDequantized(rng.floats(p.oc * kg), rows: p.oc, k: kg, type)
                    let b = rng.floats(p.oc), x = rng.floats(p.n * p.c * p.h * p.w, -1, 1)
                    let arena = try Arena(byteCount: 16 << 20)
                    let store = ParameterStore(arena: arena)
                    try store.add(name: "conv.weight", role: .weight, copying: try q.view(type, [p.oc, kg]))
                    try store.add(name: "conv.bias", role: .bias, shape: try Shape(p.oc), values: b)
                    let s = graphSpec(is1d ? [p.c, p.w] : [p.c, p.h, p.w], [graphLayer(is1d ? .conv1d : .conv2d, "conv", [-1]) {
                        $0.outputs = p.oc; $0.kernelH = p.kh; $0.kernelW = p.kw; $0.strideH = p.sh; $0.strideW = p.sw
                        $0.padH = p.ph; $0.padW = p.pw; $0.groups = p.groups
                    }])
                    let g = try Graph(spec: s, store: store, batchSize: p.n, arena: arena, options: GraphOptions(training: true, inputGradient: true))
                    let dims = is1d ? [p.n, p.c, p.w] : [p.n, p.c, p.h, p.w]
                    let y = try graphRun(g, x, dims)
                    let ref = graphRefConv(graphDoubles(x), wd, graphDoubles(b), p)
                    graphExpectAllClose(&c, y, ref, atol: Float(kg) / 254, "quantized conv case \(t) " + type.name)
                    // Input gradient vs central differences of the reference with the dequantized weight (linear in x: exact).
                    let r = rng.floats(y.count)
                    let dx = CheckMemory(byteCount: x.count * 4)
                    let rMemory = CheckMemory.floats(r)  // kept alive across backward
                    try g.backward(outputGradient: try rMemory.view(.f32, [p.n] + g.outputShape.dimensions),
                                   inputGradient: try dx.view(.f32, dims))
                    withExtendedLifetime(rMemory) {}
                    var xs = graphDoubles(x)
                    var expected: [Double] = []
                    for j in 0..<x.count {
                        let keep = xs[j]
                        xs[j] = keep + 0.5
                        let lp = zip(graphRefConv(xs, wd, graphDoubles(b), p), r).reduce(0.0) { $0 + $1.0 * Double($1.1) }
                        xs[j] = keep - 0.5
                        let lm = zip(graphRefConv(xs, wd, graphDoubles(b), p), r).reduce(0.0) { $0 + $1.0 * Double($1.1) }
                        xs[j] = keep
                        expected.append(lp - lm)
                    }
                    graphExpectAllClose(&c, dx.array(x.count), expected, atol: 1e-4, rtol: 1e-4, "quantized conv input gradient case \(t) " + type.name)
                }
            }
        }
    },
    Check("Graph/Norm", "batch norm (running and batch statistics), group norm, layer norm: forward matches the reference, gradients match finite differences") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 16)
            let n = 3, ch = 4, h = 3, w = 2, s = h * w
            let x = rng.floats(n * ch * s, -2, 2)
            let gamma = rng.floats(ch, 0.5, 1.5), beta = rng.floats(ch), rm = rng.floats(ch), rv = rng.floats(ch, 0.5, 2)
            let bnParams = [GraphParamInit(name: "bn.weight", role: .normWeight, dims: [ch], values: gamma),
                            GraphParamInit(name: "bn.bias", role: .normBias, dims: [ch], values: beta),
                            GraphParamInit(name: "bn.running_mean", role: .runningMean, dims: [ch], values: rm),
                            GraphParamInit(name: "bn.running_var", role: .runningVariance, dims: [ch], values: rv)]
            let bnSpec = graphSpec([ch, h, w], [graphLayer(.batchNorm, "bn", [-1])])
            for mode in [GraphOptions.BatchNormMode.runningStatistics, .batchStatistics] {
                let g = try graphMakeGraph(bnSpec, bnParams, batch: n, options: GraphOptions(training: true, batchNormMode: mode, inputGradient: true))
                let y = try graphRun(g, x, [n, ch, h, w])
                let stats: ([Double], [Double])? = mode == .runningStatistics ? (graphDoubles(rm), graphDoubles(rv)) : nil
                graphExpectAllClose(&c, y, graphRefNorm(graphDoubles(x), n: n, c: ch, s: s, groups: 1, perSample: false, gamma: graphDoubles(gamma),
                                              beta: graphDoubles(beta), eps: 1e-5, stats: stats), atol: 1e-5, rtol: 1e-5, "batch norm")
                try graphGradientCheck(&c, g, x, [n, ch, h, w], mode == .runningStatistics ? "batch norm (running)" : "batch norm (batch)", eps: 1e-2)
            }
            // Group norm: 6 channels in 3 groups; layer norm over [5] features.
            let gx = rng.floats(2 * 6 * 5, -2, 2), gg = rng.floats(6, 0.5, 1.5), gb = rng.floats(6)
            let gn = try graphMakeGraph(graphSpec([6, 5], [graphLayer(.groupNorm, "gn", [-1]) { $0.groups = 3 }]),
                                   [GraphParamInit(name: "gn.weight", role: .normWeight, dims: [6], values: gg),
                                    GraphParamInit(name: "gn.bias", role: .normBias, dims: [6], values: gb)],
                                   batch: 2, options: GraphOptions(training: true, inputGradient: true))
            graphExpectAllClose(&c, try graphRun(gn, gx, [2, 6, 5]), graphRefNorm(graphDoubles(gx), n: 2, c: 6, s: 5, groups: 3, perSample: true,
                                                                  gamma: graphDoubles(gg), beta: graphDoubles(gb), eps: 1e-5), atol: 1e-5, rtol: 1e-5, "group norm")
            try graphGradientCheck(&c, gn, gx, [2, 6, 5], "group norm")
            let lx = rng.floats(3 * 5, -2, 2), lg = rng.floats(5, 0.5, 1.5), lb = rng.floats(5)
            let ln = try graphMakeGraph(graphSpec([5], [graphLayer(.layerNorm, "ln", [-1])]),
                                   [GraphParamInit(name: "ln.weight", role: .normWeight, dims: [5], values: lg),
                                    GraphParamInit(name: "ln.bias", role: .normBias, dims: [5], values: lb)],
                                   batch: 3, options: GraphOptions(training: true, inputGradient: true))
            graphExpectAllClose(&c, try graphRun(ln, lx, [3, 5]), graphRefNorm(graphDoubles(lx), n: 3, c: 5, s: 1, groups: 1, perSample: true,
                                                               gamma: graphDoubles(lg), beta: graphDoubles(lb), eps: 1e-5), atol: 1e-5, rtol: 1e-5, "layer norm")
            try graphGradientCheck(&c, ln, lx, [3, 5], "layer norm")
        }
    },
    Check("Graph/Norm", "batch statistics update the running statistics with momentum (unbiased variance)") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 17)
            let n = 4, ch = 3, s = 5
            let x = rng.floats(n * ch * s, -2, 2), rm = rng.floats(ch), rv = rng.floats(ch, 0.5, 2)
            let g = try graphMakeGraph(graphSpec([ch, s], [graphLayer(.batchNorm, "bn", [-1]) { $0.momentum = 0.25 }]),
                                  [GraphParamInit(name: "bn.weight", role: .normWeight, dims: [ch], values: [1, 1, 1]),
                                   GraphParamInit(name: "bn.bias", role: .normBias, dims: [ch], values: [0, 0, 0]),
                                   GraphParamInit(name: "bn.running_mean", role: .runningMean, dims: [ch], values: rm),
                                   GraphParamInit(name: "bn.running_var", role: .runningVariance, dims: [ch], values: rv)],
                                  batch: n, options: GraphOptions(batchNormMode: .batchStatistics, updateRunningStatistics: true))
            _ = try graphRun(g, x, [n, ch, s])
            var em: [Double] = [], ev: [Double] = []
            for k in 0..<ch {
                var vals: [Double] = []
                for b in 0..<n { for j in 0..<s { vals.append(Double(x[(b * ch + k) * s + j])) } }
                let mu = vals.reduce(0, +) / Double(vals.count)
                let v = vals.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(vals.count - 1)
                em.append(0.75 * Double(rm[k]) + 0.25 * mu)
                ev.append(0.75 * Double(rv[k]) + 0.25 * v)
            }
            graphExpectAllClose(&c, try g.store.parameter(named: "bn.running_mean").value.toArray(), em, atol: 1e-6, rtol: 1e-5, "running mean")
            graphExpectAllClose(&c, try g.store.parameter(named: "bn.running_var").value.toArray(), ev, atol: 1e-6, rtol: 1e-5, "running variance")
            c.expect(!g.store[2].trainable && !g.store[3].trainable, "running statistics are trainable")
        }
    },
    Check("Graph/Activation", "relu, gelu (tanh), silu, tanh, elu: forward matches the reference, input gradients match finite differences") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 18)
            var x = rng.floats(2 * 3 * 5, -3, 3)
            for i in 0..<x.count where abs(x[i]) < 0.05 { x[i] += 0.1 }  // keep relu's kink out of the differences
            x[0] = 12; x[1] = -15  // saturated tails
            for kind in [LayerKind.relu, .gelu, .silu, .tanh, .elu] {
                let g = try graphMakeGraph(graphSpec([3, 5], [graphLayer(kind, "act", [-1])]), [], batch: 2,
                                      options: GraphOptions(training: true, inputGradient: true))
                let y = try graphRun(g, x, [2, 3, 5])
                let ref: [Double] = x.map { f in
                    let v = Double(f)
                    switch kind {
                    case .relu: return max(v, 0)
                    case .gelu: return 0.5 * v * (1 + graphRefTanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
                    case .silu: return v / (1 + graphRefExp(-v))
                    case .elu: return v > 0 ? v : graphRefExp(v) - 1
                    default: return graphRefTanh(v)
                    }
                }
                graphExpectAllClose(&c, y, ref, atol: 1e-6, rtol: 1e-6, kind.name)
                try graphGradientCheck(&c, g, x, [2, 3, 5], kind.name, eps: 1e-2, limit: 30)
            }
        }
    },
    Check("Graph/Pooling", "max and average pooling (stride, padding), global average: forward matches the reference, gradients match finite differences") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 19)
            let n = 2, ch = 2, h = 7, w = 6
            let x = rng.floats(n * ch * h * w, -2, 2)
            for (kind, k, st, p) in [(LayerKind.maxPool2d, (2, 2), (2, 2), (0, 0)), (.maxPool2d, (3, 3), (2, 1), (1, 1)),
                                     (.avgPool2d, (3, 2), (2, 2), (1, 1)), (.avgPool2d, (2, 2), (1, 2), (0, 0))] {
                let g = try graphMakeGraph(graphSpec([ch, h, w], [graphLayer(kind, "pool", [-1]) {
                    $0.kernelH = k.0; $0.kernelW = k.1; $0.strideH = st.0; $0.strideW = st.1; $0.padH = p.0; $0.padW = p.1
                }]), [], batch: n, options: GraphOptions(training: true, inputGradient: true))
                let y = try graphRun(g, x, [n, ch, h, w])
                graphExpectAllClose(&c, y, graphRefPool(graphDoubles(x), planes: n * ch, h: h, w: w, k: k, s: st, p: p, isMax: kind == .maxPool2d),
                               atol: 1e-6, rtol: 1e-6, kind.name)
                try graphGradientCheck(&c, g, x, [n, ch, h, w], kind.name, eps: 1e-3, limit: 40)
            }
            let gp = try graphMakeGraph(graphSpec([ch, h, w], [graphLayer(.globalAvgPool, "gap", [-1])]), [], batch: n,
                                   options: GraphOptions(training: true, inputGradient: true))
            var ref: [Double] = []
            for pl in 0..<(n * ch) { ref.append((0..<(h * w)).reduce(0.0) { $0 + Double(x[pl * h * w + $1]) } / Double(h * w)) }
            graphExpectAllClose(&c, try graphRun(gp, x, [n, ch, h, w]), ref, atol: 1e-6, rtol: 1e-5, "global average pool")
            try graphGradientCheck(&c, gp, x, [n, ch, h, w], "global average pool")
        }
    },
    Check("Graph/ShapeOps", "flatten is a view, residual add with fan-out and softmax: forward and gradients") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 20)
            let n = 2
            let x = rng.floats(n * 2 * 3, -2, 2)
            let w = rng.floats(6 * 6), b = rng.floats(6)
            // x -> flatten -> fc -> add(fc, flatten) -> add(it, it) -> softmax
            let s = graphSpec([2, 3], [graphLayer(.flatten, "flat", [-1]),
                                  graphLayer(.linear, "fc", [0]) { $0.outputs = 6 },
                                  graphLayer(.add, "res", [1, 0]),
                                  graphLayer(.add, "twice", [2, 2]),
                                  graphLayer(.softmax, "prob", [3])])
            let g = try graphMakeGraph(s, [GraphParamInit(name: "fc.weight", role: .weight, dims: [6, 6], values: w),
                                      GraphParamInit(name: "fc.bias", role: .bias, dims: [6], values: b)],
                                  batch: n, options: GraphOptions(training: true, inputGradient: true))
            let y = try graphRun(g, x, [n, 2, 3])
            let fc = graphRefLinear(graphDoubles(x), rows: n, inF: 6, graphDoubles(w), outF: 6, graphDoubles(b))
            var ref: [Double] = []
            for r in 0..<n {
                let z = (0..<6).map { 2 * (fc[r * 6 + $0] + Double(x[r * 6 + $0])) }
                let m = z.max() ?? 0
                let e = z.map { graphRefExp($0 - m) }
                let sum = e.reduce(0, +)
                ref += e.map { $0 / sum }
            }
            graphExpectAllClose(&c, y, ref, atol: 1e-6, rtol: 1e-5, "flatten-linear-add-add-softmax")
            c.expect(g.outputShape == (try Shape(6)), "output shape")
            // Flatten has no buffer of its own: an inference plan holds exactly the input copy and the
            // outputs of fc, res, twice and prob (f32 linear needs no scratch).
            let inference = try graphMakeGraph(s, [GraphParamInit(name: "fc.weight", role: .weight, dims: [6, 6], values: w),
                                                   GraphParamInit(name: "fc.bias", role: .bias, dims: [6], values: b)],
                                               batch: n, options: GraphOptions())
            c.expect(inference.plan.count == 5, "inference plan has \(inference.plan.count) buffers, expected 5")
            graphExpectAllClose(&c, try graphRun(inference, x, [n, 2, 3]), ref, atol: 1e-6, rtol: 1e-5, "inference forward")
            try graphGradientCheck(&c, g, x, [n, 2, 3], "shape ops", eps: 1e-2, atol: 5e-4)
        }
    },
    Check("Graph/EndToEnd", "CNN conv-bn-relu-pool x2, flatten, linear: forward matches chained references; gradients; plan; determinism; smaller batch") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 21)
            let n = 3, cin = 1, h = 10, w = 9
            let s = graphSpec([cin, h, w], [
                graphLayer(.conv2d, "c1", [-1]) { $0.outputs = 4; $0.kernelH = 3; $0.kernelW = 3; $0.padH = 1; $0.padW = 1 },
                graphLayer(.batchNorm, "b1", [0]),
                graphLayer(.relu, "r1", [1]),
                graphLayer(.maxPool2d, "p1", [2]) { $0.kernelH = 2; $0.kernelW = 2; $0.strideH = 2; $0.strideW = 2 },
                graphLayer(.conv2d, "c2", [3]) { $0.outputs = 3; $0.kernelH = 3; $0.kernelW = 3; $0.padH = 1; $0.padW = 1 },
                graphLayer(.batchNorm, "b2", [4]),
                graphLayer(.relu, "r2", [5]),
                graphLayer(.maxPool2d, "p2", [6]) { $0.kernelH = 2; $0.kernelW = 2; $0.strideH = 2; $0.strideW = 2 },
                graphLayer(.flatten, "flat", [7]),
                graphLayer(.linear, "fc", [8]) { $0.outputs = 5 },
            ])
            let w1 = rng.floats(4 * 9), b1 = rng.floats(4), w2 = rng.floats(3 * 4 * 9, -0.5, 0.5), b2 = rng.floats(3)
            let wf = rng.floats(5 * 12), bf = rng.floats(5)
            func bn(_ name: String, _ c: Int, _ rng: inout SplitMix64) -> [GraphParamInit] {
                [GraphParamInit(name: name + ".weight", role: .normWeight, dims: [c], values: rng.floats(c, 0.5, 1.5)),
                 GraphParamInit(name: name + ".bias", role: .normBias, dims: [c], values: rng.floats(c)),
                 GraphParamInit(name: name + ".running_mean", role: .runningMean, dims: [c], values: rng.floats(c, -0.2, 0.2)),
                 GraphParamInit(name: name + ".running_var", role: .runningVariance, dims: [c], values: rng.floats(c, 0.5, 2))]
            }
            let bn1 = bn("b1", 4, &rng), bn2 = bn("b2", 3, &rng)
            let params = [GraphParamInit(name: "c1.weight", role: .weight, dims: [4, 1, 3, 3], values: w1),
                          GraphParamInit(name: "c1.bias", role: .bias, dims: [4], values: b1)] + bn1
                + [GraphParamInit(name: "c2.weight", role: .weight, dims: [3, 4, 3, 3], values: w2),
                   GraphParamInit(name: "c2.bias", role: .bias, dims: [3], values: b2)] + bn2
                + [GraphParamInit(name: "fc.weight", role: .weight, dims: [5, 12], values: wf), GraphParamInit(name: "fc.bias", role: .bias, dims: [5], values: bf)]
            let x = rng.floats(n * cin * h * w, -1, 1)
            for mode in [GraphOptions.BatchNormMode.runningStatistics, .batchStatistics] {
                let g = try graphMakeGraph(s, params, batch: n, options: GraphOptions(training: true, batchNormMode: mode, inputGradient: true))
                // Reference chain in Double; p holds the parameters in the order of `params`.
                func ref(_ x: [Double], _ p: [[Double]]) -> [Double] {
                    let running = mode == .runningStatistics
                    var a = graphRefConv(x, p[0], p[1], GraphConvParams(n: n, c: 1, h: h, w: w, oc: 4, kh: 3, kw: 3, ph: 1, pw: 1))
                    a = graphRefNorm(a, n: n, c: 4, s: h * w, groups: 1, perSample: false, gamma: p[2], beta: p[3], eps: 1e-5, stats: running ? (p[4], p[5]) : nil)
                    a = graphRefPool(a.map { max($0, 0) }, planes: n * 4, h: h, w: w, k: (2, 2), s: (2, 2), p: (0, 0), isMax: true)
                    a = graphRefConv(a, p[6], p[7], GraphConvParams(n: n, c: 4, h: 5, w: 4, oc: 3, kh: 3, kw: 3, ph: 1, pw: 1))
                    a = graphRefNorm(a, n: n, c: 3, s: 20, groups: 1, perSample: false, gamma: p[8], beta: p[9], eps: 1e-5, stats: running ? (p[10], p[11]) : nil)
                    a = graphRefPool(a.map { max($0, 0) }, planes: n * 3, h: 5, w: 4, k: (2, 2), s: (2, 2), p: (0, 0), isMax: true)
                    return graphRefLinear(a, rows: n, inF: 12, p[12], outF: 5, p[13])
                }
                let p0 = params.map { graphDoubles($0.values) }
                let a = ref(graphDoubles(x), p0)
                let y = try graphRun(g, x, [n, cin, h, w])
                graphExpectAllClose(&c, y, a, atol: 1e-4, rtol: 1e-4, "cnn forward")
                // Plan: no overlap while alive, reuse, and the same bits on a second forward.
                c.expect(!g.plan.overlapsWhileAlive(), "cnn plan overlaps")
                c.expect(g.plannedBytes <= g.sumOfPlannedSizes, "planned bytes exceed the sum of sizes")
                let y2 = try graphRun(g, x, [n, cin, h, w])
                c.expect(zip(y, y2).allSatisfy { $0.bitPattern == $1.bitPattern }, "second forward differs")
                // Backward vs central differences of the Double reference (eps 1e-6: relu kinks and max-pool
                // switches are then essentially never crossed, and there is no fp32 rounding noise).
                var frng = SplitMix64(seed: 23)
                let r = frng.floats(y.count)
                let dx = CheckMemory(byteCount: x.count * 4)
                try g.store.zeroGradients()
                let rMemory = CheckMemory.floats(r)  // kept alive across backward
                try g.backward(outputGradient: try rMemory.view(.f32, [n, 5]), inputGradient: try dx.view(.f32, [n, cin, h, w]))
                withExtendedLifetime(rMemory) {}
                func loss(_ x: [Double], _ p: [[Double]]) -> Double {
                    let out = ref(x, p)
                    var s = 0.0
                    for i in 0..<out.count { s += out[i] * Double(r[i]) }
                    return s
                }
                let e = 1e-6
                var xd = graphDoubles(x)
                for j in graphSampleIndices(x.count, 16, &frng) {
                    let keep = xd[j]
                    xd[j] = keep + e; let lp = loss(xd, p0)
                    xd[j] = keep - e; let lm = loss(xd, p0)
                    xd[j] = keep
                    c.expectClose(dx.floats[j], Float((lp - lm) / (2 * e)), absolute: 1e-4, relative: 2e-3, "cnn input gradient \(j)")
                }
                for (k, pi) in params.enumerated() where !pi.role.isRunningStatistic {
                    let grad = try g.store.parameter(named: pi.name).gradient?.toArray() ?? []
                    var pd = p0
                    for j in graphSampleIndices(pi.values.count, 8, &frng) {
                        let keep = pd[k][j]
                        pd[k][j] = keep + e; let lp = loss(graphDoubles(x), pd)
                        pd[k][j] = keep - e; let lm = loss(graphDoubles(x), pd)
                        pd[k][j] = keep
                        c.expectClose(grad.count > j ? grad[j] : .nan, Float((lp - lm) / (2 * e)), absolute: 1e-4, relative: 2e-3, "cnn " + pi.name + "[\(j)]")
                    }
                }
                // The same network made smooth (tanh, average pooling): no kinks, strict differences.
                var smooth = s
                for k in [2, 6] { smooth.layers[k].kind = .tanh }
                for k in [3, 7] { smooth.layers[k].kind = .avgPool2d }
                let gs = try graphMakeGraph(smooth, params, batch: n, options: GraphOptions(training: true, batchNormMode: mode, inputGradient: true))
                try graphGradientCheck(&c, gs, x, [n, cin, h, w], "smooth cnn", eps: 1e-2, atol: 3e-3, rtol: 3e-2, limit: 12)
                // A smaller batch works on the leading rows (running statistics: per-sample, so rows agree).
                if mode == .runningStatistics {
                    let y1 = try graphRun(g, Array(x[0..<(cin * h * w)]), [1, cin, h, w])
                    // Not bit-identical: one row goes to the GEMV, several to BLIS's GEMM (another summation order).
                    graphExpectAllClose(&c, y1, graphDoubles(Array(y[0..<5])), atol: 1e-5, rtol: 1e-5, "batch of 1 vs row 0")
                }
            }
        }
    },
    Check("Graph/EndToEnd", "MLP linear-gelu-layernorm-linear-tanh-linear; inference plan reuses memory") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 22)
            let n = 4
            let s = graphSpec([12], [graphLayer(.linear, "l1", [-1]) { $0.outputs = 10 }, graphLayer(.gelu, "a1", [0]),
                                graphLayer(.layerNorm, "n1", [1]), graphLayer(.linear, "l2", [2]) { $0.outputs = 8 },
                                graphLayer(.tanh, "a2", [3]), graphLayer(.linear, "l3", [4]) { $0.outputs = 3 }])
            let params = [GraphParamInit(name: "l1.weight", role: .weight, dims: [10, 12], values: rng.floats(120, -0.4, 0.4)),
                          GraphParamInit(name: "l1.bias", role: .bias, dims: [10], values: rng.floats(10)),
                          GraphParamInit(name: "n1.weight", role: .normWeight, dims: [10], values: rng.floats(10, 0.5, 1.5)),
                          GraphParamInit(name: "n1.bias", role: .normBias, dims: [10], values: rng.floats(10)),
                          GraphParamInit(name: "l2.weight", role: .weight, dims: [8, 10], values: rng.floats(80, -0.4, 0.4)),
                          GraphParamInit(name: "l2.bias", role: .bias, dims: [8], values: rng.floats(8)),
                          GraphParamInit(name: "l3.weight", role: .weight, dims: [3, 8], values: rng.floats(24)),
                          GraphParamInit(name: "l3.bias", role: .bias, dims: [3], values: rng.floats(3))]
            let x = rng.floats(n * 12, -1, 1)
            let g = try graphMakeGraph(s, params, batch: n, options: GraphOptions(training: true, inputGradient: true))
            var a = graphRefLinear(graphDoubles(x), rows: n, inF: 12, graphDoubles(params[0].values), outF: 10, graphDoubles(params[1].values))
            a = a.map { 0.5 * $0 * (1 + graphRefTanh(0.7978845608028654 * ($0 + 0.044715 * $0 * $0 * $0))) }
            a = graphRefNorm(a, n: n, c: 10, s: 1, groups: 1, perSample: true, gamma: graphDoubles(params[2].values), beta: graphDoubles(params[3].values), eps: 1e-5)
            a = graphRefLinear(a, rows: n, inF: 10, graphDoubles(params[4].values), outF: 8, graphDoubles(params[5].values)).map { graphRefTanh($0) }
            a = graphRefLinear(a, rows: n, inF: 8, graphDoubles(params[6].values), outF: 3, graphDoubles(params[7].values))
            graphExpectAllClose(&c, try graphRun(g, x, [n, 12]), a, atol: 2e-5, rtol: 1e-4, "mlp forward")
            c.expect(!g.plan.overlapsWhileAlive(), "mlp plan overlaps")
            try graphGradientCheck(&c, g, x, [n, 12], "mlp", eps: 1e-2, atol: 2e-3, rtol: 3e-2, limit: 12)
            let inference = try graphMakeGraph(s, params, batch: n, options: GraphOptions())
            c.expect(!inference.plan.overlapsWhileAlive(), "inference plan overlaps")
            c.expect(inference.plannedBytes < inference.sumOfPlannedSizes, "inference plan reuses no memory")
            c.expect(inference.plannedBytes < g.plannedBytes, "inference plan is not smaller than the training plan")
            graphExpectAllClose(&c, try graphRun(inference, x, [n, 12]), a, atol: 2e-5, rtol: 1e-4, "mlp inference forward")
        }
    },
    Check("Graph/Activation", "elu (alpha 1): values on both sides of 0 and deep in the tail; gradients by finite differences, alone and in a 784-shaped linear-elu-linear-elu-linear MLP") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 31)
            // Points straddling 0 (ELU is C1 at 0 for alpha 1), and the saturated tail.
            var x = rng.floats(4 * 6, -4, 4)
            x[0] = 1e-3; x[1] = -1e-3; x[2] = -20; x[3] = 7; x[4] = -0.5; x[5] = 0.5
            let g = try graphMakeGraph(graphSpec([6], [graphLayer(.elu, "act", [-1])]), [], batch: 4,
                                       options: GraphOptions(training: true, inputGradient: true))
            let y = try graphRun(g, x, [4, 6])
            graphExpectAllClose(&c, y, x.map { Double($0) > 0 ? Double($0) : graphRefExp(Double($0)) - 1 }, atol: 1e-7, rtol: 1e-6, "elu forward")
            // The derivative itself: dx = dy * (1 for x > 0, e^x otherwise), with dy = 1.
            let ones = CheckMemory.floats([Float](repeating: 1, count: x.count))
            let dx = CheckMemory(byteCount: x.count * 4)
            _ = try graphRun(g, x, [4, 6])
            try g.backward(outputGradient: try ones.view(.f32, [4, 6]), inputGradient: try dx.view(.f32, [4, 6]))
            for i in 0..<x.count {
                let v = Double(x[i])
                c.expectClose(dx.floats[i], Float(v > 0 ? 1 : graphRefExp(v)), absolute: 1e-7, relative: 1e-6, "elu derivative at " + show(x[i]))
            }
            withExtendedLifetime(ones) {}
            try graphGradientCheck(&c, g, x, [4, 6], "elu", eps: 1e-3, atol: 1e-3, rtol: 1e-2, limit: 24)
            // The paper's layer pattern, small: linear-elu-linear-elu-linear with parameter gradients.
            let n = 3
            let s = graphSpec([16], [graphLayer(.linear, "fc1", [-1]) { $0.outputs = 8 }, graphLayer(.elu, "a1", [0]),
                                     graphLayer(.linear, "fc2", [1]) { $0.outputs = 6 }, graphLayer(.elu, "a2", [2]),
                                     graphLayer(.linear, "fc3", [3]) { $0.outputs = 4 }])
            let params = [GraphParamInit(name: "fc1.weight", role: .weight, dims: [8, 16], values: rng.floats(128, -0.5, 0.5)),
                          GraphParamInit(name: "fc1.bias", role: .bias, dims: [8], values: rng.floats(8)),
                          GraphParamInit(name: "fc2.weight", role: .weight, dims: [6, 8], values: rng.floats(48, -0.6, 0.6)),
                          GraphParamInit(name: "fc2.bias", role: .bias, dims: [6], values: rng.floats(6)),
                          GraphParamInit(name: "fc3.weight", role: .weight, dims: [4, 6], values: rng.floats(24)),
                          GraphParamInit(name: "fc3.bias", role: .bias, dims: [4], values: rng.floats(4))]
            let xm = rng.floats(n * 16, 0, 1)
            let mlp = try graphMakeGraph(s, params, batch: n, options: GraphOptions(training: true, inputGradient: true))
            func elu(_ a: [Double]) -> [Double] { a.map { $0 > 0 ? $0 : graphRefExp($0) - 1 } }
            var a = elu(graphRefLinear(graphDoubles(xm), rows: n, inF: 16, graphDoubles(params[0].values), outF: 8, graphDoubles(params[1].values)))
            a = elu(graphRefLinear(a, rows: n, inF: 8, graphDoubles(params[2].values), outF: 6, graphDoubles(params[3].values)))
            a = graphRefLinear(a, rows: n, inF: 6, graphDoubles(params[4].values), outF: 4, graphDoubles(params[5].values))
            graphExpectAllClose(&c, try graphRun(mlp, xm, [n, 16]), a, atol: 2e-5, rtol: 1e-4, "elu mlp forward")
            try graphGradientCheck(&c, mlp, xm, [n, 16], "elu mlp", eps: 1e-2, atol: 2e-3, rtol: 3e-2, limit: 16)
        }
    },
    Check("Graph/EndToEnd", "frugal adaptation shape: frozen q8_0 conv and linear around a trainable batch norm and tanh; norm gradients match the dequantized reference") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 24)
            let n = 3
            let (qc, wc) = try graphDequantized(rng.floats(4 * 32, -0.5, 0.5), rows: 4, k: 32, .q8_0)
            let (ql, wl) = try graphDequantized(rng.floats(3 * 64, -0.5, 0.5), rows: 3, k: 64, .q8_0)
            let gamma = rng.floats(4, 0.5, 1.5), beta = rng.floats(4, -0.2, 0.2), x = rng.floats(n * 8 * 25, -1, 1)
            let arena = try Arena(byteCount: 16 << 20)
            let store = ParameterStore(arena: arena)
            try store.adopt(name: "c.weight", role: .weight, view: try qc.view(.q8_0, [4, 32]))
            try store.add(name: "bn.weight", role: .normWeight, shape: try Shape(4), values: gamma)
            try store.add(name: "bn.bias", role: .normBias, shape: try Shape(4), values: beta)
            try store.adopt(name: "fc.weight", role: .weight, view: try ql.view(.q8_0, [3, 64]))
            let s = graphSpec([8, 5, 5], [
                graphLayer(.conv2d, "c", [-1]) { $0.outputs = 4; $0.kernelH = 2; $0.kernelW = 2; $0.hasBias = false },
                graphLayer(.batchNorm, "bn", [0]), graphLayer(.tanh, "t", [1]), graphLayer(.flatten, "f", [2]),
                graphLayer(.linear, "fc", [3]) { $0.outputs = 3; $0.hasBias = false }])
            let g = try Graph(spec: s, store: store, batchSize: n, arena: arena, options: GraphOptions(training: true, batchNormMode: .batchStatistics))
            c.expect(store.trainableCount == 2, "only the norm affine trains")
            c.expect(!g.plan.overlapsWhileAlive(), "plan overlaps")
            func ref(_ gm: [Double], _ bt: [Double]) -> [Double] {
                var a = graphRefConv(graphDoubles(x), wc, nil, GraphConvParams(n: n, c: 8, h: 5, w: 5, oc: 4, kh: 2, kw: 2))
                a = graphRefNorm(a, n: n, c: 4, s: 16, groups: 1, perSample: false, gamma: gm, beta: bt, eps: 1e-5).map { graphRefTanh($0) }
                return graphRefLinear(a, rows: n, inF: 64, wl, outF: 3, nil)
            }
            let y = try graphRun(g, x, [n, 8, 5, 5])
            // Activations are quantized to Q8_0 on the fly in both GEMMs: a few percent of the output scale.
            // (tanh, not relu, between them: a relu mask flipped by that rounding would move a whole
            // element's contribution, which says nothing about the backward.)
            graphExpectAllClose(&c, y, ref(graphDoubles(gamma), graphDoubles(beta)), atol: 0.05, rtol: 0.02, "frugal forward")
            let r = rng.floats(n * 3)
            let rMemory = CheckMemory.floats(r)
            try store.zeroGradients()
            try g.backward(outputGradient: try rMemory.view(.f32, [n, 3]))
            withExtendedLifetime(rMemory) {}
            func loss(_ gm: [Double], _ bt: [Double]) -> Double { zip(ref(gm, bt), r).reduce(0.0) { $0 + $1.0 * Double($1.1) } }
            let e = 1e-6
            let dg = try store.parameter(named: "bn.weight").gradient?.toArray() ?? []
            let db = try store.parameter(named: "bn.bias").gradient?.toArray() ?? []
            for k in 0..<4 {
                var gp = graphDoubles(gamma), gm = graphDoubles(gamma), bp = graphDoubles(beta), bm = graphDoubles(beta)
                gp[k] += e; gm[k] -= e; bp[k] += e; bm[k] -= e
                let b0 = graphDoubles(beta), g0 = graphDoubles(gamma)
                // The backward runs on the quantized forward's activations: agreement to activation-quantization error.
                c.expectClose(dg.count == 4 ? dg[k] : .nan, Float((loss(gp, b0) - loss(gm, b0)) / (2 * e)), absolute: 0.03, relative: 0.05, "bn.weight[\(k)]")
                c.expectClose(db.count == 4 ? db[k] : .nan, Float((loss(g0, bp) - loss(g0, bm)) / (2 * e)), absolute: 0.03, relative: 0.05, "bn.bias[\(k)]")
            }
        }
    },
    Check("Graph/Errors", "bad descriptions, parameters and inputs throw the exact error") { c in
        let fc = { (inputs: [Int]) in graphLayer(.linear, "fc", inputs) { $0.outputs = 2 } }
        let fcParams = [GraphParamInit(name: "fc.weight", role: .weight, dims: [2, 3], values: [Float](repeating: 0.1, count: 6)),
                        GraphParamInit(name: "fc.bias", role: .bias, dims: [2], values: [0, 0])]
        c.expectThrows(.invalidModel(key: "lichen.layer.0.inputs", value: "0", reason: "inputs must be -1 (the model input) or an earlier layer"),
                       "self input") { () throws(LichenError) in try graphMakeGraph(graphSpec([3], [fc([0])]), fcParams, batch: 1) }
        c.expectThrows(.notFound(kind: "parameter", name: "fc.bias"), "missing bias") { () throws(LichenError) in
            try graphMakeGraph(graphSpec([3], [fc([-1])]), [fcParams[0]], batch: 1)
        }
        c.expectThrows(.parameterShapeMismatch(tensor: "fc.weight", expected: "[2, 3]", got: "[3, 2]"), "transposed weight") { () throws(LichenError) in
            try graphMakeGraph(graphSpec([3], [fc([-1])]), [GraphParamInit(name: "fc.weight", role: .weight, dims: [3, 2], values: fcParams[0].values), fcParams[1]], batch: 1)
        }
        c.expectThrows(.invalidModel(key: "lichen.layer.0.stride_h", value: "0", reason: "must be in 1...16777216"), "zero stride") { () throws(LichenError) in
            try graphMakeGraph(graphSpec([1, 4, 4], [graphLayer(.maxPool2d, "p", [-1]) { $0.kernelH = 2; $0.kernelW = 2; $0.strideH = 0 }]), [], batch: 1)
        }
        c.expectThrows(.invalidModel(key: "lichen.layer.0.groups", value: "2", reason: "must be >= 1 and divide the input and output channels"), "groups") { () throws(LichenError) in
            try graphMakeGraph(graphSpec([3, 4, 4], [graphLayer(.conv2d, "cv", [-1]) { $0.outputs = 4; $0.groups = 2 }]), [], batch: 1)
        }
        c.expectThrows(.invalidModel(key: "lichen.layer.1.inputs", value: "[4]", reason: "add takes two inputs of the same shape"), "add shapes") { () throws(LichenError) in
            try graphMakeGraph(graphSpec([3], [graphLayer(.linear, "a", [-1]) { $0.outputs = 4; $0.hasBias = false }, graphLayer(.add, "s", [-1, 0])]),
                          [GraphParamInit(name: "a.weight", role: .weight, dims: [4, 3], values: [Float](repeating: 0, count: 12))], batch: 1)
        }
        c.expectThrows(.invalidArgument(name: "updateRunningStatistics", value: 1, reason: "running statistics are updated only when normalising with batch statistics"),
                       "update with running statistics") { () throws(LichenError) in
            try graphMakeGraph(graphSpec([3], [fc([-1])]), fcParams, batch: 1, options: GraphOptions(updateRunningStatistics: true))
        }
        guard let g = c.expectNoThrow("build", { () throws(LichenError) in try graphMakeGraph(graphSpec([3], [fc([-1])]), fcParams, batch: 2) }) else { return }
        c.expectThrows(.shapeMismatch(operand: "input", dimension: 1, expected: 3, got: 4), "wrong width") { () throws(LichenError) in
            try graphRun(g, [Float](repeating: 0, count: 8), [2, 4])
        }
        c.expectThrows(.invalidArgument(name: "input.batch", value: 3, reason: "must be in 1...the batch size the graph was built for"), "batch too large") { () throws(LichenError) in
            try graphRun(g, [Float](repeating: 0, count: 9), [3, 3])
        }
        c.expectThrows(.nonFiniteValue(operand: "input", index: 4), "NaN input") { () throws(LichenError) in
            try graphRun(g, [0, 1, 2, 3, .nan, 5], [2, 3])
        }
        c.expectThrows(.nonFiniteValue(operand: "input", index: 0), "infinite input") { () throws(LichenError) in
            try graphRun(g, [.infinity, 1, 2], [1, 3])
        }
        c.expectThrows(.invalidArgument(name: "backward", value: 0, reason: "no forward to backpropagate through"), "backward without forward") { () throws(LichenError) in
            try g.backward(outputGradient: try CheckMemory.floats([0, 0]).view(.f32, [1, 2]))
        }
        _ = try? graphRun(g, [1, 2, 3], [1, 3])
        c.expectThrows(.shapeMismatch(operand: "outputGradient", dimension: 0, expected: 1, got: 2), "gradient batch") { () throws(LichenError) in
            try g.backward(outputGradient: try CheckMemory.floats([0, 0, 0, 0]).view(.f32, [2, 2]))
        }
    },
    Check("Graph/ParameterStore", "adding, lookup, duplicates, trainable by role, gradients") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 8 << 20)
            let store = ParameterStore(arena: arena)
            try store.add(name: "a.weight", role: .weight, shape: try Shape(2, 2), values: [1, 2, 3, 4], trainable: false)
            try store.add(name: "a.running_mean", role: .runningMean, shape: try Shape(2), values: [0, 0])
            let q = CheckMemory.of(.q8_0, 32)
            try Kernels.best.quantizeRows(try CheckMemory.floats([Float](repeating: 0.5, count: 32)).view(.f32, [1, 32]), into: try q.view(.q8_0, [1, 32]))
            try store.adopt(name: "b.weight", role: .weight, view: try q.view(.q8_0, [1, 32]))
            c.expect(store.count == 3 && store.index(of: "b.weight") == 2, "lookup")
            c.expect(!store[1].trainable && store[1].gradient == nil, "running statistics must not train")
            c.expect(try store.setTrainable(true, role: .weight) == 1, "only the f32 weight trains")
            c.expect(store[0].trainable && store[0].gradient != nil && !store[2].trainable, "trainable flags")
            try store[0].gradient?.fill(3)
            try store.zeroGradients()
            c.expect(try store[0].gradient?.toArray() == [0, 0, 0, 0], "zeroed gradient")
            c.expectThrows(.duplicateName(kind: "parameter", name: "a.weight"), "duplicate") { () throws(LichenError) in
                try store.add(name: "a.weight", role: .weight, shape: try Shape(1), values: [1])
            }
            c.expectThrows(.nonFiniteValue(operand: "parameter values", index: 1), "NaN parameter") { () throws(LichenError) in
                try store.add(name: "c", role: .bias, shape: try Shape(2), values: [1, .nan])
            }
            c.expectThrows(.invalidArgument(name: "trainable", value: 4, reason: "only writable f32 parameters that are not running statistics can train"),
                           "train a running mean") { () throws(LichenError) in try store.setTrainable(true, name: "a.running_mean") }
            var seen = 0
            try store.forEachTrainable { (_, v, g) throws(LichenError) in seen += 1; c.expect(v.shape == g.shape, "pair shapes") }
            c.expect(seen == 1, "one trainable pair")
        }
    },
]
