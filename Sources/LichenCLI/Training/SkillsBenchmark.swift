import Foundation
import Lichen
import LichenSim

/// The PSEC benchmark of issue 13 item 7 on the point robot (research/methods.md §1.6), run by
/// `lichen skills bench`: a library (base π0 by behaviour cloning on mixed expert data, one LoRA
/// skill per behaviour), then per replicate a new task ("reach the goal while keeping clear of
/// hazards") from a few demonstrations, learned by every method and evaluated in the simulator on
/// the same worlds with the same sampler noise. Deterministic from the seed.
struct SkillsBenchmark {
    struct Settings {
        var seed: UInt64 = 1
        var replicates = 5
        var episodes = 20
        var demos = 10
        var transitions = 3000
        var baseSteps = 3000
        var skillSteps = 1000
        var alphaSteps = 1000
        var taskSteps = 1000
        var batch = 64
        var rank = 8
        var learningRate: Float = 1e-3
        var demoNoise = 0.1
        var maximumSteps = 200
    }

    /// One method's outcome: per replicate, the return, cost and arrival of every episode.
    struct MethodResult {
        var name: String
        var level: String
        var returns: [[Double]] = []
        var costs: [[Double]] = []
        var reached: [[Bool]] = []
        var trainLosses: [Double] = []
    }

    struct Outcome {
        var baseLoss: Float = .nan
        var skillLosses: [(String, Float)] = []
        var methods: [MethodResult] = []
        var fixedAlphas: [[Float]] = []
        var psecEpisodes: [Episode] = []
    }

    static let methodNames: [(String, String)] = [
        ("expert", "-"), ("base", "-"), ("psec", "parameter"), ("nsec", "noise"), ("asec", "action"), ("fixed-alpha", "parameter"),
        ("new-lora", "-"), ("scratch", "-"),
    ]
    static let behaviours: [Expert] = [.reach, .avoid, .heading]
    /// Divisors that bring every observation value near [−1, 1]: positions and offsets / 5, velocities / 2.
    static let stateScale: [Float] = [5, 5, 2, 2, 5, 5, 5, 5, 5, 5]

    let settings: Settings
    let configuration: PointWorldConfiguration
    let shape: DiffusionPolicyShape
    let arena: Arena
    let progress: (String) -> Void

    init(settings: Settings, progress: @escaping (String) -> Void) throws {
        self.settings = settings
        var c = PointWorldConfiguration()
        c.maximumSteps = settings.maximumSteps
        configuration = c
        shape = DiffusionPolicyShape.small(actionCount: 2, stateCount: c.observationCount)
        arena = try naming("arena") { () throws(LichenError) in try Arena(byteCount: 2 << 30) }
        self.progress = progress
    }

    static func normalized(_ o: [Float]) -> [Float] {
        o.enumerated().map { $0.element / (($0.offset < stateScale.count) ? stateScale[$0.offset] : 5) }
    }

    static func demonstrations(_ transitions: [Transition], shape: DiffusionPolicyShape) throws -> Demonstrations {
        var s: [Float] = [], a: [Float] = []
        s.reserveCapacity(transitions.count * shape.stateCount)
        for t in transitions {
            s += normalized(t.state)
            a += t.action
        }
        return try naming("demonstrations") { () throws(LichenError) in
            try Demonstrations(states: s, actions: a, stateCount: shape.stateCount, actionCount: shape.actionCount)
        }
    }

    /// A frozen copy of a trained skill (composition never trains or touches the skill it was given).
    func frozenCopy(_ skill: LoRAAdapter) throws(LichenError) -> LoRAAdapter {
        let copy = try LoRAAdapter(name: skill.name, base: skill.base, alpha: skill.alpha, shapes: skill.targets.map(\.shape), arena: arena)
        for (t, s) in zip(copy.targets, skill.targets) {
            try t.a.copy(from: s.a)
            try t.b.copy(from: s.b)
        }
        return copy
    }

