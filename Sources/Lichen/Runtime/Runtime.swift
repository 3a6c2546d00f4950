import CRuntime

/// One model running frame by frame inside one memory budget: what a robot's control binary
/// links (through the C ABI, lichen.h) or uses directly from Swift.
///
/// Lifecycle: `init` (the budget, optionally the control endpoint's socket) → `loadModel` →
/// `setMethod` (optional; the default is the source model) → `step` per control tick →
/// `deinit` (stops the endpoint, frees the budget).
///
/// What lives where: every byte Lichen allocates after `init` is in `arena` — the step memory
/// of the graph and the adaptation method, the input staging tensor, the metrics ring, the
/// endpoint's buffers and the atomic cells on the low end; adapter sets loaded while running
/// on the heap end. Base weights are mapped from the model file (or copied in with
/// `copyQuantized`).
///
/// Threads:
/// - The loop thread calls `loadModel`, `setMethod`, `step`, `reset`, `checkpoint`, `restore`
///   (never two of them at once).
/// - The control endpoint's thread (and any thread calling the adapter operations or
///   `status`) works on the control side: it prepares adapter sets and publishes them through
///   `StepBoundarySwap`; the loop picks a new set up at the start of its next step with one
///   atomic exchange and never waits on a lock the control side holds.
/// - Counters (steps, resets, swaps, method) are atomic cells, readable from any thread.
public final class Runtime: @unchecked Sendable {
    /// The budget.
    public let arena: Arena
    /// Durations of the last steps (`RuntimeConfiguration.metricsWindow`).
    public let stepTimes: StepTimes
    /// Durations of the last updates made inside `step` (synchronous mode: the steps that
    /// adapted); learner mode reads its learner's own.
    let updateTimes: StepTimes
    /// Updates whose times the figures last summarised.
    private var summarisedUpdates = -1
    public let configuration: RuntimeConfiguration

    // Atomic cells: steps, resets, swaps, method code, model loaded, active adapter count,
    // newest adapter generation.
    let counters: UnsafeMutableRawPointer
    static let stepsCell = 0, resetsCell = 1, swapsCell = 2, methodCell = 3, loadedCell = 4
    static let activeAdaptersCell = 5, adapterGenerationCell = 6
    // The running method's figures, published by the loop after each step: updates, guard
    // resets, rejected frames, last loss (f32 bits), effective classes (f64 bits).
    static let updatesCell = 7, guardResetsCell = 8, rejectedCell = 9, lossCell = 10, effectiveCell = 11
    // The learner thread's figures (learner mode) and the update times (both modes).
    static let droppedCell = 12, lagCell = 13, maximumLagCell = 14, versionCell = 15, updateP50Cell = 16, updateP99Cell = 17
    static let learnerCell = 18, tornCell = 19, updateMaxCell = 20
    // The state file: restored (0 none, 1 restored, 2 refused), saves, failed saves, the last save.
    static let stateCell = 21, savesCell = 22, saveFailuresCell = 23, lastSaveUnixCell = 24, lastSaveDurationCell = 25
    static let lastGoodResetsCell = 26
    // Online learning: labelled frames, updates, decisions, decisions taken, η (f64 bits).
    static let learnSamplesCell = 27, learnUpdatesCell = 28, learnDecisionsCell = 29, learnTakenCell = 30, learningRateCell = 31
    static let cellCount = 32

    /// The active adapter set, handed from the control side to the loop at step boundaries.
    public let adapters: StepBoundarySwap<AdapterSet>
    /// The loaded model's identity, computed at load from its initial parameters (control side
    /// reads it under `controlMutex`).
    var adapterBase: AdapterBase?
    /// The model file's content hash (`GGUFFile.contentHash`), which state files must match.
    public private(set) var modelHash: UInt64 = 0
    /// Name → file of the adapters in the newest set (under `controlMutex`).
    var adapterFiles: [String: String] = [:]

    // Control side lock: the model's graph as adapter sets are built for it (setMethod holds it
    // while it replaces the graph). The loop's steps never take it.
    let controlMutex: UnsafeMutableRawPointer
    // Serialises readers of the step-time summary (its scratch); held only while summarising.
    private let metricsMutex: UnsafeMutableRawPointer
    // Last error of a call made on this object (guarded by its own small lock, which the
    // control endpoint never takes).
    private let errorMutex: UnsafeMutableRawPointer
    private var lastErrorValue: LichenError?

