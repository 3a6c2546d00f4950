import CRuntime

/// Everything that describes a running adaptation method, in one value: the method and its
/// settings, which parameters it trains, its LoRA trainables, the collapse guard, the batch or
/// frame protocol, where its source data comes from, and the seed of its random draws.
///
/// A plan is the one way a running method is put together: `assemble(spec:store:arena:...)`
/// builds the session, the frame adapter and the guard from a plan, a model and the budget,
/// and every client (`Runtime`, the C ABI's `lichen_method_set`, `lichen adapt`, `lichen bench
/// adapt`, `lichen inspect --method`, `lichen serve`) builds through it. Two clients given the
/// same plan, model and frames make the same predictions.
public struct AdaptationPlan: Sendable, Equatable {
    /// How frames reach the method.
    public enum Framing: Sendable, Equatable {
        /// Batches of up to `size` frames: each batch is predicted, then adapted on.
        case batch(size: Int)
        /// One frame at a time (`FrameAdapter`): a window of `window` frames, adapted on every
        /// `every` frames, frames between updates predicted by `prediction`.
        case frames(window: Int, every: Int, prediction: FrameAdapter.Prediction)

        /// Rows of the method's graphs: the batch size, or the window.
        public var rows: Int {
            switch self {
            case .batch(let size): return size
            case .frames(let window, _, _): return window
            }
        }
    }

    /// Where CoTTA's confidence threshold p_th comes from.
    public enum Threshold: Sendable, Equatable {
        /// As given.
        case given(Float)
        /// From the source model on the source data (`sourceConfidenceThreshold`): the
        /// `quantile` of the max-softmax confidence minus `margin`, over at most `frames` source
        /// frames in batches of the plan's rows (0: every full batch the source pack holds; a
        /// caller's provider without a pack needs a count).
        case fromSource(quantile: Float, margin: Float, frames: Int)

        /// The CoTTA maintainer's rule: 5 % quantile minus 0.05.
        public static let maintainerRule = Threshold.fromSource(quantile: 0.05, margin: 0.05, frames: 0)
    }

    /// The collapse guard's settings (`CollapseGuard`).
    public struct Guard: Sendable, Equatable {
        /// Reset when the effective number of predicted classes falls under this (0: off).
        public var minimumEffectiveClasses: Double
        /// Predictions the guard looks back over.
        public var window: Int
        /// Reset every this many predictions (0: never).
        public var resetEvery: Int
        /// What a reset returns to.
        public var resetTo: ResetTarget

        /// What the guard's reset returns the trainables to.
        public enum ResetTarget: String, Sendable, Equatable {
            /// The model as loaded (and a fresh optimizer).
            case source
            /// The last state the guard judged healthy (kept before each update the guard saw
            /// healthy predictions for); the source state when there is none. A last good
            /// state is used once: a collapse right after it resets to the source.
            case lastGood = "last-good"
        }

        public init(minimumEffectiveClasses: Double, window: Int = 200, resetEvery: Int = 0, resetTo: ResetTarget = .source) {
            self.minimumEffectiveClasses = minimumEffectiveClasses
            self.window = window
            self.resetEvery = resetEvery
            self.resetTo = resetTo
        }
    }

