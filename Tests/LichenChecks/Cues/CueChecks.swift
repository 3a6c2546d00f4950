import Lichen

/// Checks of the cue learner (Sources/Lichen/Cues): the kNN estimate against a brute-force
/// reference, the ROC, the auto-tuned threshold and AUC against hand-computed cases, the switch
/// and training-wheel rules on scripted cue sequences, and bad input.
let cueChecks: [Check] = [
    Check("Cues/KNN", "the kNN estimate equals a brute-force reference (all distances in f64, sorted, mean of the k first targets)") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 71)
            let d = 21, n = 300
            let arena = try Arena(byteCount: 8 << 20)
            let learner = try CueLearner(configuration: cueConfig(featureCount: d, capacity: 400, retrainInterval: 400), arena: arena)
            var rows: [[Float]] = [], targets: [Float] = []
            for _ in 0..<n {
                let x = rng.floats(d, 0, 1), t = rng.nextFloat(0, 30)
                rows.append(x)
                targets.append(t)
                let m = CheckMemory.floats(x)
                _ = try learner.tick(features: try m.view(.f32, [d]), target: t, trustedValid: true)
            }
            c.expect(learner.modelCount == 0 && learner.bufferedCount == n, "no model before the first retrain")
            let none = CheckMemory.floats(rows[0])
            c.expect(try learner.predict(features: try none.view(.f32, [d])) == nil, "predict before a model is nil")
            learner.retrainNow()
            c.expect(learner.modelCount == n && learner.retrainCount == 1, "retrainNow copies the buffer into the model")
            for q in 0..<40 {
                // Half the queries are buffered rows themselves (distance 0 to one of them).
                let x = q % 2 == 0 ? rng.floats(d, 0, 1) : rows[q * 7]
                let m = CheckMemory.floats(x)
                let got = try learner.predict(features: try m.view(.f32, [d])) ?? .nan
                let expected = bruteForceKNN(rows, targets, x, k: 5)
                c.expectClose(got, expected, absolute: 1e-4, relative: 1e-5, "query " + String(q))
            }
        }
    },

    Check("Cues/KNN", "k larger than the samples buffered: the mean of all of them; equal distances: the earlier sample wins") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 4 << 20)
            let learner = try CueLearner(configuration: cueConfig(featureCount: 2, neighbours: 5, capacity: 10, retrainInterval: 10), arena: arena)
            for (x, t) in [([0, 0], 3), ([1, 0], 6), ([0, 2], 12)] as [([Float], Float)] {
                let m = CheckMemory.floats(x)
                _ = try learner.tick(features: try m.view(.f32, [2]), target: t, trustedValid: true)
            }
            learner.retrainNow()
            let q = CheckMemory.floats([5, 5])
            c.expectClose(try learner.predict(features: try q.view(.f32, [2])) ?? .nan, 7, absolute: 1e-6, "mean of 3 when k = 5")

            let one = try CueLearner(configuration: cueConfig(featureCount: 1, neighbours: 1, capacity: 10, retrainInterval: 10), arena: arena)
            // Rows at -1 and +1 are both at distance 1 from 0: the first one buffered wins.
            for (x, t) in [(Float(1), Float(4)), (-1, 9), (3, 20)] {
                let m = CheckMemory.floats([x])
                _ = try one.tick(features: try m.view(.f32, [1]), target: t, trustedValid: true)
            }
            one.retrainNow()
            let z = CheckMemory.floats([0])
            c.expect(try one.predict(features: try z.view(.f32, [1])) == 4, "tie at distance 1: the earlier row's target (4)")
        }
    },

    Check("Cues/ROC", "rates, the auto-tuned threshold and the AUC equal a hand-computed ROC of 8 pairs") { c in
        checking(&c) { c throws(LichenError) in
            // Sorted: 0.1- 0.2- 0.35+ 0.4- 0.5- 0.7+ 0.8+ 0.9+ (P = 4, N = 4).
            let scores: [Float] = [0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.9, 0.5]
            let labels: [Float] = [0, 0, 1, 1, 1, 0, 1, 0]
            func run(_ body: (F32Elements, F32Elements) -> Void) throws(LichenError) {
                let s = CheckMemory.floats(scores), l = CheckMemory.floats(labels)
                body(try s.view(.f32, [8]).f32Elements("s"), try l.view(.f32, [8]).f32Elements("l"))
            }
            try run { s, l in
                // Cut between 0.2 and 0.35: TPR 4/4, FPR 2/4 (0.4 and 0.5 are false alarms).
                c.expect(CueROC.rates(scores: s, labels: l, count: 8, threshold: 0.275)
                         == CueRates(truePositiveRate: 1, falsePositiveRate: 0.5, positives: 4, negatives: 4), "rates at 0.275")
                c.expect(CueROC.rates(scores: s, labels: l, count: 8, threshold: 0.6)
                         == CueRates(truePositiveRate: 0.75, falsePositiveRate: 0, positives: 4, negatives: 4), "rates at 0.6")
                // A score equal to the threshold is not an obstacle (strictly greater).
                c.expect(CueROC.rates(scores: s, labels: l, count: 8, threshold: 0.7).truePositiveRate == 0.5, "0.7 at threshold 0.7 is clear")
            }
            // TPR >= 0.95 needs all four positives: highest such cut is the midpoint of 0.2 and 0.35.
            try run { s, l in c.expectClose(CueROC.tunedThreshold(scores: s, labels: l, count: 8, minimumTruePositiveRate: 0.95) ?? .nan, 0.275, absolute: 1e-6, "tuned at 0.95") }
            // TPR >= 0.75: cuts 0.375, 0.45, 0.6 keep 3 of 4; the highest is 0.6 (FPR 0).
            try run { s, l in c.expectClose(CueROC.tunedThreshold(scores: s, labels: l, count: 8, minimumTruePositiveRate: 0.75) ?? .nan, 0.6, absolute: 1e-6, "tuned at 0.75") }
            // TPR >= 0.5: cut 0.75 keeps 0.8 and 0.9.
            try run { s, l in c.expectClose(CueROC.tunedThreshold(scores: s, labels: l, count: 8, minimumTruePositiveRate: 0.5) ?? .nan, 0.75, absolute: 1e-6, "tuned at 0.5") }
            // AUC: negatives below each positive: 2 + 4 + 4 + 4 = 14 of 16 pairs.
            try run { s, l in c.expectClose(CueROC.area(scores: s, labels: l, count: 8), 0.875, absolute: 1e-6, "AUC") }
            // The sort moved the labels with the scores.
            try run { s, l in
                CueROC.sortAscending(s, l, count: 8)
                var ok = true
                let expected: [(Float, Float)] = [(0.1, 0), (0.2, 0), (0.35, 1), (0.4, 0), (0.5, 0), (0.7, 1), (0.8, 1), (0.9, 1)]
                for i in 0..<8 where s[i] != expected[i].0 || l[i] != expected[i].1 { ok = false }
                c.expect(ok, "sorted pairs")
            }
            // Ties and empty classes.
            let t = CheckMemory.floats([0.5, 0.5, 0.5]), tl = CheckMemory.floats([1, 0, 1])
            let ts = try t.view(.f32, [3]).f32Elements("t"), tls = try tl.view(.f32, [3]).f32Elements("tl")
            c.expectClose(CueROC.area(scores: ts, labels: tls, count: 3), 0.5, absolute: 1e-6, "all tied: AUC 1/2")
            c.expectClose(CueROC.tunedThreshold(scores: ts, labels: tls, count: 3, minimumTruePositiveRate: 0.95) ?? .nan, -0.5,
                          absolute: 1e-6, "all tied: one below the lowest score")
            let neg = CheckMemory.floats([0.1, 0.2]), negl = CheckMemory.floats([0, 0])
            let ns = try neg.view(.f32, [2]).f32Elements("n"), nl = try negl.view(.f32, [2]).f32Elements("nl")
            c.expect(CueROC.tunedThreshold(scores: ns, labels: nl, count: 2, minimumTruePositiveRate: 0.95) == nil, "no positive: no threshold")
            c.expect(CueROC.area(scores: ns, labels: nl, count: 2).isNaN, "no positive: AUC NaN")
            c.expect(CueROC.rates(scores: ns, labels: nl, count: 2, threshold: 0).truePositiveRate.isNaN, "no positive: TPR NaN")
        }
    },

    Check("Cues/Switch", "scripted: trusted drives until the gate opens on the third retrain (tau_est tuned to 10.5), then the complementary cue; danger overrides; invalid within the timeout keeps the complementary cue") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 4 << 20)
            let learner = try CueLearner(configuration: scriptConfig(policy: .gated), arena: arena)
            var t = 0
            // 16 samples: retrains after 8 (model 1, nothing to judge) and 16 (held-out judged, but
            // the training part has no estimate yet: no threshold, no gate).
            for _ in 0..<16 {
                let out = try scriptTick(learner, target: scriptCycle[t % 8], valid: true)
                c.expect(out.driver == .trusted && out.estimate == scriptCycle[t % 8], "tick " + String(t) + ": trusted drives")
                t += 1
            }
            c.expect(learner.retrainCount == 2 && !learner.qualified && !learner.evaluation.thresholdTuned
                     && learner.evaluation.heldOutCount == 8 && learner.evaluation.trainingCount == 0, "two retrains, not qualified")
            // The estimates are exact (k = 1, repeated features): held-out MSE 0.
            c.expect(learner.evaluation.heldOutMeanSquaredError == 0, "held-out MSE of exact estimates")
            for _ in 0..<8 {
                _ = try scriptTick(learner, target: scriptCycle[t % 8], valid: true)
                t += 1
            }
            let e = learner.evaluation
            c.expect(learner.retrainCount == 3 && learner.qualified, "qualified after the third retrain")
            c.expectClose(learner.estimateThreshold, 10.5, absolute: 1e-6, "tau_est between 9 (clear) and 12 (obstacle)")
            c.expect(e.trainingCount == 8 && e.heldOutCount == 8 && e.heldOut.truePositiveRate == 1 && e.heldOut.falsePositiveRate == 0
                     && e.heldOutArea == 1, "held-out TPR 1, FPR 0, AUC 1")
            // Clear: the complementary cue drives, no obstacle.
            var out = try scriptTick(learner, target: 5, valid: true)
            c.expect(out.driver == .complementary && out.estimate == 5 && !out.obstacle && out.confidence == 1, "clear: complementary drives")
            // An obstacle below the danger threshold: still the complementary cue, which says obstacle.
            out = try scriptTick(learner, target: 15, valid: true)
            c.expect(out.driver == .complementary && out.obstacle && !out.intervention, "obstacle: complementary decides")
            // Imminent danger (25 > 20): training wheels. The complementary estimate is still reported.
            out = try scriptTick(learner, target: 25, valid: true)
            c.expect(out.driver == .trusted && out.intervention && out.obstacle && out.estimate == 25
                     && learner.interventionCount == 1, "danger: the trusted cue overrides")
            // The trusted cue drops out: the qualified complementary cue drives on, before and after the timeout.
            for i in 0..<5 {
                out = try scriptTick(learner, target: 12, valid: false)
                c.expect(out.driver == .complementary && !out.learned && !out.trustedValid, "invalid tick " + String(i) + ": complementary")
            }
            // Recovery: valid again; danger overrides again.
            out = try scriptTick(learner, target: 22, valid: true)
            c.expect(out.driver == .trusted && out.intervention && learner.interventionCount == 2, "recovery: training wheels again")
        }
    },

    Check("Cues/Switch", "timeout: trusted-only holds the last target for `timeout` invalid ticks then stops; gated without a qualified model falls back to the complementary cue after the timeout") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 4 << 20)
            let stereo = try CueLearner(configuration: scriptConfig(policy: .trustedOnly), arena: arena)
            var out = try scriptTick(stereo, target: 0, valid: false)
            c.expect(out.driver == .none && out.estimate.isNaN, "never valid: nothing drives")
            _ = try scriptTick(stereo, target: 14, valid: true)
            for i in 1...3 {
                out = try scriptTick(stereo, target: 0, valid: false)
                c.expect(out.driver == .trusted && out.estimate == 14 && out.obstacle, "invalid tick " + String(i) + " within timeout 3: held target")
            }
            out = try scriptTick(stereo, target: 0, valid: false)
            c.expect(out.driver == .none && !out.obstacle, "4th invalid tick: lost, nothing drives")
            out = try scriptTick(stereo, target: 6, valid: true)
            c.expect(out.driver == .trusted && out.estimate == 6 && !out.obstacle, "recovery: trusted drives again")

            // Gated with a model that is not qualified (two retrains).
            let gated = try CueLearner(configuration: scriptConfig(policy: .gated), arena: arena)
            for t in 0..<16 { _ = try scriptTick(gated, target: scriptCycle[t % 8], valid: true) }
            c.expect(gated.modelCount > 0 && !gated.qualified, "a model, not qualified")
            for i in 1...3 {
                out = try scriptTick(gated, target: 0, valid: false)
                c.expect(out.driver == .trusted, "gated, invalid tick " + String(i) + ": trusted holds")
            }
            out = try scriptTick(gated, target: 0, valid: false)
            c.expect(out.driver == .complementary && !out.complementaryEstimate.isNaN, "gated, timed out: complementary alone")
            out = try scriptTick(gated, target: 25, valid: true)
            c.expect(out.driver == .trusted && !out.intervention, "gated, not qualified, recovery: trusted drives, no intervention")
        }
    },

    Check("Cues/Switch", "policies: training-wheels drives on any model and overrides on danger; complementary-only never overrides; learning off adds nothing") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 4 << 20)
            let wheels = try CueLearner(configuration: scriptConfig(policy: .trainingWheels), arena: arena)
            for t in 0..<7 { _ = try scriptTick(wheels, target: scriptCycle[t % 8], valid: true) }
            var out = try scriptTick(wheels, target: 6, valid: true)  // 8th sample: first retrain after the estimate
            c.expect(out.driver == .trusted && wheels.modelCount == 8, "no model during the tick that retrains")
            out = try scriptTick(wheels, target: 8, valid: true)
            c.expect(out.driver == .complementary && out.estimate == 8, "training wheels: a model drives at once")
            out = try scriptTick(wheels, target: 21, valid: true)
            c.expect(out.driver == .trusted && out.intervention, "training wheels: danger overrides")

            let mono = try CueLearner(configuration: scriptConfig(policy: .complementaryOnly), arena: arena)
            for t in 0..<8 { _ = try scriptTick(mono, target: scriptCycle[t % 8], valid: true) }
            out = try scriptTick(mono, target: 25, valid: true)
            c.expect(out.driver == .complementary && !out.intervention && mono.interventionCount == 0, "complementary-only: no override")

            var config = scriptConfig(policy: .gated)
            config.learning = false
            let frozen = try CueLearner(configuration: config, arena: arena)
            for t in 0..<20 {
                out = try scriptTick(frozen, target: scriptCycle[t % 8], valid: true)
                c.expect(!out.learned && out.driver == .trusted, "learning off: nothing learned")
            }
            c.expect(frozen.samplesAdded == 0 && frozen.modelCount == 0, "learning off: empty buffer")
        }
    },

    Check("Cues/Input", "bad input: wrong length, NaN features, NaN valid target, wrong type and bad configurations throw and change nothing; an invalid target may be NaN") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 4 << 20)
            let learner = try CueLearner(configuration: scriptConfig(policy: .gated), arena: arena)
            let three = CheckMemory.floats([1, 2, 3])
            c.expectThrows(.shapeMismatch(operand: "features", dimension: 0, expected: 2, got: 3), "3 features") { () throws(LichenError) in
                try learner.tick(features: try three.view(.f32, [3]), target: 1, trustedValid: true)
            }
            let nan = CheckMemory.floats([1, .nan])
            c.expectThrows(.nonFiniteValue(operand: "features", index: 1), "NaN feature") { () throws(LichenError) in
                try learner.tick(features: try nan.view(.f32, [2]), target: 1, trustedValid: true)
            }
            let ok = CheckMemory.floats([1, 0])
            c.expectThrows(.nonFiniteValue(operand: "target", index: 0), "NaN valid target") { () throws(LichenError) in
                try learner.tick(features: try ok.view(.f32, [2]), target: .nan, trustedValid: true)
            }
            // Finite but beyond ±1e6: the neighbours' mean or the network could overflow.
            let huge = CheckMemory.floats([1, -2e6])
            c.expectThrows(.outOfRange(name: "features[1]", value: floatText(-2e6), allowed: "-1e6...1e6"), "huge feature") { () throws(LichenError) in
                try learner.tick(features: try huge.view(.f32, [2]), target: 1, trustedValid: true)
            }
            c.expectThrows(.outOfRange(name: "target", value: floatText(3e38), allowed: "-1e6...1e6"), "huge valid target") { () throws(LichenError) in
                try learner.tick(features: try ok.view(.f32, [2]), target: 3e38, trustedValid: true)
            }
            let bytes = CheckMemory(byteCount: 8)
            c.expectThrows(.unsupportedElementType(operand: "features", type: .f16), "f16 features") { () throws(LichenError) in
                try learner.tick(features: try bytes.view(.f16, [2]), target: 1, trustedValid: true)
            }
            c.expect(learner.tickCount == 0 && learner.samplesAdded == 0, "throwing ticks changed nothing")
            let out = try learner.tick(features: try ok.view(.f32, [2]), target: .nan, trustedValid: false)
            c.expect(out.driver == .none && !out.learned, "an invalid NaN target is ignored")
            var bad = scriptConfig(policy: .gated)
            bad.neighbours = 0
            c.expectThrows(.invalidArgument(name: "CueConfiguration.neighbours", value: 0, reason: "must be in 1...64"), "k = 0") { () throws(LichenError) in
                try CueLearner(configuration: bad, arena: arena)
            }
            bad = scriptConfig(policy: .gated)
            bad.dangerThreshold = 5
            c.expectThrows(.invalidArgument(name: "CueConfiguration.dangerThreshold", value: 0, reason: "must be >= decisionThreshold"),
                           "danger below decision") { () throws(LichenError) in try CueLearner(configuration: bad, arena: arena) }
            bad = scriptConfig(policy: .gated)
            bad.decisionThreshold = .infinity
            c.expectThrows(.nonFiniteValue(operand: "CueConfiguration.decisionThreshold", index: 0), "infinite threshold") { () throws(LichenError) in
                try CueLearner(configuration: bad, arena: arena)
            }
            // A budget whose heap cannot hold the block: budgetExceeded, and nothing is kept.
            let small = try Arena(byteCount: 4 << 20)
            let before = small.stats.heapInUseBytes
            let big = cueConfig(featureCount: 21, capacity: 100_000, retrainInterval: 200)
            c.expect(try CueLearner.byteCount(big) > 16_000_000, "two 100000 x 21 f32 blocks")
            do throws(LichenError) {
                _ = try CueLearner(configuration: big, arena: small)
                c.expect(false, "a 100000-sample buffer fit a 4 MiB budget")
            } catch {
                if case .budgetExceeded = error { c.expect(true, "") } else { c.expect(false, "threw " + error.description) }
            }
            c.expect(small.stats.heapInUseBytes == before, "a failed construction keeps nothing")
            // The block goes back to the heap with the learner.
            do {
                let one = try CueLearner(configuration: scriptConfig(policy: .gated), arena: small)
                c.expect(small.stats.heapInUseBytes >= before + one.arenaBytes, "the learner's block is on the heap")
            }
            c.expect(small.stats.heapInUseBytes == before, "freed with the learner")
        }
    },
]