    func run() throws -> Outcome {
        var out = Outcome()
        let s = settings, lr = s.learningRate
        let graphBatch = max(s.batch, s.episodes)
        // The library.
        var datasets: [Demonstrations] = []
        var mixedTransitions: [Transition] = []
        for (i, e) in Self.behaviours.enumerated() {
            let d = PointDatasets.dataset(e, count: s.transitions, noise: s.demoNoise, seed: s.seed &* 7919 &+ UInt64(i) &+ 11, configuration: configuration)
            datasets.append(try Self.demonstrations(d.transitions, shape: shape))
            mixedTransitions += d.transitions
        }
        let mixed = try Self.demonstrations(mixedTransitions, shape: shape)
        let base = try naming("base policy") { () throws(LichenError) in
            try DiffusionPolicy(shape: shape, batchSize: graphBatch, seed: s.seed, arena: arena, trainAdapters: true)
        }
        let trainer = try naming("trainer") { () throws(LichenError) in
            try DiffusionTrainer(shape: shape, batchSize: s.batch, skillCount: Self.behaviours.count, seed: s.seed ^ 0x7A1, arena: arena)
        }
        progress("base policy: \(s.baseSteps) steps on \(mixed.count) mixed transitions")
        out.baseLoss = try naming("base policy") { () throws(LichenError) in
            try trainer.trainPolicy(base, data: mixed, steps: s.baseSteps, learningRate: lr, arena: arena)
        }
        base.store.freezeAll()
        let identity = try naming("base policy") { () throws(LichenError) in try AdapterBase(name: "psec-bench", store: base.store) }
        var skills: [LoRAAdapter] = []
        for (i, e) in Self.behaviours.enumerated() {
            progress("skill \(e.rawValue): \(s.skillSteps) steps on \(datasets[i].count) transitions")
            let (skill, loss) = try naming("skill " + e.rawValue) { () throws(LichenError) -> (LoRAAdapter, Float) in
                let trained = try SkillExpansion.newSkill(name: e.rawValue, policy: base, base: identity, rank: s.rank, alpha: Float(2 * s.rank),
                                                          seed: s.seed &+ 101 &+ UInt64(i), arena: arena)
                let set = try AdapterSet(members: [AdapterSet.Member(trained)], graph: base.graph, base: identity, arena: arena)
                let loss = try trainer.trainSkill(trained, set: set, policy: base, data: datasets[i], steps: s.skillSteps, learningRate: lr, arena: arena)
                try base.graph.setAdapters(nil)
                return (try self.frozenCopy(trained), loss)
            }
            skills.append(skill)
            out.skillLosses.append((e.rawValue, loss))
        }
        out.methods = Self.methodNames.map { MethodResult(name: $0.0, level: $0.1) }
        // Buffers of the rollouts.
        let (statesView, noiseView, actionsView) = try naming("rollout buffers") { () throws(LichenError) in
            (try arena.persistentTensor(.f32, try Shape(s.episodes, shape.stateCount)),
             try arena.persistentTensor(.f32, try Shape(shape.stepCount, s.episodes, shape.actionCount)),
             try arena.persistentTensor(.f32, try Shape(s.episodes, shape.actionCount)))
        }
        for rep in 0..<s.replicates {
            let repSeed = s.seed &* 1_000_003 &+ UInt64(rep + 1) &* 7_777_777
            progress("replicate \(rep + 1) of \(s.replicates): \(s.demos) demonstrations")
            var random = SimRandom(seed: repSeed)
            var demoTransitions: [Transition] = []
            for _ in 0..<s.demos {
                _ = PointDatasets.episode(.reachAvoid, configuration: configuration, noise: s.demoNoise, random: &random, into: &demoTransitions)
            }
            let demo = try Self.demonstrations(demoTransitions, shape: shape)
            let task = try naming("trainer") { () throws(LichenError) in
                try DiffusionTrainer(shape: shape, batchSize: s.batch, skillCount: skills.count, seed: repSeed ^ 0x7A5C, arena: arena)
            }
            var losses: [String: Float] = [:]
            let built = try naming("new task") { () throws(LichenError) in
                try self.learnTask(demo: demo, trainer: task, base: base, identity: identity, skills: skills, repSeed: repSeed, losses: &losses)
            }
            out.fixedAlphas.append(built.fixedAlpha)
            let evalSeed = repSeed ^ 0xE7A1, noiseSeed = repSeed ^ 0x0015E
            for (m, (name, _)) in Self.methodNames.enumerated() {
                var expertRandom = SimRandom(seed: repSeed ^ 0xE4)
                let act: ([PointWorld]) throws(LichenError) -> Void = { (worlds) throws(LichenError) in
                    switch name {
                    case "expert":
                        let a = try actionsView.f32Elements("actions")
                        for (e, w) in worlds.enumerated() {
                            let (ax, ay) = Expert.reachAvoid.action(w, heading: 0, noise: s.demoNoise, random: &expertRandom)
                            a[2 * e] = Float(ax)
                            a[2 * e + 1] = Float(ay)
                        }
                    case "base":
                        try base.graph.setAdapters(nil)
                        try base.sample(states: statesView, noise: noiseView, into: actionsView)
                    case "psec": try built.psec.sample(states: statesView, noise: noiseView, level: .parameter, into: actionsView)
                    case "nsec": try built.nsec.sample(states: statesView, noise: noiseView, level: .noise, into: actionsView)
                    case "asec": try built.asec.sample(states: statesView, noise: noiseView, level: .action, into: actionsView)
                    case "fixed-alpha": try built.fixed.sample(states: statesView, noise: noiseView, level: .parameter, into: actionsView)
                    case "new-lora":
                        try base.graph.setAdapters(built.loraSet)
                        try base.sample(states: statesView, noise: noiseView, into: actionsView)
                    default:
                        try built.scratch.sample(states: statesView, noise: noiseView, into: actionsView)
                    }
                }
                let episodes = try rollout(evalSeed: evalSeed, noiseSeed: noiseSeed, states: statesView, noise: noiseView, actions: actionsView, act: act)
                try naming("rollout") { () throws(LichenError) in try base.graph.setAdapters(nil) }
                out.methods[m].returns.append(episodes.map(\.totalReward))
                out.methods[m].costs.append(episodes.map(\.totalCost))
                out.methods[m].reached.append(episodes.map(\.reached))
                out.methods[m].trainLosses.append(Double(losses[name] ?? .nan))
                if rep == 0 && name == "psec" { out.psecEpisodes = episodes }
            }
        }
        return out
    }

