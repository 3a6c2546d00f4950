import Lichen

// Checks of Sources/Lichen/Adaptation on a tiny model built here:
//     x [4] → linear l1 (3) → batch norm bn (3) → relu → linear l2 (4 classes)
// with every parameter added to a ParameterStore directly. References are written out in
// Double (batch statistics: per-channel mean and biased variance over the batch, eps 1e-5).

private let tinyIn = 4, tinyHidden = 3, tinyClasses = 4, tinyBatch = 6

/// The tiny model's parameter values (f32), in store order.
private struct TinyModel {
    var w1: [Float], b1: [Float], gamma: [Float], beta: [Float], runMean: [Float], runVar: [Float], w2: [Float], b2: [Float]

    init(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        w1 = rng.floats(tinyHidden * tinyIn)
        b1 = rng.floats(tinyHidden)
        gamma = rng.floats(tinyHidden, 0.5, 1.5)
        beta = rng.floats(tinyHidden, -0.5, 0.5)
        runMean = rng.floats(tinyHidden, -0.5, 0.5)
        runVar = rng.floats(tinyHidden, 0.5, 2)
        w2 = rng.floats(tinyClasses * tinyHidden, -2, 2)
        b2 = rng.floats(tinyClasses)
    }

    var spec: ModelSpec {
        var s = graphSpec([tinyIn], [
            graphLayer(.linear, "l1", [-1]) { $0.outputs = tinyHidden },
            graphLayer(.batchNorm, "bn", [0]),
            graphLayer(.relu, "r", [1]),
            graphLayer(.linear, "l2", [2]) { $0.outputs = tinyClasses },
        ])
        s.classCount = tinyClasses
        return s
    }

    /// A store over `arena` holding the parameters (frozen; the session picks what trains).
    func store(_ arena: Arena) throws(LichenError) -> ParameterStore {
        let st = ParameterStore(arena: arena)
        try st.add(name: "l1.weight", role: .weight, shape: Shape(tinyHidden, tinyIn), values: w1, trainable: false)
        try st.add(name: "l1.bias", role: .bias, shape: Shape(tinyHidden), values: b1, trainable: false)
        try st.add(name: "bn.weight", role: .normWeight, shape: Shape(tinyHidden), values: gamma, trainable: false)
        try st.add(name: "bn.bias", role: .normBias, shape: Shape(tinyHidden), values: beta, trainable: false)
        try st.add(name: "bn.running_mean", role: .runningMean, shape: Shape(tinyHidden), values: runMean, trainable: false)
        try st.add(name: "bn.running_var", role: .runningVariance, shape: Shape(tinyHidden), values: runVar, trainable: false)
        try st.add(name: "l2.weight", role: .weight, shape: Shape(tinyClasses, tinyHidden), values: w2, trainable: false)
        try st.add(name: "l2.bias", role: .bias, shape: Shape(tinyClasses), values: b2, trainable: false)
        return st
    }
}

/// The tiny model's logits in Double for `n` inputs, normalising with the batch's statistics
/// (or the running ones), with γ and β given separately.
private func tinyLogits(_ m: TinyModel, _ x: [Float], n: Int, gamma: [Double], beta: [Double], batchStatistics: Bool) -> [Double] {
    var h = [Double](repeating: 0, count: n * tinyHidden)
    for b in 0..<n {
        for o in 0..<tinyHidden {
            var s = Double(m.b1[o])
            for i in 0..<tinyIn { s += Double(m.w1[o * tinyIn + i]) * Double(x[b * tinyIn + i]) }
            h[b * tinyHidden + o] = s
        }
    }
    var t = h
    for ch in 0..<tinyHidden {
        var mean = Double(m.runMean[ch]), variance = Double(m.runVar[ch])
        if batchStatistics {
            mean = 0
            for b in 0..<n { mean += h[b * tinyHidden + ch] }
            mean /= Double(n)
            variance = 0
            for b in 0..<n { let d = h[b * tinyHidden + ch] - mean; variance += d * d }
            variance /= Double(n)
        }
        let inv = 1 / (variance + 1e-5).squareRoot()
        for b in 0..<n {
            let y = (h[b * tinyHidden + ch] - mean) * inv * gamma[ch] + beta[ch]
            t[b * tinyHidden + ch] = max(y, 0)
        }
    }
    var z = [Double](repeating: 0, count: n * tinyClasses)
    for b in 0..<n {
        for k in 0..<tinyClasses {
            var s = Double(m.b2[k])
            for o in 0..<tinyHidden { s += Double(m.w2[k * tinyHidden + o]) * t[b * tinyHidden + o] }
            z[b * tinyClasses + k] = s
        }
    }
    return z
}

