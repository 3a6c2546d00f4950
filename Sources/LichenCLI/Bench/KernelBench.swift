import CRuntime

/// One measured kernel: what ran, on which instruction set, and how fast.
struct KernelResult {
    var kernel: String
    var shape: String
    var isa: String
    var seconds: Double          // median seconds per call
    var repeats: Int
    var rate: Double             // in `unit`
    var unit: String             // "GFLOP/s" or "GB/s"
    var baseline: String? = nil  // what `ratio` compares against
    var ratio: Double? = nil

    var json: JSON {
        var pairs: [(String, JSON)] = [
            ("kernel", .string(kernel)), ("shape", .string(shape)), ("isa", .string(isa)),
            ("seconds", .number(seconds)), ("repeats", .int(repeats)),
            ("rate", .number(rate)), ("unit", .string(unit)),
        ]
        if let baseline, let ratio {
            pairs.append(("baseline", .string(baseline)))
            pairs.append(("ratio", .number(ratio)))
        }
        return .object(pairs)
    }
}

/// A buffer of floats filled from a seeded generator (benchmark data, not a hot path).
final class FloatBuffer {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(count: Int, seed: UInt64, range: Float = 1) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        var s = seed
        for i in 0..<count {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            pointer[i] = (Float(s >> 40) / Float(1 << 24) * 2 - 1) * range
        }
    }

    deinit { pointer.deallocate() }
}

/// Raw bytes for quantized weights and scratch.
final class ByteBuffer {
    let count: Int
    let pointer: UnsafeMutableRawPointer

    init(count: Int) {
        self.count = count
        pointer = .allocate(byteCount: max(count, 1), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }
}

/// `lichen bench kernels`: every kernel family at the shapes a robot model has, portable vs SIMD,
/// with BLIS sgemm and a read-bandwidth probe as the baselines, in one run.
struct KernelBench {
    /// (batch n, inputs k, outputs m)
    static let gemmShapes: [(Int, Int, Int)] = [(1, 784, 256), (32, 3136, 128), (256, 256, 256), (1024, 1024, 1024)]
    static let quickGemmShapes: [(Int, Int, Int)] = [(1, 784, 256), (32, 3136, 128), (256, 256, 256)]

    /// The groups `--only` selects; the read-bandwidth probe runs in every case.
    enum Family: String, CaseIterable {
        case gemm      // sgemm, sgemv, quantized GEMM and gemm_t at the model shapes
        case gemv      // batch-1 products at 8192x8192, each alternated with the probe
        case row       // quantize, dequantize, dot, elementwise, softmax, channel stats
        case im2col    // im2col / col2im
    }

    /// Every instruction set name CRuntime knows (supported on this CPU or not).
    static var isaNames: [String] {
        (0..<Int(LCR_ISA_COUNT.rawValue)).map { String(cString: lcr_isa_name(lcr_isa(rawValue: UInt32($0)))) }
    }

    var minSeconds: Double
    var quick: Bool
    var families: Set<Family>
    var tables: [UnsafePointer<lcr_kernel_table>]
    var progress: (String) -> Void

    init(minSeconds: Double, quick: Bool, isaNames: [String]?, families: Set<Family> = Set(Family.allCases),
         progress: @escaping (String) -> Void) throws {
        self.minSeconds = minSeconds
        self.quick = quick
        self.families = families
        self.progress = progress
        var tables: [UnsafePointer<lcr_kernel_table>] = []
        for raw in 0..<Int(LCR_ISA_COUNT.rawValue) {
            let isa = lcr_isa(rawValue: UInt32(raw))
            guard let table = lcr_kernels_for(isa) else { continue }
            let name = String(cString: lcr_isa_name(isa))
            if let isaNames, !isaNames.contains(name) { continue }
            tables.append(table)
        }
        self.tables = tables
    }

