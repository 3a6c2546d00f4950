/// The test-time adaptation methods a session runs (research/tta.md §2), and their settings.
public enum AdaptationMethod: Sendable, Equatable, CaseIterable {
    /// The source model: batch norm with its running statistics, nothing updated.
    case source
    /// BN-adapt: every forward normalises with its own batch's mean and biased variance; no
    /// parameter changes. The running buffers are not updated (the reference updates them but
    /// never reads them, so predictions are the same and the model's state stays untouched).
    case bnAdapt
    /// Tent: batch statistics, mean softmax entropy minimised with one optimizer step per batch
    /// over the norm layers' affine parameters (frugal) or every f32 parameter (full).
    case tent
    /// CoTTA (research/tta.md §3): EMA teacher, augmentation-averaged pseudo-labels behind the
    /// anchor's confidence gate, soft cross-entropy, stochastic restore (`CoTTA`).
    case cotta
    /// RMT (research/tta.md §4): symmetric cross-entropy against an EMA teacher on a clean and
    /// an augmented view, contrastive loss towards source prototypes, source replay (`RMT`).
    case rmt

    /// Lower-case name, as the CLI spells it ("source", "bn", "tent", "cotta", "rmt").
    public var name: String {
        switch self {
        case .source: return "source"
        case .bnAdapt: return "bn"
        case .tent: return "tent"
        case .cotta: return "cotta"
        case .rmt: return "rmt"
        }
    }

    /// The method called `name` ("source", "bn", "tent"), or nil.
    public init?(name: String) {
        switch name {
        case "source": self = .source
        case "bn": self = .bnAdapt
        case "tent": self = .tent
        case "cotta": self = .cotta
        case "rmt": self = .rmt
        default: return nil
        }
    }
}

/// Which parameters a gradient method trains.
public enum AdaptationMode: Sendable, Equatable {
    /// The norm layers' affine parameters (γ, β): Tent's own choice; plus, when a session is
    /// given `AdaptationLoRA` settings, the A and B of LoRA adapters over the frozen base.
    case frugal
    /// Every f32 parameter (weights, biases and norm affine); needs an f32 model.
    case full

    public var name: String {
        switch self {
        case .frugal: return "frugal"
        case .full: return "full"
        }
    }

    public init?(name: String) {
        switch name {
        case "frugal": self = .frugal
        case "full": self = .full
        default: return nil
        }
    }
}

/// The optimizer of a gradient method.
public enum AdaptationOptimizer: Sendable, Equatable {
    /// Adam with bias correction, no weight decay.
    case adam(learningRate: Float, beta1: Float, beta2: Float, epsilon: Float)
    /// SGD with momentum (Nesterov when asked), no dampening, no weight decay.
    case sgd(learningRate: Float, momentum: Float, nesterov: Bool)

    /// Tent's CIFAR configuration in the reference code: Adam, lr 1e-3, betas (0.9, 0.999),
    /// ε 1e-8, weight decay 0, for batches of 200.
    public static let tentCIFAR = AdaptationOptimizer.adam(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)

    /// Tent's ImageNet configuration: SGD, lr 2.5e-4, momentum 0.9, Nesterov, for batches of 64.
    public static let tentImageNet = AdaptationOptimizer.sgd(learningRate: 2.5e-4, momentum: 0.9, nesterov: true)
}
