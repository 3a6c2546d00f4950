/// Persistent self-supervised cue switching (van Hecke, de Croon et al.; research/methods.md
/// section 3): each tick a trusted cue's target (when valid) teaches a regressor over the
/// complementary cue's feature vector (kNN, or a small network: `CueRegressor`), and a switch
/// rule decides which cue drives the output. The steps below are the kNN's; the network
/// estimates with its current weights and takes one SGD step on each learned sample, and its
/// retrain only judges.
///
/// Per tick (`tick(features:target:trustedValid:)`), in the authors' order:
/// 1. the current kNN model (a snapshot of the buffer at the last retrain) estimates the target
///    from the features; the estimate is smoothed by a moving average of width `smoothing`;
/// 2. when the trusted target is valid and learning is on, the (features, target) pair enters a
///    ring buffer of `capacity` samples, with the smoothed estimate made *before* it was learned
///    (an out-of-sample estimate); every `retrainInterval` new samples the learner retrains;
/// 3. the drive policy picks the cue (see `DrivePolicy`), with training wheels: while the
///    trusted target is valid and above `dangerThreshold`, the trusted cue overrides.
///
/// A retrain first judges the model that is being replaced, then replaces it:
/// - held-out part: the samples added since the previous retrain (the model never saw them);
/// - training part: every other buffered sample that has an estimate;
/// - the decision threshold τ_est is tuned on the training part (`CueROC.tunedThreshold`), and
///   the held-out TPR and FPR at τ_est decide whether the complementary cue qualifies to drive;
/// - then the buffer is copied into the model.
///
/// Memory: the ring (features, targets, estimates), the model snapshot, the sort scratch and the
/// neighbour and smoothing scratch are one block of the budget's heap taken at construction
/// (`arenaBytes`) and freed with the learner (a network regressor's parameters and step memory
/// come from the arena's low end). A tick allocates nothing, a retrain included.
public final class CueLearner {
    /// The settings; `policy` and `learning` may change between ticks (`setPolicy`).
    public private(set) var configuration: CueConfiguration
    /// Bytes of the budget's heap the learner asked for (`byteCount(_:)`).
    public let arenaBytes: Int
    /// The network regressor, when the configuration asks for one.
    public let network: CueNetwork?
    /// The one heap block every buffer lives in; it keeps the arena alive.
    public let storage: HeapBuffer
    /// The arena the learner's block came from.
    public var arena: Arena { storage.arena }

    // Ring buffer: features [capacity, featureCount], targets and out-of-sample estimates [capacity].
    private let ringFeatures: F32Elements
    private let ringTargets: F32Elements
    private let ringEstimates: F32Elements
    // The kNN model: a copy of the ring at the last retrain.
    private let modelFeatures: F32Elements
    private let modelTargets: F32Elements
    // Scratch for the ROC sorts, the neighbours and the moving average.
    private let sortScores: F32Elements
    private let sortLabels: F32Elements
    private let neighbourDistances: F32Elements
    private let neighbourIndices: F32Elements
    private let smoothingWindow: F32Elements

    /// Samples in the ring (≤ capacity).
    public private(set) var bufferedCount = 0
    /// Ring slot the next sample goes to.
    public private(set) var nextSlot = 0
    /// Samples in the current kNN model (0 before the first retrain).
    public private(set) var modelCount = 0
    /// Samples added since the last retrain (the held-out part).
    public private(set) var samplesSinceRetrain = 0
    /// Samples ever added, retrains done, ticks run.
    public private(set) var samplesAdded = 0
    public private(set) var retrainCount = 0
    public private(set) var tickCount = 0
    /// Ticks with a training-wheel override.
    public private(set) var interventionCount = 0
    /// τ_est, the complementary decision threshold (τ_gt until the first tuning).
    public private(set) var estimateThreshold: Float
    /// What the last retrain measured.
    public private(set) var evaluation = CueEvaluation.none
    /// Whether the complementary cue meets the held-out TPR / FPR bounds (`DrivePolicy.gated`).
    public private(set) var qualified = false

    /// The last held-out accuracy at τ_est (the network regressor's confidence).
    private var heldOutAccuracy: Float = 0
    private var smoothingCount = 0
    private var smoothingNext = 0
    private var ticksSinceTrusted = Int.max
    private var lastTrustedTarget: Float = .nan

