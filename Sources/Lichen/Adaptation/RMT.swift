/// RMT, the robust mean teacher (Döbler et al. 2023; research/tta.md §4): a student trained
/// on symmetric cross-entropy against an EMA teacher on a clean and an augmented view, a
/// contrastive loss that pulls both views' features towards the nearest source class
/// prototype through a projector, and replay of labelled source batches.
///
/// The network is split at the input of its last linear layer: the encoder h is everything
/// before it (its output is the feature f, read through a `Graph` feature tap), the
/// classifier g is the rest. One step on a batch x of B images (batch statistics in every
/// forward):
/// 1. f = h_θ(x), z = g_θ(f); x̃ = A(x), one draw of `CoTTAAugmentation`; f̃ = h_θ(x̃), z̃ = g_θ(f̃);
/// 2. teacher z′ = f_θ′(x) (clean batch only);
/// 3. L_st = (1/B) Σ_b [½ SCE(z_b, z′_b) + ½ SCE(z̃_b, z′_b)], SCE with α = ½;
/// 4. contrastive (optional): n_b = argmax_k cos(P_k, f_b) over the source prototypes; views
///    P_{n_b}, f_b, f̃_b through the projector π (Linear(D→128) · ReLU · Linear(128→128)),
///    L_cont = SupCon over the 3B vectors, τ = 0.1 (`SupervisedContrastiveLoss`);
/// 5. replay (optional, λ_src > 0): L_src = cross-entropy of the student on the next labelled
///    source batch;
/// 6. L = λ_trg L_st + λ_cont L_cont + λ_src L_src; one optimizer step over the student's
///    trainables (group 0) and the projector (group 1, same settings);
/// 7. teacher EMA θ′ ← α θ′ + (1 − α) θ, α = 0.999 (the projector has no teacher);
/// 8. the step returns z + z′, both from before the update.
///
/// Set-up, at construction (research/tta.md §4.3): the prototypes P_k are the mean encoder
/// features of each class over `prototypeSamples` source images, with batch statistics
/// (`sourcePrototypes`); then the mean-teacher warm-up (optional): S = ⌊warmUpSamples / B⌋
/// steps on unlabelled source batches of the SCE between student and teacher, with learning
/// rate lr·(i + 1)/S at step i, each followed by the EMA update; the rate then returns to lr.
/// The state after the warm-up (student, teacher, projector, optimizer) is what `reset()`
/// returns to, as the reference caches it.
///
/// Departures from the reference, on purpose:
/// - The augmented view's activations are recomputed for its backward (one extra student
///   forward per step) instead of keeping a second training graph: one step region, the same
///   gradients, since forwards are deterministic.
/// - Frugal mode (the default) trains the norm layers' affine parameters (plus the
///   projector, and with `lora` the A and B of a LoRA adapter whose B starts at 0) over a
///   frozen, possibly quantized base; the teacher holds only those. The reference trains every
///   parameter (full mode).
/// - The projector starts from PyTorch's default Linear initialisation drawn from our seed
///   (`ParameterInitializer`), not torch's generator.
/// - During the warm-up the projector's optimizer group is switched off: it gets no gradient
///   then, and PyTorch's Adam skips parameters without a gradient (no moment or step-count
///   change).
///
/// - Note: Construction allocates everything from the arena (and runs the set-up); `step` and
///   `reset` allocate nothing.
public final class RMT {
    /// RMT's settings; the defaults are the CIFAR configuration of research/tta.md §4.2.
    public struct Configuration: Sendable, Equatable {
        /// λ_trg (1).
        public var lambdaTarget: Float
        /// λ_cont (1; 0 switches the contrastive loss, its prototypes and projector off).
        public var lambdaContrast: Float
        /// λ_src (1; 0 is the source-free variant: no replay).
        public var lambdaSource: Float
        /// τ of the contrastive loss (0.1).
        public var temperature: Float
        /// Projector width (128).
        public var projectionDimension: Int
        /// Source samples of the warm-up (50,000; 0 switches it off).
        public var warmUpSamples: Int
        /// Source samples averaged into the prototypes (60,000: the Fashion-MNIST training split).
        public var prototypeSamples: Int
        /// α of the teacher EMA (0.999).
        public var emaMomentum: Float
        public var optimizer: AdaptationOptimizer
        /// Seed of the augmentation stream and the projector's initialisation.
        public var seed: UInt64

