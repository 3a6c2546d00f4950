/// A model's layers, built once from a `ModelSpec` and a `ParameterStore`, with forward and
/// backward for every layer and all step memory planned into one region of the arena.
///
/// Build validates the description (inputs refer to earlier layers, attribute ranges,
/// parameter presence, types and shapes), infers every layer's output shape, and plans every
/// buffer a step uses — activations, the values backward needs (kept alive until their
/// backward use), activation gradients, im2col and GEMM scratch — with `Planner`, then
/// reserves one `PlannedRegion`. A step allocates nothing.
///
/// Batch: the graph is built for `batchSize` samples; `forward` takes any batch of 1 ...
/// `batchSize` samples (batch statistics are then over the samples given).
///
/// Steps of the plan: 0 copies the input in, layer i runs forward at step i + 1; in training
/// mode step L + 1 copies the output gradient in, layer i runs backward at step 2L + 1 - i and
/// step 2L + 2 copies the input gradient out.
public final class Graph {
    public let spec: ModelSpec
    public let store: ParameterStore
    public let options: GraphOptions
    public let kernels: Kernels
    /// The largest batch `forward` takes.
    public let batchSize: Int
    /// The planned step region (all activations, gradients and scratch).
    public let region: PlannedRegion

    var nodes: [GraphNode]
    /// Planned buffer of each storage's value / gradient (storage 0 is the model input).
    var valueBuffer: [Int]
    var gradientBuffer: [Int]
    /// [batchSize, input shape...].
    let inputShape: Shape
    /// The storage of the last layer's output.
    let outputStorage: Int
    /// The batch of the last forward that backward may use (0: none).
    var forwardBatch = 0
    /// The LoRA adapters every forward applies, and the backward after it (nil: none). Chosen
    /// with `setAdapters(_:)` or `forward(input:adapters:)` (Adapters/Graph+LoRA.swift).
    public internal(set) var adapters: AdapterSet? {
        didSet { forwardBatch = 0 }
    }
    /// The second slot: hot-swapped skill adapters (the runtime's active set), applied after
    /// `adapters` on every forward and backward, never trained. Two slots, so that swapping
    /// skills never detaches a method's trainable LoRA (`setSkillAdapters(_:)`).
    public internal(set) var skillAdapters: AdapterSet? {
        didSet { forwardBatch = 0 }
    }
    /// Batch norm statistics saved for batch-1 forwards (Graph+SavedStatistics.swift): per
    /// node, the mean and the biased variance of the last `.computedAndSaved` forward (nil for
    /// other nodes, and everywhere until `reserveSavedStatistics(arena:)`).
    var savedMeans: [TensorView?] = []
    var savedVariances: [TensorView?] = []
    /// Which statistics batch norm uses in the forward running now.
    var normStatistics: NormStatistics = .computed
    /// The batch of the forward that saved the statistics (0: nothing saved).
    public internal(set) var savedStatisticsBatch = 0

    /// The memory plan of the step region.
    public var plan: MemoryPlan { region.plan }
    /// Bytes of the step region.
    public var plannedBytes: Int { region.plan.plannedBytes }
    /// The sum of every planned buffer's size: the bytes needed without reuse.
    public var sumOfPlannedSizes: Int { region.plan.sumOfSizes }
    /// Number of layers.
    public var layerCount: Int { nodes.count }

    /// Per-sample output shape of layer `index` (no batch dimension).
    /// - Throws: `.invalidArgument` for an index outside `0..<layerCount`.
    public func outputShape(ofLayer index: Int) throws(LichenError) -> Shape {
        guard index >= 0 && index < nodes.count else {
            throw .invalidArgument(name: "layer", value: index, reason: "no such layer")
        }
        var s = Shape.scalarPlaceholder
        let full = nodes[index].outShape
        Graph.dropBatch(full, into: &s)
        return s
    }

    /// Per-sample shape of the model's output.
    public var outputShape: Shape {
        var s = Shape.scalarPlaceholder
        Graph.dropBatch(nodes[nodes.count - 1].outShape, into: &s)
        return s
    }

    // MARK: - Build

