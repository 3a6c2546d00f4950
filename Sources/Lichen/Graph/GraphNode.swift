/// One layer of a built graph: everything its forward and backward need, resolved at build
/// time (shapes with the build batch in dimension 0, parameter indices, planned buffer ids),
/// so a step only reads it.
struct GraphNode {
    let kind: LayerKind
    let index: Int
    /// Storages of the inputs (0 = the model input, k + 1 = layer k's output); -1 when unused.
    var input0 = -1, input1 = -1
    /// The storage this layer's output lives in (its own, or its input's for flatten).
    var storage = -1
    /// Shapes with the build batch in dimension 0 (`Graph.batched` swaps in the step's batch).
    var inShape: Shape
    var outShape: Shape

    // Parameters (indices into the store; -1 when absent).
    var weight = -1, bias = -1, runningMean = -1, runningVariance = -1
    var quantizedWeight = false

    // Attributes.
    var groups = 1
    var epsilon: Float = 1e-5
    var momentum: Float = 0.1
    var kernelH = 1, kernelW = 1, strideH = 1, strideW = 1, padH = 0, padW = 0
    /// Channels, spatial size per channel and per-sample size of the input.
    var channels = 1, spatial = 1, features = 1
    /// Linear: rows per sample (product of the input's dimensions but the last), in and out features.
    var rowsPerSample = 1, inFeatures = 1, outFeatures = 1

    // Convolution.
    var geometry: ConvGeometry? = nil
    var outChannels = 1, positions = 1, groupDepth = 1, groupOutChannels = 1
    var imageShape: Shape       // [C, H*W]
    var outImageShape: Shape    // [OC, P]
    var weightRowsShape: Shape  // [OC, Kg]
    var groupWeightShape: Shape // [OCg, Kg]
    var columnsShape: Shape     // [C*kh*kw, P]
    var groupColumnsShape: Shape // [Kg, P]
    var groupOutShape: Shape    // [OCg, P]
    var columnsTShape: Shape    // [P, Kg]
    var outTShape: Shape        // [P, OCg]
    /// Linear rows: [N * rowsPerSample, in] and [N * rowsPerSample, out].
    var inRowsShape: Shape
    var outRowsShape: Shape
    /// Softmax rows: [N, features].
    var sampleRowsShape: Shape
    /// Concat: input 1's shape [N, b]; slice: the first feature taken.
    var secondInShape: Shape
    var sliceStart = 0
    /// Norm statistics: [C] (batch norm) or [N * groups] (group and layer norm).
    var statShape: Shape

    // Planned buffers (-1 when not planned).
    var columns = -1, columnsT = -1, outT = -1, gemmScratch = -1, scratchShape: Shape
    var gradColumns = -1, gradColumnsT = -1, gradOutT = -1, gradColumnsForWeight = -1
    var statMean = -1, statInvStd = -1

    // Backward.
    var runsBackward = false
    /// Whether backward produces the gradient of input slot 0 / 1, and whether it overwrites
    /// (first writer) or adds to it.
    var gradInput0 = false, gradInput1 = false
    var overwrite0 = true, overwrite1 = true

    init(kind: LayerKind, index: Int, placeholder: Shape) {
        self.kind = kind
        self.index = index
        inShape = placeholder
        outShape = placeholder
        imageShape = placeholder
        outImageShape = placeholder
        weightRowsShape = placeholder
        groupWeightShape = placeholder
        columnsShape = placeholder
        groupColumnsShape = placeholder
        groupOutShape = placeholder
        columnsTShape = placeholder
        outTShape = placeholder
        inRowsShape = placeholder
        outRowsShape = placeholder
        sampleRowsShape = placeholder
        secondInShape = placeholder
        statShape = placeholder
        scratchShape = placeholder
    }
}
