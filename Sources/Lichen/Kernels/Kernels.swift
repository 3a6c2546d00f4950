import CRuntime

/// Lichen's compute kernels for one instruction set: a checked Swift face over CRuntime's
/// `lcr_kernel_table`.
///
/// Every method validates its operands (element types, shapes, buffer sizes) and throws a
/// `LichenError` naming the operand before any C code runs; the C kernels then trust their
/// arguments. Views are row-major and contiguous (`TensorView`'s layout); a matrix operand is
/// read as `[rowCount, shape.last]`, so a rank-1 view is one row.
///
/// Quantized formats are ggml's Q8_0 and Q4_0, byte for byte. Integer parts (codes, int32
/// block sums) are identical in every table; float sums may differ in the last bits between
/// tables because SIMD tables add in a different order.
public struct Kernels {
    let table: UnsafePointer<lcr_kernel_table>

    /// The instruction set of this table.
    public let isa: KernelISA

    /// The fastest table the running CPU supports (chosen once, from CPUID / AT_HWCAP).
    /// The corresponding C function is `lcr_kernels_best`.
    public static var best: Kernels {
        let isa = KernelISA(rawValue: lcr_isa_best().rawValue) ?? .portable
        if let kernels = Kernels(isa: isa) { return kernels }
        if let kernels = Kernels(isa: .portable) { return kernels }
        // lcr_kernels_for(LCR_ISA_PORTABLE) is never NULL: reaching this is a bug in CRuntime, not input
        fatalError("CRuntime returned no portable kernel table")
    }

    /// The table of `isa`, or nil when the CPU or this build does not support it.
    /// The corresponding C function is `lcr_kernels_for`.
    public init?(isa: KernelISA) {
        guard let t = lcr_kernels_for(lcr_isa(rawValue: isa.rawValue)) else { return nil }
        self.init(table: t, isa: isa)
    }

    init(table: UnsafePointer<lcr_kernel_table>, isa: KernelISA) {
        self.table = table
        self.isa = isa
    }

    /// Not API, for checks: `base`'s table copied into `storage` with `qconv_native` set, so
    /// `InferenceModel` takes the direct methods (packed weights, fused pools) with that table's
    /// bodies, portable ones included, on any CPU: the packed layouts can then be checked where
    /// no table is native. `storage` must stay valid while the returned value is used.
    public static func _forcingDirectMethods(_ base: Kernels, storage: UnsafeMutablePointer<lcr_kernel_table>) -> Kernels {
        storage.initialize(to: base.table.pointee)
        storage.pointee.qconv_native = 1
        return Kernels(table: UnsafePointer(storage), isa: base.isa)
    }

    /// "portable", "avx2", "avx512vnni", "neon" or "neon-dotprod".
    public var isaName: String { isa.name }

    // MARK: - Scratch

    /// Bytes of scratch `gemm(weights:input:bias:output:scratch:)` needs for `n` input rows,
    /// `m` weight rows and `k` values per row (the same for every table).
    ///
    /// - Throws: `.invalidArgument` for negative sizes or a `k` that is not a multiple of 32.
    public static func gemmScratchByteCount(rows n: Int, outputs m: Int, depth k: Int) throws(LichenError) -> Int {
        guard n >= 0 else { throw .invalidArgument(name: "rows", value: n, reason: "must be >= 0") }
        guard m >= 0 else { throw .invalidArgument(name: "outputs", value: m, reason: "must be >= 0") }
        guard k >= 0, k % 32 == 0 else { throw .invalidArgument(name: "depth", value: k, reason: "must be a multiple of 32") }
        return Int(lcr_gemm_q_scratch_bytes(Int64(n), Int64(m), Int64(k)))
    }

    // MARK: - Validation helpers

    @inline(__always)
    static func requireShape(_ view: TensorView, _ operand: StaticString, rows: Int, columns: Int) throws(LichenError) {
        let r = view.rowCount, c = view.shape.last
        guard c == columns else {
            throw .shapeMismatch(operand: operand, dimension: max(view.shape.rank - 1, 0), expected: columns, got: c)
        }
        guard r == rows else { throw .shapeMismatch(operand: operand, dimension: 0, expected: rows, got: r) }
    }