    /// A learner whose buffers come from one block of `arena`'s heap (the budget's high end),
    /// freed when the learner goes. The heap is used, not the low end, so that a learner can be
    /// made at any time beside a running model (a runtime rolls its low end back when it
    /// changes method).
    ///
    /// - Throws: `.invalidArgument` / `.nonFiniteValue` for a bad configuration
    ///   (`CueConfiguration.validate()`); `.budgetExceeded` when the budget cannot hold the
    ///   block (nothing is kept).
    public init(configuration: CueConfiguration, arena: Arena) throws(LichenError) {
        try configuration.validate()
        let c = configuration
        let layout = CueLearner.layout(c)
        let buffer = try HeapBuffer(arena: arena, byteCount: layout.byteCount)
        func block(_ i: Int) throws(LichenError) -> F32Elements {
            try buffer.view(byteOffset: layout.offsets[i], type: .f32, shape: try Shape(layout.counts[i])).f32Elements("cue buffer")
        }
        ringFeatures = try block(0)
        ringTargets = try block(1)
        ringEstimates = try block(2)
        modelFeatures = try block(3)
        modelTargets = try block(4)
        sortScores = try block(5)
        sortLabels = try block(6)
        neighbourDistances = try block(7)
        neighbourIndices = try block(8)
        smoothingWindow = try block(9)
        storage = buffer
        if case .network(let hidden, let rate, let seed) = c.regressor {
            network = try CueNetwork(featureCount: c.featureCount, hidden: hidden, learningRate: rate,
                                     targetScale: max(abs(c.decisionThreshold), 1e-3), seed: seed, arena: arena)
        } else {
            network = nil
        }
        self.configuration = c
        estimateThreshold = c.decisionThreshold
        arenaBytes = layout.byteCount
    }

    /// The values in each of the ten blocks, their byte offsets (64-byte aligned) and the total.
    static func layout(_ c: CueConfiguration) -> (counts: [Int], offsets: [Int], byteCount: Int) {
        let rows = c.capacity * c.featureCount  // validate() bounds both: no overflow
        let counts = [rows, c.capacity, c.capacity, rows, c.capacity, c.capacity, c.capacity, c.neighbours, c.neighbours, c.smoothing]
        var offsets: [Int] = [], total = 0
        for n in counts {
            offsets.append(total)
            total += (4 * n + 63) / 64 * 64
        }
        return (counts, offsets, total)
    }

    /// The bytes of the budget's heap a learner of `configuration` asks for (jemalloc rounds
    /// it up to its size class).
    /// - Throws: what `CueConfiguration.validate()` throws.
    public static func byteCount(_ configuration: CueConfiguration) throws(LichenError) -> Int {
        try configuration.validate()
        return layout(configuration).byteCount
    }

    // MARK: - Tick

    /// One tick: estimate, learn, decide who drives.
    ///
    /// - Parameters:
    ///   - features: the complementary cue's feature vector, f32, `featureCount` values.
    ///   - target: the trusted cue's target; read only when `trustedValid`.
    ///   - trustedValid: whether the trusted cue produced a target this tick.
    /// - Throws: `.unsupportedElementType` for a non-f32 view; `.shapeMismatch(operand:
    ///   "features", ...)` for the wrong count; `.nonFiniteValue(operand: "features", index:)`
    ///   for a NaN or infinite feature; `.nonFiniteValue(operand: "target", index: 0)` for a
    ///   non-finite valid target; `.outOfRange(name: "features[i]" or "target", ...)` for a
    ///   value beyond ±`maximumMagnitude`. A throwing tick changes nothing.
    /// - Note: Allocates nothing.
    public func tick(features: TensorView, target: Float, trustedValid: Bool) throws(LichenError) -> CueOutput {
        let x = try checkedFeatures(features)
        if trustedValid && !target.isFinite { throw .nonFiniteValue(operand: "target", index: 0) }
        if trustedValid && abs(target) > CueLearner.maximumMagnitude {
            throw .outOfRange(name: "target", value: floatText(target), allowed: "-1e6...1e6")
        }
        let c = configuration
        let learn = trustedValid && c.learning

        // 1. Estimate with the current model (no state changes yet).
        var raw = Float.nan
        if modelCount > 0 {
            if let network { raw = try network.predict(x) } else { raw = nearestMean(x) }
        }
        // The network learns before anything else changes, so that its failure changes nothing.
        if learn, let network { try network.learn(x, target: target) }

        tickCount += 1
        if trustedValid {
            ticksSinceTrusted = 0
            lastTrustedTarget = target
        } else if ticksSinceTrusted < Int.max {
            ticksSinceTrusted += 1
        }
        var estimate = Float.nan, confidence: Float = 0
        if !raw.isNaN {
            estimate = smoothed(raw)
            confidence = network == nil ? agreement(obstacle: estimate > estimateThreshold) : heldOutAccuracy
        }

        // 2. Learn.
        var learned = false
        if learn {
            insert(x, target: target, estimate: estimate)
            learned = true
            if samplesSinceRetrain >= c.retrainInterval { retrain() }
        }

        // 3. Drive.
        let hasModel = !estimate.isNaN
        let lost = ticksSinceTrusted > c.trustedTimeout
        let danger = trustedValid && target > c.dangerThreshold
        var mono: Bool
        var wheels = true
        switch c.policy {
        case .trustedOnly: mono = false
        case .gated: mono = hasModel && (qualified || lost)
        case .trainingWheels: mono = hasModel
        case .complementaryOnly:
            mono = hasModel
            wheels = false
        }
        var out = CueOutput(driver: .none, estimate: .nan, obstacle: false, complementaryEstimate: estimate,
                            confidence: confidence, intervention: false, trustedValid: trustedValid, learned: learned)
        if mono && wheels && danger {
            interventionCount += 1
            out.driver = .trusted
            out.estimate = target
            out.obstacle = true
            out.intervention = true
        } else if mono {
            out.driver = .complementary
            out.estimate = estimate
            out.obstacle = estimate > estimateThreshold
        } else if c.policy != .complementaryOnly && !lost {
            out.driver = .trusted
            out.estimate = lastTrustedTarget
            out.obstacle = lastTrustedTarget > c.decisionThreshold
        }
        return out
    }

