import ArgumentParser
import Foundation
import Lichen
import LichenCueSim

extension CuesCommand {
    /// `lichen cues bench`: the cue learner's per-tick cost and its retrain's cost, one thread.
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench",
            abstract: "Per-tick cost of the cue learner (p50, p99) and the cost of a retrain, on one thread.",
            discussion: """
                A learner with the authors' settings (21 features, k = 5, buffer 2435, retrain every 200 samples, \
                smoothing 5) is filled to capacity with seeded samples (features correlated with the target), then \
                --ticks ticks are timed one by one (trusted cue valid, gated policy). Ticks that retrained are reported \
                apart from the others: tick p50 and p99 are over ticks without a retrain, retrain p50 and max over the \
                ticks with one. The 21-D texton feature of one 64x48 simulator frame is timed too. Run the release \
                build on an otherwise idle machine for a speed figure.
                """
        )

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: CueBenchOptions

        mutating func run() throws {
            try Self.measureCueLearner(ticks: options.ticks, seed: options.seed, json: global.json)
        }

        static func measureCueLearner(ticks: Int, seed: UInt64, json: Bool) throws {
            let config = CueConfiguration(decisionThreshold: 14, dangerThreshold: 24)
            var random = SimRandom(seed: seed)
            // The learner keeps its arena alive; the feature view lives in the same arena.
            let (learner, features) = try naming("cue learner") { () throws(LichenError) in
                let learner = try CueLearner(configuration: config, arena: try Arena(byteCount: 8 << 20))
                return (learner, try learner.arena.persistentTensor(.f32, try Shape(config.featureCount)))
            }
            let arenaBytes = learner.arenaBytes
            func step() throws -> Double {
                let target = Float(random.uniform(0, 30))
                let x = try naming("features") { () throws(LichenError) in try features.f32Elements("features") }
                for j in 0..<x.count { x[j] = target / 30 + Float(random.uniform(0, 0.2)) }
                let t0 = now()
                _ = try naming("tick") { () throws(LichenError) in try learner.tick(features: features, target: target, trustedValid: true) }
                return now() - t0
            }
            while learner.samplesAdded < config.capacity + config.retrainInterval { _ = try step() }
            var plain: [Double] = [], retrains: [Double] = []
            for _ in 0..<ticks {
                let before = learner.retrainCount
                let dt = try step()
                if learner.retrainCount != before { retrains.append(dt) } else { plain.append(dt) }
            }
            plain.sort()
            retrains.sort()
            func pct(_ a: [Double], _ q: Double) -> Double { a.isEmpty ? .nan : a[min(a.count - 1, Int(q * Double(a.count)))] }
            // The texton feature of one simulator frame.
            let room = Room.generate(seed: 1, keepClear: Vec2(2.5, 2.5))
            var r = SimRandom(seed: seed ^ 0x51)
            let hits = Sensors.castColumns(room, position: Vec2(2.5, 2.5), heading: 0.3)
            let image = Sensors.mono(room, position: Vec2(2.5, 2.5), heading: 0.3, hits: hits, noise: 3, random: &r)
            let dictionary = TextonDictionary.learn(frames: [image], columns: Camera.columns, rows: Camera.rows, seed: seed)
            var sink: Float = 0
            let texton = measure(minSeconds: 0.5) { sink += dictionary.features(image, columns: Camera.columns, rows: Camera.rows)[20] }
            if sink.isNaN { log("cues bench: NaN feature") }
            let rows: [(String, Double)] = [
                ("tick_p50_us", pct(plain, 0.5) * 1e6), ("tick_p99_us", pct(plain, 0.99) * 1e6),
                ("retrain_p50_ms", pct(retrains, 0.5) * 1e3), ("retrain_max_ms", (retrains.last ?? .nan) * 1e3),
                ("texton_feature_us", texton.seconds * 1e6),
            ]
            if json {
                print(JSON.object([("command", .string("cues bench")), ("build", .string(CuesCommand.buildConfiguration)),
                                   ("threads", .int(1)), ("ticks", .int(plain.count)), ("retrains", .int(retrains.count)),
                                   ("arena_bytes", .int(arenaBytes))] + rows.map { ($0.0, .number($0.1)) }).rendered())
            } else {
                print("cue learner, \(CuesCommand.buildConfiguration) build, 1 thread, buffer \(config.capacity) x \(config.featureCount), k \(config.neighbours), arena \(arenaBytes) bytes")
                print("tick (no retrain, \(plain.count) ticks): p50 \(fixed(rows[0].1, 1)) us, p99 \(fixed(rows[1].1, 1)) us")
                print("tick with a retrain (\(retrains.count)): p50 \(fixed(rows[2].1, 3)) ms, max \(fixed(rows[3].1, 3)) ms")
                print("texton feature of one 64x48 frame: \(fixed(rows[4].1, 1)) us")
            }
        }
    }
}

/// `lichen bench cues`: the same measurement as `lichen cues bench`, beside the other benches.
struct CuesBenchAlias: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cues",
        abstract: "Per-tick cost of the cue learner (p50, p99) and the cost of a retrain, on one thread (as `lichen cues bench`)."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: CueBenchOptions

    mutating func run() throws {
        try CuesCommand.Bench.measureCueLearner(ticks: options.ticks, seed: options.seed, json: global.json)
    }
}

/// The options of `lichen cues bench` and `lichen bench cues`.
struct CueBenchOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Ticks to time.", valueName: "n"))
    var ticks = 2000
    @Option(name: .long, help: ArgumentHelp("Seed of the samples.", valueName: "n"))
    var seed: UInt64 = 1

    func validate() throws {
        guard (200...1_000_000).contains(ticks) else { throw ValidationError("--ticks must be in 200...1000000") }
    }
}
