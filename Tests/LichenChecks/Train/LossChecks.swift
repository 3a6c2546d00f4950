import Lichen

/// Loss value against an independent Double reference, and d loss / d logits against
/// (1) central differences of the Double reference (h = 1e-5; tolerance 2e-6 absolute + 1e-4
/// relative) and (2) central differences of Lichen's own f32 loss (h = 1e-2; tolerance 1e-3).
func expectGradient(
    _ c: inout CheckContext, _ what: String, _ x: [Float], shape: [Int],
    _ lichen: (TensorView, TensorView) throws(LichenError) -> Float, reference: ([Double]) -> Double
) {
    checking(&c) { c throws(LichenError) in
        let xm = CheckMemory.floats(x), gm = CheckMemory(byteCount: x.count * 4), scratch = CheckMemory(byteCount: x.count * 4)
        let loss = try lichen(try xm.view(.f32, shape), try gm.view(.f32, shape))
        let xd = x.map { Double($0) }
        let ref = reference(xd)
        c.expectClose(loss, Float(ref), absolute: 1e-6, relative: 1e-5, what + " loss vs Double reference")
        let fd = centralDifferences(xd, h: 1e-5, reference)
        for i in 0..<x.count {
            c.expectClose(gm.floats[i], Float(fd[i]), absolute: 2e-6, relative: 1e-4, what + " gradient \(i) vs Double central difference")
        }
        let h: Float = 1e-2
        for i in 0..<x.count {
            let saved = xm.floats[i]
            xm.floats[i] = saved + h
            let up = try lichen(try xm.view(.f32, shape), try scratch.view(.f32, shape))
            xm.floats[i] = saved - h
            let down = try lichen(try xm.view(.f32, shape), try scratch.view(.f32, shape))
            xm.floats[i] = saved
            c.expectClose(gm.floats[i], (up - down) / (2 * h), absolute: 1e-3, what + " gradient \(i) vs f32 central difference")
        }
    }
}

func refCrossEntropy(_ z: [Double], labels: [Int], classes: Int) -> Double {
    let lp = refLogSoftmax(z, classes: classes)
    var s = 0.0
    for (b, y) in labels.enumerated() { s -= lp[b * classes + y] }
    return s / Double(labels.count)
}

func refSoftCrossEntropy(_ z: [Double], q: [Double], classes: Int) -> Double {
    let lp = refLogSoftmax(z, classes: classes)
    var s = 0.0
    for i in 0..<z.count { s -= q[i] * lp[i] }
    return s / Double(z.count / classes)
}

func refSymmetricCrossEntropy(_ a: [Double], _ t: [Double], classes: Int, alpha: Double) -> Double {
    let lp = refLogSoftmax(a, classes: classes), lq = refLogSoftmax(t, classes: classes)
    var s = 0.0
    for i in 0..<a.count {
        s += -alpha * refExp(lq[i]) * lp[i] - (1 - alpha) * refExp(lp[i]) * lq[i]
    }
    return s / Double(a.count / classes)
}

func refEntropy(_ z: [Double], classes: Int) -> Double {
    let lp = refLogSoftmax(z, classes: classes)
    var s = 0.0
    for i in 0..<z.count { s -= refExp(lp[i]) * lp[i] }
    return s / Double(z.count / classes)
}

