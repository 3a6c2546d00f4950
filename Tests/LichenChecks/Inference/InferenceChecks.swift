import CRuntime
import Lichen

/// Checks of the inference path: its kernels against naive loops in every table, batch-norm
/// folding against its defining equations, and whole models against the unfolded `Graph`.
let inferenceChecks: [Check] = [
    Check("Inference/Kernels", "bias_act, transpose_bias_act, sgemm_small_k, sgemm_nt and sgemm_tn_small_k match naive loops in every table, odd shapes included") { c in
        var rng = SplitMix64(seed: 71)
        for kernels in supportedKernels {
            guard let t = lcr_kernels_for(lcr_isa(rawValue: kernels.isa.rawValue))?.pointee else {
                c.fail("no table for " + kernels.isaName)
                continue
            }
            for (channels, spatial) in [(1, 1), (3, 7), (8, 9), (5, 33), (16, 64)] {
                for act in [LCR_ACT_NONE, LCR_ACT_RELU] {
                    for withBias in [false, true] {
                        let y = rng.floats(channels * spatial), b = rng.floats(channels)
                        let ym = CheckMemory.floats(y), bm = CheckMemory.floats(b)
                        t.bias_act(ym.floats, withBias ? UnsafePointer(bm.floats) : nil, Int64(channels), Int64(spatial), act)
                        var ok = true
                        for i in 0..<(channels * spatial) {
                            var v = y[i] + (withBias ? b[i / spatial] : 0)
                            if act == LCR_ACT_RELU && !(v > 0) { v = 0 }
                            if ym.floats[i] != v { ok = false }
                        }
                        c.expect(ok, kernels.isaName + " bias_act " + String(channels) + "x" + String(spatial))
                    }
                }
            }
            for (positions, channels, ldx) in [(1, 1, 1), (7, 5, 6), (8, 8, 8), (19, 17, 20), (196, 64, 64), (9, 24, 31)] {
                for act in [LCR_ACT_NONE, LCR_ACT_RELU] {
                    let x = rng.floats(positions * ldx), b = rng.floats(channels)
                    let xm = CheckMemory.floats(x), bm = CheckMemory.floats(b), ym = CheckMemory(byteCount: positions * channels * 4)
                    t.transpose_bias_act(xm.floats, bm.floats, ym.floats, Int64(positions), Int64(channels), Int64(ldx), act)
                    var ok = true
                    for p in 0..<positions {
                        for ch in 0..<channels {
                            var v = x[p * ldx + ch] + b[ch]
                            if act == LCR_ACT_RELU && !(v > 0) { v = 0 }
                            if ym.floats[ch * positions + p] != v { ok = false }
                        }
                    }
                    c.expect(ok, kernels.isaName + " transpose_bias_act " + String(positions) + "x" + String(channels))
                }
            }
            for (m, k, p) in [(1, 1, 1), (3, 9, 31), (32, 9, 784), (5, 7, 65), (4, 64, 40), (2, 3, 32)] {
                for act in [LCR_ACT_NONE, LCR_ACT_RELU] {
                    let ldx = p + 3, ldy = p + 5
                    let w = rng.floats(m * k), x = rng.floats(k * ldx), b = rng.floats(m)
                    let wm = CheckMemory.floats(w), xm = CheckMemory.floats(x), bm = CheckMemory.floats(b)
                    let ym = CheckMemory.floats([Float](repeating: 7, count: m * ldy))
                    t.sgemm_small_k(wm.floats, xm.floats, bm.floats, ym.floats, Int64(m), Int64(k), Int64(p), Int64(ldx), Int64(ldy), act)
                    var worst: Float = 0, untouched = true
                    for i in 0..<m {
                        for j in 0..<p {
                            var s = Double(b[i])
                            for kk in 0..<k { s += Double(w[i * k + kk]) * Double(x[kk * ldx + j]) }
                            if act == LCR_ACT_RELU && !(s > 0) { s = 0 }
                            worst = max(worst, abs(ym.floats[i * ldy + j] - Float(s)))
                        }
                        for j in p..<ldy where ym.floats[i * ldy + j] != 7 { untouched = false }
                    }
                    c.expect(worst <= 1e-5 * Float(k), kernels.isaName + " sgemm_small_k " + String(m) + "x" + String(k) + "x" + String(p)
                             + ": max error " + show(worst))
                    c.expect(untouched, kernels.isaName + " sgemm_small_k writes only p columns of each row")
                }
            }
            // sgemm_nt: c = alpha a . b^T + beta c, strided, every tile remainder, k below, at and past 8s.
            for (m, n, k) in [(1, 1, 1), (2, 2, 8), (3, 5, 9), (4, 2, 16), (5, 7, 0), (20, 80, 784), (32, 60, 80), (7, 3, 33), (33, 1, 5)] {
                for (alpha, beta) in [(Float(1), Float(0)), (Float(-0.5), Float(1)), (Float(2), Float(0.25))] {
                    let lda = k + 3, ldb = k + 1, ldc = n + 2
                    let a = rng.floats(m * lda), b = rng.floats(n * ldb), c0 = rng.floats(m * ldc)
                    let am = CheckMemory.floats(a), bm = CheckMemory.floats(b), cm = CheckMemory.floats(c0)
                    t.sgemm_nt(am.floats, Int64(lda), bm.floats, Int64(ldb), cm.floats, Int64(ldc), Int64(m), Int64(n), Int64(k), alpha, beta)
                    var worst: Float = 0, untouched = true
                    for i in 0..<m {
                        for j in 0..<n {
                            var s = 0.0
                            for l in 0..<k { s += Double(a[i * lda + l]) * Double(b[j * ldb + l]) }
                            let want = Double(alpha) * s + (beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j]))
                            worst = max(worst, abs(cm.floats[i * ldc + j] - Float(want)))
                        }
                        for j in n..<ldc where cm.floats[i * ldc + j] != c0[i * ldc + j] { untouched = false }
                    }
                    c.expect(worst <= 1e-5 * Float(max(k, 1)), kernels.isaName + " sgemm_nt " + String(m) + "x" + String(n) + "x" + String(k)
                             + ": max error " + show(worst))
                    c.expect(untouched, kernels.isaName + " sgemm_nt writes only n columns of each row")
                }
            }
            // sgemm_tn_small_k: c = alpha a^T . b + beta c for a [k, m], strided, odd rows, every
            // column remainder around the 32-wide tiles, k from 0 to 16.
            for (m, n, k) in [(1, 1, 1), (2, 32, 1), (3, 33, 9), (80, 100, 9), (5, 65, 16), (4, 7, 0), (7, 31, 3)] {
                for (alpha, beta) in [(Float(1), Float(0)), (Float(-0.5), Float(1)), (Float(2), Float(0.25))] {
                    let lda = m + 3, ldb = n + 1, ldc = n + 2
                    let a = rng.floats(k * lda), b = rng.floats(k * ldb), c0 = rng.floats(m * ldc)
                    let am = CheckMemory.floats(a), bm = CheckMemory.floats(b), cm = CheckMemory.floats(c0)
                    t.sgemm_tn_small_k(am.floats, Int64(lda), bm.floats, Int64(ldb), cm.floats, Int64(ldc), Int64(m), Int64(n), Int64(k),
                                       alpha, beta)
                    var worst: Float = 0, untouched = true
                    for i in 0..<m {
                        for j in 0..<n {
                            var s = 0.0
                            for l in 0..<k { s += Double(a[l * lda + i]) * Double(b[l * ldb + j]) }
                            let want = Double(alpha) * s + (beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j]))
                            worst = max(worst, abs(cm.floats[i * ldc + j] - Float(want)))
                        }
                        for j in n..<ldc where cm.floats[i * ldc + j] != c0[i * ldc + j] { untouched = false }
                    }
                    c.expect(worst <= 1e-5 * Float(max(k, 1)), kernels.isaName + " sgemm_tn_small_k " + String(m) + "x" + String(n) + "x"
                             + String(k) + ": max error " + show(worst))
                    c.expect(untouched, kernels.isaName + " sgemm_tn_small_k writes only n columns of each row")
                }
            }
        }
    },
    Check("Inference/Layout", "im2row (reference and every table's) is im2col transposed; pool2d (max / average, padding, relu) matches direct indexing") { c in
        checking(&c) { (c) throws(LichenError) in
            var rng = SplitMix64(seed: 72)
            for (ch, h, w, k, s, p, d) in [(1, 5, 4, 3, 1, 1, 1), (3, 7, 6, 2, 2, 0, 1), (2, 6, 9, 3, 2, 1, 2), (4, 28, 28, 3, 1, 1, 1),
                                           (3, 14, 13, 3, 1, 2, 2), (2, 11, 21, 5, 1, 2, 1)] {
                var cg = lcr_conv_geometry(channels: Int64(ch), height: Int64(h), width: Int64(w), kernel_h: Int64(k), kernel_w: Int64(k),
                                           stride_h: Int64(s), stride_w: Int64(s), pad_h: Int64(p), pad_w: Int64(p),
                                           dilation_h: Int64(d), dilation_w: Int64(d))
                let img = rng.floats(ch * h * w)
                let im = CheckMemory.floats(img)
                let oh = lcr_conv_out_h(&cg), ow = lcr_conv_out_w(&cg)
                let rows = ch * k * k
                let rm = CheckMemory(byteCount: rows * Int(oh * ow) * 4)
                lcr_im2row(&cg, im.floats, rm.floats)
                var ok = true
                for oy in 0..<Int(oh) {
                    for ox in 0..<Int(ow) {
                        for cc in 0..<ch {
                            for ki in 0..<k {
                                for kj in 0..<k {
                                    let iy = oy * s - p + ki * d, ix = ox * s - p + kj * d
                                    let v: Float = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? img[(cc * h + iy) * w + ix] : 0
                                    if rm.floats[(oy * Int(ow) + ox) * rows + (cc * k + ki) * k + kj] != v { ok = false }
                                }
                            }
                        }
                    }
                }
                c.expect(ok, "im2row " + String(ch) + "x" + String(h) + "x" + String(w) + " k" + String(k))
                for kernels in supportedKernels {
                    guard let t = lcr_kernels_for(lcr_isa(rawValue: kernels.isa.rawValue))?.pointee else { continue }
                    // The whole image, and output rows 1 ..< oh - 1 (a chunk in the middle).
                    for (oy0, oy1) in [(0, Int(oh)), (min(1, Int(oh) - 1), max(Int(oh) - 1, min(1, Int(oh) - 1)))] {
                        let n = rows * (oy1 - oy0) * Int(ow)
                        let tm = CheckMemory(byteCount: n * 4), cm = CheckMemory(byteCount: n * 4)
                        t.im2row(&cg, im.floats, tm.floats, cm.floats, Int64(oy0), Int64(oy1))
                        var same = true
                        for i in 0..<n where tm.floats[i] != rm.floats[oy0 * Int(ow) * rows + i] { same = false }
                        c.expect(same, kernels.isaName + " table im2row equals the reference, " + String(ch) + "x" + String(h) + "x"
                                 + String(w) + " k" + String(k) + " s" + String(s) + ", output rows " + String(oy0) + "..<" + String(oy1))
                    }
                }
            }
            for (ch, h, w, k, s, p) in [(2, 4, 4, 2, 2, 0), (3, 7, 5, 3, 2, 1), (1, 28, 28, 2, 2, 0), (2, 6, 6, 3, 1, 1)] {
                for isMax in [true, false] {
                    for act in [LCR_ACT_NONE, LCR_ACT_RELU] {
                        var pg = lcr_pool_geometry(channels: Int64(ch), height: Int64(h), width: Int64(w), kernel_h: Int64(k),
                                                   kernel_w: Int64(k), stride_h: Int64(s), stride_w: Int64(s), pad_h: Int64(p), pad_w: Int64(p))
                        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
                        let x = rng.floats(ch * h * w)
                        let xm = CheckMemory.floats(x), ym = CheckMemory(byteCount: ch * oh * ow * 4)
                        lcr_pool2d(&pg, xm.floats, ym.floats, isMax ? 1 : 0, act)
                        var ok = true
                        for cc in 0..<ch {
                            for oy in 0..<oh {
                                for ox in 0..<ow {
                                    var m = -Float.infinity, sum: Float = 0
                                    for ky in 0..<k {
                                        for kx in 0..<k {
                                            let iy = oy * s - p + ky, ix = ox * s - p + kx
                                            if iy < 0 || iy >= h || ix < 0 || ix >= w { continue }
                                            let v = x[(cc * h + iy) * w + ix]
                                            m = max(m, v)
                                            sum += v
                                        }
                                    }
                                    var e = isMax ? m : sum / Float(k * k)
                                    if act == LCR_ACT_RELU && !(e > 0) { e = 0 }
                                    if abs(ym.floats[(cc * oh + oy) * ow + ox] - e) > 1e-6 { ok = false }
                                }
                            }
                        }
                        c.expect(ok, (isMax ? "max" : "avg") + " pool " + String(ch) + "x" + String(h) + "x" + String(w) + " k" + String(k))
                    }
                }
            }
        }
    },
    Check("Inference/BatchNormFolding", "folded block scales are fp16(f32(d) * s) with codes unchanged; f32 weights and biases follow the batch-norm equation") { c in
        checking(&c) { (c) throws(LichenError) in
            var rng = SplitMix64(seed: 73)
            let channels = 5, depth = 64
            let gamma = rng.floats(channels, 0.2, 3), beta = rng.floats(channels), mean = rng.floats(channels)
            var variance = rng.floats(channels, 0.01, 2)
            variance[2] = 0  // eps alone
            let bias = rng.floats(channels)
            let gm = CheckMemory.floats(gamma), bm = CheckMemory.floats(beta), mm = CheckMemory.floats(mean)
            let vm = CheckMemory.floats(variance), biasm = CheckMemory.floats(bias)
            let f = try BatchNormFolding.factors(
                channels: channels, bias: try biasm.view(.f32, [channels]), gamma: try gm.view(.f32, [channels]),
                beta: try bm.view(.f32, [channels]), mean: try mm.view(.f32, [channels]), variance: try vm.view(.f32, [channels]),
                epsilon: 1e-3, normName: "bn")
            for ch in 0..<channels {
                let s = Double(gamma[ch]) / (Double(variance[ch]) + Double(Float(1e-3))).squareRoot()
                c.expectClose(f.scale[ch], Float(s), absolute: 0, relative: 1e-6, "scale " + String(ch))
                c.expectClose(f.bias[ch], Float((Double(bias[ch]) - Double(mean[ch])) * s + Double(beta[ch])), absolute: 1e-6,
                              relative: 1e-6, "folded bias " + String(ch))
            }
            let weights = rng.floats(channels * depth)
            let wm = CheckMemory.floats(weights)
            let out = CheckMemory(byteCount: channels * depth * 4)
            try BatchNormFolding.foldF32(try wm.view(.f32, [channels, depth]), into: out.floats, channels: channels, depth: depth, scale: f.scale)
            var ok = true
            for i in 0..<(channels * depth) where out.floats[i] != weights[i] * f.scale[i / depth] { ok = false }
            c.expect(ok, "f32 weights are s_c * w")
            for type in [ElementType.q8_0, ElementType.q4_0] {
                let q = CheckMemory.of(type, channels * depth)
                try Kernels.best.quantizeRows(try wm.view(.f32, [channels, depth]), into: try q.view(type, [channels, depth]))
                let folded = CheckMemory.of(type, channels * depth)
                try BatchNormFolding.foldBlocks(try q.view(type, [channels, depth]), into: folded.base, channels: channels,
                                                scale: f.scale, normName: "bn")
                let blockBytes = type == .q8_0 ? 34 : 18, blocks = depth / 32
                var scalesOK = true, codesOK = true
                for ch in 0..<channels {
                    for b in 0..<blocks {
                        let o = (ch * blocks + b) * blockBytes
                        let d = naiveHalfToFloat(UInt16(q.bytes[o]) | UInt16(q.bytes[o + 1]) << 8)
                        let expected = naiveHalfBits(d * f.scale[ch])
                        if (UInt16(folded.bytes[o]) | UInt16(folded.bytes[o + 1]) << 8) != expected { scalesOK = false }
                        for j in 2..<blockBytes where folded.bytes[o + j] != q.bytes[o + j] { codesOK = false }
                    }
                }
                c.expect(scalesOK, type.name + ": every folded scale is fp16(f32(d) * s_c)")
                c.expect(codesOK, type.name + ": codes unchanged")
            }
            // A scale beyond fp16's range is refused.
            let huge = [Float](repeating: 1e9, count: channels)
            let q = CheckMemory.of(.q8_0, channels * depth)
            try Kernels.best.quantizeRows(try wm.view(.f32, [channels, depth]), into: try q.view(.q8_0, [channels, depth]))
            let dst = CheckMemory.of(.q8_0, channels * depth)
            c.expectThrows(.invalidModel(key: "bn.weight", value: floatText(1e9), reason: "folded block scale overflows fp16"), "overflow") {
                () throws(LichenError) in
                try BatchNormFolding.foldBlocks(try q.view(.q8_0, [channels, depth]), into: dst.base, channels: channels, scale: huge, normName: "bn")
            }
        }
    },
    Check("Inference/Model", "folded inference equals the unfolded Graph on random inputs: small random models, f32 / q8_0 / q4_0, batch 1 and 3") { c in
        checking(&c) { (c) throws(LichenError) in
            for (index, spec) in inferenceCheckSpecs().enumerated() {
                for type in [ElementType.f32, .q8_0, .q4_0] {
                    try inferenceCompare(&c, spec, type: type, seed: UInt64(100 + index), label: "random model " + String(index))
                }
            }
        }
    },
    Check("Inference/ShippedSpecs", "folded inference equals the unfolded Graph for the shipped CNN and MLP architectures, f32 / q8_0 / q4_0") { c in
        checking(&c) { (c) throws(LichenError) in
            for type in [ElementType.f32, .q8_0, .q4_0] {
                try inferenceCompare(&c, ModelSpec.fashionMNISTCNN, type: type, seed: 200, label: "fmnist-cnn", batches: [1])
                try inferenceCompare(&c, ModelSpec.fashionMNISTMLP, type: type, seed: 201, label: "fmnist-mlp", batches: [1, 2])
            }
        }
    },
    Check("Inference/Chunks", "folded inference equals the unfolded Graph when a quantized convolution runs in several output-row chunks (32x32 output, depth 288: 7-row chunks and a last one of 4), q8_0 / q4_0") { c in
        checking(&c) { (c) throws(LichenError) in
            var layers = [inferenceLayer(.conv2d, "conv", [-1]) { $0.outputs = 16; $0.kernelH = 3; $0.kernelW = 3; $0.padH = 1; $0.padW = 1 }]
            layers.append(inferenceLayer(.batchNorm, "bn", [0]))
            layers.append(inferenceLayer(.relu, "relu", [1]))
            layers.append(inferenceLayer(.globalAvgPool, "gap", [2]))
            layers.append(inferenceLayer(.linear, "fc", [3]) { $0.outputs = 5 })
            let spec = ModelSpec(architecture: "check", inputShape: try Shape(dimensions: [32, 32, 32]), classCount: 5, layers: layers)
            c.expect(InferenceModel.chunkValues / (288 * 32) == 7, "the spec's convolution runs in 7-row chunks")
            for type in [ElementType.q8_0, .q4_0] {
                try inferenceCompare(&c, spec, type: type, seed: 300, label: "chunked conv", batches: [1, 2])
            }
        }
    },
    Check("Inference/Errors", "unsupported layers, bad input and an exhausted budget throw and leave the arena and the model intact") { c in
        checking(&c) { (c) throws(LichenError) in
            var layers = [inferenceLayer(.conv2d, "conv", [-1]) { $0.outputs = 4; $0.kernelH = 3; $0.kernelW = 3; $0.padH = 1; $0.padW = 1 }]
            layers.append(inferenceLayer(.groupNorm, "gn", [0]) { $0.groups = 2 })
            layers.append(inferenceLayer(.flatten, "flat", [1]))
            layers.append(inferenceLayer(.linear, "fc", [2]) { $0.outputs = 3 })
            let spec = ModelSpec(architecture: "check", inputShape: try Shape(dimensions: [2, 4, 4]), classCount: 3, layers: layers)
            let arena = try Arena(byteCount: 8 << 20)
            let store = try inferenceStore(spec, arena: arena, type: .f32, seed: 5)
            let before = arena.stats.lowUsedBytes
            c.expectThrows(.invalidModel(key: "lichen.layer.1.kind", value: "group_norm", reason: "not supported by the inference path (use Graph)"),
                           "group norm") { () throws(LichenError) in try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena) }
            c.expect(arena.stats.lowUsedBytes == before, "a refused build gives its low-end bytes back")

            let cnn = ModelSpec.fashionMNISTCNN
            let small = try Arena(byteCount: Arena.minimumByteCount + (2 << 20))
            let cnnStore = try inferenceStore(cnn, arena: small, type: .q8_0, seed: 6)
            let used = small.stats.lowUsedBytes
            do throws(LichenError) {
                _ = try InferenceModel(spec: cnn, store: cnnStore, batchSize: 4096, arena: small)
                c.expect(false, "a batch-4096 plan should not fit a small budget")
            } catch {
                if case .budgetExceeded = error { c.expect(true, "") } else { c.fail("expected budgetExceeded, got " + error.description) }
            }
            c.expect(small.stats.lowUsedBytes == used, "an over-budget build gives its low-end bytes back")

            let model = try InferenceModel(spec: cnn, store: cnnStore, batchSize: 2, arena: small)
            var rng = SplitMix64(seed: 9)
            var x = rng.floats(784, 0, 1)
            let xm = CheckMemory.floats(x)
            let first = try model.forward(input: try xm.view(.f32, [1, 1, 28, 28])).toArray()
            x[100] = .nan
            let bad = CheckMemory.floats(x)
            c.expectThrows(.nonFiniteValue(operand: "input", index: 100), "NaN frame") { () throws(LichenError) in
                try model.forward(input: try bad.view(.f32, [1, 1, 28, 28]))
            }
            c.expectThrows(.invalidArgument(name: "input.batch", value: 3, reason: "must be in 1...the batch size the model was built for"),
                           "batch above the build batch") { () throws(LichenError) in
                let m3 = CheckMemory(byteCount: 3 * 784 * 4)
                return try model.forward(input: try m3.view(.f32, [3, 1, 28, 28]))
            }
            c.expectThrows(.shapeMismatch(operand: "input", dimension: 2, expected: 28, got: 27), "wrong frame shape") { () throws(LichenError) in
                let m = CheckMemory(byteCount: 27 * 28 * 4)
                return try model.forward(input: try m.view(.f32, [1, 1, 27, 28]))
            }
            let again = try model.forward(input: try xm.view(.f32, [1, 1, 28, 28])).toArray()
            c.expect(again == first, "after refused inputs the model gives the same output")
            c.expect(!model.region.plan.overlapsWhileAlive(), "no two live buffers share bytes")
        }
    },
]