        public init(
            lambdaTarget: Float = 1, lambdaContrast: Float = 1, lambdaSource: Float = 1, temperature: Float = 0.1,
            projectionDimension: Int = 128, warmUpSamples: Int = 50_000, prototypeSamples: Int = 60_000,
            emaMomentum: Float = 0.999, optimizer: AdaptationOptimizer = .tentCIFAR, seed: UInt64 = 1
        ) {
            self.lambdaTarget = lambdaTarget
            self.lambdaContrast = lambdaContrast
            self.lambdaSource = lambdaSource
            self.temperature = temperature
            self.projectionDimension = projectionDimension
            self.warmUpSamples = warmUpSamples
            self.prototypeSamples = prototypeSamples
            self.emaMomentum = emaMomentum
            self.optimizer = optimizer
            self.seed = seed
        }

        /// Whether any part needs source data (prototypes, warm-up or replay).
        public var needsSource: Bool { lambdaContrast > 0 || lambdaSource > 0 || warmUpSamples > 0 }
    }

    public let configuration: Configuration
    public let mode: AdaptationMode
    public let store: ParameterStore
    /// The student's training graph (feature tap at the last linear layer).
    public let graph: Graph
    public let batchSize: Int
    public let classes: Int
    /// D, the feature width at the split.
    public let featureCount: Int
    /// The split: index of the last linear layer.
    public let classifierLayer: Int
    public let trainedParameters: [Int]
    /// The trained LoRA adapter (frugal mode with `lora`), else nil.
    public var loraAdapter: LoRAAdapter? { trainables.adapter }
    /// Values the student trains (norm parameters and LoRA; the projector not counted).
    public var trainedValueCount: Int { trainables.valueCount }
    /// The projector's parameters (linear proj1 D→P, relu, linear proj2 P→P).
    public let projectorStore: ParameterStore
    /// Steps since construction or `reset()` (warm-up steps not counted).
    public private(set) var stepCount = 0
    /// Warm-up steps taken at construction.
    public let warmUpSteps: Int
    /// The last step's total loss and its parts (before the update).
    public private(set) var lastLoss: Float = 0
    public private(set) var lastSelfTrainingLoss: Float = 0
    public private(set) var lastContrastiveLoss: Float = 0
    public private(set) var lastSourceLoss: Float = 0

    let trainables: Trainables
    let teacherGraph: SharedWeightGraph
    /// The teacher values live in the teacher graph's slots.
    var teacher: ParameterCopies { teacherGraph.slots }
    let optimizer: AdaptationOptimizerState
    private let source: SourceBatchProvider?
    private let projector: Graph?
    private let contrastive: SupervisedContrastiveLoss?
    private let selfTraining: SymmetricCrossEntropyLoss
    private let crossEntropy: CrossEntropyLoss
    private let augmentation: CoTTAAugmentation
    private var random: SplitMix64Random
    /// [K, D] source prototypes.
    public let prototypes: TensorView?
    /// [1, classes]: student + teacher logits of a frame predicted between updates.
    private var predictionSum: TensorView?
    // Step buffers.
    private let output: TensorView, cleanLogits: TensorView, augmentedLogits: TensorView, teacherLogits: TensorView
    private let cleanGradient: TensorView, augmentedGradient: TensorView
    private let cleanFeatures: TensorView, augmentedFeatures: TensorView
    private let cleanFeatureGradient: TensorView, augmentedFeatureGradient: TensorView
    private let projectorInput: TensorView, projectorInputGradient: TensorView, projectedGradient: TensorView
    private let augmented: TensorView, sourceImages: TensorView, sourceLabels: TensorView
    // Reset state (after the warm-up).
    private let savedStudent: ParameterCopies
    private let savedTeacher: ParameterCopies
    private let savedProjector: ParameterCopies
    private let projectorValues: [TensorView]
    private let savedOptimizer: OptimizerSnapshot

