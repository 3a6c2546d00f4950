import CRuntime
import Lichen

/// Checks of `InferenceModel.refold` (Sources/Lichen/Inference/InferenceModel+Refold.swift):
/// after an adaptation update, and after arbitrary changes of γ, β and the saved statistics, the
/// refolded fused model's batch-1 output equals the unfolded graph's `.saved` batch-1 forward;
/// refolding the running statistics gives the load-time model back bit for bit; unfoldable
/// values are refused and change nothing.
let refoldChecks: [Check] = [
    Check("Inference/Refold", "refolded fused models equal the graph's saved-statistics forward after BN-adapt and Tent updates and arbitrary changes: small random models and the CNN architecture, f32 / q8_0 / q4_0") { c in
        checking(&c) { (c) throws(LichenError) in
            var specs = inferenceCheckSpecs()
            specs.append(ModelSpec.fashionMNISTCNN)
            // The best table, and the portable one forced onto the direct methods, so the
            // packed-weight targets are refolded on any CPU (BN-adapt and Tent meet the same
            // targets: Tent alone there).
            let forced = CheckMemory(byteCount: MemoryLayout<lcr_kernel_table>.stride)
            let portable = Kernels(isa: .portable) ?? .best
            let direct = Kernels._forcingDirectMethods(portable, storage: forced.base.bindMemory(to: lcr_kernel_table.self, capacity: 1))
            for (kernels, methods, tableName) in [(Kernels.best, [AdaptationMethod.bnAdapt, .tent], "best"),
                                                  (direct, [AdaptationMethod.tent], "portable-direct")] {
                for (index, spec) in specs.enumerated() {
                    for type in [ElementType.f32, .q8_0, .q4_0] {
                        for method in methods {
                            let seed = UInt64(400 + index * 10)
                            let arena = try Arena(byteCount: 48 << 20)
                            let store = try inferenceStore(spec, arena: arena, type: type, seed: seed)
                            let label = (index == specs.count - 1 ? "fmnist-cnn" : "random model " + String(index)) + " " + type.name
                                + " " + method.name + " " + tableName
                            try refoldScenario(&c, spec: spec, store: store, arena: arena, method: method, seed: seed, label: label,
                                               kernels: kernels)
                        }
                    }
                }
            }
            withExtendedLifetime(forced) {}
        }
    },
    Check("Inference/RefoldTeacher", "a fused model built from the student's store and refolded from a teacher graph (shared frozen weights, its own γ, β after an EMA, its own saved statistics) equals the teacher's saved-statistics forward, and student + teacher fused logits equal the two graphs' sum (CoTTA's and RMT's predictions), f32 / q8_0 / q4_0") { c in
        checking(&c) { (c) throws(LichenError) in
            for (index, spec) in [inferenceCheckSpecs()[0], inferenceCheckSpecs()[1], ModelSpec.fashionMNISTCNN].enumerated() {
                for type in [ElementType.f32, .q8_0, .q4_0] {
                    let label = ["random model 0", "random model 1", "fmnist-cnn"][index] + " " + type.name
                    try refoldTeacherScenario(&c, spec: spec, type: type, seed: UInt64(600 + index), label: label)
                }
            }
        }
    },
    Check("Inference/RefoldErrors", "refold refuses a model built without refoldable, a source of another model, a graph with nothing saved, and sources of the wrong size") { c in
        checking(&c) { (c) throws(LichenError) in
            let spec = inferenceCheckSpecs()[0]
            let arena = try Arena(byteCount: 32 << 20)
            let store = try inferenceStore(spec, arena: arena, type: .q8_0, seed: 41)
            let plain = try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena)
            let fused = try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena, refoldable: true)
            let other = try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena, refoldable: true)
            c.expect(plain.refoldBytes == 0 && !plain.refoldable && plain.refoldedNorms.isEmpty, "a plain build reserves nothing")
            let norms = fused.refoldedNorms
            var channels = 0
            for n in norms { channels += n.channels }
            c.expect(norms.count == 3 && fused.refoldBytes == 8 * channels, "three norms folded, two floats per channel reserved: "
                     + String(norms.count) + " norms, " + String(fused.refoldBytes) + " bytes")
            c.expectThrows(.invalidArgument(name: "refoldable", value: 0, reason: "the model was built without refoldable: true"),
                           "plain model") { () throws(LichenError) in try plain.refoldSource(runningStatisticsOf: store) }
            let source = try other.refoldSource(runningStatisticsOf: store)
            c.expectThrows(.invalidArgument(name: "source", value: norms.count, reason: "the refold source was made for another model"),
                           "another model's source") { () throws(LichenError) in try fused.refold(source) }
            let graph = try Graph(spec: spec, store: store, batchSize: 4, arena: arena, options: GraphOptions(batchNormMode: .batchStatistics))
            c.expectThrows(.invalidArgument(name: "layer", value: norms[0].layer,
                                            reason: "no saved statistics for this layer (not batch norm, or none reserved)"),
                           "nothing reserved") { () throws(LichenError) in try fused.refold(savedStatisticsOf: graph) }
            try graph.reserveSavedStatistics(arena: arena)
            c.expectThrows(.invalidArgument(name: "statistics", value: 0,
                                            reason: "no batch statistics saved (reserve them and run a .computedAndSaved forward first)"),
                           "nothing saved yet") { () throws(LichenError) in try fused.refold(savedStatisticsOf: graph) }
            let short = CheckMemory.floats([1, 2])
            let name = spec.layers[norms[0].layer].name
            c.expectThrows(.parameterShapeMismatch(tensor: name + ".mean", expected: String(norms[0].channels) + " values", got: "2 values"),
                           "a statistic of the wrong size") { () throws(LichenError) in
                try fused.refoldSource { (norm) throws(LichenError) in
                    let n = spec.layers[norm.layer].name
                    return RefoldValues(mean: try short.view(.f32, [2]), variance: try store.parameter(named: n + ".running_var").value,
                                        gamma: try store.parameter(named: n + ".weight").value,
                                        beta: try store.parameter(named: n + ".bias").value)
                }
            }
        }
    },
]

