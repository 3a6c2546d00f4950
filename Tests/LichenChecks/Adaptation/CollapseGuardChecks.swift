import Lichen

// Checks of Sources/Lichen/Adaptation/CollapseGuard.swift on synthetic prediction sequences.
// The reference keeps the predictions since the last reset in a plain list and evaluates the
// defining condition from scratch after each one.

/// The defining condition over the last `w` of `classes` predicted classes in `list`.
private func referenceCollapse(_ list: [Int], w: Int, classes: Int, bound: Double) -> Bool {
    guard list.count >= w else { return false }
    var n = [Int](repeating: 0, count: classes)
    for k in list[(list.count - w)...] { n[k] += 1 }
    let s = n.reduce(0) { $0 + $1 * $1 }
    return Double(w) * Double(w) < bound * Double(s)
}

/// A sequence that starts spread over the classes and drifts onto class 0 in phases.
private func driftingSequence(_ seed: UInt64, count: Int, classes: Int) -> [Int] {
    var rng = SplitMix64(seed: seed)
    var out: [Int] = []
    for i in 0..<count {
        // The share of class 0 rises and falls in waves of 150 predictions.
        let phase = Float(i % 150) / 150
        let u = rng.floats(1, 0, 1)[0]
        let k = Int(rng.floats(1, 0, Float(classes))[0])
        out.append(u < phase ? 0 : min(k, classes - 1))
    }
    return out
}

private func logitsRow(_ k: Int, classes: Int) -> [Float] {
    var z = [Float](repeating: -1, count: classes)
    z[k] = 2
    return z
}

