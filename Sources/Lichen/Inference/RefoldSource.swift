/// The values `InferenceModel.refold(_:)` folds into one batch norm layer: its statistics, its
/// affine weight and bias, and optionally the producing layer's weight and bias.
///
/// Every tensor is a view that the refold reads each time it runs (not a copy), so a source made
/// once keeps following values that change in place: a store's γ, β after an optimizer step, a
/// graph's saved statistics after its next `.computedAndSaved` forward, a teacher's slots after
/// an EMA. The viewed memory must outlive the source.
public struct RefoldValues {
    /// f32, `channels` values each: the mean and (biased) variance to normalise with, and the
    /// affine weight γ and bias β.
    public var mean: TensorView
    public var variance: TensorView
    public var gamma: TensorView
    public var beta: TensorView
    /// The producer's weight (nil: the weight the model was built from). f32 weights may be any
    /// tensor of the same size (full-mode adaptation trains them); q8_0 / q4_0 weights are frozen
    /// and must be the very tensor the model was built from (its codes were copied at load).
    public var weight: TensorView?
    /// The producer's bias, f32 `channels` values (nil: the bias the model was built from).
    public var bias: TensorView?

    public init(
        mean: TensorView, variance: TensorView, gamma: TensorView, beta: TensorView, weight: TensorView? = nil,
        bias: TensorView? = nil
    ) {
        self.mean = mean
        self.variance = variance
        self.gamma = gamma
        self.beta = beta
        self.weight = weight
        self.bias = bias
    }
}

/// A batch norm layer that a refoldable `InferenceModel` folds (`InferenceModel.refoldedNorms`).
public struct RefoldedNorm: Sendable, Equatable {
    /// Spec index of the batch norm layer.
    public let layer: Int
    /// Spec index of the convolution or linear layer it is folded into, or -1 when the fused
    /// model runs it as a per-channel affine step.
    public let producer: Int
    /// Channels (the norm's features).
    public let channels: Int
}

/// Where `InferenceModel.refold(_:)` reads the values of every batch norm layer a model folds,
/// resolved once (`InferenceModel.refoldSource(...)`, which allocates) so that each refold only
/// reads memory. Made for one model; `refold` refuses a source made for another.
public struct RefoldSource {
    /// The model the source was made for.
    let model: ObjectIdentifier
    /// One per `InferenceModel.refoldEntries`, in the same order.
    let values: [RefoldValues]
    /// For a saved-statistics source: the graph whose statistics are read, and the store the
    /// affine values come from. `refold` checks the graph has saved statistics and applies no
    /// adapters.
    let graph: Graph?
    let store: ParameterStore?
}
