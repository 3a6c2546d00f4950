import Lichen

/// Checks of PSEC's parameter-space composition (Sources/Lichen/Skills): the factored and the
/// merged path of `ComposedLinear` against a naive per-sample merge in Double, the cost rule on
/// hand-computed cases, dα and dx against finite differences, the context-aware module's θ
/// gradients against finite differences through the composed layer's loss, and bad input.
let skillChecks: [Check] = [
    Check("Skills/ComposedLinear", "factored and merged paths equal a naive per-sample W0 + Σ α_i s_i B_i A_i on random shapes (with and without bias, a skill not adapting the layer)") { c in
        checking(&c) { c throws(LichenError) in
            let cases: [(dIn: Int, dOut: Int, ranks: [Int], alphas: [Float], bias: Bool, n: Int)] = [
                (7, 5, [2, 3], [16, 8], true, 4),
                (16, 3, [1, 3, 2], [0, 4, 2], false, 3),
                (3, 11, [3, 0, 2], [6, 6, 1], true, 5),   // rank 0: the second skill adapts another layer
                (32, 32, [8, 8, 8, 4], [16, 16, 16, 8], true, 2),
            ]
            for (ci, tc) in cases.enumerated() {
                var rng = SplitMix64(seed: 700 + UInt64(ci))
                let fx = try skillFixture(&rng, dIn: tc.dIn, dOut: tc.dOut, ranks: tc.ranks, alphas: tc.alphas, bias: tc.bias)
                let k = tc.ranks.count
                let layer = try ComposedLinear(weight: fx.weight, bias: fx.bias, weightName: "fc.weight", skills: fx.skills,
                                               passesPerMerge: 1, arena: fx.arena)
                c.expect(layer.skillCount == k && layer.rankSum == tc.ranks.reduce(0, +), "case \(ci): k and Σr")
                let x = rng.floats(tc.n * tc.dIn), al = rng.floats(tc.n * k, -2, 2)
                let xm = CheckMemory.floats(x), am = CheckMemory.floats(al), ym = CheckMemory.of(.f32, tc.n * tc.dOut)
                try layer.forwardFactored(input: try xm.view(.f32, [tc.n, tc.dIn]), alpha: try am.view(.f32, [tc.n, k]),
                                          output: try ym.view(.f32, [tc.n, tc.dOut]))
                let want = try skillNaive(fx, x: x, alpha: al, n: tc.n)
                graphExpectAllClose(&c, ym.array(tc.n * tc.dOut), want, atol: 1e-4, rtol: 1e-4, "case \(ci) factored")
                // Merged: one α for every sample (row 0 of al), against the factored path with
                // that α repeated and against the naive reference.
                var same: [Float] = []
                for _ in 0..<tc.n { same += Array(al[0..<k]) }
                let sm = CheckMemory.floats(same), fm = CheckMemory.of(.f32, tc.n * tc.dOut), mm = CheckMemory.of(.f32, tc.n * tc.dOut)
                try layer.forwardFactored(input: try xm.view(.f32, [tc.n, tc.dIn]), alpha: try sm.view(.f32, [tc.n, k]),
                                          output: try fm.view(.f32, [tc.n, tc.dOut]))
                let firstAlpha = CheckMemory.floats(Array(al[0..<k]))
                try layer.merge(alpha: try firstAlpha.view(.f32, [k]))
                try layer.forwardMerged(input: try xm.view(.f32, [tc.n, tc.dIn]), output: try mm.view(.f32, [tc.n, tc.dOut]))
                let wantSame = try skillNaive(fx, x: x, alpha: same, n: tc.n)
                graphExpectAllClose(&c, mm.array(tc.n * tc.dOut), wantSame, atol: 1e-4, rtol: 1e-4, "case \(ci) merged vs naive")
                graphExpectAllClose(&c, mm.array(tc.n * tc.dOut), fm.array(tc.n * tc.dOut).map { Double($0) }, atol: 1e-4, rtol: 1e-4,
                                    "case \(ci) merged vs factored")
                // α = 0 is the base alone: W0 x + b0 exactly as the naive reference computes it.
                let zero = [Float](repeating: 0, count: tc.n * k)
                let zm = CheckMemory.floats(zero)
                try layer.forwardFactored(input: try xm.view(.f32, [tc.n, tc.dIn]), alpha: try zm.view(.f32, [tc.n, k]),
                                          output: try ym.view(.f32, [tc.n, tc.dOut]))
                graphExpectAllClose(&c, ym.array(tc.n * tc.dOut), try skillNaive(fx, x: x, alpha: zero, n: tc.n), atol: 1e-5,
                                    rtol: 1e-5, "case \(ci) α = 0 is the base")
                withExtendedLifetime((firstAlpha, zm, sm, fm, mm)) {}
            }
        }
    },

    Check("Skills/CompositionPath", "the cost rule on hand-computed cases: merge R·d_in·d_out vs P·R·(d_in + d_out), the boundary d_in·d_out = P·(d_in + d_out), one state per sample never merges") { c in
        let costs = CompositionPath.skillCosts(rankSum: 8, inputCount: 64, outputCount: 64, passesPerMerge: 10)
        c.expect(costs.merge == 32768 && costs.factored == 10240, "R 8, 64x64, P 10: merge 8*64*64 = 32768, factored 10*8*128 = 10240; got \(costs.merge), \(costs.factored)")
        // 64 x 64: 4096 = P * 128 at P = 32: a tie stays factored, P = 33 merges.
        c.expect(CompositionPath.cheaper(rankSum: 8, inputCount: 64, outputCount: 64, passesPerMerge: 32) == .factored, "64x64 at P 32 (tie)")
        c.expect(CompositionPath.cheaper(rankSum: 8, inputCount: 64, outputCount: 64, passesPerMerge: 33) == .merged, "64x64 at P 33")
        // The paper-size block layer 256 -> 1024: 262144 vs P * 1280: merged from P = 205 on.
        c.expect(CompositionPath.cheaper(rankSum: 24, inputCount: 256, outputCount: 1024, passesPerMerge: 204) == .factored, "256x1024 at P 204")
        c.expect(CompositionPath.cheaper(rankSum: 24, inputCount: 256, outputCount: 1024, passesPerMerge: 205) == .merged, "256x1024 at P 205")
        // A small output layer 64 -> 2: 128 < P * 66 from P = 2.
        c.expect(CompositionPath.cheaper(rankSum: 16, inputCount: 64, outputCount: 2, passesPerMerge: 2) == .merged, "64x2 at P 2")
        c.expect(CompositionPath.cheaper(rankSum: 16, inputCount: 64, outputCount: 2, passesPerMerge: 1) == .factored, "a state per sample")
        c.expect(CompositionPath.cheaper(rankSum: 0, inputCount: 64, outputCount: 2, passesPerMerge: 100) == .factored, "no skills on the layer")
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 5)
            let fx = try skillFixture(&rng, dIn: 64, dOut: 2, ranks: [2, 2], alphas: [16, 16], bias: true)
            let layer = try ComposedLinear(weight: fx.weight, bias: fx.bias, weightName: "fc.weight", skills: fx.skills, passesPerMerge: 5, arena: fx.arena)
            c.expect(layer.path == .merged && layer.path.name == "merged", "a 64x2 layer with 5 passes per state merges")
            let wide = try skillFixture(&rng, dIn: 64, dOut: 64, ranks: [8, 8], alphas: [16, 16], bias: true)
            let l2 = try ComposedLinear(weight: wide.weight, bias: wide.bias, weightName: "fc.weight", skills: wide.skills, passesPerMerge: 5, arena: wide.arena)
            c.expect(l2.path == .factored && l2.path.name == "factored", "a 64x64 layer with 5 passes per state stays factored")
        }
    },

    Check("Skills/ComposedLinear", "backward: dα and dx against central finite differences of sum(y * r)") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 77)
            let dIn = 9, dOut = 6, n = 3, ranks = [2, 3, 0, 1], k = 4
            let fx = try skillFixture(&rng, dIn: dIn, dOut: dOut, ranks: ranks, alphas: [4, 3, 1, 2], bias: true)
            let layer = try ComposedLinear(weight: fx.weight, bias: fx.bias, weightName: "fc.weight", skills: fx.skills, passesPerMerge: 1, arena: fx.arena)
            let xm = CheckMemory.floats(rng.floats(n * dIn)), am = CheckMemory.floats(rng.floats(n * k, -1.5, 1.5))
            let r = rng.floats(n * dOut), ym = CheckMemory.of(.f32, n * dOut)
            let dam = CheckMemory.of(.f32, n * k), dxm = CheckMemory.of(.f32, n * dIn)
            func loss() throws(LichenError) -> Double {
                try layer.forwardFactored(input: try xm.view(.f32, [n, dIn]), alpha: try am.view(.f32, [n, k]), output: try ym.view(.f32, [n, dOut]))
                return graphWeightedSum(ym.array(n * dOut), r)
            }
            let rm = CheckMemory.floats(r)
            try layer.backward(input: try xm.view(.f32, [n, dIn]), alpha: try am.view(.f32, [n, k]),
                               outputGradient: try rm.view(.f32, [n, dOut]),
                               alphaGradient: try dam.view(.f32, [n, k]), inputGradient: try dxm.view(.f32, [n, dIn]))
            let eps: Float = 1e-2
            for (mem, grad, count, what) in [(am, dam, n * k, "alpha"), (xm, dxm, n * dIn, "input")] {
                for j in 0..<count {
                    let keep = mem.floats[j]
                    mem.floats[j] = keep + eps
                    let lp = try loss()
                    mem.floats[j] = keep - eps
                    let lm = try loss()
                    mem.floats[j] = keep
                    let fd = Float((lp - lm) / (2 * Double(eps)))
                    c.expectClose(grad.floats[j], fd, absolute: 1e-3, relative: 1e-2, what + "[\(j)]")
                }
            }
            // The skill with rank 0 (index 2) adapts another layer: its dα is exactly 0.
            var zero = true
            for s in 0..<n where dam.floats[s * k + 2] != 0 { zero = false }
            c.expect(zero, "dα of a skill not adapting the layer is 0")
        }
    },

    Check("Skills/ContextAwareModule", "θ gradients of α(s; θ) (MLP, ReLU, linear head, no softmax) against central finite differences of ½‖y − t‖² through two composed layers; base and skills stay bit-identical") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 91)
            let n = 4, stateCount = 5, k = 3, d0 = 6, d1 = 8, d2 = 3
            let f1 = try skillFixture(&rng, dIn: d0, dOut: d1, ranks: [2, 2, 1], alphas: [4, 2, 1], bias: true)
            let f2 = try skillFixture(&rng, dIn: d1, dOut: d2, ranks: [1, 2, 2], alphas: [1, 2, 4], bias: true, arena: f1.arena)
            let l1 = try ComposedLinear(weight: f1.weight, bias: f1.bias, weightName: "fc.weight", skills: f1.skills, passesPerMerge: 1, arena: f1.arena)
            let l2 = try ComposedLinear(weight: f2.weight, bias: f2.bias, weightName: "fc.weight", skills: f2.skills, passesPerMerge: 1, arena: f1.arena)
            let module = try ContextAwareModule(stateCount: stateCount, hidden: [7, 6], skillCount: k, batchSize: n, seed: 3, arena: f1.arena)
            c.expect(module.graph.outputShape.dimensions == [k] && module.graph.layerCount == 5, "fc1 relu fc2 relu head, k outputs")
            let frozenBefore = try skillFrozenBytes([f1, f2])
            let sm = CheckMemory.floats(rng.floats(n * stateCount)), xm = CheckMemory.floats(rng.floats(n * d0))
            let target = rng.floats(n * d2)
            let hm = CheckMemory.of(.f32, n * d1), ym = CheckMemory.of(.f32, n * d2)
            let am = CheckMemory.of(.f32, n * k)
            // The composed policy's loss, ½ Σ (y − t)², with layer 1's output through ReLU.
            func loss() throws(LichenError) -> Double {
                let alpha = try module.forward(states: try sm.view(.f32, [n, stateCount]))
                try alpha.withFloats { (v) throws(LichenError) in for i in 0..<(n * k) { am.floats[i] = v[i] } }
                try l1.forwardFactored(input: try xm.view(.f32, [n, d0]), alpha: try am.view(.f32, [n, k]), output: try hm.view(.f32, [n, d1]))
                for i in 0..<(n * d1) { hm.floats[i] = max(0, hm.floats[i]) }
                try l2.forwardFactored(input: try hm.view(.f32, [n, d1]), alpha: try am.view(.f32, [n, k]), output: try ym.view(.f32, [n, d2]))
                var l = 0.0
                for i in 0..<(n * d2) { let e = Double(ym.floats[i]) - Double(target[i]); l += 0.5 * e * e }
                return l
            }
            _ = try loss()
            // Backward by hand through the chain: dy = y − t; layer 2 gives dα₂ and dh; ReLU; layer 1 gives dα₁.
            let dym = CheckMemory.floats((0..<(n * d2)).map { ym.floats[$0] - target[$0] })
            let da1 = CheckMemory.of(.f32, n * k), da2 = CheckMemory.of(.f32, n * k), dhm = CheckMemory.of(.f32, n * d1)
            try l2.backward(input: try hm.view(.f32, [n, d1]), alpha: try am.view(.f32, [n, k]), outputGradient: try dym.view(.f32, [n, d2]),
                            alphaGradient: try da2.view(.f32, [n, k]), inputGradient: try dhm.view(.f32, [n, d1]))
            for i in 0..<(n * d1) where hm.floats[i] <= 0 { dhm.floats[i] = 0 }
            try l1.backward(input: try xm.view(.f32, [n, d0]), alpha: try am.view(.f32, [n, k]), outputGradient: try dhm.view(.f32, [n, d1]),
                            alphaGradient: try da1.view(.f32, [n, k]))
            let dam = CheckMemory.floats((0..<(n * k)).map { da1.floats[$0] + da2.floats[$0] })
            try module.store.zeroGradients()
            try module.backward(alphaGradient: try dam.view(.f32, [n, k]))
            let params = try module.trainableParameters()
            c.expect(params.count == 6, "θ: three weights and three biases; got \(params.count)")
            let eps: Float = 1e-2
            var compared = 0
            for (pi, p) in params.enumerated() {
                let g = try p.gradient.toArray()
                for j in graphSampleIndices(p.value.elementCount, 6, &rng) {
                    var keep: Float = 0
                    try p.value.withFloats { (v) throws(LichenError) in keep = v[j] }
                    try p.value.withFloats { (v) throws(LichenError) in v[j] = keep + eps }
                    let lp = try loss()
                    try p.value.withFloats { (v) throws(LichenError) in v[j] = keep - eps }
                    let lm = try loss()
                    try p.value.withFloats { (v) throws(LichenError) in v[j] = keep }
                    let fd = Float((lp - lm) / (2 * Double(eps)))
                    c.expectClose(g[j], fd, absolute: 2e-3, relative: 2e-2, "θ parameter \(pi) [\(j)]")
                    compared += 1
                }
            }
            c.expect(compared >= 30, "compared \(compared) θ elements")
            c.expect(try skillFrozenBytes([f1, f2]) == frozenBefore, "base and skills changed while training θ")
        }
    },

    Check("Skills/ComposedLinear", "bad input: α of the wrong width, NaN α, a merged forward before merge, a skill of another shape or base, a quantized base, no skills") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 13)
            let fx = try skillFixture(&rng, dIn: 4, dOut: 3, ranks: [2, 1], alphas: [2, 1], bias: true)
            let layer = try ComposedLinear(weight: fx.weight, bias: fx.bias, weightName: "fc.weight", skills: fx.skills, passesPerMerge: 1, arena: fx.arena)
            let xm = CheckMemory.floats(rng.floats(8)), ym = CheckMemory.of(.f32, 6)
            let wide = CheckMemory.floats(rng.floats(6)), nanAlpha = CheckMemory.floats([0, 1, 2, .nan]), infAlpha = CheckMemory.floats([0, .infinity])
            let narrow = CheckMemory.floats(rng.floats(4)), narrowAlpha = CheckMemory.floats(rng.floats(4))
            defer { withExtendedLifetime((xm, ym, wide, nanAlpha, infAlpha, narrow, narrowAlpha)) {} }
            let x = try xm.view(.f32, [2, 4]), y = try ym.view(.f32, [2, 3])
            c.expectThrows(.shapeMismatch(operand: "alpha", dimension: 1, expected: 2, got: 3), "α [2, 3] for k = 2") { () throws(LichenError) in
                try layer.forwardFactored(input: x, alpha: try wide.view(.f32, [2, 3]), output: y)
            }
            c.expectThrows(.nonFiniteValue(operand: "alpha", index: 3), "NaN α") { () throws(LichenError) in
                try layer.forwardFactored(input: x, alpha: try nanAlpha.view(.f32, [2, 2]), output: y)
            }
            c.expectThrows(.invalidArgument(name: "merge", value: 0, reason: "merge(alpha:) must run before forwardMerged"), "merged before merge") { () throws(LichenError) in
                try layer.forwardMerged(input: x, output: y)
            }
            c.expectThrows(.nonFiniteValue(operand: "alpha", index: 1), "merge with an infinite α") { () throws(LichenError) in
                try layer.merge(alpha: try infAlpha.view(.f32, [2]))
            }
            c.expectThrows(.shapeMismatch(operand: "input", dimension: 1, expected: 4, got: 2), "input of the wrong width") { () throws(LichenError) in
                try layer.forwardFactored(input: try narrow.view(.f32, [2, 2]), alpha: try narrowAlpha.view(.f32, [2, 2]), output: y)
            }
            let other = try skillFixture(&rng, dIn: 5, dOut: 3, ranks: [1], alphas: [1], bias: false, arena: fx.arena)
            c.expectThrows(.parameterShapeMismatch(tensor: "fc.weight.lora_a", expected: "[1, 4]", got: "[1, 5]"), "a skill for a wider layer") { () throws(LichenError) in
                _ = try ComposedLinear(weight: fx.weight, bias: fx.bias, weightName: "fc.weight", skills: [fx.skills[0], other.skills[0]],
                                       passesPerMerge: 1, arena: fx.arena)
            }
            let foreign = try LoRAAdapter(name: "foreign", base: AdapterBase(name: "other", parameterCount: 1, hash: 2), alpha: 1,
                                          shapes: [LoRATargetShape(weightName: "fc.weight", rank: 1, inputCount: 4, outputCount: 3)], arena: fx.arena)
            c.expectThrows(.invalidModel(key: "lichen.adapter.base", value: "other", reason: "the skills belong to different base models"), "skills of two bases") { () throws(LichenError) in
                _ = try ComposedLinear(weight: fx.weight, bias: fx.bias, weightName: "fc.weight", skills: [fx.skills[0], foreign], passesPerMerge: 1, arena: fx.arena)
            }
            c.expectThrows(.invalidArgument(name: "skill count", value: 0, reason: "a composed layer takes 1...256 skills"), "no skills") { () throws(LichenError) in
                _ = try ComposedLinear(weight: fx.weight, bias: fx.bias, weightName: "fc.weight", skills: [], passesPerMerge: 1, arena: fx.arena)
            }
            let q = CheckMemory.of(.q8_0, 3 * 32)
            c.expectThrows(.unsupportedElementType(operand: "weight", type: .q8_0), "a quantized base weight") { () throws(LichenError) in
                _ = try ComposedLinear(weight: try q.view(.q8_0, [3, 32]), bias: nil, weightName: "fc.weight", skills: fx.skills, passesPerMerge: 1, arena: fx.arena)
            }
        }
    },
    Check("Skills/DiffusionSchedule", "VP schedule T = 5 against values computed independently; noising then one DDPM step at t = 0 with the true noise recovers the action; a t > 0 step by hand with noise and clipping; bad steps") { c in
        checking(&c) { c throws(LichenError) in
            let vp = try VPSchedule()
            // Python, math.exp in double: alpha_t = exp(-0.1/5 - 0.5*9.9*(2t-1)/25), products.
            let alphas: [Float] = [0.8041254416665596, 0.5411818066152029, 0.3642189795715233, 0.24512181203911737, 0.1649686208226314]
            let bars: [Float] = [0.8041254416665596, 0.43517805926635666, 0.1585001086779083, 0.03885183384752592, 0.00640933344625638]
            c.expect(vp.stepCount == 5 && vp.alphas.count == 5, "T = 5")
            for t in 0..<5 {
                c.expectClose(vp.alphas[t], alphas[t], absolute: 1e-7, relative: 1e-6, "alpha_\(t + 1)")
                c.expectClose(vp.alphaBars[t], bars[t], absolute: 1e-9, relative: 1e-6, "alpha_bar_\(t + 1)")
                c.expectClose(vp.betas[t], 1 - alphas[t], absolute: 1e-7, "beta_\(t + 1)")
            }
            var rng = SplitMix64(seed: 3)
            let a = CheckMemory.floats(rng.floats(6, -0.9, 0.9)), e = CheckMemory.floats(rng.floats(6, -2, 2))
            let x = CheckMemory.of(.f32, 6), z = CheckMemory.floats(rng.floats(6, -1, 1))
            func el(_ m: CheckMemory, _ n: Int = 6) throws(LichenError) -> F32Elements { try m.view(.f32, [n]).f32Elements("x") }
            try vp.noise(action: try el(a), epsilon: try el(e), step: 0, into: try el(x))
            for i in 0..<6 {
                let want = Double(bars[0]).squareRoot() * Double(a.floats[i]) + (1 - Double(bars[0])).squareRoot() * Double(e.floats[i])
                c.expectClose(x.floats[i], Float(want), absolute: 1e-6, "x_1[\(i)]")
            }
            try vp.denoise(try el(x), predictedNoise: try el(e), step: 0, noise: try el(z))
            for i in 0..<6 { c.expectClose(x.floats[i], a.floats[i], absolute: 2e-6, "the t = 0 step with the true noise gives back a[\(i)]") }
            // t = 2 (schedule step 3), by hand in Double, with noise and clipping.
            let x2 = CheckMemory.floats([0.5, -0.3, 0.9, -0.95, 0.1, 0.0]), e2 = CheckMemory.floats([0.2, -1.5, -3, 3, 0.0, 0.4])
            let want = (0..<6).map { i -> Float in
                let al = Double(alphas[2]), ab = Double(bars[2])
                let v = (Double(x2.floats[i]) - (1 - al) / (1 - ab).squareRoot() * Double(e2.floats[i])) / al.squareRoot()
                    + (1 - al).squareRoot() * 0.5 * Double(z.floats[i])
                return Float(min(1, max(-1, v)))
            }
            try vp.denoise(try el(x2), predictedNoise: try el(e2), step: 2, noise: try el(z), temperature: 0.5)
            var clipped = 0
            for i in 0..<6 {
                c.expectClose(x2.floats[i], want[i], absolute: 2e-6, "t = 2 step [\(i)]")
                if abs(want[i]) == 1 { clipped += 1 }
            }
            c.expect(clipped >= 1, "the hand case exercises the clipping")
            c.expectThrows(.invalidArgument(name: "diffusion step", value: 5, reason: "must be in 0..<T"), "step 5 of T = 5") { () throws(LichenError) in
                try vp.denoise(try el(x), predictedNoise: try el(e), step: 5, noise: try el(z))
            }
            c.expectThrows(.invalidArgument(name: "diffusion steps", value: 0, reason: "must be in 1...1000"), "T = 0") { () throws(LichenError) in
                _ = try VPSchedule(stepCount: 0)
            }
            c.expectThrows(.shapeMismatch(operand: "predictedNoise", dimension: 0, expected: 6, got: 4), "noise of another count") { () throws(LichenError) in
                try vp.denoise(try el(x), predictedNoise: try el(e, 4), step: 1, noise: try el(z))
            }
        }
    },

    Check("Skills/FourierTime", "Fourier time features at hand-known angles, cos² + sin² = 1, sin 1 and cos 1 to 1e-7; the kernel gradient against finite differences") { c in
        checking(&c) { c throws(LichenError) in
            let w = CheckMemory.floats([0.25, 0.125, 1.0 / 6, 0, -0.25, 1 / (2 * Float.pi)]), emb = CheckMemory.of(.f32, 12)
            try FourierTime.embed(time: 1, kernel: try w.view(.f32, [6]).f32Elements("w"), into: try emb.view(.f32, [12]).f32Elements("e"))
            let h = Float(2).squareRoot() / 2, r3 = Float(3).squareRoot() / 2
            let wantCos: [Float] = [0, h, 0.5, 1, 0, 0.5403023058681398], wantSin: [Float] = [1, h, r3, 0, -1, 0.8414709848078965]
            for j in 0..<6 {
                c.expectClose(emb.floats[j], wantCos[j], absolute: 1e-7, "cos f_\(j)")
                c.expectClose(emb.floats[6 + j], wantSin[j], absolute: 1e-7, "sin f_\(j)")
            }
            var rng = SplitMix64(seed: 8)
            let wide = CheckMemory.floats(rng.floats(16, -3, 3)), e16 = CheckMemory.of(.f32, 32)
            try FourierTime.embed(time: 4, kernel: try wide.view(.f32, [16]).f32Elements("w"), into: try e16.view(.f32, [32]).f32Elements("e"))
            for j in 0..<16 {
                c.expectClose(e16.floats[j] * e16.floats[j] + e16.floats[16 + j] * e16.floats[16 + j], 1, absolute: 1e-6, "cos² + sin² at f = \(j)")
            }
            // dL/dw for L = Σ g · embed(t, w), against central differences.
            let g = rng.floats(32), dw = CheckMemory.of(.f32, 16), gm = CheckMemory.floats(g)
            for j in 0..<16 { dw.floats[j] = 0 }
            let t: Float = 0.6
            try FourierTime.backward(time: t, kernel: try wide.view(.f32, [16]).f32Elements("w"),
                                     embeddingGradient: try gm.view(.f32, [32]).f32Elements("g"),
                                     kernelGradient: try dw.view(.f32, [16]).f32Elements("dw"))
            func loss() throws(LichenError) -> Double {
                try FourierTime.embed(time: t, kernel: try wide.view(.f32, [16]).f32Elements("w"), into: try e16.view(.f32, [32]).f32Elements("e"))
                return graphWeightedSum(e16.array(32), g)
            }
            let eps: Float = 1e-3
            for j in 0..<16 {
                let keep = wide.floats[j]
                wide.floats[j] = keep + eps
                let lp = try loss()
                wide.floats[j] = keep - eps
                let lm = try loss()
                wide.floats[j] = keep
                c.expectClose(dw.floats[j], Float((lp - lm) / (2 * Double(eps))), absolute: 2e-3, relative: 1e-2, "dw[\(j)]")
            }
        }
    },

]

