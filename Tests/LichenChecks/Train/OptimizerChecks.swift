import Lichen

/// Parameters for optimizer checks: tensors of `sizes` values in `groupOf` groups, with
/// random initial values, plus a way to draw new gradients.
final class CheckParameters {
    let values: [CheckMemory]
    let gradients: [CheckMemory]
    let sizes: [Int]
    let groupOf: [Int]

    init(sizes: [Int], groupOf: [Int], rng: inout SplitMix64) {
        self.sizes = sizes
        self.groupOf = groupOf
        values = sizes.map { CheckMemory.floats(rng.floats($0, -1, 1)) }
        gradients = sizes.map { CheckMemory(byteCount: $0 * 4) }
    }

    func trainable() throws(LichenError) -> [TrainableParameter] {
        var out: [TrainableParameter] = []
        for i in 0..<sizes.count {
            out.append(TrainableParameter(value: try values[i].view(.f32, [sizes[i]]), gradient: try gradients[i].view(.f32, [sizes[i]]),
                                          group: groupOf[i]))
        }
        return out
    }

    func drawGradients(_ rng: inout SplitMix64) {
        for i in 0..<sizes.count { for j in 0..<sizes[i] { gradients[i].floats[j] = rng.nextFloat(-1, 1) } }
    }

    func valueArrays() -> [[Double]] { (0..<sizes.count).map { doubles(values[$0], sizes[$0]) } }
    func gradientArrays() -> [[Double]] { (0..<sizes.count).map { doubles(gradients[$0], sizes[$0]) } }
    func bits() -> [UInt32] { (0..<sizes.count).flatMap { i in (0..<sizes[i]).map { values[i].floats[$0].bitPattern } } }
}

/// PyTorch's SGD update, in Double, for the groups marked enabled.
struct ReferenceSGD {
    var p: [[Double]]
    var b: [[Double]]
    var t: [Int]

    mutating func step(_ g: [[Double]], groupOf: [Int], groups: [SGD.Group]) {
        for i in 0..<p.count {
            let h = groups[groupOf[i]]
            guard h.isEnabled else { continue }
            let lr = Double(h.learningRate), mu = Double(h.momentum), tau = Double(h.dampening), wd = Double(h.weightDecay)
            for j in 0..<p[i].count {
                var d = g[i][j] + wd * p[i][j]
                if mu != 0 {
                    b[i][j] = t[groupOf[i]] == 0 ? d : mu * b[i][j] + (1 - tau) * d
                    d = h.nesterov ? d + mu * b[i][j] : b[i][j]
                }
                p[i][j] -= lr * d
            }
        }
        for k in 0..<groups.count where groups[k].isEnabled { t[k] += 1 }
    }
}

/// PyTorch's Adam / AdamW update, in Double.
struct ReferenceAdam {
    var p: [[Double]]
    var m: [[Double]]
    var v: [[Double]]
    var t: [Int]

    mutating func step(_ g: [[Double]], groupOf: [Int], groups: [Adam.Group], decoupled: Bool) {
        for k in 0..<groups.count where groups[k].isEnabled { t[k] += 1 }
        for i in 0..<p.count {
            let h = groups[groupOf[i]]
            guard h.isEnabled else { continue }
            let lr = Double(h.learningRate), b1 = Double(h.beta1), b2 = Double(h.beta2), eps = Double(h.epsilon), wd = Double(h.weightDecay)
            var b1t = 1.0, b2t = 1.0
            for _ in 0..<t[groupOf[i]] {
                b1t *= b1
                b2t *= b2
            }
            for j in 0..<p[i].count {
                var d = g[i][j]
                if decoupled { p[i][j] *= 1 - lr * wd } else { d += wd * p[i][j] }
                m[i][j] = b1 * m[i][j] + (1 - b1) * d
                v[i][j] = b2 * v[i][j] + (1 - b2) * d * d
                p[i][j] -= lr / (1 - b1t) * m[i][j] / (v[i][j].squareRoot() / (1 - b2t).squareRoot() + eps)
            }
        }
    }
}

