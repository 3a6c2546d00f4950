/// Stochastic gradient descent with momentum, Nesterov momentum and coupled weight decay,
/// following PyTorch's `torch.optim.SGD` (maximize = false). For each parameter p with
/// gradient g in an enabled group (lr η, momentum μ, dampening τ, weight decay λ), at group
/// step t = 1, 2, ...:
///
///     g ← g + λ p                                  (if λ ≠ 0)
///     b ← g                                        (if μ ≠ 0 and t = 1)
///     b ← μ b + (1 − τ) g                          (if μ ≠ 0 and t > 1)
///     g ← g + μ b  (Nesterov)   or   g ← b         (if μ ≠ 0)
///     p ← p − η g
///
/// Momentum buffers are allocated from the arena at construction for the parameters of groups
/// with μ ≠ 0; `step()` allocates nothing. Gradients are read, never modified.
public final class SGD {
    /// Hyperparameters of one parameter group.
    public struct Group: OptimizerGroup {
        public var learningRate: Float
        public var momentum: Float
        public var dampening: Float
        public var weightDecay: Float
        public var nesterov: Bool
        /// A disabled group is skipped by `step()`: no update, no state change, no step count.
        public var isEnabled: Bool

        public init(
            learningRate: Float, momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0,
            nesterov: Bool = false, isEnabled: Bool = true
        ) {
            self.learningRate = learningRate
            self.momentum = momentum
            self.dampening = dampening
            self.weightDecay = weightDecay
            self.nesterov = nesterov
            self.isEnabled = isEnabled
        }
    }

    public let parameters: ParameterList
    public private(set) var groups: [Group]
    /// Steps taken by each group since construction or the last `resetState()`.
    public private(set) var groupStepCounts: [Int]
    /// Calls of `step()` that updated at least one group.
    public private(set) var stepCount = 0
    private let momentumBuffers: [TensorView?]

    /// - Parameters:
    ///   - parameters: the trainable tensors; `group` indexes `groups`.
    ///   - groups: hyperparameters per group.
    ///   - arena: where the momentum buffers come from.
    /// - Throws: what `ParameterList.init` throws; `.invalidArgument(name:value: group index,
    ///   ...)` for a negative or non-finite learning rate, momentum, dampening or weight decay,
    ///   and for Nesterov without momentum or with dampening (PyTorch's rule); `.budgetExceeded`.
    public init(parameters: [TrainableParameter], groups: [Group], arena: Arena) throws(LichenError) {
        for (i, g) in groups.enumerated() {
            try SGD.validate(g, index: i)
        }
        self.parameters = try ParameterList(parameters, groupCount: groups.count)
        var buffers: [TensorView?] = []
        buffers.reserveCapacity(parameters.count)
        for (i, p) in parameters.enumerated() {
            if groups[p.group].momentum != 0 {
                buffers.append(try arena.persistentTensor(.f32, try Shape(self.parameters.counts[i])))
            } else {
                buffers.append(nil)
            }
        }
        self.momentumBuffers = buffers
        self.groups = groups
        self.groupStepCounts = [Int](repeating: 0, count: groups.count)
    }

    private static func validate(_ g: Group, index i: Int) throws(LichenError) {
        guard g.learningRate.isFinite && g.learningRate >= 0 else {
            throw .invalidArgument(name: "learningRate", value: i, reason: "group at this index: must be finite and >= 0")
        }
        guard g.momentum.isFinite && g.momentum >= 0 else {
            throw .invalidArgument(name: "momentum", value: i, reason: "group at this index: must be finite and >= 0")
        }
        guard g.dampening.isFinite && g.dampening >= 0 else {
            throw .invalidArgument(name: "dampening", value: i, reason: "group at this index: must be finite and >= 0")
        }
        guard g.weightDecay.isFinite && g.weightDecay >= 0 else {
            throw .invalidArgument(name: "weightDecay", value: i, reason: "group at this index: must be finite and >= 0")
        }
        guard !g.nesterov || (g.momentum > 0 && g.dampening == 0) else {
            throw .invalidArgument(name: "nesterov", value: i, reason: "group at this index: needs momentum > 0 and zero dampening")
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
        for (i, p) in parameters.parameters.enumerated() {
            let h = groups[p.group]
            guard h.isEnabled else { continue }
            updated = true
            let first = groupStepCounts[p.group] == 0
            let value = try p.value.f32Elements("value"), gradient = try p.gradient.f32Elements("gradient")
            let lr = h.learningRate, wd = h.weightDecay, mu = h.momentum, damp = 1 - h.dampening
            if let buffer = momentumBuffers[i] {
                let b = try buffer.f32Elements("momentum")
                for j in 0..<value.count {
                    var g = gradient[j]
                    if wd != 0 { g += wd * value[j] }
                    let m = first ? g : mu * b[j] + damp * g
                    b[j] = m
                    g = h.nesterov ? g + mu * m : m
                    value[j] -= lr * g
                }
            } else {
                for j in 0..<value.count {
                    var g = gradient[j]
                    if wd != 0 { g += wd * value[j] }
                    value[j] -= lr * g
                }
            }
        }
        for g in 0..<groups.count where groups[g].isEnabled { groupStepCounts[g] += 1 }
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

    /// Shapes of the momentum buffers (a 1-value placeholder for parameters without one).
    var momentumShapes: [Shape] {
        var out: [Shape] = []
        for b in momentumBuffers {
            if let b { out.append(b.shape) } else if let one = try? Shape(1) { out.append(one) }
        }
        return out
    }

    /// Copies the momentum buffers and step counts into (saving) or out of `snapshot`.
    func exchangeState(_ snapshot: OptimizerSnapshot, saving: Bool) throws(LichenError) {
        try snapshot.requireLayout(buffers: momentumBuffers.count, counts: groups.count, powers: 0)
        for i in 0..<momentumBuffers.count {
            guard let b = momentumBuffers[i] else { continue }
            if saving { try snapshot.buffer(i).copy(from: b) } else { try b.copy(from: snapshot.buffer(i)) }
        }
        for g in 0..<groups.count {
            if saving { snapshot.setCount(g, groupStepCounts[g]) } else { groupStepCounts[g] = snapshot.count(g) }
        }
        if saving { snapshot.savedStepCount = stepCount } else { stepCount = snapshot.savedStepCount }
    }

    /// Zeroes the momentum buffers and every step count (as a freshly made optimizer).
    public func resetState() throws(LichenError) {
        for buffer in momentumBuffers {
            if let buffer { try buffer.f32Elements("momentum").fill(0) }
        }
        for g in 0..<groupStepCounts.count { groupStepCounts[g] = 0 }
        stepCount = 0
    }
}
