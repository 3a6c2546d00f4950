/// Frame-by-frame test-time adaptation: a robot sees one frame at a time, gets that frame's
/// prediction at once, and the model adapts on a window of the last `window` frames every
/// `every` frames (research/tta.md §4.5, the sliding window of mariodoebler's `base.py` at
/// batch size 1).
///
/// Every frame goes into a ring buffer of `window` frames allocated at construction. The
/// prediction for frame t comes from a forward over the window ending at t (the last
/// min(t, window) frames, t included), so batch-statistics normalisation sees a full batch:
///
/// - on an adaptation frame (t >= window and (t - window) is a multiple of `every`) the
///   window goes through `session.step(batch:)`: the prediction is the row of frame t in the
///   logits of that step, computed before the update (the online protocol of tta.md §1);
/// - on any other frame the window goes through the session's graph without an update.
///   Source (running statistics: each row independent of the others) forwards frame t alone.
///
/// With `every == window` the adaptation frames are t = window, 2·window, ...: the session
/// steps on exactly the disjoint batches of the papers' batch protocol, so the parameters
/// follow the same path as `step(batch:)` over those batches (the predictions of the other
/// frames differ: each one sees only the frames up to itself, not the rest of its batch).
///
/// Departures, written down:
/// - The ring keeps frames in arrival order modulo `window`, not in time order. Batch
///   statistics, the mean entropy and every per-sample operation are invariant under a
///   permutation of the batch rows, so the window is never rearranged (no copy per frame).
/// - No adaptation happens before the window is full (the reference likewise waits for a full
///   window); predictions before that use the partial window.
/// - Between adaptation frames the prediction is the session graph's forward: for methods
///   whose prediction combines several models (a teacher's logits) this is the student alone.
///
/// Bad input (wrong element type, a frame whose shape is neither the model's input shape nor
/// `[1, input shape...]`, NaN or infinity) throws before anything changes: the ring, the
/// counts and the model stay as they were; `rejectedFrameCount` counts such frames.
///
/// - Note: Construction allocates the ring from the arena; `step(frame:)` and `reset()`
///   allocate nothing.
public final class FrameAdapter {
    /// The method, its graph and its trainables.
    public let session: AdaptationSession
    /// B: frames per window (at most the session's batch size).
    public let window: Int
    /// K: frames between two adaptation steps.
    public let every: Int
    /// Frames accepted since construction (a reset of the trainables does not clear it).
    public private(set) var frameCount = 0
    /// Adaptation steps taken (calls of `session.step(batch:)`).
    public private(set) var adaptationCount = 0
    /// Frames refused for bad input.
    public private(set) var rejectedFrameCount = 0
    /// Whether the last accepted frame was an adaptation frame.
    public private(set) var lastFrameAdapted = false

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

    /// - Parameters:
    ///   - session: the method to run; its batch size must be at least `window`.
    ///   - window: B, 1...session.batchSize.
    ///   - every: K, >= 1 (K = B gives the batch protocol's updates).
    ///   - arena: where the ring comes from (window × frame values × 4 bytes).
    /// - Throws: `.invalidArgument(name: "window" | "every", ...)`; `.budgetExceeded`.
    public init(session: AdaptationSession, window: Int, every: Int, arena: Arena) throws(LichenError) {
        guard window >= 1 && window <= session.batchSize else {
            throw .invalidArgument(name: "window", value: window, reason: "must be in 1...the session's batch size")
        }
        guard every >= 1 else { throw .invalidArgument(name: "every", value: every, reason: "must be at least 1") }
        self.session = session
        self.window = window
        self.every = every
        inputShape = session.graph.spec.inputShape
        guard let values = inputShape.elementCount, values >= 1 else {
            throw .invalidArgument(name: "inputShape", value: inputShape.rank, reason: "the model's input has no values")
        }
        valuesPerFrame = values
        var dims = [window]
        dims += inputShape.dimensions
        ring = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
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
        if adapts(sinceClear) {
            lastFrameAdapted = true
            adaptationCount += 1
            let z = try session.step(batch: windowView)
            return try z.leadingRows(slot, count: 1)
        }
        lastFrameAdapted = false
        if session.method == .source {
            return try session.graph.forward(input: try ring.leadingRows(slot, count: 1))
        }
        let z = try session.graph.forward(input: windowView)
        return try z.leadingRows(slot, count: 1)
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
        try session.reset()
    }

    /// Forgets the frames in the window: the next frame starts a new window and the schedule
    /// counts from it (for a new stream, not for a reset of the trainables).
    /// - Note: Allocates nothing.
    public func clearWindow() {
        filled = 0
        next = 0
        sinceClear = 0
    }
}