    /// Builds the graph.
    ///
    /// - Parameters:
    ///   - spec: the architecture; parameters are looked up as `<layer name>.weight`, `.bias`,
    ///     `.running_mean`, `.running_var`.
    ///   - store: holds every parameter the layers use. Linear weights are `[out, in]`; conv2d
    ///     weights `[out, in/groups, kh, kw]` (conv1d `[out, in/groups, k]`) in f32, or, f32 or
    ///     quantized, the row form `[out, in/groups * kh * kw]` (quantized rows are whole blocks of 32);
    ///     biases and norm parameters f32 `[C]` (layer norm: the per-sample feature count).
    ///   - batchSize: the largest batch a forward takes (>= 1).
    ///   - arena: the step region is reserved from its low end.
    /// - Throws: `.invalidModel` (key `lichen.layer.<i>.<attribute>`) for a bad description;
    ///   `.notFound(kind: "parameter")`, `.parameterShapeMismatch`, `.invalidModel` (key = the
    ///   parameter's name) for a parameter of the wrong type; `.invalidArgument` for a bad batch
    ///   size or options; `.budgetExceeded` when the plan does not fit.
    /// - Note: Allocates (build time only).
    public init(
        spec: ModelSpec, store: ParameterStore, batchSize: Int, arena: Arena, options: GraphOptions = GraphOptions(),
        kernels: Kernels = .best
    ) throws(LichenError) {
        guard batchSize >= 1 && batchSize <= ModelSpecLimits.maximumExtent else {
            throw .invalidArgument(name: "batchSize", value: batchSize, reason: "must be in 1...16777216")
        }
        if options.trainAdapters && !options.training {
            throw .invalidArgument(name: "trainAdapters", value: 1, reason: "adapters train only in a graph built for training")
        }
        if options.tapLayer != -1 && (options.tapLayer < 0 || options.tapLayer >= spec.layers.count) {
            throw .invalidArgument(name: "tapLayer", value: options.tapLayer, reason: "no such layer")
        }
        if options.updateRunningStatistics && options.batchNormMode != .batchStatistics {
            throw .invalidArgument(name: "updateRunningStatistics", value: 1,
                                   reason: "running statistics are updated only when normalising with batch statistics")
        }
        var builder = GraphBuilder(spec: spec, store: store, batchSize: batchSize, options: options)
        try builder.build()
        self.spec = spec
        self.store = store
        self.options = options
        self.kernels = kernels
        self.batchSize = batchSize
        self.nodes = builder.nodes
        self.valueBuffer = builder.valueBuffer
        self.gradientBuffer = builder.gradientBuffer
        self.inputShape = builder.inputShape
        self.outputStorage = builder.nodes[builder.nodes.count - 1].storage
        self.region = try arena.reservePlan(try builder.planner.plan())
    }

    // MARK: - Shapes of a step

    /// `shape` with `n` in dimension 0.
    @inline(__always)
    static func batched(_ shape: Shape, _ n: Int) -> Shape {
        var s = shape
        s[0] = n
        return s
    }

    /// `shape` with dimension 0 multiplied by `n / batch` rows per sample: `[n * perSample, ...]`.
    @inline(__always)
    static func rows(_ shape: Shape, _ n: Int, perSample: Int) -> Shape {
        var s = shape
        s[0] = n * perSample
        return s
    }

    static func dropBatch(_ full: Shape, into s: inout Shape) {
        var dims: [Int] = []
        for i in 1..<max(full.rank, 1) { dims.append(full[i]) }
        // Shapes of rank <= 4 with non-negative dimensions always make a Shape.
        if let t = try? Shape(dimensions: dims) { s = t }
    }

    /// The value of storage `s` viewed with `shape`.
    @inline(__always)
    func value(_ s: Int, _ shape: Shape) throws(LichenError) -> TensorView {
        try region.view(forBuffer: valueBuffer[s], type: .f32, shape: shape)
    }

    /// The gradient of storage `s` viewed with `shape`.
    @inline(__always)
    func gradient(_ s: Int, _ shape: Shape) throws(LichenError) -> TensorView {
        let id = gradientBuffer[s]
        guard id >= 0 else { throw .invalidArgument(name: "gradient storage", value: s, reason: "no gradient was planned") }
        return try region.view(forBuffer: id, type: .f32, shape: shape)
    }

    /// Planned scratch buffer `id` viewed with `shape`.
    @inline(__always)
    func scratch(_ id: Int, _ shape: Shape) throws(LichenError) -> TensorView {
        try region.view(forBuffer: id, type: .f32, shape: shape)
    }

    // MARK: - Forward

    /// Runs every layer on `input` and returns the last layer's output.
    ///
    /// - Parameter input: f32 `[n, input shape...]` with 1 <= n <= `batchSize`, all values finite.
    /// - Returns: `[n, output shape...]`, a view into the step region, valid until the next
    ///   `forward` (and, in training mode, through the following `backward`).
    /// - Throws: `.unsupportedElementType` (not f32); `.shapeMismatch(operand: "input", ...)`;
    ///   `.invalidArgument(name: "input.batch", ...)` for a batch of 0 or above `batchSize`;
    ///   `.nonFiniteValue(operand: "input", index:)` naming the first NaN or infinity.
    /// - Note: Allocates nothing.
    public func forward(input: TensorView) throws(LichenError) -> TensorView {
        try forward(input: input, statistics: .computed)
    }

