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

let frameAdapterChecks: [Check] = [
    Check("Adaptation/FrameAdapter", "BN-adapt: each frame's prediction is its row of the batch-stat forward over the window ending at it") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 41)
            let arena = try Arena(byteCount: 8 << 20)
            let s = try AdaptationSession(method: .bnAdapt, spec: m.spec, store: try m.store(arena), batchSize: 4, arena: arena)
            let a = try FrameAdapter(session: s, window: 4, every: 2, arena: arena)
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

    Check("Adaptation/FrameAdapter", "Tent with every = window: the same parameters, bit for bit, as step(batch:) on the disjoint batches") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 45)
            let window = 4, batches = 5
            let arenaA = try Arena(byteCount: 8 << 20), arenaB = try Arena(byteCount: 8 << 20)
            let stA = try m.store(arenaA), stB = try m.store(arenaB)
            let opt = AdaptationOptimizer.adam(learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
            let sA = try AdaptationSession(method: .tent, spec: m.spec, store: stA, batchSize: window, arena: arenaA, optimizer: opt)
            let sB = try AdaptationSession(method: .tent, spec: m.spec, store: stB, batchSize: window, arena: arenaB, optimizer: opt)
            let a = try FrameAdapter(session: sA, window: window, every: window, arena: arenaA)
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
        } catch {
            c.fail("tent K = B: " + error.description)
        }
    },

    Check("Adaptation/FrameAdapter", "Tent with window 4, every 2: predictions before an update use the old parameters, the next frame the new") { c in
        do throws(LichenError) {
            let m = FrameModel(seed: 47)
            let arena = try Arena(byteCount: 8 << 20)
            let st = try m.store(arena)
            let s = try AdaptationSession(method: .tent, spec: m.spec, store: st, batchSize: 4, arena: arena,
                                          optimizer: .sgd(learningRate: 0.5, momentum: 0, nesterov: false))
            let a = try FrameAdapter(session: s, window: 4, every: 2, arena: arena)
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
]
