import Lichen

/// Helpers for the graph checks: building one-layer and small graphs over a fresh arena,
/// naive references in Double, and finite-difference gradient checks.

/// One parameter to put in a store.
struct GraphParamInit {
    let name: String
    let role: ParameterRole
    let dims: [Int]
    let values: [Float]
}

/// A graph over a fresh 16 MiB arena.
func graphMakeGraph(_ spec: ModelSpec, _ params: [GraphParamInit], batch: Int, options: GraphOptions = GraphOptions(training: true))
    throws(LichenError) -> Graph
{
    let arena = try Arena(byteCount: 16 << 20)
    let store = ParameterStore(arena: arena)
    for p in params {
        try store.add(name: p.name, role: p.role, shape: try Shape(dimensions: p.dims), values: p.values,
                      trainable: !p.role.isRunningStatistic)
    }
    return try Graph(spec: spec, store: store, batchSize: batch, arena: arena, options: options)
}

func graphLayer(_ kind: LayerKind, _ name: String, _ inputs: [Int], _ configure: (inout LayerSpec) -> Void = { _ in }) -> LayerSpec {
    var l = LayerSpec(kind: kind, name: name, inputs: inputs)
    configure(&l)
    return l
}

func graphSpec(_ input: [Int], _ layers: [LayerSpec]) -> ModelSpec {
    // Shapes of rank <= 3 with positive dimensions always make a Shape.
    let shape = (try? Shape(dimensions: input)) ?? Shape.graphUnchecked1
    return ModelSpec(architecture: "check", inputShape: shape, classCount: 1, layers: layers)
}

extension Shape {
    static var graphUnchecked1: Shape {
        do { return try Shape(dimensions: [1]) } catch { fatalError("shape [1]") }
    }
}

/// Runs the graph on `x` and returns the output values.
func graphRun(_ g: Graph, _ x: [Float], _ dims: [Int]) throws(LichenError) -> [Float] {
    let m = CheckMemory.floats(x)
    defer { withExtendedLifetime(m) {} }
    return try g.forward(input: try m.view(.f32, dims)).toArray()
}

/// sum_i y_i * r_i in Double.
func graphWeightedSum(_ y: [Float], _ r: [Float]) -> Double {
    var s = 0.0
    for i in 0..<y.count { s += Double(y[i]) * Double(r[i]) }
    return s
}

/// (L(θ + h·e_j) − L(θ − h·e_j)) / 2h for value `j` of `value` (f32), which is restored after.
func centralDifference(_ value: TensorView, _ j: Int, h: Float, _ loss: () throws(LichenError) -> Float) throws(LichenError) -> Float {
    let v = try value.f32Elements("finite difference")
    let keep = v[j]
    v[j] = keep + h
    let plus = try loss()
    v[j] = keep - h
    let minus = try loss()
    v[j] = keep
    return (plus - minus) / (2 * h)
}

/// Up to `limit` indices of 0..<count, spread evenly (all of them when count <= limit).
func graphSampleIndices(_ count: Int, _ limit: Int, _ rng: inout SplitMix64) -> [Int] {
    if count <= limit { return Array(0..<count) }
    var out: [Int] = []
    for _ in 0..<limit { out.append(rng.nextInt(0, count - 1)) }
    return out
}

