import Lichen

// Checks of CoTTA (Sources/Lichen/Adaptation/CoTTA.swift, CoTTAAugmentation.swift,
// SourceBatchProvider.swift) on a tiny image model built here:
//     x [1, 4, 4] → flatten → linear l1 (3) → batch norm bn (3) → relu → linear l2 (4 classes)
// References are written out in Double; the augmentation is checked against hand-computed
// outputs, and the CoTTA step replays the same augmentation draws (its seed is known).

let imgSide = 4, imgPixels = 16, cHidden = 3, cClasses = 4, cBatch = 6

struct ImageModel {
    var w1: [Float], b1: [Float], gamma: [Float], beta: [Float], runMean: [Float], runVar: [Float], w2: [Float], b2: [Float]

    init(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        w1 = rng.floats(cHidden * imgPixels)
        b1 = rng.floats(cHidden)
        gamma = rng.floats(cHidden, 0.5, 1.5)
        beta = rng.floats(cHidden, -0.5, 0.5)
        runMean = rng.floats(cHidden, -0.5, 0.5)
        runVar = rng.floats(cHidden, 0.5, 2)
        w2 = rng.floats(cClasses * cHidden, -3, 3)
        b2 = rng.floats(cClasses)
    }

    var spec: ModelSpec {
        var s = graphSpec([1, imgSide, imgSide], [
            graphLayer(.flatten, "f", [-1]),
            graphLayer(.linear, "l1", [0]) { $0.outputs = cHidden },
            graphLayer(.batchNorm, "bn", [1]),
            graphLayer(.relu, "r", [2]),
            graphLayer(.linear, "l2", [3]) { $0.outputs = cClasses },
        ])
        s.classCount = cClasses
        return s
    }

    func store(_ arena: Arena) throws(LichenError) -> ParameterStore {
        let st = ParameterStore(arena: arena)
        try st.add(name: "l1.weight", role: .weight, shape: Shape(cHidden, imgPixels), values: w1, trainable: false)
        try st.add(name: "l1.bias", role: .bias, shape: Shape(cHidden), values: b1, trainable: false)
        try st.add(name: "bn.weight", role: .normWeight, shape: Shape(cHidden), values: gamma, trainable: false)
        try st.add(name: "bn.bias", role: .normBias, shape: Shape(cHidden), values: beta, trainable: false)
        try st.add(name: "bn.running_mean", role: .runningMean, shape: Shape(cHidden), values: runMean, trainable: false)
        try st.add(name: "bn.running_var", role: .runningVariance, shape: Shape(cHidden), values: runVar, trainable: false)
        try st.add(name: "l2.weight", role: .weight, shape: Shape(cClasses, cHidden), values: w2, trainable: false)
        try st.add(name: "l2.bias", role: .bias, shape: Shape(cClasses), values: b2, trainable: false)
        return st
    }

    /// Logits in Double for `n` images; γ, β given (γ first); batch or running statistics.
    func logits(_ x: [Float], n: Int, affine: [Double], batchStatistics: Bool = true) -> [Double] {
        var h = [Double](repeating: 0, count: n * cHidden)
        for b in 0..<n {
            for o in 0..<cHidden {
                var s = Double(b1[o])
                for i in 0..<imgPixels { s += Double(w1[o * imgPixels + i]) * Double(x[b * imgPixels + i]) }
                h[b * cHidden + o] = s
            }
        }
        var t = h
        for ch in 0..<cHidden {
            var mean = Double(runMean[ch]), variance = Double(runVar[ch])
            if batchStatistics {
                mean = 0
                for b in 0..<n { mean += h[b * cHidden + ch] }
                mean /= Double(n)
                variance = 0
                for b in 0..<n { let d = h[b * cHidden + ch] - mean; variance += d * d }
                variance /= Double(n)
            }
            let inv = 1 / (variance + 1e-5).squareRoot()
            for b in 0..<n { t[b * cHidden + ch] = max((h[b * cHidden + ch] - mean) * inv * affine[ch] + affine[cHidden + ch], 0) }
        }
        var z = [Double](repeating: 0, count: n * cClasses)
        for b in 0..<n {
            for k in 0..<cClasses {
                var s = Double(b2[k])
                for o in 0..<cHidden { s += Double(w2[k * cHidden + o]) * t[b * cHidden + o] }
                z[b * cClasses + k] = s
            }
        }
        return z
    }

