/// Frame-by-frame test-time adaptation: a robot sees one frame at a time, gets that frame's
/// prediction at once, and the model adapts on a window of the last `window` frames every
/// `every` frames (research/tta.md §4.5, the sliding window of mariodoebler's `base.py` at
/// batch size 1).
///
/// Every frame goes into a ring buffer of `window` frames allocated at construction. On an
/// adaptation frame (t >= window and (t - window) a multiple of `every`) the window goes
/// through `session.step(batch:)`: the prediction is the row of frame t in the logits of that
/// step, computed before the update (the online protocol of tta.md §1). Any other frame is
/// predicted without an update, in one of two ways (`Prediction`):
///
/// - `.saved` (the default): a batch-1 forward of frame t that normalises every batch norm
///   layer with the batch statistics saved by the last forward over a full window (the
///   adaptation step's own forward; `Graph.forward(input:statistics:)`). A frame then costs one
///   batch-1 forward plus the update every K frames, instead of a forward over the whole window.
///   The prediction follows the method's batch rule where one batch-1 forward per model does:
///   BN-adapt and Tent the session's graph; CoTTA the EMA teacher (its clean-batch forward's
///   statistics; the teacher values after the last EMA); RMT student + teacher logits, each
///   with its own saved statistics.
/// - `.window`: a forward over the window ending at t (the last min(t, window) frames, t
///   included), so batch statistics are those of that very window; for CoTTA and RMT this is
///   the student alone. Exact, but every frame costs a window-sized forward.
///
/// Source (running statistics: each row independent of the others) forwards frame t alone in
/// both.
///
/// `.saved` is the default because of what was measured (Adaptation/README.md, window 64,
/// every 16, the shipped Q8_0 CNN): a frame between updates took 0.3 ms instead of 49 ms, BN-adapt
/// and Tent ran 13.7 and 5.9 times more frames per second, and on a 3,000-frame continual
/// stream the mean online error stayed within 0.4 point of `.window`'s for BN-adapt, Tent and
/// CoTTA (21.9 vs 21.8, 21.2 vs 20.8, 21.9 vs 21.8) and within 0.8 for RMT (21.0 vs 20.2).
///
/// With `every == window` the adaptation frames are t = window, 2·window, ...: the session
/// steps on exactly the disjoint batches of the papers' batch protocol, so the parameters
/// follow the same path as `step(batch:)` over those batches in both prediction modes (the
/// predictions of the other frames differ: each one sees only the frames up to itself, not
/// the rest of its batch).
///
/// Departures, written down:
/// - The ring keeps frames in arrival order modulo `window`, not in time order. Batch
///   statistics, the mean entropy and every per-sample operation are invariant under a
///   permutation of the batch rows, so the window is never rearranged (no copy per frame).
/// - No adaptation happens before the window is full (the reference likewise waits for a full
///   window); predictions before that use the partial window (`.saved`: with the models named
///   above, saving nothing).
/// - `.saved`: the statistics come from the step's forward, before its update, so the frames
///   after it are normalised with statistics of the pre-update parameters, used with the
///   post-update γ, β (and, for CoTTA's teacher, the pre-EMA teacher's statistics with the
///   post-EMA values); and they describe the window of the last adaptation frame, up to
///   K − 1 frames old. After a reset of the trainables (`reset()`, or `session.reset()` by a
///   collapse guard, seen as a change of `session.stepCount`) the next frame is predicted from
///   its full window, which saves fresh statistics.
/// - `.saved`, CoTTA: the prediction is the teacher's single forward; the anchor's confidence
///   gate and the N augmented teacher passes (N + 2 forwards) are not run between updates.
///
/// Bad input (wrong element type, a frame whose shape is neither the model's input shape nor
/// `[1, input shape...]`, NaN or infinity) throws before anything changes: the ring, the
/// counts and the model stay as they were; `rejectedFrameCount` counts such frames.
///
/// - Note: Construction allocates the ring (and, for `.saved`, the saved statistics and a
///   logit row) from the arena; `step(frame:)` and `reset()` allocate nothing.
public final class FrameAdapter {
    /// How frames between adaptation steps are predicted.
    public enum Prediction: Sendable, Equatable {
        /// A forward over the window ending at the frame (exact batch statistics).
        case window
        /// A batch-1 forward normalised with the statistics saved from the last full window.
        case saved

        /// "window" or "saved", as the CLI spells it.
        public var name: String {
            switch self {
            case .window: return "window"
            case .saved: return "saved"
            }
        }