// MARK: - Support

/// Max |got - expected| over every frame of `frames` (one frame per row), each through the fused
/// model and through `graph`'s `.saved` batch-1 forward, against `tolerance` × (logit range + 1)
/// of that frame's graph logits.
public func refoldCompare(
    _ c: inout CheckContext, fused: InferenceModel, graph: Graph, frames: TensorView, tolerance: Float, label: String
) throws(LichenError) {
    var worst: Float = 0, worstBound: Float = 0, worstRatio: Float = 0, ok = true
    for r in 0..<frames.shape[0] {
        let x = try frames.leadingRows(r, count: 1)
        let expected = try graph.forward(input: x, statistics: .saved).toArray()
        let got = try fused.forward(input: x).toArray()
        var lo = Float.infinity, hi = -Float.infinity, err: Float = 0
        for v in expected {
            lo = min(lo, v)
            hi = max(hi, v)
        }
        for i in 0..<min(got.count, expected.count) { err = max(err, abs(got[i] - expected[i])) }
        let bound = tolerance * (hi - lo + 1)
        if !(err <= bound) || got.count != expected.count { ok = false }
        if err >= worst {
            worst = err
            worstBound = bound
        }
        worstRatio = max(worstRatio, err / (hi - lo + 1))
    }
    c.expect(ok, label + ": max |fused - graph .saved| " + show(worst) + " (bound " + show(worstBound) + "), max error / (logit range + 1) "
             + show(worstRatio))
}

/// The tolerance of `refoldCompare` for weights of `type`: that of the load-time fold's check
/// (`inferenceCompare`), since a refold's arithmetic is the load-time fold's: 1e-4 for f32 (the
/// graph normalises after the product in f32, the fused model scales the weights; both round
/// differently, at about 1e-7 relative per value), 2e-2 for q8_0 / q4_0 (each folded block scale
/// is rounded to fp16, 2^-11 relative, and a next layer's Q8_0 activation codes may move by one
/// step, 1/127 of a block's largest value).
public func refoldTolerance(_ type: ElementType) -> Float { type == .f32 ? 1e-4 : 2e-2 }