    public var method: AdaptationMethod
    /// Which parameters a gradient method trains.
    public var mode: AdaptationMode
    /// Tent's optimizer (CoTTA and RMT carry theirs in their own settings).
    public var optimizer: AdaptationOptimizer
    public var framing: Framing
    /// Frugal mode's LoRA trainables for Tent, CoTTA and RMT (nil: the norm parameters alone).
    public var lora: AdaptationLoRA?
    /// The collapse guard (nil: none).
    public var collapseGuard: Guard?
    /// CoTTA: the threshold's origin, the augmented teacher passes, and the rest of its settings
    /// (the configuration's threshold and seed are replaced by the plan's).
    public var cottaThreshold: Threshold
    public var cotta: CoTTA.Configuration
    /// RMT's settings (its seed is replaced by the plan's).
    public var rmt: RMT.Configuration
    /// A source pack file (`SourcePack`) loaded into the budget by `assemble`; nil: the source
    /// provider the caller hands to `assemble`, if any.
    public var sourcePack: String?
    /// Seed of the method's random draws (augmentations, restore masks, LoRA's A, source order).
    public var seed: UInt64
    /// Frame mode with `.saved` prediction: frames between updates through fused models
    /// refolded after each update (`FusedPrediction`) while no adapter is applied; false: the
    /// graph's saved-statistics forward.
    public var fusedPrediction: Bool
    /// Frame mode: updates on a learner thread beside the loop (`BackgroundLearner`) instead of
    /// inside the step that triggers them; nil (the default): synchronous, inside the step.
    public var learner: BackgroundLearner.Settings?
    /// Online supervised learning from labelled frames (`RunningMethod.learn`, `lichen_learn`)
    /// with a constant, LRR or LRH learning rate (`OnlineLearning`); nil: none. Source method,
    /// synchronous mode only. An empty effect map stands for the paper's (classes 5 and above
    /// excitatory) at the model's class count.
    public var learning: HomeostasisConfiguration?

    /// `learning` with an empty effect map replaced by the paper's for `classes`.
    func learning(classes: Int) -> HomeostasisConfiguration? {
        guard var l = learning else { return nil }
        if l.effects.isEmpty { l.effects = HomeostasisConfiguration.paperEffects(classCount: classes) }
        return l
    }

    /// A plan with the methods' reference settings: Tent's Adam (lr 1e-3), CoTTA's CIFAR
    /// configuration with the maintainer's threshold rule, RMT's CIFAR configuration.
    public init(
        _ method: AdaptationMethod = .source, mode: AdaptationMode = .frugal, optimizer: AdaptationOptimizer = .tentCIFAR,
        framing: Framing = .frames(window: 16, every: 16, prediction: .saved), lora: AdaptationLoRA? = nil,
        collapseGuard: Guard? = nil, cottaThreshold: Threshold = .maintainerRule,
        cotta: CoTTA.Configuration = CoTTA.Configuration(threshold: 0), rmt: RMT.Configuration = RMT.Configuration(),
        sourcePack: String? = nil, seed: UInt64 = 1, fusedPrediction: Bool = true, learner: BackgroundLearner.Settings? = nil
    ) {
        self.method = method
        self.mode = mode
        self.optimizer = optimizer
        self.framing = framing
        self.lora = lora
        self.collapseGuard = collapseGuard
        self.cottaThreshold = cottaThreshold
        self.cotta = cotta
        self.rmt = rmt
        self.sourcePack = sourcePack
        self.seed = seed
        self.fusedPrediction = fusedPrediction
        self.learner = learner
    }

    /// Frame mode with a window of `window` frames adapted on every `every` frames.
    public init(_ method: AdaptationMethod, mode: AdaptationMode = .frugal, optimizer: AdaptationOptimizer = .tentCIFAR,
                window: Int, every: Int, prediction: FrameAdapter.Prediction = .saved) {
        self.init(method, mode: mode, optimizer: optimizer, framing: .frames(window: window, every: every, prediction: prediction))
    }

    /// Whether the method reads source data with these settings.
    public var needsSource: Bool {
        switch method {
        case .rmt: return rmt.needsSource
        case .cotta: if case .fromSource = cottaThreshold { return true } else { return false }
        case .source, .bnAdapt, .tent: return false
        }
    }