/// Tent's loss in Double: the mean over the batch of the softmax entropy.
private func meanEntropy(_ z: [Double], n: Int) -> Double {
    let lp = refLogSoftmax(z, classes: tinyClasses)
    var total = 0.0
    for i in 0..<(n * tinyClasses) { total -= refExp(lp[i]) * lp[i] }
    return total / Double(n)
}

/// d(mean entropy)/d(γ, β) by central differences in Double (γ first, then β).
private func entropyGradient(_ m: TinyModel, _ x: [Float], n: Int, gamma: [Double], beta: [Double]) -> [Double] {
    centralDifferences(gamma + beta, h: 1e-6) { p in
        let g = Array(p[0..<tinyHidden]), b = Array(p[tinyHidden..<(2 * tinyHidden)])
        return meanEntropy(tinyLogits(m, x, n: n, gamma: g, beta: b, batchStatistics: true), n: n)
    }
}

/// Bits of every parameter value in the store, in order.
private func storeBits(_ st: ParameterStore) throws(LichenError) -> [UInt32] {
    var out: [UInt32] = []
    for i in 0..<st.count { out += try st[i].value.toArray().map { $0.bitPattern } }
    return out
}

private func values(_ st: ParameterStore, _ name: String) throws(LichenError) -> [Float] {
    try st.parameter(named: name).value.toArray()
}

/// Runs a session step on `x` (n rows) and returns the logits as an array.
private func step(_ s: AdaptationSession, _ x: [Float], n: Int) throws(LichenError) -> [Float] {
    let mem = CheckMemory.floats(x)
    defer { withExtendedLifetime(mem) {} }
    return try s.step(batch: try mem.view(.f32, [n, tinyIn])).toArray()
}

private func batch(_ seed: UInt64, n: Int = tinyBatch) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return rng.floats(n * tinyIn, -2, 2)
}

