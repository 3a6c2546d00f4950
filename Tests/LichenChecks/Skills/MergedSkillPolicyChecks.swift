import Lichen

/// A small diffusion policy with `count` random skills (B drawn in [-0.5, 0.5], so each skill
/// changes the policy) composed by a context-aware module of one hidden layer of `hidden`
/// units; `seed` seeds the policy, then seed + 1 the skills' values, seed + 2... their A, and
/// seed + 6 the module.
func composedSkillPolicy(blocks: Int, batchSize: Int, count: Int, hidden: Int, seed: UInt64, name: String, arena: Arena)
    throws(LichenError) -> (policy: DiffusionPolicy, composition: SkillComposition, shape: DiffusionPolicyShape, random: SplitMix64)
{
    let shape = DiffusionPolicyShape(actionCount: 2, stateCount: 3, timeFeatures: 4, conditionWidth: 8, hidden: 8, blockInner: 16, blockCount: blocks)
    let policy = try DiffusionPolicy(shape: shape, batchSize: batchSize, seed: seed, arena: arena, trainAdapters: true)
    let base = try AdapterBase(name: name, store: policy.store)
    var rng = SplitMix64(seed: seed + 1)
    var skills: [LoRAAdapter] = []
    for i in 0..<count {
        let s = try SkillExpansion.newSkill(name: "s" + String(i), policy: policy, base: base, rank: 2, alpha: 4, seed: seed + 2 + UInt64(i), arena: arena)
        for t in s.targets { try t.b.copy(from: rng.floats(t.b.elementCount, -0.5, 0.5)) }
        skills.append(s)
    }
    let composition = try SkillComposition(policy: policy, skills: skills, base: base, hidden: [hidden], seed: seed + 6, arena: arena)
    return (policy, composition, shape, rng)
}

/// Checks of the merged control step, the trainer's noise-level α gradient and the normal source.
let mergedSkillPolicyChecks: [Check] = [
    Check("Skills/MergedSkillPolicy", "a merged control step (context-aware and fixed α) gives the factored path's actions; N candidates of one state equal N factored rows") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 32 << 20)
            let (policy, composition, _, random) = try composedSkillPolicy(blocks: 2, batchSize: 4, count: 3, hidden: 6, seed: 41,
                                                                            name: "merged-check", arena: arena)
            var rng = random
            let n = 3
            let merged = try MergedSkillPolicy(composition: composition, candidates: n, arena: arena)
            let state = rng.floats(3)
            let one = CheckMemory.floats(state), rows = CheckMemory.floats(state + state + state)
            let noise = CheckMemory.floats(rng.floats(5 * n * 2, -2, 2))
            let a = CheckMemory.of(.f32, n * 2), b = CheckMemory.of(.f32, n * 2)
            defer { withExtendedLifetime((one, rows, noise, a, b)) {} }
            for mode in [SkillComposition.Mode.contextAware, .fixed([0.7, -0.4, 1.3])] {
                try composition.setMode(mode)
                try composition.sample(states: try rows.view(.f32, [n, 3]), noise: try noise.view(.f32, [5, n, 2]), level: .parameter,
                                       into: try a.view(.f32, [n, 2]))
                try merged.step(state: try one.view(.f32, [1, 3]), noise: try noise.view(.f32, [5, n, 2]), into: try b.view(.f32, [n, 2]))
                var diff: Float = 0
                for i in 0..<(n * 2) { diff = max(diff, abs(a.floats[i] - b.floats[i])) }
                c.expect(diff <= 1e-4, "merged vs factored actions differ by " + show(diff))
            }
            try policy.graph.setAdapters(nil)
        }
    },
    Check("Skills/DiffusionTrainer", "noise-level dL/dθ matches finite differences; the standard normals have mean 0 and variance 1") { c in
        checking(&c) { c throws(LichenError) in
            var normals = NormalSource(seed: 3)
            var sum = 0.0, squares = 0.0
            let count = 20000
            for _ in 0..<count {
                let v = Double(normals.next())
                sum += v
                squares += v * v
            }
            let mean = sum / Double(count), variance = squares / Double(count) - mean * mean
            c.expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05, "normals: mean " + show(Float(mean)) + ", variance " + show(Float(variance)))
            let arena = try Arena(byteCount: 32 << 20)
            let (policy, composition, shape, random) = try composedSkillPolicy(blocks: 1, batchSize: 6, count: 2, hidden: 5, seed: 51,
                                                                                name: "trainer-check", arena: arena)
            var rng = random
            let data = try Demonstrations(states: rng.floats(20 * 3), actions: rng.floats(20 * 2, -0.9, 0.9), stateCount: 3, actionCount: 2)
            let trainer = try DiffusionTrainer(shape: shape, batchSize: 6, skillCount: 2, seed: 56, arena: arena)
            try trainer.drawBatch(from: data)
            try composition.module.store.zeroGradients()
            _ = try trainer.compositionLoss(composition, level: .noise, backward: true)
            let h: Float = 2e-3
            var compared = 0
            for p in try composition.module.trainableParameters() {
                let g = try p.gradient.toArray()
                for j in graphSampleIndices(p.value.elementCount, 4, &rng) {
                    let numeric = try centralDifference(p.value, j, h: h) { () throws(LichenError) -> Float in
                        try trainer.compositionLoss(composition, level: .noise, backward: false)
                    }
                    c.expectClose(g[j], numeric, absolute: 3e-3, relative: 3e-2, "noise-level dL/dθ sample " + String(compared))
                    compared += 1
                }
            }
            c.expect(compared >= 12, "compared " + String(compared) + " θ elements")
            let first = try trainer.evaluate(data, batches: 4, seed: 9) { () throws(LichenError) -> Float in
                try trainer.compositionLoss(composition, level: .noise, backward: false)
            }
            _ = try trainer.trainComposition(composition, level: .noise, data: data, steps: 150, learningRate: 1e-2, arena: arena)
            let last = try trainer.evaluate(data, batches: 4, seed: 9) { () throws(LichenError) -> Float in
                try trainer.compositionLoss(composition, level: .noise, backward: false)
            }
            c.expect(last < first, "150 noise-level steps: loss " + show(first) + " -> " + show(last))
            try policy.graph.setAdapters(nil)
        }
    },
]
