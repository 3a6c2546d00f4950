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
                    var keep: Float = 0
                    try p.value.withFloats { (v) throws(LichenError) in keep = v[j] }
                    try p.value.withFloats { (v) throws(LichenError) in v[j] = keep + h }
                    let lp = try composition.loss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
                    try p.value.withFloats { (v) throws(LichenError) in v[j] = keep - h }
                    let lm = try composition.loss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
                    try p.value.withFloats { (v) throws(LichenError) in v[j] = keep }
                    c.expectClose(g[j], (lp - lm) / (2 * h), absolute: 3e-3, relative: 3e-2, "dL/dθ sample \(compared)")
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