let adaptationChecks: [Check] = [
    Check("Adaptation/Tent", "one SGD step equals p - lr * d(mean entropy)/dp by finite differences; logits are the pre-update ones") { c in
        do throws(LichenError) {
            let m = TinyModel(seed: 11)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let lr: Float = 0.5
            let s = try AdaptationSession(method: .tent, spec: m.spec, store: st, batchSize: tinyBatch, arena: arena,
                                          optimizer: .sgd(learningRate: lr, momentum: 0.9, nesterov: false))
            c.expect(s.trainedParameters.count == 2, "frugal mode trains bn.weight and bn.bias, got \(s.trainedParameters.count)")
            let x = batch(21)
            let g0 = m.gamma.map { Double($0) }, b0 = m.beta.map { Double($0) }
            let expectedLogits = tinyLogits(m, x, n: tinyBatch, gamma: g0, beta: b0, batchStatistics: true)
            let fd = entropyGradient(m, x, n: tinyBatch, gamma: g0, beta: b0)
            let before = try storeBits(st)
            let z = try step(s, x, n: tinyBatch)
            graphExpectAllClose(&c, z, expectedLogits, atol: 1e-5, rtol: 1e-5, "returned logits = pre-update batch-stat forward")
            c.expectClose(s.lastLoss, Float(meanEntropy(expectedLogits, n: tinyBatch)), absolute: 1e-5, relative: 1e-5, "loss")
            // The gradients the step used (the optimizer reads them and leaves them as they are).
            let grad = try st.parameter(named: "bn.weight").gradient!.toArray() + st.parameter(named: "bn.bias").gradient!.toArray()
            graphExpectAllClose(&c, grad, fd, atol: 1e-5, rtol: 1e-3, "dL/d(gamma, beta) vs central differences (h 1e-6, Double)")
            // First SGD step with momentum: b = g, p ← p − lr b.
            var expected: [Double] = []
            for i in 0..<(2 * tinyHidden) { expected.append((i < tinyHidden ? g0[i] : b0[i - tinyHidden]) - Double(lr) * fd[i]) }
            let after = try values(st, "bn.weight") + values(st, "bn.bias")
            graphExpectAllClose(&c, after, expected, atol: 2e-5, rtol: 1e-4, "gamma, beta after one SGD step")
            let initialAffine: [Float] = m.gamma + m.beta
            var changed = false
            for i in 0..<after.count where after[i] != initialAffine[i] { changed = true }
            c.expect(changed, "the step changed gamma or beta")
            // Everything else is bit-identical (bn.weight and bn.bias are store entries 2 and 3).
            let now = try storeBits(st)
            var others = 0
            var k = 0
            for i in 0..<st.count {
                let count = st[i].value.elementCount
                if i != 2 && i != 3 { for j in k..<(k + count) where now[j] != before[j] { others += 1 } }
                k += count
            }
            c.expect(others == 0, "\(others) values outside gamma and beta changed")
        } catch {
            c.fail("tent sgd: " + error.description)
        }
    },

    Check("Adaptation/Tent", "two Adam steps (lr 1e-2, betas 0.9/0.999) equal the update equations over finite-difference gradients") { c in
        do throws(LichenError) {
            let m = TinyModel(seed: 12)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8
            let s = try AdaptationSession(method: .tent, spec: m.spec, store: st, batchSize: tinyBatch, arena: arena,
                                          optimizer: .adam(learningRate: Float(lr), beta1: Float(b1), beta2: Float(b2), epsilon: Float(eps)))
            var p = m.gamma.map { Double($0) } + m.beta.map { Double($0) }
            var mm = [Double](repeating: 0, count: p.count), vv = mm
            var t = 0
            for seed: UInt64 in [31, 32] {
                let x = batch(seed)
                let fd = entropyGradient(m, x, n: tinyBatch, gamma: Array(p[0..<tinyHidden]), beta: Array(p[tinyHidden...]))
                t += 1
                let c1 = 1 - b1.powInt(t), c2 = 1 - b2.powInt(t)
                for i in 0..<p.count {
                    mm[i] = b1 * mm[i] + (1 - b1) * fd[i]
                    vv[i] = b2 * vv[i] + (1 - b2) * fd[i] * fd[i]
                    p[i] -= (lr / c1) * mm[i] / (vv[i].squareRoot() / c2.squareRoot() + eps)
                }
                _ = try step(s, x, n: tinyBatch)
                let got = try values(st, "bn.weight") + values(st, "bn.bias")
                graphExpectAllClose(&c, got, p, atol: 2e-5, "gamma, beta after Adam step \(t)")
            }
            c.expect(s.stepCount == 2, "stepCount 2, got \(s.stepCount)")
        } catch {
            c.fail("tent adam: " + error.description)
        }
    },

    Check("Adaptation/Source", "uses running statistics (logits equal an inference graph's) and leaves every parameter bit-identical") { c in
        do throws(LichenError) {
            let m = TinyModel(seed: 13)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let s = try AdaptationSession(method: .source, spec: m.spec, store: st, batchSize: tinyBatch, arena: arena)
            let inference = try Graph(spec: m.spec, store: st, batchSize: tinyBatch, arena: arena)
            let before = try storeBits(st)
            for seed: UInt64 in [41, 42, 43] {
                let x = batch(seed)
                let z = try step(s, x, n: tinyBatch)
                let r = try graphRun(inference, x, [tinyBatch, tinyIn])
                c.expect(z.map { $0.bitPattern } == r.map { $0.bitPattern }, "source logits equal the inference graph's bit for bit")
                let ref = tinyLogits(m, x, n: tinyBatch, gamma: m.gamma.map { Double($0) }, beta: m.beta.map { Double($0) },
                                     batchStatistics: false)
                graphExpectAllClose(&c, z, ref, atol: 1e-5, rtol: 1e-5, "source logits vs running-statistics reference")
            }
            c.expect(try storeBits(st) == before, "every parameter bit-identical after three source steps")
        } catch {
            c.fail("source: " + error.description)
        }
    },

    Check("Adaptation/BNAdapt", "normalises with the batch's mean and biased variance; parameters and running buffers untouched") { c in
        do throws(LichenError) {
            let m = TinyModel(seed: 14)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let s = try AdaptationSession(method: .bnAdapt, spec: m.spec, store: st, batchSize: tinyBatch, arena: arena)
            let before = try storeBits(st)
            let g = m.gamma.map { Double($0) }, b = m.beta.map { Double($0) }
            for (seed, n) in [(UInt64(51), tinyBatch), (UInt64(52), 3)] {
                let x = batch(seed, n: n)
                let z = try step(s, x, n: n)
                graphExpectAllClose(&c, z, tinyLogits(m, x, n: n, gamma: g, beta: b, batchStatistics: true), atol: 1e-5, rtol: 1e-5,
                                    "bn-adapt logits vs batch-statistics reference (n \(n))")
                let running = tinyLogits(m, x, n: n, gamma: g, beta: b, batchStatistics: false)
                var differs = false
                for i in 0..<z.count where abs(Double(z[i]) - running[i]) > 1e-3 { differs = true }
                c.expect(differs, "bn-adapt logits differ from the running-statistics ones (n \(n))")
            }
            c.expect(try storeBits(st) == before, "every parameter and running buffer bit-identical")
        } catch {
            c.fail("bn-adapt: " + error.description)
        }
    },

    Check("Adaptation/Session", "reset restores the initial bits and optimizer state (the first step repeats bit for bit)") { c in
        do throws(LichenError) {
            let m = TinyModel(seed: 15)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let s = try AdaptationSession(method: .tent, spec: m.spec, store: st, batchSize: tinyBatch, arena: arena)
            let initial = try storeBits(st)
            let first = try step(s, batch(61), n: tinyBatch)
            let afterFirst = try storeBits(st)
            _ = try step(s, batch(62), n: tinyBatch)
            _ = try step(s, batch(63), n: tinyBatch)
            c.expect(try storeBits(st) != initial, "three Tent steps changed the parameters")
            try s.reset()
            c.expect(try storeBits(st) == initial, "reset restores every parameter bit for bit")
            c.expect(s.stepCount == 0, "stepCount 0 after reset")
            let again = try step(s, batch(61), n: tinyBatch)
            c.expect(again.map { $0.bitPattern } == first.map { $0.bitPattern }, "first logits repeat after reset")
            c.expect(try storeBits(st) == afterFirst, "first update repeats bit for bit after reset (Adam moments cleared)")
        } catch {
            c.fail("reset: " + error.description)
        }
    },

    Check("Adaptation/Session", "a NaN frame or a wrong shape throws and leaves parameters and optimizer state unchanged") { c in
        do throws(LichenError) {
            let m = TinyModel(seed: 16)
            // Reference: steps on batches A then B without interruption.
            let arenaR = try Arena(byteCount: 16 << 20)
            let stR = try m.store(arenaR)
            let r = try AdaptationSession(method: .tent, spec: m.spec, store: stR, batchSize: tinyBatch, arena: arenaR)
            _ = try step(r, batch(71), n: tinyBatch)
            _ = try step(r, batch(72), n: tinyBatch)
            // Same, with bad batches in between.
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let s = try AdaptationSession(method: .tent, spec: m.spec, store: st, batchSize: tinyBatch, arena: arena)
            _ = try step(s, batch(71), n: tinyBatch)
            let afterA = try storeBits(st)
            var bad = batch(73)
            bad[9] = Float.nan
            c.expectThrows(.nonFiniteValue(operand: "input", index: 9), "NaN frame") { () throws(LichenError) in
                try step(s, bad, n: tinyBatch)
            }
            bad[9] = Float.infinity
            c.expectThrows(.nonFiniteValue(operand: "input", index: 9), "infinite frame") { () throws(LichenError) in
                try step(s, bad, n: tinyBatch)
            }
            let wrong = CheckMemory.floats([Float](repeating: 0.5, count: tinyBatch * 5))
            c.expectThrows(.shapeMismatch(operand: "input", dimension: 1, expected: tinyIn, got: 5), "wrong frame size") {
                () throws(LichenError) in _ = try s.step(batch: try wrong.view(.f32, [tinyBatch, 5]))
            }
            withExtendedLifetime(wrong) {}
            c.expect(try storeBits(st) == afterA, "parameters unchanged by the refused batches")
            c.expect(s.stepCount == 1, "stepCount unchanged by the refused batches")
            _ = try step(s, batch(72), n: tinyBatch)
            c.expect(try storeBits(st) == storeBits(stR), "the next step equals the uninterrupted run's bit for bit (optimizer state unchanged)")
        } catch {
            c.fail("bad input: " + error.description)
        }
    },

    Check("Adaptation/Tent", "full mode trains every weight, bias and norm parameter and refuses a frozen one") { c in
        do throws(LichenError) {
            let m = TinyModel(seed: 17)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let s = try AdaptationSession(method: .tent, spec: m.spec, store: st, batchSize: tinyBatch, arena: arena, mode: .full)
            c.expect(s.trainedParameters == [0, 1, 2, 3, 6, 7], "full mode trains every parameter but the running statistics")
            let w2 = try values(st, "l2.weight")
            _ = try step(s, batch(81), n: tinyBatch)
            c.expect(try values(st, "l2.weight") != w2, "full mode updates l2.weight")
            // A read-only weight cannot train: full mode says so.
            let arena2 = try Arena(byteCount: 16 << 20)
            let st2 = ParameterStore(arena: arena2)
            let frozen = CheckMemory.floats(m.w1)
            try st2.adopt(name: "l1.weight", role: .weight, view: try frozen.view(.f32, [tinyHidden, tinyIn]), writable: false)
            try st2.add(name: "l1.bias", role: .bias, shape: Shape(tinyHidden), values: m.b1, trainable: false)
            try st2.add(name: "bn.weight", role: .normWeight, shape: Shape(tinyHidden), values: m.gamma, trainable: false)
            try st2.add(name: "bn.bias", role: .normBias, shape: Shape(tinyHidden), values: m.beta, trainable: false)
            try st2.add(name: "bn.running_mean", role: .runningMean, shape: Shape(tinyHidden), values: m.runMean, trainable: false)
            try st2.add(name: "bn.running_var", role: .runningVariance, shape: Shape(tinyHidden), values: m.runVar, trainable: false)
            try st2.add(name: "l2.weight", role: .weight, shape: Shape(tinyClasses, tinyHidden), values: m.w2, trainable: false)
            try st2.add(name: "l2.bias", role: .bias, shape: Shape(tinyClasses), values: m.b2, trainable: false)
            c.expectThrows(.invalidArgument(name: "mode", value: 0, reason: "full mode trains every parameter; the one at this index is quantized or read-only (use frugal mode or an f32 model)"),
                           "full mode over a read-only weight") { () throws(LichenError) in
                _ = try AdaptationSession(method: .tent, spec: m.spec, store: st2, batchSize: tinyBatch, arena: arena2, mode: .full)
            }
            let frugal = try AdaptationSession(method: .tent, spec: m.spec, store: st2, batchSize: tinyBatch, arena: arena2)
            c.expect(frugal.trainedParameters == [2, 3], "frugal mode works over a read-only weight")
            withExtendedLifetime(frozen) {}
        } catch {
            c.fail("full mode: " + error.description)
        }
    },
]

extension Double {
    /// self^n for n >= 0, by repeated multiplication (as the optimizer's running product).
    fileprivate func powInt(_ n: Int) -> Double {
        var r = 1.0
        for _ in 0..<n { r *= self }
        return r
    }
}
