import ArgumentParser
import Foundation
import Lichen

/// `lichen bench adapt --loop-hz H`: each method driven by a control loop at H Hz through
/// `Runtime.step` (what `lichen_step` runs), with updates inside the step (synchronous) and on
/// the learner thread, side by side in one run.
///
/// The loop: tick i is due at t0 + i / H. The loop sleeps until the tick is due, steps the
/// stream's next frame and times the step. A step longer than the period is a deadline miss;
/// ticks whose time has passed when a step ends are skipped (a control loop reads its newest
/// sensor frame, it does not catch up), and their frames are not stepped. The online error is
/// over the frames stepped. Beside them, each method's reference error: the same frames stepped
/// one after the other with updates inside the step and no clock (every frame, every update, in
/// order: what the method gives when nothing is late), the error the learner's is measured against.
extension AdaptBench {
    struct LoopResult {
        var method: AdaptationMethod
        var learner: Bool
        var steps: Int
        var p50: Double, p99: Double, max: Double   // seconds
        var misses: Int
        var skipped: Int
        var errors: Int
        var updates: UInt64
        var dropped: UInt64
        var lagP50: Double
        var maximumLag: UInt64
        var updateP50: Double, updateP99: Double    // seconds (the learner's job, or the adapting step)
        var errorRate: Double { steps > 0 ? Double(errors) / Double(steps) : .nan }
    }

    /// The learner settings the loop bench runs (`--learner`).
    func loopLearnerModes() throws -> [Bool] {
        switch learner {
        case "both": return [false, true]
        case "on": return [true]
        case "off": return [false]
        default: throw ValidationError("--learner must be on, off or both")
        }
    }

    /// `method` in a runtime driven at `loopHz` over `frames` (labels `labels`).
    /// `paced` false: no clock, every tick stepped (the reference run).
    func measureLoop(_ method: AdaptationMethod, learnerOn: Bool, paced: Bool = true, frames: TensorView, labels: [Int],
                     pack: String) throws -> LoopResult {
        let rt = try benchRuntime(method, pack: pack, fused: true,
                                  learner: learnerOn ? BackgroundLearner.Settings(cpu: learnerCPU, nice: learnerNice) : nil)
        let n = frames.shape[0], values = rt.frameElementCount
        var logits = [Float](repeating: 0, count: rt.classCount)
        let hz = loopHz ?? 200
        let period = 1.0 / hz
        var samples: [Double] = []
        var lags: [Double] = []
        samples.reserveCapacity(loopFrames)
        lags.reserveCapacity(loopFrames)
        var misses = 0, skipped = 0, errors = 0
        let start = now()
        var tick = 0
        try naming(method.name) { () throws(LichenError) in
            while tick < loopFrames {
                let due = start + Double(tick) * period
                let wait = due - now()
                if paced, wait > 0 { usleep(UInt32(wait * 1e6)) }
                let i = tick % n
                let row = try frames.leadingRows(i, count: 1)
                let t0 = now()
                let k = try logits.withUnsafeMutableBufferPointer { z throws(LichenError) in
                    try rt.step(frame: UnsafeBufferPointer(start: row.floats, count: values), logits: z)
                }
                let t1 = now()
                let dt = t1 - t0
                samples.append(dt)
                if dt > period { misses += 1 }
                if k != labels[i] { errors += 1 }
                if learnerOn { lags.append(Double(rt.methodFigures().learnerLag)) }
                // The next tick that is still ahead of the clock.
                guard paced else {
                    tick += 1
                    continue
                }
                let next = Int(((t1 - start) / period).rounded(.down)) + 1
                if next > tick + 1 { skipped += next - tick - 1 }
                tick = max(tick + 1, next)
            }
        }
        let f = rt.methodFigures()
        samples.sort()
        lags.sort()
        return LoopResult(method: method, learner: learnerOn, steps: samples.count, p50: Self.quantile(samples, 0.5),
                          p99: Self.quantile(samples, 0.99), max: samples.last ?? .nan, misses: misses, skipped: skipped, errors: errors,
                          updates: f.updates, dropped: f.droppedFrames, lagP50: lags.isEmpty ? .nan : Self.quantile(lags, 0.5),
                          maximumLag: f.maximumLearnerLag, updateP50: Double(f.updateP50Nanoseconds) / 1e9,
                          updateP99: Double(f.updateP99Nanoseconds) / 1e9)
    }

