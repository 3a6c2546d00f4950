import CRuntime
import Lichen

/// Checks of the direct quantized products (`qconv_acts`, `qconv_gemm`, `qgemv` and the weight
/// packing) in every table against naive Swift references: im2row by direct indexing, ggml's
/// Q8_0 quantization written out (`naiveQuantizeQ8_0`), and block products with exact integer
/// sums (`naiveDecode`).
let directKernelChecks: [Check] = [
    Check("Inference/DirectKernels", "qconv_acts is the im2row rows quantized to Q8_0, byte for byte, in every table (padding, dilation, row stride 2, widths past 16, a kernel 16 wide, exact rounding ties)") { c in
        var rng = SplitMix64(seed: 81)
        for geometry in directCheckGeometries() {
            var g = geometry
            let img = directCheckImage(&rng, g)
            let im = CheckMemory.floats(img)
            let oh = Int(lcr_conv_out_h(&g)), ow = Int(lcr_conv_out_w(&g)), depth = Int(g.channels * g.kernel_h * g.kernel_w)
            let label = directLabel(g)
            let reference = directReferenceRows(g, img)
            for kernels in supportedKernels {
                guard let t = lcr_kernels_for(lcr_isa(rawValue: kernels.isa.rawValue))?.pointee else { continue }
                // The whole output, and a chunk of rows in the middle.
                for (oy0, oy1) in [(0, oh), (min(1, oh - 1), max(oh - 1, min(1, oh - 1)))] where oy1 > oy0 {
                    let acts = CheckMemory(byteCount: Int(lcr_qconv_acts_bytes(Int64(oy1 - oy0), Int64(ow), Int64(depth))))
                    t.qconv_acts(&g, im.floats, Int64(oy0), Int64(oy1), acts.base)
                    let mismatches = directActsMismatches(g, reference, acts, oy0, oy1)
                    c.expect(mismatches == 0, kernels.isaName + " qconv_acts " + label + " rows " + String(oy0) + "..<" + String(oy1) + ": "
                             + String(mismatches) + " bytes or scales differ from the reference")
                }
            }
        }
    },
    Check("Inference/DirectKernels", "qconv_gemm (plain and with the 2x2 max pool, relu or none, q8_0 / q4_0 weights, odd channel and position counts) matches the naive block product in every table") { c in
        var rng = SplitMix64(seed: 82)
        for (gi, geometry) in directCheckGeometries().enumerated() where geometry.stride_h == 1 {
            var g = geometry
            let img = directCheckImage(&rng, g)
            let im = CheckMemory.floats(img)
            let oh = Int(lcr_conv_out_h(&g)), ow = Int(lcr_conv_out_w(&g)), depth = Int(g.channels * g.kernel_h * g.kernel_w)
            let n = [64, 13, 5, 7, 1][gi % 5]
            let rowsRef = directReferenceRows(g, img)
            let x = naiveDecode(rowsRef.bytes, .q8_0, oh * ow * depth)
            let bias = rng.floats(n, -0.5, 0.5)
            let bm = CheckMemory.floats(bias)
            for type in [ElementType.q8_0, .q4_0] {
                let wf = rng.floats(n * depth)
                let q = CheckMemory.of(type, n * depth)
                for r in 0..<n {
                    let bytes = type == .q8_0 ? naiveQuantizeQ8_0(Array(wf[(r * depth)..<((r + 1) * depth)]))
                                              : naiveQuantizeQ4_0(Array(wf[(r * depth)..<((r + 1) * depth)]))
                    for (j, v) in bytes.enumerated() { q.bytes[r * bytes.count + j] = v }
                }
                let w = naiveDecode(q.bytes, type, n * depth)
                // The naive product of every channel and position, once for all tables.
                var refValue = [Float](repeating: 0, count: n * oh * ow), refMagnitude = refValue
                for ch in 0..<n {
                    for p in 0..<(oh * ow) {
                        let r = naiveQuantizedDot(w, ch, x, p, depth)
                        refValue[ch * oh * ow + p] = r.value
                        refMagnitude[ch * oh * ow + p] = r.magnitude
                    }
                }
                let packed = CheckMemory(byteCount: Int(lcr_qconv_weights_bytes(Int64(n), Int64(depth))))
                lcr_qconv_pack_weights(q.base, type == .q4_0 ? 1 : 0, Int64(n), Int64(depth), packed.base)
                for kernels in supportedKernels {
                    guard let t = lcr_kernels_for(lcr_isa(rawValue: kernels.isa.rawValue))?.pointee else { continue }
                    let acts = CheckMemory(byteCount: Int(lcr_qconv_acts_bytes(Int64(oh), Int64(ow), Int64(depth))))
                    t.qconv_acts(&g, im.floats, 0, Int64(oh), acts.base)
                    for pool in [false, true] {
                        for act in [LCR_ACT_NONE, LCR_ACT_RELU] {
                            let ph = oh / 2, pw = ow / 2
                            let ldc = pool ? ph * pw + 3 : oh * ow + 3  // padding between channel planes stays untouched
                            let y = CheckMemory.floats([Float](repeating: 9, count: n * ldc))
                            t.qconv_gemm(packed.base, Int64(n), Int64(depth), acts.base, Int64(oh), Int64(ow), bm.floats, y.floats,
                                         Int64(ldc), act, pool ? 1 : 0)
                            var worst: Float = 0, bad = 0, untouched = true
                            for ch in 0..<n {
                                let outH = pool ? ph : oh, outW = pool ? pw : ow
                                for oy in 0..<outH {
                                    for ox in 0..<outW {
                                        var best = -Float.infinity, mag: Float = 0
                                        for (dy, dx) in (pool ? [(0, 0), (0, 1), (1, 0), (1, 1)] : [(0, 0)]) {
                                            let p = pool ? (2 * oy + dy) * ow + 2 * ox + dx : oy * ow + ox
                                            best = max(best, refValue[ch * oh * ow + p])
                                            mag = max(mag, refMagnitude[ch * oh * ow + p])
                                        }
                                        var e = best + bias[ch]
                                        if act == LCR_ACT_RELU && !(e > 0) { e = 0 }
                                        let got = y.floats[ch * ldc + oy * outW + ox]
                                        let err = abs(got - e)
                                        worst = max(worst, err)
                                        if !(err <= 1e-5 * mag + 1e-6) { bad += 1 }
                                    }
                                }
                                for i in (outH * outW)..<ldc where y.floats[ch * ldc + i] != 9 { untouched = false }
                            }
                            c.expect(bad == 0, kernels.isaName + " qconv_gemm " + type.name + " " + directLabel(g) + " n " + String(n)
                                     + (pool ? " pooled" : "") + (act == LCR_ACT_RELU ? " relu" : "") + ": " + String(bad)
                                     + " outputs off, worst " + show(worst))
                            c.expect(untouched, kernels.isaName + " qconv_gemm writes only the output plane of each channel")
                        }
                    }
                }
            }
        }
    },
    Check("Inference/DirectKernels", "qgemv matches the naive block product in every table: q8_0 / q4_0, 1 to 37 and 128 outputs, one and three rows, bias and relu") { c in
        var rng = SplitMix64(seed: 83)
        for (n, k, rows) in [(1, 32, 1), (10, 128, 1), (37, 96, 3), (128, 3136, 1), (17, 64, 2)] {
            let xs = rng.floats(rows * k, -2, 2)
            let xm = CheckMemory.floats(xs)
            var xq: [UInt8] = []
            for r in 0..<rows { xq += naiveQuantizeQ8_0(Array(xs[(r * k)..<((r + 1) * k)])) }
            let xqm = CheckMemory(byteCount: xq.count)
            for (j, v) in xq.enumerated() { xqm.bytes[j] = v }
            let x = naiveDecode(xqm.bytes, .q8_0, rows * k)
            let bias = rng.floats(n, -0.5, 0.5)
            let bm = CheckMemory.floats(bias)
            for type in [ElementType.q8_0, .q4_0] {
                let wf = rng.floats(n * k)
                let q = CheckMemory.of(type, n * k)
                for r in 0..<n {
                    let bytes = type == .q8_0 ? naiveQuantizeQ8_0(Array(wf[(r * k)..<((r + 1) * k)]))
                                              : naiveQuantizeQ4_0(Array(wf[(r * k)..<((r + 1) * k)]))
                    for (j, v) in bytes.enumerated() { q.bytes[r * bytes.count + j] = v }
                }
                let w = naiveDecode(q.bytes, type, n * k)
                let packed = CheckMemory(byteCount: Int(lcr_qgemv_weights_bytes(Int64(n), Int64(k))))
                lcr_qgemv_pack_weights(q.base, type == .q4_0 ? 1 : 0, Int64(n), Int64(k), packed.base)
                for kernels in supportedKernels {
                    guard let t = lcr_kernels_for(lcr_isa(rawValue: kernels.isa.rawValue))?.pointee else { continue }
                    let scratch = CheckMemory(byteCount: Int(lcr_qgemv_scratch_bytes(Int64(k))))
                    for act in [LCR_ACT_NONE, LCR_ACT_RELU] {
                        let ldy = n + 2
                        let y = CheckMemory.floats([Float](repeating: 9, count: rows * ldy))
                        t.qgemv(packed.base, xm.floats, y.floats, bm.floats, Int64(rows), Int64(n), Int64(k), Int64(ldy), act, scratch.base)
                        var bad = 0, worst: Float = 0, untouched = true
                        for r in 0..<rows {
                            for i in 0..<n {
                                let ref = naiveQuantizedDot(w, i, x, r, k)
                                var e = ref.value + bias[i]
                                if act == LCR_ACT_RELU && !(e > 0) { e = 0 }
                                let err = abs(y.floats[r * ldy + i] - e)
                                worst = max(worst, err)
                                if !(err <= 1e-5 * ref.magnitude + 1e-6) { bad += 1 }
                            }
                            for i in n..<ldy where y.floats[r * ldy + i] != 9 { untouched = false }
                        }
                        c.expect(bad == 0, kernels.isaName + " qgemv " + type.name + " n " + String(n) + " k " + String(k) + " rows " + String(rows)
                                 + ": " + String(bad) + " outputs off, worst " + show(worst))
                        c.expect(untouched, kernels.isaName + " qgemv writes only n outputs per row")
                    }
                }
            }
        }
    },
    Check("Inference/DirectKernels", "conv_f32_direct (plain and with the 2x2 max pool, relu or none, padding, dilation, odd sizes, widths past 32) matches the naive convolution in every table") { c in
        var rng = SplitMix64(seed: 84)
        for (ch, h, w, k, pad, dil, n) in [(1, 28, 28, 3, 1, 1, 32), (2, 7, 9, 3, 1, 1, 5), (3, 6, 40, 2, 1, 2, 7), (1, 5, 5, 5, 2, 1, 3),
                                           (2, 9, 33, 1, 0, 1, 9)] {
            var g = lcr_conv_geometry(channels: Int64(ch), height: Int64(h), width: Int64(w), kernel_h: Int64(k), kernel_w: Int64(k),
                                      stride_h: 1, stride_w: 1, pad_h: Int64(pad), pad_w: Int64(pad), dilation_h: Int64(dil),
                                      dilation_w: Int64(dil))
            let oh = Int(lcr_conv_out_h(&g)), ow = Int(lcr_conv_out_w(&g)), depth = ch * k * k
            let img = rng.floats(ch * h * w), weights = rng.floats(n * depth), bias = rng.floats(n, -0.5, 0.5)
            let im = CheckMemory.floats(img), wm = CheckMemory.floats(weights), bm = CheckMemory.floats(bias)
            // The naive sums and their magnitudes, once for all tables.
            var value = [Float](repeating: 0, count: n * oh * ow), magnitude = value
            for o in 0..<n {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var s = 0.0, m = 0.0
                        for ci in 0..<ch {
                            for ky in 0..<k {
                                for kx in 0..<k {
                                    let iy = oy - pad + ky * dil, ix = ox - pad + kx * dil
                                    if iy < 0 || iy >= h || ix < 0 || ix >= w { continue }
                                    let term = Double(weights[o * depth + (ci * k + ky) * k + kx]) * Double(img[(ci * h + iy) * w + ix])
                                    s += term
                                    m += abs(term)
                                }
                            }
                        }
                        value[(o * oh + oy) * ow + ox] = Float(s)
                        magnitude[(o * oh + oy) * ow + ox] = Float(m)
                    }
                }
            }
            for kernels in supportedKernels {
                guard let t = lcr_kernels_for(lcr_isa(rawValue: kernels.isa.rawValue))?.pointee else { continue }
                for pool in [false, true] {
                    for act in [LCR_ACT_NONE, LCR_ACT_RELU] {
                        let outH = pool ? oh / 2 : oh, outW = pool ? ow / 2 : ow, count = n * outH * outW
                        let y = CheckMemory.floats([Float](repeating: 9, count: count + 16))
                        t.conv_f32_direct(&g, im.floats, wm.floats, bm.floats, Int64(n), y.floats, act, pool ? 1 : 0)
                        var bad = 0, worst: Float = 0, untouched = true
                        for o in 0..<n {
                            for oy in 0..<outH {
                                for ox in 0..<outW {
                                    var best = -Float.infinity, mag: Float = 0
                                    for (dy, dx) in (pool ? [(0, 0), (0, 1), (1, 0), (1, 1)] : [(0, 0)]) {
                                        let p = (o * oh + (pool ? 2 * oy + dy : oy)) * ow + (pool ? 2 * ox + dx : ox)
                                        best = max(best, value[p])
                                        mag = max(mag, magnitude[p])
                                    }
                                    var e = best + bias[o]
                                    if act == LCR_ACT_RELU && !(e > 0) { e = 0 }
                                    let err = abs(y.floats[(o * outH + oy) * outW + ox] - e)
                                    worst = max(worst, err)
                                    if !(err <= 1e-5 * mag + 1e-6) { bad += 1 }
                                }
                            }
                        }
                        for i in count..<(count + 16) where y.floats[i] != 9 { untouched = false }
                        c.expect(bad == 0, kernels.isaName + " conv_f32_direct " + String(ch) + "x" + String(h) + "x" + String(w) + " k" + String(k)
                                 + " n " + String(n) + (pool ? " pooled" : "") + (act == LCR_ACT_RELU ? " relu" : "") + ": " + String(bad)
                                 + " outputs off, worst " + show(worst))
                        c.expect(untouched, kernels.isaName + " conv_f32_direct writes nothing past its output")
                    }
                }
            }
        }
    },
]