let lossChecks: [Check] = [
    Check("Train/CrossEntropyLoss", "loss and gradient match a Double reference and central differences") { c in
        guard let arena = checkArena(&c) else { return }
        var rng = SplitMix64(seed: 11)
        let batch = 3, classes = 5
        let labels = [4, 0, 2]
        let y = CheckMemory.floats(labels.map { Float($0) })
        checking(&c) { c throws(LichenError) in
            let loss = try CrossEntropyLoss(maximumBatch: 4, classes: classes, arena: arena)
            for scale: Float in [0.5, 3] {
                let x = rng.floats(batch * classes, -scale, scale)
                expectGradient(&c, "cross-entropy", x, shape: [batch, classes], { l, g throws(LichenError) in
                    try loss.compute(logits: l, labels: try y.view(.f32, [batch]), gradient: g)
                }, reference: { refCrossEntropy($0, labels: labels, classes: classes) })
            }
        }
    },
    Check("Train/SoftCrossEntropyLoss", "against target rows and against teacher logits: Double reference and central differences") { c in
        guard let arena = checkArena(&c) else { return }
        var rng = SplitMix64(seed: 12)
        let batch = 3, classes = 5
        checking(&c) { c throws(LichenError) in
            let loss = try SoftCrossEntropyLoss(maximumBatch: 3, classes: classes, arena: arena)
            // Targets: rows summing to 1, and one row that does not (gradient p·Σq − q).
            var q = rng.floats(batch * classes, 0, 1)
            for b in 0..<2 {
                var s: Float = 0
                for j in 0..<classes { s += q[b * classes + j] }
                for j in 0..<classes { q[b * classes + j] /= s }
            }
            let qm = CheckMemory.floats(q)
            let x = rng.floats(batch * classes, -2, 2)
            expectGradient(&c, "soft cross-entropy (targets)", x, shape: [batch, classes], { l, g throws(LichenError) in
                try loss.compute(logits: l, targets: try qm.view(.f32, [batch, classes]), gradient: g)
            }, reference: { refSoftCrossEntropy($0, q: q.map { Double($0) }, classes: classes) })
            let t = rng.floats(batch * classes, -2, 2)
            let tm = CheckMemory.floats(t)
            let td = refLogSoftmax(t.map { Double($0) }, classes: classes).map { refExp($0) }
            expectGradient(&c, "soft cross-entropy (teacher)", x, shape: [batch, classes], { l, g throws(LichenError) in
                try loss.compute(logits: l, teacherLogits: try tm.view(.f32, [batch, classes]), gradient: g)
            }, reference: { refSoftCrossEntropy($0, q: td, classes: classes) })
        }
    },
    Check("Train/SymmetricCrossEntropyLoss", "student gradient (teacher constant) matches a Double reference, alpha 0.5 and 0.3") { c in
        guard let arena = checkArena(&c) else { return }
        var rng = SplitMix64(seed: 13)
        let batch = 3, classes = 5
        checking(&c) { c throws(LichenError) in
            for alpha: Float in [0.5, 0.3] {
                let loss = try SymmetricCrossEntropyLoss(maximumBatch: 3, classes: classes, alpha: alpha, arena: arena)
                let x = rng.floats(batch * classes, -2, 2), t = rng.floats(batch * classes, -2, 2)
                let tm = CheckMemory.floats(t)
                let td = t.map { Double($0) }
                expectGradient(&c, "symmetric cross-entropy", x, shape: [batch, classes], { l, g throws(LichenError) in
                    try loss.compute(logits: l, teacherLogits: try tm.view(.f32, [batch, classes]), gradient: g)
                }, reference: { refSymmetricCrossEntropy($0, td, classes: classes, alpha: Double(alpha)) })
                // tta.md §4.4 closed form at alpha 0.5: ½(p − q) + ½ p ⊙ (⟨p, log q⟩ − log q), over B.
                if alpha == 0.5 {
                    let xm = CheckMemory.floats(x), gm = CheckMemory(byteCount: x.count * 4)
                    _ = try loss.compute(logits: try xm.view(.f32, [batch, classes]), teacherLogits: try tm.view(.f32, [batch, classes]),
                                         gradient: try gm.view(.f32, [batch, classes]))
                    let lp = refLogSoftmax(x.map { Double($0) }, classes: classes), lq = refLogSoftmax(td, classes: classes)
                    for b in 0..<batch {
                        var dot = 0.0
                        for j in 0..<classes { dot += refExp(lp[b * classes + j]) * lq[b * classes + j] }
                        for j in 0..<classes {
                            let i = b * classes + j, p = refExp(lp[i]), q = refExp(lq[i])
                            let expected = (0.5 * (p - q) + 0.5 * p * (dot - lq[i])) / Double(batch)
                            c.expectClose(gm.floats[i], Float(expected), absolute: 1e-6, "SCE closed form \(i)")
                        }
                    }
                }
            }
        }
    },
    Check("Train/EntropyLoss", "Tent's entropy: Double reference, central differences, −p(log p + H)/B") { c in
        guard let arena = checkArena(&c) else { return }
        var rng = SplitMix64(seed: 14)
        let batch = 3, classes = 5
        checking(&c) { c throws(LichenError) in
            let loss = try EntropyLoss(maximumBatch: 3, classes: classes, arena: arena)
            for scale: Float in [0.5, 4] {
                let x = rng.floats(batch * classes, -scale, scale)
                expectGradient(&c, "entropy", x, shape: [batch, classes], { l, g throws(LichenError) in
                    try loss.compute(logits: l, gradient: g)
                }, reference: { refEntropy($0, classes: classes) })
            }
            // Uniform logits: H = log 5 per row, gradient 0.
            let u = CheckMemory.floats([Float](repeating: 7, count: 10)), g = CheckMemory(byteCount: 40)
            let h = try loss.compute(logits: try u.view(.f32, [2, 5]), gradient: try g.view(.f32, [2, 5]))
            c.expectClose(h, Float(refLog(5)), absolute: 1e-6, "entropy of uniform rows")
            for i in 0..<10 { c.expectClose(g.floats[i], 0, absolute: 1e-7, "gradient at the uniform point \(i)") }
        }
    },
    Check("Train/MeanSquaredErrorLoss", "mean over all elements, gradient 2(x − t)/N, central differences") { c in
        var rng = SplitMix64(seed: 15)
        let x = rng.floats(12, -2, 2), t = rng.floats(12, -2, 2)
        let tm = CheckMemory.floats(t)
        let loss = MeanSquaredErrorLoss()
        expectGradient(&c, "mse", x, shape: [3, 4], { p, g throws(LichenError) in
            try loss.compute(predictions: p, targets: try tm.view(.f32, [3, 4]), gradient: g)
        }, reference: { xs in
            var s = 0.0
            for i in 0..<12 { s += (xs[i] - Double(t[i])) * (xs[i] - Double(t[i])) }
            return s / 12
        })
    },
    Check("Train/Losses", "large logits stay finite (log-softmax); a batch smaller than the maximum works") { c in
        guard let arena = checkArena(&c) else { return }
        checking(&c) { c throws(LichenError) in
            let classes = 4
            let x: [Float] = [1000, 990, -1000, 0, -500, -480, -520, -470]
            let xm = CheckMemory.floats(x), gm = CheckMemory(byteCount: 32), ym = CheckMemory.floats([2, 3])
            let ce = try CrossEntropyLoss(maximumBatch: 8, classes: classes, arena: arena)
            let l = try ce.compute(logits: try xm.view(.f32, [2, 4]), labels: try ym.view(.f32, [2]), gradient: try gm.view(.f32, [2, 4]))
            let ref = refCrossEntropy(x.map { Double($0) }, labels: [2, 3], classes: classes)
            c.expectClose(l, Float(ref), absolute: 1e-3, relative: 1e-6, "cross-entropy with logits near 1000")
            var finite = true
            for i in 0..<8 where !gm.floats[i].isFinite { finite = false }
            c.expect(finite, "gradient is finite for large logits")
            let en = try EntropyLoss(maximumBatch: 8, classes: classes, arena: arena)
            let h = try en.compute(logits: try xm.view(.f32, [2, 4]), gradient: try gm.view(.f32, [2, 4]))
            c.expectClose(h, Float(refEntropy(x.map { Double($0) }, classes: classes)), absolute: 1e-6, "entropy with logits near 1000")
        }
    },
    Check("Train/Losses", "bad input throws naming what and where: labels, NaN, shapes, batch bound") { c in
        guard let arena = checkArena(&c) else { return }
        guard let ce = c.expectNoThrow("make losses", { () throws(LichenError) in try CrossEntropyLoss(maximumBatch: 2, classes: 3, arena: arena) }),
              let sce = c.expectNoThrow("make SCE", { () throws(LichenError) in try SymmetricCrossEntropyLoss(maximumBatch: 2, classes: 3, arena: arena) }),
              let soft = c.expectNoThrow("make soft CE", { () throws(LichenError) in try SoftCrossEntropyLoss(maximumBatch: 2, classes: 3, arena: arena) })
        else { return }
        let x = CheckMemory.floats([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), g = CheckMemory(byteCount: 24)
        let big = CheckMemory(byteCount: 48)
        c.expectThrows(.invalidArgument(name: "labels", value: 1, reason: "label of this row is not a class index in 0..<classes"), "label 3 of 3 classes") {
            () throws(LichenError) in
            try ce.compute(logits: try x.view(.f32, [2, 3]), labels: try CheckMemory.floats([0, 3]).view(.f32, [2]), gradient: try g.view(.f32, [2, 3]))
        }
        c.expectThrows(.invalidArgument(name: "labels", value: 0, reason: "label of this row is not a class index in 0..<classes"), "label 1.5") {
            () throws(LichenError) in
            try ce.compute(logits: try x.view(.f32, [2, 3]), labels: try CheckMemory.floats([1.5, 0]).view(.f32, [2]), gradient: try g.view(.f32, [2, 3]))
        }
        c.expectThrows(.invalidArgument(name: "labels", value: 1, reason: "label of this row is not a class index in 0..<classes"), "label -1") {
            () throws(LichenError) in
            try ce.compute(logits: try x.view(.f32, [2, 3]), labels: try CheckMemory.floats([0, -1]).view(.f32, [2]), gradient: try g.view(.f32, [2, 3]))
        }
        c.expectThrows(.shapeMismatch(operand: "labels", dimension: 0, expected: 2, got: 3), "three labels for two rows") {
            () throws(LichenError) in
            try ce.compute(logits: try x.view(.f32, [2, 3]), labels: try CheckMemory.floats([0, 1, 2]).view(.f32, [3]), gradient: try g.view(.f32, [2, 3]))
        }
        let nan = CheckMemory.floats([0, 0, 0, 0, .nan, 0])
        c.expectThrows(.invalidArgument(name: "logits", value: 4, reason: "value at this flat index is NaN or infinite"), "NaN logit") {
            () throws(LichenError) in
            try ce.compute(logits: try nan.view(.f32, [2, 3]), labels: try CheckMemory.floats([0, 1]).view(.f32, [2]), gradient: try g.view(.f32, [2, 3]))
        }
        c.expectThrows(.invalidArgument(name: "teacherLogits", value: 4, reason: "value at this flat index is NaN or infinite"), "NaN teacher logit") {
            () throws(LichenError) in
            try sce.compute(logits: try x.view(.f32, [2, 3]), teacherLogits: try nan.view(.f32, [2, 3]), gradient: try g.view(.f32, [2, 3]))
        }
        c.expectThrows(.shapeMismatch(operand: "gradient", dimension: 1, expected: 3, got: 2), "gradient [3, 2]") {
            () throws(LichenError) in
            try sce.compute(logits: try x.view(.f32, [2, 3]), teacherLogits: try x.view(.f32, [2, 3]), gradient: try g.view(.f32, [3, 2]))
        }
        c.expectThrows(.shapeMismatch(operand: "logits", dimension: 1, expected: 3, got: 2), "logits with 2 classes") {
            () throws(LichenError) in
            try sce.compute(logits: try x.view(.f32, [3, 2]), teacherLogits: try x.view(.f32, [2, 3]), gradient: try g.view(.f32, [2, 3]))
        }
        c.expectThrows(.shapeMismatch(operand: "logits", dimension: 0, expected: 2, got: 4), "batch above the maximum") {
            () throws(LichenError) in
            try sce.compute(logits: try big.view(.f32, [4, 3]), teacherLogits: try big.view(.f32, [4, 3]), gradient: try big.view(.f32, [4, 3]))
        }
        c.expectThrows(.invalidArgument(name: "targets", value: 2, reason: "value at this flat index is negative, NaN or infinite"), "negative target") {
            () throws(LichenError) in
            try soft.compute(logits: try x.view(.f32, [2, 3]), targets: try CheckMemory.floats([0.5, 0.5, -0.1, 0, 0, 1]).view(.f32, [2, 3]),
                             gradient: try g.view(.f32, [2, 3]))
        }
        c.expectThrows(.shapeMismatch(operand: "targets", dimension: 0, expected: 2, got: 3), "mse shapes differ") {
            () throws(LichenError) in
            try MeanSquaredErrorLoss().compute(predictions: try x.view(.f32, [2, 3]), targets: try x.view(.f32, [3, 2]), gradient: try g.view(.f32, [2, 3]))
        }
        // The gradient buffer is untouched by a call that throws.
        checking(&c) { c throws(LichenError) in
            let marked = CheckMemory.floats([9, 9, 9, 9, 9, 9])
            let threw: Bool
            do throws(LichenError) {
                _ = try ce.compute(logits: try nan.view(.f32, [2, 3]), labels: try CheckMemory.floats([0, 1]).view(.f32, [2]),
                                   gradient: try marked.view(.f32, [2, 3]))
                threw = false
            } catch {
                threw = true
            }
            c.expect(threw, "NaN logits throw")
            var untouched = true
            for i in 0..<6 where marked.floats[i] != 9 { untouched = false }
            c.expect(untouched, "a throwing loss leaves the gradient as it was")
        }
    },
]
