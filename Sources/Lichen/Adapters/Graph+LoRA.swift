/// LoRA applied unmerged inside the graph's step (DESIGN.md, LoRA): for every entry of the
/// step's `AdapterSet` on a layer, `y += s · B (A x)`.
///
/// - Linear, rows R = n · rowsPerSample: `u[R, r] = x · Aᵀ`, `y += s · u · Bᵀ`.
/// - Conv (groups 1), per sample on the im2col columns `cols[K, P]` the base forward made:
///   `u[r, P] = A · cols` (A as a conv with the layer's kernel, stride, padding and dilation and
///   r output channels), `y[OC, P] += s · B · u` (B a 1x1 conv), PEFT's Conv2d LoRA.
///
/// Backward (with `dy` the layer's output gradient): `du = s · dy · B` (conv: `s · Bᵀ · dy`);
/// `dB += s · dyᵀ · u`, `dA += duᵀ · x` (conv: `dB += s · dy · uᵀ`, `dA += du · colsᵀ`) for
/// trainable adapters when the graph was built with `options.trainAdapters`; and
/// `dx += du · A` (conv: col2im of `Aᵀ · du`) whenever the input gradient is needed, so
/// gradients below an adapted layer are those of the adapted model.
extension Graph {
    // MARK: - Choosing the set

    /// Makes `adapters` the set the next forward applies (nil: the base model alone).
    ///
    /// - Throws: `.invalidArgument(name: "adapters", ...)` when the set was built for another graph.
    /// - Note: Allocates nothing. The graph keeps a reference until another set is chosen.
    public func setAdapters(_ adapters: AdapterSet?) throws(LichenError) {
        if let adapters, adapters.graph !== self {
            throw .invalidArgument(name: "adapters", value: 0, reason: "the adapter set was built for another graph")
        }
        self.adapters = adapters
    }

    /// Makes `adapters` the skill slot's set (the hot-swapped adapters; nil: none), applied
    /// after the first slot's on every forward and backward and never trained.
    ///
    /// - Throws: `.invalidArgument(name: "adapters", ...)` when the set was built for another graph.
    /// - Note: Allocates nothing.
    public func setSkillAdapters(_ adapters: AdapterSet?) throws(LichenError) {
        if let adapters, adapters.graph !== self {
            throw .invalidArgument(name: "adapters", value: 0, reason: "the adapter set was built for another graph")
        }
        skillAdapters = adapters
    }

    /// `setAdapters(adapters)` then `forward(input:)`: one step with this set. The input is
    /// validated before the set is taken, so a bad input changes nothing.
    ///
    /// - Throws: as `setAdapters(_:)` and `forward(input:)`.
    /// - Note: Allocates nothing.
    public func forward(input: TensorView, adapters: AdapterSet?) throws(LichenError) -> TensorView {
        if let adapters, adapters.graph !== self {
            throw .invalidArgument(name: "adapters", value: 0, reason: "the adapter set was built for another graph")
        }
        try validateInput(input)
        self.adapters = adapters
        return try forward(input: input)
    }

    // MARK: - Linear

    func loraLinearForward(_ set: AdapterSet, _ node: GraphNode, _ n: Int) throws(LichenError) {
        let rows = n * node.rowsPerSample
        let x = try value(node.input0, Graph.rows(node.inRowsShape, n, perSample: node.rowsPerSample))
        let y = try value(node.storage, Graph.rows(node.outRowsShape, n, perSample: node.rowsPerSample))
        for k in set.firstEntry[node.index]..<set.firstEntry[node.index + 1] {
            let e = set.entries[k]
            let u = try e.u.leadingRows(0, count: rows)
            try Kernels.sgemm(x, e.a, transposeB: true, into: u)
            if let weights = set.sampleWeights, let work = set.scratch {
                // ũ = α[n, m] · u per row, in the scratch (u stays for backward's dα).
                let scaled = try work.subview(valueOffset: 0, shape: Graph.rows(e.rowShape, n, perSample: node.rowsPerSample))
                try Graph.scaleRows(u, by: weights, member: e.member, memberCount: set.members.count, perSample: node.rowsPerSample,
                                    into: scaled)
                try Kernels.sgemm(scaled, e.b, transposeB: true, into: y, alpha: e.s, beta: 1)
            } else {
                try Kernels.sgemm(u, e.b, transposeB: true, into: y, alpha: e.s, beta: 1)
            }
        }
    }

    /// `out[row, :] = α[row / perSample, member] · u[row, :]`.
    static func scaleRows(_ u: TensorView, by weights: TensorView, member: Int, memberCount: Int, perSample: Int, into out: TensorView)
        throws(LichenError)
    {
        let uv = try u.f32Elements("u"), w = try weights.f32Elements("sample weights"), o = try out.f32Elements("scaled u")
        let rows = u.shape[0], r = u.shape[1]
        for row in 0..<rows {
            let a = w[(row / perSample) * memberCount + member]
            for j in 0..<r { o[row * r + j] = a * uv[row * r + j] }
        }
    }