    /// The settings an adapted state belongs to (`StateFile`): the method, what it trains, its
    /// optimizer and its schedule. A state saved under one text is restored only under the same.
    public var stateIdentity: String {
        var s = "method=" + method.name + " mode=" + mode.name
        if case .frames(let window, let every, _) = framing { s += " window=\(window) every=\(every)" }
        if case .batch(let size) = framing { s += " batch=\(size)" }
        if trains {
            switch optimizer {
            case .adam(let lr, let b1, let b2, let eps): s += " adam=\(lr),\(b1),\(b2),\(eps)"
            case .sgd(let lr, let momentum, let nesterov): s += " sgd=\(lr),\(momentum),\(nesterov)"
            }
            if let lora {
                let alpha = "\(lora.alpha)"
                var targets = ""
                for t in lora.targets { targets += (targets.isEmpty ? "" : "+") + t }
                s += " lora=\(lora.rank),\(alpha),\(targets)"
            }
        }
        if method == .cotta { s += " cotta=\(cotta.augmentations),\(cotta.emaMomentum),\(cotta.restoreProbability)" }
        if method == .rmt { s += " rmt=\(rmt.lambdaSource),\(rmt.lambdaContrast)" }
        if let l = learning {
            var effects = l.effects.isEmpty ? "paper" : ""
            for e in l.effects { effects += e == .excitatory ? "+" : e == .inhibitory ? "-" : "0" }
            s += " learn=\(l.policy.name),\(l.initialLearningRate),\(l.step),\(l.minibatch),\(l.interval),\(l.memory),\(effects)"
        }
        return s
    }

    /// Whether the method trains anything.
    public var trains: Bool { method == .tent || method == .cotta || method == .rmt }

    /// The largest window or batch a plan may ask for.
    public static let maximumRows = 4096

    // MARK: - Validation