    struct TaskModels {
        var psec: SkillComposition
        var nsec: SkillComposition
        var asec: SkillComposition
        var fixed: SkillComposition
        var fixedAlpha: [Float]
        var loraSet: AdapterSet
        var scratch: DiffusionPolicy
    }

    /// Every method's learning on the new task's demonstrations.
    func learnTask(demo: Demonstrations, trainer: DiffusionTrainer, base: DiffusionPolicy, identity: AdapterBase, skills: [LoRAAdapter],
                   repSeed: UInt64, losses: inout [String: Float]) throws(LichenError) -> TaskModels {
        let s = settings, lr = s.learningRate, graphBatch = max(s.batch, s.episodes)
        func composition(_ mode: SkillComposition.Mode = .contextAware) throws(LichenError) -> SkillComposition {
            // The same θ initialisation for every level.
            try SkillComposition(policy: base, skills: skills, base: identity, hidden: [64, 64], seed: repSeed ^ 0xA1, arena: arena, mode: mode)
        }
        progress("  psec: alpha(s) at the parameter level, \(s.alphaSteps) steps")
        let psec = try composition()
        losses["psec"] = try trainer.trainComposition(psec, level: .parameter, data: demo, steps: s.alphaSteps, learningRate: lr, arena: arena)
        progress("  nsec: alpha(s) at the noise level, \(s.alphaSteps) steps")
        let nsec = try composition()
        losses["nsec"] = try trainer.trainComposition(nsec, level: .noise, data: demo, steps: s.alphaSteps, learningRate: lr, arena: arena)
        progress("  asec: alpha(s) at the action level, \(s.alphaSteps) steps")
        let asec = try composition()
        losses["asec"] = try trainer.trainComposition(asec, level: .action, data: demo, steps: s.alphaSteps, learningRate: lr, arena: arena)
        // Fixed α: the grid {0, 0.5, 1}^k, picked by the composed policy's denoising loss on the demonstrations.
        progress("  fixed alpha: grid search")
        let fixed = try composition(.fixed([Float](repeating: 1, count: skills.count)))
        var best: [Float] = [], bestLoss = Float.infinity
        let grid: [Float] = [0, 0.5, 1]
        var total = 1
        for _ in 0..<skills.count { total *= grid.count }
        for code in 0..<total {
            var alpha: [Float] = [], c = code
            for _ in 0..<skills.count {
                alpha.append(grid[c % grid.count])
                c /= grid.count
            }
            try fixed.setMode(.fixed(alpha))
            let l = try trainer.evaluate(demo, batches: 8, seed: repSeed ^ 0x6121) { () throws(LichenError) -> Float in
                try trainer.compositionLoss(fixed, level: .parameter, backward: false)
            }
            if l < bestLoss {
                bestLoss = l
                best = alpha
            }
        }
        try fixed.setMode(.fixed(best))
        losses["fixed-alpha"] = bestLoss
        progress("  new LoRA: \(s.taskSteps) steps")
        let lora = try SkillExpansion.newSkill(name: "reach-avoid", policy: base, base: identity, rank: s.rank, alpha: Float(2 * s.rank),
                                               seed: repSeed ^ 0x10CA, arena: arena)
        let loraSet = try AdapterSet(members: [AdapterSet.Member(lora)], graph: base.graph, base: identity, arena: arena)
        losses["new-lora"] = try trainer.trainSkill(lora, set: loraSet, policy: base, data: demo, steps: s.taskSteps, learningRate: lr, arena: arena)
        try base.graph.setAdapters(nil)
        progress("  scratch: the whole network, \(s.taskSteps) steps")
        let scratch = try DiffusionPolicy(shape: shape, batchSize: graphBatch, seed: repSeed ^ 0x5C7A, arena: arena)
        losses["scratch"] = try trainer.trainPolicy(scratch, data: demo, steps: s.taskSteps, learningRate: lr, arena: arena)
        losses["base"] = try trainer.evaluate(demo, batches: 8, seed: repSeed ^ 0x6121) { () throws(LichenError) -> Float in
            try base.denoisingLoss(actions: trainer.actions, states: trainer.states, epsilon: trainer.epsilon, steps: trainer.steps, backward: false)
        }
        return TaskModels(psec: psec, nsec: nsec, asec: asec, fixed: fixed, fixedAlpha: best, loraSet: loraSet, scratch: scratch)
    }

