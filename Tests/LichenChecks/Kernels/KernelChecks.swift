import Lichen

/// Checks of Sources/Lichen/Kernels: every supported table against naive Swift references
/// (exact for quantized codes and int32 block sums, stated tolerances for float sums) and the
/// Swift layer's validation errors.
let kernelChecks: [Check] = [
    Check("Kernels/FP16", "every half converts to f32 and back unchanged; f32 -> f16 rounds to nearest even") { c in
        for h in 0...0xffff {
            let bits = UInt16(h)
            let f = Kernels.float(fromHalfBits: bits)
            if f.isNaN { c.expect(naiveHalfToFloat(bits).isNaN, "half \(h) is NaN only in Lichen"); continue }
            c.expect(f.bitPattern == naiveHalfToFloat(bits).bitPattern, "half \(h) -> f32 differs from Float16")
            c.expect(Kernels.halfBits(from: f) == bits, "half \(h) does not round-trip")
        }
        var rng = SplitMix64(seed: 1)
        for i in 0..<20_000 {
            // wide exponent range incl. subnormal halves, overflow and exact ties
            let e = Float(rng.nextInt(-30, 17))
            var x = rng.nextFloat(-2, 2) * Float(sign: .plus, exponent: Int(e), significand: 1)
            if i % 7 == 0 { x = naiveHalfToFloat(UInt16(rng.nextInt(0, 0x7bff))) + Float(sign: .plus, exponent: -25, significand: 1) }
            c.expect(Kernels.halfBits(from: x) == naiveHalfBits(x), "f32 \(show(x)) -> f16")
        }
    },
    Check("Kernels/Quantize", "Q8_0 and Q4_0 codes are byte-exact with the reference in every table; error within the format bound") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 2)
            for kernels in supportedKernels {
                for (rows, k) in [(1, 32), (3, 96), (5, 288), (2, 64)] {
                    for scale: Float in [1e-3, 1, 300] {
                        var values = rng.floats(rows * k, -scale, scale)
                        if scale == 1 { for i in stride(from: 0, to: values.count, by: 3) { values[i] = Float(rng.nextInt(-40, 40)) * 0.5 } }  // ties
                        if rows == 2 { for i in 0..<32 { values[i] = 0 } }  // an all-zero block
                        let x = CheckMemory.floats(values)
                        for type in [ElementType.q8_0, .q4_0] {
                            let q = CheckMemory.of(type, rows * k)
                            try kernels.quantizeRows(try x.view(.f32, [rows, k]), into: try q.view(type, [rows, k]))
                            var expected: [UInt8] = []
                            for r in 0..<rows {
                                let row = Array(values[(r * k)..<(r * k + k)])
                                expected += type == .q8_0 ? naiveQuantizeQ8_0(row) : naiveQuantizeQ4_0(row)
                            }
                            var same = true
                            for i in 0..<expected.count where q.bytes[i] != expected[i] { same = false }
                            c.expect(same, kernels.isaName + " " + type.name + " bytes differ from the reference, k=\(k)")
                            let y = CheckMemory(byteCount: rows * k * 4)
                            try kernels.dequantizeRows(try q.view(type, [rows, k]), into: try y.view(.f32, [rows, k]))
                            let decoded = naiveDecode(q.bytes, type, rows * k)
                            var worst: Float = 0
                            for i in 0..<(rows * k) {
                                let d = decoded.scales[i / 32]
                                let deq = Float(decoded.codes[i]) * d
                                c.expect(y.floats[i] == deq, kernels.isaName + " dequantized value \(i) is not q*d")
                                // x vs q*d (d as stored, fp16): half a step (Q8_0) or one step (Q4_0) of d, plus |q|
                                // times the fp16 rounding of d (half an ulp: 2^-11 relative, 2^-25 absolute when subnormal)
                                let bound = (type == .q8_0 ? abs(d) / 2 : abs(d)) + 128 * max(abs(d) * 0x1p-11, 0x1p-25) + 1e-7
                                worst = max(worst, abs(values[i] - deq) - bound)
                            }
                            c.expect(worst <= 0, kernels.isaName + " " + type.name + " error exceeds the format bound by " + show(worst))
                        }
                    }
                }
            }
        }
    },
    Check("Kernels/Dot", "quantized dot products match exact int32 block sums in every table") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 3)
            for kernels in supportedKernels {
                for k in [32, 96, 288, 1024] {
                    let wv = CheckMemory.floats(rng.floats(k)), xv = CheckMemory.floats(rng.floats(k, -3, 3))
                    let xq = CheckMemory.of(.q8_0, k)
                    try kernels.quantizeRows(try xv.view(.f32, [k]), into: try xq.view(.q8_0, [k]))
                    let x = naiveDecode(xq.bytes, .q8_0, k)
                    for type in [ElementType.q8_0, .q4_0] {
                        let wq = CheckMemory.of(type, k)
                        try kernels.quantizeRows(try wv.view(.f32, [k]), into: try wq.view(type, [k]))
                        let got = try kernels.dot(try wq.view(type, [k]), try xq.view(.q8_0, [k]))
                        let ref = naiveQuantizedDot(naiveDecode(wq.bytes, type, k), 0, x, 0, k)
                        c.expectClose(got, ref.value, absolute: 1e-6 * ref.magnitude + 1e-7, kernels.isaName + " dot " + type.name + " k=\(k)")
                    }
                }
            }
        }
    },
    Check("Kernels/Gemm", "quantized GEMM and GEMV (with and without bias) match the naive product in every table") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 4)
            // n = 1 rows (m) cover the GEMV's 8-row passes with and without a next pass to prefetch,
            // its 4-row and single-row tails; odd block counts (k / 32) included.
            let shapes = [(1, 1, 32), (1, 17, 96), (5, 3, 288), (3, 17, 32), (9, 13, 64), (17, 70, 96), (1, 67, 160),
                          (1, 8, 32), (1, 16, 224), (1, 31, 96), (1, 12, 64)]
            for kernels in supportedKernels {
                for (n, m, k) in shapes {
                    let wv = CheckMemory.floats(rng.floats(m * k)), xv = CheckMemory.floats(rng.floats(n * k, -2, 2))
                    let bias = CheckMemory.floats(rng.floats(m))
                    let xq = CheckMemory.of(.q8_0, n * k)
                    try kernels.quantizeRows(try xv.view(.f32, [n, k]), into: try xq.view(.q8_0, [n, k]))
                    let x = naiveDecode(xq.bytes, .q8_0, n * k)
                    let scratch = CheckMemory(byteCount: try Kernels.gemmScratchByteCount(rows: n, outputs: m, depth: k))
                    for type in [ElementType.q8_0, .q4_0] {
                        let wq = CheckMemory.of(type, m * k)
                        try kernels.quantizeRows(try wv.view(.f32, [m, k]), into: try wq.view(type, [m, k]))
                        let w = naiveDecode(wq.bytes, type, m * k)
                        for withBias in [false, true] {
                            let y = CheckMemory(byteCount: n * m * 4)
                            try kernels.gemm(
                                weights: try wq.view(type, [m, k]), input: try xv.view(.f32, [n, k]),
                                bias: withBias ? try bias.view(.f32, [m]) : nil, output: try y.view(.f32, [n, m]), scratch: scratch.raw)
                            var bad = 0
                            for j in 0..<n {
                                for i in 0..<m {
                                    let ref = naiveQuantizedDot(w, i, x, j, k)
                                    let expected = ref.value + (withBias ? bias.floats[i] : 0)
                                    if abs(y.floats[j * m + i] - expected) > 1e-5 * ref.magnitude + 1e-6 * abs(expected) + 1e-6 { bad += 1 }
                                }
                            }
                            c.expect(bad == 0, kernels.isaName + " gemm " + type.name + " n=\(n) m=\(m) k=\(k) bias=\(withBias): \(bad) outputs off")
                        }
                    }
                }
            }
        }
    },
    Check("Kernels/GemmTransposed", "dx (+)= dy . W matches the naive product of the dequantized weights in every table") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 5)
            for kernels in supportedKernels {
                for (n, m, k) in [(1, 1, 32), (3, 17, 96), (5, 3, 288), (2, 9, 64)] {
                    let wv = CheckMemory.floats(rng.floats(m * k))
                    let dy = CheckMemory.floats(rng.floats(n * m))
                    let start = rng.floats(n * k)
                    for type in [ElementType.q8_0, .q4_0] {
                        let wq = CheckMemory.of(type, m * k)
                        try kernels.quantizeRows(try wv.view(.f32, [m, k]), into: try wq.view(type, [m, k]))
                        let w = naiveDecode(wq.bytes, type, m * k)
                        for accumulate in [false, true] {
                            let dx = CheckMemory.floats(start)
                            try kernels.gemmTransposed(
                                weights: try wq.view(type, [m, k]), outputGradient: try dy.view(.f32, [n, m]),
                                inputGradient: try dx.view(.f32, [n, k]), accumulate: accumulate)
                            var bad = 0
                            for j in 0..<n {
                                for l in 0..<k {
                                    var s: Float = accumulate ? start[j * k + l] : 0, mag = abs(s)
                                    for i in 0..<m {
                                        let t = dy.floats[j * m + i] * (Float(w.codes[i * k + l]) * w.scales[(i * k + l) / 32])
                                        s += t
                                        mag += abs(t)
                                    }
                                    if abs(dx.floats[j * k + l] - s) > 1e-5 * mag + 1e-6 { bad += 1 }
                                }
                            }
                            c.expect(bad == 0, kernels.isaName + " gemm_t " + type.name + " n=\(n) m=\(m) k=\(k): \(bad) values off")
                        }
                    }
                }
            }
        }
    },
    Check("Kernels/Sgemm", "BLIS sgemm (all transposes, the m = 1 path, the short-k A^T B path) and every table's sgemv match the naive product") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 6)
            // The last two cross the packed path's blocks (MC 144 rows, KC 256 of k, NC 2048 columns).
            // (80, 37, 9), (3, 40, 14), (6, 33, 16): transposed A over k <= 16 (row axpys).
            for (m, n, k) in [(1, 7, 5), (1, 1, 1), (3, 17, 33), (17, 5, 64), (8, 8, 1), (145, 19, 257), (2, 2049, 17),
                              (80, 37, 9), (3, 40, 14), (6, 33, 16)] {
                for ta in [false, true] {
                    for tb in [false, true] {
                        let a = CheckMemory.floats(rng.floats(m * k)), b = CheckMemory.floats(rng.floats(k * n))
                        let c0 = rng.floats(m * n)
                        let out = CheckMemory.floats(c0)
                        let betas: [Float] = [0, 1, 0.5]
                        let (alpha, beta): (Float, Float) = (0.75, ta ? betas[k % 3] : 0.5)
                        try Kernels.sgemm(
                            try a.view(.f32, ta ? [k, m] : [m, k]), transposeA: ta, try b.view(.f32, tb ? [n, k] : [k, n]), transposeB: tb,
                            into: try out.view(.f32, [m, n]), alpha: alpha, beta: beta)
                        var bad = 0
                        for i in 0..<m {
                            for j in 0..<n {
                                var s: Float = 0, mag: Float = 0
                                for l in 0..<k {
                                    let av = ta ? a.floats[l * m + i] : a.floats[i * k + l]
                                    let bv = tb ? b.floats[j * k + l] : b.floats[l * n + j]
                                    s += av * bv
                                    mag += abs(av * bv)
                                }
                                let expected = alpha * s + beta * c0[i * n + j]
                                if abs(out.floats[i * n + j] - expected) > 1e-5 * (mag + abs(c0[i * n + j])) + 1e-6 { bad += 1 }
                            }
                        }
                        c.expect(bad == 0, "sgemm m=\(m) n=\(n) k=\(k) ta=\(ta) tb=\(tb): \(bad) values off")
                    }
                }
            }
            for kernels in supportedKernels {
                for (m, k) in [(1, 1), (3, 17), (17, 96), (5, 7)] {
                    let w = CheckMemory.floats(rng.floats(m * k)), x = CheckMemory.floats(rng.floats(k))
                    let y0 = rng.floats(m)
                    for beta: Float in [0, 2] {
                        let y = CheckMemory.floats(y0)
                        try kernels.sgemv(try w.view(.f32, [m, k]), try x.view(.f32, [k]), into: try y.view(.f32, [m]), alpha: 1.5, beta: beta)
                        for i in 0..<m {
                            var s: Float = 0, mag: Float = 0
                            for l in 0..<k { s += w.floats[i * k + l] * x.floats[l]; mag += abs(w.floats[i * k + l] * x.floats[l]) }
                            c.expectClose(y.floats[i], 1.5 * s + beta * y0[i], absolute: 1e-5 * (mag + abs(y0[i])) + 1e-6, kernels.isaName + " sgemv")
                        }
                    }
                }
            }
        }
    },
    Check("Kernels/Elementwise", "add, mul, scale, axpy, relu, relu backward, leaky relu, elu (forward, backward), sum and dot match naive loops in every table") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 7)
            for kernels in supportedKernels {
                for n in [1, 7, 33, 100] {
                    let av = rng.floats(n), bv = rng.floats(n)
                    let a = CheckMemory.floats(av), b = CheckMemory.floats(bv), y = CheckMemory(byteCount: n * 4)
                    let va = try a.view(.f32, [n]), vb = try b.view(.f32, [n]), vy = try y.view(.f32, [n])
                    try kernels.elementwise(.add, va, vb, into: vy)
                    c.expect((0..<n).allSatisfy { y.floats[$0] == av[$0] + bv[$0] }, kernels.isaName + " add")
                    try kernels.elementwise(.multiply, va, vb, into: vy)
                    c.expect((0..<n).allSatisfy { y.floats[$0] == av[$0] * bv[$0] }, kernels.isaName + " mul")
                    try kernels.elementwise(.scale(-2.5), va, into: vy)
                    c.expect((0..<n).allSatisfy { y.floats[$0] == -2.5 * av[$0] }, kernels.isaName + " scale")
                    try kernels.elementwise(.relu, va, into: vy)
                    c.expect((0..<n).allSatisfy { y.floats[$0] == max(av[$0], 0) }, kernels.isaName + " relu")
                    try kernels.elementwise(.leakyRelu(slope: 0.1), va, into: vy)
                    c.expect((0..<n).allSatisfy { y.floats[$0] == (av[$0] > 0 ? av[$0] : 0.1 * av[$0]) }, kernels.isaName + " leaky relu")
                    try kernels.reluBackward(input: va, outputGradient: vb, into: vy)
                    c.expect((0..<n).allSatisfy { y.floats[$0] == (av[$0] > 0 ? bv[$0] : 0) }, kernels.isaName + " relu backward")
                    // ELU against the Double reference: within 4 ulps of the value, forward and
                    // backward (inputs spread over [-20, 5] to reach every k of the reduction).
                    let ev = (0..<n).map { av[$0] * 12.5 - 7.5 }
                    let e = CheckMemory.floats(ev), ve = try e.view(.f32, [n])
                    try kernels.elementwise(.elu, ve, into: vy)
                    for i in 0..<n {
                        let x = Double(ev[i]), want = x > 0 ? x : graphRefExp(x) - 1
                        c.expectClose(y.floats[i], Float(want), absolute: 4 * Float(want).ulp, kernels.isaName + " elu \(ev[i])")
                    }
                    let d0 = CheckMemory.floats(av)
                    try kernels.eluBackward(input: ve, outputGradient: vb, into: try d0.view(.f32, [n]), accumulate: true)
                    try kernels.eluBackward(input: ve, outputGradient: vb, into: vy)
                    for i in 0..<n {
                        let x = Double(ev[i]), g = Double(bv[i]) * (x > 0 ? 1 : graphRefExp(x))
                        c.expectClose(y.floats[i], Float(g), absolute: 4 * Float(g).ulp + 1e-30, kernels.isaName + " elu backward")
                        c.expectClose(d0.floats[i], Float(Double(av[i]) + g), absolute: 4 * Float(Double(av[i]) + g).ulp + 1e-7,
                                      kernels.isaName + " elu backward, accumulated")
                    }
                    let yc = CheckMemory.floats(bv)
                    try kernels.axpy(0.5, va, try yc.view(.f32, [n]))
                    for i in 0..<n { c.expectClose(yc.floats[i], bv[i] + 0.5 * av[i], absolute: 1e-6, kernels.isaName + " axpy") }
                    var s: Float = 0, d: Float = 0
                    for i in 0..<n { s += av[i]; d += av[i] * bv[i] }
                    c.expectClose(try kernels.sum(va), s, absolute: 1e-5 * Float(n), kernels.isaName + " sum")
                    c.expectClose(try kernels.dot(f32: va, vb), d, absolute: 1e-5 * Float(n), kernels.isaName + " dot")
                }
            }
        }
    },
    Check("Kernels/BandwidthProbe", "the read-bandwidth probe sums every value once (lengths around its 64-value steps and 4 KiB prefetch tail)") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 13)
            for n in [1, 63, 64, 65, 1087, 1088, 1089, 1151, 1152, 1217, 5000] {
                // small integers: the sum is exact in f32 whatever the order of additions
                let values = (0..<n).map { _ in Float(rng.nextInt(-4, 4)) }
                let x = CheckMemory.floats(values)
                let expected = values.reduce(0, +)
                c.expect(try Kernels.readBandwidthProbe(try x.view(.f32, [n])) == expected, "probe n=\(n)")
            }
        }
    },
    Check("Kernels/Softmax", "softmax and log-softmax rows match naive formulas; rows sum to 1") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 8)
            for kernels in supportedKernels {
                for (rows, cols) in [(1, 1), (3, 10), (2, 33)] {
                    let xv = rng.floats(rows * cols, -20, 20)
                    let x = CheckMemory.floats(xv), y = CheckMemory(byteCount: rows * cols * 4), ly = CheckMemory(byteCount: rows * cols * 4)
                    try kernels.softmaxRows(try x.view(.f32, [rows, cols]), into: try y.view(.f32, [rows, cols]))
                    try kernels.softmaxRows(try x.view(.f32, [rows, cols]), into: try ly.view(.f32, [rows, cols]), log: true)
                    for r in 0..<rows {
                        var mx = -Float.infinity
                        for i in 0..<cols { mx = max(mx, xv[r * cols + i]) }
                        var z: Double = 0
                        for i in 0..<cols { z += Double(expApprox(xv[r * cols + i] - mx)) }
                        var total: Float = 0
                        for i in 0..<cols {
                            let e = Double(expApprox(xv[r * cols + i] - mx)) / z
                            total += y.floats[r * cols + i]
                            c.expectClose(y.floats[r * cols + i], Float(e), absolute: 1e-6, relative: 1e-4, kernels.isaName + " softmax")
                            let le = Double(xv[r * cols + i] - mx) - logApprox(z)
                            c.expectClose(ly.floats[r * cols + i], Float(le), absolute: 1e-4, relative: 1e-5, kernels.isaName + " log-softmax")
                        }
                        c.expectClose(total, 1, absolute: 1e-5, kernels.isaName + " softmax row sum")
                    }
                }
            }
        }
    },
    Check("Kernels/ChannelStats", "per-channel sum, mean and biased variance of NCHW data match two-pass references") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 9)
            for kernels in supportedKernels {
                for (b, ch, h, w) in [(1, 1, 1, 1), (2, 3, 5, 7), (4, 2, 1, 3)] {
                    let xv = rng.floats(b * ch * h * w, 9, 11)  // offset data: a one-pass variance would fail here
                    let x = CheckMemory.floats(xv)
                    let s = CheckMemory(byteCount: ch * 4), mu = CheckMemory(byteCount: ch * 4), v = CheckMemory(byteCount: ch * 4)
                    try kernels.channelStatistics(
                        try x.view(.f32, [b, ch, h, w]), sum: try s.view(.f32, [ch]), mean: try mu.view(.f32, [ch]),
                        variance: try v.view(.f32, [ch]))
                    for cc in 0..<ch {
                        var sum: Double = 0
                        for bi in 0..<b { for i in 0..<(h * w) { sum += Double(xv[(bi * ch + cc) * h * w + i]) } }
                        let count = Double(b * h * w), mean = sum / count
                        var vs: Double = 0
                        for bi in 0..<b { for i in 0..<(h * w) { let d = Double(xv[(bi * ch + cc) * h * w + i]) - mean; vs += d * d } }
                        c.expectClose(s.floats[cc], Float(sum), absolute: 1e-3, relative: 1e-6, kernels.isaName + " channel sum")
                        c.expectClose(mu.floats[cc], Float(mean), absolute: 1e-5, relative: 1e-6, kernels.isaName + " channel mean")
                        c.expectClose(v.floats[cc], Float(vs / count), absolute: 1e-6, relative: 1e-4, kernels.isaName + " channel variance")
                    }
                }
            }
        }
    },
    Check("Kernels/Im2col", "im2col matches direct indexing; col2im is its adjoint (<im2col(x), c> == <x, col2im(c)>)") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 10)
            let geometries = [
                try ConvGeometry(channels: 1, height: 5, width: 5, kernelHeight: 3, kernelWidth: 3),
                try ConvGeometry(channels: 2, height: 7, width: 6, kernelHeight: 3, kernelWidth: 2, strideHeight: 2, strideWidth: 1,
                                 padHeight: 1, padWidth: 2, dilationHeight: 1, dilationWidth: 2),
                try ConvGeometry(channels: 3, height: 1, width: 17, kernelHeight: 1, kernelWidth: 5, strideWidth: 3, padWidth: 2),
            ]
            for g in geometries {
                let n = g.channels * g.height * g.width, rows = g.columnRows, cols = g.columnColumns
                let xv = rng.floats(n), cv = rng.floats(rows * cols)
                let x = CheckMemory.floats(xv), col = CheckMemory(byteCount: rows * cols * 4)
                try Kernels.im2col(try x.view(.f32, [g.channels, g.height, g.width]), into: try col.view(.f32, [rows, cols]), geometry: g)
                var bad = 0
                for ch in 0..<g.channels {
                    for ki in 0..<g.kernelHeight {
                        for kj in 0..<g.kernelWidth {
                            for oy in 0..<g.outputHeight {
                                for ox in 0..<g.outputWidth {
                                    let iy = oy * g.strideHeight - g.padHeight + ki * g.dilationHeight
                                    let ix = ox * g.strideWidth - g.padWidth + kj * g.dilationWidth
                                    let inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width
                                    let expected = inside ? xv[(ch * g.height + iy) * g.width + ix] : 0
                                    let r = (ch * g.kernelHeight + ki) * g.kernelWidth + kj
                                    if col.floats[r * cols + oy * g.outputWidth + ox] != expected { bad += 1 }
                                }
                            }
                        }
                    }
                }
                c.expect(bad == 0, "im2col: \(bad) values differ from direct indexing")
                let cm = CheckMemory.floats(cv), img = CheckMemory(byteCount: n * 4)
                try Kernels.col2im(try cm.view(.f32, [rows, cols]), into: try img.view(.f32, [g.channels, g.height, g.width]), geometry: g)
                var lhs: Double = 0, rhs: Double = 0
                for i in 0..<(rows * cols) { lhs += Double(col.floats[i]) * Double(cv[i]) }
                for i in 0..<n { rhs += Double(xv[i]) * Double(img.floats[i]) }
                c.expectClose(Float(lhs), Float(rhs), absolute: 1e-4, relative: 1e-5, "col2im adjoint")
            }
        }
    },
    Check("Kernels/Validation", "mismatched shapes, undersized buffers, wrong types and misaligned views throw the exact error") { c in
        checking(&c) { c throws(LichenError) in
            let kernels = Kernels.best
            let w = CheckMemory.of(.q8_0, 4 * 64), x = CheckMemory(byteCount: 2 * 64 * 4), y = CheckMemory(byteCount: 64 * 4)
            let bias = CheckMemory(byteCount: 5 * 4)
            let needed = try Kernels.gemmScratchByteCount(rows: 2, outputs: 4, depth: 64)
            let scratch = CheckMemory(byteCount: needed)
            let small = CheckMemory(byteCount: needed - 1)
            let wv = try w.view(.q8_0, [4, 64])
            c.expectThrows(.shapeMismatch(operand: "input", dimension: 1, expected: 64, got: 32), "input k") { () throws(LichenError) in
                try kernels.gemm(weights: wv, input: try x.view(.f32, [2, 32]), output: try y.view(.f32, [2, 4]), scratch: scratch.raw)
            }
            c.expectThrows(.shapeMismatch(operand: "output", dimension: 1, expected: 4, got: 5), "output m") { () throws(LichenError) in
                try kernels.gemm(weights: wv, input: try x.view(.f32, [2, 64]), output: try y.view(.f32, [2, 5]), scratch: scratch.raw)
            }
            c.expectThrows(.shapeMismatch(operand: "output", dimension: 0, expected: 2, got: 3), "output n") { () throws(LichenError) in
                try kernels.gemm(weights: wv, input: try x.view(.f32, [2, 64]), output: try y.view(.f32, [3, 4]), scratch: scratch.raw)
            }
            c.expectThrows(.shapeMismatch(operand: "bias", dimension: 0, expected: 4, got: 5), "bias") { () throws(LichenError) in
                try kernels.gemm(weights: wv, input: try x.view(.f32, [2, 64]), bias: try bias.view(.f32, [5]),
                                 output: try y.view(.f32, [2, 4]), scratch: scratch.raw)
            }
            c.expectThrows(.bufferTooSmall(operand: "scratch", needed: needed, available: needed - 1), "scratch") { () throws(LichenError) in
                try kernels.gemm(weights: wv, input: try x.view(.f32, [2, 64]), output: try y.view(.f32, [2, 4]), scratch: small.raw)
            }
            c.expectThrows(.unsupportedElementType(operand: "weights", type: .f32), "f32 weights") { () throws(LichenError) in
                try kernels.gemm(weights: try x.view(.f32, [2, 64]), input: try x.view(.f32, [2, 64]), output: try y.view(.f32, [2, 2]),
                                 scratch: scratch.raw)
            }
            c.expectThrows(.unsupportedElementType(operand: "input", type: .q8_0), "quantized input") { () throws(LichenError) in
                try kernels.quantizeRows(wv, into: wv)
            }
            c.expectThrows(.shapeMismatch(operand: "input", dimension: 1, expected: 64, got: 33), "quantize k % 32") { () throws(LichenError) in
                try kernels.quantizeRows(try x.view(.f32, [2, 33]), into: wv)
            }
            c.expectThrows(.shapeMismatch(operand: "inputGradient", dimension: 1, expected: 64, got: 60), "gemm_t dx") { () throws(LichenError) in
                try kernels.gemmTransposed(weights: wv, outputGradient: try y.view(.f32, [2, 4]), inputGradient: try x.view(.f32, [2, 60]))
            }
            c.expectThrows(.shapeMismatch(operand: "b", dimension: 0, expected: 3, got: 4), "sgemm k") { () throws(LichenError) in
                try Kernels.sgemm(try x.view(.f32, [2, 3]), try y.view(.f32, [4, 2]), into: try x.view(.f32, [2, 2]))
            }
            c.expectThrows(.shapeMismatch(operand: "x", dimension: 0, expected: 8, got: 7), "sgemv x") { () throws(LichenError) in
                try kernels.sgemv(try x.view(.f32, [2, 8]), try y.view(.f32, [7]), into: try y.view(.f32, [2]))
            }
            c.expectThrows(.bufferTooSmall(operand: "tensor", needed: 65 * 4, available: 64 * 4), "output larger than its buffer") { () throws(LichenError) in
                try kernels.sgemv(try x.view(.f32, [65, 1]), try y.view(.f32, [1]), into: try y.view(.f32, [65]))
            }
            let odd = UInt(bitPattern: x.base + 2)
            c.expectThrows(.misaligned(operand: "tensor", address: odd, alignment: 4), "misaligned f32 operand") { () throws(LichenError) in
                let v = try TensorView(base: x.base + 2, byteCount: 16, type: .f32, shape: try Shape(2))
                try kernels.elementwise(.relu, v, into: v)
            }
            let g = try ConvGeometry(channels: 2, height: 4, width: 4, kernelHeight: 3, kernelWidth: 3)
            c.expectThrows(.shapeMismatch(operand: "columns", dimension: 0, expected: 18, got: 16), "im2col columns") { () throws(LichenError) in
                try Kernels.im2col(try x.view(.f32, [2, 4, 4]), into: try y.view(.f32, [16, 4]), geometry: g)
            }
            c.expectThrows(.invalidArgument(name: "strideHeight", value: 0, reason: "must be >= 1"), "conv stride") { () throws(LichenError) in
                _ = try ConvGeometry(channels: 1, height: 4, width: 4, kernelHeight: 3, kernelWidth: 3, strideHeight: 0)
            }
        }
    },
]

/// exp through Double's series-free path: e^x = 2^(x*log2 e), split into integer and fraction.
/// (No libm in Embedded checks; 12 Taylor terms on [-0.5, 0.5] give ~1e-12 relative error.)
func expApprox(_ x: Float) -> Double {
    let t = Double(x) * 1.4426950408889634
    let n = t.rounded()
    let f = (t - n) * 0.6931471805599453
    var term = 1.0, sum = 1.0
    for i in 1...14 { term *= f / Double(i); sum += term }
    return sum * Double(sign: .plus, exponent: Int(n), significand: 1)
}

/// Natural log of a positive Double: exponent split plus atanh series on the mantissa.
func logApprox(_ z: Double) -> Double {
    let e = z.exponent
    let m = z.significand  // in [1, 2)
    let u = (m - 1) / (m + 1)
    var term = u, sum = 0.0
    var i = 1
    while i < 40 { sum += term / Double(i); term *= u * u; i += 2 }
    return 2 * sum + Double(e) * 0.6931471805599453
}