    /// Checks everything about the plan that needs no memory: the framing's ranges, the mode
    /// against the model's parameters, LoRA's rank and targets, the guard, the methods'
    /// settings, and that source data will be there (a pack, or `hasProvider`).
    ///
    /// `Runtime.setMethod` calls it before it lets go of the running method, so a plan refused
    /// here changes nothing.
    ///
    /// - Throws: `.invalidArgument` naming the setting (`window`, `every`, `batch`, `mode`,
    ///   `lora`, `guard.*`, `cotta.*`, `rmt.*`, `source`); what `AdaptationLoRA.targetShapes`
    ///   throws.
    public func validate(spec: ModelSpec, store: ParameterStore, hasProvider: Bool) throws(LichenError) {
        switch framing {
        case .batch(let size):
            guard size >= 1 && size <= AdaptationPlan.maximumRows else {
                throw .invalidArgument(name: "batch", value: size, reason: "must be in 1...4096")
            }
        case .frames(let window, let every, _):
            guard window >= 1 && window <= AdaptationPlan.maximumRows else {
                throw .invalidArgument(name: "window", value: window, reason: "must be in 1...4096")
            }
            guard every >= 1 && every <= 1 << 24 else {
                throw .invalidArgument(name: "every", value: every, reason: "must be in 1...16777216")
            }
        }
        if trains {
            if mode == .full {
                guard lora == nil else { throw .invalidArgument(name: "lora", value: lora?.rank ?? 0, reason: "LoRA trainables are for frugal mode") }
                _ = try AdaptationSession.selectTrainable(store, mode: .full)
            }
            if let lora {
                guard lora.alpha.isFinite && lora.alpha >= 0 && lora.alpha <= 1e6 else {
                    throw .invalidArgument(name: "lora.alpha", value: Int(clamping: lora.rank), reason: "must be finite and in 0...1e6")
                }
                _ = try lora.targetShapes(spec: spec)
            }
            switch optimizer {
            case .adam(let lr, _, _, _), .sgd(let lr, _, _):
                guard lr.isFinite && lr > 0 && lr <= 10 else {
                    throw .invalidArgument(name: "learning_rate", value: 0, reason: "must be finite and in (0, 10]")
                }
            }
        }
        if let g = collapseGuard {
            guard g.minimumEffectiveClasses.isFinite && g.minimumEffectiveClasses >= 0 else {
                throw .invalidArgument(name: "guard.minimumEffectiveClasses", value: 0, reason: "must be finite and >= 0")
            }
            guard g.window >= 1 && g.window <= 1 << 24 else {
                throw .invalidArgument(name: "guard.window", value: g.window, reason: "must be in 1...16777216")
            }
            guard g.resetEvery >= 0 else { throw .invalidArgument(name: "guard.resetEvery", value: g.resetEvery, reason: "must be >= 0") }
        }
        if method == .cotta {
            switch cottaThreshold {
            case .given(let p):
                guard p.isFinite else { throw .invalidArgument(name: "cotta.threshold", value: 0, reason: "must be finite") }
            case .fromSource(let q, let margin, let frames):
                guard q >= 0 && q <= 1 && margin.isFinite && frames >= 0 else {
                    throw .invalidArgument(name: "cotta.threshold", value: frames,
                                           reason: "the quantile must lie in [0, 1], the margin be finite, the frame count >= 0")
                }
                guard frames > 0 || sourcePack != nil else {
                    throw .invalidArgument(name: "cotta.threshold", value: 0, reason: "a threshold from a caller's source provider needs a frame count")
                }
            }
            guard cotta.augmentations >= 1 && cotta.augmentations <= 1024 else {
                throw .invalidArgument(name: "cotta.augmentations", value: cotta.augmentations, reason: "must be in 1...1024")
            }
        }
        if method == .rmt {
            for v in [rmt.lambdaSource, rmt.lambdaContrast, rmt.lambdaTarget] where !(v.isFinite && v >= 0 && v <= 1e6) {
                throw .invalidArgument(name: "rmt.lambda", value: 0, reason: "every λ must be finite and in 0...1e6")
            }
            guard rmt.warmUpSamples >= 0 && rmt.warmUpSamples <= 100_000_000 else {
                throw .invalidArgument(name: "rmt.warmUpSamples", value: rmt.warmUpSamples, reason: "must be in 0...100000000")
            }
            guard rmt.prototypeSamples >= 1 && rmt.prototypeSamples <= 100_000_000 else {
                throw .invalidArgument(name: "rmt.prototypeSamples", value: rmt.prototypeSamples, reason: "must be in 1...100000000")
            }
        }
        if let l = learner {
            guard case .frames(_, _, let prediction) = framing, prediction == .saved, fusedPrediction else {
                throw .invalidArgument(name: "learner", value: 1,
                                       reason: "the learner thread needs frame mode with saved-statistics, fused prediction (the loop predicts through fused models)")
            }
            guard lora == nil || !trains else {
                throw .invalidArgument(name: "learner", value: 1,
                                       reason: "LoRA trainables are applied as adapters, which the fused models the loop predicts with do not apply: use the synchronous mode")
            }
            if let cpu = l.cpu {
                guard cpu >= 0 && cpu < 1024 else { throw .invalidArgument(name: "learner.cpu", value: cpu, reason: "must be in 0...1023") }
            }
            guard l.nice >= -20 && l.nice <= 19 else {
                throw .invalidArgument(name: "learner.nice", value: l.nice, reason: "must be in -20...19")
            }
        }
        if let l = learning(classes: spec.classCount) {
            guard method == .source else {
                throw .invalidArgument(name: "learning", value: Int(Runtime.methodCode(method)),
                                       reason: "online learning trains the model's own parameters, which the other methods adapt too: run it with the source method")
            }
            guard learner == nil else {
                throw .invalidArgument(name: "learning", value: 1, reason: "online learning runs on the loop's thread: turn the learner thread off")
            }
            try l.validate()
            guard l.effects.count == spec.classCount else {
                throw .shapeMismatch(operand: "effects", dimension: 0, expected: spec.classCount, got: l.effects.count)
            }
        }
        if needsSource && sourcePack == nil && !hasProvider {
            throw .invalidArgument(name: "source", value: 0,
                                   reason: "this method needs labelled source frames: give a source pack (lichen source-pack)")
        }
    }

    // MARK: - Assembly