/// The script's targets: clear {5, 8, 6, 9}, obstacle {12, 15, 14, 13} (τ_gt 10, τ_safe 20).
let scriptCycle: [Float] = [5, 12, 8, 15, 6, 14, 9, 13]

func scriptConfig(policy: DrivePolicy) -> CueConfiguration {
    CueConfiguration(featureCount: 2, neighbours: 1, capacity: 64, retrainInterval: 8, smoothing: 1, decisionThreshold: 10,
                     dangerThreshold: 20, trustedTimeout: 3, policy: policy)
}

/// A tick whose features determine the target exactly ([target / 10, 1]).
func scriptTick(_ learner: CueLearner, target: Float, valid: Bool) throws(LichenError) -> CueOutput {
    let m = CheckMemory.floats([target / 10, 1])
    return try learner.tick(features: try m.view(.f32, [2]), target: target, trustedValid: valid)
}

func cueConfig(featureCount: Int, neighbours: Int = 5, capacity: Int, retrainInterval: Int) -> CueConfiguration {
    CueConfiguration(featureCount: featureCount, neighbours: neighbours, capacity: capacity, retrainInterval: retrainInterval,
                     decisionThreshold: 16, dangerThreshold: 32)
}

/// The reference: every squared distance in f64, sorted (ties by index), mean of the k first targets.
func bruteForceKNN(_ rows: [[Float]], _ targets: [Float], _ x: [Float], k: Int) -> Float {
    var pairs: [(Double, Int)] = []
    for (i, r) in rows.enumerated() {
        var s = 0.0
        for j in 0..<x.count { s += (Double(r[j]) - Double(x[j])) * (Double(r[j]) - Double(x[j])) }
        pairs.append((s, i))
    }
    pairs.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
    let n = min(k, rows.count)
    var sum = 0.0
    for i in 0..<n { sum += Double(targets[pairs[i].1]) }
    return Float(sum / Double(n))
}

