/// A saved optimizer state (moments, momentum buffers, step counts and, for Adam, the β
/// powers), to return an optimizer to a known point (RMT's reset to its post-warm-up state).
/// Buffers come from the arena at creation; saving and restoring allocate nothing.
public final class OptimizerSnapshot {
    fileprivate let buffers: [TensorView]
    fileprivate var counts: [Int]
    fileprivate var powers: [Double]
    fileprivate var stepCount = 0

    fileprivate init(shapes: [Shape], countSlots: Int, powerSlots: Int, arena: Arena) throws(LichenError) {
        var list: [TensorView] = []
        for s in shapes { list.append(try arena.persistentTensor(.f32, s)) }
        buffers = list
        counts = [Int](repeating: 0, count: countSlots)
        powers = [Double](repeating: 1, count: powerSlots)
    }
}

extension Adam {
    /// A snapshot sized for this optimizer (m and v of every parameter), holding its current state.
    /// - Throws: `.budgetExceeded`.
    public func makeSnapshot(arena: Arena) throws(LichenError) -> OptimizerSnapshot {
        var shapes: [Shape] = []
        for i in 0..<momentShapes.count { shapes.append(momentShapes[i]); shapes.append(momentShapes[i]) }
        let s = try OptimizerSnapshot(shapes: shapes, countSlots: groups.count, powerSlots: 2 * groups.count, arena: arena)
        try save(into: s)
        return s
    }

    /// Copies the state into `snapshot` (one made by this optimizer's `makeSnapshot`).
    /// - Note: Allocates nothing.
    public func save(into snapshot: OptimizerSnapshot) throws(LichenError) {
        try exchangeState(snapshot, saving: true)
    }

    /// Returns the state to `snapshot`'s.
    /// - Note: Allocates nothing.
    public func restore(from snapshot: OptimizerSnapshot) throws(LichenError) {
        try exchangeState(snapshot, saving: false)
    }
}

extension SGD {
    /// A snapshot sized for this optimizer (its momentum buffers), holding its current state.
    /// - Throws: `.budgetExceeded`.
    public func makeSnapshot(arena: Arena) throws(LichenError) -> OptimizerSnapshot {
        let s = try OptimizerSnapshot(shapes: momentumShapes, countSlots: groups.count, powerSlots: 0, arena: arena)
        try save(into: s)
        return s
    }

    /// Copies the state into `snapshot` (one made by this optimizer's `makeSnapshot`).
    /// - Note: Allocates nothing.
    public func save(into snapshot: OptimizerSnapshot) throws(LichenError) {
        try exchangeState(snapshot, saving: true)
    }

    /// Returns the state to `snapshot`'s.
    /// - Note: Allocates nothing.
    public func restore(from snapshot: OptimizerSnapshot) throws(LichenError) {
        try exchangeState(snapshot, saving: false)
    }
}

/// Snapshot access for the optimizers' own files.
extension OptimizerSnapshot {
    func requireLayout(buffers count: Int, counts: Int, powers: Int) throws(LichenError) {
        guard buffers.count == count && self.counts.count == counts && self.powers.count == powers else {
            throw .invalidArgument(name: "snapshot", value: buffers.count, reason: "made by another optimizer")
        }
    }

    func buffer(_ i: Int) -> TensorView { buffers[i] }
    func count(_ i: Int) -> Int { counts[i] }
    func setCount(_ i: Int, _ v: Int) { counts[i] = v }
    func power(_ i: Int) -> Double { powers[i] }
    func setPower(_ i: Int, _ v: Double) { powers[i] = v }
    var savedStepCount: Int {
        get { stepCount }
        set { stepCount = newValue }
    }
}

extension OptimizerSnapshot {
    /// Slot counts, for the adapted state's file.
    var bufferCount: Int { buffers.count }
    var countSlots: Int { counts.count }
    var powerSlots: Int { powers.count }
}