    /// Runs `episodes` worlds (drawn from `evalSeed`) side by side: each step, every world's
    /// normalised observation goes into `states`, fresh standard normals (from `noiseSeed`) into
    /// `noise`, `act` writes `actions`, and every world not yet done takes its action.
    func rollout(evalSeed: UInt64, noiseSeed: UInt64, states: TensorView, noise: TensorView, actions: TensorView,
                 act: ([PointWorld]) throws(LichenError) -> Void) throws -> [Episode] {
        let n = settings.episodes, sc = shape.stateCount
        var random = SimRandom(seed: evalSeed)
        var worlds = (0..<n).map { _ in PointWorld(configuration: configuration, random: &random) }
        var paths = worlds.map { [($0.x, $0.y)] }
        var reward = [Double](repeating: 0, count: n), cost = [Double](repeating: 0, count: n)
        var normals = NormalSource(seed: noiseSeed)
        try naming("rollout") { () throws(LichenError) in
            let sv = try states.f32Elements("states"), zv = try noise.f32Elements("noise"), av = try actions.f32Elements("actions")
            while worlds.contains(where: { !$0.isDone }) {
                for (e, w) in worlds.enumerated() {
                    let o = Self.normalized(w.observation)
                    for j in 0..<sc { sv[e * sc + j] = o[j] }
                }
                normals.fill(zv)
                try act(worlds)
                for e in 0..<n where !worlds[e].isDone {
                    let (r, c) = worlds[e].step(Double(av[2 * e]), Double(av[2 * e + 1]))
                    reward[e] += r
                    cost[e] += c
                    paths[e].append((worlds[e].x, worlds[e].y))
                }
            }
        }
        return (0..<n).map { Episode(world: worlds[$0], path: paths[$0], totalReward: reward[$0], totalCost: cost[$0], reached: worlds[$0].reachedGoal) }
    }
}