/// One base linear layer `fc.weight` [d_out, d_in] (+ bias) and one LoRA skill per rank (rank 0:
/// a skill that adapts another layer, `other.weight`), random A and B.
struct SkillFixture {
    let arena: Arena
    let weightValues: [Float]
    let biasValues: [Float]?
    let weight: TensorView
    let bias: TensorView?
    let skills: [LoRAAdapter]
    let dIn: Int, dOut: Int
}

func skillFixture(_ rng: inout SplitMix64, dIn: Int, dOut: Int, ranks: [Int], alphas: [Float], bias: Bool, arena given: Arena? = nil)
    throws(LichenError) -> SkillFixture
{
    let arena: Arena
    if let given { arena = given } else { arena = try Arena(byteCount: 8 << 20) }
    let store = ParameterStore(arena: arena)
    let w = rng.floats(dOut * dIn, -0.5, 0.5)
    try store.add(name: "fc.weight", role: .weight, shape: try Shape(dOut, dIn), values: w, trainable: false)
    var b: [Float]? = nil
    if bias {
        b = rng.floats(dOut, -0.2, 0.2)
        try store.add(name: "fc.bias", role: .bias, shape: try Shape(dOut), values: b ?? [], trainable: false)
    }
    let base = AdapterBase(name: "skill-check-base", parameterCount: 1000, hash: 0x5EC)
    var skills: [LoRAAdapter] = []
    for (i, r) in ranks.enumerated() {
        let shape = r == 0 ? LoRATargetShape(weightName: "other.weight", rank: 1, inputCount: 2, outputCount: 2)
            : LoRATargetShape(weightName: "fc.weight", rank: r, inputCount: dIn, outputCount: dOut)
        let s = try LoRAAdapter(name: "skill\(i)", base: base, alpha: alphas[i], shapes: [shape], arena: arena)
        try s.targets[0].a.copy(from: rng.floats(s.targets[0].a.elementCount, -0.5, 0.5))
        try s.targets[0].b.copy(from: rng.floats(s.targets[0].b.elementCount, -0.5, 0.5))
        skills.append(s)
    }
    return SkillFixture(arena: arena, weightValues: w, biasValues: b, weight: try store.parameter(named: "fc.weight").value,
                        bias: bias ? try store.parameter(named: "fc.bias").value : nil, skills: skills, dIn: dIn, dOut: dOut)
}