    /// The raw estimate, touching no learner state: kNN, the mean target of the k nearest model
    /// samples (fewer when the model holds fewer); or the network's output. Nil before the
    /// first retrain.
    /// - Throws: as `tick` for bad features.
    /// - Note: Allocates nothing.
    public func predict(features: TensorView) throws(LichenError) -> Float? {
        let x = try checkedFeatures(features)
        guard modelCount > 0 else { return nil }
        if let network { return try network.predict(x) }
        return nearestMean(x)
    }

    /// Rebuilds the model from the buffer now (judging the model it replaces, as every
    /// `retrainInterval` samples do). Does nothing on an empty buffer.
    /// - Note: Allocates nothing.
    public func retrainNow() {
        if bufferedCount > 0 { retrain() }
    }

    /// Changes who may drive and whether valid targets are learned, from the next tick on
    /// (a protocol's phases: stereo flight, mono flight with training wheels, pure mono).
    /// Everything learned is kept.
    public func setPolicy(_ policy: DrivePolicy, learning: Bool) {
        configuration.policy = policy
        configuration.learning = learning
    }

    /// Forgets everything learned: buffer, model, threshold, gate, counters.
    public func reset() {
        bufferedCount = 0; nextSlot = 0; modelCount = 0; samplesSinceRetrain = 0
        samplesAdded = 0; retrainCount = 0; tickCount = 0; interventionCount = 0
        estimateThreshold = configuration.decisionThreshold
        evaluation = .none; qualified = false
        smoothingCount = 0; smoothingNext = 0
        ticksSinceTrusted = Int.max; lastTrustedTarget = .nan
    }

    // MARK: - State

    /// Values in a saved state: a 10-value header, then the whole ring (features, targets,
    /// estimates).
    public var stateValueCount: Int { CueLearner.stateHeader + configuration.capacity * (configuration.featureCount + 2) }
    static let stateHeader = 10
    /// Largest magnitude of a feature, a target or a saved estimate the learner takes: beyond
    /// it the neighbours' mean, the smoothing and the network's sums could overflow to infinity.
    public static let maximumMagnitude: Float = 1e6
    static let stateMagic: Float = 17237  // "CU"
    static let stateVersion: Float = 1

    /// Writes the buffer and the decision state (τ_est, the gate) into `state`, f32,
    /// `stateValueCount` values.
    /// - Throws: `.unsupportedElementType` unless f32; `.shapeMismatch(operand: "state", ...)`
    ///   for another count.
    /// - Note: Allocates nothing.
    public func save(into state: TensorView) throws(LichenError) {
        let out = try state.f32Elements("state")
        guard out.count == stateValueCount else {
            throw .shapeMismatch(operand: "state", dimension: 0, expected: stateValueCount, got: out.count)
        }
        let c = configuration
        out[0] = CueLearner.stateMagic
        out[1] = CueLearner.stateVersion
        out[2] = Float(c.featureCount)
        out[3] = Float(c.capacity)
        out[4] = Float(bufferedCount)
        out[5] = Float(nextSlot)
        out[6] = Float(samplesSinceRetrain)
        out[7] = estimateThreshold
        out[8] = qualified ? 1 : 0
        out[9] = 0
        var o = CueLearner.stateHeader
        for i in 0..<(c.capacity * c.featureCount) { out[o + i] = ringFeatures[i] }
        o += c.capacity * c.featureCount
        for i in 0..<c.capacity { out[o + i] = ringTargets[i] }
        o += c.capacity
        for i in 0..<c.capacity { out[o + i] = ringEstimates[i] }
    }

