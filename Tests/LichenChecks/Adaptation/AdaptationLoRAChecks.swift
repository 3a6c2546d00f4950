import Lichen

// Checks of frugal mode's LoRA trainables (Sources/Lichen/Adaptation/AdaptationLoRA.swift and
// their use by AdaptationSession, CoTTA and RMT) on CoTTAChecks' tiny image model:
//     x [1, 4, 4] → flatten → linear l1 (3) → batch norm bn (3) → relu → linear l2 (4 classes)
// with a rank-2 adapter on both linear layers. The reference forward is written out in Double:
//     h = W1 x + b1 + s · B1 (A1 x),  z = W2 t + b2 + s · B2 (A2 t),  s = alpha / r,
// t the batch-statistics batch norm and relu of h; gradients by central differences.

private let loraRank = 2
private let loraAlpha: Float = 3
private let loraSettings = AdaptationLoRA(rank: loraRank, alpha: loraAlpha, targets: ["linear"], seed: 5)

/// Trained values in the trainables' order: γ (3), β (3), A1 [2, 16], B1 [3, 2], A2 [2, 3], B2 [4, 2].
private let loraValueCount = 2 * cHidden + loraRank * imgPixels + cHidden * loraRank + loraRank * cHidden + cClasses * loraRank

/// Logits in Double of the tiny model with the adapter, batch statistics; `p` in the order above.
private func loraLogits(_ m: ImageModel, _ x: [Float], n: Int, _ p: [Double]) -> [Double] {
    let s = Double(loraAlpha) / Double(loraRank)
    var o = 2 * cHidden
    let a1 = Array(p[o..<(o + loraRank * imgPixels)])
    o += loraRank * imgPixels
    let b1 = Array(p[o..<(o + cHidden * loraRank)])
    o += cHidden * loraRank
    let a2 = Array(p[o..<(o + loraRank * cHidden)])
    o += loraRank * cHidden
    let b2 = Array(p[o..<(o + cClasses * loraRank)])
    var h = [Double](repeating: 0, count: n * cHidden)
    for b in 0..<n {
        var u = [Double](repeating: 0, count: loraRank)
        for j in 0..<loraRank {
            for i in 0..<imgPixels { u[j] += a1[j * imgPixels + i] * Double(x[b * imgPixels + i]) }
        }
        for c in 0..<cHidden {
            var v = Double(m.b1[c])
            for i in 0..<imgPixels { v += Double(m.w1[c * imgPixels + i]) * Double(x[b * imgPixels + i]) }
            for j in 0..<loraRank { v += s * b1[c * loraRank + j] * u[j] }
            h[b * cHidden + c] = v
        }
    }
    var t = h
    for c in 0..<cHidden {
        var mean = 0.0
        for b in 0..<n { mean += h[b * cHidden + c] }
        mean /= Double(n)
        var variance = 0.0
        for b in 0..<n { let d = h[b * cHidden + c] - mean; variance += d * d }
        variance /= Double(n)
        let inv = 1 / (variance + 1e-5).squareRoot()
        for b in 0..<n { t[b * cHidden + c] = max((h[b * cHidden + c] - mean) * inv * p[c] + p[cHidden + c], 0) }
    }
    var z = [Double](repeating: 0, count: n * cClasses)
    for b in 0..<n {
        var u = [Double](repeating: 0, count: loraRank)
        for j in 0..<loraRank {
            for c in 0..<cHidden { u[j] += a2[j * cHidden + c] * t[b * cHidden + c] }
        }
        for k in 0..<cClasses {
            var v = Double(m.b2[k])
            for c in 0..<cHidden { v += Double(m.w2[k * cHidden + c]) * t[b * cHidden + c] }
            for j in 0..<loraRank { v += s * b2[k * loraRank + j] * u[j] }
            z[b * cClasses + k] = v
        }
    }
    return z
}

/// Tent's loss: the batch mean of the softmax entropy, in Double.
private func loraMeanEntropy(_ z: [Double], n: Int) -> Double {
    let lp = refLogSoftmax(z, classes: cClasses)
    var total = 0.0
    for i in 0..<(n * cClasses) { total -= refExp(lp[i]) * lp[i] }
    return total / Double(n)
}

/// The adapter's A and B values, target by target (A then B).
private func adapterValues(_ a: LoRAAdapter) throws(LichenError) -> [Float] {
    var out: [Float] = []
    for t in a.targets { out += try t.a.toArray() + t.b.toArray() }
    return out
}