    /// - Parameters:
    ///   - spec, store: the model; the store's trainable flags are set to the trained parameters.
    ///   - source: labelled source batches; required when `configuration.needsSource`.
    ///   - lora: frugal mode's optional LoRA trainables (nil: none).
    /// - Throws: `.invalidArgument` for bad settings (negative or non-finite λ, τ <= 0, a
    ///   projector width outside 1...4096, negative sample counts), a missing source, a model
    ///   without a linear layer to split at, no gradient reaching the features, or input that is
    ///   not one-channel images; what the graphs, losses, optimizer and provider throw;
    ///   `.budgetExceeded`.
    public init(
        spec: ModelSpec, store: ParameterStore, batchSize: Int, arena: Arena, mode: AdaptationMode = .frugal,
        configuration: Configuration = Configuration(), source: SourceBatchProvider?, lora: AdaptationLoRA? = nil,
        kernels: Kernels = .best
    ) throws(LichenError) {
        for (name, v) in [("rmt.lambdaTarget", configuration.lambdaTarget), ("rmt.lambdaContrast", configuration.lambdaContrast),
                          ("rmt.lambdaSource", configuration.lambdaSource)] where !(v.isFinite && v >= 0) {
            _ = name
            throw .invalidArgument(name: "rmt.lambda", value: 0, reason: "every λ must be finite and >= 0")
        }
        guard configuration.temperature.isFinite && configuration.temperature > 0 else {
            throw .invalidArgument(name: "rmt.temperature", value: 0, reason: "must be finite and > 0")
        }
        guard configuration.projectionDimension >= 1 && configuration.projectionDimension <= 4096 else {
            throw .invalidArgument(name: "rmt.projectionDimension", value: configuration.projectionDimension, reason: "must be in 1...4096")
        }
        guard configuration.warmUpSamples >= 0 else {
            throw .invalidArgument(name: "rmt.warmUpSamples", value: configuration.warmUpSamples, reason: "must be >= 0")
        }
        guard configuration.prototypeSamples >= 1 else {
            throw .invalidArgument(name: "rmt.prototypeSamples", value: configuration.prototypeSamples, reason: "must be >= 1")
        }
        guard configuration.emaMomentum >= 0 && configuration.emaMomentum <= 1 else {
            throw .invalidArgument(name: "rmt.emaMomentum", value: 0, reason: "must lie in [0, 1]")
        }
        if configuration.needsSource && source == nil {
            throw .invalidArgument(name: "rmt.source", value: 0, reason: "prototypes, warm-up and replay need a source batch provider")
        }
        let input = spec.inputShape
        guard (input.rank == 3 && input[0] == 1) || input.rank == 2 else {
            throw .invalidArgument(name: "rmt.input", value: input.rank, reason: "the augmentation takes one-channel images [1, H, W]")
        }
        var split = -1
        for i in 0..<spec.layers.count where spec.layers[i].kind == .linear { split = i }
        guard split >= 0 else {
            throw .invalidArgument(name: "rmt.classifier", value: 0, reason: "the model has no linear layer to split encoder and classifier at")
        }
        self.configuration = configuration
        self.mode = mode
        self.store = store
        self.batchSize = batchSize
        self.source = source
        classifierLayer = split
        let trainables = try Trainables(store: store, spec: spec, mode: mode, lora: lora, arena: arena)
        self.trainables = trainables
        trainedParameters = trainables.parameterIndices
        graph = try Graph(spec: spec, store: store, batchSize: batchSize, arena: arena,
                          options: GraphOptions(training: true, batchNormMode: .batchStatistics, trainAdapters: lora != nil,
                                                tapLayer: split), kernels: kernels)
        try trainables.attach(to: graph, arena: arena)
        classes = graph.outputShape.elementCount ?? 0
        let featureShape = split == 0 ? input : try graph.outputShape(ofLayer: spec.layers[split].inputs[0])
        let d = featureShape.elementCount ?? 0
        featureCount = d
        teacherGraph = try SharedWeightGraph(spec: spec, student: store, trainables: trainables, batchSize: batchSize, arena: arena,
                                             kernels: kernels, tapLayer: split)
        // Projector π: Linear(D → P) · ReLU · Linear(P → P), PyTorch's default initialisation.
        let width = configuration.projectionDimension
        var p1 = LayerSpec(kind: .linear, name: "proj1", inputs: [-1])
        p1.outputs = width
        var p2 = LayerSpec(kind: .linear, name: "proj2", inputs: [1])
        p2.outputs = width
        let projectorSpec = ModelSpec(architecture: "rmt-projector", inputShape: try Shape(d), classCount: width,
                                      layers: [p1, LayerSpec(kind: .relu, name: "proj_relu", inputs: [0]), p2])
        projectorStore = ParameterStore(arena: arena)
        let useContrast = configuration.lambdaContrast > 0
        if useContrast {
            try ParameterInitializer.initialize(projectorSpec, into: projectorStore, seed: configuration.seed ^ 0x5052_4F4A)
            projector = try Graph(spec: projectorSpec, store: projectorStore, batchSize: 3 * batchSize, arena: arena,
                                  options: GraphOptions(training: true, inputGradient: true), kernels: kernels)
            contrastive = try SupervisedContrastiveLoss(maximumRows: 3 * batchSize, dimension: width,
                                                        temperature: configuration.temperature, arena: arena)
            prototypes = try arena.persistentTensor(.f32, try Shape(classes, d))
        } else {
            projector = nil
            contrastive = nil
            prototypes = nil
        }
        selfTraining = try SymmetricCrossEntropyLoss(maximumBatch: batchSize, classes: classes, arena: arena, kernels: kernels)
        crossEntropy = try CrossEntropyLoss(maximumBatch: batchSize, classes: classes, arena: arena, kernels: kernels)
        var list = trainables.trainableParameters(group: 0)
        var projectorIndices: [Int] = []
        for i in 0..<projectorStore.count {
            guard let g = projectorStore[i].gradient else { continue }
            list.append(TrainableParameter(value: projectorStore[i].value, gradient: g, group: 1))
            projectorIndices.append(i)
        }
        optimizer = try AdaptationOptimizerState(configuration.optimizer, parameters: list, groupCount: 2, arena: arena)
        let rows = try Shape(batchSize, classes), features = try Shape(batchSize, d)
        output = try arena.persistentTensor(.f32, rows)
        cleanLogits = try arena.persistentTensor(.f32, rows)
        augmentedLogits = try arena.persistentTensor(.f32, rows)
        teacherLogits = try arena.persistentTensor(.f32, rows)
        cleanGradient = try arena.persistentTensor(.f32, rows)
        augmentedGradient = try arena.persistentTensor(.f32, rows)
        cleanFeatures = try arena.persistentTensor(.f32, features)
        augmentedFeatures = try arena.persistentTensor(.f32, features)
        cleanFeatureGradient = try arena.persistentTensor(.f32, features)
        augmentedFeatureGradient = try arena.persistentTensor(.f32, features)
        let projectorRows = useContrast ? 3 * batchSize : 1
        projectorInput = try arena.persistentTensor(.f32, try Shape(projectorRows, d))
        projectorInputGradient = try arena.persistentTensor(.f32, try Shape(projectorRows, d))
        projectedGradient = try arena.persistentTensor(.f32, try Shape(projectorRows, width))
        var dims = [batchSize]
        dims += input.dimensions
        augmented = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
        sourceImages = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
        sourceLabels = try arena.persistentTensor(.f32, try Shape(batchSize))
        let height = input[input.rank - 2], widthPixels = input[input.rank - 1]
        augmentation = try CoTTAAugmentation(height: height, width: widthPixels, maximumBatch: batchSize, arena: arena)
        random = SplitMix64Random(seed: configuration.seed)
        try optimizer.zeroGradients()

        // Set-up: prototypes from the source model (teacher = student = source now), warm-up.
        if let prototypes, let source {
            let batches = max(1, configuration.prototypeSamples / batchSize)
            try sourcePrototypes(graph: teacherGraph.graph, provider: source, images: sourceImages, labels: sourceLabels,
                                 batchCount: batches, into: prototypes)
        }
        var steps = 0
        if configuration.warmUpSamples > 0, let source {
            steps = configuration.warmUpSamples / batchSize
            try RMT.warmUp(steps: steps, graph: graph, teacherGraph: teacherGraph, student: trainables.values, optimizer: optimizer,
                           loss: selfTraining, source: source, images: sourceImages, labels: sourceLabels,
                           studentLogits: cleanLogits, gradient: cleanGradient, momentum: configuration.emaMomentum)
        }
        warmUpSteps = steps
        savedStudent = try ParameterCopies(of: trainables.values, arena: arena)
        savedTeacher = try ParameterCopies(of: teacherGraph.slots.tensors, arena: arena)
        var projectorValues: [TensorView] = []
        for i in projectorIndices { projectorValues.append(projectorStore[i].value) }
        self.projectorValues = projectorValues
        savedProjector = try ParameterCopies(of: projectorValues, arena: arena)
        savedOptimizer = try optimizer.makeSnapshot(arena: arena)
    }

