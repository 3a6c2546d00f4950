/// The kinds of layer a Lichen graph has. Raw values are stored in model files
/// (`lichen.layer.<i>.kind`) and never change meaning; new kinds are appended.
public enum LayerKind: UInt32, Sendable, CaseIterable {
    /// y[n, out] = x[n, in] . W[out, in]^T + b. Parameters: `weight` [out, in], `bias` [out].
    case linear = 0
    /// NCHW convolution with stride, padding, dilation and groups (groups = channels is depthwise).
    /// Parameters: `weight` [out, in/groups, kh, kw], `bias` [out].
    case conv2d = 1
    /// NCL convolution (conv2d with height 1). Parameters: `weight` [out, in/groups, kw], `bias` [out].
    case conv1d = 2
    /// Batch norm over channels (dimension 1). Parameters: `weight`, `bias`, `running_mean`, `running_var` [C].
    case batchNorm = 3
    /// Group norm: `groups` groups of channels per sample. Parameters: `weight`, `bias` [C].
    case groupNorm = 4
    /// Layer norm over all features of a sample. Parameters: `weight`, `bias` [features].
    case layerNorm = 5
    case relu = 6
    case gelu = 7  // tanh approximation
    case silu = 8
    case tanh = 9
    /// Max pooling over kh x kw windows with stride and padding (NCHW).
    case maxPool2d = 10
    /// Average pooling over kh x kw windows with stride and padding (padding counts as zeros).
    case avgPool2d = 11
    /// Mean over H and W: [N, C, H, W] -> [N, C].
    case globalAvgPool = 12
    /// [N, ...] -> [N, product of the rest].
    case flatten = 13
    /// y = a + b, two inputs of the same shape (residual connection).
    case add = 14
    /// Softmax over the features of each sample.
    case softmax = 15
    /// ELU with alpha = 1: `x` for x > 0, `e^x - 1` otherwise (no attribute; alpha is fixed).
    case elu = 16
    /// [a] and [b] -> [a + b]: the features of two rank-1 inputs side by side (input 0's first).
    case concat = 17
    /// [f] -> [count]: features `start ..< start + count` of a rank-1 input (`start`, `outputs`).
    case slice = 18

    /// Lower-case name used in model files' descriptions and in `lichen inspect`.
    public var name: String {
        switch self {
        case .linear: return "linear"
        case .conv2d: return "conv2d"
        case .conv1d: return "conv1d"
        case .batchNorm: return "batch_norm"
        case .groupNorm: return "group_norm"
        case .layerNorm: return "layer_norm"
        case .relu: return "relu"
        case .gelu: return "gelu"
        case .silu: return "silu"
        case .tanh: return "tanh"
        case .maxPool2d: return "max_pool2d"
        case .avgPool2d: return "avg_pool2d"
        case .globalAvgPool: return "global_avg_pool"
        case .flatten: return "flatten"
        case .add: return "add"
        case .softmax: return "softmax"
        case .elu: return "elu"
        case .concat: return "concat"
        case .slice: return "slice"
        }
    }
}

/// One layer of a model: its kind, where its inputs come from, and its attributes.
///
/// Attributes a kind does not use stay at their defaults. Shapes are per sample
/// (no batch dimension); the batch size is chosen when the graph is built.
public struct LayerSpec: Sendable {
    public var kind: LayerKind
    /// A short unique name; parameters are stored as `<name>.weight`, `<name>.bias`,
    /// `<name>.running_mean`, `<name>.running_var`.
    public var name: String
    /// Indices of the layers whose outputs feed this one; -1 is the model's input.
    /// One input for every kind but `add` and `concat` (two).
    public var inputs: [Int]

    /// linear: output features; conv: output channels; slice: features taken.
    public var outputs: Int = 0
    /// slice: the first feature taken.
    public var start: Int = 0
    /// Kernel height and width (conv2d, pooling); conv1d uses `kernelW` only.
    public var kernelH: Int = 1, kernelW: Int = 1
    public var strideH: Int = 1, strideW: Int = 1
    public var padH: Int = 0, padW: Int = 0
    public var dilationH: Int = 1, dilationW: Int = 1
    /// conv: channel groups (1 = dense, = input channels for depthwise); group norm: group count.
    public var groups: Int = 1
    /// Whether linear/conv layers have a bias.
    public var hasBias: Bool = true
    /// Norm layers' epsilon and batch norm's running-statistics momentum (PyTorch's convention:
    /// running = (1 - momentum) * running + momentum * batch).
    public var epsilon: Float = 1e-5
    public var momentum: Float = 0.1

    public init(kind: LayerKind, name: String, inputs: [Int]) {
        self.kind = kind
        self.name = name
        self.inputs = inputs
    }
}

/// A model's architecture: the per-sample input shape, the layers in execution order, and
/// which layer's output is the prediction (logits over `classCount` classes).
public struct ModelSpec: Sendable {
    /// Per-sample input shape, e.g. [1, 28, 28] (C, H, W) or [784].
    public var inputShape: Shape
    public var layers: [LayerSpec]
    public var classCount: Int
    /// Short architecture name ("cnn", "mlp", ...), informational.
    public var architecture: String

    public init(architecture: String, inputShape: Shape, classCount: Int, layers: [LayerSpec]) {
        self.architecture = architecture
        self.inputShape = inputShape
        self.classCount = classCount
        self.layers = layers
    }
}