let collapseGuardChecks: [Check] = [
    Check("Adaptation/CollapseGuard", "W 4, 3 classes, bound 2: predictions 0,1,2,0,0,0 collapse at the sixth (16 < 2·10), not before (16 < 2·6 fails)") { c in
        do throws(LichenError) {
            let arena = try Arena(byteCount: 8 << 20)
            let g = try CollapseGuard(classes: 3, historyLength: 4, minimumEffectiveClasses: 2, arena: arena)
            let seq = [0, 1, 2, 0, 0, 0]
            for (i, k) in seq.enumerated() {
                let v = try g.record(k, resetting: nil)
                c.expect(v == (i == 5 ? .collapseReset : .none), "prediction \(i + 1): verdict \(v)")
            }
            c.expect(g.collapseResetCount == 1 && g.lastResetAt == 6, "one reset at prediction 6, got \(g.collapseResetCount) at \(g.lastResetAt)")
            c.expectClose(Float(g.lastEffectiveClasses), 1.6, absolute: 1e-6, "effective classes 16/10")
        } catch {
            c.fail("hand sequence: " + error.description)
        }
    },

    Check("Adaptation/CollapseGuard", "on drifting sequences the guard resets exactly when the defining condition holds, with periodic resets") { c in
        do throws(LichenError) {
            var totalCollapses = 0, totalPeriodic = 0
            for (seed, w, classes, bound, every) in [(UInt64(61), 20, 10, 3.0, 0), (62, 32, 10, 2.5, 100), (63, 7, 4, 1.9, 0), (64, 50, 10, 4.0, 120), (66, 24, 10, 3.0, 10)] {
                let arena = try Arena(byteCount: 8 << 20)
                let g = try CollapseGuard(classes: classes, historyLength: w, minimumEffectiveClasses: bound, resetEvery: every, arena: arena)
                let seq = driftingSequence(seed, count: 900, classes: classes)
                var list: [Int] = []
                var collapses = 0, periodic = 0, mismatches = 0
                for (i, k) in seq.enumerated() {
                    let mem = CheckMemory.floats(logitsRow(k, classes: classes))
                    let v = try g.observe(logits: try mem.view(.f32, [1, classes]), resetting: nil)
                    withExtendedLifetime(mem) {}
                    list.append(k)
                    var expected = CollapseGuard.Verdict.none
                    if referenceCollapse(list, w: w, classes: classes, bound: bound) {
                        expected = .collapseReset
                    } else if every > 0 && list.count >= every {
                        expected = .periodicReset
                    }
                    if v != expected {
                        mismatches += 1
                        if mismatches < 4 { c.fail("seed \(seed) prediction \(i + 1): got \(v), expected \(expected)") }
                    }
                    if expected != .none {
                        list = []
                        if expected == .collapseReset { collapses += 1 } else { periodic += 1 }
                    }
                }
                c.expect(mismatches == 0, "seed \(seed): \(mismatches) verdicts differ from the reference")
                totalCollapses += collapses
                totalPeriodic += periodic
                c.expect(g.collapseResetCount == collapses && g.periodicResetCount == periodic,
                         "seed \(seed): counts \(g.collapseResetCount)/\(g.periodicResetCount), expected \(collapses)/\(periodic)")
            }
            c.expect(totalCollapses > 0 && totalPeriodic > 0, "the sequences exercise both kinds of reset: \(totalCollapses), \(totalPeriodic)")
        } catch {
            c.fail("drifting: " + error.description)
        }
    },

    Check("Adaptation/CollapseGuard", "a collapse reset restores a Tent session's trainables to their initial values") { c in
        do throws(LichenError) {
            let arena = try Arena(byteCount: 8 << 20)
            let st = ParameterStore(arena: arena)
            var rng = SplitMix64(seed: 65)
            try st.add(name: "l1.weight", role: .weight, shape: Shape(3, 3), values: rng.floats(9), trainable: false)
            try st.add(name: "bn.weight", role: .normWeight, shape: Shape(3), values: rng.floats(3, 0.5, 1.5), trainable: false)
            try st.add(name: "bn.bias", role: .normBias, shape: Shape(3), values: rng.floats(3), trainable: false)
            try st.add(name: "bn.running_mean", role: .runningMean, shape: Shape(3), values: [0, 0, 0], trainable: false)
            try st.add(name: "bn.running_var", role: .runningVariance, shape: Shape(3), values: [1, 1, 1], trainable: false)
            var spec = graphSpec([3], [
                graphLayer(.linear, "l1", [-1]) { $0.outputs = 3; $0.hasBias = false },
                graphLayer(.batchNorm, "bn", [0]),
            ])
            spec.classCount = 3
            let s = try AdaptationSession(method: .tent, spec: spec, store: st, batchSize: 4, arena: arena,
                                          optimizer: .sgd(learningRate: 0.5, momentum: 0, nesterov: false))
            let initial = try st.parameter(named: "bn.weight").value.toArray() + st.parameter(named: "bn.bias").value.toArray()
            let g = try CollapseGuard(classes: 3, historyLength: 4, minimumEffectiveClasses: 1.5, arena: arena)
            let mem = CheckMemory.floats(rng.floats(12, -2, 2))
            let z = try s.step(batch: try mem.view(.f32, [4, 3]))
            withExtendedLifetime(mem) {}
            _ = z
            let moved = try st.parameter(named: "bn.weight").value.toArray() + st.parameter(named: "bn.bias").value.toArray()
            c.expect(moved != initial, "the Tent step moved gamma or beta")
            let same = CheckMemory.floats(logitsRow(1, classes: 3) + logitsRow(1, classes: 3) + logitsRow(1, classes: 3) + logitsRow(1, classes: 3))
            let v = try g.observe(logits: try same.view(.f32, [4, 3]), resetting: s)
            withExtendedLifetime(same) {}
            c.expect(v == .collapseReset, "four predictions of class 1: collapse (16 < 1.5 · 16), got \(v)")
            let after = try st.parameter(named: "bn.weight").value.toArray() + st.parameter(named: "bn.bias").value.toArray()
            c.expect(after.map { $0.bitPattern } == initial.map { $0.bitPattern }, "gamma, beta back to their initial values")
            c.expect(s.stepCount == 0 && g.resetCount == 1, "session step count 0 and one reset")
        } catch {
            c.fail("session reset: " + error.description)
        }
    },

    Check("Adaptation/CollapseGuard", "bad settings and bad logits are refused without changing the history") { c in
        do throws(LichenError) {
            let arena = try Arena(byteCount: 8 << 20)
            c.expectThrows(.invalidArgument(name: "classes", value: 1, reason: "must be at least 2"), "1 class") { () throws(LichenError) in
                try CollapseGuard(classes: 1, historyLength: 4, minimumEffectiveClasses: 1, arena: arena)
            }
            c.expectThrows(.invalidArgument(name: "historyLength", value: 0, reason: "must be in 1...2^24"), "W 0") { () throws(LichenError) in
                try CollapseGuard(classes: 3, historyLength: 0, minimumEffectiveClasses: 1, arena: arena)
            }
            c.expectThrows(.invalidArgument(name: "minimumEffectiveClasses", value: 4, reason: "must be in 0...classes"), "bound 4 of 3") {
                () throws(LichenError) in try CollapseGuard(classes: 3, historyLength: 4, minimumEffectiveClasses: 4, arena: arena)
            }
            let g = try CollapseGuard(classes: 3, historyLength: 2, minimumEffectiveClasses: 1.5, arena: arena)
            _ = try g.record(2, resetting: nil)
            c.expectThrows(.invalidArgument(name: "class", value: 3, reason: "outside 0..<classes"), "class 3") { () throws(LichenError) in
                try g.record(3, resetting: nil)
            }
            let wide = CheckMemory.floats([0, 1, 2, 3])
            c.expectThrows(.shapeMismatch(operand: "logits", dimension: 1, expected: 3, got: 4), "4 logits") { () throws(LichenError) in
                try g.observe(logits: try wide.view(.f32, [1, 4]), resetting: nil)
            }
            withExtendedLifetime(wide) {}
            c.expect(g.observedCount == 1, "one prediction recorded, got \(g.observedCount)")
            c.expect(try g.record(2, resetting: nil) == .collapseReset, "the second 2 completes a collapsed history of W = 2")
        } catch {
            c.fail("bad input: " + error.description)
        }
    },
]
