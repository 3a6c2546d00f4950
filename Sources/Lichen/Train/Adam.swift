/// Adam and AdamW with bias correction, following PyTorch's `torch.optim.Adam` and
/// `torch.optim.AdamW` (amsgrad = false, maximize = false). For each parameter p with
/// gradient g in an enabled group (lr η, betas β1 β2, ε, weight decay λ), at group step
/// t = 1, 2, ...:
///
///     Adam (coupled):    g ← g + λ p
///     AdamW (decoupled): p ← p (1 − η λ)
///     m ← β1 m + (1 − β1) g
///     v ← β2 v + (1 − β2) g²
///     p ← p − (η / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + ε)
///
/// β^t and the two corrections are computed in Double (as PyTorch does with Python floats),
/// the elementwise update in f32. Moment buffers m and v are allocated from the arena at
/// construction; `step()` allocates nothing. Gradients are read, never modified.
public final class Adam {
    /// How weight decay enters the update.
    public enum WeightDecayMode: Sendable {
        /// Adam: λ p is added to the gradient (L2 regularisation).
        case coupled
        /// AdamW: p is shrunk by η λ before the moment update.
        case decoupled
    }

    /// Hyperparameters of one parameter group.
    public struct Group: OptimizerGroup {
        public var learningRate: Float
        public var beta1: Float
        public var beta2: Float
        public var epsilon: Float
        public var weightDecay: Float
        /// A disabled group is skipped by `step()`: no update, no state change, no step count.
        public var isEnabled: Bool

        public init(
            learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
            weightDecay: Float = 0, isEnabled: Bool = true
        ) {
            self.learningRate = learningRate
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
            self.isEnabled = isEnabled
        }
    }

    public let parameters: ParameterList
    public let weightDecayMode: WeightDecayMode
    public private(set) var groups: [Group]
    /// Steps taken by each group since construction or the last `resetState()` (t above).
    public private(set) var groupStepCounts: [Int]
    /// Calls of `step()` that updated at least one group.
    public private(set) var stepCount = 0
    private let firstMoments: [TensorView]
    private let secondMoments: [TensorView]
    // β1^t and β2^t per group, kept in Double and multiplied once per step.
    private var beta1Powers: [Double]
    private var beta2Powers: [Double]

    /// - Parameters:
    ///   - parameters: the trainable tensors; `group` indexes `groups`.
    ///   - groups: hyperparameters per group.
    ///   - weightDecayMode: `.coupled` is Adam, `.decoupled` is AdamW.
    ///   - arena: where m and v come from (2 × 4 bytes per parameter value).
    /// - Throws: what `ParameterList.init` throws; `.invalidArgument(name:value: group index, ...)`
    ///   for a negative or non-finite learning rate or weight decay, a β outside [0, 1) or an
    ///   ε that is not finite and > 0; `.budgetExceeded`.
    public init(
        parameters: [TrainableParameter], groups: [Group], weightDecayMode: WeightDecayMode = .coupled, arena: Arena
    ) throws(LichenError) {
        for (i, g) in groups.enumerated() {
            try Adam.validate(g, index: i)
        }
        self.parameters = try ParameterList(parameters, groupCount: groups.count)
        var m: [TensorView] = [], v: [TensorView] = []
        m.reserveCapacity(parameters.count)
        v.reserveCapacity(parameters.count)
        for count in self.parameters.counts {
            m.append(try arena.persistentTensor(.f32, try Shape(count)))
            v.append(try arena.persistentTensor(.f32, try Shape(count)))
        }
        self.firstMoments = m
        self.secondMoments = v
        self.weightDecayMode = weightDecayMode
        self.groups = groups
        self.groupStepCounts = [Int](repeating: 0, count: groups.count)
        self.beta1Powers = [Double](repeating: 1, count: groups.count)
        self.beta2Powers = [Double](repeating: 1, count: groups.count)
    }

    private static func validate(_ g: Group, index i: Int) throws(LichenError) {
        guard g.learningRate.isFinite && g.learningRate >= 0 else {
            throw .invalidArgument(name: "learningRate", value: i, reason: "group at this index: must be finite and >= 0")
        }
        guard g.beta1 >= 0 && g.beta1 < 1 else {
            throw .invalidArgument(name: "beta1", value: i, reason: "group at this index: must lie in [0, 1)")
        }
        guard g.beta2 >= 0 && g.beta2 < 1 else {
            throw .invalidArgument(name: "beta2", value: i, reason: "group at this index: must lie in [0, 1)")
        }
        guard g.epsilon.isFinite && g.epsilon > 0 else {
            throw .invalidArgument(name: "epsilon", value: i, reason: "group at this index: must be finite and > 0")
        }
        guard g.weightDecay.isFinite && g.weightDecay >= 0 else {
            throw .invalidArgument(name: "weightDecay", value: i, reason: "group at this index: must be finite and >= 0")
        }
    }

    /// Sets group `group`'s learning rate (a schedule, a warm-up ramp).
    /// - Throws: `.invalidArgument` for a bad group index or a negative or non-finite rate.
    public func setLearningRate(_ rate: Float, group: Int) throws(LichenError) {
        try groups.setLearningRate(rate, group: group)
    }