// MARK: - Support

/// Stride-1-along-the-width geometries with whole Q8_0 blocks per position.
func directCheckGeometries() -> [lcr_conv_geometry] {
    func g(_ ch: Int, _ h: Int, _ w: Int, _ kh: Int, _ kw: Int, pad: Int, dil: Int = 1, sh: Int = 1) -> lcr_conv_geometry {
        lcr_conv_geometry(channels: Int64(ch), height: Int64(h), width: Int64(w), kernel_h: Int64(kh), kernel_w: Int64(kw),
                          stride_h: Int64(sh), stride_w: 1, pad_h: Int64(pad), pad_w: Int64(pad), dilation_h: Int64(dil),
                          dilation_w: Int64(dil))
    }
    return [
        g(32, 14, 14, 3, 3, pad: 1),        // the shipped CNN's conv2
        g(8, 5, 7, 2, 2, pad: 1),           // odd output 6 x 8
        g(4, 9, 19, 2, 4, pad: 2, dil: 2),  // dilated, output 9 x 17: two lane chunks
        g(4, 8, 37, 2, 4, pad: 1, sh: 2),   // row stride 2, output 4 x 36
        g(2, 3, 40, 1, 16, pad: 0),         // one row of 16 taps (the widest kernel the direct path takes)
        g(16, 7, 9, 2, 2, pad: 0),          // depth 64, output 6 x 8
    ]
}