/// Naive reference in Double: per sample, W(s) = W0 + Σ_i α_i (alpha_i / r_i) B_i A_i merged
/// explicitly, then y = W(s) x + b0.
func skillNaive(_ fx: SkillFixture, x: [Float], alpha: [Float], n: Int) throws(LichenError) -> [Double] {
    let k = fx.skills.count
    var out: [Double] = []
    for s in 0..<n {
        var w = fx.weightValues.map { Double($0) }
        for (i, skill) in fx.skills.enumerated() {
            guard let ti = skill.targetIndex(of: "fc.weight") else { continue }
            let t = skill.targets[ti]
            let a = try t.a.toArray(), b = try t.b.toArray(), r = t.rank
            let c = Double(alpha[s * k + i]) * (skill.alpha == 0 ? 1 : Double(skill.alpha) / Double(r))
            for o in 0..<fx.dOut {
                for j in 0..<fx.dIn {
                    var d = 0.0
                    for q in 0..<r { d += Double(b[o * r + q]) * Double(a[q * fx.dIn + j]) }
                    w[o * fx.dIn + j] += c * d
                }
            }
        }
        for o in 0..<fx.dOut {
            var acc = Double(fx.biasValues?[o] ?? 0)
            for j in 0..<fx.dIn { acc += w[o * fx.dIn + j] * Double(x[s * fx.dIn + j]) }
            out.append(acc)
        }
    }
    return out
}

/// The bits of every base and skill value of the fixtures.
func skillFrozenBytes(_ fixtures: [SkillFixture]) throws(LichenError) -> [UInt32] {
    var out: [UInt32] = []
    for f in fixtures {
        for v in try f.weight.toArray() { out.append(v.bitPattern) }
        if let b = f.bias { for v in try b.toArray() { out.append(v.bitPattern) } }
        for s in f.skills {
            for t in s.targets {
                for v in try t.a.toArray() { out.append(v.bitPattern) }
                for v in try t.b.toArray() { out.append(v.bitPattern) }
            }
        }
    }
    return out
}