    func isaName(_ t: UnsafePointer<lcr_kernel_table>) -> String { String(cString: lcr_isa_name(t.pointee.isa)) }

    func run() -> [KernelResult] {
        var results: [KernelResult] = []
        let probeBuffer = FloatBuffer(count: Self.probeCount(quick: quick), seed: 1)
        let probe = bandwidthProbe(probeBuffer)
        results.append(probe)
        if families.contains(.gemm) {
            for (n, k, m) in quick ? Self.quickGemmShapes : Self.gemmShapes {
                results += gemm(n: n, k: k, m: m)
            }
        }
        if families.contains(.gemv) { results += gemv(m: quick ? 4096 : 8192, k: quick ? 4096 : 8192, probe: probeBuffer) }
        if families.contains(.row) { results += rowKernels(count: 1 << 20) }
        if families.contains(.im2col) { results += im2col() }
        return results
    }

    /// Sums a buffer far larger than the caches: the machine's read bandwidth from one core.
    static func probeCount(quick: Bool) -> Int { ((quick ? 64 : 256) << 20) / 4 }

    func bandwidthProbe(_ x: FloatBuffer) -> KernelResult {
        let count = x.count
        progress("bandwidth probe (\((count * 4) >> 20) MiB)")
        var sink: Float = 0
        let t = measure(minSeconds: minSeconds) { sink += lcr_read_bandwidth_probe(x.pointer, Int64(count)) }
        if sink.isNaN { progress("") }
        return KernelResult(kernel: "read bandwidth probe", shape: "\((count * 4) >> 20) MiB", isa: "best",
                            seconds: t.seconds, repeats: t.repeats, rate: Double(count * 4) / t.seconds / 1e9, unit: "GB/s")
    }