    // Model state (loop side; set once by loadModel).
    public private(set) var file: GGUFFile?
    public private(set) var spec: ModelSpec?
    public private(set) var store: ParameterStore?
    /// The method running frame by frame (assembled from `plan`: its session, frame adapter,
    /// guard and source pack).
    public private(set) var running: RunningMethod?
    /// The running method's frame adapter (nil before a model is loaded).
    public var frames: FrameAdapter? { running?.frames }
    /// The method's session (nil before a model is loaded).
    public var session: AdaptationSession? { running?.session }
    /// [1, input shape...]: the shape a frame is viewed with.
    private var frameShape: Shape?
    /// The low end after the parameters: `setMethod` rolls back to here to rebuild the session.
    private var afterParameters: LowEndMark?
    /// The running method's plan (`setMethod`).
    public private(set) var plan = AdaptationPlan()
    public var method: AdaptationMethod { plan.method }

    var endpoint: ControlEndpoint?

    /// Creates the budget and, when `configuration.socketPath` is set, starts the control
    /// endpoint there.
    ///
    /// - Throws: what `Arena(byteCount:)` throws; `.budgetExceeded` when the runtime's own
    ///   structures do not fit; `.fileError(path:call:errno:)` when the socket cannot be made.
    public convenience init(budgetBytes: Int, configuration: RuntimeConfiguration = RuntimeConfiguration()) throws(LichenError) {
        try self.init(arena: try Arena(byteCount: budgetBytes), configuration: configuration)
    }

    /// A runtime over an arena made by the caller (for example over the caller's buffer). The
    /// arena should be fresh: `setMethod` rolls its low end back to where `loadModel` left it.
    public init(arena: Arena, configuration: RuntimeConfiguration = RuntimeConfiguration()) throws(LichenError) {
        self.arena = arena
        self.configuration = configuration
        stepTimes = try StepTimes(window: configuration.metricsWindow, arena: arena)
        updateTimes = try StepTimes(window: 256, arena: arena)
        let cell = lcr_atomic_cell_size()
        counters = try arena.allocatePersistent(byteCount: Runtime.cellCount * cell, alignment: lcr_atomic_cell_alignment())
        for i in 0..<Runtime.cellCount { lcr_atomic_u64_store(counters + i * cell, 0) }
        lcr_atomic_u64_store(counters + Runtime.methodCell * cell, Runtime.methodCode(.source))
        let mutexAlignment = max(16, lcr_os_mutex_alignment())
        controlMutex = try arena.allocatePersistent(byteCount: lcr_os_mutex_size(), alignment: mutexAlignment)
        errorMutex = try arena.allocatePersistent(byteCount: lcr_os_mutex_size(), alignment: mutexAlignment)
        metricsMutex = try arena.allocatePersistent(byteCount: lcr_os_mutex_size(), alignment: mutexAlignment)
        let a = lcr_os_mutex_init(controlMutex)
        guard a == 0 else { throw .systemError(call: "pthread_mutex_init", errno: Int32(a)) }
        let b = lcr_os_mutex_init(errorMutex)
        guard b == 0 else {
            lcr_os_mutex_destroy(controlMutex)
            throw .systemError(call: "pthread_mutex_init", errno: Int32(b))
        }
        let c = lcr_os_mutex_init(metricsMutex)
        guard c == 0 else {
            lcr_os_mutex_destroy(controlMutex)
            lcr_os_mutex_destroy(errorMutex)
            throw .systemError(call: "pthread_mutex_init", errno: Int32(c))
        }
        adapters = try StepBoundarySwap<AdapterSet>(initial: nil, arena: arena)
        if let path = configuration.socketPath {
            endpoint = try ControlEndpoint(path: path, arena: arena, configuration: configuration)
            // safe: the endpoint is stopped in deinit before `self` goes away.
            endpoint?.start(context: Unmanaged.passUnretained(self).toOpaque())
            if let e = endpoint, !e.isRunning {
                let code = e.startError
                endpoint = nil
                throw .fileError(path: path, call: "lcr_control_start", errno: code)
            }
        }
    }

    deinit {
        endpoint?.stop()
        endpoint = nil
        running?.stopLearner()
        running?.finalSave()
        // The graph and its set refer to each other: break the cycle so both go.
        try? running?.session.policy.setSkillAdapters(nil)
        lcr_os_mutex_destroy(controlMutex)
        lcr_os_mutex_destroy(errorMutex)
        lcr_os_mutex_destroy(metricsMutex)
    }

    // MARK: - Counters

    @inline(__always)
    func cell(_ index: Int) -> UnsafeMutableRawPointer { counters + index * lcr_atomic_cell_size() }

    /// Frames stepped since creation (failed steps are not counted).
    public var stepCount: UInt64 { lcr_atomic_u64_load(cell(Runtime.stepsCell)) }
    /// `reset()` calls.
    public var resetCount: UInt64 { lcr_atomic_u64_load(cell(Runtime.resetsCell)) }
    /// Steps at which the loop picked up a new adapter set.
    public var swapCount: UInt64 { lcr_atomic_u64_load(cell(Runtime.swapsCell)) }
    /// Whether `loadModel` succeeded.
    public var isModelLoaded: Bool { lcr_atomic_u64_load(cell(Runtime.loadedCell)) != 0 }