/// Save and restore of the buffer.
let cueStateChecks: [Check] = [
    Check("Cues/State", "a restored learner ticks exactly as the saved one after a retrain; corrupt states throw and change nothing") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 8 << 20)
            var config = scriptConfig(policy: .gated)
            config.smoothing = 1
            let a = try CueLearner(configuration: config, arena: arena)
            for t in 0..<30 { _ = try scriptTick(a, target: scriptCycle[t % 8], valid: true) }
            let state = CheckMemory(byteCount: 4 * a.stateValueCount)
            let view = try state.view(.f32, [a.stateValueCount])
            try a.save(into: view)
            let b = try CueLearner(configuration: config, arena: arena)
            try b.restore(from: view)
            // a's model is its last retrain's copy; rebuild it from the whole buffer as restore does.
            a.retrainNow()
            c.expect(b.bufferedCount == a.bufferedCount && b.modelCount == a.bufferedCount && b.nextSlot == a.nextSlot,
                     "counters restored")
            c.expect(b.estimateThreshold == 10.5 && b.qualified, "tau_est and the gate restored (saved before a's extra retrain)")
            for q: Float in [4, 7, 11, 13.5, 16, 30] {
                let m = CheckMemory.floats([q / 10, 1])
                c.expect(try a.predict(features: try m.view(.f32, [2])) == (try b.predict(features: try m.view(.f32, [2]))),
                         "same estimate at " + show(q))
            }
            // Corruptions: each throws the named reason, and b stays as it was.
            let count = a.stateValueCount
            func corrupted(_ index: Int, _ value: Float) throws(LichenError) -> CheckMemory {
                let m = CheckMemory(byteCount: 4 * count)
                let v = try m.view(.f32, [count]).f32Elements("copy")
                try v.copy(from: try view.f32Elements("state"))
                v[index] = value
                return m
            }
            let cases: [(Int, Float, LichenError)] = [
                (0, 1, .malformedFile(offset: 0, reason: "not a cue learner state")),
                (1, 2, .malformedFile(offset: 4, reason: "unknown cue state version")),
                (2, 3, .malformedFile(offset: 8, reason: "another feature count")),
                (4, 65, .malformedFile(offset: 16, reason: "buffered count out of range")),
                (5, 3, .malformedFile(offset: 20, reason: "next slot inconsistent with the buffered count")),
                (6, 1.5, .malformedFile(offset: 24, reason: "samples since retrain out of range")),
                (7, .nan, .malformedFile(offset: 28, reason: "non-finite decision threshold")),
                (8, 0.5, .malformedFile(offset: 32, reason: "gate flag is not 0 or 1")),
                (10 + 3, .infinity, .malformedFile(offset: 4 * 13, reason: "feature not finite or beyond 1e6")),
                (10 + 4, 2e6, .malformedFile(offset: 4 * 14, reason: "feature not finite or beyond 1e6")),
                (10 + 64 * 2 + 5, .nan, .malformedFile(offset: 4 * (10 + 128 + 5), reason: "target not finite or beyond 1e6")),
                // Finite but huge: the neighbours' mean of two such targets would be infinite.
                (10 + 64 * 2 + 6, 3e38, .malformedFile(offset: 4 * (10 + 128 + 6), reason: "target not finite or beyond 1e6")),
                (10 + 64 * 3 + 1, -.infinity, .malformedFile(offset: 4 * (10 + 192 + 1), reason: "estimate infinite or beyond 1e6")),
            ]
            let before = b.bufferedCount
            for (index, value, error) in cases {
                let m = try corrupted(index, value)
                c.expectThrows(error, "value " + String(index) + " corrupted") { () throws(LichenError) in try b.restore(from: try m.view(.f32, [count])) }
            }
            let short = CheckMemory(byteCount: 4 * (count - 1))
            c.expectThrows(.shapeMismatch(operand: "state", dimension: 0, expected: count, got: count - 1), "short state") { () throws(LichenError) in
                try b.restore(from: try short.view(.f32, [count - 1]))
            }
            c.expect(b.bufferedCount == before && b.estimateThreshold == 10.5, "failed restores changed nothing")
        }
    },
]