    /// Restores a state `save(into:)` wrote, from untrusted bytes: everything is checked before
    /// anything changes. The model becomes the restored buffer (as a retrain would make it);
    /// τ_est and the gate are the saved ones; the held-out count since the last retrain carries
    /// over; tick and intervention counters and the smoothing window start over.
    ///
    /// - Throws: `.unsupportedElementType` unless f32; `.shapeMismatch(operand: "state", ...)`
    ///   for another count; `.malformedFile(offset:reason:)` (byte offset into the state) for a
    ///   bad magic or version, another feature count or capacity, inconsistent counters, a
    ///   non-finite threshold, a feature or target that is not finite or beyond ±1e6, or an
    ///   estimate that is infinite or beyond ±1e6.
    public func restore(from state: TensorView) throws(LichenError) {
        let v = try state.f32Elements("state")
        let c = configuration
        guard v.count == stateValueCount else {
            throw .shapeMismatch(operand: "state", dimension: 0, expected: stateValueCount, got: v.count)
        }
        guard v[0] == CueLearner.stateMagic else { throw .malformedFile(offset: 0, reason: "not a cue learner state") }
        guard v[1] == CueLearner.stateVersion else { throw .malformedFile(offset: 4, reason: "unknown cue state version") }
        guard v[2] == Float(c.featureCount) else { throw .malformedFile(offset: 8, reason: "another feature count") }
        guard v[3] == Float(c.capacity) else { throw .malformedFile(offset: 12, reason: "another buffer capacity") }
        func whole(_ x: Float, _ range: ClosedRange<Int>) -> Int? {
            guard x.isFinite, x == x.rounded(), x >= Float(range.lowerBound), x <= Float(range.upperBound) else { return nil }
            return Int(x)
        }
        guard let buffered = whole(v[4], 0...c.capacity) else { throw .malformedFile(offset: 16, reason: "buffered count out of range") }
        guard let next = whole(v[5], 0...(c.capacity - 1)), buffered == c.capacity || next == buffered else {
            throw .malformedFile(offset: 20, reason: "next slot inconsistent with the buffered count")
        }
        guard let since = whole(v[6], 0...buffered) else { throw .malformedFile(offset: 24, reason: "samples since retrain out of range") }
        guard v[7].isFinite else { throw .malformedFile(offset: 28, reason: "non-finite decision threshold") }
        guard v[8] == 0 || v[8] == 1 else { throw .malformedFile(offset: 32, reason: "gate flag is not 0 or 1") }
        let h = CueLearner.stateHeader, d = c.featureCount
        let targetsAt = h + c.capacity * d, estimatesAt = targetsAt + c.capacity
        for slot in 0..<buffered {
            let m = CueLearner.maximumMagnitude
            for j in 0..<d where !(abs(v[h + slot * d + j]) <= m) {
                throw .malformedFile(offset: 4 * (h + slot * d + j), reason: "feature not finite or beyond 1e6")
            }
            guard abs(v[targetsAt + slot]) <= m else {
                throw .malformedFile(offset: 4 * (targetsAt + slot), reason: "target not finite or beyond 1e6")
            }
            guard v[estimatesAt + slot].isNaN || abs(v[estimatesAt + slot]) <= m else {
                throw .malformedFile(offset: 4 * (estimatesAt + slot), reason: "estimate infinite or beyond 1e6")
            }
        }
        // Checked: apply.
        for i in 0..<(c.capacity * d) { ringFeatures[i] = v[h + i] }
        for i in 0..<c.capacity {
            ringTargets[i] = v[targetsAt + i]
            ringEstimates[i] = v[estimatesAt + i]
        }
        bufferedCount = buffered
        nextSlot = next
        samplesSinceRetrain = since
        samplesAdded = buffered
        estimateThreshold = v[7]
        qualified = v[8] == 1
        for i in 0..<(buffered * d) { modelFeatures[i] = ringFeatures[i] }
        for i in 0..<buffered { modelTargets[i] = ringTargets[i] }
        modelCount = buffered
        tickCount = 0
        interventionCount = 0
        smoothingCount = 0
        smoothingNext = 0
        ticksSinceTrusted = Int.max
        lastTrustedTarget = .nan
    }