// MARK: - Support

func inferenceLayer(_ kind: LayerKind, _ name: String, _ inputs: [Int], _ configure: (inout LayerSpec) -> Void = { _ in }) -> LayerSpec {
    var l = LayerSpec(kind: kind, name: name, inputs: inputs)
    configure(&l)
    return l
}

/// Small models that reach every fusion and every step kind (the direct methods and their fused
/// pool where the best table's direct kernels are native): conv + bn + relu + max pool with a
/// quantizable depth (8 channels x 2x2 = 32), strided, grouped (quantizable per group) and 1x1
/// convolutions, bn that cannot fold (after an add), residual add, gelu / silu / tanh, average
/// and global pooling, conv1d, linear + bn1d + relu, softmax.
func inferenceCheckSpecs() -> [ModelSpec] {
    func conv(_ name: String, _ input: Int, _ out: Int, k: Int, s: Int = 1, p: Int = 0, g: Int = 1, bias: Bool = true) -> LayerSpec {
        inferenceLayer(.conv2d, name, [input]) {
            $0.outputs = out; $0.kernelH = k; $0.kernelW = k; $0.strideH = s; $0.strideW = s; $0.padH = p; $0.padW = p
            $0.groups = g; $0.hasBias = bias
        }
    }
    var specs: [ModelSpec] = []
    // 0: conv-bn-relu-maxpool twice, flatten, linear-bn-relu, linear.
    var a: [LayerSpec] = []
    a.append(conv("c1", -1, 8, k: 3, p: 1))
    a.append(inferenceLayer(.batchNorm, "b1", [0]))
    a.append(inferenceLayer(.relu, "r1", [1]))
    a.append(inferenceLayer(.maxPool2d, "p1", [2]) { $0.kernelH = 2; $0.kernelW = 2; $0.strideH = 2; $0.strideW = 2 })
    a.append(conv("c2", 3, 32, k: 2, s: 1, p: 1, bias: false))
    a.append(inferenceLayer(.batchNorm, "b2", [4]))
    a.append(inferenceLayer(.relu, "r2", [5]))
    a.append(inferenceLayer(.maxPool2d, "p2", [6]) { $0.kernelH = 3; $0.kernelW = 3; $0.strideH = 2; $0.strideW = 2; $0.padH = 1; $0.padW = 1 })
    a.append(inferenceLayer(.flatten, "f", [7]))
    a.append(inferenceLayer(.linear, "l1", [8]) { $0.outputs = 32 })
    a.append(inferenceLayer(.batchNorm, "b3", [9]))
    a.append(inferenceLayer(.relu, "r3", [10]))
    a.append(inferenceLayer(.linear, "l2", [11]) { $0.outputs = 5 })
    specs.append(ModelSpec(architecture: "check", inputShape: (try? Shape(dimensions: [2, 9, 9])) ?? .graphUnchecked1, classCount: 5, layers: a))
    // 1: residual block with an unfoldable bn, grouped / strided / 1x1 convs, gelu, silu, tanh, avg and global pooling, softmax.
    var b: [LayerSpec] = []
    b.append(conv("c1", -1, 16, k: 3, s: 2, p: 1))       // 0: [16, 4, 4]
    b.append(inferenceLayer(.batchNorm, "b1", [0]))       // 1: folded into c1; read by 2 and 5
    b.append(inferenceLayer(.gelu, "g1", [1]))            // 2
    b.append(conv("c2", 2, 16, k: 2, p: 1, g: 2))         // 3: [16, 5, 5], 2 groups of depth 32 (quantizable)
    b.append(inferenceLayer(.avgPool2d, "a1", [3]) { $0.kernelH = 2; $0.kernelW = 2; $0.strideH = 1; $0.strideW = 1 })  // 4: [16, 4, 4]
    b.append(inferenceLayer(.add, "res", [4, 1]))         // 5
    b.append(inferenceLayer(.batchNorm, "b2", [5]))       // 6: after add: an affine step
    b.append(inferenceLayer(.silu, "s1", [6]))            // 7
    b.append(conv("c3", 7, 32, k: 1))                     // 8: 1x1
    b.append(inferenceLayer(.tanh, "t1", [8]))            // 9
    b.append(inferenceLayer(.globalAvgPool, "gap", [9]))  // 10: [32]
    b.append(inferenceLayer(.linear, "l1", [10]) { $0.outputs = 6 })
    b.append(inferenceLayer(.softmax, "sm", [11]))
    specs.append(ModelSpec(architecture: "check", inputShape: (try? Shape(dimensions: [3, 7, 7])) ?? .graphUnchecked1, classCount: 6, layers: b))
    // 2: conv1d + bn + relu, flatten, linear (quantizable depth 32 x 2).
    var d: [LayerSpec] = []
    d.append(inferenceLayer(.conv1d, "c1", [-1]) { $0.outputs = 4; $0.kernelW = 32; $0.padW = 0 })
    d.append(inferenceLayer(.batchNorm, "b1", [0]))
    d.append(inferenceLayer(.relu, "r1", [1]))
    d.append(inferenceLayer(.flatten, "f", [2]))
    d.append(inferenceLayer(.linear, "l1", [3]) { $0.outputs = 3 })
    specs.append(ModelSpec(architecture: "check", inputShape: (try? Shape(dimensions: [1, 47])) ?? .graphUnchecked1, classCount: 3, layers: d))
    // 3: the direct methods with the 2 x 2 pool fused on odd sizes: conv (depth 27, f32 in every
    // variant) + bn + relu + pool, conv (depth 32) + pool with no activation, linear 64 -> 5.
    var e: [LayerSpec] = []
    e.append(conv("c1", -1, 8, k: 3, p: 1))                // 0: [8, 7, 9]
    e.append(inferenceLayer(.batchNorm, "b1", [0]))
    e.append(inferenceLayer(.relu, "r1", [1]))
    e.append(inferenceLayer(.maxPool2d, "p1", [2]) { $0.kernelH = 2; $0.kernelW = 2; $0.strideH = 2; $0.strideW = 2 })  // 3: [8, 3, 4]
    e.append(conv("c2", 3, 16, k: 2, p: 1))                // 4: [16, 4, 5]
    e.append(inferenceLayer(.maxPool2d, "p2", [4]) { $0.kernelH = 2; $0.kernelW = 2; $0.strideH = 2; $0.strideW = 2 })  // 5: [16, 2, 2]
    e.append(inferenceLayer(.flatten, "f", [5]))
    e.append(inferenceLayer(.linear, "l1", [6]) { $0.outputs = 5 })
    specs.append(ModelSpec(architecture: "check", inputShape: (try? Shape(dimensions: [3, 7, 9])) ?? .graphUnchecked1, classCount: 5, layers: e))
    return specs
}