        public init?(name: String) {
            switch name {
            case "window": self = .window
            case "saved": self = .saved
            default: return nil
            }
        }
    }

    /// The method, its graph and its trainables.
    public let session: AdaptationSession
    /// B: frames per window (at most the session's batch size).
    public let window: Int
    /// K: frames between two adaptation steps.
    public let every: Int
    /// How frames between adaptation steps are predicted.
    public let prediction: Prediction
    /// Frames accepted since construction (a reset of the trainables does not clear it).
    public private(set) var frameCount = 0
    /// Adaptation steps taken (calls of `session.step(batch:)`).
    public private(set) var adaptationCount = 0
    /// Frames refused for bad input.
    public private(set) var rejectedFrameCount = 0
    /// Whether the last accepted frame was an adaptation frame.
    public private(set) var lastFrameAdapted = false
    /// Frames predicted by a batch-1 forward with saved statistics (`.saved`).
    public private(set) var savedPredictionCount = 0
    /// Bytes construction took from the arena (the ring, the saved statistics, the logit row).
    public private(set) var reservedBytes = 0

    /// [window, input shape...]: the last `window` frames, frame t at row (t - 1) % window.
    private let ring: TensorView
    private let inputShape: Shape
    private let valuesPerFrame: Int
    /// Rows of `ring` holding frames (min(frames seen since the last window clear, window)).
    private var filled = 0
    /// The row the next frame goes into.
    private var next = 0
    /// Frames since the last window clear (the adaptation schedule counts from there).
    private var sinceClear = 0
    /// `.saved`: whether the saved statistics belong to the current trainables, and the
    /// session's step count when they were saved (a different count means a reset since).
    private var statisticsCurrent = false
    /// The fused models of frames between updates (nil: the graph predicts them), and whether
    /// they hold the current saved statistics.
    public let fused: FusedPrediction?
    private var fusedCurrent = false
    /// The source model's fused copy predates the parameters (online learning changed them).
    private var sourceFoldStale = false
    /// Frames predicted through the fused models.
    public private(set) var fusedPredictionCount = 0
    private var statisticsStep = 0
    /// The learner thread's loop side (a plan with `learner` settings, for a method that
    /// learns), else nil: updates run inside `step`.
    public let learner: BackgroundLearner?

    /// - Parameters:
    ///   - session: the method to run; its batch size must be at least `window`.
    ///   - window: B, 1...session.batchSize.
    ///   - every: K, >= 1 (K = B gives the batch protocol's updates).
    ///   - prediction: how frames between adaptation steps are predicted.
    ///   - arena: where the ring comes from (window × frame values × 4 bytes), and for `.saved`
    ///     the saved statistics (2 × channels floats per batch norm layer of each predicting
    ///     graph) and one logit row.
    /// - Throws: `.invalidArgument(name: "window" | "every", ...)`; `.budgetExceeded`.
    ///   - fused: `.saved` only: predict frames between updates through fused models
    ///     (`FusedPrediction`) refolded after each update, whenever no adapter is applied.
    ///   - sourceLearns: the source model's parameters change by online learning
    ///     (`parametersLearned()`): its fused model is built refoldable.
    public init(
        session: AdaptationSession, window: Int, every: Int, prediction: Prediction = .saved, arena: Arena, fused: Bool = false,
        learner: BackgroundLearner.Settings? = nil, kernels: Kernels = .best, sourceLearns: Bool = false
    ) throws(LichenError) {
        guard window >= 1 && window <= session.batchSize else {
            throw .invalidArgument(name: "window", value: window, reason: "must be in 1...the session's batch size")
        }
        guard every >= 1 else { throw .invalidArgument(name: "every", value: every, reason: "must be at least 1") }
        let before = arena.stats.persistentBytes
        self.session = session
        self.window = window
        self.every = every
        self.prediction = prediction
        inputShape = session.graph.spec.inputShape
        guard let values = inputShape.elementCount, values >= 1 else {
            throw .invalidArgument(name: "inputShape", value: inputShape.rank, reason: "the model's input has no values")
        }
        valuesPerFrame = values
        var dims = [window]
        dims += inputShape.dimensions
        ring = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
        if prediction == .saved { try session.policy.reservePrediction(arena: arena) }
        self.fused = prediction == .saved && fused
            ? try session.policy.makeFused(spec: session.graph.spec, store: session.store, arena: arena, kernels: kernels,
                                           sourceLearns: sourceLearns) : nil
        if let learner, session.method != .source {
            guard let first = self.fused else {
                throw .invalidArgument(name: "learner", value: 1, reason: "the learner thread needs fused, saved-statistics prediction and no adapter applied")
            }
            self.learner = try BackgroundLearner(session: session, first: first, window: window, inputShape: inputShape, settings: learner,
                                                 arena: arena, kernels: kernels)
        } else {
            self.learner = nil
        }
        reservedBytes = arena.stats.persistentBytes - before
    }