    /// Builds the running method: loads the source pack (when the plan names one) into
    /// `arena`, derives CoTTA's threshold, builds the session (RMT's prototypes and warm-up run
    /// here), the frame adapter in frame mode and the collapse guard, all from `arena`.
    ///
    /// - Parameters:
    ///   - source: the caller's source batches, used when the plan names no pack.
    /// - Throws: what `validate` throws; what `SourcePack`, `sourceConfidenceThreshold`,
    ///   `AdaptationSession`, `FrameAdapter` and `CollapseGuard` throw; `.budgetExceeded`.
    ///   On failure the arena's low end is rolled back to where it was.
    /// - Note: Allocates (construction time only).
    public func assemble(
        spec: ModelSpec, store: ParameterStore, arena: Arena, source: SourceBatchProvider? = nil, kernels: Kernels = .best
    ) throws(LichenError) -> RunningMethod {
        try validate(spec: spec, store: store, hasProvider: source != nil)
        let mark = arena.lowEndMark()
        do throws(LichenError) {
            let started = lcrMonotonicNanoseconds()
            var provider = source
            var pack: SourcePack? = nil
            if needsSource, let path = sourcePack {
                let p = try SourcePack(path: path, spec: spec, arena: arena, seed: seed)
                pack = p
                provider = p
            }
            let rows = framing.rows
            var cottaSettings: CoTTA.Configuration? = nil
            var threshold: Float? = nil
            if method == .cotta {
                var c = cotta
                c.seed = seed
                switch cottaThreshold {
                case .given(let p):
                    c.threshold = p
                case .fromSource(let q, let margin, let frames):
                    guard let provider else { throw .invalidArgument(name: "source", value: 0, reason: "CoTTA's threshold needs source frames") }
                    let available = frames > 0 ? frames : (pack?.frameCount ?? 0)
                    let batches = max(1, available / rows)
                    if let pack, rows > pack.frameCount {
                        throw .invalidArgument(name: "source", value: pack.frameCount, reason: "the source pack holds fewer frames than one window")
                    }
                    c.threshold = try sourceConfidenceThreshold(spec: spec, store: store, provider: provider, batchSize: rows,
                                                                batchCount: batches, arena: arena, quantile: q, margin: margin,
                                                                kernels: kernels)
                }
                threshold = c.threshold
                cottaSettings = c
            }
            var rmtSettings = rmt
            rmtSettings.seed = seed
            if method == .rmt, let pack, rows > pack.frameCount {
                throw .invalidArgument(name: "source", value: pack.frameCount, reason: "the source pack holds fewer frames than one window")
            }
            let session = try AdaptationSession(
                method: method, spec: spec, store: store, batchSize: rows, arena: arena, mode: mode, optimizer: optimizer,
                cotta: cottaSettings, rmt: rmtSettings, source: method == .rmt ? provider : nil, lora: trains ? lora : nil,
                kernels: kernels)
            var frames: FrameAdapter? = nil
            if case .frames(let window, let every, let prediction) = framing {
                frames = try FrameAdapter(session: session, window: window, every: every, prediction: prediction, arena: arena,
                                          fused: fusedPrediction, learner: learner, kernels: kernels, sourceLearns: learning != nil)
            }
            var watch: CollapseGuard? = nil
            if let g = collapseGuard {
                watch = try CollapseGuard(classes: session.classes, historyLength: g.window,
                                          minimumEffectiveClasses: min(g.minimumEffectiveClasses, Double(session.classes)),
                                          resetEvery: g.resetEvery, arena: arena)
            }
            var online: OnlineLearning? = nil
            if let c = learning(classes: spec.classCount) { online = try OnlineLearning(spec: spec, store: store, configuration: c, arena: arena, kernels: kernels) }
            let state = try AdaptedState(session: session, learning: online, arena: arena)
            let lastGood = collapseGuard?.resetTo == .lastGood && !state.isEmpty ? try state.makeCopy(arena: arena) : nil
            if let learner = frames?.learner {
                learner.state = state
                learner.lastGood = lastGood
            }
            try frames?.startLearner()
            return RunningMethod(plan: self, session: session, frames: frames, collapseGuard: watch, source: provider, pack: pack,
                                 cottaThreshold: threshold, setupNanoseconds: lcrMonotonicNanoseconds() &- started, state: state,
                                 lastGood: lastGood, learning: online)
        } catch {
            try? arena.resetLowEnd(to: mark)
            throw error
        }
    }
}

