import Lichen

// Checks of Sources/Lichen/Adaptation/FrameAdapter.swift on a tiny model built here:
//     x [3] → linear l1 (3) → batch norm bn (3) → relu → linear l2 (3 classes)
// References: the forward written out in Double (batch statistics: per-channel mean and
// biased variance over the rows given, eps 1e-5), and a batch-mode session fed the same frames.

private let fIn = 3, fHidden = 3, fClasses = 3

private struct FrameModel {
    var w1: [Float], b1: [Float], gamma: [Float], beta: [Float], runMean: [Float], runVar: [Float], w2: [Float], b2: [Float]

    init(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        w1 = rng.floats(fHidden * fIn)
        b1 = rng.floats(fHidden)
        gamma = rng.floats(fHidden, 0.5, 1.5)
        beta = rng.floats(fHidden, -0.5, 0.5)
        runMean = rng.floats(fHidden, -0.5, 0.5)
        runVar = rng.floats(fHidden, 0.5, 2)
        w2 = rng.floats(fClasses * fHidden, -2, 2)
        b2 = rng.floats(fClasses)
    }

    var spec: ModelSpec {
        var s = graphSpec([fIn], [
            graphLayer(.linear, "l1", [-1]) { $0.outputs = fHidden },
            graphLayer(.batchNorm, "bn", [0]),
            graphLayer(.relu, "r", [1]),
            graphLayer(.linear, "l2", [2]) { $0.outputs = fClasses },
        ])
        s.classCount = fClasses
        return s
    }

    func store(_ arena: Arena) throws(LichenError) -> ParameterStore {
        let st = ParameterStore(arena: arena)
        try st.add(name: "l1.weight", role: .weight, shape: Shape(fHidden, fIn), values: w1, trainable: false)
        try st.add(name: "l1.bias", role: .bias, shape: Shape(fHidden), values: b1, trainable: false)
        try st.add(name: "bn.weight", role: .normWeight, shape: Shape(fHidden), values: gamma, trainable: false)
        try st.add(name: "bn.bias", role: .normBias, shape: Shape(fHidden), values: beta, trainable: false)
        try st.add(name: "bn.running_mean", role: .runningMean, shape: Shape(fHidden), values: runMean, trainable: false)
        try st.add(name: "bn.running_var", role: .runningVariance, shape: Shape(fHidden), values: runVar, trainable: false)
        try st.add(name: "l2.weight", role: .weight, shape: Shape(fClasses, fHidden), values: w2, trainable: false)
        try st.add(name: "l2.bias", role: .bias, shape: Shape(fClasses), values: b2, trainable: false)
        return st
    }

    /// l1's output (batch norm's input) in Double for the `n` rows of `x`, [n, 3].
    func hidden(_ x: [Float], n: Int) -> [Double] {
        var h = [Double](repeating: 0, count: n * fHidden)
        for b in 0..<n {
            for o in 0..<fHidden {
                var s = Double(b1[o])
                for i in 0..<fIn { s += Double(w1[o * fIn + i]) * Double(x[b * fIn + i]) }
                h[b * fHidden + o] = s
            }
        }
        return h
    }

    /// Logits in Double of the `n` rows of `x` normalised with the given per-channel mean and
    /// variance (eps 1e-5) and this model's γ, β.
    func logits(_ x: [Float], n: Int, mean: [Double], variance: [Double]) -> [Double] {
        var h = hidden(x, n: n)
        for ch in 0..<fHidden {
            let inv = 1 / (variance[ch] + 1e-5).squareRoot()
            for b in 0..<n { h[b * fHidden + ch] = max((h[b * fHidden + ch] - mean[ch]) * inv * Double(gamma[ch]) + Double(beta[ch]), 0) }
        }
        var z = [Double](repeating: 0, count: n * fClasses)
        for b in 0..<n {
            for k in 0..<fClasses {
                var s = Double(b2[k])
                for o in 0..<fHidden { s += Double(w2[k * fHidden + o]) * h[b * fHidden + o] }
                z[b * fClasses + k] = s
            }
        }
        return z
    }

    /// Logits in Double of the `n` rows of `x`, batch statistics over those rows or the running ones.
    func logits(_ x: [Float], n: Int, batchStatistics: Bool) -> [Double] {
        var h = [Double](repeating: 0, count: n * fHidden)
        for b in 0..<n {
            for o in 0..<fHidden {
                var s = Double(b1[o])
                for i in 0..<fIn { s += Double(w1[o * fIn + i]) * Double(x[b * fIn + i]) }
                h[b * fHidden + o] = s
            }
        }
        for ch in 0..<fHidden {
            var mean = Double(runMean[ch]), variance = Double(runVar[ch])
            if batchStatistics {
                mean = 0
                for b in 0..<n { mean += h[b * fHidden + ch] }
                mean /= Double(n)
                variance = 0
                for b in 0..<n { let d = h[b * fHidden + ch] - mean; variance += d * d }
                variance /= Double(n)
            }
            let inv = 1 / (variance + 1e-5).squareRoot()
            for b in 0..<n { h[b * fHidden + ch] = max((h[b * fHidden + ch] - mean) * inv * Double(gamma[ch]) + Double(beta[ch]), 0) }
        }
        var z = [Double](repeating: 0, count: n * fClasses)
        for b in 0..<n {
            for k in 0..<fClasses {
                var s = Double(b2[k])
                for o in 0..<fHidden { s += Double(w2[k * fHidden + o]) * h[b * fHidden + o] }
                z[b * fClasses + k] = s
            }
        }
        return z
    }
}

