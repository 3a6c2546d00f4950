/// Watches an adapting model's predictions for collapse and resets its trainables when it
/// happens (research/tta.md §7: almost every continual method eventually collapses; RDumb
/// resets after a fixed number of updates).
///
/// Collapse, as defined here: over the last `historyLength` predictions (top-1 classes) the
/// effective number of predicted classes falls under `minimumEffectiveClasses`:
///
///     n_k = predictions of class k among the last W,  S = Σ_k n_k²,
///     effective classes = W² / S   (1 / Σ_k p_k², p_k = n_k / W: the exponential of the
///                                   order-2 Rényi entropy of the prediction histogram),
///     collapse  ⇔  W predictions seen since the last reset  and  W² < bound · S.
///
/// The order-2 entropy is chosen over Shannon's because it needs no logarithm (the core has no
/// libm) and S updates in O(1) per prediction: it is 1 when every prediction is one class and
/// the class count when the histogram is uniform. A model that collapses onto one or two
/// classes gives values near 1–2 whatever the stream; a healthy one on a class-balanced stream
/// stays near the class count. A stream whose labels are themselves concentrated (class-
/// correlated streams) also lowers it: choose the bound for the stream.
///
/// Confidence-versus-agreement with an anchor model is not used: it needs a second model's
/// forward every frame, which the frugal methods do not have.
///
/// Reset: `session.reset()` (the values at construction, optimizer state cleared: the source
/// model's trainables) — the "last good state" variant is not kept. After a reset the
/// history is cleared, so another collapse needs W fresh predictions. Optionally the guard
/// also resets every `resetEvery` predictions (RDumb's fixed-interval reset), counted apart.
///
/// - Note: Construction allocates the history and the histogram from the arena; `observe`
///   and `clear` allocate nothing.
public final class CollapseGuard {
    /// What `observe` did.
    public enum Verdict: Equatable, Sendable {
        /// Nothing.
        case none
        /// The collapse condition held; the session was reset.
        case collapseReset
        /// `resetEvery` predictions passed since the last reset; the session was reset.
        case periodicReset
    }

    /// W: predictions the histogram covers.
    public let historyLength: Int
    /// The bound on the effective number of predicted classes (0 turns collapse detection off).
    public let minimumEffectiveClasses: Double
    /// Reset every this many predictions (0: never).
    public let resetEvery: Int
    /// Classes per prediction.
    public let classes: Int
    /// Resets for collapse, and periodic resets, since construction.
    public private(set) var collapseResetCount = 0
    public private(set) var periodicResetCount = 0
    /// Predictions observed since construction, and the number (1-based) of the one that
    /// triggered the last reset (0 before any).
    public private(set) var observedCount = 0
    public private(set) var lastResetAt = 0
    /// The effective class count W² / S of the last full history (0 until the history is full).
    public private(set) var lastEffectiveClasses: Double = 0

    /// [W]: the class of each of the last W predictions, as a float (ring order).
    private let history: TensorView
    /// [classes]: n_k.
    private let counts: TensorView
    private var filled = 0
    private var next = 0
    /// S = Σ n_k².
    private var sumOfSquares = 0
    private var sinceReset = 0

    /// - Parameters:
    ///   - classes: logits per prediction (>= 2).
    ///   - historyLength: W (>= 1).
    ///   - minimumEffectiveClasses: the collapse bound, in [0, classes]; 0 disables detection.
    ///   - resetEvery: reset every N predictions, 0 for never.
    ///   - arena: where the history and histogram come from.
    /// - Throws: `.invalidArgument` for a setting out of range; `.budgetExceeded`.
    public init(classes: Int, historyLength: Int, minimumEffectiveClasses: Double, resetEvery: Int = 0,
                arena: Arena) throws(LichenError) {
        guard classes >= 2 else { throw .invalidArgument(name: "classes", value: classes, reason: "must be at least 2") }
        guard historyLength >= 1 && historyLength <= 1 << 24 else {
            throw .invalidArgument(name: "historyLength", value: historyLength, reason: "must be in 1...2^24")
        }
        guard minimumEffectiveClasses >= 0 && minimumEffectiveClasses <= Double(classes) else {
            throw .invalidArgument(name: "minimumEffectiveClasses", value: Int(minimumEffectiveClasses.isFinite ? minimumEffectiveClasses : -1),
                                   reason: "must be in 0...classes")
        }
        guard resetEvery >= 0 else { throw .invalidArgument(name: "resetEvery", value: resetEvery, reason: "must be 0 or more") }
        self.classes = classes
        self.historyLength = historyLength
        self.minimumEffectiveClasses = minimumEffectiveClasses
        self.resetEvery = resetEvery
        history = try arena.persistentTensor(.f32, try Shape(historyLength))
        counts = try arena.persistentTensor(.f32, try Shape(classes))
        try counts.fill(0)
    }