/// The network regressor.
let cueNetworkChecks: [Check] = [
    Check("Cues/Network", "the network learner: its estimate is the graph's output x tau_gt; one learned sample is one SGD step of MSE on target / tau_gt (checked against the step's own loss falling); it learns a linear target and opens the gate on the script") { c in
        checking(&c) { c throws(LichenError) in
            let arena = try Arena(byteCount: 16 << 20)
            var config = scriptConfig(policy: .gated)
            config.regressor = .network(hidden: 16, learningRate: 0.05, seed: 3)
            let learner = try CueLearner(configuration: config, arena: arena)
            guard let net = learner.network else {
                c.expect(false, "no network")
                return
            }
            // Before the first retrain there is no estimate, but the network already learns.
            let x = CheckMemory.floats([1.2, 1])
            let xe = try x.view(.f32, [2]).f32Elements("x")
            let before = try net.predict(xe)
            let out = try learner.tick(features: try x.view(.f32, [2]), target: 12, trustedValid: true)
            c.expect(out.complementaryEstimate.isNaN && net.stepCount == 1, "no estimate yet; one SGD step taken")
            let after = try net.predict(xe)
            c.expect(abs(after - 12) < abs(before - 12), "one step moved the estimate towards the target: " + show(before) + " -> " + show(after))
            // The graph's output times tau_gt (10).
            let direct = try net.graph.forward(input: try CheckMemory.floats([1.2, 1]).view(.f32, [1, 2])).f32Elements("o")[0]
            c.expectClose(after, direct * 10, absolute: 1e-5, "predict = output x 10")
            // The script: after enough passes the network separates clear from obstacle and the gate opens.
            for t in 1..<400 { _ = try scriptTick(learner, target: scriptCycle[t % 8], valid: true) }
            c.expect(learner.qualified, "the network qualifies on the script (TPR " + show(learner.evaluation.heldOut.truePositiveRate)
                     + ", FPR " + show(learner.evaluation.heldOut.falsePositiveRate) + ")")
            c.expect(learner.evaluation.heldOutMeanSquaredError < 2, "held-out MSE " + show(learner.evaluation.heldOutMeanSquaredError))
            let o = try scriptTick(learner, target: 5, valid: true)
            c.expect(o.driver == .complementary && !o.obstacle && o.confidence == 1, "clear: the network drives, confidence 1")
            var bad = config
            bad.regressor = .network(hidden: 0, learningRate: 0.05, seed: 3)
            c.expectThrows(.invalidArgument(name: "CueNetwork.hidden", value: 0, reason: "must be in 1...1024"), "hidden 0") { () throws(LichenError) in
                try CueLearner(configuration: bad, arena: arena)
            }
        }
    },
]