/// Per-channel mean and biased variance over the `n` rows of `h` ([n, channels]), in Double.
func batchStatistics(_ h: [Double], n: Int, channels: Int) -> (mean: [Double], variance: [Double]) {
    var mean = [Double](repeating: 0, count: channels), variance = [Double](repeating: 0, count: channels)
    for ch in 0..<channels {
        for b in 0..<n { mean[ch] += h[b * channels + ch] }
        mean[ch] /= Double(n)
        for b in 0..<n { let d = h[b * channels + ch] - mean[ch]; variance[ch] += d * d }
        variance[ch] /= Double(n)
    }
    return (mean, variance)
}

private func frameStream(_ seed: UInt64, _ count: Int) -> [[Float]] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in rng.floats(fIn, -2, 2) }
}

/// One frame through the adapter, as an array of logits.
private func feed(_ a: FrameAdapter, _ frame: [Float]) throws(LichenError) -> [Float] {
    let mem = CheckMemory.floats(frame)
    defer { withExtendedLifetime(mem) {} }
    return try a.step(frame: try mem.view(.f32, [fIn])).toArray()
}

private func affineBits(_ st: ParameterStore) throws(LichenError) -> [UInt32] {
    try (st.parameter(named: "bn.weight").value.toArray() + st.parameter(named: "bn.bias").value.toArray()).map { $0.bitPattern }
}

private func allBits(_ st: ParameterStore) throws(LichenError) -> [UInt32] {
    var out: [UInt32] = []
    for i in 0..<st.count { out += try st[i].value.toArray().map { $0.bitPattern } }
    return out
}

/// Logits in Double of `n` images of the image model (CoTTAChecks.swift) normalised with the
/// given per-channel mean and variance (eps 1e-5) and affine (γ then β).
private func imageLogits(_ m: ImageModel, _ x: [Float], n: Int, mean: [Double], variance: [Double], affine: [Double]) -> [Double] {
    var h = imageHidden(m, x, n: n)
    for ch in 0..<cHidden {
        let inv = 1 / (variance[ch] + 1e-5).squareRoot()
        for b in 0..<n { h[b * cHidden + ch] = max((h[b * cHidden + ch] - mean[ch]) * inv * affine[ch] + affine[cHidden + ch], 0) }
    }
    var z = [Double](repeating: 0, count: n * cClasses)
    for b in 0..<n {
        for k in 0..<cClasses {
            var s = Double(m.b2[k])
            for o in 0..<cHidden { s += Double(m.w2[k * cHidden + o]) * h[b * cHidden + o] }
            z[b * cClasses + k] = s
        }
    }
    return z
}

/// l1's output (batch norm's input) of the image model in Double, [n, 3].
private func imageHidden(_ m: ImageModel, _ x: [Float], n: Int) -> [Double] {
    var h = [Double](repeating: 0, count: n * cHidden)
    for b in 0..<n {
        for o in 0..<cHidden {
            var s = Double(m.b1[o])
            for i in 0..<imgPixels { s += Double(m.w1[o * imgPixels + i]) * Double(x[b * imgPixels + i]) }
            h[b * cHidden + o] = s
        }
    }
    return h
}

/// Logits of `n` images with batch statistics over those images and the given affine.
private func imageWindowLogits(_ m: ImageModel, _ x: [Float], n: Int, affine: [Double]) -> [Double] {
    let st = batchStatistics(imageHidden(m, x, n: n), n: n, channels: cHidden)
    return imageLogits(m, x, n: n, mean: st.mean, variance: st.variance, affine: affine)
}

/// One image through the adapter, as an array of logits.
private func feedImage(_ a: FrameAdapter, _ image: [Float]) throws(LichenError) -> [Float] {
    let mem = CheckMemory.floats(image)
    defer { withExtendedLifetime(mem) {} }
    return try a.step(frame: try mem.view(.f32, [1, 1, imgSide, imgSide])).toArray()
}

/// Values of the store's parameters `indices`, in order, as Double.
private func values(_ st: ParameterStore, _ indices: [Int]) throws(LichenError) -> [Double] {
    var out: [Double] = []
    for i in indices { out += try st[i].value.toArray().map { Double($0) } }
    return out
}