    /// The mean-teacher warm-up of research/tta.md §4.3 step 4 (projector group off).
    private static func warmUp(
        steps: Int, graph: Graph, teacherGraph: SharedWeightGraph, student: [TensorView], optimizer: AdaptationOptimizerState,
        loss: SymmetricCrossEntropyLoss, source: SourceBatchProvider, images: TensorView, labels: TensorView,
        studentLogits: TensorView, gradient: TensorView, momentum: Float
    ) throws(LichenError) {
        guard steps > 0 else { return }
        let lr = optimizer.baseLearningRate
        try optimizer.setEnabled(false, group: 1)
        for i in 0..<steps {
            try optimizer.setLearningRate(lr * Float(i + 1) / Float(steps), group: 0)
            try source.nextSourceBatch(images: images, labels: labels)
            let zt = try teacherGraph.graph.forward(input: images)
            let zs = try graph.forward(input: images)
            try studentLogits.copy(from: zs)
            _ = try loss.compute(logits: studentLogits, teacherLogits: zt, gradient: gradient)
            try optimizer.zeroGradients()
            try graph.backward(outputGradient: try gradient.reshaped(zs.shape))
            try optimizer.step()
            try teacherGraph.slots.exponentialMovingAverage(towards: student, momentum: momentum)
        }
        try optimizer.setLearningRate(lr, group: 0)
        try optimizer.setEnabled(true, group: 1)
    }