    /// `forward(input:)` with batch norm's statistics chosen for this call
    /// (Graph+SavedStatistics.swift): `.computed` is `forward(input:)`; `.computedAndSaved`
    /// also keeps each batch norm layer's batch mean and biased variance when storage is
    /// reserved; `.saved` normalises with the kept ones instead of the batch's.
    ///
    /// - Throws: as `forward(input:)`; `.invalidArgument(name: "statistics", ...)` for `.saved`
    ///   when nothing was saved. After a `.saved` forward `backward` refuses to run (its
    ///   gradient would not be the batch-statistics one).
    /// - Note: Allocates nothing.
    public func forward(input: TensorView, statistics: NormStatistics) throws(LichenError) -> TensorView {
        forwardBatch = 0
        try validateInput(input)
        if statistics == .saved && savedStatisticsBatch == 0 {
            throw .invalidArgument(name: "statistics", value: 0,
                                   reason: "no batch statistics saved (reserve them and run a .computedAndSaved forward first)")
        }
        let n = input.shape[0]
        try value(0, Graph.batched(inputShape, n)).copy(from: input)
        normStatistics = statistics == .computedAndSaved && savedMeans.isEmpty ? .computed : statistics
        defer { normStatistics = .computed }
        // A forward that fails half-way must not leave a mix of two batches' statistics.
        if normStatistics == .computedAndSaved { savedStatisticsBatch = 0 }
        for i in 0..<nodes.count {
            try forwardLayer(i, n)
        }
        if normStatistics == .computedAndSaved { savedStatisticsBatch = n }
        if options.training && statistics != .saved { forwardBatch = n }
        let last = nodes[nodes.count - 1]
        return try value(last.storage, Graph.batched(last.outShape, n))
    }