private func bitsOf(_ tensors: [TensorView]) throws(LichenError) -> [UInt32] {
    var out: [UInt32] = []
    for t in tensors { out += try t.toArray().map { $0.bitPattern } }
    return out
}

/// The frames `first..<end` of a list of images, concatenated.
private func joined(_ images: [[Float]], _ first: Int, _ end: Int) -> [Float] {
    var x: [Float] = []
    for f in first..<end { x += images[f] }
    return x
}

let frameAdapterChecks: [Check] = [
    Check("Adaptation/FrameAdapter", "BN-adapt, window prediction: each frame's prediction is its row of the batch-stat forward over the window ending at it") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 41)
            let arena = try Arena(byteCount: 8 << 20)
            let s = try AdaptationSession(method: .bnAdapt, spec: m.spec, store: try m.store(arena), batchSize: 4, arena: arena)
            let a = try FrameAdapter(session: s, window: 4, every: 2, prediction: .window, arena: arena)
            let frames = frameStream(42, 11)
            for t in 1...frames.count {
                let got = try feed(a, frames[t - 1])
                let first = max(0, t - 4)
                var x: [Float] = []
                for f in first..<t { x += frames[f] }
                let z = m.logits(x, n: t - first, batchStatistics: true)
                let row = Array(z[((t - first - 1) * fClasses)...])
                graphExpectAllClose(&c, got, row, atol: 1e-5, rtol: 1e-5, "frame \(t)")
                c.expect(a.lastFrameAdapted == (t >= 4 && (t - 4) % 2 == 0), "frame \(t) adapts iff t >= 4 and (t - 4) % 2 == 0")
            }
            c.expect(a.frameCount == 11 && a.adaptationCount == 4, "11 frames, 4 adaptations (t = 4, 6, 8, 10); got \(a.frameCount), \(a.adaptationCount)")
        } catch {
            c.fail("bn frames: " + error.description)
        }
    },

    Check("Adaptation/FrameAdapter", "source: each frame's prediction is the running-statistics forward of that frame alone") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 43)
            let arena = try Arena(byteCount: 8 << 20)
            let s = try AdaptationSession(method: .source, spec: m.spec, store: try m.store(arena), batchSize: 5, arena: arena)
            let a = try FrameAdapter(session: s, window: 5, every: 5, arena: arena)
            for (t, frame) in frameStream(44, 12).enumerated() {
                graphExpectAllClose(&c, try feed(a, frame), m.logits(frame, n: 1, batchStatistics: false), atol: 1e-5, rtol: 1e-5,
                                    "frame \(t + 1)")
            }
        } catch {
            c.fail("source frames: " + error.description)
        }
    },

    Check("Adaptation/FrameAdapter", "Tent with every = window, either prediction: the same parameters, bit for bit, as step(batch:) on the disjoint batches") { c in
        for prediction in [FrameAdapter.Prediction.window, .saved] {
            do throws(LichenError) {
                let m = FrameModel(seed: 45)
                let window = 4, batches = 5
                let arenaA = try Arena(byteCount: 8 << 20), arenaB = try Arena(byteCount: 8 << 20)
                let stA = try m.store(arenaA), stB = try m.store(arenaB)
                let opt = AdaptationOptimizer.adam(learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
                let sA = try AdaptationSession(method: .tent, spec: m.spec, store: stA, batchSize: window, arena: arenaA, optimizer: opt)
                let sB = try AdaptationSession(method: .tent, spec: m.spec, store: stB, batchSize: window, arena: arenaB, optimizer: opt)
                let a = try FrameAdapter(session: sA, window: window, every: window, prediction: prediction, arena: arenaA)
                let frames = frameStream(46, window * batches)
                var before = try affineBits(stA)
                for b in 0..<batches {
                    var x: [Float] = []
                    for f in 0..<window { x += frames[b * window + f] }
                    let mem = CheckMemory.floats(x)
                    let zB = try sB.step(batch: try mem.view(.f32, [window, fIn])).toArray()
                    withExtendedLifetime(mem) {}
                    for f in 0..<window {
                        let z = try feed(a, frames[b * window + f])
                        let adapted = f == window - 1
                        c.expect(a.lastFrameAdapted == adapted, "batch \(b) frame \(f): adapted \(a.lastFrameAdapted)")
                        let after = try affineBits(stA)
                        c.expect((after != before) == adapted, "batch \(b) frame \(f): gamma/beta change only on the adaptation frame")
                        before = after
                        if adapted {
                            let last = Array(zB[((window - 1) * fClasses)...]).map { $0.bitPattern }
                            c.expect(z.map { $0.bitPattern } == last, "batch \(b): the adaptation frame's logits are the batch's last row")
                        }
                    }
                    c.expect(try affineBits(stA) == affineBits(stB), "batch \(b): gamma, beta equal the batch session's")
                }
                c.expect(sA.stepCount == batches && a.adaptationCount == batches, "\(batches) steps, got \(sA.stepCount)")
                c.expect(a.savedPredictionCount == (prediction == .saved ? (batches - 1) * (window - 1) : 0),
                         "\(prediction.name): frames predicted with saved statistics: \(a.savedPredictionCount)")
            } catch {
                c.fail("tent K = B, \(prediction.name): " + error.description)
            }
        }
    },

    Check("Adaptation/FrameAdapter", "Tent with window 4, every 2, window prediction: predictions before an update use the old parameters, the next frame the new") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 47)
            let arena = try Arena(byteCount: 8 << 20)
            let st = try m.store(arena)
            let s = try AdaptationSession(method: .tent, spec: m.spec, store: st, batchSize: 4, arena: arena,
                                          optimizer: .sgd(learningRate: 0.5, momentum: 0, nesterov: false))
            let a = try FrameAdapter(session: s, window: 4, every: 2, prediction: .window, arena: arena)
            let frames = frameStream(48, 9)
            for t in 1...frames.count {
                // Reference with the γ, β in the store before this frame.
                var mm = m
                mm.gamma = try st.parameter(named: "bn.weight").value.toArray()
                mm.beta = try st.parameter(named: "bn.bias").value.toArray()
                let got = try feed(a, frames[t - 1])
                let first = max(0, t - 4)
                var x: [Float] = []
                for f in first..<t { x += frames[f] }
                let z = mm.logits(x, n: t - first, batchStatistics: true)
                graphExpectAllClose(&c, got, Array(z[((t - first - 1) * fClasses)...]), atol: 1e-5, rtol: 1e-5, "frame \(t)")
            }
            c.expect(s.stepCount == 3, "adaptations at t = 4, 6, 8: 3 steps, got \(s.stepCount)")
        } catch {
            c.fail("tent window: " + error.description)
        }
    },

    Check("Adaptation/FrameAdapter", "NaN, infinite and wrong-shape frames throw, are counted, and change nothing") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 49)
            let arenaA = try Arena(byteCount: 8 << 20), arenaB = try Arena(byteCount: 8 << 20)
            let stA = try m.store(arenaA), stB = try m.store(arenaB)
            let opt = AdaptationOptimizer.sgd(learningRate: 0.3, momentum: 0.9, nesterov: false)
            let a = try FrameAdapter(session: try AdaptationSession(method: .tent, spec: m.spec, store: stA, batchSize: 3, arena: arenaA, optimizer: opt),
                                     window: 3, every: 1, arena: arenaA)
            let b = try FrameAdapter(session: try AdaptationSession(method: .tent, spec: m.spec, store: stB, batchSize: 3, arena: arenaB, optimizer: opt),
                                     window: 3, every: 1, arena: arenaB)
            let frames = frameStream(50, 8)
            var rejected = 0
            for (t, frame) in frames.enumerated() {
                if t == 3 || t == 5 {
                    var bad = frame
                    bad[1] = t == 3 ? Float.nan : -Float.infinity
                    c.expectThrows(.nonFiniteValue(operand: "frame", index: 1), "frame \(t) non-finite") { () throws(LichenError) in
                        try feed(a, bad)
                    }
                    let wide = CheckMemory.floats(frame + [0])
                    c.expectThrows(.shapeMismatch(operand: "frame", dimension: 0, expected: fIn, got: fIn + 1), "frame of 4 values") {
                        () throws(LichenError) in try a.step(frame: try wide.view(.f32, [fIn + 1]))
                    }
                    let two = CheckMemory.floats(frame + frame)
                    c.expectThrows(.shapeMismatch(operand: "frame", dimension: 0, expected: 1, got: 2), "two frames at once") {
                        () throws(LichenError) in try a.step(frame: try two.view(.f32, [2, fIn]))
                    }
                    withExtendedLifetime(wide) {}
                    withExtendedLifetime(two) {}
                    rejected += 3
                    c.expect(try allBits(stA) == allBits(stB), "frame \(t): parameters unchanged by the rejected frames")
                }
                let za = try feed(a, frame), zb = try feed(b, frame)
                c.expect(za.map { $0.bitPattern } == zb.map { $0.bitPattern }, "frame \(t): same prediction as an adapter that never saw bad frames")
            }
            c.expect(a.rejectedFrameCount == rejected && b.rejectedFrameCount == 0, "rejected \(a.rejectedFrameCount), expected \(rejected)")
            c.expect(a.frameCount == frames.count && a.adaptationCount == b.adaptationCount, "frame counts")
            c.expect(try allBits(stA) == allBits(stB), "final parameters equal")
        } catch {
            c.fail("bad frames: " + error.description)
        }
    },

    Check("Adaptation/FrameAdapter", "window 0, window above the batch size and every 0 are refused") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 51)
            let arena = try Arena(byteCount: 8 << 20)
            let s = try AdaptationSession(method: .bnAdapt, spec: m.spec, store: try m.store(arena), batchSize: 4, arena: arena)
            c.expectThrows(.invalidArgument(name: "window", value: 0, reason: "must be in 1...the session's batch size"), "window 0") {
                () throws(LichenError) in try FrameAdapter(session: s, window: 0, every: 1, arena: arena)
            }
            c.expectThrows(.invalidArgument(name: "window", value: 5, reason: "must be in 1...the session's batch size"), "window 5") {
                () throws(LichenError) in try FrameAdapter(session: s, window: 5, every: 1, arena: arena)
            }
            c.expectThrows(.invalidArgument(name: "every", value: 0, reason: "must be at least 1"), "every 0") {
                () throws(LichenError) in try FrameAdapter(session: s, window: 4, every: 0, arena: arena)
            }
        } catch {
            c.fail("settings: " + error.description)
        }
    },

    Check("Graph/SavedStatistics", "a batch-1 forward with saved statistics equals a Double reference normalising with the saved mean and biased variance") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 53)
            let arena = try Arena(byteCount: 8 << 20)
            let st = try m.store(arena)
            let g = try Graph(spec: m.spec, store: st, batchSize: 5, arena: arena, options: GraphOptions(batchNormMode: .batchStatistics))
            let frames = frameStream(55, 9)
            let first = CheckMemory.floats(frames[0])
            c.expectThrows(.invalidArgument(name: "statistics", value: 0,
                                            reason: "no batch statistics saved (reserve them and run a .computedAndSaved forward first)"),
                           "a saved forward before anything was saved") { () throws(LichenError) in
                try g.forward(input: try first.view(.f32, [1, fIn]), statistics: .saved)
            }
            // Without reserved room, .computedAndSaved saves nothing.
            let window = frames[0..<5].reduce([], +)
            let wm = CheckMemory.floats(window)
            _ = try g.forward(input: try wm.view(.f32, [5, fIn]), statistics: .computedAndSaved)
            c.expect(g.savedStatisticsBatch == 0 && !g.reservesSavedStatistics, "nothing saved before reserveSavedStatistics")
            try g.reserveSavedStatistics(arena: arena)
            let zw = try g.forward(input: try wm.view(.f32, [5, fIn]), statistics: .computedAndSaved).toArray()
            c.expect(g.savedStatisticsBatch == 5, "saved from a batch of 5, got \(g.savedStatisticsBatch)")
            let ref = batchStatistics(m.hidden(window, n: 5), n: 5, channels: fHidden)
            let saved = try g.savedStatistics(layer: 1)
            let mean = try saved.mean.toArray(), variance = try saved.variance.toArray()
            graphExpectAllClose(&c, mean, ref.mean, atol: 1e-6, rtol: 1e-6, "saved mean")
            graphExpectAllClose(&c, variance, ref.variance, atol: 1e-6, rtol: 1e-6, "saved biased variance")
            // A .computed forward of another batch normalises with its own statistics and keeps the saved ones.
            let other = frames[5..<8].reduce([], +)
            let om = CheckMemory.floats(other)
            let zo = try g.forward(input: try om.view(.f32, [3, fIn])).toArray()
            graphExpectAllClose(&c, zo, m.logits(other, n: 3, batchStatistics: true), atol: 1e-5, rtol: 1e-5, "a .computed forward")
            let meanAfter = try saved.mean.toArray(), varianceAfter = try saved.variance.toArray()
            c.expect(meanAfter.map { $0.bitPattern } == mean.map { $0.bitPattern }
                     && varianceAfter.map { $0.bitPattern } == variance.map { $0.bitPattern },
                     "a .computed forward keeps the saved statistics")
            let meanD = mean.map { Double($0) }, varianceD = variance.map { Double($0) }
            for f in 5..<9 {
                let fm = CheckMemory.floats(frames[f])
                let z = try g.forward(input: try fm.view(.f32, [1, fIn]), statistics: .saved).toArray()
                graphExpectAllClose(&c, z, m.logits(frames[f], n: 1, mean: meanD, variance: varianceD), atol: 1e-5, rtol: 1e-5,
                                    "frame \(f) with the saved statistics")
                withExtendedLifetime(fm) {}
            }
            // A frame of the saved window, alone, gets its row of the window's forward.
            let f2 = CheckMemory.floats(frames[2])
            let z2 = try g.forward(input: try f2.view(.f32, [1, fIn]), statistics: .saved).toArray()
            graphExpectAllClose(&c, z2, zw[(2 * fClasses)..<(3 * fClasses)].map { Double($0) }, atol: 1e-5, rtol: 1e-5,
                                "a window frame alone equals its row of the window forward")
            c.expectThrows(.invalidArgument(name: "layer", value: 0, reason: "no saved statistics for this layer (not batch norm, or none reserved)"),
                           "layer 0 is linear") { () throws(LichenError) in try g.savedStatistics(layer: 0) }
            let running = try Graph(spec: m.spec, store: st, batchSize: 2, arena: arena)
            c.expectThrows(.invalidArgument(name: "statistics", value: 0, reason: "only a batch-statistics graph saves batch statistics"),
                           "a running-statistics graph") { () throws(LichenError) in try running.reserveSavedStatistics(arena: arena) }
            // Backward refuses to follow a saved forward (its gradient is not the batch-statistics one).
            try st.setTrainable(true, index: 2)
            let trainer = try Graph(spec: m.spec, store: st, batchSize: 5, arena: arena,
                                    options: GraphOptions(training: true, batchNormMode: .batchStatistics))
            try trainer.reserveSavedStatistics(arena: arena)
            _ = try trainer.forward(input: try wm.view(.f32, [5, fIn]), statistics: .computedAndSaved)
            _ = try trainer.forward(input: try f2.view(.f32, [1, fIn]), statistics: .saved)
            let dz = CheckMemory.floats([Float](repeating: 1, count: fClasses))
            c.expectThrows(.invalidArgument(name: "backward", value: 0, reason: "no forward to backpropagate through"),
                           "backward after a saved forward") { () throws(LichenError) in
                try trainer.backward(outputGradient: try dz.view(.f32, [1, fClasses]))
            }
            withExtendedLifetime((first, wm, om, f2, dz)) {}
        } catch {
            c.fail("saved statistics: " + error.description)
        }
    },

    Check("Adaptation/FrameAdapter", "BN-adapt, saved prediction: frames between updates are batch-1 forwards normalised with the last adaptation window's statistics") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 57)
            let arena = try Arena(byteCount: 8 << 20)
            let s = try AdaptationSession(method: .bnAdapt, spec: m.spec, store: try m.store(arena), batchSize: 4, arena: arena)
            let a = try FrameAdapter(session: s, window: 4, every: 2, prediction: .saved, arena: arena)
            let frames = frameStream(58, 11)
            var lastWindow: [Float]? = nil
            for t in 1...frames.count {
                let got = try feed(a, frames[t - 1])
                let first = max(0, t - 4), n = t - first
                let x = frames[first..<t].reduce([], +)
                let adapts = t >= 4 && (t - 4) % 2 == 0
                if let lw = lastWindow, !adapts {
                    let st = batchStatistics(m.hidden(lw, n: 4), n: 4, channels: fHidden)
                    graphExpectAllClose(&c, got, m.logits(frames[t - 1], n: 1, mean: st.mean, variance: st.variance),
                                        atol: 1e-5, rtol: 1e-5, "frame \(t): saved statistics")
                } else {
                    let z = m.logits(x, n: n, batchStatistics: true)
                    graphExpectAllClose(&c, got, Array(z[((n - 1) * fClasses)...]), atol: 1e-5, rtol: 1e-5, "frame \(t): window")
                }
                if adapts { lastWindow = x }
            }
            c.expect(a.savedPredictionCount == 4 && a.adaptationCount == 4, "frames 5, 7, 9, 11 saved; got \(a.savedPredictionCount)")
        } catch {
            c.fail("bn saved: " + error.description)
        }
    },

    Check("Adaptation/FrameAdapter", "Tent, saved prediction: after an update the saved statistics go with the new γ, β; after a reset the next frame refreshes them from its window") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 59)
            let arena = try Arena(byteCount: 8 << 20)
            let st = try m.store(arena)
            let s = try AdaptationSession(method: .tent, spec: m.spec, store: st, batchSize: 4, arena: arena,
                                          optimizer: .sgd(learningRate: 0.5, momentum: 0, nesterov: false))
            let a = try FrameAdapter(session: s, window: 4, every: 3, prediction: .saved, arena: arena)
            let frames = frameStream(60, 14)
            var lastWindow: [Float]? = nil
            for t in 1...frames.count {
                if t == 8 {
                    // As a collapse guard does: the session alone is reset.
                    try s.reset()
                    lastWindow = nil
                }
                // The reference uses the γ, β in the store before this frame (the statistics of
                // batch norm's input do not depend on them in this model).
                var mm = m
                mm.gamma = try st.parameter(named: "bn.weight").value.toArray()
                mm.beta = try st.parameter(named: "bn.bias").value.toArray()
                let got = try feed(a, frames[t - 1])
                let first = max(0, t - 4), n = t - first
                let x = frames[first..<t].reduce([], +)
                let adapts = t >= 4 && (t - 4) % 3 == 0
                if let lw = lastWindow, !adapts {
                    let stats = batchStatistics(mm.hidden(lw, n: 4), n: 4, channels: fHidden)
                    graphExpectAllClose(&c, got, mm.logits(frames[t - 1], n: 1, mean: stats.mean, variance: stats.variance),
                                        atol: 1e-5, rtol: 1e-5, "frame \(t): saved statistics, current γ, β")
                } else {
                    let z = mm.logits(x, n: n, batchStatistics: true)
                    graphExpectAllClose(&c, got, Array(z[((n - 1) * fClasses)...]), atol: 1e-5, rtol: 1e-5, "frame \(t): window")
                    if n == 4 { lastWindow = x }
                }
            }
            // Saved: 5, 6, 9, 11, 12, 14 (8 refreshed after the reset); steps at 10 and 13 after it.
            c.expect(a.savedPredictionCount == 6, "6 frames with saved statistics, got \(a.savedPredictionCount)")
            c.expect(s.stepCount == 2 && a.adaptationCount == 4, "steps since the reset \(s.stepCount), adaptations \(a.adaptationCount)")
        } catch {
            c.fail("tent saved: " + error.description)
        }
    },

    Check("Adaptation/FrameAdapter", "CoTTA, saved prediction: the EMA teacher's batch-1 forward with the window's statistics; every = window gives the batch parameters bit for bit") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 61)
            let config = CoTTA.Configuration(threshold: 0.6, augmentations: 2, emaMomentum: 0.8, restoreProbability: 0.05,
                                             optimizer: .adam(learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8), seed: 3)
            let frames = (0..<14).map { images(6200 + UInt64($0), n: 1) }
            // Window 4, every 2: predictions between updates.
            let arena = try Arena(byteCount: 16 << 20)
            let s = try AdaptationSession(method: .cotta, spec: m.spec, store: try m.store(arena), batchSize: 4, arena: arena, cotta: config)
            let a = try FrameAdapter(session: s, window: 4, every: 2, prediction: .saved, arena: arena)
            guard let policy = s.cotta else { c.fail("no CoTTA policy"); return }
            var lastWindow: [Float]? = nil
            for t in 1...frames.count {
                var teacher: [Double] = []
                for k in 0..<policy.trainedParameters.count { teacher += try policy.teacherValue(k).toArray().map { Double($0) } }
                let got = try feedImage(a, frames[t - 1])
                let first = max(0, t - 4), n = t - first
                let x = joined(frames, first, t)
                let adapts = t >= 4 && (t - 4) % 2 == 0
                if adapts {
                    lastWindow = x
                    continue
                }
                if let lw = lastWindow {
                    let stats = batchStatistics(imageHidden(m, lw, n: 4), n: 4, channels: cHidden)
                    graphExpectAllClose(&c, got, imageLogits(m, frames[t - 1], n: 1, mean: stats.mean, variance: stats.variance, affine: teacher),
                                        atol: 1e-5, rtol: 1e-5, "frame \(t): teacher, saved statistics")
                } else {
                    let z = imageWindowLogits(m, x, n: n, affine: teacher)
                    graphExpectAllClose(&c, got, Array(z[((n - 1) * cClasses)...]), atol: 1e-5, rtol: 1e-5, "frame \(t): teacher, partial window")
                }
            }
            c.expect(a.savedPredictionCount == 5 && s.stepCount == 6, "saved \(a.savedPredictionCount), steps \(s.stepCount)")
            // Every = window: the same student, teacher and logits as batch steps on the disjoint batches.
            let arenaA = try Arena(byteCount: 16 << 20), arenaB = try Arena(byteCount: 16 << 20)
            let stA = try m.store(arenaA), stB = try m.store(arenaB)
            let sA = try AdaptationSession(method: .cotta, spec: m.spec, store: stA, batchSize: 4, arena: arenaA, cotta: config)
            let sB = try AdaptationSession(method: .cotta, spec: m.spec, store: stB, batchSize: 4, arena: arenaB, cotta: config)
            let b = try FrameAdapter(session: sA, window: 4, every: 4, prediction: .saved, arena: arenaA)
            guard let pA = sA.cotta, let pB = sB.cotta else { c.fail("no CoTTA policy"); return }
            for batch in 0..<3 {
                let xm = CheckMemory.floats(joined(frames, 4 * batch, 4 * batch + 4))
                let zB = try sB.step(batch: try xm.view(.f32, [4, 1, imgSide, imgSide])).toArray()
                withExtendedLifetime(xm) {}
                var z: [Float] = []
                for f in 0..<4 { z = try feedImage(b, frames[4 * batch + f]) }
                c.expect(z.map { $0.bitPattern } == zB[(3 * cClasses)...].map { $0.bitPattern }, "batch \(batch): the adaptation frame's logits")
                c.expect(try bitsOf(pA.trainedParameters.map { stA[$0].value }) == bitsOf(pB.trainedParameters.map { stB[$0].value }),
                         "batch \(batch): student bits")
                c.expect(try bitsOf((0..<pA.trainedParameters.count).map { pA.teacherValue($0) })
                         == bitsOf((0..<pB.trainedParameters.count).map { pB.teacherValue($0) }), "batch \(batch): teacher bits")
            }
        } catch {
            c.fail("cotta saved: " + error.description)
        }
    },

    Check("Adaptation/FrameAdapter", "RMT, saved prediction: student + teacher batch-1 forwards, each with its own saved statistics; every = window gives the batch parameters bit for bit") { c in
        do throws(LichenError) {
            let m = ImageModel(seed: 63)
            let config = RMT.Configuration(projectionDimension: 4, warmUpSamples: 0, prototypeSamples: 8, emaMomentum: 0.8,
                                           optimizer: .adam(learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8), seed: 5)
            let frames = (0..<14).map { images(6400 + UInt64($0), n: 1) }
            let arena = try Arena(byteCount: 16 << 20)
            let st = try m.store(arena)
            let s = try AdaptationSession(method: .rmt, spec: m.spec, store: st, batchSize: 4, arena: arena, rmt: config,
                                          source: RandomSourceBatches(seed: 65, pixels: imgPixels, classes: cClasses))
            let a = try FrameAdapter(session: s, window: 4, every: 2, prediction: .saved, arena: arena)
            guard let policy = s.rmt else { c.fail("no RMT policy"); return }
            var lastWindow: [Float]? = nil
            for t in 1...frames.count {
                let student = try values(st, policy.trainedParameters)
                var teacher: [Double] = []
                for k in 0..<policy.trainedParameters.count { teacher += try policy.teacherValue(k).toArray().map { Double($0) } }
                let got = try feedImage(a, frames[t - 1])
                let first = max(0, t - 4), n = t - first
                let x = joined(frames, first, t)
                let adapts = t >= 4 && (t - 4) % 2 == 0
                if adapts {
                    lastWindow = x
                    continue
                }
                var want: [Double]
                if let lw = lastWindow {
                    let stats = batchStatistics(imageHidden(m, lw, n: 4), n: 4, channels: cHidden)
                    want = imageLogits(m, frames[t - 1], n: 1, mean: stats.mean, variance: stats.variance, affine: student)
                    let zt = imageLogits(m, frames[t - 1], n: 1, mean: stats.mean, variance: stats.variance, affine: teacher)
                    for k in 0..<cClasses { want[k] += zt[k] }
                } else {
                    let zs = imageWindowLogits(m, x, n: n, affine: student), zt = imageWindowLogits(m, x, n: n, affine: teacher)
                    want = (0..<cClasses).map { zs[(n - 1) * cClasses + $0] + zt[(n - 1) * cClasses + $0] }
                }
                graphExpectAllClose(&c, got, want, atol: 1e-5, rtol: 1e-5, "frame \(t): student + teacher")
            }
            c.expect(a.savedPredictionCount == 5 && s.stepCount == 6, "saved \(a.savedPredictionCount), steps \(s.stepCount)")
            let arenaA = try Arena(byteCount: 16 << 20), arenaB = try Arena(byteCount: 16 << 20)
            let stA = try m.store(arenaA), stB = try m.store(arenaB)
            let sA = try AdaptationSession(method: .rmt, spec: m.spec, store: stA, batchSize: 4, arena: arenaA, rmt: config,
                                           source: RandomSourceBatches(seed: 67, pixels: imgPixels, classes: cClasses))
            let sB = try AdaptationSession(method: .rmt, spec: m.spec, store: stB, batchSize: 4, arena: arenaB, rmt: config,
                                           source: RandomSourceBatches(seed: 67, pixels: imgPixels, classes: cClasses))
            let b = try FrameAdapter(session: sA, window: 4, every: 4, prediction: .saved, arena: arenaA)
            guard let pA = sA.rmt, let pB = sB.rmt else { c.fail("no RMT policy"); return }
            func state(_ p: RMT, _ store: ParameterStore) throws(LichenError) -> [UInt32] {
                try bitsOf(p.trainedParameters.map { store[$0].value } + (0..<p.trainedParameters.count).map { p.teacherValue($0) }
                           + (0..<p.projectorStore.count).map { p.projectorStore[$0].value })
            }
            for batch in 0..<3 {
                let xm = CheckMemory.floats(joined(frames, 4 * batch, 4 * batch + 4))
                let zB = try sB.step(batch: try xm.view(.f32, [4, 1, imgSide, imgSide])).toArray()
                withExtendedLifetime(xm) {}
                var z: [Float] = []
                for f in 0..<4 { z = try feedImage(b, frames[4 * batch + f]) }
                c.expect(z.map { $0.bitPattern } == zB[(3 * cClasses)...].map { $0.bitPattern }, "batch \(batch): the adaptation frame's logits")
                c.expect(try state(pA, stA) == state(pB, stB), "batch \(batch): student, teacher and projector bits")
            }
        } catch {
            c.fail("rmt saved: " + error.description)
        }
    },
]