    static let methods: [AdaptationMethod] = AdaptationMethod.allCases

    static func methodCode(_ m: AdaptationMethod) -> UInt64 {
        for (i, x) in methods.enumerated() where x == m { return UInt64(i + 1) }
        return 0
    }

    /// The method's name, readable from any thread.
    public var methodName: String {
        let code = Int(lcr_atomic_u64_load(cell(Runtime.methodCell)))
        return code >= 1 && code <= Runtime.methods.count ? Runtime.methods[code - 1].name : "none"
    }

    // MARK: - Last error

    /// The error of the last call on this runtime that failed (nil if none has).
    public var lastError: LichenError? {
        lcr_os_mutex_lock(errorMutex)
        let e = lastErrorValue
        lcr_os_mutex_unlock(errorMutex)
        return e
    }

    /// Records `error` as the last error (for callers that fail before reaching the runtime,
    /// such as the C ABI's argument checks).
    public func recordError(_ error: LichenError) {
        _ = failed(error)
    }

    /// Records `error` as the last error and returns it (for `throw runtime.failed(e)`).
    func failed(_ error: LichenError) -> LichenError {
        lcr_os_mutex_lock(errorMutex)
        lastErrorValue = error
        lcr_os_mutex_unlock(errorMutex)
        return error
    }

    /// Runs `body`, recording what it throws as the last error.
    func recording<R>(_ body: () throws(LichenError) -> R) throws(LichenError) -> R {
        do {
            return try body()
        } catch {
            throw failed(error)
        }
    }

    // MARK: - Model

    /// Loads the model file at `path`: maps it (or reads it, `mode`), reads its description,
    /// loads its parameters into the budget and builds the step graph of the current method.
    ///
    /// - Parameters:
    ///   - copyQuantized: copy quantized weights into the budget instead of adopting views of
    ///     the mapping (boards without mmap).
    /// - Throws: `.invalidArgument(name: "model", ...)` when a model is already loaded; what
    ///   `GGUFFile(path:)`, `ModelFile.readSpec`, `ModelFile.loadParameters` and
    ///   `AdaptationSession.init` throw. On failure the low end is rolled back.
    public func loadModel(path: String, mode loadMode: GGUFFile.LoadMode = .map, copyQuantized: Bool = false) throws(LichenError) {
        try recording { () throws(LichenError) in
            guard file == nil else {
                throw .invalidArgument(name: "model", value: 1, reason: "a model is already loaded; create another runtime for another model")
            }
            let start = arena.lowEndMark()
            do throws(LichenError) {
                let f = try GGUFFile(path: path, mode: loadMode, maximumBytes: loadMode == .read ? arena.stats.bytesLeft : Int.max)
                let s = try ModelFile.readSpec(f)
                let st = ParameterStore(arena: arena)
                try ModelFile.loadParameters(f, spec: s, into: st, trainable: false, copyQuantized: copyQuantized)
                var dims = [1]
                dims += s.inputShape.dimensions
                let shape = try Shape(dimensions: dims)
                let mark = arena.lowEndMark()
                let adapter = try assemble(plan, spec: s, store: st)
                // The identity adapters are checked against: the model's initial parameters.
                let base = try AdapterBase(name: (try? f.string("general.name")) ?? s.architecture, store: st)
                lcr_os_mutex_lock(controlMutex)
                adapterBase = base
                modelHash = f.contentHash()
                file = f
                spec = s
                store = st
                frameShape = shape
                afterParameters = mark
                running = adapter
                lcr_os_mutex_unlock(controlMutex)
                lcr_atomic_u64_store(cell(Runtime.loadedCell), 1)
            } catch {
                try? arena.resetLowEnd(to: start)
                throw error
            }
        }
    }

    /// The number of f32 values a frame holds (the model's input element count); 0 before a
    /// model is loaded.
    public var frameElementCount: Int { frameShape?.elementCount ?? 0 }
    /// Logits per frame (the class count); 0 before a model is loaded.
    public var classCount: Int { session?.classes ?? 0 }

    /// The runtime's one way to build a method: the plan, assembled in the budget. The
    /// runtime steps frames, so a batch plan is refused.
    private func assemble(_ p: AdaptationPlan, spec: ModelSpec, store: ParameterStore) throws(LichenError) -> RunningMethod {
        guard case .frames = p.framing else {
            throw .invalidArgument(name: "framing", value: p.framing.rows, reason: "a runtime steps frames: give the plan a window and an every")
        }
        return try p.assemble(spec: spec, store: store, arena: arena)
    }

