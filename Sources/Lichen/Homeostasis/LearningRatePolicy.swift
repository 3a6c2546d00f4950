/// How a `HomeostaticLearner` moves its learning rate η (research/methods.md section 2.1).
public enum LearningRatePolicy: UInt8, Sendable, CaseIterable {
    /// η never moves.
    case constant = 0
    /// LRR, the random baseline: every `interval` samples (sample index i != 0), with
    /// probability 1/2, η moves by the effect of the sample's true label (floored).
    case random = 1
    /// LRH, the homeostatic learner: every `interval` samples once more than `memory` samples
    /// were seen, two trial updates ("leave it" with η, "take it" with η moved by the effect of
    /// the predicted class) are scored on the last `memory` samples; when "take it" scores
    /// strictly better, η moves by the effect of the true label (floored).
    case homeostatic = 2

    /// "constant", "lrr", "lrh".
    public var name: String {
        switch self {
        case .constant: return "constant"
        case .random: return "lrr"
        case .homeostatic: return "lrh"
        }
    }

    /// The policy called `name` ("constant", "lrr", "lrh"), or nil.
    public init?(name: String) {
        switch name {
        case "constant": self = .constant
        case "lrr": self = .random
        case "lrh": self = .homeostatic
        default: return nil
        }
    }
}

/// What a class does to the learning rate when its effect is applied: excitatory +Δ,
/// inhibitory −Δ, or nothing.
public enum ClassEffect: Int8, Sendable {
    case inhibitory = -1
    case neutral = 0
    case excitatory = 1
}

/// Settings of a `HomeostaticLearner`. The defaults are the paper's (research/methods.md 2.1,
/// the authors' `lrh.py`): η0 = 1e-3, Δ = 1e-4, floor 1e-8, minibatch 10, a decision every 10
/// samples, a memory of 20 samples, classes 5...9 excitatory and the others inhibitory.
public struct HomeostasisConfiguration: Sendable, Equatable {
    public var policy: LearningRatePolicy
    /// η at the start.
    public var initialLearningRate: Double
    /// Δ, the amount one effect moves η.
    public var step: Double
    /// The least η an effect can leave (an effect that would take η below it leaves it here).
    public var floor: Double
    /// Samples per update: the update is `w ← w − (η / minibatch) Σ ∇` over the minibatch.
    public var minibatch: Int
    /// A decision (LRH, LRR) at every sample index that is a multiple of `interval`.
    public var interval: Int
    /// LRH scores its trial updates on the last `memory` samples, and decides only at sample
    /// indices above `memory`.
    public var memory: Int
    /// One effect per class (the model's output size).
    public var effects: [ClassEffect]
    /// LRR's coin.
    public var seed: UInt64

    public init(
        policy: LearningRatePolicy, initialLearningRate: Double = 1e-3, step: Double = 1e-4, floor: Double = 1e-8,
        minibatch: Int = 10, interval: Int = 10, memory: Int = 20,
        effects: [ClassEffect] = HomeostasisConfiguration.paperEffects(classCount: 10), seed: UInt64 = 0
    ) {
        self.policy = policy
        self.initialLearningRate = initialLearningRate
        self.step = step
        self.floor = floor
        self.minibatch = minibatch
        self.interval = interval
        self.memory = memory
        self.effects = effects
        self.seed = seed
    }

    /// The paper's map: classes below 5 inhibitory, 5 and above excitatory.
    public static func paperEffects(classCount: Int) -> [ClassEffect] {
        var out: [ClassEffect] = []
        for c in 0..<max(classCount, 0) { out.append(c >= 5 ? .excitatory : .inhibitory) }
        return out
    }

    /// Checks every field.
    /// - Throws: `.invalidArgument` naming the field: a learning rate, step or floor that is
    ///   negative or not finite (the floor must be > 0); a
    ///   minibatch, interval or memory below 1 or above 2^24; an empty effect map.
    public func validate() throws(LichenError) {
        guard initialLearningRate.isFinite && initialLearningRate >= 0 else {
            throw .invalidArgument(name: "initialLearningRate", value: 0, reason: "must be finite and >= 0")
        }
        guard step.isFinite && step >= 0 else { throw .invalidArgument(name: "step", value: 0, reason: "must be finite and >= 0") }
        guard floor.isFinite && floor > 0 else { throw .invalidArgument(name: "floor", value: 0, reason: "must be finite and > 0") }
        let limit = 1 << 24
        guard minibatch >= 1 && minibatch <= limit else {
            throw .invalidArgument(name: "minibatch", value: minibatch, reason: "must be in 1...16777216")
        }
        guard interval >= 1 && interval <= limit else {
            throw .invalidArgument(name: "interval", value: interval, reason: "must be in 1...16777216")
        }
        guard memory >= 1 && memory <= limit else {
            throw .invalidArgument(name: "memory", value: memory, reason: "must be in 1...16777216")
        }
        guard !effects.isEmpty else { throw .invalidArgument(name: "effects", value: 0, reason: "needs one effect per class") }
    }
}

/// The regulation rule itself, apart from any network (research/methods.md 2.1; the authors'
/// `lrh.py` and `lrr.py`). Pure functions of plain values, so each case can be checked by hand.
public enum HomeostaticRule {
    /// η moved by `effect` (±`step`, or unchanged for a neutral class), then floored: a result
    /// below `floor` becomes `floor`. No upper bound.
    ///
    /// The authors' code writes the floor as `if eta < 0: eta = 1e-8`; this differs only when
    /// the moved value lands in [0, floor), where it is raised to the floor here instead of
    /// being kept (a zero rate would stop learning for good).
    @inline(__always)
    public static func moved(_ rate: Double, by effect: ClassEffect, step: Double, floor: Double) -> Double {
        let r = rate + Double(effect.rawValue) * step
        return r < floor ? floor : r
    }

    /// The rate of the "take it" trial: η moved by the effect of the predicted class.
    @inline(__always)
    public static func takeRate(_ rate: Double, guessEffect: ClassEffect, step: Double, floor: Double) -> Double {
        moved(rate, by: guessEffect, step: step, floor: floor)
    }

    /// LRH's decision: when "take it" got strictly more of the remembered samples right than
    /// "leave it", η moves by the effect of the *true* label (so a wrong guess can move it the
    /// wrong way); otherwise (a tie or a loss) η stays.
    @inline(__always)
    public static func decide(
        _ rate: Double, leaveCorrect: Int, takeCorrect: Int, trueEffect: ClassEffect, step: Double, floor: Double
    ) -> Double {
        takeCorrect > leaveCorrect ? moved(rate, by: trueEffect, step: step, floor: floor) : rate
    }
}
