/// Everything a running method has learned, as one list: the values it trains (norm γ and β,
/// a trainable LoRA's A and B, every f32 parameter in full mode), its teacher copies (CoTTA,
/// RMT), RMT's projector, the optimizer's moments, step counts and β powers, the method's
/// counters and random streams, and the session's step count; with online learning
/// (`OnlineLearning`), the values it trains, its η and its frame count. The anchor (CoTTA) and the
/// prototypes (RMT) are not in it: the first is the model as loaded, the second comes from the
/// source data at assembly.
///
/// Two uses: an in-memory copy (`Copy`, the collapse guard's last good state) and the state
/// file (`StateFile`), both made at assembly, so saving and loading allocate nothing.
///
/// Not in it: the saved batch statistics of the last update's forward (the next update saves
/// fresh ones; until then a frame adapter predicts from its window, a learner from the last
/// version it published), the frame window and the source pack's read position.
public final class AdaptedState {
    let session: AdaptationSession
    let learning: OnlineLearning?
    /// The live values, in a fixed order, and their names.
    let values: [TensorView]
    public let names: [String]
    let optimizer: AdaptationOptimizerState?
    /// Staging for the optimizer's state (moments, counts, powers).
    let optimizerStage: OptimizerSnapshot?
    /// The method's counters, then the session's step count.
    let counters: UnsafeMutablePointer<UInt64>
    public let counterCount: Int
    /// f32 values in all (live values and optimizer buffers).
    public let valueCount: Int

    /// - Throws: `.budgetExceeded`.
    init(session: AdaptationSession, learning: OnlineLearning? = nil, arena: Arena) throws(LichenError) {
        self.session = session
        self.learning = learning
        var v: [TensorView] = [], n: [String] = [], o: AdaptationOptimizerState? = nil
        var methodCounters = 0
        switch session.policy {
        case .source, .bnAdapt:
            break
        case .tent(let t):
            (v, n, o) = t.stateParts(store: session.store)
        case .cotta(let c):
            (v, n, o) = c.stateParts()
            methodCounters = CoTTA.stateCounterCount
        case .rmt(let r):
            (v, n, o) = r.stateParts()
            methodCounters = RMT.stateCounterCount
        }
        if let learning {
            v += learning.values
            n += learning.names.map { "learn." + $0 }
        }
        values = v
        names = n
        optimizer = o
        optimizerStage = try o?.makeSnapshot(arena: arena)
        counterCount = methodCounters + 1 + (optimizerStage.map { 1 + $0.countSlots + $0.powerSlots } ?? 0)
            + (learning == nil ? 0 : OnlineLearning.stateCounterCount)
        let raw = try arena.allocatePersistent(byteCount: 8 * counterCount, alignment: 8)
        counters = raw.bindMemory(to: UInt64.self, capacity: counterCount)
        counters.initialize(repeating: 0, count: counterCount)
        var total = 0
        for t in v { total += t.elementCount }
        if let s = optimizerStage { for i in 0..<s.bufferCount { total += s.buffer(i).elementCount } }
        valueCount = total
        var all = n
        for k in 0..<(optimizerStage?.bufferCount ?? 0) { all.append("optimizer.\(k)") }
        tensorNames = all
    }

    /// Whether the method has anything to keep (source and BN-adapt learn nothing).
    public var isEmpty: Bool { values.isEmpty }

    /// The optimizer's buffers after the live values: the tensors the file and the copy hold.
    var tensorCount: Int { values.count + (optimizerStage?.bufferCount ?? 0) }

    func tensor(_ i: Int) -> TensorView {
        i < values.count ? values[i] : optimizerStage!.buffer(i - values.count)  // safe: i < tensorCount
    }

    func tensorName(_ i: Int) -> String { tensorNames[i] }

    /// `names`, then "optimizer.<k>" per optimizer buffer (made once: saving allocates nothing).
    let tensorNames: [String]

    /// Gathers the counters (method, session, optimizer) and the optimizer's state into the
    /// staging area. Call before reading `tensor(_:)` / `counters` for a save.
    /// - Note: Allocates nothing.
    func gather() throws(LichenError) {
        var k = 0
        switch session.policy {
        case .cotta(let c): c.readStateCounters(counters); k = CoTTA.stateCounterCount
        case .rmt(let r): r.readStateCounters(counters); k = RMT.stateCounterCount
        default: break
        }
        counters[k] = UInt64(session.stepCount)
        k += 1
        if let o = optimizer, let s = optimizerStage {
            try o.save(into: s)
            counters[k] = UInt64(s.savedStepCount)
            k += 1
            for g in 0..<s.countSlots { counters[k] = UInt64(s.count(g)); k += 1 }
            for g in 0..<s.powerSlots { counters[k] = s.power(g).bitPattern; k += 1 }
        }
        learning?.readStateCounters(counters + k)
    }

    /// Sets the method, the session and the optimizer from the counters and the staged
    /// optimizer buffers (after `tensor(_:)` and `counters` were filled).
    /// - Note: Allocates nothing.
    func scatter() throws(LichenError) {
        var k = 0
        switch session.policy {
        case .cotta(let c): c.writeStateCounters(counters); k = CoTTA.stateCounterCount
        case .rmt(let r): r.writeStateCounters(counters); k = RMT.stateCounterCount
        default: break
        }
        session.restoreStepCount(Int(truncatingIfNeeded: counters[k]))
        k += 1
        if let o = optimizer, let s = optimizerStage {
            s.savedStepCount = Int(truncatingIfNeeded: counters[k])
            k += 1
            for g in 0..<s.countSlots { s.setCount(g, Int(truncatingIfNeeded: counters[k])); k += 1 }
            for g in 0..<s.powerSlots { s.setPower(g, Double(bitPattern: counters[k])); k += 1 }
            try o.restore(from: s)
            try o.zeroGradients()
        }
        try learning?.writeStateCounters(counters + k)
    }

    /// An in-memory copy of the state (the collapse guard's last good state).
    public final class Copy {
        let tensors: ParameterCopies
        let counters: UnsafeMutablePointer<UInt64>
        /// Whether it holds a state.
        public internal(set) var isSet = false

        init(of state: AdaptedState, arena: Arena) throws(LichenError) {
            var list: [TensorView] = []
            for i in 0..<state.tensorCount { list.append(state.tensor(i)) }
            tensors = try ParameterCopies(of: list, arena: arena)
            let raw = try arena.allocatePersistent(byteCount: 8 * max(1, state.counterCount), alignment: 8)
            counters = raw.bindMemory(to: UInt64.self, capacity: max(1, state.counterCount))
        }
    }

    /// A copy sized for this state (empty until `save(into:)`).
    /// - Throws: `.budgetExceeded`.
    func makeCopy(arena: Arena) throws(LichenError) -> Copy { try Copy(of: self, arena: arena) }

    /// Copies the state into `copy`.
    /// - Note: Allocates nothing.
    func save(into copy: Copy) throws(LichenError) {
        try gather()
        for i in 0..<tensorCount { try copy.tensors.tensors[i].copy(from: tensor(i)) }
        copy.counters.update(from: counters, count: counterCount)
        copy.isSet = true
    }

    /// Returns the state to `copy`'s.
    /// - Note: Allocates nothing.
    func load(from copy: Copy) throws(LichenError) {
        guard copy.isSet else { throw .invalidArgument(name: "state", value: 0, reason: "the copy holds no state") }
        for i in 0..<tensorCount { try tensor(i).copy(from: copy.tensors.tensors[i]) }
        counters.update(from: copy.counters, count: counterCount)
        try scatter()
    }
}