    /// Chooses the adaptation method and all its settings (`AdaptationPlan`, frame mode) for
    /// the following steps: the running method is let go (its trained values back to the
    /// model's), the step memory is planned again in the space it used, and the plan is
    /// assembled there (source pack, CoTTA's threshold, RMT's prototypes and warm-up included:
    /// `running.setupNanoseconds` says what that cost). The active adapter set is rebuilt for
    /// the new graph.
    ///
    /// A plan that `AdaptationPlan.validate` refuses, a source pack that cannot be read or
    /// does not fit the model, or a batch plan changes nothing. A failure during the assembly
    /// itself (`.budgetExceeded`) rebuilds the previous plan and puts back its trained values
    /// (the norm parameters; LoRA, teacher and optimizer state start over): the runtime keeps
    /// running the previous method.
    ///
    /// - Throws: `.invalidArgument(name: "model", ...)` before a model is loaded; what
    ///   `AdaptationPlan.validate`, `SourcePack.check` and `AdaptationPlan.assemble` throw.
    public func setMethod(_ newPlan: AdaptationPlan) throws(LichenError) {
        try recording { () throws(LichenError) in
            guard let spec, let store, let mark = afterParameters, let current = running else {
                throw .invalidArgument(name: "model", value: 0, reason: "load a model before choosing a method")
            }
            guard case .frames = newPlan.framing else {
                throw .invalidArgument(name: "framing", value: newPlan.framing.rows,
                                       reason: "a runtime steps frames: give the plan a window and an every")
            }
            try newPlan.validate(spec: spec, store: store, hasProvider: false)
            if newPlan.needsSource, let path = newPlan.sourcePack { try SourcePack.check(path: path, spec: spec) }
            // The running method's trained values, staged on the budget's heap (when it has
            // room) so that a failure after the teardown can put them back.
            let stagedCount = checkpointByteCount
            let staged: UnsafeMutableRawPointer? = stagedCount > 16 ? try? arena.heapAllocate(byteCount: stagedCount) : nil
            defer { if let staged { _ = arena.heapFree(staged) } }
            var stagedBytes = 0
            if let staged { stagedBytes = (try? checkpoint(into: UnsafeMutableRawBufferPointer(start: staged, count: stagedCount))) ?? 0 }
            let previous = plan
            // The learner thread goes first (its job ends): the trainables are the loop's again.
            current.stopLearner()
            current.finalSave()
            try current.resetTrainables()
            lcr_os_mutex_lock(controlMutex)
            defer { lcr_os_mutex_unlock(controlMutex) }
            // The old graph lets go of its set (the control side still holds it, so this frees
            // nothing here); the set is rebuilt for the new graph below.
            try current.session.policy.setSkillAdapters(nil)
            running = nil
            // Gradients made by the old method live above the mark.
            store.forgetGradients()
            try arena.resetLowEnd(to: mark)
            do throws(LichenError) {
                running = try assemble(newPlan, spec: spec, store: store)
                plan = newPlan
            } catch {
                store.forgetGradients()
                try arena.resetLowEnd(to: mark)
                running = try assemble(previous, spec: spec, store: store)
                try graphChangedLocked()
                if let staged, stagedBytes > 0 {
                    try? restore(from: UnsafeRawBufferPointer(start: staged, count: stagedBytes))
                }
                throw error
            }
            try graphChangedLocked()
            lcr_atomic_u64_store(cell(Runtime.methodCell), Runtime.methodCode(newPlan.method))
            clearMethodFigures()
            try attachState()
            publishMethodFigures()
            publishLearningFigures()
            stepTimes.clear()
        }
    }

    /// Copies the running method's figures into the atomic cells `status()` reads (loop thread).
    func publishMethodFigures() {
        guard let running else { return }
        lcr_atomic_u64_store(cell(Runtime.updatesCell), UInt64(running.updateCount))
        lcr_atomic_u64_store(cell(Runtime.guardResetsCell), UInt64(running.guardResetCount))
        lcr_atomic_u64_store(cell(Runtime.rejectedCell), UInt64(running.rejectedFrameCount))
        lcr_atomic_u64_store(cell(Runtime.lossCell), UInt64(running.lastLoss.bitPattern))
        lcr_atomic_u64_store(cell(Runtime.effectiveCell), running.effectiveClasses.bitPattern)
        let learner = running.learner
        if let learner {
            lcr_atomic_u64_store(cell(Runtime.droppedCell), UInt64(learner.droppedFrames))
            lcr_atomic_u64_store(cell(Runtime.lagCell), UInt64(learner.lag))
            lcr_atomic_u64_store(cell(Runtime.maximumLagCell), UInt64(learner.maximumLag))
            lcr_atomic_u64_store(cell(Runtime.versionCell), learner.currentVersion)
            lcr_atomic_u64_store(cell(Runtime.tornCell), UInt64(learner.tornPredictions))
        }
        lcr_atomic_u64_store(cell(Runtime.learnerCell), learner?.isRunning == true ? 1 : 0)
        if let saver = running.saver {
            lcr_atomic_u64_store(cell(Runtime.savesCell), saver.saveCount)
            lcr_atomic_u64_store(cell(Runtime.saveFailuresCell), saver.failureCount)
            lcr_atomic_u64_store(cell(Runtime.lastSaveUnixCell), saver.lastSaveUnixNanoseconds)
            lcr_atomic_u64_store(cell(Runtime.lastSaveDurationCell), saver.lastSaveNanoseconds)
        }
        lcr_atomic_u64_store(cell(Runtime.lastGoodResetsCell), UInt64(running.lastGoodResetCount + (learner?.lastGoodResetCount ?? 0)))
        // Percentiles only when an update was made since the last summary (a sort of the ring).
        let updates = running.updateCount
        if updates != summarisedUpdates {
            summarisedUpdates = updates
            let t = (learner?.updateTimes ?? updateTimes).summary()
            lcr_atomic_u64_store(cell(Runtime.updateP50Cell), t.p50)
            lcr_atomic_u64_store(cell(Runtime.updateP99Cell), t.p99)
            lcr_atomic_u64_store(cell(Runtime.updateMaxCell), t.max)
        }
    }