/// Checks backward against central finite differences of the graph's own forward for the loss
/// `sum(y * r)`: the input gradient and every trainable parameter's gradient, at up to `limit`
/// sampled elements each. Passes when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).
func graphGradientCheck(
    _ c: inout CheckContext, _ g: Graph, _ x: [Float], _ dims: [Int], _ label: String,
    eps: Float = 1e-2, atol: Float = 2e-3, rtol: Float = 2e-2, limit: Int = 24, seed: UInt64 = 7
) throws(LichenError) {
    var rng = SplitMix64(seed: seed)
    let xm = CheckMemory.floats(x)
    let xv = try xm.view(.f32, dims)
    let y = try g.forward(input: xv).toArray()
    let r = rng.floats(y.count)
    let rm = CheckMemory.floats(r)
    let dxm = CheckMemory(byteCount: x.count * 4)
    defer { withExtendedLifetime(rm) {} }
    try g.store.zeroGradients()
    try g.backward(outputGradient: try rm.view(.f32, [dims[0]] + g.outputShape.dimensions),
                   inputGradient: g.options.inputGradient ? try dxm.view(.f32, dims) : nil)
    func loss() throws(LichenError) -> Double { graphWeightedSum(try g.forward(input: xv).toArray(), r) }
    if g.options.inputGradient {
        for j in graphSampleIndices(x.count, limit, &rng) {
            let keep = xm.floats[j]
            func central(_ e: Float) throws(LichenError) -> Float {
                xm.floats[j] = keep + e
                let lp = try loss()
                xm.floats[j] = keep - e
                let lm = try loss()
                xm.floats[j] = keep
                return Float((lp - lm) / (2 * Double(e)))
            }
            let fd = try central(eps)
            let an = dxm.floats[j]
            let err = abs(an - fd) - (atol + rtol * max(abs(an), abs(fd)))
            c.expect(err <= 0, label + ": input gradient \(j): backward " + show(an) + ", finite difference " + show(fd))
        }
    }
    for p in 0..<g.store.count where g.store[p].trainable {
        let param = g.store[p]
        guard let grad = param.gradient else { continue }
        let gv = try grad.toArray()
        for j in graphSampleIndices(param.value.elementCount, limit, &rng) {
            var keep: Float = 0
            try param.value.withFloats { (v) throws(LichenError) in keep = v[j] }
            func central(_ e: Float) throws(LichenError) -> Float {
                try param.value.withFloats { (v) throws(LichenError) in v[j] = keep + e }
                let lp = try loss()
                try param.value.withFloats { (v) throws(LichenError) in v[j] = keep - e }
                let lm = try loss()
                try param.value.withFloats { (v) throws(LichenError) in v[j] = keep }
                return Float((lp - lm) / (2 * Double(e)))
            }
            let fd = try central(eps)
            let err = abs(gv[j] - fd) - (atol + rtol * max(abs(gv[j]), abs(fd)))
            c.expect(err <= 0, label + ": " + param.name + "[\(j)]: backward " + show(gv[j]) + ", finite difference " + show(fd))
        }
    }
}

/// Checks `got` against `expected` with |d| <= atol + rtol * |expected|.
func graphExpectAllClose(_ c: inout CheckContext, _ got: [Float], _ expected: [Double], atol: Float, rtol: Float = 0, _ label: String) {
    guard got.count == expected.count else {
        c.expect(false, label + ": \(got.count) values, expected \(expected.count)")
        return
    }
    var bad = 0, first = -1
    for i in 0..<got.count {
        let e = Float(expected[i])
        if !(abs(got[i] - e) <= atol + rtol * abs(e)) { bad += 1; if first < 0 { first = i } }
    }
    c.expect(bad == 0, label + ": \(bad) of \(got.count) values differ; first at \(first): got "
             + (first >= 0 ? show(got[first]) + ", expected " + show(Float(expected[first])) : ""))
}

// MARK: - Naive references (Double)

func graphRefLinear(_ x: [Double], rows: Int, inF: Int, _ w: [Double], outF: Int, _ b: [Double]?) -> [Double] {
    var y = [Double](repeating: 0, count: rows * outF)
    for r in 0..<rows {
        for o in 0..<outF {
            var s = b?[o] ?? 0
            for i in 0..<inF { s += x[r * inF + i] * w[o * inF + i] }
            y[r * outF + o] = s
        }
    }
    return y
}

struct GraphConvParams {
    var n = 1, c = 1, h = 1, w = 1, oc = 1, kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1
    var oh: Int { (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1 }
    var ow: Int { (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1 }
}

/// Direct convolution (no im2col): y[n, o, oy, ox] = b[o] + sum over the group's channels and the window.
func graphRefConv(_ x: [Double], _ w: [Double], _ b: [Double]?, _ p: GraphConvParams) -> [Double] {
    let cg = p.c / p.groups, ocg = p.oc / p.groups, oh = p.oh, ow = p.ow
    var y = [Double](repeating: 0, count: p.n * p.oc * oh * ow)
    for n in 0..<p.n {
        for o in 0..<p.oc {
            let g = o / ocg
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var s = b?[o] ?? 0
                    for ci in 0..<cg {
                        let ch = g * cg + ci
                        for ky in 0..<p.kh {
                            let iy = oy * p.sh - p.ph + ky * p.dh
                            if iy < 0 || iy >= p.h { continue }
                            for kx in 0..<p.kw {
                                let ix = ox * p.sw - p.pw + kx * p.dw
                                if ix < 0 || ix >= p.w { continue }
                                s += x[((n * p.c + ch) * p.h + iy) * p.w + ix] * w[((o * cg + ci) * p.kh + ky) * p.kw + kx]
                            }
                        }
                    }
                    y[((n * p.oc + o) * oh + oy) * ow + ox] = s
                }
            }
        }
    }
    return y
}

