/// What each adaptation method does, one case per method: how it is built, its step over a
/// batch, its prediction of frames between updates, its reset and the memory that prediction
/// reserves. `AdaptationSession` and `FrameAdapter` call only these; nothing else switches
/// over methods. Adding a method is a new case here (with its type's file) and its name in
/// `AdaptationMethod`.
public enum AdaptationPolicy {
    /// The source model: an inference graph with the running statistics.
    case source(Graph)
    /// BN-adapt: a graph normalising with each batch's statistics; nothing trained.
    case bnAdapt(Graph)
    case tent(Tent)
    case cotta(CoTTA)
    case rmt(RMT)

    /// Builds `method`'s policy (see `AdaptationSession.init` for the parameters).
    static func make(
        _ method: AdaptationMethod, spec: ModelSpec, store: ParameterStore, batchSize: Int, arena: Arena, mode: AdaptationMode,
        optimizer: AdaptationOptimizer, cotta: CoTTA.Configuration?, rmt: RMT.Configuration, source: SourceBatchProvider?,
        lora: AdaptationLoRA?, kernels: Kernels
    ) throws(LichenError) -> AdaptationPolicy {
        switch method {
        case .source:
            return .source(try Graph(spec: spec, store: store, batchSize: batchSize, arena: arena, options: GraphOptions(), kernels: kernels))
        case .bnAdapt:
            return .bnAdapt(try Graph(spec: spec, store: store, batchSize: batchSize, arena: arena,
                                      options: GraphOptions(batchNormMode: .batchStatistics), kernels: kernels))
        case .tent:
            return .tent(try Tent(spec: spec, store: store, batchSize: batchSize, arena: arena, mode: mode, optimizer: optimizer,
                                  lora: lora, kernels: kernels))
        case .cotta:
            guard let cotta else {
                throw .invalidArgument(name: "cotta", value: 0, reason: "CoTTA needs its configuration (the confidence threshold)")
            }
            return .cotta(try CoTTA(spec: spec, store: store, batchSize: batchSize, arena: arena, mode: mode, configuration: cotta,
                                    lora: lora, kernels: kernels))
        case .rmt:
            return .rmt(try RMT(spec: spec, store: store, batchSize: batchSize, arena: arena, mode: mode, configuration: rmt,
                                source: source, lora: lora, kernels: kernels))
        }
    }

    /// The student graph: the one that trains, and that adapter sets apply to.
    public var graph: Graph {
        switch self {
        case .source(let g), .bnAdapt(let g): return g
        case .tent(let t): return t.graph
        case .cotta(let c): return c.graph
        case .rmt(let r): return r.graph
        }
    }

    /// The graph of the method's teacher (CoTTA's EMA teacher and anchor, RMT's teacher), which
    /// applies the same skill adapters as the student; nil for the others.
    public var teacherGraph: Graph? {
        switch self {
        case .source, .bnAdapt, .tent: return nil
        case .cotta(let c): return c.teacherGraph.graph
        case .rmt(let r): return r.teacherGraph.graph
        }
    }

    /// Makes `set` the skill adapters of the student graph, and its companion those of the
    /// teacher graph (`AdapterSet.companion`).
    /// - Throws: `.invalidArgument(name: "adapters", ...)` for a set built for other graphs.
    /// - Note: Allocates nothing.
    public func setSkillAdapters(_ set: AdapterSet?) throws(LichenError) {
        try graph.setSkillAdapters(set)
        try teacherGraph?.setSkillAdapters(set?.companion)
    }

    public var classes: Int {
        switch self {
        case .source(let g), .bnAdapt(let g): return g.outputShape.elementCount ?? 0
        case .tent(let t): return t.classes
        case .cotta(let c): return c.classes
        case .rmt(let r): return r.classes
        }
    }

    /// Store indices of the trained parameters (empty for source and BN-adapt).
    public var trainedParameters: [Int] {
        switch self {
        case .source, .bnAdapt: return []
        case .tent(let t): return t.trainedParameters
        case .cotta(let c): return c.trainedParameters
        case .rmt(let r): return r.trainedParameters
        }
    }

    /// The trained LoRA adapter, if the method has one.
    public var loraAdapter: LoRAAdapter? {
        switch self {
        case .source, .bnAdapt: return nil
        case .tent(let t): return t.loraAdapter
        case .cotta(let c): return c.loraAdapter
        case .rmt(let r): return r.loraAdapter
        }
    }

    /// Values trained (store parameters and LoRA A, B; RMT's projector not counted).
    public var trainedValueCount: Int {
        switch self {
        case .source, .bnAdapt: return 0
        case .tent(let t): return t.trainedValueCount
        case .cotta(let c): return c.trainedValueCount
        case .rmt(let r): return r.trainedValueCount
        }
    }

    /// The loss of the last step (0 for source and BN-adapt).
    public var lastLoss: Float {
        switch self {
        case .source, .bnAdapt: return 0
        case .tent(let t): return t.lastLoss
        case .cotta(let c): return c.lastLoss
        case .rmt(let r): return r.lastLoss
        }
    }

    /// Predicts a batch and adapts on it (the online protocol: the logits come from before the
    /// update). Source and BN-adapt forward only; their forward saves its batch statistics
    /// where room was reserved.
    /// - Note: Allocates nothing.
    func step(batch input: TensorView) throws(LichenError) -> TensorView {
        switch self {
        case .source(let g), .bnAdapt(let g): return try g.forward(input: input, statistics: .computedAndSaved)
        case .tent(let t): return try t.step(batch: input)
        case .cotta(let c): return try c.step(batch: input)
        case .rmt(let r): return try r.step(batch: input)
        }
    }