    // MARK: - Frames between updates

    /// Reserves the saved batch statistics of the student and teacher graphs and the logit row
    /// their sum goes into (frame mode's `.saved` prediction).
    func reservePrediction(arena: Arena) throws(LichenError) {
        try graph.reserveSavedStatistics(arena: arena)
        try teacherGraph.graph.reserveSavedStatistics(arena: arena)
        if predictionSum == nil { predictionSum = try arena.persistentTensor(.f32, try Shape(1, classes)) }
    }

    /// Row `row` of `input` as RMT predicts it: student + teacher logits, one forward each.
    /// - Throws: `.invalidArgument(name: "rmt.prediction", ...)` before `reservePrediction`.
    /// - Note: Allocates nothing.
    func predict(input: TensorView, statistics: NormStatistics, row: Int) throws(LichenError) -> TensorView {
        guard let sum = predictionSum else {
            throw .invalidArgument(name: "rmt.prediction", value: 0, reason: "reserve the prediction's memory first")
        }
        try sum.copy(from: try graph.forward(input: input, statistics: statistics).leadingRows(row, count: 1))
        let zt = try teacherGraph.graph.forward(input: input, statistics: statistics).leadingRows(row, count: 1)
        try graph.kernels.axpy(1, zt, sum)
        return sum
    }

    /// The teacher's copy of trained value `k` (store index `trainedParameters[k]`; after them, A
    /// and B of each LoRA target).
    public func teacherValue(_ k: Int) -> TensorView { teacherGraph.slots.tensors[k] }

    // MARK: - Step

