/// Elementwise activations.
///
/// - relu: `max(x, 0)`; backward from the output (`y > 0` exactly when `x > 0`).
/// - gelu (tanh approximation): `0.5 x (1 + tanh(u))`, `u = sqrt(2/pi) (x + 0.044715 x^3)`.
/// - silu: `x * sigmoid(x)`.
/// - tanh; backward from the output: `1 - y^2`.
/// - elu (alpha = 1): `x` for x > 0, `e^x - 1` otherwise; backward from the input: 1 for x > 0,
///   `e^x` otherwise (the homeostatic learners' MLP, research/methods.md section 2). Both in
///   f32 by the kernel table (`Kernels.Unary.elu`, `eluBackward`), as relu is.
extension Graph {
    static let geluC = 0.7978845608028654  // sqrt(2 / pi)
    static let geluA = 0.044715

    func activationForward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        let x = try value(node.input0, Graph.batched(node.inShape, n))
        let y = try value(node.storage, Graph.batched(node.outShape, n))
        let kind = node.kind
        if kind == .relu || kind == .elu {
            try kernels.elementwise(kind == .relu ? .relu : .elu, x, into: y)
            return
        }
        let count = x.elementCount
        try x.withFloats { (xs) throws(LichenError) in
            try y.withFloats { (ys) throws(LichenError) in
                for i in 0..<count {
                    let v = Double(xs[i])
                    switch kind {
                    case .gelu:
                        ys[i] = Float(0.5 * v * (1 + GraphMath.tanh(Graph.geluC * (v + Graph.geluA * v * v * v))))
                    case .silu:
                        ys[i] = Float(v * GraphMath.sigmoid(v))
                    default:
                        ys[i] = Float(GraphMath.tanh(v))
                    }
                }
            }
        }
    }

    func activationBackward(_ node: GraphNode, _ n: Int) throws(LichenError) {
        guard node.gradInput0 else { return }
        let dy = try gradient(node.storage, Graph.batched(node.outShape, n))
        let dx = try gradient(node.input0, Graph.batched(node.inShape, n))
        let kind = node.kind
        // relu, tanh: saved output; gelu, silu, elu: saved input.
        let saved = kind == .relu || kind == .tanh
            ? try value(node.storage, Graph.batched(node.outShape, n))
            : try value(node.input0, Graph.batched(node.inShape, n))
        if kind == .relu && node.overwrite0 {
            try kernels.reluBackward(input: saved, outputGradient: dy, into: dx)
            return
        }
        if kind == .elu {
            try kernels.eluBackward(input: saved, outputGradient: dy, into: dx, accumulate: !node.overwrite0)
            return
        }
        let count = dy.elementCount, overwrite = node.overwrite0
        try saved.withFloats { (ss) throws(LichenError) in
            try dy.withFloats { (ds) throws(LichenError) in
                try dx.withFloats { (dxs) throws(LichenError) in
                    for i in 0..<count {
                        let v = Double(ss[i])
                        let derivative: Double
                        switch kind {
                        case .relu:
                            derivative = v > 0 ? 1 : 0
                        case .tanh:
                            derivative = 1 - v * v
                        case .gelu:
                            let t = GraphMath.tanh(Graph.geluC * (v + Graph.geluA * v * v * v))
                            derivative = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * Graph.geluC * (1 + 3 * Graph.geluA * v * v)
                        default:
                            let sg = GraphMath.sigmoid(v)
                            derivative = sg * (1 + v * (1 - sg))
                        }
                        let g = Float(Double(ds[i]) * derivative)
                        if overwrite { dxs[i] = g } else { dxs[i] += g }
                    }
                }
            }
        }
    }
}