    /// The trained state back to construction's.
    /// - Note: Allocates nothing.
    func reset() throws(LichenError) {
        switch self {
        case .source, .bnAdapt: break
        case .tent(let t): try t.reset()
        case .cotta(let c): try c.reset()
        case .rmt(let r): try r.reset()
        }
    }

    // MARK: - Frames between updates

    /// Reserves what `predict(input:statistics:row:)` needs: the saved batch statistics of
    /// each graph that predicts (BN-adapt and Tent the student; CoTTA the EMA teacher; RMT
    /// student and teacher, and a logit row for their sum). Source needs none.
    func reservePrediction(arena: Arena) throws(LichenError) {
        switch self {
        case .source: break
        case .bnAdapt(let g): try g.reserveSavedStatistics(arena: arena)
        case .tent(let t): try t.graph.reserveSavedStatistics(arena: arena)
        case .cotta(let c): try c.reservePrediction(arena: arena)
        case .rmt(let r): try r.reservePrediction(arena: arena)
        }
    }

    /// Predicts row `row` of `input` by the method's batch rule with one forward per predicting
    /// model (`FrameAdapter.Prediction.saved`): BN-adapt and Tent the student; CoTTA the EMA
    /// teacher; RMT student + teacher logits. `statistics` says whether the forward uses the
    /// saved batch statistics, computes its own, or computes and saves them.
    /// - Returns: `[1, classes]`, valid until the next call.
    /// - Note: Allocates nothing.
    public func predict(input: TensorView, statistics: NormStatistics, row: Int) throws(LichenError) -> TensorView {
        switch self {
        case .source(let g), .bnAdapt(let g): return try g.forward(input: input, statistics: statistics).leadingRows(row, count: 1)
        case .tent(let t): return try t.graph.forward(input: input, statistics: statistics).leadingRows(row, count: 1)
        case .cotta(let c): return try c.predict(input: input, statistics: statistics, row: row)
        case .rmt(let r): return try r.predict(input: input, statistics: statistics, row: row)
        }
    }

    // MARK: - The fused path

    /// The fused models that predict frames between updates (`FusedPrediction`), or nil when the
    /// method's graphs apply adapters (the fused path applies none).
    /// - Throws: what `InferenceModel.init` and `refoldSource` throw; `.budgetExceeded`.
    func makeFused(spec: ModelSpec, store: ParameterStore, arena: Arena, kernels: Kernels, sourceLearns: Bool = false)
        throws(LichenError) -> FusedPrediction?
    {
        guard graph.adapters == nil, teacherGraph?.adapters == nil else { return nil }
        let before = arena.stats.lowUsedBytes, plannedBefore = arena.stats.plannedBytes, persistentBefore = arena.stats.persistentBytes
        func fused(_ s: ParameterStore, refoldable: Bool) throws(LichenError) -> InferenceModel {
            try InferenceModel(spec: spec, store: s, batchSize: 1, arena: arena, kernels: kernels, refoldable: refoldable)
        }
        var models: [InferenceModel] = []
        var sources: [RefoldSource] = []
        var sum: TensorView? = nil
        switch self {
        case .source:
            // Online learning changes the source model's weights: refold them (folded batch
            // norms from the running statistics; unfolded f32 weights are the store's own).
            let m = try fused(store, refoldable: sourceLearns)
            models = [m]
            if sourceLearns { sources = [try m.refoldSource(runningStatisticsOf: store)] }
        case .bnAdapt(let g):
            let m = try fused(store, refoldable: true)
            models = [m]
            sources = [try m.refoldSource(savedStatisticsOf: g)]
        case .tent(let t):
            let m = try fused(store, refoldable: true)
            models = [m]
            sources = [try m.refoldSource(savedStatisticsOf: t.graph)]
        case .cotta(let c):
            let teacher = c.teacherGraph.graph
            let m = try fused(teacher.store, refoldable: true)
            models = [m]
            sources = [try m.refoldSource(savedStatisticsOf: teacher)]
        case .rmt(let r):
            let student = try fused(store, refoldable: true)
            let teacher = try fused(r.teacherGraph.graph.store, refoldable: true)
            models = [student, teacher]
            sources = [try student.refoldSource(savedStatisticsOf: r.graph), try teacher.refoldSource(savedStatisticsOf: r.teacherGraph.graph)]
            sum = try arena.persistentTensor(.f32, try Shape(1, r.classes))
        }
        return FusedPrediction(models: models, sources: sources, sum: sum, byteCount: arena.stats.lowUsedBytes - before,
                               plannedBytes: arena.stats.plannedBytes - plannedBefore,
                               persistentBytes: arena.stats.persistentBytes - persistentBefore)
    }

    /// Puts the values a refold reads where it reads them (CoTTA: the teacher into the teacher
    /// graph's slots, which may hold the anchor).
    /// - Note: Allocates nothing.
    func prepareFusedRefold() throws(LichenError) {
        if case .cotta(let c) = self { try c.loadTeacherForPrediction() }
    }

    /// Whether no graph that predicts applies an adapter (the fused path applies none).
    var appliesNoAdapters: Bool {
        graph.adapters == nil && graph.skillAdapters == nil && teacherGraph?.adapters == nil && teacherGraph?.skillAdapters == nil
    }
}
