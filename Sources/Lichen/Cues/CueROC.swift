/// The obstacle decision's ROC over (score, label) pairs, allocation-free, for the cue learner's
/// auto-tuned threshold and held-out gate (research/methods.md section 3.2).
///
/// A pair is positive (an obstacle by the trusted cue) when its label is non-zero; the
/// complementary cue says "obstacle" when its score exceeds the threshold. The rates are the
/// standard ROC, conditioned on the trusted cue: TPR = TP / (TP + FN), FPR = FP / (FP + TN).
/// (The authors' code conditions on the trusted cue's *clear* class instead; see README.md.)
public enum CueROC {
    /// The rates of the decision `score > threshold` over the first `count` pairs.
    /// A rate whose class is empty is NaN.
    /// - Note: Allocates nothing.
    public static func rates(scores: F32Elements, labels: F32Elements, count: Int, threshold: Float) -> CueRates {
        var tp = 0, fp = 0, p = 0, n = 0
        for i in 0..<count {
            let obstacle = scores[i] > threshold
            if labels[i] != 0 {
                p += 1
                if obstacle { tp += 1 }
            } else {
                n += 1
                if obstacle { fp += 1 }
            }
        }
        return CueRates(
            truePositiveRate: p > 0 ? Float(tp) / Float(p) : .nan,
            falsePositiveRate: n > 0 ? Float(fp) / Float(n) : .nan,
            positives: p, negatives: n)
    }

    /// The auto-tuned threshold: among the thresholds that separate the sorted scores, the one
    /// with the lowest FPR whose TPR is at least `minimumTruePositiveRate`. Both rates fall as
    /// the threshold rises, so that is the highest such threshold.
    ///
    /// Candidate thresholds are one below the lowest score (everything positive) and the
    /// midpoints between consecutive distinct scores. Nil when there is no positive pair.
    ///
    /// - Note: Sorts the first `count` pairs in place by score (labels follow); allocates nothing.
    public static func tunedThreshold(
        scores: F32Elements, labels: F32Elements, count: Int, minimumTruePositiveRate: Float
    ) -> Float? {
        guard count > 0 else { return nil }
        sortAscending(scores, labels, count: count)
        var positives = 0
        for i in 0..<count where labels[i] != 0 { positives += 1 }
        guard positives > 0 else { return nil }
        // Walk the cut upward; `above` = positives at indices >= cut.
        var best = scores[0] - 1
        var above = positives
        var cut = 0
        while cut < count {
            // Pairs [cut, end) share one score; the next candidate lies past all of them.
            var end = cut
            var groupPositives = 0
            while end < count && scores[end] == scores[cut] {
                if labels[end] != 0 { groupPositives += 1 }
                end += 1
            }
            above -= groupPositives
            guard end < count else { break }
            if Float(above) / Float(positives) >= minimumTruePositiveRate {
                best = scores[cut] + (scores[end] - scores[cut]) / 2
            } else {
                break
            }
            cut = end
        }
        return best
    }

    /// The area under the ROC curve (the Mann-Whitney statistic; a tie between a positive and a
    /// negative score counts one half). NaN when either class is empty.
    ///
    /// - Note: Sorts the first `count` pairs in place by score; allocates nothing.
    public static func area(scores: F32Elements, labels: F32Elements, count: Int) -> Float {
        sortAscending(scores, labels, count: count)
        var negativesBelow = 0.0, sum = 0.0
        var positives = 0, negatives = 0
        var i = 0
        while i < count {
            var end = i, p = 0, n = 0
            while end < count && scores[end] == scores[i] {
                if labels[end] != 0 { p += 1 } else { n += 1 }
                end += 1
            }
            sum += Double(p) * (negativesBelow + Double(n) / 2)
            negativesBelow += Double(n)
            positives += p
            negatives += n
            i = end
        }
        guard positives > 0 && negatives > 0 else { return .nan }
        return Float(sum / (Double(positives) * Double(negatives)))
    }

    /// Heap sort of the first `count` keys ascending, moving `payload` along (not stable).
    /// - Note: Allocates nothing; no recursion.
    public static func sortAscending(_ keys: F32Elements, _ payload: F32Elements, count n: Int) {
        heapSort(count: n, less: { keys[$0] < keys[$1] }, swap: { a, b in
            let k = keys[a]
            keys[a] = keys[b]
            keys[b] = k
            let v = payload[a]
            payload[a] = payload[b]
            payload[b] = v
        })
    }
}

/// TPR and FPR of one decision threshold, with the class sizes they were computed over.
public struct CueRates: Sendable, Equatable {
    /// TP / (TP + FN); NaN without positives.
    public var truePositiveRate: Float
    /// FP / (FP + TN); NaN without negatives.
    public var falsePositiveRate: Float
    public var positives: Int
    public var negatives: Int

    public init(truePositiveRate: Float, falsePositiveRate: Float, positives: Int, negatives: Int) {
        self.truePositiveRate = truePositiveRate
        self.falsePositiveRate = falsePositiveRate
        self.positives = positives
        self.negatives = negatives
    }

    /// Equality that treats NaN rates as equal.
    public static func == (a: CueRates, b: CueRates) -> Bool {
        func same(_ x: Float, _ y: Float) -> Bool { x == y || (x.isNaN && y.isNaN) }
        return same(a.truePositiveRate, b.truePositiveRate) && same(a.falsePositiveRate, b.falsePositiveRate)
            && a.positives == b.positives && a.negatives == b.negatives
    }
}
