/// How a `Graph` is built and run.
public struct GraphOptions: Sendable {
    /// Which statistics batch norm normalises with.
    public enum BatchNormMode: Sendable {
        /// The stored running mean and variance (inference, "source" model).
        case runningStatistics
        /// The current batch's per-channel mean and biased variance (train mode; the
        /// test-time-adaptation setting where every forward uses its own batch).
        case batchStatistics
    }

    /// Keep what backward needs and plan gradient buffers, so `backward` can run after `forward`.
    public var training: Bool
    public var batchNormMode: BatchNormMode
    /// Update batch norm's running statistics from each forward's batch, with the layer's
    /// momentum (PyTorch's rule; the variance update uses the unbiased batch variance).
    /// Requires `batchNormMode == .batchStatistics` and writable running-statistic parameters.
    public var updateRunningStatistics: Bool
    /// Plan a gradient for the model input, so `backward(outputGradient:inputGradient:)` can return it.
    public var inputGradient: Bool
    /// Plan backward so trainable LoRA adapters (`AdapterSet`) get gradients: every linear and
    /// conv layer runs backward and keeps its input until then, even over a frozen or quantized
    /// base. Requires `training`. Without it adapters are frozen (gradients still flow through them).
    public var trainAdapters: Bool
    /// A feature tap at the input of this layer (-1: none): that value is kept alive through
    /// the rest of the step, `Graph.tappedInput()` reads it after a forward, and
    /// `backward(outputGradient:tapGradient:)` adds a gradient to it (an encoder / head split,
    /// as RMT's contrastive loss on the features needs).
    public var tapLayer: Int = -1

    public init(
        training: Bool = false, batchNormMode: BatchNormMode = .runningStatistics,
        updateRunningStatistics: Bool = false, inputGradient: Bool = false, trainAdapters: Bool = false, tapLayer: Int = -1
    ) {
        self.trainAdapters = trainAdapters
        self.tapLayer = tapLayer
        self.training = training
        self.batchNormMode = batchNormMode
        self.updateRunningStatistics = updateRunningStatistics
        self.inputGradient = inputGradient
    }
}