    @inline(__always)
    static func requireCount(_ view: TensorView, _ operand: StaticString, _ count: Int) throws(LichenError) {
        let n = view.shape.elementCount ?? -1
        guard n == count else { throw .shapeMismatch(operand: operand, dimension: 0, expected: count, got: n) }
    }

    @inline(__always)
    static func requireQuantized(_ view: TensorView, _ operand: StaticString) throws(LichenError) {
        guard view.type == .q8_0 || view.type == .q4_0 else {
            throw .unsupportedElementType(operand: operand, type: view.type)
        }
    }

    @inline(__always)
    static func requireScratch(_ scratch: UnsafeMutableRawBufferPointer, _ needed: Int) throws(LichenError) {
        guard scratch.count >= needed, scratch.baseAddress != nil || needed == 0 else {
            throw .bufferTooSmall(operand: "scratch", needed: needed, available: scratch.count)
        }
    }

    // MARK: - Quantization

    /// Quantizes f32 rows: `output[r] = quantize(input[r])`, ggml's reference rounding
    /// (Q8_0: `d = max|x|/127`, `q = round(x/d)`; Q4_0: `d = m/-8`, `q = min(15, trunc(x/d + 8.5))`).
    ///
    /// - Parameters:
    ///   - input: f32 `[rows, k]`, k a multiple of 32.
    ///   - output: q8_0 or q4_0 `[rows, k]`.
    /// - Throws: `.unsupportedElementType` (input not f32, output not q8_0/q4_0);
    ///   `.shapeMismatch` (shapes differ or k not a multiple of 32).
    /// - Note: Allocates nothing. The corresponding C entries are `quantize_row_q8_0/q4_0`.
    public func quantizeRows(_ input: TensorView, into output: TensorView) throws(LichenError) {
        try input.require(.f32, "input")
        try Kernels.requireQuantized(output, "output")
        let k = input.shape.last, rows = input.rowCount
        guard k % 32 == 0 else {
            throw .shapeMismatch(operand: "input", dimension: max(input.shape.rank - 1, 0), expected: (k / 32 + 1) * 32, got: k)
        }
        try Kernels.requireShape(output, "output", rows: rows, columns: k)
        let x = input.floats
        for r in 0..<rows {
            let src = x + r * k
            let dst = output.base + r * output.rowByteCount
            if output.type == .q8_0 {
                table.pointee.quantize_row_q8_0(src, dst.assumingMemoryBound(to: lcr_block_q8_0.self), Int64(k))
            } else {
                table.pointee.quantize_row_q4_0(src, dst.assumingMemoryBound(to: lcr_block_q4_0.self), Int64(k))
            }
        }
    }

    /// Dequantizes rows: `output[r, i] = d_b * q[r, i]` (Q4_0: `d_b * (q - 8)`).
    ///
    /// - Parameters:
    ///   - input: q8_0 or q4_0 `[rows, k]`.
    ///   - output: f32 `[rows, k]`.
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public func dequantizeRows(_ input: TensorView, into output: TensorView) throws(LichenError) {
        try Kernels.requireQuantized(input, "input")
        try output.require(.f32, "output")
        let k = input.shape.last, rows = input.rowCount
        try Kernels.requireShape(output, "output", rows: rows, columns: k)
        for r in 0..<rows {
            let src = UnsafeRawPointer(input.base + r * input.rowByteCount)
            let dst = output.floats + r * k
            if input.type == .q8_0 {
                table.pointee.dequantize_row_q8_0(src.assumingMemoryBound(to: lcr_block_q8_0.self), dst, Int64(k))
            } else {
                table.pointee.dequantize_row_q4_0(src.assumingMemoryBound(to: lcr_block_q4_0.self), dst, Int64(k))
            }
        }
    }