    var sourceAffine: [Double] { gamma.map { Double($0) } + beta.map { Double($0) } }
}

func images(_ seed: UInt64, n: Int = cBatch) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return rng.floats(n * imgPixels, 0, 1)
}

private func cottaStep(_ s: CoTTA, _ x: [Float], n: Int = cBatch) throws(LichenError) -> [Float] {
    let mem = CheckMemory.floats(x)
    defer { withExtendedLifetime(mem) {} }
    return try s.step(batch: try mem.view(.f32, [n, 1, imgSide, imgSide])).toArray()
}

private func bits(_ st: ParameterStore) throws(LichenError) -> [UInt32] {
    var out: [UInt32] = []
    for i in 0..<st.count { out += try st[i].value.toArray().map { $0.bitPattern } }
    return out
}

private func teacherBits(_ s: CoTTA) throws(LichenError) -> [UInt32] {
    var out: [UInt32] = []
    for k in 0..<s.trainedParameters.count { out += try s.teacherValue(k).toArray().map { $0.bitPattern } }
    return out
}

private func trainedValues(_ s: CoTTA) throws(LichenError) -> [Float] {
    var out: [Float] = []
    for i in s.trainedParameters { out += try s.store[i].value.toArray() }
    return out
}

private func teacherValues(_ s: CoTTA) throws(LichenError) -> [Float] {
    var out: [Float] = []
    for k in 0..<s.trainedParameters.count { out += try s.teacherValue(k).toArray() }
    return out
}

/// Mean over rows of the largest softmax probability, in Double.
func meanConfidence(_ z: [Double], n: Int) -> Double {
    let lp = refLogSoftmax(z, classes: cClasses)
    var total = 0.0
    for b in 0..<n {
        var best = -Double.infinity
        for k in 0..<cClasses { best = max(best, lp[b * cClasses + k]) }
        total += refExp(best)
    }
    return total / Double(n)
}

/// Mean soft cross-entropy −Σ q log p with q = softmax(target) (constant).
private func softCE(_ z: [Double], target: [Double], n: Int) -> Double {
    let lp = refLogSoftmax(z, classes: cClasses), lq = refLogSoftmax(target, classes: cClasses)
    var total = 0.0
    for i in 0..<(n * cClasses) { total -= refExp(lq[i]) * lp[i] }
    return total / Double(n)
}

/// The same augmentation draws a CoTTA with `seed` makes, applied to `x` (n images): N arrays.
func replayAugmentations(_ x: [Float], n: Int, count: Int, random: inout SplitMix64Random) throws(LichenError) -> [[Float]] {
    let arena = try Arena(byteCount: 4 << 20)
    let aug = try CoTTAAugmentation(height: imgSide, width: imgSide, maximumBatch: n, arena: arena)
    let input = CheckMemory.floats(x), output = CheckMemory.floats([Float](repeating: 0, count: x.count))
    defer { withExtendedLifetime(input) {}; withExtendedLifetime(output) {} }
    var out: [[Float]] = []
    for _ in 0..<count {
        try aug.augment(try input.view(.f32, [n, 1, imgSide, imgSide]), into: try output.view(.f32, [n, 1, imgSide, imgSide]),
                        random: &random)
        out.append(try output.view(.f32, [x.count]).toArray())
    }
    return out
}

/// Applies `p` to a [n, 1, 4, 4] batch with noise off and returns the output.
private func augmentFixed(_ x: [Float], n: Int, _ p: CoTTAAugmentation.Parameters, noise: Float = 0) throws(LichenError) -> [Float] {
    let arena = try Arena(byteCount: 4 << 20)
    let aug = try CoTTAAugmentation(height: imgSide, width: imgSide, maximumBatch: n, noiseStandardDeviation: noise, arena: arena)
    let input = CheckMemory.floats(x), output = CheckMemory.floats([Float](repeating: -1, count: x.count))
    defer { withExtendedLifetime(input) {}; withExtendedLifetime(output) {} }
    var random = SplitMix64Random(seed: 5)
    try aug.apply(p, to: try input.view(.f32, [n, 1, imgSide, imgSide]), into: try output.view(.f32, [n, 1, imgSide, imgSide]),
                  random: &random)
    return try output.view(.f32, [x.count]).toArray()
}

