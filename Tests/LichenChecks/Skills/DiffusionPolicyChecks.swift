import Lichen

/// Checks of the diffusion policy (Sources/Lichen/Skills/DiffusionPolicy.swift): the small
/// size's parameter count by hand, LoRA on every Dense layer (B = 0 is an exact no-op), the
/// denoising loss against a computation from its pieces, its parameter gradients against
/// finite differences, training lowering it, and the sampler against a reference loop.
let diffusionPolicyChecks: [Check] = [
    Check("Skills/DiffusionPolicy", "small size (A 2, S 10): 77,762 parameters by hand; a LoRA skill on all 8 Dense layers builds an AdapterSet, and with B = 0 changes no output bit") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 32 << 20)
            let shape = DiffusionPolicyShape.small(actionCount: 2, stateCount: 10)
            let policy = try DiffusionPolicy(shape: shape, batchSize: 4, seed: 1, arena: arena)
            // cond1 32*64+64, cond2 64*64+64, in 76*64+64, 2 x (ln 128 + fc1 64*256+256 + fc2 256*64+64), out 64*2+2.
            let want = 2112 + 4160 + 4928 + 2 * (128 + 16640 + 16448) + 130
            c.expect(policy.store.trainableValueCount == want, "parameters \(policy.store.trainableValueCount), by hand \(want)")
            let names = DiffusionPolicy.denseLayerNames(shape)
            c.expect(names.count == 8, "8 Dense layers")
            let base = try AdapterBase(name: "policy", store: policy.store)
            var shapes: [LoRATargetShape] = []
            for name in names {
                let w = try policy.store.parameter(named: name + ".weight").value
                shapes.append(LoRATargetShape(weightName: name + ".weight", rank: min(4, w.shape[0], w.shape[1]),
                                              inputCount: w.shape[1], outputCount: w.shape[0]))
            }
            let skill = try LoRAAdapter(name: "skill", base: base, alpha: 16, shapes: shapes, arena: arena)
            try skill.initializeForTraining(seed: 2)
            let set = try AdapterSet(members: [AdapterSet.Member(skill)], graph: policy.graph, base: base, arena: arena)
            var rng = SplitMix64(seed: 3)
            let x = CheckMemory.floats(rng.floats(4 * shape.inputCount))
            let plain = try policy.graph.forward(input: try x.view(.f32, [4, shape.inputCount])).toArray()
            let adapted = try policy.graph.forward(input: try x.view(.f32, [4, shape.inputCount]), adapters: set).toArray()
            c.expect(plain.map { $0.bitPattern } == adapted.map { $0.bitPattern }, "B = 0 changed the output")
            for t in skill.targets { try t.b.copy(from: rng.floats(t.b.elementCount, -0.1, 0.1)) }
            let moved = try policy.graph.forward(input: try x.view(.f32, [4, shape.inputCount]), adapters: set).toArray()
            c.expect(adapterMaxDifference(moved, plain) > 1e-4, "a non-zero B changes the output")
            try policy.graph.setAdapters(nil)
        }
    },

    Check("Skills/DiffusionPolicy", "denoising loss equals its pieces (noising, Fourier features, graph, mean squared error); parameter gradients match finite differences; 150 Adam steps lower it") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 32 << 20)
            let shape = DiffusionPolicyShape(actionCount: 2, stateCount: 3, timeFeatures: 4, conditionWidth: 8, hidden: 8, blockInner: 16, blockCount: 2)
            let policy = try DiffusionPolicy(shape: shape, batchSize: 6, seed: 4, arena: arena)
            var rng = SplitMix64(seed: 5)
            let n = 6
            let a = CheckMemory.floats(rng.floats(n * 2, -0.9, 0.9)), s = CheckMemory.floats(rng.floats(n * 3)), e = CheckMemory.floats(rng.floats(n * 2, -2, 2))
            let steps = [0, 1, 2, 3, 4, 2]
            let av = try a.view(.f32, [n, 2]), sv = try s.view(.f32, [n, 3]), ev = try e.view(.f32, [n, 2])
            defer { withExtendedLifetime((a, s, e)) {} }
            let loss = try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
            // The reference: each row built from VPSchedule.noise and FourierTime.embed, one graph forward.
            let rows = CheckMemory.of(.f32, n * shape.inputCount)
            for r in 0..<n {
                let o = r * shape.inputCount
                let noisy = CheckMemory.of(.f32, 2), emb = CheckMemory.of(.f32, 8)
                let ar = CheckMemory.floats([a.floats[2 * r], a.floats[2 * r + 1]]), er = CheckMemory.floats([e.floats[2 * r], e.floats[2 * r + 1]])
                try policy.schedule.noise(action: try ar.view(.f32, [2]).f32Elements("a"), epsilon: try er.view(.f32, [2]).f32Elements("e"),
                                          step: steps[r], into: try noisy.view(.f32, [2]).f32Elements("x"))
                withExtendedLifetime((ar, er)) {}
                try FourierTime.embed(time: Float(steps[r]), kernel: try policy.kernel.f32Elements("w"), into: try emb.view(.f32, [8]).f32Elements("e"))
                for j in 0..<2 { rows.floats[o + j] = noisy.floats[j] }
                for j in 0..<3 { rows.floats[o + 2 + j] = s.floats[3 * r + j] }
                for j in 0..<8 { rows.floats[o + 5 + j] = emb.floats[j] }
            }
            let eps = try policy.graph.forward(input: try rows.view(.f32, [n, shape.inputCount])).toArray()
            var ref = 0.0
            for i in 0..<(n * 2) { let d = Double(eps[i]) - Double(e.floats[i]); ref += d * d }
            c.expectClose(loss, Float(ref / Double(n)), absolute: 1e-6, relative: 1e-5, "loss vs its pieces")
            // Gradients.
            try policy.store.zeroGradients()
            _ = try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: steps, backward: true)
            var params: [TrainableParameter] = []
            try policy.store.forEachTrainable { (_, v, g) throws(LichenError) in params.append(TrainableParameter(value: v, gradient: g)) }
            var compared = 0
            let h: Float = 1e-2
            for p in params {
                let g = try p.gradient.toArray()
                for j in graphSampleIndices(p.value.elementCount, 2, &rng) {
                    let numeric = try centralDifference(p.value, j, h: h) { () throws(LichenError) -> Float in
                        try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
                    }
                    c.expectClose(g[j], numeric, absolute: 3e-3, relative: 3e-2, "dL/dθ sample \(compared)")
                    compared += 1
                }
            }
            c.expect(compared >= 30, "compared \(compared) parameter elements")
            // Training lowers the loss on this fixed batch.
            let adam = try Adam(parameters: params, groups: [Adam.Group(learningRate: 3e-3)], arena: arena)
            let first = try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
            for _ in 0..<150 {
                try policy.store.zeroGradients()
                _ = try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: steps, backward: true)
                try adam.step()
            }
            let last = try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: steps, backward: false)
            c.expect(last < 0.5 * first, "150 Adam steps: loss " + show(first) + " -> " + show(last))
            c.expectThrows(.invalidArgument(name: "diffusion step", value: 5, reason: "must be in 0..<T"), "step 5") { () throws(LichenError) in
                _ = try policy.denoisingLoss(actions: av, states: sv, epsilon: ev, steps: [0, 1, 2, 3, 4, 5], backward: false)
            }
        }
    },

    Check("Skills/DiffusionPolicy", "the sampler equals a reference loop of graph forwards and VPSchedule.denoise steps; actions stay in [-1, 1]; the same noise gives the same actions") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 32 << 20)
            let shape = DiffusionPolicyShape(actionCount: 2, stateCount: 3, timeFeatures: 4, conditionWidth: 8, hidden: 8, blockInner: 16, blockCount: 1)
            let policy = try DiffusionPolicy(shape: shape, batchSize: 3, seed: 6, arena: arena, training: false)
            var rng = SplitMix64(seed: 7)
            let n = 3, T = 5
            let s = CheckMemory.floats(rng.floats(n * 3)), z = CheckMemory.floats(rng.floats(T * n * 2, -2, 2))
            let out = CheckMemory.of(.f32, n * 2), again = CheckMemory.of(.f32, n * 2)
            try policy.sample(states: try s.view(.f32, [n, 3]), noise: try z.view(.f32, [T, n, 2]), into: try out.view(.f32, [n, 2]))
            try policy.sample(states: try s.view(.f32, [n, 3]), noise: try z.view(.f32, [T, n, 2]), into: try again.view(.f32, [n, 2]))
            c.expect(out.array(n * 2).map { $0.bitPattern } == again.array(n * 2).map { $0.bitPattern }, "same noise, same actions")
            // Reference, one sample at a time.
            for r in 0..<n {
                let x = CheckMemory.floats([z.floats[2 * r], z.floats[2 * r + 1]])
                var t = T - 1
                while t >= 0 {
                    let row = CheckMemory.of(.f32, shape.inputCount), emb = CheckMemory.of(.f32, 8)
                    try FourierTime.embed(time: Float(t), kernel: try policy.kernel.f32Elements("w"), into: try emb.view(.f32, [8]).f32Elements("e"))
                    row.floats[0] = x.floats[0]; row.floats[1] = x.floats[1]
                    for j in 0..<3 { row.floats[2 + j] = s.floats[3 * r + j] }
                    for j in 0..<8 { row.floats[5 + j] = emb.floats[j] }
                    let eps = try policy.graph.forward(input: try row.view(.f32, [1, shape.inputCount])).toArray()
                    let k = (T - t) % T
                    let zz = CheckMemory.floats([z.floats[(k * n + r) * 2], z.floats[(k * n + r) * 2 + 1]])
                    let em = CheckMemory.floats(eps)
                    try policy.schedule.denoise(try x.view(.f32, [2]).f32Elements("x"), predictedNoise: try em.view(.f32, [2]).f32Elements("e"),
                                                step: t, noise: try zz.view(.f32, [2]).f32Elements("z"))
                    withExtendedLifetime((em, zz, emb, row)) {}
                    t -= 1
                }
                for j in 0..<2 {
                    c.expectClose(out.floats[2 * r + j], x.floats[j], absolute: 1e-5, "sample \(r) action \(j)")
                    c.expect(abs(out.floats[2 * r + j]) <= 1, "action inside [-1, 1]")
                }
            }
        }
    },
]