    /// Quantized dot product of one weight row and one Q8_0 activation row:
    /// `sum_b d_w[b] * d_x[b] * sum_i w_q[b, i] * x_q[b, i]` (Q4_0 weights count as `q - 8`).
    ///
    /// - Parameters:
    ///   - weights: q8_0 or q4_0 with k values (one row).
    ///   - activations: q8_0 with k values.
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public func dot(_ weights: TensorView, _ activations: TensorView) throws(LichenError) -> Float {
        try Kernels.requireQuantized(weights, "weights")
        try activations.require(.q8_0, "activations")
        let k = weights.shape.last
        try Kernels.requireShape(weights, "weights", rows: 1, columns: k)
        try Kernels.requireShape(activations, "activations", rows: 1, columns: k)
        let a = UnsafeRawPointer(activations.base).assumingMemoryBound(to: lcr_block_q8_0.self)
        if weights.type == .q8_0 {
            return table.pointee.dot_q8_0_q8_0(UnsafeRawPointer(weights.base).assumingMemoryBound(to: lcr_block_q8_0.self), a, Int64(k))
        }
        return table.pointee.dot_q4_0_q8_0(UnsafeRawPointer(weights.base).assumingMemoryBound(to: lcr_block_q4_0.self), a, Int64(k))
    }

    // MARK: - Quantized matrix products