/// One model, one method: refoldable build = plain build; running-statistics refold = load-time
/// model (bit for bit); after two updates, after arbitrary γ, β and statistics, and through a
/// source of stand-in tensors, the refolded model = the graph's `.saved` forward; bad values are
/// refused and change nothing.
public func refoldScenario(
    _ c: inout CheckContext, spec: ModelSpec, store: ParameterStore, arena: Arena, method: AdaptationMethod, seed: UInt64,
    label: String, kernels: Kernels = .best, mode: AdaptationMode = .frugal
) throws(LichenError) {
    var rng = SplitMix64(seed: seed &+ 7)
    let rows = 8
    let perSample = spec.inputShape.elementCount ?? 0
    var dims = [rows]
    dims.append(contentsOf: spec.inputShape.dimensions)
    let batch = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
    try batch.copy(from: rng.floats(rows * perSample, 0, 1))
    let probe = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
    try probe.copy(from: rng.floats(rows * perSample, 0, 1))
    let x0 = try probe.leadingRows(0, count: 1)
    let weightType = refoldWeightType(spec, store)
    let tolerance = refoldTolerance(weightType)

    let plain = try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena, kernels: kernels)
    let fused = try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena, kernels: kernels, refoldable: true)
    /// Every probe frame's output, concatenated.
    func outputs(_ model: InferenceModel) throws(LichenError) -> [Float] {
        var out: [Float] = []
        for r in 0..<rows { out += try model.forward(input: try probe.leadingRows(r, count: 1)).toArray() }
        return out
    }
    let loadTime = try outputs(plain)
    c.expect(try outputs(fused) == loadTime, label + ": a refoldable build computes what a plain build does")
    let running = try fused.refoldSource(runningStatisticsOf: store)
    try fused.refold(running)
    c.expect(try outputs(fused) == loadTime, label + ": refolding the running statistics gives the load-time model back bit for bit")

    // Two updates: the second step's forward saves statistics of the once-updated parameters.
    // Full mode (f32 models) trains the convolution and linear weights and biases too: the
    // refold then folds the trained weights, and unfolded layers are read in place.
    let session = try AdaptationSession(method: method, spec: spec, store: store, batchSize: rows, arena: arena, mode: mode,
                                        kernels: kernels)
    try session.graph.reserveSavedStatistics(arena: arena)
    _ = try session.step(batch: batch)
    _ = try session.step(batch: batch)
    let graph = session.graph
    try fused.refold(savedStatisticsOf: graph)
    try refoldCompare(&c, fused: fused, graph: graph, frames: probe, tolerance: tolerance, label: label + " after two updates")

    // Arbitrary γ (either sign), β and saved statistics.
    let norms = fused.refoldedNorms
    c.expect(!norms.isEmpty, label + ": the model folds some batch norm")
    for n in norms {
        let name = spec.layers[n.layer].name
        var gamma = rng.floats(n.channels, 0.3, 2)
        for k in 0..<n.channels where rng.next() % 3 == 0 { gamma[k] = -gamma[k] }
        try store.parameter(named: name + ".weight").value.copy(from: gamma)
        try store.parameter(named: name + ".bias").value.copy(from: rng.floats(n.channels, -0.5, 0.5))
        let saved = try graph.savedStatistics(layer: n.layer)
        try saved.mean.copy(from: rng.floats(n.channels, -0.5, 0.5))
        try saved.variance.copy(from: rng.floats(n.channels, 0.05, 3))
    }
    try fused.refold(savedStatisticsOf: graph)
    try refoldCompare(&c, fused: fused, graph: graph, frames: probe, tolerance: tolerance, label: label + " after arbitrary values")

    // Refused values leave the model as it was.
    let before = try fused.forward(input: x0).toArray()
    let first = norms[0], firstName = spec.layers[first.layer].name
    let variance = try graph.savedStatistics(layer: first.layer).variance
    let keptVariance = try variance.toArray()
    var bad = keptVariance
    bad[0] = -1
    try variance.copy(from: bad)
    c.expectThrows(.invalidModel(key: firstName + ".variance", value: floatText(-1), reason: "variance + epsilon must be > 0"),
                   label + ": negative variance") { () throws(LichenError) in try fused.refold(savedStatisticsOf: graph) }
    c.expect(try fused.forward(input: x0).toArray() == before, label + ": a refused refold changes nothing (variance)")
    try variance.copy(from: keptVariance)
    let beta = try store.parameter(named: spec.layers[norms[norms.count - 1].layer].name + ".bias").value
    let keptBeta = try beta.toArray()
    var nanBeta = keptBeta
    nanBeta[nanBeta.count - 1] = .nan
    try beta.copy(from: nanBeta)
    c.expectThrows(.invalidModel(key: spec.layers[norms[norms.count - 1].layer].name + ".bias", value: floatText(.nan), reason: "not finite"),
                   label + ": NaN beta in the last norm") { () throws(LichenError) in try fused.refold(savedStatisticsOf: graph) }
    c.expect(try fused.forward(input: x0).toArray() == before, label + ": a refused refold changes nothing (NaN, after earlier layers passed)")
    try beta.copy(from: keptBeta)
    if let q = norms.first(where: { $0.producer >= 0 && ((try? store.parameter(named: spec.layers[$0.producer].name + ".weight").value.type) ?? .f32) != .f32 }) {
        let name = spec.layers[q.layer].name
        let gamma = try store.parameter(named: name + ".weight").value
        let keptGamma = try gamma.toArray()
        var huge = keptGamma
        huge[0] = 1e9
        try gamma.copy(from: huge)
        let v = try graph.savedStatistics(layer: q.layer).variance.toArray()[0]
        let s = Float(Double(Float(1e9)) / (Double(v) + Double(spec.layers[q.layer].epsilon)).squareRoot())
        c.expectThrows(.invalidModel(key: name + ".weight", value: floatText(s), reason: "folded block scale overflows fp16"),
                       label + ": fp16 overflow") { () throws(LichenError) in try fused.refold(savedStatisticsOf: graph) }
        c.expect(try fused.forward(input: x0).toArray() == before, label + ": a refused refold changes nothing (fp16 overflow)")
        try gamma.copy(from: keptGamma)
    }
    try fused.refold(savedStatisticsOf: graph)
    c.expect(try fused.forward(input: x0).toArray() == before, label + ": the same values refold to the same model")

    // Stand-in tensors (a teacher's copies): the same values give the same bits; a change of
    // the stand-ins alone reaches the model.
    var copies: [(CheckMemory, CheckMemory)] = []
    for n in norms {
        let name = spec.layers[n.layer].name
        copies.append((CheckMemory.floats(try store.parameter(named: name + ".weight").value.toArray()),
                       CheckMemory.floats(try store.parameter(named: name + ".bias").value.toArray())))
    }
    var k = 0
    let standIn = try fused.refoldSource { (norm) throws(LichenError) in
        let saved = try graph.savedStatistics(layer: norm.layer)
        let v = RefoldValues(mean: saved.mean, variance: saved.variance, gamma: try copies[k].0.view(.f32, [norm.channels]),
                             beta: try copies[k].1.view(.f32, [norm.channels]))
        k += 1
        return v
    }
    try fused.refold(standIn)
    c.expect(try fused.forward(input: x0).toArray() == before, label + ": stand-ins holding the store's values refold to the same bits")
    let lastNorm = norms[norms.count - 1]
    for j in 0..<lastNorm.channels { copies[norms.count - 1].1.floats[j] += 0.25 }
    try fused.refold(standIn)
    let moved = try fused.forward(input: x0).toArray()
    c.expect(moved != before, label + ": a change of the stand-ins reaches the model")
    let lastBeta = try store.parameter(named: spec.layers[lastNorm.layer].name + ".bias").value
    try lastBeta.copy(from: try copies[norms.count - 1].1.view(.f32, [lastNorm.channels]))
    try fused.refold(savedStatisticsOf: graph)
    c.expect(try fused.forward(input: x0).toArray() == moved, label + ": and equals the store refold of the same values")
    try refoldCompare(&c, fused: fused, graph: graph, frames: probe, tolerance: tolerance, label: label + " after the stand-in change")
}

