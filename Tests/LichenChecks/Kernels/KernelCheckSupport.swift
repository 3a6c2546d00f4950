import Lichen

/// Owned, 64-byte aligned memory for kernel checks, freed when the last reference goes.
final class CheckMemory {
    let base: UnsafeMutableRawPointer
    let byteCount: Int

    init(byteCount: Int) {
        self.byteCount = byteCount
        base = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
    }

    deinit { base.deallocate() }

    var floats: UnsafeMutablePointer<Float> { base.assumingMemoryBound(to: Float.self) }
    var bytes: UnsafeMutablePointer<UInt8> { base.assumingMemoryBound(to: UInt8.self) }
    var raw: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: byteCount) }

    /// A view of the whole buffer with `dims`.
    func view(_ type: ElementType, _ dims: [Int]) throws(LichenError) -> TensorView {
        try TensorView(base: base, byteCount: byteCount, type: type, shape: Shape(dimensions: dims))
    }

    /// f32 memory holding `values`.
    static func floats(_ values: [Float]) -> CheckMemory {
        let m = CheckMemory(byteCount: values.count * 4)
        for i in 0..<values.count { m.floats[i] = values[i] }
        return m
    }

    /// Memory for `count` values of `type`.
    static func of(_ type: ElementType, _ count: Int) -> CheckMemory {
        CheckMemory(byteCount: (count / type.blockLength) * type.blockByteCount)
    }

    func array(_ count: Int) -> [Float] { (0..<count).map { floats[$0] } }
}

/// Runs a check body that may throw; a throw is a failed assertion.
func checking(_ context: inout CheckContext, _ body: (inout CheckContext) throws(LichenError) -> Void) {
    do {
        try body(&context)
    } catch {
        context.fail("unexpected error: " + error.description)
    }
}

/// Every kernel table the running CPU supports.
var supportedKernels: [Kernels] { KernelISA.supported.compactMap { Kernels(isa: $0) } }

extension SplitMix64 {
    mutating func floats(_ count: Int, _ lower: Float = -1, _ upper: Float = 1) -> [Float] {
        (0..<count).map { _ in nextFloat(lower, upper) }
    }
}

// MARK: - Naive references (independent of CRuntime)

/// fp16 bits of `x`, round to nearest even, through Swift's own Float16.
func naiveHalfBits(_ x: Float) -> UInt16 { Float16(x).bitPattern }

func naiveHalfToFloat(_ h: UInt16) -> Float { Float(Float16(bitPattern: h)) }

/// ggml's quantize_row_q8_0_ref, one row, as bytes.
func naiveQuantizeQ8_0(_ x: [Float]) -> [UInt8] {
    var out: [UInt8] = []
    for b in 0..<(x.count / 32) {
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[b * 32 + j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        let h = naiveHalfBits(d)
        out.append(UInt8(h & 0xff))
        out.append(UInt8(h >> 8))
        for j in 0..<32 {
            let q = Int8((x[b * 32 + j] * id).rounded(.toNearestOrAwayFromZero))
            out.append(UInt8(bitPattern: q))
        }
    }
    return out
}

/// ggml's quantize_row_q4_0_ref, one row, as bytes.
func naiveQuantizeQ4_0(_ x: [Float]) -> [UInt8] {
    var out: [UInt8] = []
    for b in 0..<(x.count / 32) {
        var amax: Float = 0, mx: Float = 0
        for j in 0..<32 where amax < abs(x[b * 32 + j]) {
            amax = abs(x[b * 32 + j])
            mx = x[b * 32 + j]
        }
        let d = mx / -8
        let id: Float = d != 0 ? 1 / d : 0
        let h = naiveHalfBits(d)
        out.append(UInt8(h & 0xff))
        out.append(UInt8(h >> 8))
        for j in 0..<16 {
            let q0 = min(15, Int(Int8(x[b * 32 + j] * id + 8.5)))
            let q1 = min(15, Int(Int8(x[b * 32 + j + 16] * id + 8.5)))
            out.append(UInt8(q0 | (q1 << 4)))
        }
    }
    return out
}

/// Codes and scales of quantized rows (Q4_0 codes already minus 8).
func naiveDecode(_ bytes: UnsafePointer<UInt8>, _ type: ElementType, _ k: Int) -> (codes: [Int32], scales: [Float]) {
    var codes: [Int32] = [], scales: [Float] = []
    let bb = type.blockByteCount
    for b in 0..<(k / 32) {
        let p = bytes + b * bb
        scales.append(naiveHalfToFloat(UInt16(p[0]) | (UInt16(p[1]) << 8)))
        if type == .q8_0 {
            for j in 0..<32 { codes.append(Int32(Int8(bitPattern: p[2 + j]))) }
        } else {
            var block = [Int32](repeating: 0, count: 32)
            for j in 0..<16 {
                block[j] = Int32(p[2 + j] & 0x0f) - 8
                block[j + 16] = Int32(p[2 + j] >> 4) - 8
            }
            codes += block
        }
    }
    return (codes, scales)
}

/// sum_b dw*dx * sum_i w*x with exact int32 block sums; also returns sum_b |dw*dx*s| for a tolerance.
func naiveQuantizedDot(_ w: (codes: [Int32], scales: [Float]), _ wRow: Int, _ x: (codes: [Int32], scales: [Float]), _ xRow: Int, _ k: Int)
    -> (value: Float, magnitude: Float)
{
    let nb = k / 32
    var s: Float = 0, mag: Float = 0
    for b in 0..<nb {
        var si: Int32 = 0
        for j in 0..<32 { si += w.codes[(wRow * nb + b) * 32 + j] * x.codes[(xRow * nb + b) * 32 + j] }
        let term = Float(si) * (w.scales[wRow * nb + b] * x.scales[xRow * nb + b])
        s += term
        mag += abs(term)
    }
    return (s, mag)
}