    func gemm(n: Int, k: Int, m: Int) -> [KernelResult] {
        let shape = "\(n)x\(k)x\(m)"
        progress("gemm \(shape)")
        let flops = 2.0 * Double(n) * Double(k) * Double(m)
        let x = FloatBuffer(count: n * k, seed: 2)
        let w = FloatBuffer(count: m * k, seed: 3, range: 0.1)
        let y = FloatBuffer(count: n * m, seed: 4)
        var results: [KernelResult] = []

        let blis = measure(minSeconds: minSeconds) {
            lcr_sgemm_blis(0, 1, Int64(n), Int64(m), Int64(k), 1, x.pointer, Int64(k), w.pointer, Int64(k), 0, y.pointer, Int64(m))
        }
        let blisRate = flops / blis.seconds / 1e9
        results.append(KernelResult(kernel: "sgemm (BLIS)", shape: shape, isa: "blis", seconds: blis.seconds,
                                    repeats: blis.repeats, rate: blisRate, unit: "GFLOP/s"))
        if n == 1 {
            // The batch-1 path: lcr_sgemm sends one row to the table's sgemv.
            for table in tables {
                let r = measure(minSeconds: minSeconds) {
                    table.pointee.sgemv(w.pointer, x.pointer, y.pointer, Int64(m), Int64(k), Int64(k), 1, 0)
                }
                results.append(KernelResult(kernel: "sgemv f32", shape: shape, isa: isaName(table), seconds: r.seconds,
                                            repeats: r.repeats, rate: flops / r.seconds / 1e9, unit: "GFLOP/s",
                                            baseline: "sgemm (BLIS)", ratio: blis.seconds / r.seconds))
            }
        }
        guard k % 32 == 0 else {
            progress("  q8_0/q4_0 skipped at \(shape): k = \(k) is not a multiple of 32 (such layers stay f32)")
            return results
        }
        let q8 = ByteBuffer(count: m * Int(lcr_q8_0_row_bytes(Int64(k))))
        let q4 = ByteBuffer(count: m * Int(lcr_q4_0_row_bytes(Int64(k))))
        let scratch = ByteBuffer(count: Int(lcr_gemm_q_scratch_bytes(Int64(n), Int64(m), Int64(k))))
        let best = lcr_kernels_best()!
        for row in 0..<m {
            best.pointee.quantize_row_q8_0(w.pointer + row * k,
                                           (q8.pointer + row * Int(lcr_q8_0_row_bytes(Int64(k)))).assumingMemoryBound(to: lcr_block_q8_0.self), Int64(k))
            best.pointee.quantize_row_q4_0(w.pointer + row * k,
                                           (q4.pointer + row * Int(lcr_q4_0_row_bytes(Int64(k)))).assumingMemoryBound(to: lcr_block_q4_0.self), Int64(k))
        }
        for table in tables {
            let isa = isaName(table)
            let r8 = measure(minSeconds: minSeconds) {
                table.pointee.gemm_q8_0(q8.pointer.assumingMemoryBound(to: lcr_block_q8_0.self), x.pointer, y.pointer, nil,
                                        Int64(n), Int64(m), Int64(k), Int64(m), scratch.pointer)
            }
            results.append(KernelResult(kernel: "gemm q8_0 x q8_0", shape: shape, isa: isa, seconds: r8.seconds, repeats: r8.repeats,
                                        rate: flops / r8.seconds / 1e9, unit: "GFLOP/s",
                                        baseline: "sgemm (BLIS)", ratio: blis.seconds / r8.seconds))
            let r4 = measure(minSeconds: minSeconds) {
                table.pointee.gemm_q4_0(q4.pointer.assumingMemoryBound(to: lcr_block_q4_0.self), x.pointer, y.pointer, nil,
                                        Int64(n), Int64(m), Int64(k), Int64(m), scratch.pointer)
            }
            results.append(KernelResult(kernel: "gemm q4_0 x q8_0", shape: shape, isa: isa, seconds: r4.seconds, repeats: r4.repeats,
                                        rate: flops / r4.seconds / 1e9, unit: "GFLOP/s",
                                        baseline: "sgemm (BLIS)", ratio: blis.seconds / r4.seconds))
            // Backprop through the frozen weight: dx[n, k] = dy[n, m] . W[m, k].
            let dx = FloatBuffer(count: n * k, seed: 5)
            let rt = measure(minSeconds: minSeconds) {
                table.pointee.gemm_t_q8_0(q8.pointer.assumingMemoryBound(to: lcr_block_q8_0.self), y.pointer, dx.pointer,
                                          Int64(n), Int64(m), Int64(k), Int64(m), Int64(k), 0)
            }
            results.append(KernelResult(kernel: "gemm_t q8_0 (backprop dx)", shape: shape, isa: isa, seconds: rt.seconds,
                                        repeats: rt.repeats, rate: flops / rt.seconds / 1e9, unit: "GFLOP/s",
                                        baseline: "sgemm (BLIS)", ratio: blis.seconds / rt.seconds))
        }
        return results
    }