    // MARK: - Internals

    private func checkedFeatures(_ features: TensorView) throws(LichenError) -> F32Elements {
        let x = try features.f32Elements("features")
        guard x.count == configuration.featureCount else {
            throw .shapeMismatch(operand: "features", dimension: 0, expected: configuration.featureCount, got: x.count)
        }
        if let i = x.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "features", index: i) }
        for i in 0..<x.count where abs(x[i]) > CueLearner.maximumMagnitude {
            throw .outOfRange(name: "features[\(i)]", value: floatText(x[i]), allowed: "-1e6...1e6")
        }
        return x
    }

    /// Mean target of the k nearest model rows (squared Euclidean distance; on equal distance
    /// the lower row wins). Leaves the neighbours in `neighbourIndices[0..<min(k, modelCount)]`.
    private func nearestMean(_ x: F32Elements) -> Float {
        let d = configuration.featureCount
        let k = min(configuration.neighbours, modelCount)
        var found = 0
        for row in 0..<modelCount {
            var s: Float = 0
            let base = row * d
            for j in 0..<d {
                let t = modelFeatures[base + j] - x[j]
                s += t * t
            }
            if found == k && !(s < neighbourDistances[k - 1]) { continue }
            // Insert in order; ties keep the earlier row first.
            var i = found < k ? found : k - 1
            if found < k { found += 1 }
            while i > 0 && s < neighbourDistances[i - 1] {
                neighbourDistances[i] = neighbourDistances[i - 1]
                neighbourIndices[i] = neighbourIndices[i - 1]
                i -= 1
            }
            neighbourDistances[i] = s
            neighbourIndices[i] = Float(row)
        }
        var sum: Float = 0
        for i in 0..<k { sum += modelTargets[Int(neighbourIndices[i])] }
        return sum / Float(k)
    }

    /// Fraction of the last neighbours whose trusted decision equals `obstacle`.
    private func agreement(obstacle: Bool) -> Float {
        let k = min(configuration.neighbours, modelCount)
        var same = 0
        for i in 0..<k where (modelTargets[Int(neighbourIndices[i])] > configuration.decisionThreshold) == obstacle { same += 1 }
        return Float(same) / Float(k)
    }

    private func smoothed(_ raw: Float) -> Float {
        let w = configuration.smoothing
        smoothingWindow[smoothingNext] = raw
        smoothingNext = (smoothingNext + 1) % w
        if smoothingCount < w { smoothingCount += 1 }
        var s: Float = 0
        for i in 0..<smoothingCount { s += smoothingWindow[i] }
        return s / Float(smoothingCount)
    }

    private func insert(_ x: F32Elements, target: Float, estimate: Float) {
        let d = configuration.featureCount
        let base = nextSlot * d
        for j in 0..<d { ringFeatures[base + j] = x[j] }
        ringTargets[nextSlot] = target
        ringEstimates[nextSlot] = estimate
        nextSlot = (nextSlot + 1) % configuration.capacity
        if bufferedCount < configuration.capacity { bufferedCount += 1 }
        samplesAdded += 1
        samplesSinceRetrain += 1
    }

    /// Age of a filled slot: 0 for the newest sample.
    private func age(_ slot: Int) -> Int {
        let cap = configuration.capacity
        return (nextSlot - 1 - slot + cap) % cap
    }

    private func retrain() {
        let c = configuration
        let heldOut = min(samplesSinceRetrain, bufferedCount)
        // Training part: tune τ_est.
        var n = 0
        for slot in 0..<bufferedCount where age(slot) >= heldOut && !ringEstimates[slot].isNaN {
            sortScores[n] = ringEstimates[slot]
            sortLabels[n] = ringTargets[slot] > c.decisionThreshold ? 1 : 0
            n += 1
        }
        let trainingCount = n
        let tuned = CueROC.tunedThreshold(scores: sortScores, labels: sortLabels, count: n,
                                          minimumTruePositiveRate: c.minimumTruePositiveRate)
        if let tuned { estimateThreshold = tuned }
        // Held-out part: rates at τ_est, MSE, AUC.
        n = 0
        var squared = 0.0
        for slot in 0..<bufferedCount where age(slot) < heldOut && !ringEstimates[slot].isNaN {
            sortScores[n] = ringEstimates[slot]
            sortLabels[n] = ringTargets[slot] > c.decisionThreshold ? 1 : 0
            let e = Double(ringEstimates[slot]) - Double(ringTargets[slot])
            squared += e * e
            n += 1
        }
        let rates = CueROC.rates(scores: sortScores, labels: sortLabels, count: n, threshold: estimateThreshold)
        var right = 0
        for i in 0..<n where (sortScores[i] > estimateThreshold) == (sortLabels[i] != 0) { right += 1 }
        heldOutAccuracy = n > 0 ? Float(right) / Float(n) : 0
        let auc = CueROC.area(scores: sortScores, labels: sortLabels, count: n)
        qualified = tuned != nil && rates.truePositiveRate >= c.minimumTruePositiveRate
            && rates.falsePositiveRate <= c.maximumFalsePositiveRate
        evaluation = CueEvaluation(
            trainingCount: trainingCount, heldOutCount: n, threshold: estimateThreshold, thresholdTuned: tuned != nil,
            heldOut: rates, heldOutArea: auc, heldOutMeanSquaredError: n > 0 ? Float(squared / Double(n)) : .nan,
            qualified: qualified)
        // The new model: the whole buffer (the network keeps learning online; its model is itself).
        if network == nil {
            let d = c.featureCount
            for i in 0..<(bufferedCount * d) { modelFeatures[i] = ringFeatures[i] }
            for i in 0..<bufferedCount { modelTargets[i] = ringTargets[i] }
        }
        modelCount = bufferedCount
        samplesSinceRetrain = 0
        retrainCount += 1
    }
}