    /// Total resets.
    public var resetCount: Int { collapseResetCount + periodicResetCount }

    /// Whether the guard judges the recent predictions healthy: its history is full and their
    /// effective number of classes is at least the bound.
    public var judgesHealthy: Bool { filled == historyLength && lastEffectiveClasses >= minimumEffectiveClasses }

    /// The top-1 class of row `row` of `logits` ([n, classes]); the first of equal maxima.
    public static func topClass(_ z: F32Elements, row: Int, classes: Int) -> Int {
        var best = 0
        var bestValue = z[row * classes]
        for k in 1..<classes where z[row * classes + k] > bestValue {
            best = k
            bestValue = z[row * classes + k]
        }
        return best
    }

    /// Records the predictions in `logits` ([n, classes], each row one prediction, in order)
    /// and, after each one, resets `session` when collapse is detected or the periodic reset is
    /// due. At most one reset per call: the rows after a reset are still recorded.
    ///
    /// - Returns: the verdict of the call (the last reset's kind, or `.none`).
    /// - Throws: `.unsupportedElementType`, `.shapeMismatch(operand: "logits", ...)` before
    ///   anything changes; what `session.reset()` throws.
    /// - Note: Allocates nothing.
    public func observe(logits: TensorView, resetting session: AdaptationSession?) throws(LichenError) -> Verdict {
        let z = try logits.f32Elements("logits")
        guard logits.shape.rank == 2, logits.shape[1] == classes else {
            throw .shapeMismatch(operand: "logits", dimension: 1, expected: classes,
                                 got: logits.shape.rank == 2 ? logits.shape[1] : -logits.shape.rank)
        }
        var verdict = Verdict.none
        for row in 0..<logits.shape[0] {
            let v = try record(Self.topClass(z, row: row, classes: classes), resetting: session)
            if v != .none { verdict = v }
        }
        return verdict
    }

    /// Records one predicted class (0 <= k < classes) and applies the rules after it.
    /// - Throws: `.invalidArgument(name: "class", ...)` for a class out of range; what
    ///   `session.reset()` throws.
    /// - Note: Allocates nothing.
    public func record(_ k: Int, resetting session: AdaptationSession?) throws(LichenError) -> Verdict {
        guard k >= 0 && k < classes else { throw .invalidArgument(name: "class", value: k, reason: "outside 0..<classes") }
        let h = try history.f32Elements("history")
        let n = try counts.f32Elements("counts")
        if filled == historyLength {
            let old = Int(h[next])
            let c = Int(n[old])
            sumOfSquares -= 2 * c - 1  // c² → (c − 1)²
            n[old] = Float(c - 1)
        } else {
            filled += 1
        }
        let c = Int(n[k])
        sumOfSquares += 2 * c + 1  // c² → (c + 1)²
        n[k] = Float(c + 1)
        h[next] = Float(k)
        next = next + 1 == historyLength ? 0 : next + 1
        observedCount += 1
        sinceReset += 1
        var verdict = Verdict.none
        if filled == historyLength {
            let w = Double(historyLength)
            lastEffectiveClasses = w * w / Double(sumOfSquares)
            if w * w < minimumEffectiveClasses * Double(sumOfSquares) {
                verdict = .collapseReset
            }
        }
        if verdict == .none && resetEvery > 0 && sinceReset >= resetEvery {
            verdict = .periodicReset
        }
        guard verdict != .none else { return .none }
        if let session { try session.reset() }
        if verdict == .collapseReset { collapseResetCount += 1 } else { periodicResetCount += 1 }
        lastResetAt = observedCount
        sinceReset = 0
        clear()
        return verdict
    }

    /// Forgets the prediction history (not the counts of resets).
    /// - Note: Allocates nothing.
    public func clear() {
        if let n = try? counts.f32Elements("counts") { n.fill(0) }
        filled = 0
        next = 0
        sumOfSquares = 0
    }
}
