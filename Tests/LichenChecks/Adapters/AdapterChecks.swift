import Lichen

/// Adapters: unmerged LoRA against merged weights, backward against finite differences, scale 0,
/// and the adapter set's validation (another base, a shape mismatch) leaving the graph as it was.
let adapterChecks: [Check] = [
    Check("Adapters/AdapterSet", "unmerged LoRA equals the naively merged weights (f32, q8_0, q4_0 base; conv and linear; two adapters with scales)") { c in
        checking(&c) { c throws(LichenError) in
            for type in [ElementType.f32, .q8_0, .q4_0] {
                let m = try AdapterCheckModel(type: type, seed: 31, batch: 3)
                let a1 = try m.adapter("a1", alpha: 4, [("conv.weight", 2), ("fc1.weight", 3)], seed: 32)
                let a2 = try m.adapter("a2", alpha: 0, [("fc1.weight", 2), ("fc2.weight", 1)], seed: 33)
                let members = [AdapterSet.Member(a1, scale: 0.7), AdapterSet.Member(a2, scale: -1.3)]
                let set = try AdapterSet(members: members, graph: m.graph, base: m.base, arena: m.arena)
                // The set's own merge equals the naive one, weight by weight.
                for (i, t) in AdapterCheckModel.targets.enumerated() {
                    let out = CheckMemory(byteCount: t.rows * t.k * 4)
                    try set.mergedWeight(t.name, into: try out.view(.f32, [t.rows, t.k]))
                    let naive = try adapterNaiveMerge(m.weights[i], rows: t.rows, k: t.k, members, weightName: t.name)
                    let d = adapterMaxDifference(out.array(t.rows * t.k), naive)
                    c.expect(d <= 1e-5, type.name + " " + t.name + ": mergedWeight differs from the naive merge by " + show(d))
                }
                var rng = SplitMix64(seed: 34)
                let x = rng.floats(3 * 50, 0, 1)
                let xm = CheckMemory.floats(x)
                let input = try xm.view(.f32, [3] + AdapterCheckModel.inputDims)
                let unmerged = try m.graph.forward(input: input, adapters: set).toArray()
                let merged = try adapterMergedGraph(m, members, batch: 3).forward(input: input).toArray()
                let fromStore = try Graph(spec: AdapterCheckModel.spec, store: try set.mergedParameters(arena: m.arena), batchSize: 3,
                                          arena: m.arena).forward(input: input).toArray()
                // f32: rounding only. Quantized bases: the base product W x quantizes the
                // activations to Q8_0 per row (1/254 of a block's largest value) while the merged
                // f32 graph does not; that error through the three layers measured 0.014 (q8_0)
                // and 0.011 (q4_0) here, and the adapters move the outputs by more than 0.5.
                let tolerance: Float = type == .f32 ? 1e-4 : 0.05
                let d = adapterMaxDifference(unmerged, merged)
                c.expect(d <= tolerance, type.name + ": unmerged and merged outputs differ by " + show(d))
                c.expect(adapterMaxDifference(fromStore, merged) <= 1e-4,
                         type.name + ": mergedParameters' graph differs from the naive merge by " + show(adapterMaxDifference(fromStore, merged)))
                // The adapters change the output by far more than the tolerance (the check can fail).
                let plain = try m.graph.forward(input: input, adapters: nil).toArray()
                c.expect(adapterMaxDifference(plain, merged) > 10 * tolerance, type.name + ": the adapters hardly change the output")
            }
        }
    },
    Check("Adapters/AdapterSet", "scale 0 gives the base model's output exactly (f32 and q4_0 base)") { c in
        checking(&c) { c throws(LichenError) in
            for type in [ElementType.f32, .q4_0] {
                let m = try AdapterCheckModel(type: type, seed: 41, batch: 2)
                let a1 = try m.adapter("a1", alpha: 8, [("conv.weight", 3), ("fc1.weight", 4), ("fc2.weight", 2)], seed: 42)
                let a2 = try m.adapter("a2", alpha: 2, [("fc1.weight", 1)], seed: 43)
                let off = try AdapterSet(members: [AdapterSet.Member(a1, scale: 0), AdapterSet.Member(a2, scale: 0)],
                                         graph: m.graph, base: m.base, arena: m.arena)
                var rng = SplitMix64(seed: 44)
                let xm = CheckMemory.floats(rng.floats(2 * 50, 0, 1))
                let input = try xm.view(.f32, [2] + AdapterCheckModel.inputDims)
                let base = try m.graph.forward(input: input, adapters: nil).toArray()
                let zero = try m.graph.forward(input: input, adapters: off).toArray()
                c.expect(base == zero, type.name + ": scale 0 changed the output by " + show(adapterMaxDifference(base, zero)))
                let on = try AdapterSet(members: [AdapterSet.Member(a1, scale: 1)], graph: m.graph, base: m.base, arena: m.arena)
                let changed = try m.graph.forward(input: input, adapters: on).toArray()
                c.expect(adapterMaxDifference(base, changed) > 1e-3, type.name + ": scale 1 did not change the output")
            }
        }
    },
    Check("Adapters/AdapterSet", "LoRA backward: A, B and input gradients match finite differences (f32 base; q8_0 base for the last layer)") { c in
        checking(&c) { c throws(LichenError) in
            for type in [ElementType.f32, .q8_0] {
                let options = GraphOptions(training: true, inputGradient: true, trainAdapters: true)
                let m = try AdapterCheckModel(type: type, seed: 51, batch: 2, options: options)
                let a1 = try m.adapter("a1", alpha: 4, [("conv.weight", 2), ("fc1.weight", 2), ("fc2.weight", 2)], seed: 52, trainable: true)
                let a2 = try m.adapter("a2", alpha: 0, [("fc1.weight", 1), ("fc2.weight", 1)], seed: 53, trainable: true)
                let set = try AdapterSet(members: [AdapterSet.Member(a1, scale: 0.8), AdapterSet.Member(a2, scale: -0.6)],
                                         graph: m.graph, base: m.base, arena: m.arena)
                var rng = SplitMix64(seed: 54)
                let xm = CheckMemory.floats(rng.floats(2 * 50, 0, 1))
                let input = try xm.view(.f32, [2] + AdapterCheckModel.inputDims)
                let y = try m.graph.forward(input: input, adapters: set).toArray()
                let r = rng.floats(y.count)
                let rm = CheckMemory.floats(r)
                let dxm = CheckMemory(byteCount: 2 * 50 * 4)
                try a1.zeroGradients()
                try a2.zeroGradients()
                try m.graph.backward(outputGradient: try rm.view(.f32, [2, 3]), inputGradient: try dxm.view(.f32, [2] + AdapterCheckModel.inputDims))
                func loss() throws(LichenError) -> Double { graphWeightedSum(try m.graph.forward(input: input).toArray(), r) }
                let eps: Float = 1e-2
                func compare(_ analytic: Float, _ fd: Float, _ what: String) {
                    let err = abs(analytic - fd) - (2e-3 + 2e-2 * max(abs(analytic), abs(fd)))
                    c.expect(err <= 0, type.name + " " + what + ": backward " + show(analytic) + ", finite difference " + show(fd))
                }
                for (an, adapter) in [a1, a2].enumerated() {
                    for t in adapter.targets {
                        // Through a quantized base only the last layer's adapter is smooth: every
                        // earlier one feeds a layer whose activations are quantized on the fly.
                        if type != .f32 && t.weightName != "fc2.weight" { continue }
                        for (value, gradient, label) in [(t.a, t.gradientA, "A"), (t.b, t.gradientB, "B")] {
                            guard let gradient else { c.expect(false, "no gradient"); continue }
                            let g = try gradient.toArray()
                            for j in graphSampleIndices(value.elementCount, 8, &rng) {
                                var keep: Float = 0
                                try value.withFloats { (v) throws(LichenError) in keep = v[j] }
                                try value.withFloats { (v) throws(LichenError) in v[j] = keep + eps }
                                let lp = try loss()
                                try value.withFloats { (v) throws(LichenError) in v[j] = keep - eps }
                                let lm = try loss()
                                try value.withFloats { (v) throws(LichenError) in v[j] = keep }
                                compare(g[j], Float((lp - lm) / (2 * Double(eps))), "adapter \(an) " + t.weightName + " " + label + "[\(j)]")
                            }
                        }
                    }
                }
                if type == .f32 {
                    for j in graphSampleIndices(100, 12, &rng) {
                        let keep = xm.floats[j]
                        xm.floats[j] = keep + eps
                        let lp = try loss()
                        xm.floats[j] = keep - eps
                        let lm = try loss()
                        xm.floats[j] = keep
                        compare(dxm.floats[j], Float((lp - lm) / (2 * Double(eps))), "input[\(j)]")
                    }
                }
            }
        }
    },
    Check("Adapters/AdapterSet", "rejects an adapter of another base and a shape mismatch; the graph keeps its set and output") { c in
        checking(&c) { c throws(LichenError) in
            let m = try AdapterCheckModel(type: .q8_0, seed: 61, batch: 2)
            let good = try m.adapter("good", alpha: 2, [("fc1.weight", 2)], seed: 62)
            let set = try AdapterSet(members: [AdapterSet.Member(good, scale: 1)], graph: m.graph, base: m.base, arena: m.arena)
            var rng = SplitMix64(seed: 63)
            let xm = CheckMemory.floats(rng.floats(2 * 50, 0, 1))
            let input = try xm.view(.f32, [2] + AdapterCheckModel.inputDims)
            let before = try m.graph.forward(input: input, adapters: set).toArray()
            // Another base: same architecture, other biases (a retrained model), and another name.
            let other = try AdapterCheckModel(type: .q8_0, seed: 61, batch: 2, biasSeed: 100)
            c.expect(other.base != m.base, "a base with other biases has the same identity")
            let foreign = try other.adapter("foreign", alpha: 2, [("fc1.weight", 2)], seed: 64)
            let wrongIn = try LoRAAdapter(name: "wrong-in", base: m.base, alpha: 1,
                                          shapes: [LoRATargetShape(weightName: "fc1.weight", rank: 2, inputCount: 48, outputCount: 32)], arena: m.arena)
            let wrongOut = try LoRAAdapter(name: "wrong-out", base: m.base, alpha: 1,
                                           shapes: [LoRATargetShape(weightName: "fc2.weight", rank: 2, inputCount: 32, outputCount: 4)], arena: m.arena)
            let missing = try LoRAAdapter(name: "missing", base: m.base, alpha: 1,
                                          shapes: [LoRATargetShape(weightName: "fc9.weight", rank: 2, inputCount: 32, outputCount: 4)], arena: m.arena)
            let heapBefore = m.arena.stats.heapInUseBytes
            c.expectThrows(.invalidModel(key: "lichen.adapter.base", value: "check-base", reason: "the adapter belongs to another base model"),
                           "adapter of another base") { () throws(LichenError) in
                try AdapterSet(members: [AdapterSet.Member(good), AdapterSet.Member(foreign)], graph: m.graph, base: m.base, arena: m.arena)
            }
            let renamed = try AdapterCheckModel(type: .q8_0, seed: 61, batch: 2, name: "another-name")
            let foreign2 = try renamed.adapter("renamed", alpha: 2, [("fc1.weight", 2)], seed: 64)
            c.expectThrows(.invalidModel(key: "lichen.adapter.base", value: "another-name", reason: "the adapter belongs to another base model"),
                           "adapter of a base with another name") { () throws(LichenError) in
                try AdapterSet(members: [AdapterSet.Member(foreign2)], graph: m.graph, base: m.base, arena: m.arena)
            }
            // Shape mismatch: n_in of fc1 is 64, the adapter says 48; n_out of fc2 is 3, the adapter says 4.
            c.expectThrows(.parameterShapeMismatch(tensor: "fc1.weight.lora_a", expected: "[2, 64]", got: "[2, 48]"), "n_in mismatch")
            { () throws(LichenError) in
                try AdapterSet(members: [AdapterSet.Member(wrongIn)], graph: m.graph, base: m.base, arena: m.arena)
            }
            c.expectThrows(.parameterShapeMismatch(tensor: "fc2.weight.lora_b", expected: "[3, 2]", got: "[4, 2]"), "n_out mismatch")
            { () throws(LichenError) in
                try AdapterSet(members: [AdapterSet.Member(wrongOut)], graph: m.graph, base: m.base, arena: m.arena)
            }
            c.expectThrows(.notFound(kind: "LoRA target layer", name: "fc9.weight"), "unknown layer") { () throws(LichenError) in
                try AdapterSet(members: [AdapterSet.Member(missing)], graph: m.graph, base: m.base, arena: m.arena)
            }
            c.expectThrows(.duplicateName(kind: "adapter", name: "good"), "the same adapter twice") { () throws(LichenError) in
                try AdapterSet(members: [AdapterSet.Member(good), AdapterSet.Member(good, scale: 2)], graph: m.graph, base: m.base, arena: m.arena)
            }
            c.expectThrows(.invalidArgument(name: "adapters", value: 0, reason: "the adapter set was built for another graph"), "set of another graph")
            { () throws(LichenError) in
                try other.graph.forward(input: input, adapters: set)
            }
            // Failed builds allocated nothing that stays, and the graph still runs its set.
            c.expect(m.arena.stats.heapInUseBytes == heapBefore, "failed builds kept heap memory")
            c.expect(m.graph.adapters === set, "the graph's set changed")
            let after = try m.graph.forward(input: input).toArray()
            c.expect(after == before, "the output changed after refused sets: " + show(adapterMaxDifference(after, before)))
        }
    },
    Check("Adapters/AdapterSet", "memory: bytes accounted, over budget refused with nothing kept, no arena use in a step, unloads return the heap over 200 cycles") { c in
        checking(&c) { c throws(LichenError) in
            let m = try AdapterCheckModel(type: .q8_0, seed: 101, batch: 4, options: GraphOptions(training: true, trainAdapters: true))
            let a = try m.adapter("a", alpha: 4, [("conv.weight", 2), ("fc1.weight", 3)], seed: 102, trainable: true)
            // Values and gradients of A [r, n_in] and B [n_out, r], each rounded up to 64 bytes.
            let expected = 2 * ((2 * 32 * 4 + 63) / 64 * 64 + (4 * 2 * 4 + 63) / 64 * 64 + (3 * 64 * 4 + 63) / 64 * 64 + (32 * 3 * 4 + 63) / 64 * 64)
            c.expect(a.byteCount == expected, "adapter bytes \(a.byteCount), expected \(expected)")
            c.expect(a.storage.usableByteCount >= a.byteCount, "usable heap bytes cover the adapter")
            let set = try AdapterSet(members: [AdapterSet.Member(a, scale: 0.5)], graph: m.graph, base: m.base, arena: m.arena)
            // Workspace: A x of conv (4 samples x r 2 x 16 positions) and fc1 (4 rows x r 3), then the backward scratch.
            let workspace = (4 * 2 * 16 * 4 + 63) / 64 * 64 + (4 * 3 * 4 + 63) / 64 * 64 + max(2 * 16, 4 * 3) * 4
            c.expect(set.byteCount == workspace && set.totalByteCount == workspace + a.byteCount,
                     "set bytes \(set.byteCount) / \(set.totalByteCount), expected \(workspace) / \(workspace + a.byteCount)")
            // Steps use no arena memory: forward and backward with the set, three times.
            var rng = SplitMix64(seed: 103)
            let xm = CheckMemory.floats(rng.floats(4 * 50, 0, 1))
            let input = try xm.view(.f32, [4] + AdapterCheckModel.inputDims)
            let gm = CheckMemory.floats(rng.floats(4 * 3))
            _ = try m.graph.forward(input: input, adapters: set)
            try m.graph.backward(outputGradient: try gm.view(.f32, [4, 3]))
            let stats = m.arena.stats
            for _ in 0..<3 {
                _ = try m.graph.forward(input: input, adapters: set)
                try m.graph.backward(outputGradient: try gm.view(.f32, [4, 3]))
            }
            let after = m.arena.stats
            c.expect(after.heapAllocationCount == stats.heapAllocationCount && after.lowUsedBytes == stats.lowUsedBytes
                     && after.heapInUseBytes == stats.heapInUseBytes, "a step with adapters took arena memory")
            // Over budget: an adapter too large for a small arena's heap, and a set whose workspace is.
            let small = try Arena(byteCount: Arena.minimumByteCount)
            let heap = small.stats.heapInUseBytes
            let huge = LoRATargetShape(weightName: "fc1.weight", rank: 1024, inputCount: 4096, outputCount: 4096)
            do throws(LichenError) {
                _ = try LoRAAdapter(name: "huge", base: m.base, alpha: 1, shapes: [huge], arena: small)
                c.expect(false, "a 32 MiB adapter fit a minimum arena")
            } catch {
                if case .budgetExceeded(let asked, _) = error {
                    c.expect(asked == 2 * 1024 * 4096 * 4, "asked \(asked) bytes")
                } else {
                    c.expect(false, "threw " + error.description + ", expected budgetExceeded")
                }
            }
            c.expect(small.stats.heapInUseBytes == heap, "a refused adapter kept heap memory")
            let big = try AdapterCheckModel(type: .f32, seed: 104, batch: 4096)
            let ba = try big.adapter("b", alpha: 1, [("conv.weight", 4)], seed: 105)
            do throws(LichenError) {
                _ = try AdapterSet(members: [AdapterSet.Member(ba)], graph: big.graph, base: big.base, arena: small)
                c.expect(false, "a 1 MiB workspace fit a minimum arena")
            } catch {
                if case .budgetExceeded = error { c.expect(true, "") } else { c.expect(false, "threw " + error.description) }
            }
            c.expect(small.stats.heapInUseBytes == heap, "a refused set kept heap memory")
            // Load / build / step / drop, 200 times: the heap returns to its level every time.
            let bytes = try AdapterFile.writer(try m.adapter("file", alpha: 2, [("fc1.weight", 2), ("fc2.weight", 1)], seed: 106)).serialized()
            let file = try adapterOpen(bytes)
            try m.graph.setAdapters(nil)
            let level = m.arena.stats.heapInUseBytes
            var extents = 0
            for cycle in 0..<200 {
                do {
                    let loaded = try AdapterFile.read(file, arena: m.arena)
                    let s = try AdapterSet(members: [AdapterSet.Member(loaded, scale: Float(cycle % 3))], graph: m.graph, base: m.base, arena: m.arena)
                    _ = try m.graph.forward(input: input, adapters: s)
                    try m.graph.setAdapters(nil)
                }
                let now = m.arena.stats
                if now.heapInUseBytes != level {
                    c.expect(false, "cycle \(cycle): heap in use \(now.heapInUseBytes), was \(level)")
                    break
                }
                if cycle == 10 { extents = now.heapExtentBytes }
                if cycle > 10 && now.heapExtentBytes != extents {
                    c.expect(false, "cycle \(cycle): heap extents grew from \(extents) to \(now.heapExtentBytes)")
                    break
                }
            }
            c.expect(m.arena.stats.heapInUseBytes == level, "200 load/unload cycles left the heap where it was")
        }
    },
    Check("Adapters/AdapterSet", "conv1d with stride, padding and dilation, and a linear layer over rows: unmerged equals merged, backward matches finite differences") { c in
        checking(&c) { c throws(LichenError) in
            // [3, 11] -> conv1d 3 -> 4 (k 3, stride 2, pad 1, dilation 2) -> [4, 5] -> linear 5 -> 6 per row -> [4, 6].
            let spec = graphSpec([3, 11], [
                graphLayer(.conv1d, "conv", [-1]) { $0.outputs = 4; $0.kernelW = 3; $0.strideW = 2; $0.padW = 1; $0.dilationW = 2 },
                graphLayer(.tanh, "act", [0]),
                graphLayer(.linear, "fc", [1]) { $0.outputs = 6 },
            ])
            var rng = SplitMix64(seed: 111)
            let wConv = rng.floats(4 * 9), wFc = rng.floats(6 * 5), bConv = rng.floats(4), bFc = rng.floats(6)
            let params = [GraphParamInit(name: "conv.weight", role: .weight, dims: [4, 3, 3], values: wConv),
                          GraphParamInit(name: "conv.bias", role: .bias, dims: [4], values: bConv),
                          GraphParamInit(name: "fc.weight", role: .weight, dims: [6, 5], values: wFc),
                          GraphParamInit(name: "fc.bias", role: .bias, dims: [6], values: bFc)]
            let g = try graphMakeGraph(spec, params, batch: 2, options: GraphOptions(training: true, inputGradient: true, trainAdapters: true))
            g.store.freezeAll()
            let base = try AdapterBase(name: "rows", store: g.store)
            let a1 = try LoRAAdapter(name: "a1", base: base, alpha: 3, shapes: [
                LoRATargetShape(weightName: "conv.weight", rank: 2, inputCount: 9, outputCount: 4),
                LoRATargetShape(weightName: "fc.weight", rank: 2, inputCount: 5, outputCount: 6)], trainable: true, arena: g.store.arena)
            let a2 = try LoRAAdapter(name: "a2", base: base, alpha: 0, shapes: [
                LoRATargetShape(weightName: "fc.weight", rank: 1, inputCount: 5, outputCount: 6)], trainable: true, arena: g.store.arena)
            for a in [a1, a2] {
                for t in a.targets {
                    try t.a.copy(from: rng.floats(t.a.elementCount))
                    try t.b.copy(from: rng.floats(t.b.elementCount))
                }
            }
            let members = [AdapterSet.Member(a1, scale: 0.9), AdapterSet.Member(a2, scale: -0.4)]
            let set = try AdapterSet(members: members, graph: g, base: base, arena: g.store.arena)
            let xm = CheckMemory.floats(rng.floats(2 * 33))
            let input = try xm.view(.f32, [2, 3, 11])
            let y = try g.forward(input: input, adapters: set).toArray()
            let merged = try graphMakeGraph(spec, [
                GraphParamInit(name: "conv.weight", role: .weight, dims: [4, 9],
                               values: try adapterNaiveMerge(wConv, rows: 4, k: 9, members, weightName: "conv.weight")),
                params[1],
                GraphParamInit(name: "fc.weight", role: .weight, dims: [6, 5],
                               values: try adapterNaiveMerge(wFc, rows: 6, k: 5, members, weightName: "fc.weight")),
                params[3]], batch: 2, options: GraphOptions())
            let ym = try merged.forward(input: input).toArray()
            c.expect(adapterMaxDifference(y, ym) <= 1e-5, "unmerged and merged differ by " + show(adapterMaxDifference(y, ym)))
            let r = rng.floats(y.count)
            let rm = CheckMemory.floats(r), dxm = CheckMemory(byteCount: 2 * 33 * 4)
            _ = try g.forward(input: input)
            try a1.zeroGradients()
            try a2.zeroGradients()
            try g.backward(outputGradient: try rm.view(.f32, [2, 4, 6]), inputGradient: try dxm.view(.f32, [2, 3, 11]))
            try adapterGradientCheck(&c, g, input, xm, r, [a1, a2], dx: dxm, "conv1d/rows", seed: 112)
        }
    },
]
