import Lichen

// Checks of RMT (Sources/Lichen/Adaptation/RMT.swift), the SupCon loss
// (Sources/Lichen/Train/SupervisedContrastiveLoss.swift) and the graph's feature tap, on the
// tiny image model of CoTTAChecks.swift (features: the 3 values entering l2). References are
// written out in Double; gradients against central differences.

/// Encoder features relu(bn(l1 x)) in Double with batch statistics, [n, 3].
private func features(_ m: ImageModel, _ x: [Float], n: Int, affine: [Double]) -> [Double] {
    var h = [Double](repeating: 0, count: n * cHidden)
    for b in 0..<n {
        for o in 0..<cHidden {
            var s = Double(m.b1[o])
            for i in 0..<imgPixels { s += Double(m.w1[o * imgPixels + i]) * Double(x[b * imgPixels + i]) }
            h[b * cHidden + o] = s
        }
    }
    var t = h
    for ch in 0..<cHidden {
        var mean = 0.0
        for b in 0..<n { mean += h[b * cHidden + ch] }
        mean /= Double(n)
        var variance = 0.0
        for b in 0..<n { let d = h[b * cHidden + ch] - mean; variance += d * d }
        variance /= Double(n)
        let inv = 1 / (variance + 1e-5).squareRoot()
        for b in 0..<n { t[b * cHidden + ch] = max((h[b * cHidden + ch] - mean) * inv * affine[ch] + affine[cHidden + ch], 0) }
    }
    return t
}

/// The projector in Double: y = W2 relu(W1 v + b1) + b2 per row; `p` = W1 [P, D], b1, W2 [P, P], b2.
private func project(_ v: [Double], rows: Int, d: Int, width w: Int, _ p: [Double]) -> [Double] {
    var y = [Double](repeating: 0, count: rows * w)
    let w1 = 0, b1 = w * d, w2 = b1 + w, b2 = w2 + w * w
    for r in 0..<rows {
        var hidden = [Double](repeating: 0, count: w)
        for o in 0..<w {
            var s = p[b1 + o]
            for j in 0..<d { s += p[w1 + o * d + j] * v[r * d + j] }
            hidden[o] = max(s, 0)
        }
        for o in 0..<w {
            var s = p[b2 + o]
            for j in 0..<w { s += p[w2 + o * w + j] * hidden[j] }
            y[r * w + o] = s
        }
    }
    return y
}

/// SupCon (labels = None) over view-major rows, written straight from the definition.
private func refSupCon(_ y: [Double], rows: Int, d: Int, views: Int, tau: Double) -> Double {
    let n = rows / views
    var u = y
    for a in 0..<rows {
        var s = 0.0
        for j in 0..<d { s += y[a * d + j] * y[a * d + j] }
        let norm = max(s.squareRoot(), 1e-12)
        for j in 0..<d { u[a * d + j] = y[a * d + j] / norm }
    }
    func sim(_ a: Int, _ k: Int) -> Double {
        var s = 0.0
        for j in 0..<d { s += u[a * d + j] * u[k * d + j] }
        return s / tau
    }
    var total = 0.0
    for a in 0..<rows {
        var z = 0.0
        for k in 0..<rows where k != a { z += refExp(sim(a, k)) }
        let logZ = refLog(z)
        var pos = 0.0
        for k in 0..<rows where k != a && k % n == a % n { pos += sim(a, k) - logZ }
        total += -pos / Double(views - 1)
    }
    return total / Double(rows)
}

private func rmtStep(_ s: RMT, _ x: [Float], n: Int = cBatch) throws(LichenError) -> [Float] {
    let mem = CheckMemory.floats(x)
    defer { withExtendedLifetime(mem) {} }
    return try s.step(batch: try mem.view(.f32, [n, 1, imgSide, imgSide])).toArray()
}

private func storeValues(_ st: ParameterStore, _ indices: [Int]) throws(LichenError) -> [Float] {
    var out: [Float] = []
    for i in indices { out += try st[i].value.toArray() }
    return out
}

private func storeGradients(_ st: ParameterStore, _ indices: [Int]) throws(LichenError) -> [Float] {
    var out: [Float] = []
    for i in indices {
        if let g = st[i].gradient { out += try g.toArray() }
    }
    return out
}