/// Random values, with exact rounding ties in the first geometry's even channels: 127 sets the
/// block scale to 1 wherever it appears, and the halves then land exactly between two codes.
func directCheckImage(_ rng: inout SplitMix64, _ g: lcr_conv_geometry) -> [Float] {
    let plane = Int(g.height * g.width)
    var img = rng.floats(Int(g.channels) * plane, -1.5, 1.5)
    if g.channels == 32 {
        let ties: [Float] = [127, 2.5, -3.5, 0.5, -0.5, 1.5, -126.5, 0]
        for ch in stride(from: 0, to: 32, by: 2) {
            for i in 0..<plane { img[ch * plane + i] = ties[(i * 7 + ch) % ties.count] }
        }
    }
    return img
}

func directLabel(_ g: lcr_conv_geometry) -> String {
    String(g.channels) + "x" + String(g.height) + "x" + String(g.width) + " k" + String(g.kernel_h) + "x" + String(g.kernel_w)
        + " p" + String(g.pad_h) + " d" + String(g.dilation_h) + " s" + String(g.stride_h)
}

/// The im2row row of output (oy, ox) by direct indexing, in the weights' (c, ky, kx) order.
func directIm2row(_ g: lcr_conv_geometry, _ img: [Float], _ oy: Int, _ ox: Int) -> [Float] {
    var row: [Float] = []
    for ch in 0..<Int(g.channels) {
        for ky in 0..<Int(g.kernel_h) {
            for kx in 0..<Int(g.kernel_w) {
                let iy = oy * Int(g.stride_h) - Int(g.pad_h) + ky * Int(g.dilation_h)
                let ix = ox * Int(g.stride_w) - Int(g.pad_w) + kx * Int(g.dilation_w)
                let inside = iy >= 0 && iy < Int(g.height) && ix >= 0 && ix < Int(g.width)
                row.append(inside ? img[(ch * Int(g.height) + iy) * Int(g.width) + ix] : 0)
            }
        }
    }
    return row
}