/// A provider of seeded random images in [0, 1] with labels 0..<4 (and a count of calls).
final class RandomSourceBatches: SourceBatchProvider {
    var random: SplitMix64
    var calls = 0
    let pixels: Int
    let classes: Int

    init(seed: UInt64, pixels: Int, classes: Int) {
        random = SplitMix64(seed: seed)
        self.pixels = pixels
        self.classes = classes
    }

    func nextSourceBatch(images: TensorView, labels: TensorView) throws(LichenError) {
        let x = try images.f32Elements("images"), y = try labels.f32Elements("labels")
        for i in 0..<x.count { x[i] = random.nextUnit() }
        for i in 0..<y.count { y[i] = Float(random.next() % UInt64(classes)) }
        calls += 1
    }
}

let cottaChecks: [Check] = [
    Check("Adaptation/CoTTAAugmentation", "identity parameters copy the clipped input; flip mirrors columns; integer translation shifts with edge replication") { c in
        do throws(LichenError) {
            var x = images(101, n: 2)
            x[3] = 1.5
            x[20] = -0.25
            let id = try augmentFixed(x, n: 2, CoTTAAugmentation.Parameters())
            // Gamma's clamp to [1e-8, 1] runs even at γ = 1.
            let clipped = x.map { max(min(max($0, 0), 1), 1e-8) }
            c.expect(id == clipped, "identity draw (sigma 0.001, no noise) returns max(clip(x), 1e-8) exactly")
            var p = CoTTAAugmentation.Parameters()
            p.flip = true
            let flipped = try augmentFixed(x, n: 2, p)
            var mirrored = clipped
            for b in 0..<2 {
                for r in 0..<4 { for col in 0..<4 { mirrored[b * 16 + r * 4 + col] = clipped[b * 16 + r * 4 + 3 - col] } }
            }
            c.expect(flipped == mirrored, "flip mirrors every image's columns")
            p = CoTTAAugmentation.Parameters()
            p.translateX = 1
            p.translateY = -1
            let shifted = try augmentFixed(x, n: 2, p)
            var expected = [Double](repeating: 0, count: 32)
            for b in 0..<2 {
                for r in 0..<4 {
                    for col in 0..<4 {
                        // Output (r, col) reads the source at (r + 1, col − 1), edge-replicated.
                        let sr = min(max(r + 1, 0), 3), sc = min(max(col - 1, 0), 3)
                        expected[b * 16 + r * 4 + col] = Double(clipped[b * 16 + sr * 4 + sc])
                    }
                }
            }
            graphExpectAllClose(&c, shifted, expected, atol: 1e-6, "translation (1, -1) px")
        } catch {
            c.fail("augmentation geometry: " + error.description)
        }
    },

    Check("Adaptation/CoTTAAugmentation", "brightness, contrast and gamma in the drawn order; 90-degree rotation; 5x5 blur of a point equal hand-computed values") { c in
        do throws(LichenError) {
            let x = images(102, n: 1)
            // Order: gamma, then brightness, then contrast (4, 0, 1, 2, 3).
            var p = CoTTAAugmentation.Parameters(jitterOrder: 4 | (0 << 3) | (1 << 6) | (2 << 9) | (3 << 12))
            p.gamma = 2
            p.brightness = 1.5
            p.contrast = 0.5
            p.saturation = 1.4
            p.hue = 0.05
            var y = x.map { min(Double($0) * Double($0) * 1.5, 1) }
            let mean = y.reduce(0, +) / 16
            y = y.map { min(max(0.5 * $0 + 0.5 * mean, 0), 1) }
            graphExpectAllClose(&c, try augmentFixed(x, n: 1, p), y, atol: 2e-6, "gamma 2, brightness 1.5, contrast 0.5 (saturation, hue no-ops)")
            p = CoTTAAugmentation.Parameters()
            p.angle = 90
            let rotated = try augmentFixed(x, n: 1, p)
            var r90 = [Double](repeating: 0, count: 16)
            for r in 0..<4 { for col in 0..<4 { r90[r * 4 + col] = Double(x[(3 - col) * 4 + r]) } }
            graphExpectAllClose(&c, rotated, r90, atol: 1e-5, "rotation by 90 degrees: out[r][c] = x[3 - c][r]")
            var point = [Float](repeating: 0, count: 16)
            point[5] = 1  // (1, 1)
            p = CoTTAAugmentation.Parameters()
            p.sigma = 0.5
            let w0 = 1.0, w1 = refExp(-2.0), w2 = refExp(-8.0)
            let total = w0 + 2 * w1 + 2 * w2
            let k = [w0 / total, w1 / total, w2 / total]
            var blurred = [Double](repeating: 0, count: 16)
            for r in 0..<4 { for col in 0..<4 { blurred[r * 4 + col] = k[abs(r - 1)] * k[abs(col - 1)] } }
            graphExpectAllClose(&c, try augmentFixed(point, n: 1, p), blurred, atol: 1e-6, "blur sigma 0.5 of a point at (1, 1)")
        } catch {
            c.fail("augmentation values: " + error.description)
        }
    },

    Check("Adaptation/CoTTAAugmentation", "draws stay in the reference ranges, the jitter order is a permutation; noise has mean 0 and sd 0.005") { c in
        do throws(LichenError) {
            let arena = try Arena(byteCount: 4 << 20)
            let aug = try CoTTAAugmentation(height: 28, width: 28, maximumBatch: 64, arena: arena)
            var random = SplitMix64Random(seed: 9)
            var ok = true, flips = 0
            for _ in 0..<400 {
                let p = aug.draw(&random)
                var seen = 0
                for i in 0..<5 { seen |= 1 << p.jitterOperation(at: i) }
                ok = ok && seen == 31
                ok = ok && p.brightness >= 0.6 && p.brightness < 1.4 && p.contrast >= 0.7 && p.contrast < 1.3
                ok = ok && p.gamma >= 0.7 && p.gamma < 1.3 && p.angle >= -15 && p.angle < 15
                ok = ok && abs(p.translateX) <= 4 && abs(p.translateY) <= 4 && p.scale >= 0.9 && p.scale < 1.1
                ok = ok && p.sigma >= 0.001 && p.sigma < 0.5
                if p.flip { flips += 1 }
            }
            c.expect(ok, "every draw within its range and a permutation of the five jitter operations")
            // 400 fair coins: 200 +/- 5 sd (sd 10).
            c.expect(flips > 150 && flips < 250, "flip frequency \(flips)/400 within binomial bounds")
            // Noise on a constant 0.5 image: identity geometry, 64 x 784 samples.
            let x = CheckMemory.floats([Float](repeating: 0.5, count: 64 * 784))
            let y = CheckMemory.floats([Float](repeating: 0, count: 64 * 784))
            try aug.apply(CoTTAAugmentation.Parameters(), to: try x.view(.f32, [64, 1, 28, 28]), into: try y.view(.f32, [64, 1, 28, 28]),
                          random: &random)
            var sum = 0.0, squares = 0.0
            let count = 64 * 784
            for i in 0..<count { let d = Double(y.floats[i]) - 0.5; sum += d; squares += d * d }
            let mean = sum / Double(count), sd = (squares / Double(count)).squareRoot()
            // Standard error of the mean 0.005 / sqrt(50176) = 2.2e-5; of the sd about 1.6e-5.
            c.expect(abs(mean) < 1.2e-4, "noise mean \(mean) near 0")
            c.expect(abs(sd - 0.005) < 1e-4, "noise sd \(sd) near 0.005")
            withExtendedLifetime(x) {}
            withExtendedLifetime(y) {}
        } catch {
            c.fail("augmentation draws: " + error.description)
        }
    },

    Check("Adaptation/CoTTA", "two steps equal a step-by-step reference: anchor gate, augmentation-averaged teacher logits, soft-CE Adam step, EMA") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 201)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let lr = 1e-2, alpha = 0.9
            var config = CoTTA.Configuration(threshold: 2, augmentations: 3, emaMomentum: Float(alpha), restoreProbability: 0,
                                             optimizer: .adam(learningRate: Float(lr), beta1: 0.9, beta2: 0.999, epsilon: 1e-8), seed: 77)
            config.consistencyLoss = .softCrossEntropy
            let s = try CoTTA(spec: m.spec, store: st, batchSize: cBatch, arena: arena, configuration: config)
            c.expect(s.trainedParameters == [2, 3], "frugal mode trains bn.weight and bn.bias")
            var student = m.sourceAffine, teacher = m.sourceAffine
            let source = m.sourceAffine
            var mm = [Double](repeating: 0, count: 6), vv = mm
            var random = SplitMix64Random(seed: 77)
            for (t, seed) in [(1, UInt64(211)), (2, UInt64(212))] {
                let x = images(seed)
                let conf = meanConfidence(m.logits(x, n: cBatch, affine: source), n: cBatch)
                var zHat = [Double](repeating: 0, count: cBatch * cClasses)
                for a in try replayAugmentations(x, n: cBatch, count: 3, random: &random) {
                    let z = m.logits(a, n: cBatch, affine: teacher)
                    for i in 0..<z.count { zHat[i] += z[i] / 3 }
                }
                let got = try cottaStep(s, x)
                c.expectClose(s.lastAnchorConfidence, Float(conf), absolute: 1e-5, "step \(t): anchor confidence")
                c.expect(s.lastStepAugmented, "step \(t): the gate fired (threshold 2)")
                graphExpectAllClose(&c, got, zHat, atol: 2e-5, rtol: 1e-4, "step \(t): returned logits = mean of 3 augmented teacher passes")
                let target = zHat
                let g = centralDifferences(student, h: 1e-6) { p in softCE(m.logits(x, n: cBatch, affine: p), target: target, n: cBatch) }
                c.expectClose(s.lastLoss, Float(softCE(m.logits(x, n: cBatch, affine: student), target: target, n: cBatch)),
                              absolute: 1e-5, relative: 1e-5, "step \(t): loss")
                let c1 = 1 - 0.9.powInt(t), c2 = 1 - 0.999.powInt(t)
                for i in 0..<6 {
                    mm[i] = 0.9 * mm[i] + 0.1 * g[i]
                    vv[i] = 0.999 * vv[i] + 0.001 * g[i] * g[i]
                    student[i] -= (lr / c1) * mm[i] / (vv[i].squareRoot() / c2.squareRoot() + 1e-8)
                    teacher[i] = alpha * teacher[i] + (1 - alpha) * student[i]
                }
                graphExpectAllClose(&c, try trainedValues(s), student, atol: 5e-5, "step \(t): student after Adam")
                graphExpectAllClose(&c, try teacherValues(s), teacher, atol: 5e-5, "step \(t): teacher after EMA")
            }
        } catch {
            c.fail("cotta step: " + error.description)
        }
    },

    Check("Adaptation/CoTTA", "the gate augments exactly when the anchor's batch-mean confidence is below the threshold") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 202)
            let x = images(221)
            var confidence: Float = 0
            for (k, threshold) in [Float(-1), 0, 0].enumerated() {
                let arena = try Arena(byteCount: 16 << 20)
                let st = try m.store(arena)
                var t = threshold
                if k == 1 { t = confidence }
                if k == 2 { t = confidence.nextUp }
                let s = try CoTTA(spec: m.spec, store: st, batchSize: cBatch, arena: arena,
                                  configuration: CoTTA.Configuration(threshold: t, augmentations: 2))
                let z = try cottaStep(s, x)
                if k == 0 {
                    confidence = s.lastAnchorConfidence
                    let ref = meanConfidence(m.logits(x, n: cBatch, affine: m.sourceAffine), n: cBatch)
                    c.expectClose(confidence, Float(ref), absolute: 1e-5, "anchor confidence vs reference")
                    graphExpectAllClose(&c, z, m.logits(x, n: cBatch, affine: m.sourceAffine), atol: 1e-5, rtol: 1e-5,
                                        "not gated: returned logits are the teacher's on the clean batch")
                }
                c.expect(s.lastAnchorConfidence == confidence, "same confidence bits in every session")
                c.expect(s.lastStepAugmented == (k == 2), "threshold \(show(t)): augmented \(s.lastStepAugmented)")
                c.expect(s.augmentedStepCount == (k == 2 ? 1 : 0), "augmented step count")
            }
        } catch {
            c.fail("cotta gate: " + error.description)
        }
    },

    Check("Adaptation/CoTTA", "EMA is taken before restore; restore resets to the source bits at the drawn rate (binomial bounds)") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 203)
            func make(_ p: Float, _ arena: Arena) throws(LichenError) -> CoTTA {
                try CoTTA(spec: m.spec, store: try m.store(arena), batchSize: cBatch, arena: arena, mode: .full,
                          configuration: CoTTA.Configuration(threshold: 2, augmentations: 2, emaMomentum: 0.8, restoreProbability: p,
                                                             optimizer: .adam(learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)))
            }
            let a0 = try Arena(byteCount: 16 << 20), a1 = try Arena(byteCount: 16 << 20)
            let keep = try make(0, a0), all = try make(1, a1)
            let source = try trainedValues(keep)
            c.expect(source.count == 73, "full mode trains 73 values, got \(source.count)")
            let x = images(231)
            _ = try cottaStep(keep, x)
            _ = try cottaStep(all, x)
            let updated = try trainedValues(keep)
            var expectedTeacher: [Float] = []
            for i in 0..<source.count { expectedTeacher.append(0.8 * source[i] + (1 - 0.8) * updated[i]) }
            c.expect(try teacherValues(keep).map { $0.bitPattern } == expectedTeacher.map { $0.bitPattern },
                     "p 0: teacher = 0.8 teacher + 0.2 student, bit for bit")
            c.expect(try teacherValues(all).map { $0.bitPattern } == expectedTeacher.map { $0.bitPattern },
                     "p 1: the teacher saw the pre-restore student (EMA before restore)")
            c.expect(try trainedValues(all).map { $0.bitPattern } == source.map { $0.bitPattern }, "p 1: every student value is the source bit")
            c.expect(all.lastRestoredCount == 73 && keep.lastRestoredCount == 0, "restored counts 73 and 0")
            c.expect(updated != source, "the Adam step moved the student")
            // p 0.25 over 20 steps: 1460 Bernoulli draws, mean 365, sd 16.5; bounds at 5 sd.
            let a2 = try Arena(byteCount: 16 << 20)
            let quarter = try make(0.25, a2)
            var restored = 0
            var matchesSource = true
            for k in 0..<20 {
                _ = try cottaStep(quarter, images(240 + UInt64(k)))
                restored += quarter.lastRestoredCount
                let now = try trainedValues(quarter)
                var equal = 0
                for i in 0..<now.count where now[i].bitPattern == source[i].bitPattern { equal += 1 }
                matchesSource = matchesSource && equal >= quarter.lastRestoredCount
            }
            c.expect(restored > 282 && restored < 448, "restored \(restored) of 1460 draws at p 0.25 (expected 365 +/- 83)")
            c.expect(matchesSource, "at least the restored count of values hold the source bits after each step")
        } catch {
            c.fail("cotta ema/restore: " + error.description)
        }
    },

    Check("Adaptation/CoTTA", "reset restores the initial bits of student, teacher and optimizer; bad input throws and changes nothing") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 204)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let s = try CoTTA(spec: m.spec, store: st, batchSize: cBatch, arena: arena, mode: .full,
                              configuration: CoTTA.Configuration(threshold: 2, augmentations: 2, restoreProbability: 0.3))
            let initial = try bits(st), initialTeacher = try teacherBits(s)
            let first = try cottaStep(s, images(251))
            let afterFirst = try bits(st), teacherAfterFirst = try teacherBits(s)
            _ = try cottaStep(s, images(252))
            _ = try cottaStep(s, images(253))
            c.expect(try bits(st) != initial, "three steps changed the student")
            // Bad input: NaN, wrong size, too large a batch.
            let before = try bits(st), teacherBefore = try teacherBits(s)
            var bad = images(254)
            bad[7] = Float.nan
            c.expectThrows(.nonFiniteValue(operand: "input", index: 7), "NaN frame") { () throws(LichenError) in try cottaStep(s, bad) }
            let wrong = CheckMemory.floats([Float](repeating: 0.5, count: cBatch * 25))
            c.expectThrows(.shapeMismatch(operand: "input", dimension: 2, expected: 4, got: 5), "wrong frame size") {
                () throws(LichenError) in _ = try s.step(batch: try wrong.view(.f32, [cBatch, 1, 5, 5]))
            }
            withExtendedLifetime(wrong) {}
            c.expectThrows(.invalidArgument(name: "input.batch", value: cBatch + 1, reason: "must be in 1...the batch size the graph was built for"),
                           "batch too large") { () throws(LichenError) in try cottaStep(s, images(255, n: cBatch + 1), n: cBatch + 1) }
            let afterBad = try bits(st), teacherAfterBad = try teacherBits(s)
            c.expect(afterBad == before && teacherAfterBad == teacherBefore && s.stepCount == 3, "refused batches changed nothing")
            try s.reset()
            c.expect(try bits(st) == initial, "reset: student bit for bit")
            c.expect(try teacherBits(s) == initialTeacher, "reset: teacher bit for bit")
            c.expect(s.stepCount == 0, "reset: step count 0")
            let again = try cottaStep(s, images(251))
            c.expect(again.map { $0.bitPattern } == first.map { $0.bitPattern }, "first logits repeat after reset")
            let afterAgain = try bits(st), teacherAfterAgain = try teacherBits(s)
            c.expect(afterAgain == afterFirst && teacherAfterAgain == teacherAfterFirst,
                     "first update repeats bit for bit (optimizer moments and random streams reset)")
        } catch {
            c.fail("cotta reset: " + error.description)
        }
    },

    Check("Adaptation/CoTTA", "source threshold = linear-interpolated 5 % quantile of the running-statistics model's max softmax, minus 0.05") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 205)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let usedBefore = arena.stats.lowUsedBytes
            let provider = RandomSourceBatches(seed: 261, pixels: imgPixels, classes: cClasses)
            let threshold = try sourceConfidenceThreshold(spec: m.spec, store: st, provider: provider, batchSize: cBatch, batchCount: 7,
                                                          arena: arena)
            c.expect(provider.calls == 7, "7 source batches read")
            c.expect(arena.stats.lowUsedBytes == usedBefore, "the arena's low end is given back")
            let replay = RandomSourceBatches(seed: 261, pixels: imgPixels, classes: cClasses)
            var confidences: [Double] = []
            let xm = CheckMemory.floats([Float](repeating: 0, count: cBatch * imgPixels))
            let ym = CheckMemory.floats([Float](repeating: 0, count: cBatch))
            for _ in 0..<7 {
                try replay.nextSourceBatch(images: try xm.view(.f32, [cBatch, 1, 4, 4]), labels: try ym.view(.f32, [cBatch]))
                let x = (0..<(cBatch * imgPixels)).map { xm.floats[$0] }
                let lp = refLogSoftmax(m.logits(x, n: cBatch, affine: m.sourceAffine, batchStatistics: false), classes: cClasses)
                for b in 0..<cBatch {
                    var best = -Double.infinity
                    for k in 0..<cClasses { best = max(best, lp[b * cClasses + k]) }
                    confidences.append(refExp(best))
                }
            }
            withExtendedLifetime(xm) {}
            withExtendedLifetime(ym) {}
            confidences.sort()
            let position = 0.05 * Double(confidences.count - 1)  // 2.05
            let low = Int(position), f = position - Double(low)
            let expected = confidences[low] + (confidences[low + 1] - confidences[low]) * f - 0.05
            c.expectClose(threshold, Float(expected), absolute: 1e-5, "threshold")
        } catch {
            c.fail("cotta threshold: " + error.description)
        }
    },
]

extension Double {
    /// self^n for n >= 0 by repeated multiplication.
    fileprivate func powInt(_ n: Int) -> Double {
        var r = 1.0
        for _ in 0..<n { r *= self }
        return r
    }
}