/// What one tick of a `CueLearner` returns.
public struct CueOutput: Sendable {
    /// Who drives this tick.
    public var driver: Cue
    /// The driving value on the trusted cue's scale: the trusted target (the last valid one while
    /// within the timeout) or the smoothed complementary estimate; NaN when `driver == .none`.
    public var estimate: Float
    /// The driving cue's obstacle decision (trusted: target > τ_gt; complementary:
    /// estimate > τ_est; true on an intervention).
    public var obstacle: Bool
    /// The smoothed complementary estimate, whoever drives; NaN before the first retrain.
    public var complementaryEstimate: Float
    /// Confidence of the complementary decision in [0, 1]: kNN, the fraction of the k neighbours
    /// whose trusted decision agrees with it; network, the last retrain's held-out accuracy at
    /// τ_est. 0 before the first retrain.
    public var confidence: Float
    /// The training wheels overrode the complementary cue this tick.
    public var intervention: Bool
    /// Whether the trusted cue was valid this tick.
    public var trustedValid: Bool
    /// Whether the tick's sample entered the buffer.
    public var learned: Bool
}

/// What a retrain measured on the model it replaced.
public struct CueEvaluation: Sendable, Equatable {
    /// Pairs in the training part (those with an out-of-sample estimate) and in the held-out part.
    public var trainingCount: Int
    public var heldOutCount: Int
    /// τ_est after the retrain, and whether the training part could tune it (it needs a positive).
    public var threshold: Float
    public var thresholdTuned: Bool
    /// TPR / FPR at τ_est on the held-out part.
    public var heldOut: CueRates
    /// ROC AUC and MSE of the held-out estimates against the trusted targets (NaN when empty).
    public var heldOutArea: Float
    public var heldOutMeanSquaredError: Float
    /// Whether the held-out rates met the bounds.
    public var qualified: Bool

    public static let none = CueEvaluation(
        trainingCount: 0, heldOutCount: 0, threshold: .nan, thresholdTuned: false,
        heldOut: CueRates(truePositiveRate: .nan, falsePositiveRate: .nan, positives: 0, negatives: 0),
        heldOutArea: .nan, heldOutMeanSquaredError: .nan, qualified: false)

    public static func == (a: CueEvaluation, b: CueEvaluation) -> Bool {
        func same(_ x: Float, _ y: Float) -> Bool { x == y || (x.isNaN && y.isNaN) }
        return a.trainingCount == b.trainingCount && a.heldOutCount == b.heldOutCount && same(a.threshold, b.threshold)
            && a.thresholdTuned == b.thresholdTuned && a.heldOut == b.heldOut && same(a.heldOutArea, b.heldOutArea)
            && same(a.heldOutMeanSquaredError, b.heldOutMeanSquaredError) && a.qualified == b.qualified
    }
}