    /// `output[n, m] = input[n, k] . weights[m, k]^T (+ bias[m])`, the input quantized to Q8_0
    /// per row on the fly (n = 1 is the GEMV).
    ///
    /// - Parameters:
    ///   - weights: q8_0 or q4_0 `[m, k]`.
    ///   - input: f32 `[n, k]`.
    ///   - bias: nil or f32 with m values.
    ///   - output: f32 `[n, m]`.
    ///   - scratch: at least `Kernels.gemmScratchByteCount(rows: n, outputs: m, depth: k)` bytes, any alignment.
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`, `.bufferTooSmall` (scratch).
    /// - Note: Allocates nothing. The corresponding C entries are `gemm_q8_0` / `gemm_q4_0`.
    public func gemm(
        weights: TensorView, input: TensorView, bias: TensorView? = nil, output: TensorView,
        scratch: UnsafeMutableRawBufferPointer
    ) throws(LichenError) {
        try Kernels.requireQuantized(weights, "weights")
        try input.require(.f32, "input")
        try output.require(.f32, "output")
        let m = weights.rowCount, k = weights.shape.last, n = input.rowCount
        try Kernels.requireShape(input, "input", rows: n, columns: k)
        try Kernels.requireShape(output, "output", rows: n, columns: m)
        var biasPointer: UnsafePointer<Float>? = nil
        if let bias {
            try bias.require(.f32, "bias")
            try Kernels.requireCount(bias, "bias", m)
            biasPointer = UnsafePointer(bias.floats)
        }
        try Kernels.requireScratch(scratch, try Kernels.gemmScratchByteCount(rows: n, outputs: m, depth: k))
        if n == 0 || m == 0 { return }
        guard let s = scratch.baseAddress else { return }
        if weights.type == .q8_0 {
            table.pointee.gemm_q8_0(
                UnsafeRawPointer(weights.base).assumingMemoryBound(to: lcr_block_q8_0.self), input.floats, output.floats,
                biasPointer, Int64(n), Int64(m), Int64(k), Int64(m), s)
        } else {
            table.pointee.gemm_q4_0(
                UnsafeRawPointer(weights.base).assumingMemoryBound(to: lcr_block_q4_0.self), input.floats, output.floats,
                biasPointer, Int64(n), Int64(m), Int64(k), Int64(m), s)
        }
    }

    /// Backprop through a frozen quantized weight: `inputGradient[n, k] (+)= outputGradient[n, m] . weights[m, k]`.
    ///
    /// - Parameters:
    ///   - weights: q8_0 or q4_0 `[m, k]`.
    ///   - outputGradient: f32 `[n, m]`.
    ///   - inputGradient: f32 `[n, k]`; overwritten, or added to when `accumulate` is true.
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing. The corresponding C entries are `gemm_t_q8_0` / `gemm_t_q4_0`.
    public func gemmTransposed(
        weights: TensorView, outputGradient: TensorView, inputGradient: TensorView, accumulate: Bool = false
    ) throws(LichenError) {
        try Kernels.requireQuantized(weights, "weights")
        try outputGradient.require(.f32, "outputGradient")
        try inputGradient.require(.f32, "inputGradient")
        let m = weights.rowCount, k = weights.shape.last, n = outputGradient.rowCount
        try Kernels.requireShape(outputGradient, "outputGradient", rows: n, columns: m)
        try Kernels.requireShape(inputGradient, "inputGradient", rows: n, columns: k)
        if n == 0 || k == 0 { return }
        if weights.type == .q8_0 {
            table.pointee.gemm_t_q8_0(
                UnsafeRawPointer(weights.base).assumingMemoryBound(to: lcr_block_q8_0.self), outputGradient.floats,
                inputGradient.floats, Int64(n), Int64(m), Int64(k), Int64(m), Int64(k), accumulate ? 1 : 0)
        } else {
            table.pointee.gemm_t_q4_0(
                UnsafeRawPointer(weights.base).assumingMemoryBound(to: lcr_block_q4_0.self), outputGradient.floats,
                inputGradient.floats, Int64(n), Int64(m), Int64(k), Int64(m), Int64(k), accumulate ? 1 : 0)
        }
    }

    // MARK: - fp32 products

    /// `c[m, n] = alpha * op(a) . op(b) + beta * c` through BLIS (one thread); `op(a)` is
    /// `a [m, k]` or, transposed, `a [k, m]` (likewise `b`). m = 1 without a transpose of `a`
    /// goes to this process's best GEMV.
    ///
    /// - Throws: `.unsupportedElementType` (not f32); `.shapeMismatch`.
    /// - Note: BLIS may allocate its packing buffers on first use of large shapes (outside the arena).
    ///   The corresponding C function is `lcr_sgemm`.
    public static func sgemm(
        _ a: TensorView, transposeA: Bool = false, _ b: TensorView, transposeB: Bool = false, into c: TensorView,
        alpha: Float = 1, beta: Float = 0
    ) throws(LichenError) {
        try a.require(.f32, "a")
        try b.require(.f32, "b")
        try c.require(.f32, "c")
        let ar = a.rowCount, ac = a.shape.last, br = b.rowCount, bc = b.shape.last
        let m = transposeA ? ac : ar, k = transposeA ? ar : ac
        let kb = transposeB ? bc : br, n = transposeB ? br : bc
        guard kb == k else {
            throw .shapeMismatch(operand: "b", dimension: transposeB ? max(b.shape.rank - 1, 0) : 0, expected: k, got: kb)
        }
        try requireShape(c, "c", rows: m, columns: n)
        if m == 0 || n == 0 { return }
        lcr_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha, a.floats, Int64(ac),
                  b.floats, Int64(bc), beta, c.floats, Int64(n))
    }

    /// `y[m] = alpha * w[m, k] . x[k] + beta * y[m]` (beta = 0 does not read y).
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing. The corresponding C entry is `sgemv`.
    public func sgemv(_ w: TensorView, _ x: TensorView, into y: TensorView, alpha: Float = 1, beta: Float = 0) throws(LichenError) {
        try w.require(.f32, "w")
        try x.require(.f32, "x")
        try y.require(.f32, "y")
        let m = w.rowCount, k = w.shape.last
        try Kernels.requireCount(x, "x", k)
        try Kernels.requireCount(y, "y", m)
        if m == 0 { return }
        table.pointee.sgemv(w.floats, x.floats, y.floats, Int64(m), Int64(k), Int64(k), alpha, beta)
    }

    // MARK: - Elementwise and reductions

    /// Binary elementwise operations.
    public enum Binary: Sendable {
        /// y = a + b
        case add
        /// y = a * b
        case multiply
    }

    /// `y = a + b` or `y = a * b`, all f32 with the same element count (y may alias a or b).
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public func elementwise(_ op: Binary, _ a: TensorView, _ b: TensorView, into y: TensorView) throws(LichenError) {
        try a.require(.f32, "a")
        try b.require(.f32, "b")
        try y.require(.f32, "y")
        let n = a.shape.elementCount ?? 0
        try Kernels.requireCount(b, "b", n)
        try Kernels.requireCount(y, "y", n)
        switch op {
        case .add: table.pointee.add(a.floats, b.floats, y.floats, Int64(n))
        case .multiply: table.pointee.mul(a.floats, b.floats, y.floats, Int64(n))
        }
    }

    /// Unary elementwise operations.
    public enum Unary: Sendable {
        /// y = s * x
        case scale(Float)
        /// y = max(x, 0)
        case relu
        /// y = x > 0 ? x : slope * x
        case leakyRelu(slope: Float)
        /// y = x > 0 ? x : e^x - 1 (ELU with alpha 1; NaN passes through), computed in f32
        /// (a few ulps from the rounded exact value; the tables may differ in the last bits).
        case elu
    }

    /// `y = op(x)`, f32 with the same element count (y may alias x).
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public func elementwise(_ op: Unary, _ x: TensorView, into y: TensorView) throws(LichenError) {
        try x.require(.f32, "x")
        try y.require(.f32, "y")
        let n = x.shape.elementCount ?? 0
        try Kernels.requireCount(y, "y", n)
        switch op {
        case .scale(let s): table.pointee.scale(x.floats, s, y.floats, Int64(n))
        case .relu: table.pointee.relu(x.floats, y.floats, Int64(n))
        case .leakyRelu(let slope): table.pointee.leaky_relu(x.floats, slope, y.floats, Int64(n))
        case .elu: table.pointee.elu(x.floats, y.floats, Int64(n))
        }
    }

    /// `y += alpha * x` (f32, same element count).
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public func axpy(_ alpha: Float, _ x: TensorView, _ y: TensorView) throws(LichenError) {
        try x.require(.f32, "x")
        try y.require(.f32, "y")
        let n = x.shape.elementCount ?? 0
        try Kernels.requireCount(y, "y", n)
        table.pointee.axpy(alpha, x.floats, y.floats, Int64(n))
    }

    /// `dx = x > 0 ? dy : 0` (f32, same element count).
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public func reluBackward(input x: TensorView, outputGradient dy: TensorView, into dx: TensorView) throws(LichenError) {
        let n = try Kernels.requireActivationGradient(x, dy, dx)
        table.pointee.relu_backward(x.floats, dy.floats, dx.floats, Int64(n))
    }

    /// `dx = dy * (x > 0 ? 1 : e^x)`, ELU's input gradient from its input, or `dx +=` that with
    /// `accumulate` (f32, same element count; dx may alias dy).
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public func eluBackward(
        input x: TensorView, outputGradient dy: TensorView, into dx: TensorView, accumulate: Bool = false
    ) throws(LichenError) {
        let n = try Kernels.requireActivationGradient(x, dy, dx)
        table.pointee.elu_backward(x.floats, dy.floats, dx.floats, Int64(n), accumulate ? 1 : 0)
    }

    /// An activation's backward operands: f32 `input`, `outputGradient` and `inputGradient` with
    /// the same element count, which is returned.
    private static func requireActivationGradient(
        _ x: TensorView, _ dy: TensorView, _ dx: TensorView
    ) throws(LichenError) -> Int {
        try x.require(.f32, "input")
        try dy.require(.f32, "outputGradient")
        try dx.require(.f32, "inputGradient")
        let n = x.shape.elementCount ?? 0
        try Kernels.requireCount(dy, "outputGradient", n)
        try Kernels.requireCount(dx, "inputGradient", n)
        return n
    }

    /// Sum of all elements of an f32 view.
    ///
    /// - Throws: `.unsupportedElementType`.
    /// - Note: Allocates nothing.
    public func sum(_ x: TensorView) throws(LichenError) -> Float {
        try x.require(.f32, "x")
        return table.pointee.sum(x.floats, Int64(x.shape.elementCount ?? 0))
    }

    /// `sum_i x[i] * y[i]` of two f32 views with the same element count.
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public func dot(f32 x: TensorView, _ y: TensorView) throws(LichenError) -> Float {
        try x.require(.f32, "x")
        try y.require(.f32, "y")
        let n = x.shape.elementCount ?? 0
        try Kernels.requireCount(y, "y", n)
        return table.pointee.dot(x.floats, y.floats, Int64(n))
    }

    /// Row-wise softmax `y[r, i] = exp(x[r, i] - max_r) / sum_j exp(x[r, j] - max_r)`, or with
    /// `log: true` the log-softmax `x[r, i] - max_r - log(sum_j exp(x[r, j] - max_r))`.
    /// Rows are the innermost dimension.
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing.
    public func softmaxRows(_ x: TensorView, into y: TensorView, log: Bool = false) throws(LichenError) {
        try x.require(.f32, "x")
        try y.require(.f32, "y")
        let cols = x.shape.last, rows = x.rowCount
        try Kernels.requireShape(y, "y", rows: rows, columns: cols)
        if rows == 0 || cols == 0 { return }
        if log {
            table.pointee.log_softmax_rows(x.floats, y.floats, Int64(rows), Int64(cols))
        } else {
            table.pointee.softmax_rows(x.floats, y.floats, Int64(rows), Int64(cols))
        }
    }

    /// Per-channel statistics of `x[batch, channels, spatial...]` (NCHW; a rank-2 view is
    /// `[batch, channels]` with spatial 1): `sum[c]`, `mean[c]` and the biased variance `variance[c]`
    /// over batch * spatial values. Each output is optional and has `channels` f32 values.
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`, `.invalidArgument` (rank < 2).
    /// - Note: Allocates nothing.
    public func channelStatistics(
        _ x: TensorView, sum: TensorView? = nil, mean: TensorView? = nil, variance: TensorView? = nil
    ) throws(LichenError) {
        try x.require(.f32, "x")
        guard x.shape.rank >= 2 else { throw .invalidArgument(name: "x.rank", value: x.shape.rank, reason: "must be >= 2") }
        let batch = x.shape[0], channels = x.shape[1]
        var spatial = 1
        for i in 2..<x.shape.rank { spatial *= x.shape[i] }
        var s: UnsafeMutablePointer<Float>? = nil, mu: UnsafeMutablePointer<Float>? = nil, v: UnsafeMutablePointer<Float>? = nil
        if let sum {
            try sum.require(.f32, "sum")
            try Kernels.requireCount(sum, "sum", channels)
            s = sum.floats
        }
        if let mean {
            try mean.require(.f32, "mean")
            try Kernels.requireCount(mean, "mean", channels)
            mu = mean.floats
        }
        if let variance {
            try variance.require(.f32, "variance")
            try Kernels.requireCount(variance, "variance", channels)
            v = variance.floats
        }
        table.pointee.channel_stats(x.floats, Int64(batch), Int64(channels), Int64(spatial), s, mu, v)
    }