    /// Whether frames go to the learner thread now: it runs, and no adapter is applied (the fused
    /// versions apply none; while one is, the method steps synchronously).
    @inline(__always)
    var learnerActive: Bool {
        guard let learner, learner.isRunning else { return false }
        return session.policy.appliesNoAdapters
    }

    /// Starts the learner thread (after the assembly succeeded).
    func startLearner() throws(LichenError) { try learner?.start() }

    /// Stops the learner thread (waits for its job to end); the adapter then steps synchronously.
    public func stopLearner() { learner?.stop() }

    /// Applies a hot-swapped adapter set to the method's graphs, unless the learner is working
    /// on them: then nothing changes and false says "try again next step". Leaving the last
    /// adapter republishes a fused version from the current trainables.
    /// - Note: Allocates nothing.
    func setSkillAdapters(_ set: AdapterSet?) throws(LichenError) -> Bool {
        guard let learner, learner.isRunning else {
            try session.policy.setSkillAdapters(set)
            return true
        }
        guard learner.isIdle else { return false }
        let wasFused = session.policy.appliesNoAdapters
        try session.policy.setSkillAdapters(set)
        let fusedNow = session.policy.appliesNoAdapters
        if wasFused && !fusedNow {
            // Synchronous from here: the next frame saves fresh statistics over its window.
            statisticsCurrent = false
            fusedCurrent = false
        } else if !wasFused && fusedNow {
            learner.republish(frameCount: frameCount)
        }
        return true
    }

    /// Whether the next accepted frame is an adaptation frame.
    var nextFrameAdapts: Bool { adapts(sinceClear + 1) }

    /// The trainables were set from outside (a last good state loaded): the next frame saves
    /// fresh statistics and refolds.
    func trainablesChanged() {
        statisticsCurrent = false
        fusedCurrent = false
    }

    /// The model's parameters were changed by online learning (`OnlineLearning`): the source
    /// model's fused copy is refolded before the next frame it predicts.
    func parametersLearned() {
        trainablesChanged()
        sourceFoldStale = true
    }

    /// Whether frame number `t` (1-based, counted from the last window clear) adapts.
    @inline(__always)
    func adapts(_ t: Int) -> Bool { t >= window && (t - window) % every == 0 }

    /// Takes one frame, returns its prediction, and adapts when the schedule says so.
    ///
    /// - Parameter frame: f32 with the model's input shape, or `[1, input shape...]`, every
    ///   value finite.
    /// - Returns: the frame's logits `[1, classes]`, a view valid until the next `step` or
    ///   `reset`.
    /// - Throws: `.unsupportedElementType(operand: "frame", ...)`, `.shapeMismatch(operand:
    ///   "frame", ...)`, `.nonFiniteValue(operand: "frame", index:)` — before any change; what
    ///   the session throws on an adaptation frame (non-finite logits or gradients: the
    ///   parameters are not updated; the frame stays in the window).
    /// - Note: Allocates nothing.
    public func step(frame: TensorView) throws(LichenError) -> TensorView {
        do throws(LichenError) {
            try requireFrame(frame)
        } catch {
            rejectedFrameCount += 1
            throw error
        }
        let slot = next
        try ring.leadingRows(slot, count: 1).copy(from: frame)
        next = next + 1 == window ? 0 : next + 1
        if filled < window { filled += 1 }
        sinceClear += 1
        frameCount += 1
        let windowView = try ring.leadingRows(0, count: filled)
        if let learner, learnerActive {
            learner.pickUp()
            lastFrameAdapted = adapts(sinceClear)
            if lastFrameAdapted { learner.updateDue = true }
            try learner.handOver(window: windowView, frameCount: frameCount)
            fusedPredictionCount += 1
            return try learner.predict(try ring.leadingRows(slot, count: 1), frameCount: frameCount)
        }
        // The source model learns nothing: with a fused model every frame is one batch-1
        // forward (a window's forward every K frames would give the same prediction at B
        // frames' cost, a deadline miss in a fast loop).
        if case .source = session.policy, let fused, session.policy.appliesNoAdapters {
            if sourceFoldStale { sourceFoldStale = !fused.refold(session.policy) }
            if !sourceFoldStale {
                lastFrameAdapted = false
                fusedPredictionCount += 1
                return try fused.predict(try ring.leadingRows(slot, count: 1))
            }
        }
        if adapts(sinceClear) {
            lastFrameAdapted = true
            adaptationCount += 1
            let z = try session.step(batch: windowView)
            // The step's clean forwards saved their statistics (when reserved).
            statisticsCurrent = true
            statisticsStep = session.stepCount
            refoldFused()
            return try z.leadingRows(slot, count: 1)
        }
        lastFrameAdapted = false
        if case .source(let graph) = session.policy {
            let frame = try ring.leadingRows(slot, count: 1)
            if let fused, session.policy.appliesNoAdapters, !sourceFoldStale {
                fusedPredictionCount += 1
                return try fused.predict(frame)
            }
            return try graph.forward(input: frame)
        }
        if prediction == .saved { return try predictSaved(slot: slot, windowView: windowView) }
        let z = try session.graph.forward(input: windowView)
        return try z.leadingRows(slot, count: 1)
    }

