/// Which cue drives a cue learner's output on a tick.
public enum Cue: Int32, Sendable {
    /// Neither cue may drive: no valid trusted target within the timeout and no complementary
    /// estimate the policy allows. The robot should stop.
    case none = 0
    /// The trusted cue (stereo disparity in the paper): its latest valid target.
    case trusted = 1
    /// The complementary cue (monocular appearance): the learner's smoothed estimate.
    case complementary = 2
}

/// Who may drive, from the most conservative to the most trusting
/// (research/methods.md section 3; each protocol of the persistent-SSL experiment is one of these).
public enum DrivePolicy: Int32, Sendable {
    /// Only the trusted cue drives; when it has been invalid for longer than the timeout,
    /// nothing drives (`Cue.none`). Learning continues when enabled.
    case trustedOnly = 0
    /// The switch rule: the complementary cue drives while its held-out TPR and FPR meet the
    /// configured bounds, with training wheels (the trusted cue overrides on danger while it is
    /// valid); otherwise the trusted cue drives. When the trusted cue has been invalid for
    /// longer than the timeout, the complementary cue drives alone whenever it has a model.
    case gated = 1
    /// The complementary cue drives whenever it has a model, with training wheels; the ROC gate
    /// is not consulted (the paper's "mono flight with stereo training wheels").
    case trainingWheels = 2
    /// The complementary cue drives whenever it has a model; the trusted cue never overrides
    /// (pure-mono flight). Learning from valid trusted targets continues when enabled.
    case complementaryOnly = 3

    /// The policy's lower-case name, as the CLI and the C ABI's docs spell it.
    public var name: StaticString {
        switch self {
        case .trustedOnly: return "trusted-only"
        case .gated: return "gated"
        case .trainingWheels: return "training-wheels"
        case .complementaryOnly: return "complementary-only"
        }
    }
}

/// The complementary cue's regressor.
public enum CueRegressor: Sendable, Equatable {
    /// kNN regression over the buffer, rebuilt at every retrain (the authors' learner).
    case nearestNeighbours
    /// A small Lichen network (features → `hidden`, ELU → 1) trained online by backprop, one
    /// SGD step at `learningRate` per learned sample (`CueNetwork`). Its parameters and step
    /// memory come from the arena's low end.
    case network(hidden: Int, learningRate: Float, seed: UInt64)
}

/// The settings of a `CueLearner`. Defaults are the authors' onboard code (`IC`, textons.h and
/// IC.cpp in kevindehecker/ardrone2_vision; research/methods.md section 3.2) where it has them.
///
/// Targets are on the trusted cue's scale, larger meaning closer (mean disparity in the paper):
/// an obstacle is a target above `decisionThreshold`, imminent danger a target above
/// `dangerThreshold` (a closer distance, so a larger value).
public struct CueConfiguration: Sendable, Equatable {
    /// Length of the complementary cue's feature vector (21: 10 + 10 texton bins and entropy).
    public var featureCount: Int
    /// k of the kNN regression (5).
    public var neighbours: Int
    /// Samples the ring buffer holds (2435).
    public var capacity: Int
    /// The kNN model is rebuilt from the buffer after this many new samples (200).
    public var retrainInterval: Int
    /// Width of the moving average over the raw kNN estimates (5).
    public var smoothing: Int
    /// τ_gt: the trusted cue reports an obstacle when its target exceeds this.
    public var decisionThreshold: Float
    /// τ_safe: the trusted cue reports imminent danger (training wheels take over) above this;
    /// must be ≥ `decisionThreshold`.
    public var dangerThreshold: Float
    /// The complementary cue qualifies to drive only with held-out TPR ≥ this (0.95); also the
    /// TPR the decision threshold is tuned to on the training part.
    public var minimumTruePositiveRate: Float
    /// ... and held-out FPR ≤ this (0.4).
    public var maximumFalsePositiveRate: Float
    /// Ticks the trusted cue may be invalid before it counts as lost: its last valid target
    /// still drives (`.trustedOnly`, `.gated` without a qualified model) until then.
    public var trustedTimeout: Int
    /// Who may drive.
    public var policy: DrivePolicy
    /// Whether valid trusted targets enter the buffer (and retrains happen).
    public var learning: Bool
    /// kNN (default) or a small network.
    public var regressor: CueRegressor