/// Normalisation over groups: x [n, c, s]; per (sample, group) when `perSample`, else per
/// channel over the batch (batch norm); affine per channel. `stats` overrides mean/var per channel.
func graphRefNorm(_ x: [Double], n: Int, c: Int, s: Int, groups: Int, perSample: Bool, gamma: [Double], beta: [Double],
             eps: Double, stats: ([Double], [Double])? = nil) -> [Double] {
    var y = [Double](repeating: 0, count: x.count)
    if perSample {
        let cg = c / groups
        for b in 0..<n {
            for g in 0..<groups {
                var vals: [Double] = []
                for ch in (g * cg)..<((g + 1) * cg) { for k in 0..<s { vals.append(x[(b * c + ch) * s + k]) } }
                let mu = vals.reduce(0, +) / Double(vals.count)
                let v = vals.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(vals.count)
                for ch in (g * cg)..<((g + 1) * cg) {
                    for k in 0..<s {
                        let i = (b * c + ch) * s + k
                        y[i] = (x[i] - mu) / (v + eps).squareRoot() * gamma[ch] + beta[ch]
                    }
                }
            }
        }
        return y
    }
    for ch in 0..<c {
        var mu = 0.0, v = 0.0
        if let stats {
            mu = stats.0[ch]
            v = stats.1[ch]
        } else {
            var vals: [Double] = []
            for b in 0..<n { for k in 0..<s { vals.append(x[(b * c + ch) * s + k]) } }
            mu = vals.reduce(0, +) / Double(vals.count)
            v = vals.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(vals.count)
        }
        for b in 0..<n {
            for k in 0..<s {
                let i = (b * c + ch) * s + k
                y[i] = (x[i] - mu) / (v + eps).squareRoot() * gamma[ch] + beta[ch]
            }
        }
    }
    return y
}

func graphRefPool(_ x: [Double], planes: Int, h: Int, w: Int, k: (Int, Int), s: (Int, Int), p: (Int, Int), isMax: Bool) -> [Double] {
    let oh = (h + 2 * p.0 - k.0) / s.0 + 1, ow = (w + 2 * p.1 - k.1) / s.1 + 1
    var y: [Double] = []
    for pl in 0..<planes {
        for oy in 0..<oh {
            for ox in 0..<ow {
                var acc = isMax ? -Double.infinity : 0
                for ky in 0..<k.0 {
                    for kx in 0..<k.1 {
                        let iy = oy * s.0 - p.0 + ky, ix = ox * s.1 - p.1 + kx
                        if iy < 0 || iy >= h || ix < 0 || ix >= w { continue }
                        let v = x[(pl * h + iy) * w + ix]
                        acc = isMax ? max(acc, v) : acc + v
                    }
                }
                y.append(isMax ? acc : acc / Double(k.0 * k.1))
            }
        }
    }
    return y
}

func graphRefExp(_ x: Double) -> Double {
    // Independent of GraphMath: Taylor series of e^(x/64), squared six times.
    let t = x / 64
    var term = 1.0, sum = 1.0
    for i in 1..<20 {
        term *= t / Double(i)
        sum += term
    }
    for _ in 0..<6 { sum *= sum }
    return sum
}

func graphRefTanh(_ x: Double) -> Double {
    let e = graphRefExp(2 * x)
    return (e - 1) / (e + 1)
}

func graphDequantized(_ values: [Float], rows: Int, k: Int, _ type: ElementType) throws(LichenError) -> (CheckMemory, [Double]) {
    let src = CheckMemory.floats(values)
    let q = CheckMemory.of(type, rows * k)
    try Kernels.best.quantizeRows(try src.view(.f32, [rows, k]), into: try q.view(type, [rows, k]))
    let d = CheckMemory(byteCount: rows * k * 4)
    try Kernels.best.dequantizeRows(try q.view(type, [rows, k]), into: try d.view(.f32, [rows, k]))
    return (q, d.array(rows * k).map { Double($0) })
}

func graphDoubles(_ x: [Float]) -> [Double] { x.map { Double($0) } }