/// A method assembled from a plan (`AdaptationPlan.assemble`): the session, the frame adapter
/// (frame mode) and the collapse guard, stepped together. The one step a robot's runtime, the
/// CLI and the benches share.
///
/// - Note: `step(frame:)`, `step(batch:)` and `reset()` allocate nothing.
public final class RunningMethod {
    public let plan: AdaptationPlan
    public let session: AdaptationSession
    /// The frame adapter (frame mode), else nil.
    public let frames: FrameAdapter?
    public let collapseGuard: CollapseGuard?
    /// The source batches the method reads (the pack, or the caller's provider), kept alive.
    public let source: SourceBatchProvider?
    /// The source pack loaded into the budget, if the plan named one.
    public let pack: SourcePack?
    /// CoTTA's threshold as used (nil for the other methods).
    public let cottaThreshold: Float?
    /// Time the assembly took: source pack, CoTTA's threshold, RMT's prototypes and warm-up.
    public let setupNanoseconds: UInt64
    /// Everything the method has learned (`AdaptedState`), for the state file and the last good state.
    public let state: AdaptedState
    /// The collapse guard's last good state (a plan whose guard resets to it), else nil.
    public let lastGood: AdaptedState.Copy?
    /// Online supervised learning (the plan's `learning`), else nil.
    public let learning: OnlineLearning?
    /// Saves the state to a file (set by the runtime when it has a state path).
    public internal(set) var saver: StateSaver?
    /// Resets to the last good state, and to the source.
    public private(set) var lastGoodResetCount = 0
    /// Batches stepped in batch mode.
    public private(set) var batchCount = 0
    /// The guard's verdict on the last step.
    public private(set) var lastVerdict = CollapseGuard.Verdict.none

    init(plan: AdaptationPlan, session: AdaptationSession, frames: FrameAdapter?, collapseGuard: CollapseGuard?,
         source: SourceBatchProvider?, pack: SourcePack?, cottaThreshold: Float?, setupNanoseconds: UInt64, state: AdaptedState,
         lastGood: AdaptedState.Copy?, learning: OnlineLearning?) {
        self.learning = learning
        self.state = state
        self.lastGood = lastGood
        self.plan = plan
        self.session = session
        self.frames = frames
        self.collapseGuard = collapseGuard
        self.source = source
        self.pack = pack
        self.cottaThreshold = cottaThreshold
        self.setupNanoseconds = setupNanoseconds
    }

    public var classes: Int { session.classes }
    /// Adaptation steps taken (frame mode: updates on the window; batch mode: batches).
    public var updateCount: Int {
        if let learner = frames?.learner { return learner.updateCount + (frames?.adaptationCount ?? 0) }
        return frames?.adaptationCount ?? (session.method == .source || session.method == .bnAdapt ? 0 : batchCount)
    }
    /// The learner thread's loop side (learner mode), else nil.
    public var learner: BackgroundLearner? { frames?.learner }
    /// Stops the learner thread, if any (its running job ends first); steps are synchronous after.
    public func stopLearner() { frames?.stopLearner() }
    /// Waits until the learner thread has no job (before the loop's thread reads or writes the
    /// trainables outside a step).
    public func quiesceLearner() { frames?.learner?.quiesce() }
    /// Frames refused as bad input (frame mode).
    public var rejectedFrameCount: Int { frames?.rejectedFrameCount ?? 0 }
    /// Resets by the guard (collapse and periodic).
    public var guardResetCount: Int { collapseGuard?.resetCount ?? 0 }
    /// The method's loss on its last update.
    public var lastLoss: Float { learner?.lastLoss ?? session.lastLoss }
    /// The effective class count the guard watches (0 without a guard, or before its history is full).
    public var effectiveClasses: Double { collapseGuard?.lastEffectiveClasses ?? 0 }