    /// Sets group `group`'s weight decay λ.
    /// - Throws: `.invalidArgument` for a bad group index or a negative or non-finite λ.
    public func setWeightDecay(_ decay: Float, group: Int) throws(LichenError) {
        try groups.setWeightDecay(decay, group: group)
    }

    /// Turns group `group` on or off.
    /// - Throws: `.invalidArgument` for a bad group index.
    public func setEnabled(_ enabled: Bool, group: Int) throws(LichenError) {
        try groups.setEnabled(enabled, group: group)
    }

    /// One update of every parameter in an enabled group (equations in the type's comment).
    /// - Throws: `.invalidArgument(name: "gradient", value: parameter index, ...)` when an enabled
    ///   parameter's gradient holds NaN or infinity; nothing is updated when it throws.
    /// - Note: Allocates nothing.
    public func step() throws(LichenError) {
        try parameters.requireFiniteGradients { groups[$0].isEnabled }
        var updated = false
        for g in 0..<groups.count where groups[g].isEnabled {
            beta1Powers[g] *= Double(groups[g].beta1)
            beta2Powers[g] *= Double(groups[g].beta2)
            groupStepCounts[g] += 1
            updated = true
        }
        // Indexed loops: an iterator over the array allocates its accessor frame in debug builds.
        for i in 0..<parameters.parameters.count {
            let p = parameters.parameters[i]
            let h = groups[p.group]
            guard h.isEnabled else { continue }
            let value = try p.value.f32Elements("value"), gradient = try p.gradient.f32Elements("gradient")
            let m = try firstMoments[i].f32Elements("m"), v = try secondMoments[i].f32Elements("v")
            let lr = h.learningRate, wd = h.weightDecay, b1 = h.beta1, b2 = h.beta2, eps = h.epsilon
            let stepSize = Float(Double(lr) / (1 - beta1Powers[p.group]))
            let correction2Root = Float((1 - beta2Powers[p.group]).squareRoot())
            let coupled = weightDecayMode == .coupled && wd != 0
            let shrink: Float = weightDecayMode == .decoupled ? 1 - lr * wd : 1
            for j in 0..<value.count {
                var gj = gradient[j]
                var pj = value[j]
                if coupled { gj += wd * pj }
                pj *= shrink
                let mj = b1 * m[j] + (1 - b1) * gj
                let vj = b2 * v[j] + (1 - b2) * gj * gj
                m[j] = mj
                v[j] = vj
                let denominator = vj.squareRoot() / correction2Root + eps
                value[j] = pj - stepSize * (mj / denominator)
            }
        }
        if updated { stepCount += 1 }
    }

    /// Clips the gradients of enabled groups to a global L2 norm (see
    /// `ParameterList.clipGradientNorm(maxNorm:)`); returns the norm before clipping.
    public func clipGradientNorm(maxNorm: Float) throws(LichenError) -> Float {
        try parameters.clipGradientNorm(maxNorm: maxNorm) { groups[$0].isEnabled }
    }

    /// Clamps the gradients of enabled groups to [−limit, limit] (`ParameterList.clipGradientValues`).
    public func clipGradientValues(limit: Float) throws(LichenError) {
        try parameters.clipGradientValues(limit: limit) { groups[$0].isEnabled }
    }

    /// Shapes of the moment buffers (one per parameter).
    var momentShapes: [Shape] { firstMoments.map { $0.shape } }

    /// Copies m, v, step counts and β powers into (saving) or out of `snapshot`.
    func exchangeState(_ snapshot: OptimizerSnapshot, saving: Bool) throws(LichenError) {
        try snapshot.requireLayout(buffers: 2 * firstMoments.count, counts: groups.count, powers: 2 * groups.count)
        for i in 0..<firstMoments.count {
            if saving {
                try snapshot.buffer(2 * i).copy(from: firstMoments[i])
                try snapshot.buffer(2 * i + 1).copy(from: secondMoments[i])
            } else {
                try firstMoments[i].copy(from: snapshot.buffer(2 * i))
                try secondMoments[i].copy(from: snapshot.buffer(2 * i + 1))
            }
        }
        for g in 0..<groups.count {
            if saving {
                snapshot.setCount(g, groupStepCounts[g])
                snapshot.setPower(2 * g, beta1Powers[g])
                snapshot.setPower(2 * g + 1, beta2Powers[g])
            } else {
                groupStepCounts[g] = snapshot.count(g)
                beta1Powers[g] = snapshot.power(2 * g)
                beta2Powers[g] = snapshot.power(2 * g + 1)
            }
        }
        if saving { snapshot.savedStepCount = stepCount } else { stepCount = snapshot.savedStepCount }
    }

    /// Zeroes m, v, the β powers and every step count (as a freshly made optimizer).
    public func resetState() throws(LichenError) {
        for i in 0..<firstMoments.count {
            try firstMoments[i].f32Elements("m").fill(0)
            try secondMoments[i].f32Elements("v").fill(0)
        }
        for g in 0..<groups.count {
            groupStepCounts[g] = 0
            beta1Powers[g] = 1
            beta2Powers[g] = 1
        }
        stepCount = 0
    }
}
