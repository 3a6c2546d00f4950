/// One trainable tensor for an optimizer: its values, the gradient the backward pass writes
/// for it, and the index of the parameter group (learning rate, weight decay, on/off) it
/// belongs to.
public struct TrainableParameter {
    /// f32 values, updated in place by `step()`.
    public let value: TensorView
    /// f32 gradient with the same element count, read by `step()` and the clipping calls.
    public let gradient: TensorView
    /// Index into the optimizer's group list.
    public let group: Int

    public init(value: TensorView, gradient: TensorView, group: Int = 0) {
        self.value = value
        self.gradient = gradient
        self.group = group
    }
}

/// A validated, fixed list of trainable parameters (shared by the optimizers).
public struct ParameterList {
    public let parameters: [TrainableParameter]
    /// Number of parameter groups the `group` indices refer to.
    public let groupCount: Int
    /// Element count of each parameter.
    let counts: [Int]

    /// - Throws: `.unsupportedElementType` (value or gradient not f32);
    ///   `.shapeMismatch(operand: "gradient", ...)` when a gradient's element count differs from
    ///   its value's (expected = the value's count); `.invalidArgument(name: "group", value:
    ///   parameter index, ...)` for a group index outside `0 ..< groupCount`.
    public init(_ parameters: [TrainableParameter], groupCount: Int) throws(LichenError) {
        guard groupCount > 0 else { throw .invalidArgument(name: "groupCount", value: groupCount, reason: "must be > 0") }
        var counts: [Int] = []
        counts.reserveCapacity(parameters.count)
        for (i, p) in parameters.enumerated() {
            let v = try p.value.f32Elements("value"), g = try p.gradient.f32Elements("gradient")
            guard v.count == g.count else { throw .shapeMismatch(operand: "gradient", dimension: 0, expected: v.count, got: g.count) }
            guard p.group >= 0 && p.group < groupCount else {
                throw .invalidArgument(name: "group", value: i, reason: "parameter at this index names a group that does not exist")
            }
            counts.append(v.count)
        }
        self.parameters = parameters
        self.groupCount = groupCount
        self.counts = counts
    }

    /// Total number of values over all parameters.
    public var elementCount: Int { counts.reduce(0, +) }

    /// Throws for the first NaN or infinite gradient value among parameters whose group is on.
    /// - Throws: `.invalidArgument(name: "gradient", value: parameter index, ...)`.
    func requireFiniteGradients(enabled: (Int) -> Bool) throws(LichenError) {
        for i in 0..<parameters.count where enabled(parameters[i].group) {
            let g = try parameters[i].gradient.f32Elements("gradient")
            if g.firstNonFiniteIndex() != nil {
                throw .invalidArgument(name: "gradient", value: i, reason: "gradient of the parameter at this index holds NaN or infinity")
            }
        }
    }

    /// Sets every gradient to 0 (PyTorch's `zero_grad(set_to_none=False)`).
    public func zeroGradients() throws(LichenError) {
        // An index loop: a for-in over the array's iterator allocated in debug builds.
        for i in 0..<parameters.count { try parameters[i].gradient.f32Elements("gradient").fill(0) }
    }

    /// Global L2 norm of the gradients of parameters whose group is on, accumulated in Double:
    /// `sqrt(Σ_p Σ_i g_pi²)`. Returns nil when any such value is NaN or infinite.
    func gradientNorm(enabled: (Int) -> Bool) throws(LichenError) -> Double? {
        var sumSquares: Double = 0
        for p in parameters where enabled(p.group) {
            let g = try p.gradient.f32Elements("gradient")
            for i in 0..<g.count {
                let x = g[i]
                guard x.isFinite else { return nil }
                sumSquares += Double(x) * Double(x)
            }
        }
        return sumSquares.squareRoot()
    }

    /// Clipping by global norm, PyTorch's `clip_grad_norm_(max_norm, norm_type=2)`:
    ///
    ///     n = sqrt(Σ g²) over every gradient value;  c = min(1, maxNorm / (n + 1e-6));  g ← c g
    ///
    /// - Returns: n, the norm before clipping.
    /// - Throws: `.invalidArgument(name: "maxNorm", ...)` for maxNorm <= 0 or not finite;
    ///   `.invalidArgument(name: "gradient", value: parameter index, ...)` for NaN or infinity
    ///   (PyTorch's `error_if_nonfinite=True`); nothing is changed when it throws.
    public func clipGradientNorm(maxNorm: Float) throws(LichenError) -> Float {
        try clipGradientNorm(maxNorm: maxNorm) { _ in true }
    }

    func clipGradientNorm(maxNorm: Float, enabled: (Int) -> Bool) throws(LichenError) -> Float {
        guard maxNorm.isFinite && maxNorm > 0 else {
            throw .invalidArgument(name: "maxNorm", value: maxNorm.isFinite ? Int(maxNorm) : Int.min, reason: "must be finite and > 0")
        }
        guard let norm = try gradientNorm(enabled: enabled) else {
            try requireFiniteGradients(enabled: enabled)
            throw .invalidArgument(name: "gradient", value: -1, reason: "gradients hold NaN or infinity")
        }
        let coefficient = Double(maxNorm) / (norm + 1e-6)
        if coefficient < 1 {
            let c = Float(coefficient)
            for p in parameters where enabled(p.group) {
                let g = try p.gradient.f32Elements("gradient")
                for i in 0..<g.count { g[i] *= c }
            }
        }
        return Float(norm)
    }

    /// Clipping by value, PyTorch's `clip_grad_value_(clip_value)`: g ← min(max(g, −limit), limit).
    /// - Throws: `.invalidArgument(name: "limit", ...)` for limit <= 0 or not finite;
    ///   `.invalidArgument(name: "gradient", value: parameter index, ...)` for NaN (nothing changed).
    public func clipGradientValues(limit: Float) throws(LichenError) {
        try clipGradientValues(limit: limit) { _ in true }
    }

    func clipGradientValues(limit: Float, enabled: (Int) -> Bool) throws(LichenError) {
        guard limit.isFinite && limit > 0 else {
            throw .invalidArgument(name: "limit", value: limit.isFinite ? Int(limit) : Int.min, reason: "must be finite and > 0")
        }
        for (i, p) in parameters.enumerated() where enabled(p.group) {
            let g = try p.gradient.f32Elements("gradient")
            for j in 0..<g.count where g[j].isNaN {
                throw .invalidArgument(name: "gradient", value: i, reason: "gradient of the parameter at this index holds NaN")
            }
        }
        for p in parameters where enabled(p.group) {
            let g = try p.gradient.f32Elements("gradient")
            for i in 0..<g.count { g[i] = min(max(g[i], -limit), limit) }
        }
    }
}