    /// One frame (frame mode): its prediction, with an update when the schedule says so, then
    /// the guard's look at the prediction (it resets the trainables on collapse).
    ///
    /// - Returns: the frame's logits `[1, classes]`, valid until the next call.
    /// - Throws: `.invalidArgument(name: "framing", ...)` in batch mode; what
    ///   `FrameAdapter.step` throws (bad frames are refused before any change and counted).
    /// - Note: Allocates nothing.
    public func step(frame: TensorView) throws(LichenError) -> TensorView {
        guard let frames else { throw .invalidArgument(name: "framing", value: 0, reason: "the plan steps batches, not frames") }
        if let learner = frames.learner, frames.learnerActive {
            // The learner keeps the last good state and saves the file, before its update.
            if learner.updateDue || frames.nextFrameAdapts { learner.healthy = judgedHealthy }
        } else if frames.nextFrameAdapts && !state.isEmpty {
            try beforeUpdate(updates: frames.adaptationCount, frames: frames.frameCount)
        }
        let z = try frames.step(frame: frame)
        try observe(z)
        return z
    }

    /// Learns from one labelled frame (the plan's `learning`) and returns the class predicted
    /// for it before its update; frames stepped after an update predict with it (the fused
    /// models are refolded at the next step).
    ///
    /// - Throws: `.invalidArgument(name: "learning", ...)` when the plan has no learning; what
    ///   `OnlineLearning.learn` throws.
    /// - Note: Allocates nothing.
    public func learn(frame: TensorView, label: Int) throws(LichenError) -> Int {
        guard let learning else {
            throw .invalidArgument(name: "learning", value: 0, reason: "the method was set without online learning (choose a learning-rate policy)")
        }
        let p = try learning.learn(frame: frame, label: label)
        if learning.lastLearnUpdated {
            frames?.parametersLearned()
            // The state file, when due (the saver counts online learning's updates).
            if judgedHealthy { saver?.beforeUpdate(updates: learning.learner.updateCount, frames: learning.sampleCount) }
        }
        return p
    }

    /// One batch (batch mode): predicted, then adapted on; then the guard's look.
    ///
    /// - Returns: the batch's logits `[n, classes]` from before the update.
    /// - Throws: `.invalidArgument(name: "framing", ...)` in frame mode; what
    ///   `AdaptationSession.step` throws.
    /// - Note: Allocates nothing.
    public func step(batch: TensorView) throws(LichenError) -> TensorView {
        guard frames == nil else { throw .invalidArgument(name: "framing", value: 0, reason: "the plan steps frames, not batches") }
        if !state.isEmpty { try beforeUpdate(updates: batchCount, frames: batchCount) }
        let z = try session.step(batch: batch)
        batchCount += 1
        try observe(z)
        return z
    }

    private func observe(_ z: TensorView) throws(LichenError) {
        guard let collapseGuard else { return }
        lastVerdict = try collapseGuard.observe(logits: z, resetting: nil)
        if lastVerdict != .none { try resetTrainables(toLastGood: true) }
    }

    /// Saves the state file once more (a method change, a teardown: nothing learned since the
    /// last save is lost), when a saver is on and the guard judges the predictions healthy.
    /// Call with the learner stopped.
    public func finalSave() {
        guard let saver, saver.enabled, judgedHealthy else { return }
        if let learning {
            guard learning.learner.updateCount > 0 else { return }
            _ = try? saver.save(updates: learning.learner.updateCount, frames: learning.sampleCount)
            return
        }
        guard updateCount > 0 else { return }
        _ = try? saver.save(updates: updateCount, frames: frames?.frameCount ?? batchCount)
    }