    // MARK: - Convolution lowering

    /// Unfolds one NCHW image `[channels, height, width]` into `columns [c*kh*kw, oh*ow]`
    /// (zero where the window reads padding).
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing. The corresponding C function is `lcr_im2col`.
    public static func im2col(_ image: TensorView, into columns: TensorView, geometry g: ConvGeometry) throws(LichenError) {
        try image.require(.f32, "image")
        try columns.require(.f32, "columns")
        try requireCount(image, "image", g.channels * g.height * g.width)
        try requireShape(columns, "columns", rows: g.columnRows, columns: g.columnColumns)
        var cg = g.c
        lcr_im2col(&cg, image.floats, columns.floats)
    }

    /// The adjoint of `im2col`: adds `columns [c*kh*kw, oh*ow]` back into `image [c, h, w]`
    /// (the image is accumulated into, not cleared).
    ///
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch`.
    /// - Note: Allocates nothing. The corresponding C function is `lcr_col2im`.
    public static func col2im(_ columns: TensorView, into image: TensorView, geometry g: ConvGeometry) throws(LichenError) {
        try image.require(.f32, "image")
        try columns.require(.f32, "columns")
        try requireCount(image, "image", g.channels * g.height * g.width)
        try requireShape(columns, "columns", rows: g.columnRows, columns: g.columnColumns)
        var cg = g.c
        lcr_col2im(&cg, columns.floats, image.floats)
    }

    // MARK: - fp16 and bandwidth

    /// Converts fp16 (IEEE binary16) to f32 exactly. The corresponding C function is `lcr_fp16_to_fp32`.
    public static func float(fromHalfBits h: UInt16) -> Float { lcr_fp16_to_fp32(h) }

    /// Converts f32 to fp16 bits, rounding to nearest even. The corresponding C function is `lcr_fp32_to_fp16`.
    public static func halfBits(from f: Float) -> UInt16 { lcr_fp32_to_fp16(f) }

    /// Reads every value of an f32 view with the widest loads the CPU has and returns their sum
    /// (a memory-bandwidth probe for benchmarks).
    ///
    /// - Throws: `.unsupportedElementType`.
    public static func readBandwidthProbe(_ x: TensorView) throws(LichenError) -> Float {
        try x.require(.f32, "x")
        return lcr_read_bandwidth_probe(x.floats, Int64(x.shape.elementCount ?? 0))
    }
}