/// q8_0 / q4_0 when any conv or linear weight of `store` is quantized, else f32.
func refoldWeightType(_ spec: ModelSpec, _ store: ParameterStore) -> ElementType {
    for l in spec.layers where l.kind == .conv2d || l.kind == .conv1d || l.kind == .linear {
        if let p = try? store.parameter(named: l.name + ".weight"), p.value.type != .f32 { return p.value.type }
    }
    return .f32
}

/// The teacher pattern of CoTTA and RMT (`SharedWeightGraph`): a second store that adopts the
/// student's frozen parameters (the same tensors) and holds its own copies of γ, β, with its own
/// batch-statistics graph. Two fused models built from the student's store, one refolded from
/// each graph: the teacher's equals the teacher graph's `.saved` forward, and their logits'
/// sum equals the two graphs' sum (RMT's prediction) within the tolerance of the sum's range.
func refoldTeacherScenario(_ c: inout CheckContext, spec: ModelSpec, type: ElementType, seed: UInt64, label: String)
    throws(LichenError)
{
    let arena = try Arena(byteCount: 48 << 20)
    let student = try inferenceStore(spec, arena: arena, type: type, seed: seed)
    let teacher = ParameterStore(arena: arena)
    for i in 0..<student.count {
        let p = student[i]
        if p.role == .normWeight || p.role == .normBias {
            try teacher.add(name: p.name, role: p.role, copying: p.value, trainable: false)
        } else {
            try teacher.adopt(name: p.name, role: p.role, view: p.value, writable: false, trainable: false)
        }
    }
    let rows = 8
    let options = GraphOptions(batchNormMode: .batchStatistics)
    let studentGraph = try Graph(spec: spec, store: student, batchSize: rows, arena: arena, options: options)
    let teacherGraph = try Graph(spec: spec, store: teacher, batchSize: rows, arena: arena, options: options)
    try studentGraph.reserveSavedStatistics(arena: arena)
    try teacherGraph.reserveSavedStatistics(arena: arena)
    var rng = SplitMix64(seed: seed &+ 3)
    let perSample = spec.inputShape.elementCount ?? 0
    var dims = [rows]
    dims.append(contentsOf: spec.inputShape.dimensions)
    let batch = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
    try batch.copy(from: rng.floats(rows * perSample, 0, 1))
    let probe = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
    try probe.copy(from: rng.floats(rows * perSample, 0, 1))
    // The student moves; the teacher follows by an EMA (momentum 0.9); both save statistics.
    for i in 0..<student.count where student[i].role == .normWeight || student[i].role == .normBias {
        let s = try student[i].value.f32Elements("student")
        for k in 0..<s.count { s[k] += rng.nextFloat(-0.3, 0.3) }
        let t = try teacher.parameter(named: student[i].name).value.f32Elements("teacher")
        for k in 0..<t.count { t[k] = 0.9 * t[k] + 0.1 * s[k] }
    }
    _ = try studentGraph.forward(input: batch, statistics: .computedAndSaved)
    _ = try teacherGraph.forward(input: batch, statistics: .computedAndSaved)
    let fusedStudent = try InferenceModel(spec: spec, store: student, batchSize: 1, arena: arena, refoldable: true)
    let fusedTeacher = try InferenceModel(spec: spec, store: student, batchSize: 1, arena: arena, refoldable: true)
    try fusedStudent.refold(savedStatisticsOf: studentGraph)
    try fusedTeacher.refold(savedStatisticsOf: teacherGraph)
    let tolerance = refoldTolerance(type)
    try refoldCompare(&c, fused: fusedTeacher, graph: teacherGraph, frames: probe, tolerance: tolerance, label: label + " teacher")
    var worst: Float = 0, ok = true
    for r in 0..<rows {
        let x = try probe.leadingRows(r, count: 1)
        let zs = try studentGraph.forward(input: x, statistics: .saved).toArray()
        let zt = try teacherGraph.forward(input: x, statistics: .saved).toArray()
        let fs = try fusedStudent.forward(input: x).toArray()
        let ft = try fusedTeacher.forward(input: x).toArray()
        var lo = Float.infinity, hi = -Float.infinity, err: Float = 0
        for k in 0..<zs.count {
            let e = zs[k] + zt[k]
            lo = min(lo, e)
            hi = max(hi, e)
            err = max(err, abs(fs[k] + ft[k] - e))
        }
        if !(err <= tolerance * (hi - lo + 1)) { ok = false }
        worst = max(worst, err / (hi - lo + 1))
    }
    c.expect(ok, label + ": student + teacher fused logits vs the graphs' sum, max error / (range + 1) " + show(worst))
}