    /// Writes the adapted state to `path` now (atomically; `StateFile`), for a model whose
    /// `AdapterBase.hash` is `modelHash`.
    /// - Throws: what `StateFile.write` and `AtomicFile.write` throw.
    /// - Note: Allocates (the file image); not for the loop. Call with the learner idle.
    public func saveState(to path: String, modelHash: UInt64) throws(LichenError) {
        quiesceLearner()
        let text = plan.stateIdentity
        let n = StateFile.byteCount(state: state, planText: text)
        let image = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 16)
        defer { image.deallocate() }
        _ = try StateFile.write(state: state, planText: text, modelHash: modelHash, updates: updateCount,
                                frames: frames?.frameCount ?? batchCount, into: image)
        try AtomicFile.write(path: path, temporary: path + ".tmp") { emit in emit(UnsafeRawBufferPointer(image)) }
    }

    /// Reads the state file at `path`, checks it against this model (`modelHash`), plan and
    /// state, and loads it. Nothing changes unless every check passes.
    /// - Throws: what `UntrustedFile`, `StateFile.parse` and `StateFile.restore` throw.
    /// - Note: Allocates; not for the loop.
    @discardableResult
    public func restoreState(from path: String, modelHash: UInt64) throws(LichenError) -> StateFile.Contents {
        quiesceLearner()
        let text = plan.stateIdentity
        let file = try UntrustedFile(path: path, maximumBytes: 2 * StateFile.byteCount(state: state, planText: text) + (1 << 20))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, file.byteCount), alignment: 16)
        defer { buffer.deallocate() }
        try file.readAll(into: buffer.baseAddress!)  // safe: allocate never returns a null base for a count >= 1
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<file.byteCount])
        let contents = try StateFile.parse(bytes)
        try StateFile.restore(contents, bytes: bytes, into: state, modelHash: modelHash, planText: text)
        stateLoaded()
        if let frames, let learner = frames.learner, learner.isRunning, learner.updateCount > 0 {
            learner.republish(frameCount: frames.frameCount)
        }
        return contents
    }

    /// The trained values were replaced by a saved state's: the predicting models follow.
    /// - Note: Allocates nothing.
    func stateLoaded() {
        if learning != nil { frames?.parametersLearned() } else { frames?.trainablesChanged() }
    }

    /// Whether the guard (if any) judges the recent predictions healthy; true without a guard.
    var judgedHealthy: Bool { collapseGuard?.judgesHealthy ?? true }

    /// Before an update made on the loop's thread: keeps the last good state and saves the
    /// state file when due (both only while the guard judges the predictions healthy).
    /// - Note: Allocates nothing.
    private func beforeUpdate(updates: Int, frames: Int) throws(LichenError) {
        guard judgedHealthy else { return }
        if let lastGood { try state.save(into: lastGood) }
        saver?.beforeUpdate(updates: updates, frames: frames)
    }

    /// The trainables and optimizer state back to where assembly left them (the guard's reset
    /// and `lichen_reset`), or, for the guard with `resetTo: .lastGood`, to the last good state
    /// when there is one; the window and the guard's counts carry on.
    /// - Note: Allocates nothing.
    public func resetTrainables(toLastGood: Bool = false) throws(LichenError) {
        let useLastGood = toLastGood && lastGood?.isSet == true
        if let frames, let learner = frames.learner, frames.learnerActive {
            learner.resetToLastGood = useLastGood
            try frames.reset()
            return
        }
        if useLastGood, let lastGood {
            try state.load(from: lastGood)
            lastGood.isSet = false
            lastGoodResetCount += 1
            stateLoaded()
            return
        }
        if let frames { try frames.reset() } else { try session.reset() }
        if let learning {
            try learning.reset()
            stateLoaded()
        }
    }
}

@inline(__always)
func lcrMonotonicNanoseconds() -> UInt64 { lcr_os_monotonic_ns() }