/// A store with random parameters for `spec`: weights uniform in +-1/sqrt(fan-in), biases in
/// +-0.1, batch norm gamma in [0.5, 1.5], beta and mean in +-0.2, variance in [0.3, 1.5]. With
/// `type` q8_0 / q4_0, every weight whose rows are whole blocks of 32 is quantized (row form).
func inferenceStore(_ spec: ModelSpec, arena: Arena, type: ElementType, seed: UInt64) throws(LichenError) -> ParameterStore {
    var rng = SplitMix64(seed: seed)
    let store = ParameterStore(arena: arena)
    for p in try ModelFile.expectedParameters(spec) {
        let kind = spec.layers[p.layer].kind
        let isNorm = kind == .batchNorm || kind == .groupNorm || kind == .layerNorm
        let count = p.shape.elementCount ?? 0
        let role: ParameterRole
        var values: [Float]
        switch p.suffix {
        case "running_mean": role = .runningMean; values = rng.floats(count, -0.2, 0.2)
        case "running_var": role = .runningVariance; values = rng.floats(count, 0.3, 1.5)
        case "bias": role = isNorm ? .normBias : .bias; values = rng.floats(count, isNorm ? -0.2 : -0.1, isNorm ? 0.2 : 0.1)
        default:
            role = isNorm ? .normWeight : .weight
            if isNorm {
                values = rng.floats(count, 0.5, 1.5)
            } else {
                let fan = Float(p.rowLength)
                values = rng.floats(count, -1 / fan.squareRoot(), 1 / fan.squareRoot())
            }
        }
        if type != .f32 && role == .weight && p.rowLength % 32 == 0 {
            let rows = count / p.rowLength
            let src = CheckMemory.floats(values)
            let q = CheckMemory.of(type, count)
            try Kernels.best.quantizeRows(try src.view(.f32, [rows, p.rowLength]), into: try q.view(type, [rows, p.rowLength]))
            // The store copies it into the arena, so the check memory may go.
            try store.add(name: p.name, role: role, copying: try q.view(type, [rows, p.rowLength]), trainable: false)
        } else {
            try store.add(name: p.name, role: role, shape: p.shape, values: values, trainable: false)
        }
    }
    return store
}

