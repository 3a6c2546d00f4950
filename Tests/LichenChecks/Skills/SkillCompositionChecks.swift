import Lichen

/// Checks of `SkillComposition`: the context-aware module's θ gradients against finite
/// differences of the composed diffusion policy's loss, base and skills bit-identical after
/// training θ, the loss falling, and the fixed mode equal to a plain set with those scales.
let skillCompositionChecks: [Check] = [
    Check("Skills/SkillComposition", "θ gradients through the composed diffusion policy match finite differences; 100 Adam steps on θ lower the loss and leave base and skills bit-identical; fixed α equals a plain set scaled by α") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 32 << 20)
            let shape = DiffusionPolicyShape(actionCount: 2, stateCount: 3, timeFeatures: 4, conditionWidth: 8, hidden: 8, blockInner: 16, blockCount: 1)
            let n = 6
            let policy = try DiffusionPolicy(shape: shape, batchSize: n, seed: 9, arena: arena, trainAdapters: true)
            let base = try AdapterBase(name: "composition-check", store: policy.store)
            var rng = SplitMix64(seed: 10)
            var skills: [LoRAAdapter] = []
            for i in 0..<3 {
                var shapes: [LoRATargetShape] = []
                for name in DiffusionPolicy.denseLayerNames(shape) {
                    let w = try policy.store.parameter(named: name + ".weight").value
                    shapes.append(LoRATargetShape(weightName: name + ".weight", rank: min(2, w.shape[0], w.shape[1]),
                                                  inputCount: w.shape[1], outputCount: w.shape[0]))
                }
                let s = try LoRAAdapter(name: "skill\(i)", base: base, alpha: 2, shapes: shapes, arena: arena)
                for t in s.targets {
                    try t.a.copy(from: rng.floats(t.a.elementCount, -0.5, 0.5))
                    try t.b.copy(from: rng.floats(t.b.elementCount, -0.5, 0.5))
                }
                skills.append(s)
            }
            func frozenBits() throws(LichenError) -> [UInt32] {
                var out: [UInt32] = []
                for i in 0..<policy.store.count { for v in try policy.store[i].value.toArray() { out.append(v.bitPattern) } }
                for s in skills { for t in s.targets { for v in try t.a.toArray() + t.b.toArray() { out.append(v.bitPattern) } } }
                return out
            }
            let composition = try SkillComposition(policy: policy, skills: skills, base: base, hidden: [6, 6], seed: 11, arena: arena)
            let before = try frozenBits()
            let a = CheckMemory.floats(rng.floats(n * 2, -0.9, 0.9)), s = CheckMemory.floats(rng.floats(n * 3)), e = CheckMemory.floats(rng.floats(n * 2, -1.5, 1.5))
            defer { withExtendedLifetime((a, s, e)) {} }
            let av = try a.view(.f32, [n, 2]), sv = try s.view(.f32, [n, 3]), ev = try e.view(.f32, [n, 2])
            let steps = [0, 1, 2, 3, 4, 1]
            try composition.module.store.zeroGradients()
            _ = try composition.loss(actions: av, states: sv, epsilon: ev, steps: steps, backward: true)
            let params = try composition.module.trainableParameters()
            c.expect(params.count == 6, "θ: 3 weights, 3 biases")
            // A small step: the module's ReLUs must not switch between the two evaluations.
            let h: Float = 2e-3
            var compared = 0
            for p in params {
                let g = try p.gradient.toArray()
                for j in graphSampleIndices(p.value.elementCount, 5, &rng) {
                    let numeric = try centralDifference(p.value, j, h: h) { () throws(LichenError) -> Float in
                        try composition.loss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
                    }
                    c.expectClose(g[j], numeric, absolute: 3e-3, relative: 3e-2, "dL/dθ sample \(compared)")
                    compared += 1
                }
            }
            c.expect(compared >= 25, "compared \(compared) θ elements")
            let adam = try Adam(parameters: params, groups: [Adam.Group(learningRate: 1e-2)], arena: arena)
            let first = try composition.loss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
            for _ in 0..<100 {
                try composition.module.store.zeroGradients()
                _ = try composition.loss(actions: av, states: sv, epsilon: ev, steps: steps, backward: true)
                try adam.step()
            }
            let last = try composition.loss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
            c.expect(last < first, "100 Adam steps on θ: loss " + show(first) + " -> " + show(last))
            c.expect(try frozenBits() == before, "training θ changed the base or a skill")
            // Fixed α = (0.5, -1, 2) equals a plain set with those member scales.
            try composition.setMode(.fixed([0.5, -1, 2]))
            let fixed = try composition.loss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
            let plain = try AdapterSet(members: [AdapterSet.Member(skills[0], scale: 0.5), AdapterSet.Member(skills[1], scale: -1),
                                                 AdapterSet.Member(skills[2], scale: 2)], graph: policy.graph, base: base, arena: arena)
            try policy.graph.setAdapters(plain)
            let reference = try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
            c.expectClose(fixed, reference, absolute: 1e-6, relative: 1e-5, "fixed α vs member scales")
            try policy.graph.setAdapters(nil)
            c.expectThrows(.shapeMismatch(operand: "alpha", dimension: 0, expected: 3, got: 2), "fixed α of 2 for 3 skills") { () throws(LichenError) in
                try composition.setMode(.fixed([1, 1]))
            }
        }
    },
]