    /// Batch-1 matrix x vector at a size far beyond the caches: bandwidth-bound, so rates are
    /// weight bytes read per second, compared with the probe.
    func gemv(m: Int, k: Int, probe: FloatBuffer) -> [KernelResult] {
        let shape = "1x\(k)x\(m)"
        progress("gemv \(shape), each timed alternately with the bandwidth probe")
        var results: [KernelResult] = []
        let x = FloatBuffer(count: k, seed: 6)
        let y = FloatBuffer(count: m, seed: 7)
        let scratch = ByteBuffer(count: Int(lcr_gemm_q_scratch_bytes(1, Int64(m), Int64(k))))
        let probeBytes = Double(probe.count * 4)
        var sink: Float = 0
        let probeBody = { sink += lcr_read_bandwidth_probe(probe.pointer, Int64(probe.count)) }
        /// One result: `body` reads `bytes` of weights; its rate over the probe's, timed alternately.
        func compare(_ kernel: String, _ isa: String, bytes: Double, _ body: () -> Void) -> KernelResult {
            let t = measureAlternating(minSeconds: minSeconds, probeBody, body)
            let rate = bytes / t.b / 1e9
            return KernelResult(kernel: kernel, shape: shape, isa: isa, seconds: t.b, repeats: t.repeats, rate: rate,
                                unit: "GB/s", baseline: "read bandwidth probe (same run, alternating)",
                                ratio: rate / (probeBytes / t.a / 1e9))
        }
        let w = FloatBuffer(count: m * k, seed: 8, range: 0.1)
        let bytes = Double(m * k * 4)
        results.append(compare("gemv f32 via BLIS sgemm", "blis", bytes: bytes) {
            lcr_sgemm_blis(0, 1, 1, Int64(m), Int64(k), 1, x.pointer, Int64(k), w.pointer, Int64(k), 0, y.pointer, Int64(m))
        })
        for table in tables {
            results.append(compare("sgemv f32", isaName(table), bytes: bytes) {
                table.pointee.sgemv(w.pointer, x.pointer, y.pointer, Int64(m), Int64(k), Int64(k), 1, 0)
            })
        }
        let rowBytes8 = Int(lcr_q8_0_row_bytes(Int64(k))), rowBytes4 = Int(lcr_q4_0_row_bytes(Int64(k)))
        let q8 = ByteBuffer(count: m * rowBytes8)
        let q4 = ByteBuffer(count: m * rowBytes4)
        let best = lcr_kernels_best()!
        for row in 0..<m {
            best.pointee.quantize_row_q8_0(w.pointer + row * k, (q8.pointer + row * rowBytes8).assumingMemoryBound(to: lcr_block_q8_0.self), Int64(k))
            best.pointee.quantize_row_q4_0(w.pointer + row * k, (q4.pointer + row * rowBytes4).assumingMemoryBound(to: lcr_block_q4_0.self), Int64(k))
        }
        for table in tables {
            results.append(compare("gemv q8_0", isaName(table), bytes: Double(m * rowBytes8)) {
                table.pointee.gemm_q8_0(q8.pointer.assumingMemoryBound(to: lcr_block_q8_0.self), x.pointer, y.pointer, nil,
                                        1, Int64(m), Int64(k), Int64(m), scratch.pointer)
            })
            results.append(compare("gemv q4_0", isaName(table), bytes: Double(m * rowBytes4)) {
                table.pointee.gemm_q4_0(q4.pointer.assumingMemoryBound(to: lcr_block_q4_0.self), x.pointer, y.pointer, nil,
                                        1, Int64(m), Int64(k), Int64(m), scratch.pointer)
            })
        }
        if sink.isNaN { progress("") }
        return results
    }

