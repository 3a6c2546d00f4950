/// The settings every optimizer's parameter group has, so the validated setters are written once.
public protocol OptimizerGroup {
    var learningRate: Float { get set }
    var weightDecay: Float { get set }
    /// A disabled group is skipped by the optimizer's step.
    var isEnabled: Bool { get set }
}

extension Array where Element: OptimizerGroup {
    /// Sets group `group`'s learning rate.
    /// - Throws: `.invalidArgument` for a bad group index or a negative or non-finite rate;
    ///   nothing changes then.
    mutating func setLearningRate(_ rate: Float, group: Int) throws(LichenError) {
        try requireGroup(group)
        guard rate.isFinite && rate >= 0 else {
            throw .invalidArgument(name: "learningRate", value: group, reason: "group at this index: must be finite and >= 0")
        }
        self[group].learningRate = rate
    }

    /// Sets group `group`'s weight decay.
    /// - Throws: `.invalidArgument` for a bad group index or a negative or non-finite decay;
    ///   nothing changes then.
    mutating func setWeightDecay(_ decay: Float, group: Int) throws(LichenError) {
        try requireGroup(group)
        guard decay.isFinite && decay >= 0 else {
            throw .invalidArgument(name: "weightDecay", value: group, reason: "group at this index: must be finite and >= 0")
        }
        self[group].weightDecay = decay
    }

    /// Turns group `group` on or off.
    /// - Throws: `.invalidArgument` for a bad group index.
    mutating func setEnabled(_ enabled: Bool, group: Int) throws(LichenError) {
        try requireGroup(group)
        self[group].isEnabled = enabled
    }

    private func requireGroup(_ group: Int) throws(LichenError) {
        guard group >= 0 && group < count else {
            throw .invalidArgument(name: "group", value: group, reason: "no such parameter group")
        }
    }
}