/// Parameter-, noise- and action-level mixing (PSEC, NSEC, ASEC) against references built from
/// plain adapter sets.
let compositionLevelChecks: [Check] = [
    Check("Skills/SkillComposition", "sampling levels: α = (1, 0) gives skill 1 alone at every level (bit for bit); NSEC and ASEC at α = (0.3, 0.7) equal mixes of plain single-skill sets") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 32 << 20)
            let shape = DiffusionPolicyShape(actionCount: 2, stateCount: 3, timeFeatures: 4, conditionWidth: 8, hidden: 8, blockInner: 16, blockCount: 1)
            let n = 4
            let policy = try DiffusionPolicy(shape: shape, batchSize: n, seed: 21, arena: arena, trainAdapters: true)
            let base = try AdapterBase(name: "levels-check", store: policy.store)
            var rng = SplitMix64(seed: 22)
            var skills: [LoRAAdapter] = []
            for i in 0..<2 {
                let s = try SkillExpansion.newSkill(name: "s\(i)", policy: policy, base: base, rank: 2, alpha: 2, seed: UInt64(30 + i), arena: arena)
                for t in s.targets { try t.b.copy(from: rng.floats(t.b.elementCount, -0.5, 0.5)) }
                skills.append(s)
            }
            let composition = try SkillComposition(policy: policy, skills: skills, base: base, hidden: [4], seed: 23, arena: arena,
                                                   mode: .fixed([1, 0]))
            let sm = CheckMemory.floats(rng.floats(n * 3)), zm = CheckMemory.floats(rng.floats(5 * n * 2, -2, 2))
            let outs = (0..<6).map { _ in CheckMemory.of(.f32, n * 2) }
            defer { withExtendedLifetime((sm, zm, outs)) {} }
            let sv = try sm.view(.f32, [n, 3]), zv = try zm.view(.f32, [5, n, 2])
            func bits(_ m: CheckMemory) -> [UInt32] { m.array(n * 2).map { $0.bitPattern } }
            let single = [try AdapterSet(members: [AdapterSet.Member(skills[0])], graph: policy.graph, base: base, arena: arena),
                          try AdapterSet(members: [AdapterSet.Member(skills[1])], graph: policy.graph, base: base, arena: arena)]
            try policy.graph.setAdapters(single[0])
            try policy.sample(states: sv, noise: zv, into: try outs[0].view(.f32, [n, 2]))
            for (j, level) in [SkillComposition.Level.parameter, .noise, .action].enumerated() {
                try composition.sample(states: sv, noise: zv, level: level, into: try outs[1 + j].view(.f32, [n, 2]))
                c.expect(bits(outs[1 + j]) == bits(outs[0]), "level \(j) at α = (1, 0) differs from skill 1 alone")
            }
            // ASEC at (0.3, 0.7): clip(0.3 a_1 + 0.7 a_2) with a_i from the plain sets.
            try composition.setMode(.fixed([0.3, 0.7]))
            try policy.graph.setAdapters(single[1])
            try policy.sample(states: sv, noise: zv, into: try outs[4].view(.f32, [n, 2]))
            try composition.sample(states: sv, noise: zv, level: .action, into: try outs[5].view(.f32, [n, 2]))
            for i in 0..<(n * 2) {
                let want = min(1, max(-1, 0.3 * outs[0].floats[i] + 0.7 * outs[4].floats[i]))
                c.expectClose(outs[5].floats[i], want, absolute: 1e-6, "ASEC action \(i)")
            }
            // NSEC at (0.3, 0.7): the sampler with ε̂ = 0.3 ε̂(set 1) + 0.7 ε̂(set 2) on the same staged rows.
            let mix = CheckMemory.of(.f32, n * 2), ref = CheckMemory.of(.f32, n * 2)
            defer { withExtendedLifetime((mix, ref)) {} }
            try policy.sample(states: sv, noise: zv, into: try ref.view(.f32, [n, 2])) { (_, count) throws(LichenError) in
                try policy.graph.setAdapters(single[0])
                let e1 = try policy.predictStagedNoise(count: count)
                for i in 0..<(count * 2) { mix.floats[i] = 0.3 * e1[i] }
                try policy.graph.setAdapters(single[1])
                let e2 = try policy.predictStagedNoise(count: count)
                for i in 0..<(count * 2) { mix.floats[i] += 0.7 * e2[i] }
                return try mix.view(.f32, [count * 2]).f32Elements("mix")
            }
            try composition.sample(states: sv, noise: zv, level: .noise, into: try outs[5].view(.f32, [n, 2]))
            graphExpectAllClose(&c, outs[5].array(n * 2), ref.array(n * 2).map { Double($0) }, atol: 1e-5, rtol: 1e-5, "NSEC actions")
            // PSEC at (0.3, 0.7) is neither mix (composition inside the layers is not linear in the actions).
            try composition.sample(states: sv, noise: zv, level: .parameter, into: try outs[5].view(.f32, [n, 2]))
            c.expect(adapterMaxDifference(outs[5].array(n * 2), ref.array(n * 2)) > 1e-6, "PSEC equals NSEC at a mixed α")
            try policy.graph.setAdapters(nil)
        }
    },
]