    func loraLinearBackward(_ set: AdapterSet, _ node: GraphNode, _ n: Int) throws(LichenError) {
        let perSample = node.rowsPerSample
        let rows = n * perSample
        let dy = try gradient(node.storage, Graph.rows(node.outRowsShape, n, perSample: perSample))
        let train = options.trainAdapters
        let x: TensorView? = train ? try value(node.input0, Graph.rows(node.inRowsShape, n, perSample: perSample)) : nil
        let dx: TensorView? = node.gradInput0 ? try gradient(node.input0, Graph.rows(node.inRowsShape, n, perSample: perSample)) : nil
        guard let work = set.scratch else { return }
        for k in set.firstEntry[node.index]..<set.firstEntry[node.index + 1] {
            let e = set.entries[k]
            let du = try work.subview(valueOffset: 0, shape: Graph.rows(e.rowShape, n, perSample: perSample))
            try Kernels.sgemm(dy, e.b, into: du, alpha: e.s)
            if let weights = set.sampleWeights, let gradient = set.sampleWeightGradient {
                // dα[n, m] += Σ_rows of n Σ_j du ⊙ u; then u ← α u and du ← α du, so dB, dA and dx
                // below are those of the weighted entry (u is spent: the next backward needs a forward).
                let u = try e.u.leadingRows(0, count: rows)
                let uv = try u.f32Elements("u"), dv = try du.f32Elements("du")
                let w = try weights.f32Elements("sample weights"), g = try gradient.f32Elements("sample weight gradient")
                let r = e.rank, m = set.members.count
                for row in 0..<rows {
                    let slot = (row / perSample) * m + e.member
                    var dot: Float = 0
                    for j in 0..<r { dot += dv[row * r + j] * uv[row * r + j] }
                    g[slot] += dot
                    let a = w[slot]
                    for j in 0..<r {
                        uv[row * r + j] *= a
                        dv[row * r + j] *= a
                    }
                }
            }
            if train, let x, let ga = e.gradientA, let gb = e.gradientB {
                let u = try e.u.leadingRows(0, count: rows)
                try Kernels.sgemm(dy, transposeA: true, u, into: gb, alpha: e.s, beta: 1)
                try Kernels.sgemm(du, transposeA: true, x, into: ga, beta: 1)
            }
            if let dx { try Kernels.sgemm(du, e.a, into: dx, beta: 1) }
        }
    }

    // MARK: - Conv

    /// Adds sample `b`'s adapter outputs into `yb [OC, P]`; `cols [K, P]` holds its im2col.
    func loraConvForward(_ set: AdapterSet, _ node: GraphNode, sample b: Int, columns cols: TensorView, output yb: TensorView)
        throws(LichenError)
    {
        let p = node.positions
        for k in set.firstEntry[node.index]..<set.firstEntry[node.index + 1] {
            let e = set.entries[k]
            let ub = try e.u.subview(valueOffset: b * e.rank * p, shape: e.rowShape)
            try Kernels.sgemm(e.a, cols, into: ub)
            try Kernels.sgemm(e.b, ub, into: yb, alpha: e.s, beta: 1)
        }
    }

    func loraConvBackward(_ set: AdapterSet, _ node: GraphNode, _ n: Int) throws(LichenError) {
        guard let geometry = node.geometry, let work = set.scratch else { return }
        let p = node.positions
        let inCount = node.imageShape.elementCount ?? 0, outCount = node.outImageShape.elementCount ?? 0
        let dy = try gradient(node.storage, Graph.batched(node.outShape, n))
        let train = options.trainAdapters
        let x: TensorView? = train ? try value(node.input0, Graph.batched(node.inShape, n)) : nil
        let dx: TensorView? = node.gradInput0 ? try gradient(node.input0, Graph.batched(node.inShape, n)) : nil
        for b in 0..<n {
            let dyb = try dy.subview(valueOffset: b * outCount, shape: node.outImageShape)
            var cols: TensorView? = nil
            if train, let x {
                let c = try scratch(node.gradColumnsForWeight, node.columnsShape)
                try Kernels.im2col(try x.subview(valueOffset: b * inCount, shape: node.imageShape), into: c, geometry: geometry)
                cols = c
            }
            var dcols: TensorView? = nil
            if dx != nil {
                let c = try scratch(node.gradColumns, node.columnsShape)
                try c.fill(0)
                dcols = c
            }
            for k in set.firstEntry[node.index]..<set.firstEntry[node.index + 1] {
                let e = set.entries[k]
                let du = try work.subview(valueOffset: 0, shape: e.rowShape)
                try Kernels.sgemm(e.b, transposeA: true, dyb, into: du, alpha: e.s)
                if let cols, let ga = e.gradientA, let gb = e.gradientB {
                    let ub = try e.u.subview(valueOffset: b * e.rank * p, shape: e.rowShape)
                    try Kernels.sgemm(dyb, ub, transposeB: true, into: gb, alpha: e.s, beta: 1)
                    try Kernels.sgemm(du, cols, transposeB: true, into: ga, beta: 1)
                }
                if let dcols { try Kernels.sgemm(e.a, transposeA: true, du, into: dcols, beta: 1) }
            }
            if let dx, let dcols {
                try Kernels.col2im(dcols, into: try dx.subview(valueOffset: b * inCount, shape: node.imageShape), geometry: geometry)
            }
        }
    }
}