/// Every position's im2row row quantized by the naive Q8_0 reference, positions in order.
func directReferenceRows(_ g: lcr_conv_geometry, _ img: [Float]) -> CheckMemory {
    var geometry = g
    let oh = Int(lcr_conv_out_h(&geometry)), ow = Int(lcr_conv_out_w(&geometry))
    var bytes: [UInt8] = []
    for oy in 0..<oh {
        for ox in 0..<ow { bytes += naiveQuantizeQ8_0(directIm2row(g, img, oy, ox)) }
    }
    let m = CheckMemory(byteCount: bytes.count)
    for (i, v) in bytes.enumerated() { m.bytes[i] = v }
    return m
}

/// Bytes and scales of a qconv_acts panel (rows oy0 ..< oy1) that differ from the reference,
/// unused lanes (code 128, scale 0) included.
func directActsMismatches(_ g: lcr_conv_geometry, _ reference: CheckMemory, _ acts: CheckMemory, _ oy0: Int, _ oy1: Int) -> Int {
    var geometry = g
    let ow = Int(lcr_conv_out_w(&geometry)), lanes = Int(lcr_qconv_lanes(Int64(ow)))
    let depth = Int(g.channels * g.kernel_h * g.kernel_w), nb = depth / 32, slots = (oy1 - oy0) * lanes
    let scales = (acts.base + slots * depth).assumingMemoryBound(to: Float.self)
    var bad = 0
    for oy in oy0..<oy1 {
        for x in 0..<lanes {
            let s = (oy - oy0) * lanes + x
            for b in 0..<nb {
                // Lanes past the row hold a zero block: scale 0, codes 0 (128 stored).
                let o = (oy * ow + x) * nb * 34 + b * 34
                let lo: UInt8 = x < ow ? reference.bytes[o] : 0, hi: UInt8 = x < ow ? reference.bytes[o + 1] : 0
                let d = naiveHalfToFloat(UInt16(lo) | UInt16(hi) << 8)
                if scales[b * slots + s].bitPattern != d.bitPattern { bad += 1 }
                for i in 0..<32 {
                    let code: UInt8 = x < ow ? reference.bytes[o + 2 + i] : 0
                    let at = (((b * (slots / 16) + s / 16) * 8 + i / 4) * 16 + s % 16) * 4 + i % 4
                    if acts.bytes[at] != code ^ 0x80 { bad += 1 }
                }
            }
        }
    }
    return bad
}