    /// The state file for the method just assembled (`configuration.statePath`): restores a
    /// file that matches the model and plan; records why one that does not was refused (the
    /// last error) and leaves it in place, saving over it only with `stateOverwrite`; then
    /// attaches the saver. A missing file is a fresh start.
    /// - Throws: `.budgetExceeded` (the saver's image buffer).
    private func attachState() throws(LichenError) {
        lcr_atomic_u64_store(cell(Runtime.stateCell), 0)
        guard let path = configuration.statePath, let running, !running.state.isEmpty, file != nil else { return }
        let planText = running.plan.stateIdentity
        var refused = false
        let expected = StateFile.byteCount(state: running.state, planText: planText)
        do throws(LichenError) {
            let file = try UntrustedFile(path: path, maximumBytes: 2 * expected + (1 << 20))
            guard let buffer = try? arena.heapAllocate(byteCount: max(1, file.byteCount)) else {
                throw .budgetExceeded(asked: file.byteCount, left: arena.stats.bytesLeft)
            }
            defer { _ = arena.heapFree(buffer) }
            try file.readAll(into: buffer)
            let bytes = UnsafeRawBufferPointer(start: buffer, count: file.byteCount)
            let contents = try StateFile.parse(bytes)
            try StateFile.restore(contents, bytes: bytes, into: running.state, modelHash: modelHash, planText: planText)
            lcr_atomic_u64_store(cell(Runtime.stateCell), 1)
            running.stateLoaded()
        } catch {
            if case .fileError(_, _, let code) = error, code == 2 {
                // ENOENT: no state yet.
            } else {
                refused = true
                lcr_atomic_u64_store(cell(Runtime.stateCell), 2)
                recordError(error)
            }
        }
        let saver = try StateSaver(path: path, state: running.state, planText: planText, modelHash: modelHash,
                                   everyUpdates: configuration.stateEveryUpdates, everySeconds: configuration.stateEverySeconds,
                                   enabled: !refused || configuration.stateOverwrite, arena: arena)
        running.saver = saver
        // The learner is idle (no frame was stepped since the assembly).
        running.learner?.saver = saver
    }

    /// Zeroes the figures of the previous method (a method change).
    private func clearMethodFigures() {
        for c in Runtime.updatesCell..<Runtime.cellCount where c != Runtime.lossCell { lcr_atomic_u64_store(cell(c), 0) }
        updateTimes.clear()
        summarisedUpdates = -1
    }

    // MARK: - Step