/// Builds `spec` with random parameters of `type` as a Graph (running statistics) and as an
/// InferenceModel over the same store and compares them on random inputs: |inference - graph|
/// <= tol * (logit range + 1), tol 1e-4 for f32 and 2e-2 for q8_0 / q4_0 (folding rounds each
/// block scale to fp16, and the next layer's activation codes may move by one step).
func inferenceCompare(
    _ c: inout CheckContext, _ spec: ModelSpec, type: ElementType, seed: UInt64, label: String, batches: [Int] = [1, 3]
) throws(LichenError) {
    let arena = try Arena(byteCount: 32 << 20)
    let store = try inferenceStore(spec, arena: arena, type: type, seed: seed)
    let maxBatch = batches.max() ?? 1
    let graph = try Graph(spec: spec, store: store, batchSize: maxBatch, arena: arena)
    let model = try InferenceModel(spec: spec, store: store, batchSize: maxBatch, arena: arena)
    c.expect(!model.region.plan.overlapsWhileAlive(), label + ": no two live buffers share bytes")
    var rng = SplitMix64(seed: seed &+ 1)
    let perSample = spec.inputShape.elementCount ?? 0
    let tolerance: Float = type == .f32 ? 1e-4 : 2e-2
    for n in batches {
        var dims = [n]
        dims.append(contentsOf: spec.inputShape.dimensions)
        let xm = CheckMemory.floats(rng.floats(n * perSample, 0, 1))
        let x = try xm.view(.f32, dims)
        let expected = try graph.forward(input: x).toArray()
        let got = try model.forward(input: x).toArray()
        c.expect(got.count == expected.count, label + ": output sizes")
        var lo = Float.infinity, hi = -Float.infinity, worst: Float = 0
        for v in expected {
            lo = min(lo, v)
            hi = max(hi, v)
        }
        for i in 0..<min(got.count, expected.count) { worst = max(worst, abs(got[i] - expected[i])) }
        let bound = tolerance * (hi - lo + 1)
        c.expect(worst <= bound && !worst.isNaN, label + " " + type.name + " batch " + String(n) + ": max |inference - graph| "
                 + show(worst) + " above " + show(bound))
    }
}