    /// Predicts `input` (student + teacher logits) and adapts on it (steps 1–8 above).
    ///
    /// - Parameter input: f32 `[n, 1, H, W]`, 1 <= n <= `batchSize`, every value finite.
    /// - Returns: z + z′ `[n, classes]`, from before this batch's update; valid until the next
    ///   `step` or `reset`.
    /// - Throws: `.nonFiniteValue(operand: "input", index:)`, `.unsupportedElementType`,
    ///   `.shapeMismatch`, `.invalidArgument(name: "input.batch", ...)`, all before anything
    ///   changes; what the losses, the provider and the optimizer throw (before any parameter
    ///   changes).
    /// - Note: Allocates nothing.
    public func step(batch input: TensorView) throws(LichenError) -> TensorView {
        try input.require(.f32, "input")
        if let i = try input.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "input", index: i) }
        // Teacher on the clean batch (its forward validates the shape before anything changes).
        // Both clean forwards keep their batch statistics when frame mode reserved room for them.
        let zt = try teacherGraph.graph.forward(input: input, statistics: .computedAndSaved)
        let n = zt.shape[0]
        let zT = try teacherLogits.leadingRows(0, count: n)
        try zT.copy(from: zt)
        // Student on the augmented view, then on the clean one (whose activations backward uses first).
        let xa = try augmented.leadingRows(0, count: n)
        try augmentation.augment(input, into: xa, random: &random)
        let zA = try augmentedLogits.leadingRows(0, count: n), fA = try augmentedFeatures.leadingRows(0, count: n)
        try zA.copy(from: try graph.forward(input: xa))
        try fA.copy(from: try graph.tappedInput(batch: n).reshaped(fA.shape))
        let zS = try cleanLogits.leadingRows(0, count: n), fS = try cleanFeatures.leadingRows(0, count: n)
        let out = try graph.forward(input: input, statistics: .computedAndSaved)
        try zS.copy(from: out)
        try fS.copy(from: try graph.tappedInput(batch: n).reshaped(fS.shape))
        let prediction = try output.leadingRows(0, count: n)
        let o = try prediction.f32Elements("output"), s = try zS.f32Elements("logits"), t = try zT.f32Elements("teacher")
        for j in 0..<o.count { o[j] = s[j] + t[j] }
        // Self-training: ½ SCE(z, z′) + ½ SCE(z̃, z′), weighted by λ_trg.
        let gS = try cleanGradient.leadingRows(0, count: n), gA = try augmentedGradient.leadingRows(0, count: n)
        let lossClean = try selfTraining.compute(logits: zS, teacherLogits: zT, gradient: gS)
        let lossAugmented = try selfTraining.compute(logits: zA, teacherLogits: zT, gradient: gA)
        let weight = 0.5 * configuration.lambdaTarget
        try scale(gS, weight)
        try scale(gA, weight)
        let selfTrainingLoss = 0.5 * (lossClean + lossAugmented)
        try optimizer.zeroGradients()
        var contrastiveLoss: Float = 0
        let featureGradientS = try cleanFeatureGradient.leadingRows(0, count: n)
        let featureGradientA = try augmentedFeatureGradient.leadingRows(0, count: n)
        if let projector, let contrastive, let prototypes {
            contrastiveLoss = try contrastiveStep(n: n, projector: projector, loss: contrastive, prototypes: prototypes,
                                                  clean: fS, augmentedFeatures: fA, cleanGradient: featureGradientS,
                                                  augmentedGradient: featureGradientA)
        }
        // Backward through the clean view (activations still in place), then the augmented one.
        let hasContrast = projector != nil
        if hasContrast {
            try graph.backward(outputGradient: try gS.reshaped(out.shape), tapGradient: try featureGradientS.reshaped(tapShape(n)))
        } else {
            try graph.backward(outputGradient: try gS.reshaped(out.shape))
        }
        let outA = try graph.forward(input: xa)
        if hasContrast {
            try graph.backward(outputGradient: try gA.reshaped(outA.shape), tapGradient: try featureGradientA.reshaped(tapShape(n)))
        } else {
            try graph.backward(outputGradient: try gA.reshaped(outA.shape))
        }
        var sourceLoss: Float = 0
        if configuration.lambdaSource > 0, let source {
            try source.nextSourceBatch(images: sourceImages, labels: sourceLabels)
            let zs = try graph.forward(input: sourceImages)
            let g = try cleanGradient.leadingRows(0, count: batchSize)
            try g.copy(from: zs)
            sourceLoss = try crossEntropy.compute(logits: g, labels: sourceLabels, gradient: g)
            try scale(g, configuration.lambdaSource)
            try graph.backward(outputGradient: try g.reshaped(zs.shape))
        }
        try optimizer.step()
        try teacher.exponentialMovingAverage(towards: trainables.values, momentum: configuration.emaMomentum)
        lastSelfTrainingLoss = selfTrainingLoss
        lastContrastiveLoss = contrastiveLoss
        lastSourceLoss = sourceLoss
        lastLoss = configuration.lambdaTarget * selfTrainingLoss + configuration.lambdaContrast * contrastiveLoss
            + configuration.lambdaSource * sourceLoss
        stepCount += 1
        return prediction
    }

    /// The tapped input's shape for a batch of n.
    private func tapShape(_ n: Int) throws(LichenError) -> Shape {
        try graph.tappedShape(batch: n)
    }

    private func scale(_ v: TensorView, _ factor: Float) throws(LichenError) {
        let e = try v.f32Elements("gradient")
        for j in 0..<e.count { e[j] *= factor }
    }

    /// Nearest prototypes, projector forward, SupCon, projector backward (λ_cont-weighted);
    /// writes dL/df for both views. Returns L_cont.
    private func contrastiveStep(
        n: Int, projector: Graph, loss: SupervisedContrastiveLoss, prototypes: TensorView, clean: TensorView,
        augmentedFeatures: TensorView, cleanGradient: TensorView, augmentedGradient: TensorView
    ) throws(LichenError) -> Float {
        let d = featureCount
        let p = try prototypes.f32Elements("prototypes"), f = try clean.f32Elements("features")
        let fa = try augmentedFeatures.f32Elements("features")
        let rows = try projectorInput.leadingRows(0, count: 3 * n)
        let v = try rows.f32Elements("projectorInput")
        for b in 0..<n {
            // n_b = argmax_k cos(P_k, f_b); the first maximum wins.
            var fNorm: Double = 0
            for j in 0..<d { fNorm += Double(f[b * d + j]) * Double(f[b * d + j]) }
            fNorm = max(fNorm.squareRoot(), 1e-8)
            var best = 0, bestCosine = -Double.infinity
            for k in 0..<classes {
                var dot: Double = 0, pNorm: Double = 0
                for j in 0..<d {
                    dot += Double(p[k * d + j]) * Double(f[b * d + j])
                    pNorm += Double(p[k * d + j]) * Double(p[k * d + j])
                }
                let cosine = dot / (max(pNorm.squareRoot(), 1e-8) * fNorm)
                if cosine > bestCosine {
                    bestCosine = cosine
                    best = k
                }
            }
            for j in 0..<d {
                v[b * d + j] = p[best * d + j]
                v[(n + b) * d + j] = f[b * d + j]
                v[(2 * n + b) * d + j] = fa[b * d + j]
            }
        }
        let y = try projector.forward(input: rows)
        let gy = try projectedGradient.leadingRows(0, count: 3 * n)
        let value = try loss.compute(features: y, views: 3, gradient: gy)
        try scale(gy, configuration.lambdaContrast)
        let gv = try projectorInputGradient.leadingRows(0, count: 3 * n)
        try projector.backward(outputGradient: gy, inputGradient: gv)
        let g = try gv.f32Elements("projectorInputGradient")
        let gs = try cleanGradient.f32Elements("featureGradient"), ga = try augmentedGradient.f32Elements("featureGradient")
        for j in 0..<(n * d) {
            gs[j] = g[n * d + j]
            ga[j] = g[2 * n * d + j]
        }
        return value
    }

    /// Student, teacher, projector and optimizer back to their state after the set-up
    /// (prototypes and warm-up are not recomputed); the augmentation stream re-seeded.
    /// - Note: Allocates nothing.
    public func reset() throws(LichenError) {
        try savedStudent.load(into: trainables.values)
        try savedTeacher.load(into: teacherGraph.slots.tensors)
        try savedProjector.load(into: projectorValues)
        try optimizer.restore(from: savedOptimizer)
        try optimizer.zeroGradients()
        random = SplitMix64Random(seed: configuration.seed)
        stepCount = 0
        lastLoss = 0
        lastSelfTrainingLoss = 0
        lastContrastiveLoss = 0
        lastSourceLoss = 0
    }
}