    /// One control tick: picks up a newly published adapter set (one atomic exchange), stages
    /// `frame`, predicts it and adapts on it with the current method, and writes the logits
    /// computed before the update into `logits`.
    ///
    /// - Parameters:
    ///   - frame: `frameElementCount` f32 values (the model's input, row-major), all finite.
    ///   - logits: room for at least `classCount` values; the first `classCount` are written.
    /// - Returns: the predicted class (the index of the largest logit; the first on ties).
    /// - Throws: `.invalidArgument(name: "model", ...)` before a model is loaded;
    ///   `.shapeMismatch(operand: "frame", ...)`; `.bufferTooSmall(operand: "logits", ...)`;
    ///   what `AdaptationSession.step` throws (`.nonFiniteValue(operand: "input", ...)`...).
    ///   Nothing changes on failure, and the step is not counted.
    /// - Note: Allocates nothing.
    public func step(frame: UnsafeBufferPointer<Float>, logits: UnsafeMutableBufferPointer<Float>) throws(LichenError) -> Int {
        let started = lcr_os_monotonic_ns()
        let set = adapters.acquire()
        guard let running, let frameShape else {
            throw failed(.invalidArgument(name: "model", value: 0, reason: "load a model before stepping"))
        }
        let n = frameShape.elementCount ?? 0
        guard frame.count == n else {
            throw failed(.shapeMismatch(operand: "frame", dimension: 0, expected: n, got: frame.count))
        }
        let classes = running.classes
        guard logits.count >= classes else {
            throw failed(.bufferTooSmall(operand: "logits", needed: classes * 4, available: logits.count * 4))
        }
        guard let source = frame.baseAddress, let target = logits.baseAddress else {
            throw failed(.invalidArgument(name: "frame", value: 0, reason: "empty buffer"))
        }
        let out: TensorView
        var applied = true
        do throws(LichenError) {
            // safe: the view is only read (FrameAdapter copies it into its window).
            let view = try TensorView(base: UnsafeMutableRawPointer(mutating: source), byteCount: n * 4, type: .f32, shape: frameShape)
            let graph = running.session.graph
            if graph.skillAdapters !== set {
                // With a learner thread working on the graph the set waits for its job to end.
                if let frames = running.frames {
                    applied = try frames.setSkillAdapters(set)
                } else {
                    try running.session.policy.setSkillAdapters(set)
                }
            }
            out = try running.step(frame: view)
        } catch {
            if case .nonFiniteValue = error { lcr_atomic_u64_store(cell(Runtime.rejectedCell), UInt64(running.rejectedFrameCount)) }
            throw failed(error)
        }
        let values = out.floats
        var best = 0
        for i in 0..<classes {
            target[i] = values[i]
            if values[i] > values[best] { best = i }
        }
        // A set not applied yet is not confirmed: the control side keeps the older ones alive.
        if applied, adapters.confirm() { _ = lcr_atomic_u64_fetch_add(cell(Runtime.swapsCell), 1) }
        _ = lcr_atomic_u64_fetch_add(cell(Runtime.stepsCell), 1)
        let took = lcr_os_monotonic_ns() &- started
        if running.learner?.isRunning != true, running.frames?.lastFrameAdapted == true, running.session.method != .source {
            updateTimes.record(nanoseconds: took)
        }
        publishMethodFigures()
        stepTimes.record(nanoseconds: took)
        return best
    }

    /// Online learning (the plan's `learning`): predicts `frame` with the weights as they are,
    /// learns from `label` (`OnlineLearning`), and returns the predicted class. Frames stepped
    /// after an update predict with it. Loop thread, like `step`.
    ///
    /// - Throws: `.invalidArgument(name: "model", ...)` before a model is loaded;
    ///   `.shapeMismatch(operand: "frame", ...)`; `.invalidArgument(name: "learning", ...)` when
    ///   the method was set without learning; what `RunningMethod.learn` throws (a label that is
    ///   not a class, NaN or infinity: nothing changes).
    /// - Note: Allocates nothing.
    public func learn(frame: UnsafeBufferPointer<Float>, label: Int) throws(LichenError) -> Int {
        guard let running, let frameShape else {
            throw failed(.invalidArgument(name: "model", value: 0, reason: "load a model before learning"))
        }
        let n = frameShape.elementCount ?? 0
        guard frame.count == n else {
            throw failed(.shapeMismatch(operand: "frame", dimension: 0, expected: n, got: frame.count))
        }
        guard let source = frame.baseAddress else {
            throw failed(.invalidArgument(name: "frame", value: 0, reason: "empty buffer"))
        }
        do throws(LichenError) {
            // safe: the view is only read (the learner copies it into its memory).
            let view = try TensorView(base: UnsafeMutableRawPointer(mutating: source), byteCount: n * 4, type: .f32, shape: frameShape)
            let predicted = try running.learn(frame: view, label: label)
            publishMethodFigures()
            publishLearningFigures()
            return predicted
        } catch {
            throw failed(error)
        }
    }

    /// Copies online learning's figures into the atomic cells (loop thread).
    func publishLearningFigures() {
        guard let l = running?.learning else { return }
        lcr_atomic_u64_store(cell(Runtime.learnSamplesCell), UInt64(l.sampleCount))
        lcr_atomic_u64_store(cell(Runtime.learnUpdatesCell), UInt64(l.learner.updateCount))
        lcr_atomic_u64_store(cell(Runtime.learnDecisionsCell), UInt64(l.learner.decisionCount))
        lcr_atomic_u64_store(cell(Runtime.learnTakenCell), UInt64(l.learner.takenCount))
        lcr_atomic_u64_store(cell(Runtime.learningRateCell), l.learner.learningRate.bitPattern)
    }

