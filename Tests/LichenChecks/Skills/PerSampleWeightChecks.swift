import Lichen

/// Checks of per-sample member weights in the graph's LoRA path (AdapterSet `perSampleWeights`,
/// Adapters/Graph+LoRA.swift), PSEC's composition inside a whole network: the graph's output
/// against `ComposedLinear` layer by layer, α = 1 against the plain set bit for bit, and
/// dLoss/dα against finite differences.
let perSampleWeightChecks: [Check] = [
    Check("Skills/PerSampleWeights", "a graph with per-sample α equals ComposedLinear layer by layer; α = 1 equals the plain set bit for bit; dα matches finite differences; conv targets are refused") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 31)
            let n = 3, k = 2
            let spec = graphSpec([6], [
                graphLayer(.linear, "fc1", [-1]) { $0.outputs = 8 },
                graphLayer(.relu, "relu", [0]),
                graphLayer(.linear, "fc2", [1]) { $0.outputs = 3 },
            ])
            let w1 = rng.floats(48), b1 = rng.floats(8), w2 = rng.floats(24), b2 = rng.floats(3)
            let g = try graphMakeGraph(spec, [
                GraphParamInit(name: "fc1.weight", role: .weight, dims: [8, 6], values: w1),
                GraphParamInit(name: "fc1.bias", role: .bias, dims: [8], values: b1),
                GraphParamInit(name: "fc2.weight", role: .weight, dims: [3, 8], values: w2),
                GraphParamInit(name: "fc2.bias", role: .bias, dims: [3], values: b2),
            ], batch: n, options: GraphOptions(training: true, trainAdapters: true))
            let arena = g.store.arena
            let base = try AdapterBase(name: "psw", store: g.store)
            var skills: [LoRAAdapter] = []
            for (i, (r1, r2)) in [(2, 1), (3, 2)].enumerated() {
                let s = try LoRAAdapter(name: "s\(i)", base: base, alpha: Float(4 + 4 * i), shapes: [
                    LoRATargetShape(weightName: "fc1.weight", rank: r1, inputCount: 6, outputCount: 8),
                    LoRATargetShape(weightName: "fc2.weight", rank: r2, inputCount: 8, outputCount: 3),
                ], arena: arena)
                for t in s.targets {
                    try t.a.copy(from: rng.floats(t.a.elementCount, -0.5, 0.5))
                    try t.b.copy(from: rng.floats(t.b.elementCount, -0.5, 0.5))
                }
                skills.append(s)
            }
            let members = skills.map { AdapterSet.Member($0) }
            let set = try AdapterSet(members: members, graph: g, base: base, arena: arena, perSampleWeights: true)
            let plain = try AdapterSet(members: members, graph: g, base: base, arena: arena)
            guard let weights = set.sampleWeights, let gradient = set.sampleWeightGradient else {
                c.expect(false, "no per-sample weights allocated"); return
            }
            c.expect(weights.shape.dimensions == [n, k], "α is [batch, members]")
            let xm = CheckMemory.floats(rng.floats(n * 6)), x = try xm.view(.f32, [n, 6])
            // α = 1 (the initial value): the plain set's output, bit for bit.
            let ones = try g.forward(input: x, adapters: set).toArray()
            let same = try g.forward(input: x, adapters: plain).toArray()
            c.expect(ones.map { $0.bitPattern } == same.map { $0.bitPattern }, "α = 1 differs from the plain set")
            // Random α against ComposedLinear per layer.
            let alpha = rng.floats(n * k, -1.5, 1.5)
            try weights.copy(from: alpha)
            let y = try g.forward(input: x, adapters: set).toArray()
            let l1 = try ComposedLinear(weight: try g.store.parameter(named: "fc1.weight").value, bias: try g.store.parameter(named: "fc1.bias").value,
                                        weightName: "fc1.weight", skills: skills, passesPerMerge: 1, arena: arena)
            let l2 = try ComposedLinear(weight: try g.store.parameter(named: "fc2.weight").value, bias: try g.store.parameter(named: "fc2.bias").value,
                                        weightName: "fc2.weight", skills: skills, passesPerMerge: 1, arena: arena)
            let am = CheckMemory.floats(alpha), hm = CheckMemory.of(.f32, n * 8), ym = CheckMemory.of(.f32, n * 3)
            try l1.forwardFactored(input: x, alpha: try am.view(.f32, [n, k]), output: try hm.view(.f32, [n, 8]))
            for i in 0..<(n * 8) { hm.floats[i] = max(0, hm.floats[i]) }
            try l2.forwardFactored(input: try hm.view(.f32, [n, 8]), alpha: try am.view(.f32, [n, k]), output: try ym.view(.f32, [n, 3]))
            graphExpectAllClose(&c, y, ym.array(n * 3).map { Double($0) }, atol: 1e-5, rtol: 1e-5, "graph vs ComposedLinear")
            // dα against central differences of sum(y * r).
            let r = rng.floats(n * 3), rm = CheckMemory.floats(r)
            try gradient.fill(0)
            _ = try g.forward(input: x, adapters: set)
            try g.backward(outputGradient: try rm.view(.f32, [n, 3]))
            let analytic = try gradient.toArray()
            let h: Float = 1e-2
            for j in 0..<(n * k) {
                var plus = alpha, minus = alpha
                plus[j] += h
                minus[j] -= h
                try weights.copy(from: plus)
                let lp = graphWeightedSum(try g.forward(input: x, adapters: set).toArray(), r)
                try weights.copy(from: minus)
                let lm = graphWeightedSum(try g.forward(input: x, adapters: set).toArray(), r)
                c.expectClose(analytic[j], Float((lp - lm) / (2 * Double(h))), absolute: 2e-3, relative: 2e-2, "dα[\(j)]")
            }
            withExtendedLifetime((xm, am, hm, ym, rm)) {}
            try g.setAdapters(nil)
            // A conv target cannot take per-sample weights.
            let conv = try AdapterCheckModel(type: .f32, seed: 1, batch: 1)
            let a = try conv.adapter("c", alpha: 1, [("conv.weight", 2)], seed: 2)
            c.expectThrows(.invalidArgument(name: "per-sample weights", value: 0, reason: "per-sample weights take linear targets only"),
                           "a conv target") { () throws(LichenError) in
                _ = try AdapterSet(members: [AdapterSet.Member(a)], graph: conv.graph, base: conv.base, arena: conv.arena, perSampleWeights: true)
            }
        }
    },
]