private func adapterGradients(_ a: LoRAAdapter) throws(LichenError) -> [Float] {
    var out: [Float] = []
    for t in a.targets {
        guard let ga = t.gradientA, let gb = t.gradientB else { throw .invalidArgument(name: "gradient", value: 0, reason: "adapter not trainable") }
        out += try ga.toArray() + gb.toArray()
    }
    return out
}

/// Bits of every store value followed by the adapter's A and B.
private func loraBits(_ st: ParameterStore, _ a: LoRAAdapter?) throws(LichenError) -> [UInt32] {
    var out: [UInt32] = []
    for i in 0..<st.count { out += try st[i].value.toArray().map { $0.bitPattern } }
    if let a { out += try adapterValues(a).map { $0.bitPattern } }
    return out
}

private func bValues(_ a: LoRAAdapter) throws(LichenError) -> [Float] {
    var out: [Float] = []
    for t in a.targets { out += try t.b.toArray() }
    return out
}

/// A session of `method` on a fresh store of `m` (nil `lora`: norm parameters only). CoTTA's gate
/// always fires (threshold 2) with 2 augmented passes; RMT is source-free with no warm-up.
private func loraSession(_ method: AdaptationMethod, _ m: ImageModel, lora: AdaptationLoRA?, restoreProbability: Float = 0.01)
    throws(LichenError) -> AdaptationSession
{
    let arena = try Arena(byteCount: 16 << 20)
    let st = try m.store(arena)
    let cotta = CoTTA.Configuration(threshold: 2, augmentations: 2, restoreProbability: restoreProbability, seed: 3)
    let rmt = RMT.Configuration(lambdaSource: 0, projectionDimension: 4, warmUpSamples: 0, prototypeSamples: cBatch, seed: 3)
    return try AdaptationSession(method: method, spec: m.spec, store: st, batchSize: cBatch, arena: arena, cotta: cotta, rmt: rmt,
                                 source: RandomSourceBatches(seed: 9, pixels: imgPixels, classes: cClasses), lora: lora)
}

private func loraStep(_ s: AdaptationSession, _ x: [Float]) throws(LichenError) -> [Float] {
    let mem = CheckMemory.floats(x)
    defer { withExtendedLifetime(mem) {} }
    return try s.step(batch: try mem.view(.f32, [cBatch, 1, imgSide, imgSide])).toArray()
}

/// The UTF-8 text of a static string.
private func text(_ s: StaticString) -> String {
    var out = ""
    s.withUTF8Buffer { out += String(decoding: $0, as: UTF8.self) }
    return out
}