    public init(
        featureCount: Int = 21, neighbours: Int = 5, capacity: Int = 2435, retrainInterval: Int = 200, smoothing: Int = 5,
        decisionThreshold: Float, dangerThreshold: Float, minimumTruePositiveRate: Float = 0.95,
        maximumFalsePositiveRate: Float = 0.4, trustedTimeout: Int = 10, policy: DrivePolicy = .gated, learning: Bool = true,
        regressor: CueRegressor = .nearestNeighbours
    ) {
        self.regressor = regressor
        self.featureCount = featureCount
        self.neighbours = neighbours
        self.capacity = capacity
        self.retrainInterval = retrainInterval
        self.smoothing = smoothing
        self.decisionThreshold = decisionThreshold
        self.dangerThreshold = dangerThreshold
        self.minimumTruePositiveRate = minimumTruePositiveRate
        self.maximumFalsePositiveRate = maximumFalsePositiveRate
        self.trustedTimeout = trustedTimeout
        self.policy = policy
        self.learning = learning
    }

    /// Largest `featureCount`, `neighbours`, `smoothing` accepted (a feature vector or a
    /// neighbourhood beyond these is a configuration error, not a cue).
    public static let maximumFeatureCount = 4096
    public static let maximumNeighbours = 64
    public static let maximumSmoothing = 256
    /// Largest `capacity` (indices are kept exactly in f32 scratch).
    public static let maximumCapacity = 1 << 20

    /// Checks every field.
    /// - Throws: `.invalidArgument` naming the first field out of range.
    public func validate() throws(LichenError) {
        guard featureCount >= 1 && featureCount <= Self.maximumFeatureCount else {
            throw .invalidArgument(name: "CueConfiguration.featureCount", value: featureCount, reason: "must be in 1...4096")
        }
        guard neighbours >= 1 && neighbours <= Self.maximumNeighbours else {
            throw .invalidArgument(name: "CueConfiguration.neighbours", value: neighbours, reason: "must be in 1...64")
        }
        guard capacity >= 2 && capacity <= Self.maximumCapacity else {
            throw .invalidArgument(name: "CueConfiguration.capacity", value: capacity, reason: "must be in 2...1048576")
        }
        guard retrainInterval >= 1 && retrainInterval <= capacity else {
            throw .invalidArgument(name: "CueConfiguration.retrainInterval", value: retrainInterval, reason: "must be in 1...capacity")
        }
        guard smoothing >= 1 && smoothing <= Self.maximumSmoothing else {
            throw .invalidArgument(name: "CueConfiguration.smoothing", value: smoothing, reason: "must be in 1...256")
        }
        guard decisionThreshold.isFinite else {
            throw .nonFiniteValue(operand: "CueConfiguration.decisionThreshold", index: 0)
        }
        guard dangerThreshold.isFinite else {
            throw .nonFiniteValue(operand: "CueConfiguration.dangerThreshold", index: 0)
        }
        guard dangerThreshold >= decisionThreshold else {
            throw .invalidArgument(name: "CueConfiguration.dangerThreshold", value: 0, reason: "must be >= decisionThreshold")
        }
        guard minimumTruePositiveRate > 0 && minimumTruePositiveRate <= 1 else {
            throw .invalidArgument(name: "CueConfiguration.minimumTruePositiveRate", value: 0, reason: "must be in (0, 1]")
        }
        guard maximumFalsePositiveRate >= 0 && maximumFalsePositiveRate <= 1 else {
            throw .invalidArgument(name: "CueConfiguration.maximumFalsePositiveRate", value: 0, reason: "must be in [0, 1]")
        }
        guard trustedTimeout >= 0 else {
            throw .invalidArgument(name: "CueConfiguration.trustedTimeout", value: trustedTimeout, reason: "must be >= 0")
        }
    }
}