    /// Checks a forward's input (type, shape, batch, finite values).
    func validateInput(_ input: TensorView) throws(LichenError) {
        try input.require(.f32, "input")
        guard input.shape.rank == inputShape.rank else {
            throw .shapeMismatch(operand: "input", dimension: -1, expected: inputShape.rank, got: input.shape.rank)
        }
        let n = input.shape[0]
        guard n >= 1 && n <= batchSize else {
            throw .invalidArgument(name: "input.batch", value: n, reason: "must be in 1...the batch size the graph was built for")
        }
        for d in 1..<inputShape.rank where input.shape[d] != inputShape[d] {
            throw .shapeMismatch(operand: "input", dimension: d, expected: inputShape[d], got: input.shape[d])
        }
        if let i = try input.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "input", index: i) }
    }

    func forwardLayer(_ i: Int, _ n: Int) throws(LichenError) {
        let node = nodes[i]
        switch node.kind {
        case .linear:
            try linearForward(node, n)
            if let set = adapters, set.hasEntries(i) { try loraLinearForward(set, node, n) }
            if let set = skillAdapters, set.hasEntries(i) { try loraLinearForward(set, node, n) }
        case .conv2d, .conv1d: try convForward(node, n)
        case .batchNorm: try batchNormForward(node, n)
        case .groupNorm, .layerNorm: try groupNormForward(node, n)
        case .relu, .gelu, .silu, .tanh, .elu: try activationForward(node, n)
        case .maxPool2d, .avgPool2d: try poolForward(node, n)
        case .globalAvgPool: try globalAvgPoolForward(node, n)
        case .flatten: break
        case .add: try addForward(node, n)
        case .concat: try concatForward(node, n)
        case .slice: try sliceForward(node, n)
        case .softmax: try softmaxForward(node, n)
        }
    }

    // MARK: - Backward

    /// Backpropagates `outputGradient` (dLoss/dOutput of the last forward) through every
    /// layer: adds the gradients of trainable parameters into their `gradient` views (call
    /// `store.zeroGradients()` between steps), and writes dLoss/dInput into `inputGradient`
    /// when given (the graph must be built with `options.inputGradient`).
    ///
    /// Quantized weights are frozen and get no gradient; frozen parameters are skipped.
    /// After backward the saved activations are spent: the next backward needs a new forward.
    ///
    /// - Throws: `.invalidArgument` when the graph was not built for training (or for an input
    ///   gradient) or no forward preceded; `.shapeMismatch` for a gradient of the wrong shape;
    ///   `.nonFiniteValue(operand: "outputGradient", ...)`; `.unsupportedElementType`.
    /// - Note: Allocates nothing.
    public func backward(outputGradient: TensorView, inputGradient: TensorView? = nil) throws(LichenError) {
        try backward(outputGradient: outputGradient, inputGradient: inputGradient, tapGradient: nil)
    }

    func backward(outputGradient: TensorView, inputGradient: TensorView?, tapGradient: TensorView?) throws(LichenError) {
        guard options.training else {
            throw .invalidArgument(name: "backward", value: 0, reason: "the graph was built without training")
        }
        let n = forwardBatch
        guard n > 0 else { throw .invalidArgument(name: "backward", value: 0, reason: "no forward to backpropagate through") }
        try outputGradient.require(.f32, "outputGradient")
        let last = nodes[nodes.count - 1]
        let outShape = Graph.batched(last.outShape, n)
        try Graph.requireShape(outputGradient, outShape, "outputGradient")
        if let i = try outputGradient.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "outputGradient", index: i) }
        if let inputGradient {
            guard options.inputGradient else {
                throw .invalidArgument(name: "inputGradient", value: 1, reason: "the graph was built without options.inputGradient")
            }
            try inputGradient.require(.f32, "inputGradient")
            try Graph.requireShape(inputGradient, Graph.batched(inputShape, n), "inputGradient")
        }
        forwardBatch = 0
        if gradientBuffer[outputStorage] >= 0 {
            try gradient(outputStorage, outShape).copy(from: outputGradient)
        }
        var i = nodes.count - 1
        while i >= 0 {
            if nodes[i].runsBackward { try backwardLayer(i, n) }
            if let tapGradient, i == options.tapLayer { try addTapGradient(tapGradient, n) }
            i -= 1
        }
        if let inputGradient {
            if gradientBuffer[0] >= 0 {
                try inputGradient.copy(from: try gradient(0, Graph.batched(inputShape, n)))
            } else {
                try inputGradient.fill(0)
            }
        }
    }

    func backwardLayer(_ i: Int, _ n: Int) throws(LichenError) {
        let node = nodes[i]
        switch node.kind {
        case .linear:
            try linearBackward(node, n)
            if let set = adapters, set.hasEntries(i) { try loraLinearBackward(set, node, n) }
            if let set = skillAdapters, set.hasEntries(i) { try loraLinearBackward(set, node, n) }
        case .conv2d, .conv1d:
            try convBackward(node, n)
            if let set = adapters, set.hasEntries(i) { try loraConvBackward(set, node, n) }
            if let set = skillAdapters, set.hasEntries(i) { try loraConvBackward(set, node, n) }
        case .batchNorm: try batchNormBackward(node, n)
        case .groupNorm, .layerNorm: try groupNormBackward(node, n)
        case .relu, .gelu, .silu, .tanh, .elu: try activationBackward(node, n)
        case .maxPool2d, .avgPool2d: try poolBackward(node, n)
        case .globalAvgPool: try globalAvgPoolBackward(node, n)
        case .flatten: break
        case .add: try addBackward(node, n)
        case .concat: try concatBackward(node, n)
        case .slice: try sliceBackward(node, n)
        case .softmax: try softmaxBackward(node, n)
        }
    }

    static func requireShape(_ view: TensorView, _ shape: Shape, _ operand: StaticString) throws(LichenError) {
        guard view.shape.rank == shape.rank else {
            throw .shapeMismatch(operand: operand, dimension: -1, expected: shape.rank, got: view.shape.rank)
        }
        for d in 0..<shape.rank where view.shape[d] != shape[d] {
            throw .shapeMismatch(operand: operand, dimension: d, expected: shape[d], got: view.shape[d])
        }
    }

    // MARK: - Parameters of a step

    /// The value of parameter `index` (f32 or quantized).
    @inline(__always)
    func parameterValue(_ index: Int) -> TensorView { store.parameters[index].value }

    /// The gradient of parameter `index` when it is present and trainable now.
    @inline(__always)
    func trainableGradient(_ index: Int) -> TensorView? {
        guard index >= 0 else { return nil }
        let p = store.parameters[index]
        return p.trainable ? p.gradient : nil
    }
}

/// Limits shared with model descriptions.
enum ModelSpecLimits {
    /// Largest value accepted for any dimension or integer attribute.
    static let maximumExtent = 1 << 24
}

extension Shape {
    /// A rank-0 shape (a placeholder before a real shape is known).
    static var scalarPlaceholder: Shape {
        do {
            return try Shape(dimensions: [])
        } catch {
            // A rank-0 shape cannot fail: reaching this is a bug in Shape.
            fatalError("rank-0 shape rejected")
        }
    }
}