private func rmtTeacher(_ s: RMT) throws(LichenError) -> [Float] {
    var out: [Float] = []
    for k in 0..<s.trainedParameters.count { out += try s.teacherValue(k).toArray() }
    return out
}

private func allBits(_ values: [Float]) -> [UInt32] { values.map { $0.bitPattern } }

let rmtChecks: [Check] = [
    Check("Train/SupervisedContrastiveLoss", "3-view SupCon loss and gradient match a Double reference and its central differences") { c in
        do throws(LichenError) {
            let arena = try Arena(byteCount: 4 << 20)
            let n = 4, views = 3, d = 5, rows = views * n
            let loss = try SupervisedContrastiveLoss(maximumRows: 16, dimension: d, temperature: 0.1, arena: arena)
            var rng = SplitMix64(seed: 301)
            var y = rng.floats(rows * d, -1, 1)
            y[7 * d + 2] *= 40  // one long vector: the normalisation matters
            let ym = CheckMemory.floats(y), gm = CheckMemory.floats([Float](repeating: 0, count: rows * d))
            let value = try loss.compute(features: try ym.view(.f32, [rows, d]), views: views, gradient: try gm.view(.f32, [rows, d]))
            let yd = y.map { Double($0) }
            let reference = refSupCon(yd, rows: rows, d: d, views: views, tau: 0.1)
            c.expectClose(value, Float(reference), absolute: 1e-5, relative: 1e-5, "loss vs Double reference")
            let fd = centralDifferences(yd, h: 1e-6) { refSupCon($0, rows: rows, d: d, views: views, tau: 0.1) }
            let got = (0..<(rows * d)).map { gm.floats[$0] }
            graphExpectAllClose(&c, got, fd, atol: 2e-5, rtol: 1e-3, "dL/dy vs central differences (h 1e-6, Double)")
            c.expectThrows(.invalidArgument(name: "features.rows", value: 10, reason: "must be a multiple of views, at most maximumRows"),
                           "10 rows in 3 views") { () throws(LichenError) in
                try loss.compute(features: try ym.view(.f32, [10, d]), views: 3, gradient: try gm.view(.f32, [10, d]))
            }
            withExtendedLifetime(ym) {}
            withExtendedLifetime(gm) {}
        } catch {
            c.fail("supcon: " + error.description)
        }
    },

    Check("Graph/Tap", "the tapped input is the last linear layer's input; a tap gradient adds to the head's in backward (finite differences)") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 302)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            try st.setTrainable(true, name: "bn.weight")
            try st.setTrainable(true, name: "bn.bias")
            let g = try Graph(spec: m.spec, store: st, batchSize: cBatch, arena: arena,
                              options: GraphOptions(training: true, batchNormMode: .batchStatistics, tapLayer: 4))
            let x = images(311)
            let xm = CheckMemory.floats(x)
            _ = try g.forward(input: try xm.view(.f32, [cBatch, 1, 4, 4]))
            let f = try g.tappedInput(batch: cBatch).toArray()
            graphExpectAllClose(&c, f, features(m, x, n: cBatch, affine: m.sourceAffine), atol: 1e-5, "tapped features = relu(bn(l1 x))")
            // L = Σ r·z + Σ s·f: backward with dL/dz = r and a tap gradient s.
            var rng = SplitMix64(seed: 312)
            let r = rng.floats(cBatch * cClasses), s = rng.floats(cBatch * cHidden)
            let rm = CheckMemory.floats(r), sm = CheckMemory.floats(s)
            try st.zeroGradients()
            try g.backward(outputGradient: try rm.view(.f32, [cBatch, cClasses]), tapGradient: try sm.view(.f32, [cBatch, cHidden]))
            let got = try st.parameter(named: "bn.weight").gradient!.toArray() + st.parameter(named: "bn.bias").gradient!.toArray()
            let fd = centralDifferences(m.sourceAffine, h: 1e-6) { p in
                let fe = features(m, x, n: cBatch, affine: p)
                let z = m.logits(x, n: cBatch, affine: p)
                var total = 0.0
                for i in 0..<z.count { total += Double(r[i]) * z[i] }
                for i in 0..<fe.count { total += Double(s[i]) * fe[i] }
                return total
            }
            graphExpectAllClose(&c, got, fd, atol: 1e-5, rtol: 1e-3, "d(r·z + s·f)/d(gamma, beta)")
            withExtendedLifetime(xm) {}
            withExtendedLifetime(rm) {}
            withExtendedLifetime(sm) {}
        } catch {
            c.fail("tap: " + error.description)
        }
    },

    Check("Adaptation/RMT", "one step equals a step-by-step reference: SCE on both views, prototypes, projector, SupCon, replay, Adam, EMA") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 303)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let lr = 1e-2, width = 4
            let provider = RandomSourceBatches(seed: 321, pixels: imgPixels, classes: cClasses)
            let config = RMT.Configuration(projectionDimension: width, warmUpSamples: 0, prototypeSamples: 2 * cBatch, emaMomentum: 0.9,
                                           optimizer: .adam(learningRate: Float(lr), beta1: 0.9, beta2: 0.999, epsilon: 1e-8), seed: 5)
            let s = try RMT(spec: m.spec, store: st, batchSize: cBatch, arena: arena, configuration: config, source: provider)
            c.expect(s.classifierLayer == 4 && s.featureCount == cHidden, "split at l2 with 3 features")
            c.expect(provider.calls == 2, "prototypes read 2 source batches")
            // Replay the provider: 2 prototype batches, then the replay batch of step 1.
            let replay = RandomSourceBatches(seed: 321, pixels: imgPixels, classes: cClasses)
            let xm = CheckMemory.floats([Float](repeating: 0, count: cBatch * imgPixels)), ym = CheckMemory.floats([Float](repeating: 0, count: cBatch))
            func nextSource() throws(LichenError) -> ([Float], [Int]) {
                try replay.nextSourceBatch(images: try xm.view(.f32, [cBatch, 1, 4, 4]), labels: try ym.view(.f32, [cBatch]))
                return ((0..<(cBatch * imgPixels)).map { xm.floats[$0] }, (0..<cBatch).map { Int(ym.floats[$0]) })
            }
            var sums = [Double](repeating: 0, count: cClasses * cHidden), counts = [Int](repeating: 0, count: cClasses)
            for _ in 0..<2 {
                let (x, y) = try nextSource()
                let f = features(m, x, n: cBatch, affine: m.sourceAffine)
                for b in 0..<cBatch {
                    counts[y[b]] += 1
                    for j in 0..<cHidden { sums[y[b] * cHidden + j] += f[b * cHidden + j] }
                }
            }
            var prototypes = sums
            for k in 0..<cClasses where counts[k] > 0 { for j in 0..<cHidden { prototypes[k * cHidden + j] /= Double(counts[k]) } }
            graphExpectAllClose(&c, try s.prototypes!.toArray(), prototypes, atol: 1e-5, "prototypes = class means of batch-stat features")
            let (xs, ys) = try nextSource()
            // The step's own inputs.
            let x = images(331)
            var random = SplitMix64Random(seed: 5)
            let xa = try replayAugmentations(x, n: cBatch, count: 1, random: &random)[0]
            let projectorIndices = Array(0..<s.projectorStore.count)
            let theta0 = m.sourceAffine + (try storeValues(s.projectorStore, projectorIndices)).map { Double($0) }
            let zt = m.logits(x, n: cBatch, affine: m.sourceAffine)
            // Nearest prototypes from the clean features at θ0 (no gradient).
            let f0 = features(m, x, n: cBatch, affine: m.sourceAffine)
            var nearest = [Int](repeating: 0, count: cBatch)
            for b in 0..<cBatch {
                var best = -Double.infinity
                for k in 0..<cClasses {
                    var dot = 0.0, pn = 0.0, fn = 0.0
                    for j in 0..<cHidden {
                        dot += prototypes[k * cHidden + j] * f0[b * cHidden + j]
                        pn += prototypes[k * cHidden + j] * prototypes[k * cHidden + j]
                        fn += f0[b * cHidden + j] * f0[b * cHidden + j]
                    }
                    let cosine = dot / (max(pn.squareRoot(), 1e-8) * max(fn.squareRoot(), 1e-8))
                    if cosine > best { best = cosine; nearest[b] = k }
                }
            }
            func total(_ theta: [Double]) -> Double {
                let affine = Array(theta[0..<6]), proj = Array(theta[6...])
                let z = m.logits(x, n: cBatch, affine: affine), za = m.logits(xa, n: cBatch, affine: affine)
                let st = 0.5 * (refSymmetricCrossEntropy(z, zt, classes: cClasses, alpha: 0.5)
                    + refSymmetricCrossEntropy(za, zt, classes: cClasses, alpha: 0.5))
                let f = features(m, x, n: cBatch, affine: affine), fa = features(m, xa, n: cBatch, affine: affine)
                var v: [Double] = []
                for b in 0..<cBatch { for j in 0..<cHidden { v.append(prototypes[nearest[b] * cHidden + j]) } }
                v += f + fa
                let y = project(v, rows: 3 * cBatch, d: cHidden, width: width, proj)
                let cont = refSupCon(y, rows: 3 * cBatch, d: width, views: 3, tau: 0.1)
                let src = refCrossEntropy(m.logits(xs, n: cBatch, affine: affine), labels: ys, classes: cClasses)
                return st + cont + src
            }
            let got = try rmtStep(s, x)
            var expectedOut = m.logits(x, n: cBatch, affine: m.sourceAffine)
            for i in 0..<expectedOut.count { expectedOut[i] += zt[i] }
            graphExpectAllClose(&c, got, expectedOut, atol: 2e-5, rtol: 1e-5, "output = student + teacher logits before the update")
            c.expectClose(s.lastLoss, Float(total(theta0)), absolute: 1e-4, relative: 1e-4, "total loss")
            let fd = centralDifferences(theta0, h: 1e-6, total)
            let grads = try storeGradients(st, s.trainedParameters) + storeGradients(s.projectorStore, projectorIndices)
            graphExpectAllClose(&c, grads, fd, atol: 2e-4, rtol: 2e-3, "gradients of student affine and projector vs central differences")
            // First Adam step: p − lr · g / (|g| + ε) (bias-corrected m̂ = g, v̂ = g²), for gradients clear of 0.
            let after = (try storeValues(st, s.trainedParameters) + storeValues(s.projectorStore, projectorIndices)).map { Double($0) }
            var checked = 0, wrong = 0
            for i in 0..<theta0.count where abs(fd[i]) > 1e-3 {
                checked += 1
                let expected = theta0[i] - lr * fd[i] / (abs(fd[i]) + 1e-8)
                if abs(after[i] - expected) > 1e-5 { wrong += 1 }
            }
            c.expect(checked > 20 && wrong == 0, "Adam step over \(checked) values with |g| > 1e-3: \(wrong) wrong")
            let student = try storeValues(st, s.trainedParameters), teacher = try rmtTeacher(s)
            var ema: [Double] = []
            for i in 0..<6 { ema.append(0.9 * m.sourceAffine[i] + 0.1 * Double(student[i])) }
            graphExpectAllClose(&c, teacher, ema, atol: 1e-6, "teacher = 0.9 source + 0.1 student")
            withExtendedLifetime(xm) {}
            withExtendedLifetime(ym) {}
        } catch {
            c.fail("rmt step: " + error.description)
        }
    },

    Check("Adaptation/RMT", "warm-up: S steps of SCE(student, teacher) on source batches, learning rate lr(i + 1)/S, EMA after each") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 304)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let lr = 2e-2
            let provider = RandomSourceBatches(seed: 341, pixels: imgPixels, classes: cClasses)
            let config = RMT.Configuration(lambdaContrast: 0, lambdaSource: 0, warmUpSamples: 3 * cBatch + 2, emaMomentum: 0.8,
                                           optimizer: .adam(learningRate: Float(lr), beta1: 0.9, beta2: 0.999, epsilon: 1e-8))
            let s = try RMT(spec: m.spec, store: st, batchSize: cBatch, arena: arena, configuration: config, source: provider)
            c.expect(s.warmUpSteps == 3 && provider.calls == 3, "3 warm-up steps read 3 source batches (20 samples / 6)")
            let replay = RandomSourceBatches(seed: 341, pixels: imgPixels, classes: cClasses)
            let xm = CheckMemory.floats([Float](repeating: 0, count: cBatch * imgPixels)), ym = CheckMemory.floats([Float](repeating: 0, count: cBatch))
            var student = m.sourceAffine, teacher = m.sourceAffine
            var mm = [Double](repeating: 0, count: 6), vv = mm
            var b1t = 1.0, b2t = 1.0
            for i in 0..<3 {
                try replay.nextSourceBatch(images: try xm.view(.f32, [cBatch, 1, 4, 4]), labels: try ym.view(.f32, [cBatch]))
                let x = (0..<(cBatch * imgPixels)).map { xm.floats[$0] }
                let zt = m.logits(x, n: cBatch, affine: teacher)
                let g = centralDifferences(student, h: 1e-6) { p in
                    refSymmetricCrossEntropy(m.logits(x, n: cBatch, affine: p), zt, classes: cClasses, alpha: 0.5)
                }
                let rate = lr * Double(i + 1) / 3
                b1t *= 0.9
                b2t *= 0.999
                for k in 0..<6 {
                    mm[k] = 0.9 * mm[k] + 0.1 * g[k]
                    vv[k] = 0.999 * vv[k] + 0.001 * g[k] * g[k]
                    student[k] -= (rate / (1 - b1t)) * mm[k] / (vv[k].squareRoot() / (1 - b2t).squareRoot() + 1e-8)
                }
                for k in 0..<6 { teacher[k] = 0.8 * teacher[k] + 0.2 * student[k] }
            }
            graphExpectAllClose(&c, try storeValues(st, s.trainedParameters), student, atol: 2e-5, "student after the warm-up")
            graphExpectAllClose(&c, try rmtTeacher(s), teacher, atol: 2e-5, "teacher after the warm-up")
            withExtendedLifetime(xm) {}
            withExtendedLifetime(ym) {}
        } catch {
            c.fail("rmt warm-up: " + error.description)
        }
    },

    Check("Adaptation/RMT", "reset returns to the post-warm-up bits (student, teacher, projector, optimizer); bad input changes nothing") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 305)
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let provider = RandomSourceBatches(seed: 351, pixels: imgPixels, classes: cClasses)
            let config = RMT.Configuration(lambdaSource: 0, projectionDimension: 4, warmUpSamples: 2 * cBatch, prototypeSamples: cBatch)
            let s = try RMT(spec: m.spec, store: st, batchSize: cBatch, arena: arena, mode: .full, configuration: config, source: provider)
            let projectorIndices = Array(0..<s.projectorStore.count)
            func state() throws(LichenError) -> [UInt32] {
                allBits(try storeValues(st, s.trainedParameters) + rmtTeacher(s) + storeValues(s.projectorStore, projectorIndices))
            }
            let initial = try state()
            let first = try rmtStep(s, images(361))
            let afterFirst = try state()
            _ = try rmtStep(s, images(362))
            var bad = images(363)
            bad[11] = -Float.infinity
            let beforeBad = try state()
            c.expectThrows(.nonFiniteValue(operand: "input", index: 11), "infinite frame") { () throws(LichenError) in try rmtStep(s, bad) }
            c.expectThrows(.invalidArgument(name: "input.batch", value: cBatch + 1, reason: "must be in 1...the batch size the graph was built for"),
                           "batch too large") { () throws(LichenError) in try rmtStep(s, images(364, n: cBatch + 1), n: cBatch + 1) }
            let afterBad = try state()
            c.expect(afterBad == beforeBad && s.stepCount == 2, "refused batches changed nothing")
            c.expect(afterBad != initial, "two steps changed the state")
            try s.reset()
            c.expect(try state() == initial, "reset: post-warm-up bits of student, teacher and projector")
            let again = try rmtStep(s, images(361))
            c.expect(allBits(again) == allBits(first), "first output repeats after reset")
            c.expect(try state() == afterFirst, "first update repeats bit for bit (optimizer state and augmentation stream restored)")
        } catch {
            c.fail("rmt reset: " + error.description)
        }
    },
]