    /// Returns the trained parameters to the model's values and clears the optimizer state
    /// (the adapter set stays as it is).
    /// - Throws: `.invalidArgument(name: "model", ...)` before a model is loaded.
    public func reset() throws(LichenError) {
        try recording { () throws(LichenError) in
            guard let running else {
                throw .invalidArgument(name: "model", value: 0, reason: "load a model before resetting")
            }
            try running.resetTrainables()
            publishLearningFigures()
            _ = lcr_atomic_u64_fetch_add(cell(Runtime.resetsCell), 1)
        }
    }

    // MARK: - Status

    /// The state the control endpoint's status operation reports. Any thread; never waits on
    /// the loop or on a method change (atomic counters, the arena's accounting, the newest
    /// adapter set).
    public func status() -> ControlStatus {
        lcr_os_mutex_lock(metricsMutex)
        let t = stepTimes.summary()
        lcr_os_mutex_unlock(metricsMutex)
        adapters.collect()
        let s = arena.stats
        return ControlStatus(
            budgetBytes: s.reservedBytes, usedBytes: s.reservedBytes - s.bytesLeft, heapInUseBytes: s.heapInUseBytes,
            steps: stepCount, resets: resetCount, swaps: swapCount, method: methodName,
            stepP50Nanoseconds: t.p50, stepP99Nanoseconds: t.p99, stepMaxNanoseconds: t.max,
            activeAdapters: Int(lcr_atomic_u64_load(cell(Runtime.activeAdaptersCell))),
            generation: lcr_atomic_u64_load(cell(Runtime.adapterGenerationCell)), modelLoaded: isModelLoaded)
    }
}

/// Settings fixed when a runtime is created.
public struct RuntimeConfiguration: Sendable {
    /// The control endpoint's socket path (nil: no endpoint).
    public var socketPath: String?
    /// Steps whose durations the metrics keep (percentiles are over these).
    public var metricsWindow: Int = 1024
    /// Clients the endpoint serves at once.
    public var maximumClients: Int = 4
    /// A client must send a whole request, and take its answer, within this many milliseconds.
    public var ioTimeoutMilliseconds: Int = 2000
    /// The adapted state's file (nil: none): restored at `setMethod` when it matches the model
    /// and plan, saved every `stateEveryUpdates` updates or `stateEverySeconds` seconds.
    public var statePath: String?
    public var stateEveryUpdates: Int = 16
    public var stateEverySeconds: Double = 0
    /// Save over a state file that was refused (another model or plan, damaged).
    public var stateOverwrite = false

    public init(socketPath: String? = nil, metricsWindow: Int = 1024, maximumClients: Int = 4, ioTimeoutMilliseconds: Int = 2000,
                statePath: String? = nil, stateEveryUpdates: Int = 16, stateEverySeconds: Double = 0, stateOverwrite: Bool = false) {
        self.socketPath = socketPath
        self.metricsWindow = metricsWindow
        self.maximumClients = maximumClients
        self.ioTimeoutMilliseconds = ioTimeoutMilliseconds
        self.statePath = statePath
        self.stateEveryUpdates = stateEveryUpdates
        self.stateEverySeconds = stateEverySeconds
        self.stateOverwrite = stateOverwrite
    }
}

extension Runtime {
    /// The running method's figures as of the loop's last step (any thread).
    public func methodFigures() -> MethodFigures {
        MethodFigures(
            updates: lcr_atomic_u64_load(cell(Runtime.updatesCell)),
            guardResets: lcr_atomic_u64_load(cell(Runtime.guardResetsCell)),
            rejectedFrames: lcr_atomic_u64_load(cell(Runtime.rejectedCell)),
            lastLoss: Float(bitPattern: UInt32(truncatingIfNeeded: lcr_atomic_u64_load(cell(Runtime.lossCell)))),
            effectiveClasses: Double(bitPattern: lcr_atomic_u64_load(cell(Runtime.effectiveCell))),
            learnerRunning: lcr_atomic_u64_load(cell(Runtime.learnerCell)) != 0,
            droppedFrames: lcr_atomic_u64_load(cell(Runtime.droppedCell)),
            learnerLag: lcr_atomic_u64_load(cell(Runtime.lagCell)),
            maximumLearnerLag: lcr_atomic_u64_load(cell(Runtime.maximumLagCell)),
            version: lcr_atomic_u64_load(cell(Runtime.versionCell)),
            tornPredictions: lcr_atomic_u64_load(cell(Runtime.tornCell)),
            updateP50Nanoseconds: lcr_atomic_u64_load(cell(Runtime.updateP50Cell)),
            updateP99Nanoseconds: lcr_atomic_u64_load(cell(Runtime.updateP99Cell)),
            updateMaxNanoseconds: lcr_atomic_u64_load(cell(Runtime.updateMaxCell)),
            stateRestore: lcr_atomic_u64_load(cell(Runtime.stateCell)),
            stateSaves: lcr_atomic_u64_load(cell(Runtime.savesCell)),
            stateSaveFailures: lcr_atomic_u64_load(cell(Runtime.saveFailuresCell)),
            lastSaveUnixNanoseconds: lcr_atomic_u64_load(cell(Runtime.lastSaveUnixCell)),
            lastSaveNanoseconds: lcr_atomic_u64_load(cell(Runtime.lastSaveDurationCell)),
            lastGoodResets: lcr_atomic_u64_load(cell(Runtime.lastGoodResetsCell)),
            learnSamples: lcr_atomic_u64_load(cell(Runtime.learnSamplesCell)),
            learnUpdates: lcr_atomic_u64_load(cell(Runtime.learnUpdatesCell)),
            learnDecisions: lcr_atomic_u64_load(cell(Runtime.learnDecisionsCell)),
            learnTaken: lcr_atomic_u64_load(cell(Runtime.learnTakenCell)),
            learningRate: Double(bitPattern: lcr_atomic_u64_load(cell(Runtime.learningRateCell))))
    }
}