func expectValues(_ c: inout CheckContext, _ params: CheckParameters, _ reference: [[Double]], _ what: String) {
    var worst: Float = 0
    for i in 0..<params.sizes.count {
        for j in 0..<params.sizes[i] {
            let got = params.values[i].floats[j], want = Float(reference[i][j])
            worst = max(worst, abs(got - want) / (1e-5 + 1e-5 * abs(want)))
        }
    }
    c.expect(worst <= 1, what + ": parameters differ from the reference by " + show(worst) + " x the tolerance (1e-5 abs + 1e-5 rel)")
}

let optimizerChecks: [Check] = [
    Check("Train/SGD", "momentum, dampening, Nesterov, weight decay, per-group lr and on/off follow PyTorch's equations over 6 steps") { c in
        guard let arena = checkArena(&c) else { return }
        var rng = SplitMix64(seed: 21)
        let params = CheckParameters(sizes: [5, 7, 4, 3], groupOf: [0, 1, 0, 2], rng: &rng)
        var groups = [
            SGD.Group(learningRate: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01),
            SGD.Group(learningRate: 0.05, momentum: 0.8, weightDecay: 0.05, nesterov: true),
            SGD.Group(learningRate: 0.2),
        ]
        checking(&c) { c throws(LichenError) in
            let before = arena.stats.lowUsedBytes
            let sgd = try SGD(parameters: try params.trainable(), groups: groups, arena: arena)
            c.expect(arena.stats.lowUsedBytes - before >= (5 + 7 + 4) * 4, "momentum buffers come from the arena")
            var ref = ReferenceSGD(p: params.valueArrays(), b: params.sizes.map { [Double](repeating: 0, count: $0) }, t: [0, 0, 0])
            let afterInit = arena.stats.lowUsedBytes
            for step in 0..<6 {
                if step == 2 { try sgd.setEnabled(false, group: 1); groups[1].isEnabled = false }
                if step == 4 { try sgd.setEnabled(true, group: 1); groups[1].isEnabled = true }
                if step == 3 { try sgd.setLearningRate(0.03, group: 0); groups[0].learningRate = 0.03 }
                if step == 5 { try sgd.setWeightDecay(0.2, group: 2); groups[2].weightDecay = 0.2 }
                params.drawGradients(&rng)
                try sgd.step()
                ref.step(params.gradientArrays(), groupOf: params.groupOf, groups: groups)
                expectValues(&c, params, ref.p, "SGD step \(step + 1)")
            }
            c.expect(sgd.groupStepCounts == [6, 4, 6], "group step counts skip disabled steps: \(sgd.groupStepCounts)")
            c.expect(sgd.stepCount == 6, "step count")
            c.expect(arena.stats.lowUsedBytes == afterInit, "steps take nothing from the arena")
        }
    },
    Check("Train/Adam", "Adam (coupled decay) and AdamW (decoupled) with bias correction follow PyTorch's equations over 7 steps") { c in
        guard let arena = checkArena(&c) else { return }
        for decoupled in [false, true] {
            var rng = SplitMix64(seed: decoupled ? 23 : 22)
            let params = CheckParameters(sizes: [6, 5, 3], groupOf: [0, 1, 1], rng: &rng)
            var groups = [
                Adam.Group(learningRate: 0.01, weightDecay: 0.1),
                Adam.Group(learningRate: 0.003, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.02),
            ]
            checking(&c) { c throws(LichenError) in
                let adam = try Adam(parameters: try params.trainable(), groups: groups,
                                    weightDecayMode: decoupled ? .decoupled : .coupled, arena: arena)
                var ref = ReferenceAdam(p: params.valueArrays(), m: params.sizes.map { [Double](repeating: 0, count: $0) },
                                        v: params.sizes.map { [Double](repeating: 0, count: $0) }, t: [0, 0])
                for step in 0..<7 {
                    if step == 1 { try adam.setEnabled(false, group: 1); groups[1].isEnabled = false }
                    if step == 3 { try adam.setEnabled(true, group: 1); groups[1].isEnabled = true }
                    if step == 5 { try adam.setLearningRate(0.02, group: 0); groups[0].learningRate = 0.02 }
                    params.drawGradients(&rng)
                    try adam.step()
                    ref.step(params.gradientArrays(), groupOf: params.groupOf, groups: groups, decoupled: decoupled)
                    expectValues(&c, params, ref.p, (decoupled ? "AdamW" : "Adam") + " step \(step + 1)")
                }
                c.expect(adam.groupStepCounts == [7, 5], "Adam group step counts \(adam.groupStepCounts)")
            }
        }
    },
    Check("Train/Clipping", "global L2 norm clipping and value clipping follow their formulas; disabled groups untouched") { c in
        guard let arena = checkArena(&c) else { return }
        var rng = SplitMix64(seed: 24)
        let params = CheckParameters(sizes: [8, 5, 6], groupOf: [0, 0, 1], rng: &rng)
        checking(&c) { c throws(LichenError) in
            let sgd = try SGD(parameters: try params.trainable(), groups: [SGD.Group(learningRate: 0.1), SGD.Group(learningRate: 0.1, isEnabled: false)],
                              arena: arena)
            params.drawGradients(&rng)
            let g0 = params.gradientArrays()
            var sumSquares = 0.0
            for i in 0..<2 { for x in g0[i] { sumSquares += x * x } }
            let norm = sumSquares.squareRoot()
            let maxNorm = Float(norm / 2)
            let reported = try sgd.clipGradientNorm(maxNorm: maxNorm)
            c.expectClose(reported, Float(norm), absolute: 0, relative: 1e-6, "reported norm is the norm before clipping")
            let coefficient = Double(maxNorm) / (norm + 1e-6)
            let g1 = params.gradientArrays()
            for i in 0..<2 {
                for j in 0..<g0[i].count {
                    c.expectClose(Float(g1[i][j]), Float(g0[i][j] * coefficient), absolute: 1e-7, relative: 1e-6, "clipped gradient \(i),\(j)")
                }
            }
            c.expect(g1[2] == g0[2], "a disabled group's gradient is not clipped")
            // Under the limit: unchanged, bit for bit.
            let bitsBefore = params.gradientArrays()
            _ = try sgd.clipGradientNorm(maxNorm: 1e6)
            c.expect(params.gradientArrays() == bitsBefore, "gradients under the limit are unchanged")
            // By value.
            params.drawGradients(&rng)
            let v0 = params.gradientArrays()
            try sgd.clipGradientValues(limit: 0.3)
            let v1 = params.gradientArrays()
            for i in 0..<2 { for j in 0..<v0[i].count { c.expect(v1[i][j] == min(max(v0[i][j], -Double(Float(0.3))), Double(Float(0.3))), "value clip \(i),\(j)") } }
            c.expect(v1[2] == v0[2], "a disabled group's gradient is not clamped")
            // The ParameterList form covers every parameter.
            let list = try ParameterList(try params.trainable(), groupCount: 2)
            params.drawGradients(&rng)
            let w0 = params.gradientArrays()
            var all = 0.0
            for a in w0 { for x in a { all += x * x } }
            let n = try list.clipGradientNorm(maxNorm: 0.5)
            c.expectClose(n, Float(all.squareRoot()), absolute: 0, relative: 1e-6, "ParameterList norm over all groups")
            var after = 0.0
            for a in params.gradientArrays() { for x in a { after += x * x } }
            c.expectClose(Float(after.squareRoot()), 0.5, absolute: 1e-6, "norm after clipping is maxNorm")
            // Bad limits and NaN.
            c.expectThrows(.invalidArgument(name: "maxNorm", value: 0, reason: "must be finite and > 0"), "maxNorm 0") { () throws(LichenError) in
                try sgd.clipGradientNorm(maxNorm: 0)
            }
            params.gradients[1].floats[2] = .nan
            let beforeNaN = params.gradients[0].floats[0]
            c.expectThrows(.invalidArgument(name: "gradient", value: 1, reason: "gradient of the parameter at this index holds NaN or infinity"),
                           "NaN gradient in norm clipping") { () throws(LichenError) in try sgd.clipGradientNorm(maxNorm: 0.1) }
            c.expect(params.gradients[0].floats[0] == beforeNaN, "nothing clipped when NaN is found")
            c.expectThrows(.invalidArgument(name: "gradient", value: 1, reason: "gradient of the parameter at this index holds NaN"),
                           "NaN gradient in value clipping") { () throws(LichenError) in try sgd.clipGradientValues(limit: 0.1) }
        }
    },
    Check("Train/Optimizers", "NaN gradients throw and change nothing; reset state gives a fresh optimizer's step, bit for bit") { c in
        guard let arena = checkArena(&c) else { return }
        var rng = SplitMix64(seed: 25)
        let params = CheckParameters(sizes: [4, 6], groupOf: [0, 1], rng: &rng)
        checking(&c) { c throws(LichenError) in
            let initial = params.valueArrays()
            let groups = [Adam.Group(learningRate: 0.01), Adam.Group(learningRate: 0.02, weightDecay: 0.1)]
            let adam = try Adam(parameters: try params.trainable(), groups: groups, weightDecayMode: .decoupled, arena: arena)
            params.drawGradients(&rng)
            let firstGradients = params.gradientArrays()
            try adam.step()
            let firstBits = params.bits()
            for _ in 0..<3 {
                params.drawGradients(&rng)
                try adam.step()
            }
            // NaN in group 1 -> throw, nothing changes.
            let beforeNaN = params.bits()
            params.gradients[1].floats[3] = .infinity
            c.expectThrows(.invalidArgument(name: "gradient", value: 1, reason: "gradient of the parameter at this index holds NaN or infinity"),
                           "infinite gradient") { () throws(LichenError) in try adam.step() }
            c.expect(params.bits() == beforeNaN, "a throwing step changes no parameter")
            c.expect(adam.stepCount == 4, "a throwing step is not counted")
            // Disabled group with NaN: ignored.
            try adam.setEnabled(false, group: 1)
            _ = c.expectNoThrow("NaN in a disabled group") { () throws(LichenError) in try adam.step() }
            try adam.setEnabled(true, group: 1)
            // Reset: restore the initial values and first gradients; one step equals the first step.
            try adam.resetState()
            c.expect(adam.stepCount == 0 && adam.groupStepCounts == [0, 0], "reset zeroes step counts")
            for i in 0..<2 {
                for j in 0..<params.sizes[i] {
                    params.values[i].floats[j] = Float(initial[i][j])
                    params.gradients[i].floats[j] = Float(firstGradients[i][j])
                }
            }
            try adam.step()
            c.expect(params.bits() == firstBits, "after reset, a step reproduces the first step")
        }
    },
    Check("Train/Determinism", "cross-entropy + SGD-Nesterov and entropy + Adam runs repeat bit for bit from the same seed") { c in
        func run(seed: UInt64) -> (bits: [UInt32], losses: [Float])? {
            var c2 = CheckContext()
            guard let arena = checkArena(&c2) else { return nil }
            var rng = SplitMix64(seed: seed)
            let logits = CheckMemory.floats(rng.floats(20, -1, 1)), grad = CheckMemory(byteCount: 80)
            let labels = CheckMemory.floats([1, 4, 0, 2])
            var losses: [Float] = []
            do throws(LichenError) {
                let shape = try Shape(4, 5)
                let x = try TensorView(base: logits.base, byteCount: 80, type: .f32, shape: shape)
                let g = try TensorView(base: grad.base, byteCount: 80, type: .f32, shape: shape)
                let ce = try CrossEntropyLoss(maximumBatch: 4, classes: 5, arena: arena)
                let entropy = try EntropyLoss(maximumBatch: 4, classes: 5, arena: arena)
                let sgd = try SGD(parameters: [TrainableParameter(value: x, gradient: g)],
                                  groups: [SGD.Group(learningRate: 0.5, momentum: 0.9, nesterov: true)], arena: arena)
                let adam = try Adam(parameters: [TrainableParameter(value: x, gradient: g)], groups: [Adam.Group(learningRate: 0.05)], arena: arena)
                for _ in 0..<20 {
                    losses.append(try ce.compute(logits: x, labels: try labels.view(.f32, [4]), gradient: g))
                    try sgd.step()
                }
                for _ in 0..<10 {
                    losses.append(try entropy.compute(logits: x, gradient: g))
                    _ = try adam.clipGradientNorm(maxNorm: 0.1)
                    try adam.step()
                }
            } catch {
                return nil
            }
            return ((0..<20).map { logits.floats[$0].bitPattern }, losses)
        }
        guard let a = run(seed: 99), let b = run(seed: 99), let other = run(seed: 100) else {
            c.fail("a run threw")
            return
        }
        c.expect(a.bits == b.bits, "same seed, same parameter bits")
        c.expect(a.losses.map { $0.bitPattern } == b.losses.map { $0.bitPattern }, "same seed, same loss bits")
        c.expect(a.bits != other.bits, "another seed gives other parameters")
        c.expect(a.losses[19] < a.losses[0] * 0.2, "cross-entropy falls under SGD: " + show(a.losses[0]) + " -> " + show(a.losses[19]))
        c.expect(a.losses[29] < a.losses[20], "entropy falls under Adam: " + show(a.losses[20]) + " -> " + show(a.losses[29]))
    },
    Check("Train/Optimizers", "bad hyperparameters and group indices throw naming the group") { c in
        guard let arena = checkArena(&c) else { return }
        var rng = SplitMix64(seed: 26)
        let params = CheckParameters(sizes: [3], groupOf: [1], rng: &rng)
        checking(&c) { c throws(LichenError) in
            let p = try params.trainable()
            c.expectThrows(.invalidArgument(name: "group", value: 0, reason: "parameter at this index names a group that does not exist"), "group 1 of 1") {
                () throws(LichenError) in try SGD(parameters: p, groups: [SGD.Group(learningRate: 0.1)], arena: arena)
            }
            c.expectThrows(.invalidArgument(name: "nesterov", value: 0, reason: "group at this index: needs momentum > 0 and zero dampening"), "Nesterov without momentum") {
                () throws(LichenError) in try SGD(parameters: [], groups: [SGD.Group(learningRate: 0.1, nesterov: true)], arena: arena)
            }
            c.expectThrows(.invalidArgument(name: "beta2", value: 1, reason: "group at this index: must lie in [0, 1)"), "beta2 = 1") {
                () throws(LichenError) in try Adam(parameters: [], groups: [Adam.Group(), Adam.Group(beta2: 1)], arena: arena)
            }
            c.expectThrows(.invalidArgument(name: "learningRate", value: 0, reason: "group at this index: must be finite and >= 0"), "NaN learning rate") {
                () throws(LichenError) in try Adam(parameters: [], groups: [Adam.Group(learningRate: .nan)], arena: arena)
            }
            let mismatched = TrainableParameter(value: try params.values[0].view(.f32, [3]), gradient: try params.gradients[0].view(.f32, [2]))
            c.expectThrows(.shapeMismatch(operand: "gradient", dimension: 0, expected: 3, got: 2), "gradient of another size") {
                () throws(LichenError) in try ParameterList([mismatched], groupCount: 1)
            }
        }
    },
]

let trainChecks: [Check] = lossChecks + optimizerChecks