    /// The loop bench: every method, synchronous and on the learner, then the table or JSON.
    func runLoop(methods list: [AdaptationMethod]) throws {
        let file = try openStream(stream)
        let count = min(file.frameCount, loopFrames)
        let arena = try naming("frames") { () throws(LichenError) in try Arena(byteCount: count * file.pixelsPerFrame * 4 + (4 << 20)) }
        let frames = try naming(stream) { () throws(LichenError) in
            let t = try arena.persistentTensor(.f32, try Shape(count, 1, file.height, file.width))
            try file.writeFrames(start: 0, count: count, into: t)
            return t
        }
        var labels: [Int] = []
        for i in 0..<count { labels.append(try naming(stream) { () throws(LichenError) in try file.label(i) }) }
        let (pack, temporary) = try runtimePack(list, file: file, frames: count)
        defer { if temporary, let pack { unlink(pack) } }
        let hz = loopHz ?? 200
        let modes = try loopLearnerModes()
        var results: [LoopResult] = []
        var reference: [AdaptationMethod: Double] = [:]
        for method in list {
            if !global.json || global.verbose {
                log("bench adapt: \(method.name), every frame in step without a clock (the reference error), \(loopFrames) frames")
            }
            reference[method] = try measureLoop(method, learnerOn: false, paced: false, frames: frames, labels: labels, pack: pack ?? "").errorRate
            for on in modes where !(on && method == .source && modes.count > 1) {
                if !global.json || global.verbose {
                    log("bench adapt: \(method.name) at \(fixed(hz, 0)) Hz, \(on ? "learner thread" : "synchronous"), \(loopFrames) ticks")
                }
                results.append(try measureLoop(method, learnerOn: on, frames: frames, labels: labels, pack: pack ?? ""))
            }
        }
        let sourceP99 = results.first { $0.method == .source }?.p99
        if global.json {
            let doc: JSON = .object([
                ("benchmark", .string("adapt-loop")),
                ("model", .string(model)),
                ("stream", .string(stream)),
                ("loop_hz", .number(hz)),
                ("ticks", .int(loopFrames)),
                ("window", .int(window)), ("every", .int(every)),
                ("cotta_threshold", .number(Double(cottaThreshold))),
                ("learner_cpu", learnerCPU.map { .int($0) } ?? .null),
                ("learner_nice", .int(learnerNice)),
                ("results", .array(results.map { r in
                    .object([
                        ("method", .string(r.method.name)),
                        ("learner", .bool(r.learner)),
                        ("steps", .int(r.steps)),
                        ("step_p50_ms", .number(r.p50 * 1000)),
                        ("step_p99_ms", .number(r.p99 * 1000)),
                        ("step_max_ms", .number(r.max * 1000)),
                        ("p99_over_source_p99", sourceP99.map { .number(r.p99 / $0) } ?? .null),
                        ("deadline_misses", .int(r.misses)),
                        ("skipped_ticks", .int(r.skipped)),
                        ("online_error", .number(r.errorRate)),
                        ("reference_error", reference[r.method].map { .number($0) } ?? .null),
                        ("updates", .int(Int(r.updates))),
                        ("dropped_frames", .int(Int(r.dropped))),
                        ("learner_lag_p50_frames", r.learner ? .number(r.lagP50) : .null),
                        ("learner_lag_max_frames", r.learner ? .int(Int(r.maximumLag)) : .null),
                        ("update_p50_ms", .number(r.updateP50 * 1000)),
                        ("update_p99_ms", .number(r.updateP99 * 1000)),
                    ])
                })),
            ])
            print(doc.rendered())
            return
        }
        var table = Table(["method", "updates run", "step p50 (ms)", "p99 (ms)", "max (ms)", "p99 / source", "misses", "skipped",
                           "online error %", "reference %", "updates", "dropped", "lag p50", "lag max", "update p50 (ms)"],
                          rightAligned: Set(2..<15))
        for r in results {
            table.add([r.method.name, r.learner ? "learner" : "in step", fixed(r.p50 * 1000, 3), fixed(r.p99 * 1000, 3),
                       fixed(r.max * 1000, 1), sourceP99.map { fixed(r.p99 / $0, 2) } ?? "-", String(r.misses), String(r.skipped),
                       fixed(r.errorRate * 100, 2), reference[r.method].map { fixed($0 * 100, 2) } ?? "-", String(r.updates), r.learner ? String(r.dropped) : "-",
                       r.learner ? fixed(r.lagP50, 0) : "-", r.learner ? String(r.maximumLag) : "-", fixed(r.updateP50 * 1000, 2)])
        }
        print("a \(fixed(hz, 0)) Hz control loop through the runtime, \(model) over \(stream), \(loopFrames) ticks, "
              + "window \(window), every \(every), fused prediction (a miss: a step longer than the \(fixed(1000 / hz, 2)) ms period):")
        print("")
        print(table.rendered())
        print("")
        print("reference %: the same \(loopFrames) frames stepped one after another with updates in the step and no clock.")
    }

    /// A source pack for RMT when the bench needs one and none was given: the stream's first
    /// frames with their labels, written to a temporary file (true: delete it afterwards).
    func runtimePack(_ list: [AdaptationMethod], file: StreamFile, frames count: Int) throws -> (String?, Bool) {
        if let sourcePack { return (sourcePack, false) }
        guard list.contains(where: { $0 == .rmt }) else { return (nil, false) }
        var writer = try naming("source pack") { () throws(LichenError) in
            try StreamFileWriter(kind: .custom, width: file.width, height: file.height, classCount: file.classCount, seed: 1)
        }
        let path = NSTemporaryDirectory() + "lichen-bench-pack-\(getpid()).stream"
        try naming(path) { () throws(LichenError) in
            try writer.beginDomain(name: "clean", severity: 0)
            for i in 0..<min(count, 256) { try writer.append(frame: try file.framePixels(i), label: try file.label(i)) }
            try writer.write(toPath: path)
        }
        return (path, true)
    }
}