/// What the running method has done, published by the loop after every step.
public struct MethodFigures: Equatable, Sendable {
    /// Adaptation steps (updates on the window) since the method was set.
    public var updates: UInt64
    /// Resets by the collapse guard (collapse and periodic).
    public var guardResets: UInt64
    /// Frames refused as bad input (NaN, infinity, wrong shape).
    public var rejectedFrames: UInt64
    /// The method's loss on its last update (0 for source and BN-adapt).
    public var lastLoss: Float
    /// The effective number of predicted classes the guard watches (0 without a guard).
    public var effectiveClasses: Double
    /// Whether updates run on a learner thread (learner mode).
    public var learnerRunning: Bool = false
    /// Learner mode: frames no update saw because the learner was busy.
    public var droppedFrames: UInt64 = 0
    /// Learner mode: frames between the newest prediction and the end of the window the version
    /// it used learned from; and the largest such lag.
    public var learnerLag: UInt64 = 0
    public var maximumLearnerLag: UInt64 = 0
    /// Learner mode: the version the loop predicts with (0: the model as loaded).
    public var version: UInt64 = 0
    /// Learner mode: predictions that saw a version being written (0 unless the protocol breaks).
    public var tornPredictions: UInt64 = 0
    /// Update durations over the last updates (synchronous: the whole adapting step; learner:
    /// the learner's job, update and refold), nanoseconds.
    public var updateP50Nanoseconds: UInt64 = 0
    public var updateP99Nanoseconds: UInt64 = 0
    public var updateMaxNanoseconds: UInt64 = 0
    /// The state file at the last method change: 0 none (no path, or no file yet), 1 restored,
    /// 2 refused (the reason is the last error).
    public var stateRestore: UInt64 = 0
    /// State files written, and saves that failed (the previous file stays).
    public var stateSaves: UInt64 = 0
    public var stateSaveFailures: UInt64 = 0
    /// The last save's wall-clock time (Unix ns) and duration (ns).
    public var lastSaveUnixNanoseconds: UInt64 = 0
    public var lastSaveNanoseconds: UInt64 = 0
    /// Collapse-guard resets that returned to the last good state.
    public var lastGoodResets: UInt64 = 0
    /// Online learning: labelled frames since the method was set (or reset), weight updates,
    /// LRR / LRH decisions and those that moved η, and η now (0 without online learning).
    public var learnSamples: UInt64 = 0
    public var learnUpdates: UInt64 = 0
    public var learnDecisions: UInt64 = 0
    public var learnTaken: UInt64 = 0
    public var learningRate: Double = 0
}

extension Runtime {
    /// Bytes of budget a runtime needs to load the model at `modelPath` and run `plan`: a
    /// runtime is made over a scratch reservation of `ceiling` bytes, loads the model, sets the
    /// plan (the source pack read, RMT's warm-up run), and its use is read from the arena's
    /// accounting (the low end at its peak, the heap's extents, the control block); everything
    /// is given back before it returns.
    ///
    /// - Throws: what `init`, `loadModel` and `setMethod` throw (`.budgetExceeded` when
    ///   `ceiling` is too small).
    public static func requiredBudget(modelPath: String, plan: AdaptationPlan, ceiling: Int) throws(LichenError) -> Int {
        let rt = try Runtime(budgetBytes: ceiling)
        try rt.loadModel(path: modelPath)
        try rt.setMethod(plan)
        // The low end's peak, not its final use: building a method (the fused models' packing,
        // CoTTA's threshold, RMT's set-up) takes scratch it gives back.
        let s = rt.arena.stats
        let used = s.reservedBytes - s.bytesLeft - s.lowUsedBytes + s.lowPeakBytes
        // Alignment padding depends on where a budget lies in memory (allocations are aligned
        // to absolute addresses): one heap page of slack, rounded up to whole pages.
        let page = Arena.heapPageSize
        return (used + 2 * page - 1) / page * page
    }
}
