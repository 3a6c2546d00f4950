import Lichen

/// Checks of skill expansion: the rule, a new skill starting as the base exactly (B = 0), its
/// training lowering the task's loss while the base stays bit-identical.
let skillExpansionChecks: [Check] = [
    Check("Skills/SkillExpansion", "the bound rule (NaN fails); a new skill over all Dense layers starts as the base bit for bit; 60 training steps lower the task's loss; the base is untouched") { c in
        c.expect(SkillExpansion.isNeeded(compositionLoss: 0.5, bound: 0.4) && !SkillExpansion.isNeeded(compositionLoss: 0.4, bound: 0.4)
                 && SkillExpansion.isNeeded(compositionLoss: .nan, bound: 1), "expansion rule")
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 32 << 20)
            let shape = DiffusionPolicyShape(actionCount: 2, stateCount: 3, timeFeatures: 4, conditionWidth: 8, hidden: 8, blockInner: 16, blockCount: 1)
            let n = 6
            let policy = try DiffusionPolicy(shape: shape, batchSize: n, seed: 12, arena: arena, trainAdapters: true)
            policy.store.freezeAll()
            let base = try AdapterBase(name: "expansion-check", store: policy.store)
            let skill = try SkillExpansion.newSkill(name: "new-task", policy: policy, base: base, rank: 4, alpha: 8, seed: 13, arena: arena)
            c.expect(skill.targets.count == 6 && skill.isTrainable, "a trainable skill on all 6 Dense layers")
            var zeroB = true
            for t in skill.targets { for v in try t.b.toArray() where v != 0 { zeroB = false } }
            c.expect(zeroB, "B = 0 at start")
            var rng = SplitMix64(seed: 14)
            let a = CheckMemory.floats(rng.floats(n * 2, -0.9, 0.9)), s = CheckMemory.floats(rng.floats(n * 3)), e = CheckMemory.floats(rng.floats(n * 2, -1.5, 1.5))
            defer { withExtendedLifetime((a, s, e)) {} }
            let av = try a.view(.f32, [n, 2]), sv = try s.view(.f32, [n, 3]), ev = try e.view(.f32, [n, 2])
            let steps = [0, 1, 2, 3, 4, 2]
            var baseBits: [UInt32] = []
            for i in 0..<policy.store.count { for v in try policy.store[i].value.toArray() { baseBits.append(v.bitPattern) } }
            try policy.graph.setAdapters(nil)
            let without = try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
            let set = try AdapterSet(members: [AdapterSet.Member(skill)], graph: policy.graph, base: base, arena: arena)
            try policy.graph.setAdapters(set)
            let with = try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
            c.expect(with.bitPattern == without.bitPattern, "the new skill at B = 0 changed the loss: " + show(without) + " -> " + show(with))
            let adam = try Adam(parameters: skill.trainableParameters(), groups: [Adam.Group(learningRate: 1e-2)], arena: arena)
            var first: Float = 0
            for i in 0..<60 {
                let l = try SkillExpansion.trainStep(set, skill: skill, policy: policy, optimizer: adam, actions: av, states: sv, epsilon: ev, steps: steps)
                if i == 0 { first = l }
            }
            let last = try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
            c.expect(last < 0.8 * first, "60 steps: loss " + show(first) + " -> " + show(last))
            var after: [UInt32] = []
            for i in 0..<policy.store.count { for v in try policy.store[i].value.toArray() { after.append(v.bitPattern) } }
            c.expect(after == baseBits, "training the new skill changed the base")
            try policy.graph.setAdapters(nil)
        }
    },
]