let adaptationLoRAChecks: [Check] = [
    Check("Adaptation/LoRA", "a Tent step over norm and LoRA trainables equals p - lr * d(mean entropy)/dp, dA and dB by finite differences") { c in
        checking(&c) { (c) throws(LichenError) in
            let m = ImageModel(seed: 41)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let lr: Float = 0.5
            let s = try AdaptationSession(method: .tent, spec: m.spec, store: st, batchSize: cBatch, arena: arena,
                                          optimizer: .sgd(learningRate: lr, momentum: 0.9, nesterov: false), lora: loraSettings)
            guard let adapter = s.loraAdapter else {
                c.fail("the session has no LoRA adapter")
                return
            }
            c.expect(adapter.targets.count == 2 && adapter.targets[0].weightName == "l1.weight" && adapter.targets[1].weightName == "l2.weight",
                     "targets l1.weight and l2.weight")
            c.expect(s.trainedValueCount == loraValueCount, "trained values \(s.trainedValueCount), expected \(loraValueCount)")
            let b0 = try bValues(adapter)
            c.expect(b0.allSatisfy { $0 == 0 }, "B starts at 0")
            // B = 0 makes dL/dA vanish: give B values so every part of the gradient is exercised.
            var rng = SplitMix64(seed: 77)
            for t in adapter.targets { try t.b.copy(from: rng.floats(t.b.elementCount, -1, 1)) }
            let norm = try st.parameter(named: "bn.weight").value.toArray() + st.parameter(named: "bn.bias").value.toArray()
            let p0 = (norm + (try adapterValues(adapter))).map { Double($0) }
            let x = images(42)
            let expectedLogits = loraLogits(m, x, n: cBatch, p0)
            let fd = centralDifferences(p0, h: 1e-6) { p in loraMeanEntropy(loraLogits(m, x, n: cBatch, p), n: cBatch) }
            var largestA = 0.0
            for i in (2 * cHidden)..<(2 * cHidden + loraRank * imgPixels) { largestA = max(largestA, abs(fd[i])) }
            c.expect(largestA > 1e-3, "the reference gradient of A1 is not negligible (max \(largestA))")
            let z = try loraStep(s, x)
            graphExpectAllClose(&c, z, expectedLogits, atol: 1e-5, rtol: 1e-5, "returned logits = pre-update forward with the adapter")
            c.expectClose(s.lastLoss, Float(loraMeanEntropy(expectedLogits, n: cBatch)), absolute: 1e-5, relative: 1e-5, "loss")
            let gammaParameter = try st.parameter(named: "bn.weight"), betaParameter = try st.parameter(named: "bn.bias")
            guard let gGamma = gammaParameter.gradient, let gBeta = betaParameter.gradient else {
                c.fail("norm parameters have no gradient")
                return
            }
            let grad = try gGamma.toArray() + gBeta.toArray() + adapterGradients(adapter)
            graphExpectAllClose(&c, grad, fd, atol: 1e-5, rtol: 1e-3, "d(mean entropy)/d(gamma, beta, A1, B1, A2, B2) vs central differences")
            // First SGD step with momentum: buffer = g, p ← p − lr g.
            var expected: [Double] = []
            for i in 0..<p0.count { expected.append(p0[i] - Double(lr) * fd[i]) }
            let after = try st.parameter(named: "bn.weight").value.toArray() + st.parameter(named: "bn.bias").value.toArray()
                + adapterValues(adapter)
            graphExpectAllClose(&c, after, expected, atol: 2e-5, rtol: 1e-4, "norm parameters and A, B after one SGD step")
            // The frozen base is untouched.
            for name in ["l1.weight", "l1.bias", "l2.weight", "l2.bias"] {
                let v = try st.parameter(named: name).value.toArray()
                let original = name == "l1.weight" ? m.w1 : name == "l1.bias" ? m.b1 : name == "l2.weight" ? m.w2 : m.b2
                c.expect(v.map { $0.bitPattern } == original.map { $0.bitPattern }, "\(name) unchanged")
            }
        }
    },

    Check("Adaptation/LoRA", "with B = 0 the first prediction of Tent, CoTTA and RMT with LoRA equals the one without, and B then trains") { c in
        checking(&c) { (c) throws(LichenError) in
            let m = ImageModel(seed: 43)
            let batches = [images(44), images(45), images(46)]
            for method in [AdaptationMethod.tent, .cotta, .rmt] {
                let plain = try loraSession(method, m, lora: nil)
                let adapted = try loraSession(method, m, lora: loraSettings)
                guard let adapter = adapted.loraAdapter else {
                    c.fail("\(method.name): no LoRA adapter")
                    continue
                }
                c.expect(plain.loraAdapter == nil, "\(method.name): no adapter without lora")
                c.expect(adapted.trainedValueCount == loraValueCount, "\(method.name): trained values \(adapted.trainedValueCount)")
                let z0 = try loraStep(plain, batches[0]), z1 = try loraStep(adapted, batches[0])
                c.expect(z0.map { $0.bitPattern } == z1.map { $0.bitPattern }, "\(method.name): first prediction bit-identical with B = 0")
                if method == .tent {
                    // And equal to the source model's batch-statistics forward, computed independently.
                    graphExpectAllClose(&c, z1, m.logits(batches[0], n: cBatch, affine: m.sourceAffine), atol: 1e-5, rtol: 1e-5,
                                        "tent: first prediction = source model with batch statistics")
                }
                let b1 = try bValues(adapter)
                c.expect(b1.contains { $0 != 0 }, "\(method.name): B moved in the first update")
                for x in batches.dropFirst() { _ = try loraStep(adapted, x) }
                if let cotta = adapted.cotta {
                    // The teacher follows the student's B by EMA: its last slot (B2) is no longer 0.
                    let k = cotta.trainedParameters.count + 2 * adapter.targets.count - 1
                    let t = try cotta.teacherValue(k).toArray()
                    c.expect(t.contains { $0 != 0 }, "cotta: the teacher's B2 moved")
                }
                if let rmt = adapted.rmt {
                    let k = rmt.trainedParameters.count + 2 * adapter.targets.count - 1
                    let t = try rmt.teacherValue(k).toArray()
                    c.expect(t.contains { $0 != 0 }, "rmt: the teacher's B2 moved")
                }
            }
        }
    },

    Check("Adaptation/LoRA", "reset restores the initial bits of norm parameters, A and B (and the next prediction repeats the first)") { c in
        checking(&c) { (c) throws(LichenError) in
            let m = ImageModel(seed: 47)
            let batches = [images(48), images(49), images(50)]
            for method in [AdaptationMethod.tent, .cotta, .rmt] {
                let s = try loraSession(method, m, lora: loraSettings)
                guard let adapter = s.loraAdapter else {
                    c.fail("\(method.name): no LoRA adapter")
                    continue
                }
                let initial = try loraBits(s.store, adapter)
                var first: [Float] = []
                for (i, x) in batches.enumerated() {
                    let z = try loraStep(s, x)
                    if i == 0 { first = z }
                }
                let moved = try loraBits(s.store, adapter)
                c.expect(moved != initial, "\(method.name): three steps changed the trainables")
                try s.reset()
                let restored = try loraBits(s.store, adapter)
                c.expect(restored == initial, "\(method.name): reset restores every bit")
                if let cotta = s.cotta {
                    var same = true
                    for k in 0..<(cotta.trainedParameters.count + 2 * adapter.targets.count) {
                        let t = try cotta.teacherValue(k).toArray(), a = try cotta.anchorValue(k).toArray()
                        same = same && t == a
                    }
                    c.expect(same, "cotta: the teacher (norm and LoRA) is back at the anchor")
                }
                let again = try loraStep(s, batches[0])
                c.expect(again.map { $0.bitPattern } == first.map { $0.bitPattern }, "\(method.name): the prediction after reset repeats the first")
            }
        }
    },

    Check("Adaptation/LoRA", "CoTTA's stochastic restore with p = 1 returns A and B to their initial values after each update") { c in
        checking(&c) { (c) throws(LichenError) in
            let m = ImageModel(seed: 51)
            let s = try loraSession(.cotta, m, lora: loraSettings, restoreProbability: 1)
            guard let adapter = s.loraAdapter, let cotta = s.cotta else {
                c.fail("no CoTTA with a LoRA adapter")
                return
            }
            let initial = try adapterValues(adapter)
            _ = try loraStep(s, images(52))
            c.expect(cotta.lastRestoredCount == loraValueCount, "every trained value restored: \(cotta.lastRestoredCount)")
            let now = try adapterValues(adapter)
            c.expect(now.map { $0.bitPattern } == initial.map { $0.bitPattern }, "A and B back at their initial bits")
            // The teacher moved towards the updated student before the restore: its B is not 0.
            let k = cotta.trainedParameters.count + 2 * adapter.targets.count - 1
            let t = try cotta.teacherValue(k).toArray()
            c.expect(t.contains { $0 != 0 }, "the teacher's B2 took the EMA of the update")
        }
    },

    Check("Adaptation/LoRA", "bad LoRA settings are refused: full mode, unknown or non-linear targets, a rank above min(n_in, n_out)") { c in
        let m = ImageModel(seed: 53)
        func refused(_ lora: AdaptationLoRA, mode: AdaptationMode, _ what: String, _ accept: (LichenError) -> Bool) {
            do throws(LichenError) {
                let arena = try Arena(byteCount: 8 << 20)
                _ = try AdaptationSession(method: .tent, spec: m.spec, store: try m.store(arena), batchSize: cBatch, arena: arena,
                                          mode: mode, lora: lora)
                c.expect(false, what + ": accepted")
            } catch {
                c.expect(accept(error), what + ": threw " + error.description)
            }
        }
        refused(loraSettings, mode: .full, "full mode") { e in
            if case .invalidArgument(let name, _, _) = e { return text(name) == "lora" }
            return false
        }
        refused(AdaptationLoRA(rank: 2, targets: ["l3"]), mode: .frugal, "unknown layer") { e in
            if case .notFound(_, let name) = e { return name == "l3" }
            return false
        }
        refused(AdaptationLoRA(rank: 2, targets: ["bn"]), mode: .frugal, "a batch-norm layer") { e in
            if case .invalidArgument(let name, _, _) = e { return text(name) == "lora.targets" }
            return false
        }
        refused(AdaptationLoRA(rank: 2, targets: ["conv"]), mode: .frugal, "no conv layer in the model") { e in
            if case .invalidArgument(let name, _, _) = e { return text(name) == "lora.targets" }
            return false
        }
        refused(AdaptationLoRA(rank: 4, targets: ["l1"]), mode: .frugal, "rank 4 on l1 (16 -> 3)") { e in
            if case .invalidArgument(let name, let value, _) = e { return text(name) == "LoRA rank" && value == 4 }
            return false
        }
    },
]