    /// Row and elementwise kernels over `count` floats; rates are bytes touched per second.
    func rowKernels(count: Int) -> [KernelResult] {
        progress("row kernels (\(count) values)")
        let shape = "\(count)"
        let x = FloatBuffer(count: count, seed: 9)
        let z = FloatBuffer(count: count, seed: 10)
        let y = FloatBuffer(count: count, seed: 11)
        let q8 = ByteBuffer(count: Int(lcr_q8_0_row_bytes(Int64(count))))
        let q8b = ByteBuffer(count: Int(lcr_q8_0_row_bytes(Int64(count))))
        let q4 = ByteBuffer(count: Int(lcr_q4_0_row_bytes(Int64(count))))
        var results: [KernelResult] = []
        var portable: [String: Double] = [:]
        for table in tables {
            let t = table.pointee
            let isa = isaName(table)
            let n = Int64(count)
            let p8 = q8.pointer.assumingMemoryBound(to: lcr_block_q8_0.self)
            let p8b = q8b.pointer.assumingMemoryBound(to: lcr_block_q8_0.self)
            let p4 = q4.pointer.assumingMemoryBound(to: lcr_block_q4_0.self)
            t.quantize_row_q8_0(z.pointer, p8b, n)
            var sink: Float = 0
            let cases: [(String, Double, () -> Void)] = [
                ("quantize q8_0", Double(count * 4), { t.quantize_row_q8_0(x.pointer, p8, n) }),
                ("quantize q4_0", Double(count * 4), { t.quantize_row_q4_0(x.pointer, p4, n) }),
                ("dequantize q8_0", Double(count * 4), { t.dequantize_row_q8_0(p8, y.pointer, n) }),
                ("dequantize q4_0", Double(count * 4), { t.dequantize_row_q4_0(p4, y.pointer, n) }),
                ("dot q8_0 x q8_0", Double(q8.count * 2), { sink += t.dot_q8_0_q8_0(p8, p8b, n) }),
                ("dot q4_0 x q8_0", Double(q4.count + q8.count), { sink += t.dot_q4_0_q8_0(p4, p8b, n) }),
                ("add", Double(count * 12), { t.add(x.pointer, z.pointer, y.pointer, n) }),
                ("axpy", Double(count * 12), { t.axpy(0.5, x.pointer, y.pointer, n) }),
                ("relu", Double(count * 8), { t.relu(x.pointer, y.pointer, n) }),
                ("dot f32", Double(count * 8), { sink += t.dot(x.pointer, z.pointer, n) }),
                ("softmax rows of 10", Double(count * 8), { t.softmax_rows(x.pointer, y.pointer, n / 10, 10) }),
                ("log-softmax rows of 10", Double(count * 8), { t.log_softmax_rows(x.pointer, y.pointer, n / 10, 10) }),
                ("channel stats 32x32x1024", Double(count * 4), { t.channel_stats(x.pointer, 32, 32, n / 1024, y.pointer, y.pointer + 32, y.pointer + 64) }),
            ]
            for (name, bytes, body) in cases {
                let r = measure(minSeconds: minSeconds / 3, body)
                let rate = bytes / r.seconds / 1e9
                var result = KernelResult(kernel: name, shape: shape, isa: isa, seconds: r.seconds, repeats: r.repeats,
                                          rate: rate, unit: "GB/s")
                if t.isa == LCR_ISA_PORTABLE {
                    portable[name] = r.seconds
                } else if let p = portable[name] {
                    result.baseline = "portable"
                    result.ratio = p / r.seconds
                }
                results.append(result)
            }
            if sink.isNaN { progress("") }
        }
        return results
    }

    /// im2col of a 32-channel 28x28 image with a 3x3 kernel, stride 1, padding 1.
    func im2col() -> [KernelResult] {
        var g = lcr_conv_geometry(channels: 32, height: 28, width: 28, kernel_h: 3, kernel_w: 3, stride_h: 1, stride_w: 1,
                                  pad_h: 1, pad_w: 1, dilation_h: 1, dilation_w: 1)
        let oh = Int(lcr_conv_out_h(&g)), ow = Int(lcr_conv_out_w(&g))
        let img = FloatBuffer(count: 32 * 28 * 28, seed: 12)
        let col = FloatBuffer(count: 32 * 9 * oh * ow, seed: 13)
        let r = measure(minSeconds: minSeconds / 3) { lcr_im2col(&g, img.pointer, col.pointer) }
        let back = measure(minSeconds: minSeconds / 3) { lcr_col2im(&g, col.pointer, img.pointer) }
        let bytes = Double(col.count * 4)
        return [
            KernelResult(kernel: "im2col 3x3 s1 p1", shape: "32x28x28", isa: "portable", seconds: r.seconds, repeats: r.repeats,
                         rate: bytes / r.seconds / 1e9, unit: "GB/s"),
            KernelResult(kernel: "col2im 3x3 s1 p1", shape: "32x28x28", isa: "portable", seconds: back.seconds,
                         repeats: back.repeats, rate: bytes / back.seconds / 1e9, unit: "GB/s"),
        ]
    }
}