/// RMT's source prototypes (research/tta.md §4.3 step 2): the mean encoder feature of each
/// class over `batchCount` source batches, read at `graph`'s feature tap; the graph should
/// normalise with batch statistics, as the configured reference encoder does. A class with no
/// sample gets a zero prototype.
///
/// - Parameters:
///   - images, labels: batch buffers `[B, input...]` and `[B]` the provider fills.
///   - into: f32 `[classes, D]`.
/// - Throws: `.invalidArgument` without a tap, for a batch count < 1 or a label that is not a
///   class index; `.shapeMismatch`; what the graph and the provider throw.
/// - Note: Set-up only: allocates one count per class.
public func sourcePrototypes(
    graph: Graph, provider: SourceBatchProvider, images: TensorView, labels: TensorView, batchCount: Int,
    into prototypes: TensorView
) throws(LichenError) {
    guard batchCount >= 1 else { throw .invalidArgument(name: "batchCount", value: batchCount, reason: "must be >= 1") }
    let p = try prototypes.f32Elements("prototypes")
    guard prototypes.shape.rank == 2 else {
        throw .shapeMismatch(operand: "prototypes", dimension: -1, expected: 2, got: prototypes.shape.rank)
    }
    let classes = prototypes.shape[0], d = prototypes.shape[1]
    let n = images.shape[0]
    p.fill(0)
    // Sums in the prototype rows, a count per class.
    var classCounts = [Int](repeating: 0, count: classes)
    for _ in 0..<batchCount {
        try provider.nextSourceBatch(images: images, labels: labels)
        _ = try graph.forward(input: images)
        let f = try graph.tappedInput(batch: n).f32Elements("features")
        guard f.count == n * d else { throw .shapeMismatch(operand: "prototypes", dimension: 1, expected: f.count / n, got: d) }
        let y = try labels.f32Elements("labels")
        for b in 0..<n {
            let label = Int(y[b])
            guard y[b] == Float(label) && label >= 0 && label < classes else {
                throw .invalidArgument(name: "labels", value: b, reason: "label at this row is not a class index")
            }
            classCounts[label] += 1
            for j in 0..<d { p[label * d + j] += f[b * d + j] }
        }
    }
    for k in 0..<classes where classCounts[k] > 0 {
        let inverse = 1 / Float(classCounts[k])
        for j in 0..<d { p[k * d + j] *= inverse }
    }
}

extension RMT {
    /// The adapted state's parts (`AdaptedState`): student, teacher and projector values (the
    /// prototypes come from the source data at assembly), their names, the optimizer.
    func stateParts() -> (values: [TensorView], names: [String], optimizer: AdaptationOptimizerState) {
        let names = trainables.stateNames(store: store)
        var projectorNames: [String] = []
        for i in 0..<projectorValues.count { projectorNames.append("projector.\(i)") }
        return (trainables.values + teacher.tensors + projectorValues, names + names.map { "teacher." + $0 } + projectorNames, optimizer)
    }

    /// Counters of the adapted state: steps, the random stream.
    static let stateCounterCount = 2

    /// - Note: Allocates nothing.
    func readStateCounters(_ out: UnsafeMutablePointer<UInt64>) {
        out[0] = UInt64(stepCount)
        out[1] = random.state
    }

    /// - Note: Allocates nothing.
    func writeStateCounters(_ values: UnsafePointer<UInt64>) {
        stepCount = Int(truncatingIfNeeded: values[0])
        random = SplitMix64Random(seed: values[1])
    }
}
