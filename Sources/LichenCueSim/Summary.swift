import Foundation

/// Mean, spread (sample standard deviation), min and max of one metric over runs.
public struct Spread: Sendable {
    public var mean: Double
    public var std: Double
    public var min: Double
    public var max: Double
    public var count: Int

    /// Over the finite values (a metric can be undefined in a run, e.g. an AUC without obstacles).
    public init(_ values: [Double]) {
        let v = values.filter(\.isFinite)
        count = v.count
        guard !v.isEmpty else { mean = .nan; std = .nan; min = .nan; max = .nan; return }
        mean = v.reduce(0, +) / Double(v.count)
        let m = mean
        std = v.count > 1 ? (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : 0
        min = v.min()!
        max = v.max()!
    }
}

/// Host-side ROC of (estimate, target) pairs: the curve and AUC, positive = target > τ_gt.
public enum HostROC {
    /// Points (FPR, TPR) for every distinct threshold, from (1, 1) down to (0, 0).
    public static func curve(_ pairs: [(estimate: Float, target: Float)], decisionThreshold: Float) -> [(Double, Double)] {
        let sorted = pairs.sorted { $0.estimate > $1.estimate }
        let p = Double(sorted.filter { $0.target > decisionThreshold }.count), n = Double(sorted.count) - p
        guard p > 0 && n > 0 else { return [] }
        var points: [(Double, Double)] = [(0, 0)]
        var tp = 0.0, fp = 0.0, i = 0
        while i < sorted.count {
            let e = sorted[i].estimate
            while i < sorted.count && sorted[i].estimate == e {
                if sorted[i].target > decisionThreshold { tp += 1 } else { fp += 1 }
                i += 1
            }
            points.append((fp / n, tp / p))
        }
        return points
    }

    /// Trapezoid area under `curve` (equals the Mann-Whitney AUC with ties counted one half).
    public static func area(_ curve: [(Double, Double)]) -> Double {
        guard curve.count > 1 else { return .nan }
        var a = 0.0
        for i in 1..<curve.count { a += (curve[i].0 - curve[i - 1].0) * (curve[i].1 + curve[i - 1].1) / 2 }
        return a
    }

    public static func meanSquaredError(_ pairs: [(estimate: Float, target: Float)]) -> Double {
        guard !pairs.isEmpty else { return .nan }
        return pairs.map { Double($0.estimate - $0.target) * Double($0.estimate - $0.target) }.reduce(0, +) / Double(pairs.count)
    }
}

/// The table row of one protocol over its runs (seeds × rooms).
public struct ProtocolSummary: Sendable {
    public var cueProtocol: CueProtocol
    public var runs: Int
    /// Pure-mono test (A, B, C), or the stretch after the stereo failure (D).
    public var collisionsPerMinute: Spread
    public var meanFreeFlightSeconds: Spread
    /// Metres flown forward per minute in the same stretch (a drone spinning in place has no
    /// collisions and no distance).
    public var metresPerMinute: Spread
    /// Step backs to a previous waypoint per minute in the same stretch.
    public var stepBacksPerMinute: Spread
    /// Training-wheel interventions per minute in the first and last minute of phase 2 (B, C).
    public var interventionsFirstMinute: Spread
    public var interventionsLastMinute: Spread
    /// Mono estimate vs stereo on the test (or failure) phase's frames: AUC and MSE.
    public var monoArea: Spread
    public var monoMeanSquaredError: Spread
    /// D: seconds flown after the stereo failure.
    public var secondsFlownAfterFailure: Spread

    public init(_ cueProtocol: CueProtocol, runs: [FlightRun], decisionThreshold: Float) {
        self.cueProtocol = cueProtocol
        self.runs = runs.count
        let last = runs.map { $0.phases[$0.phases.count - 1] }
        collisionsPerMinute = Spread(last.map(\.collisionsPerMinute))
        meanFreeFlightSeconds = Spread(last.map(\.meanFreeFlightSeconds))
        metresPerMinute = Spread(last.map(\.metresPerMinute))
        stepBacksPerMinute = Spread(last.map { $0.seconds > 0 ? Double($0.stepBacks) / ($0.seconds / 60) : .nan })
        let wheels = runs.compactMap { $0.phases.first { $0.name == "wheels" } }
        interventionsFirstMinute = Spread(wheels.map { Double($0.interventionsFirstMinute) })
        interventionsLastMinute = Spread(wheels.map { Double($0.interventionsLastMinute) })
        monoArea = Spread(last.map { HostROC.area(HostROC.curve($0.pairs, decisionThreshold: decisionThreshold)) })
        monoMeanSquaredError = Spread(last.map { HostROC.meanSquaredError($0.pairs) })
        secondsFlownAfterFailure = Spread(runs.compactMap { $0.phases.first { $0.name == "failure" }?.secondsFlown })
    }
}
