import ArgumentParser
import Foundation
import Lichen
import LichenSim

/// `lichen bench skills`: one PSEC control step of the paper-size diffusion policy, merged and
/// factored, against the same network without skills; the α(s) training step.
struct SkillsSpeedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skills",
        abstract: "One PSEC control step (paper-size diffusion policy, T = 5, k skills) p50 / p99, merged and factored; the alpha(s) training step.",
        discussion: """
            The policy is PSEC's IDQL noise predictor at the paper's size (time embedding 64, condition 128, \
            hidden 256, 3 residual blocks of 1024, T = 5) for the point robot (state 10, action 2), seeded \
            weights; k LoRA skills (rank r, alpha 2r, seeded A and B) on every Dense layer; the context-aware \
            module alpha(s) is an MLP 256-256 with a linear head of k outputs.

            One control step = alpha(s) for one state, then the DDPM sampler (T network passes) for N candidate \
            actions of that state. Factored: the skills stay apart and every pass adds \
            sum_i alpha_i s_i B_i (A_i x) per sample (the training graph of the composition, per-sample \
            weights). Merged: every Dense weight of an inference copy is set to W0 + sum_i alpha_i s_i B_i A_i \
            (one GEMM per skill and layer), then T plain passes. Plain: the same network without skills \
            (inference graph): a whole control step (T passes) and one network pass. The four are timed \
            round-robin, one call each per round, until --seconds have passed; p50 / p99 are per call. \
            The alpha(s) training step is one Adam step of the module on the composed policy's denoising \
            loss (forward and backward through the whole policy, base and skills frozen) at --train-batch. \
            Single-threaded (serial BLIS). Use the release build.
            """
    )

    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: ArgumentHelp("Minimum seconds of control steps timed.", valueName: "seconds"))
    var seconds: Double = 2
    @Option(name: .long, help: ArgumentHelp("k: skills composed.", valueName: "k"))
    var skills = 3
    @Option(name: .long, help: ArgumentHelp("LoRA rank of every skill.", valueName: "r"))
    var rank = 8
    @Option(name: .long, help: ArgumentHelp("N: candidate actions per control step.", valueName: "N"))
    var candidates = 1
    @Option(name: .long, help: ArgumentHelp("Batch of the alpha(s) training step.", valueName: "B"))
    var trainBatch = 256
    @Option(name: .long, help: ArgumentHelp("alpha(s) training steps timed.", valueName: "n"))
    var trainSteps = 20
    @Option(name: .long, help: ArgumentHelp("Seed of weights, skills, states and noise.", valueName: "n"))
    var seed: UInt64 = 1

    func validate() throws {
        guard seconds > 0 && seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600]") }
        guard (1...16).contains(skills) else { throw ValidationError("--skills must be in 1...16") }
        guard (1...64).contains(rank) else { throw ValidationError("--rank must be in 1...64") }
        guard (1...256).contains(candidates) else { throw ValidationError("--candidates must be in 1...256") }
        guard (1...4096).contains(trainBatch) else { throw ValidationError("--train-batch must be in 1...4096") }
        guard (1...100_000).contains(trainSteps) else { throw ValidationError("--train-steps must be in 1...100000") }
    }

    func run() throws {
        #if DEBUG
        log("warning: this is a debug build; benchmark figures need `swift build -c release`")
        #endif
        let r = try naming("skills bench") { () throws(LichenError) in try measure() }
        let rss = processRSS()
        let timings: [(String, String, [Int])] = [
            ("factored", "control step, skills factored (per-sample path)", r.factored),
            ("merged", "control step, skills merged into the weights", r.merged),
            ("plain_step", "control step of the same network without skills", r.plainStep),
            ("plain_forward", "one network pass without skills", r.plainForward),
            ("alpha_forward", "alpha(s) forward for one state", r.alphaForward),
            ("merge", "merging k skills into every Dense weight", r.merge),
        ]
        func ms(_ ns: Int) -> Double { Double(ns) / 1e6 }
        if global.json {
            var fields: [(String, JSON)] = [
                ("benchmark", .string("skills")), ("build", .string(CuesCommand.buildConfiguration)), ("threads", .int(1)),
                ("isa", .string(Lichen.Kernels.best.isaName)),
                ("policy", .object([("size", .string("paper")), ("state", .int(r.shape.stateCount)), ("action", .int(r.shape.actionCount)),
                                    ("hidden", .int(r.shape.hidden)), ("block_inner", .int(r.shape.blockInner)), ("blocks", .int(r.shape.blockCount)),
                                    ("condition", .int(r.shape.conditionWidth)), ("time_features", .int(2 * r.shape.timeFeatures)),
                                    ("diffusion_steps", .int(r.shape.stepCount)), ("parameters", .int(r.parameterCount))])),
                ("skills", .int(skills)), ("rank", .int(rank)), ("candidates", .int(candidates)), ("alpha_hidden", .array([.int(256), .int(256)])),
                ("seed", .int(Int(seed))), ("rounds", .int(r.factored.count)),
            ]
            for (key, _, samples) in timings {
                let sorted = samples.sorted()
                fields.append((key, .object([("p50_ms", .number(ms(quantile(sorted, 0.5)))), ("p99_ms", .number(ms(quantile(sorted, 0.99)))),
                                             ("calls", .int(sorted.count))])))
            }
            let train = r.train.sorted()
            fields += [
                ("alpha_train_step", .object([("batch", .int(trainBatch)), ("p50_ms", .number(ms(quantile(train, 0.5)))),
                                              ("p99_ms", .number(ms(quantile(train, 0.99)))), ("calls", .int(train.count))])),
                ("max_abs_diff_merged_vs_factored", .number(Double(r.maxDiff))),
                ("skill_bytes", .array(r.skillBytes.map { JSON.int($0) })),
                ("merged_copy_planned_bytes", .int(r.mergedPlannedBytes)),
                ("process_rss_bytes", .int(rss.current)), ("process_peak_rss_bytes", .int(rss.peak)),
            ]
            print(JSON.object(fields).rendered())
        } else {
            var table = Table(["measurement", "p50 (ms)", "p99 (ms)", "calls"], rightAligned: [1, 2, 3])
            for (_, label, samples) in timings {
                let sorted = samples.sorted()
                table.add([label, fixed(ms(quantile(sorted, 0.5)), 4), fixed(ms(quantile(sorted, 0.99)), 4), String(sorted.count)])
            }
            let train = r.train.sorted()
            table.add(["alpha(s) training step, batch \(trainBatch)", fixed(ms(quantile(train, 0.5)), 3), fixed(ms(quantile(train, 0.99)), 3),
                       String(train.count)])
            print(table.rendered())
            print("")
            print("paper-size diffusion policy (\(r.parameterCount) parameters, T = \(r.shape.stepCount)), k = \(skills) skills of rank \(rank), "
                  + "N = \(candidates) candidate(s), alpha(s) MLP 256-256; \(CuesCommand.buildConfiguration) build, 1 thread, isa \(Lichen.Kernels.best.isaName); "
                  + "max |merged - factored| action difference \(r.maxDiff); skill bytes \(r.skillBytes.map(String.init).joined(separator: ", ")); "
                  + "peak RSS \(rss.peak >> 20) MiB")
        }
    }

    struct Result {
        var shape: DiffusionPolicyShape
        var parameterCount = 0
        var factored: [Int] = [], merged: [Int] = [], plainStep: [Int] = [], plainForward: [Int] = [], alphaForward: [Int] = []
        var merge: [Int] = [], train: [Int] = []
        var maxDiff: Float = 0
        var skillBytes: [Int] = []
        var mergedPlannedBytes = 0
    }

    func measure() throws(LichenError) -> Result {
        let observation = PointWorldConfiguration().observationCount
        let shape = DiffusionPolicyShape.paper(actionCount: 2, stateCount: observation)
        var out = Result(shape: shape)
        let arena = try Arena(byteCount: 1 << 30)
        let policy = try DiffusionPolicy(shape: shape, batchSize: trainBatch, seed: seed, arena: arena, trainAdapters: true)
        for i in 0..<policy.store.count { out.parameterCount += policy.store[i].value.elementCount }
        let base = try AdapterBase(name: "skills-bench", store: policy.store)
        var normals = NormalSource(seed: seed ^ 0x5EED)
        var library: [LoRAAdapter] = []
        var shapes: [LoRATargetShape] = []
        for name in DiffusionPolicy.denseLayerNames(shape) {
            let w = try policy.store.parameter(named: name + ".weight").value
            shapes.append(LoRATargetShape(weightName: name + ".weight", rank: min(rank, w.shape[0], w.shape[1]), inputCount: w.shape[1],
                                          outputCount: w.shape[0]))
        }
        for i in 0..<skills {
            // Frozen skills (as composed skills are): A uniform ±1/√d_in, B small normals.
            let s = try LoRAAdapter(name: "skill\(i)", base: base, alpha: Float(2 * rank), shapes: shapes, arena: arena)
            for t in s.targets {
                let a = try t.a.f32Elements("lora_a"), b = try t.b.f32Elements("lora_b")
                let bound = 1 / Float(t.shape.inputCount).squareRoot()
                for j in 0..<a.count { a[j] = bound * Float(2 * normals.unit() - 1) }
                for j in 0..<b.count { b[j] = 0.02 * normals.next() }
            }
            library.append(s)
            out.skillBytes.append(s.byteCount)
        }
        let composition = try SkillComposition(policy: policy, skills: library, base: base, hidden: [256, 256], seed: seed ^ 0xA1FA,
                                               arena: arena)
        let merged = try MergedSkillPolicy(composition: composition, candidates: candidates, arena: arena)
        out.mergedPlannedBytes = merged.policy.graph.plannedBytes
        let plain = try DiffusionPolicy(copying: policy, batchSize: candidates, arena: arena)
        let steps = shape.stepCount, act = shape.actionCount
        let state = try arena.persistentTensor(.f32, try Shape(1, observation))
        let states = try arena.persistentTensor(.f32, try Shape(candidates, observation))
        let noise = try arena.persistentTensor(.f32, try Shape(steps, candidates, act))
        let actionsF = try arena.persistentTensor(.f32, try Shape(candidates, act))
        let actionsM = try arena.persistentTensor(.f32, try Shape(candidates, act))
        let actionsP = try arena.persistentTensor(.f32, try Shape(candidates, act))
        let stagedInput = try arena.persistentTensor(.f32, try Shape(1, shape.inputCount))
        normals.fill(try noise.f32Elements("noise"))
        normals.fill(try stagedInput.f32Elements("input"))
        func newState() throws(LichenError) {
            let s = try state.f32Elements("state"), rows = try states.f32Elements("states")
            for j in 0..<observation { s[j] = normals.next() }
            for r in 0..<candidates { for j in 0..<observation { rows[r * observation + j] = s[j] } }
        }
        try newState()
        // Agreement of the two paths on the same state and noise.
        try composition.sample(states: states, noise: noise, level: .parameter, into: actionsF)
        try merged.step(state: state, noise: noise, into: actionsM)
        let f = try actionsF.f32Elements("factored"), m = try actionsM.f32Elements("merged")
        for i in 0..<f.count { out.maxDiff = max(out.maxDiff, abs(f[i] - m[i])) }
        func timed(_ body: () throws(LichenError) -> Void) throws(LichenError) -> Int {
            let t0 = nowNanoseconds()
            try body()
            return nowNanoseconds() - t0
        }
        // Warm-up, then round-robin rounds.
        let alphaOut = try arena.persistentTensor(.f32, try Shape(skills))
        for _ in 0..<3 {
            try composition.sample(states: states, noise: noise, level: .parameter, into: actionsF)
            try merged.step(state: state, noise: noise, into: actionsM)
            try plain.sample(states: states, noise: noise, into: actionsP)
        }
        let start = nowNanoseconds()
        while out.factored.count < 20 || Double(nowNanoseconds() - start) < seconds * 1e9 {
            try newState()
            out.factored.append(try timed { () throws(LichenError) in
                try composition.sample(states: states, noise: noise, level: .parameter, into: actionsF)
            })
            out.merged.append(try timed { () throws(LichenError) in try merged.step(state: state, noise: noise, into: actionsM) })
            out.plainStep.append(try timed { () throws(LichenError) in try plain.sample(states: states, noise: noise, into: actionsP) })
            out.plainForward.append(try timed { () throws(LichenError) in _ = try plain.graph.forward(input: stagedInput) })
            out.alphaForward.append(try timed { () throws(LichenError) in
                try alphaOut.copy(from: try composition.module.forward(states: state).reshaped(try Shape(skills)))
            })
            out.merge.append(try timed { () throws(LichenError) in try merged.merge(alpha: alphaOut) })
            if out.factored.count >= 100_000 { break }
        }
        // The α(s) training step at --train-batch.
        let trainer = try DiffusionTrainer(shape: shape, batchSize: trainBatch, seed: seed ^ 0x7EA1, arena: arena)
        var rows: [Float] = [], acts: [Float] = []
        for _ in 0..<(4 * trainBatch) {
            for _ in 0..<observation { rows.append(normals.next()) }
            for _ in 0..<act { acts.append(max(-1, min(1, 0.5 * normals.next()))) }
        }
        let data = try Demonstrations(states: rows, actions: acts, stateCount: observation, actionCount: act)
        let adam = try Adam(parameters: try composition.module.trainableParameters(), groups: [Adam.Group(learningRate: 1e-4)], arena: arena)
        try composition.setMode(.contextAware)
        for i in 0..<(trainSteps + 2) {
            try trainer.drawBatch(from: data)
            let dt = try timed { () throws(LichenError) in
                try composition.module.store.zeroGradients()
                _ = try composition.loss(actions: trainer.actions, states: trainer.states, epsilon: trainer.epsilon, steps: trainer.steps,
                                         backward: true)
                try adam.step()
            }
            if i >= 2 { out.train.append(dt) }
        }
        try policy.graph.setAdapters(nil)
        return out
    }
}