    /// `.saved`: frame `slot` through the method's predicting models, batch-1 with the saved
    /// statistics when they are current, else over the window (saving them when it is full).
    private func predictSaved(slot: Int, windowView: TensorView) throws(LichenError) -> TensorView {
        if session.stepCount != statisticsStep {
            // The trainables were reset since the statistics were saved.
            statisticsCurrent = false
        }
        let useSaved = statisticsCurrent
        if useSaved, let fused, session.policy.appliesNoAdapters {
            if !fusedCurrent { refoldFused() }
            if fusedCurrent {
                savedPredictionCount += 1
                fusedPredictionCount += 1
                return try fused.predict(try ring.leadingRows(slot, count: 1))
            }
        }
        let full = filled == window
        let input = useSaved ? try ring.leadingRows(slot, count: 1) : windowView
        let statistics: NormStatistics = useSaved ? .saved : (full ? .computedAndSaved : .computed)
        let row = useSaved ? 0 : slot
        let z = try session.policy.predict(input: input, statistics: statistics, row: row)
        if useSaved {
            savedPredictionCount += 1
        } else if full {
            statisticsCurrent = true
            statisticsStep = session.stepCount
            fusedCurrent = false
        }
        return z
    }

    /// Refolds the fused models with the statistics just saved, when the fused path is usable
    /// (no adapter applied); a refused refold leaves the graph predicting until the next one.
    /// - Note: Allocates nothing.
    private func refoldFused() {
        fusedCurrent = false
        guard let fused, session.policy.appliesNoAdapters else { return }
        fusedCurrent = fused.refold(session.policy)
    }

    /// Throws unless `frame` is one finite f32 frame of the model's input shape.
    private func requireFrame(_ frame: TensorView) throws(LichenError) {
        guard frame.type == .f32 else { throw .unsupportedElementType(operand: "frame", type: frame.type) }
        let s = frame.shape
        let offset: Int
        if s.rank == inputShape.rank {
            offset = 0
        } else if s.rank == inputShape.rank + 1 {
            guard s[0] == 1 else { throw .shapeMismatch(operand: "frame", dimension: 0, expected: 1, got: s[0]) }
            offset = 1
        } else {
            throw .shapeMismatch(operand: "frame", dimension: -1, expected: inputShape.rank, got: s.rank)
        }
        for d in 0..<inputShape.rank where s[d + offset] != inputShape[d] {
            throw .shapeMismatch(operand: "frame", dimension: d + offset, expected: inputShape[d], got: s[d + offset])
        }
        if let i = try frame.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "frame", index: i) }
    }

    /// Restores the session's initial trainables and optimizer state (`session.reset()`); the
    /// window and the schedule carry on.
    /// - Note: Allocates nothing.
    public func reset() throws(LichenError) {
        if let learner, learnerActive {
            // The learner owns the trainables: it resets them before its next job.
            learner.resetDue = true
            return
        }
        try session.reset()
        statisticsCurrent = false
        fusedCurrent = false
    }

    /// Forgets the frames in the window: the next frame starts a new window and the schedule
    /// counts from it (for a new stream, not for a reset of the trainables).
    /// - Note: Allocates nothing.
    public func clearWindow() {
        filled = 0
        next = 0
        sinceClear = 0
        statisticsCurrent = false
        fusedCurrent = false
        learner?.clearSchedule(frameCount: frameCount)
    }
}
