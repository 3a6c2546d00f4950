import ArgumentParser
import Foundation
import Lichen

/// `lichen bench adapt --model M --stream S`: step latency, throughput and memory of each
/// adaptation method, frame by frame (a window of B frames, adapting every K) and batch by batch.
struct AdaptBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapt",
        abstract: "Per-step latency (p50, p99), frames per second and memory of each adaptation method.",
        discussion: """
            For each method, frame mode (--window B, --every K: one step per frame, predicting from the \
            window of the last B frames and adapting on it every K frames) and batch mode (--batch N: one \
            step per batch of N frames). Frame mode runs once per --frame-predict entry (default both, \
            side by side): window forwards the whole window ending at each frame between updates, saved \
            a batch-1 forward normalised with the statistics saved by the last update's forward. Each \
            (method, protocol) starts from a freshly loaded model; the \
            stream's first frames are copied out once, then --warmup steps run untimed (in frame mode at \
            least --window, so the timed frames see a full window) and the next steps \
            are timed one by one. Frame mode times --frames steps, batch mode enough batches for --frames \
            frames (at least 5). Latency is per step (a frame, or a batch), p50 and p99 in ms; frames per \
            second counts the frames those steps consumed over their summed time. Memory: the budget's \
            planned step region, persistent objects (parameters, optimizer state, snapshots, windows) and \
            heap in use, and the process's RSS now and at its peak (VmHWM, cumulative over the run). \
            CoTTA runs with its confidence threshold at --cotta-threshold (default 1: the gate always \
            fires, so every step runs the augmented teacher passes, the worst case); RMT takes its \
            prototypes from one batch of the Fashion-MNIST training images and skips the warm-up \
            (neither changes the cost of a step). Single-threaded. Use a release build.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("Model file (GGUF).", valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Stream file (lichen stream make).", valueName: "path"))
    var stream: String

    @Option(name: .long, help: ArgumentHelp("Methods, comma-separated (default: source,bn,tent).", valueName: "m1,m2,.."))
    var methods: String = "source,bn,tent"

    @Option(name: .long, help: ArgumentHelp("What Tent trains: frugal or full.", valueName: "frugal|full"))
    var mode: String = "frugal"

    @Option(name: .long, help: ArgumentHelp("Frame mode window B.", valueName: "B"))
    var window: Int = 64

    @Option(name: .long, help: ArgumentHelp("Frame mode: adapt every K frames.", valueName: "K"))
    var every: Int = 16

    @Option(name: .long, help: ArgumentHelp("Frame mode predictions to time, comma-separated: window, saved (default both).",
                                            valueName: "p1,p2"))
    var framePredict: String = "window,saved"

    @Option(name: .long, help: ArgumentHelp("Batch mode batch size.", valueName: "n"))
    var batch: Int = 200

    @Option(name: .long, help: ArgumentHelp("Frames to time per method and protocol.", valueName: "n"))
    var frames: Int = 1024

    @Option(name: .long, help: ArgumentHelp("Untimed steps before timing.", valueName: "n"))
    var warmup: Int = 32

    @Option(name: .long, help: ArgumentHelp("Memory budget per method, in MiB.", valueName: "MiB"))
    var budget: Int = 256

    @Option(name: .long, help: ArgumentHelp("CoTTA's confidence threshold (1: the gate always fires).", valueName: "p"))
    var cottaThreshold: Float = 1

    @Option(name: .long, help: ArgumentHelp("Folder holding the Fashion-MNIST IDX .gz files (RMT's source batches).", valueName: "path"))
    var dataDirectory: String = FashionMNIST.defaultDirectory

    @Option(name: .long, help: ArgumentHelp("Runtime column: frames stepped through Runtime.step (what lichen_step runs) per method, 0 to skip.",
                                            valueName: "n"))
    var runtimeFrames: Int = 512

    @Option(name: .long, help: ArgumentHelp("Runtime column: frames between updates through the fused model refolded after each update (on), or the graph (off).",
                                            valueName: "on|off"))
    var fusedPredict: String = "on"

    @Option(name: .long, help: ArgumentHelp("Runtime column: a source pack for RMT (default: a pack of the stream's first frames is written to a temporary file).",
                                            valueName: "path"))
    var sourcePack: String?

    @Option(name: .long, help: ArgumentHelp("Loop mode: drive each method by a control loop at this rate through the runtime, with updates inside the step and on the learner thread (see --learner), and report step percentiles, deadline misses, learner lag and online error instead of the tables above.",
                                            valueName: "Hz"))
    var loopHz: Double?

    @Option(name: .long, help: ArgumentHelp("Loop mode: ticks per method and learner setting.", valueName: "n"))
    var loopFrames: Int = 2000

    @Option(name: .long, help: ArgumentHelp("Loop mode: updates inside the step (off), on the learner thread (on), or both side by side.",
                                            valueName: "on|off|both"))
    var learner: String = "both"

    @Option(name: .long, help: ArgumentHelp("Loop mode: pin the learner thread to this CPU.", valueName: "cpu"))
    var learnerCPU: Int?

    @Option(name: .long, help: ArgumentHelp("Loop mode: the learner thread's nice value (-20...19; below the process's needs CAP_SYS_NICE).",
                                            valueName: "n"))
    var learnerNice: Int = 0

    func parsedMethods() throws -> [AdaptationMethod] {
        var out: [AdaptationMethod] = []
        for part in methods.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let m = AdaptationMethod(name: name) else { throw ValidationError("unknown method '\(name)'") }
            if !out.contains(m) { out.append(m) }
        }
        guard !out.isEmpty else { throw ValidationError("--methods names no method") }
        return out
    }

    func parsedPredictions() throws -> [FrameAdapter.Prediction] {
        var out: [FrameAdapter.Prediction] = []
        for part in framePredict.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let p = FrameAdapter.Prediction(name: name) else { throw ValidationError("unknown frame prediction '\(name)' (window or saved)") }
            if !out.contains(p) { out.append(p) }
        }
        guard !out.isEmpty else { throw ValidationError("--frame-predict names no prediction") }
        return out
    }

    func validate() throws {
        _ = try parsedMethods()
        _ = try parsedPredictions()
        guard AdaptationMode(name: mode) != nil else { throw ValidationError("--mode must be frugal or full") }
        guard window >= 1 && window <= 10_000 else { throw ValidationError("--window must be in 1...10000") }
        guard every >= 1 && every <= 1_000_000 else { throw ValidationError("--every must be in 1...1000000") }
        guard batch >= 1 && batch <= 10_000 else { throw ValidationError("--batch must be in 1...10000") }
        guard frames >= 1 && frames <= 1_000_000 else { throw ValidationError("--frames must be in 1...1000000") }
        guard warmup >= 0 && warmup <= 100_000 else { throw ValidationError("--warmup must be in 0...100000") }
        guard budget >= 16 && budget <= 1 << 16 else { throw ValidationError("--budget must be in 16...65536 MiB") }
        guard runtimeFrames >= 0 && runtimeFrames <= 1_000_000 else { throw ValidationError("--runtime-frames must be in 0...1000000") }
        guard fusedPredict == "on" || fusedPredict == "off" else { throw ValidationError("--fused-predict must be on or off") }
        if let loopHz { guard loopHz.isFinite && loopHz >= 1 && loopHz <= 10_000 else { throw ValidationError("--loop-hz must be in 1...10000") } }
        guard loopFrames >= 1 && loopFrames <= 10_000_000 else { throw ValidationError("--loop-frames must be in 1...10000000") }
        _ = try loopLearnerModes()
        if let learnerCPU { guard learnerCPU >= 0 && learnerCPU < 1024 else { throw ValidationError("--learner-cpu must be in 0...1023") } }
        guard learnerNice >= -20 && learnerNice <= 19 else { throw ValidationError("--learner-nice must be in -20...19") }
    }

    /// One method through the runtime, frame by frame: `Runtime.step` timed per frame, frames
    /// between updates and update frames apart.
    struct RuntimeResult {
        var method: AdaptationMethod
        var betweenP50: Double, betweenP99: Double, betweenCount: Int
        var updateP50: Double, updateP99: Double, updateCount: Int
    }

    /// The fused source model's batch-1 latency (`InferenceModel`, what `lichen bench infer` times), p50 in seconds.
    func fusedSourceP50(_ frames: TensorView, count: Int) throws -> Double {
        let loaded = try LoadedModel(path: model, budgetBytes: 64 << 20, trainable: false)
        let fused = try naming(model) { () throws(LichenError) in
            try InferenceModel(spec: loaded.spec, store: loaded.store, batchSize: 1, arena: loaded.arena)
        }
        var samples: [Double] = []
        for i in 0..<(count + warmup) {
            let x = try naming("frames") { () throws(LichenError) in try frames.leadingRows(i % frames.shape[0], count: 1) }
            let t0 = now()
            _ = try naming("forward") { () throws(LichenError) in try fused.forward(input: x) }
            if i >= warmup { samples.append(now() - t0) }
        }
        samples.sort()
        return Self.quantile(samples, 0.5)
    }

    /// A runtime of --budget with the model loaded and `method` set as the runtime benches run
    /// it: window and every as given, saved prediction, the given CoTTA threshold, RMT without
    /// warm-up and with prototypes from one window of the pack.
    func benchRuntime(_ method: AdaptationMethod, pack: String, fused: Bool, learner: BackgroundLearner.Settings? = nil) throws -> Runtime {
        var plan = AdaptationPlan(method, mode: AdaptationMode(name: mode) ?? .frugal,
                                  framing: .frames(window: window, every: every, prediction: .saved),
                                  cottaThreshold: .given(cottaThreshold), sourcePack: pack, fusedPrediction: fused)
        plan.rmt = RMT.Configuration(warmUpSamples: 0, prototypeSamples: window)
        plan.learner = learner
        return try naming(model) { () throws(LichenError) in
            let rt = try Runtime(budgetBytes: budget << 20)
            try rt.loadModel(path: model)
            try rt.setMethod(plan)
            return rt
        }
    }

    /// `method` in a runtime over `frames` (window and every as given, saved prediction).
    func measureRuntime(_ method: AdaptationMethod, frames: TensorView, pack: String) throws -> RuntimeResult {
        let rt = try benchRuntime(method, pack: pack, fused: fusedPredict == "on")
        let n = frames.shape[0], values = rt.frameElementCount
        var logits = [Float](repeating: 0, count: rt.classCount)
        var between: [Double] = [], updates: [Double] = []
        let total = max(window, warmup) + runtimeFrames
        try naming(method.name) { () throws(LichenError) in
            for i in 0..<total {
                let row = try frames.leadingRows(i % n, count: 1)
                let before = rt.methodFigures().updates
                let t0 = now()
                _ = try logits.withUnsafeMutableBufferPointer { z throws(LichenError) in
                    try rt.step(frame: UnsafeBufferPointer(start: row.floats, count: values), logits: z)
                }
                let dt = now() - t0
                guard i >= max(window, warmup) else { continue }
                if rt.methodFigures().updates != before { updates.append(dt) } else { between.append(dt) }
            }
        }
        between.sort()
        updates.sort()
        return RuntimeResult(method: method, betweenP50: Self.quantile(between, 0.5), betweenP99: Self.quantile(between, 0.99),
                             betweenCount: between.count, updateP50: Self.quantile(updates, 0.5), updateP99: Self.quantile(updates, 0.99),
                             updateCount: updates.count)
    }

    struct Result {
        var method: AdaptationMethod
        var mode: AdaptationMode
        var protocolName: String   // "frame" or "batch"
        var setting: String        // "B 64, K 16, saved" or "200"
        var prediction: FrameAdapter.Prediction?
        var framesPerStep: Int
        var steps: Int
        var p50: Double            // seconds per step
        var p99: Double
        var framesPerSecond: Double
        var plannedBytes: Int
        var persistentBytes: Int
        var heapBytes: Int
        var rss: Int
        var peakRSS: Int
    }

    /// The `q`-quantile (nearest rank) of sorted samples.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    func run() throws {
        #if DEBUG
        log("warning: this is a debug build; benchmark figures need `swift build -c release`")
        #endif
        let list = try parsedMethods()
        if loopHz != nil { return try runLoop(methods: list) }
        let adaptationMode = AdaptationMode(name: mode) ?? .frugal
        let file = try openStream(stream)
        var results: [Result] = []
        let predictions = try parsedPredictions()
        // The runtime column: each method through Runtime.step, next to the fused source model.
        var runtimeResults: [RuntimeResult] = []
        var fusedP50 = Double.nan
        if runtimeFrames > 0 {
            let count = min(file.frameCount, 1024)
            let arena = try naming("frames") { () throws(LichenError) in try Arena(byteCount: count * file.pixelsPerFrame * 4 + (4 << 20)) }
            let frames = try naming(stream) { () throws(LichenError) in
                let t = try arena.persistentTensor(.f32, try Shape(count, 1, file.height, file.width))
                try file.writeFrames(start: 0, count: count, into: t)
                return t
            }
            // RMT's source data: the stream's first frames with their labels, as a pack.
            let (pack, temporary) = try runtimePack(list, file: file, frames: count)
            defer { if temporary, let pack { unlink(pack) } }
            fusedP50 = try fusedSourceP50(frames, count: runtimeFrames)
            for method in list {
                if !global.json || global.verbose { log("bench adapt: \(method.name) through the runtime") }
                runtimeResults.append(try measureRuntime(method, frames: frames, pack: pack ?? ""))
            }
        }
        for method in list {
            let runs: [FrameAdapter.Prediction?] = predictions.map { $0 } + [nil]
            for prediction in runs {
                if !global.json || global.verbose {
                    log("bench adapt: \(method.name) \(prediction.map { "frame mode, \($0.name) prediction" } ?? "batch mode")")
                }
                results.append(try measure(method, mode: adaptationMode, prediction: prediction, file: file))
            }
        }
        if global.json {
            let doc: JSON = .object([
                ("benchmark", .string("adapt")),
                ("model", .string(model)),
                ("stream", .string(stream)),
                ("threads", .int(1)),
                ("window", .int(window)), ("every", .int(every)), ("batch", .int(batch)),
                ("fused_source_p50_ms", runtimeResults.isEmpty ? .null : .number(fusedP50 * 1000)),
                ("runtime_fused_predict", .string(fusedPredict)),
                ("runtime", .array(runtimeResults.map { r in
                    .object([
                        ("method", .string(r.method.name)),
                        ("between_updates_frames", .int(r.betweenCount)),
                        ("between_updates_p50_ms", .number(r.betweenP50 * 1000)),
                        ("between_updates_p99_ms", .number(r.betweenP99 * 1000)),
                        ("between_updates_p50_over_fused_source", .number(r.betweenP50 / fusedP50)),
                        ("update_frames", .int(r.updateCount)),
                        ("update_p50_ms", r.updateCount > 0 ? .number(r.updateP50 * 1000) : .null),
                        ("update_p99_ms", r.updateCount > 0 ? .number(r.updateP99 * 1000) : .null),
                    ])
                })),
                ("results", .array(results.map { r in
                    .object([
                        ("method", .string(r.method.name)),
                        ("mode", r.method == .source || r.method == .bnAdapt ? .null : .string(r.mode.name)),
                        ("protocol", .string(r.protocolName)),
                        ("frame_predict", r.prediction.map { .string($0.name) } ?? .null),
                        ("frames_per_step", .int(r.framesPerStep)),
                        ("steps", .int(r.steps)),
                        ("p50_ms", .number(r.p50 * 1000)),
                        ("p99_ms", .number(r.p99 * 1000)),
                        ("frames_per_second", .number(r.framesPerSecond)),
                        ("planned_bytes", .int(r.plannedBytes)),
                        ("persistent_bytes", .int(r.persistentBytes)),
                        ("heap_bytes", .int(r.heapBytes)),
                        ("process_rss_bytes", .int(r.rss)),
                        ("process_peak_rss_bytes", .int(r.peakRSS)),
                    ])
                })),
            ])
            print(doc.rendered())
            return
        }
        var table = Table(["method", "protocol", "step", "p50 (ms)", "p99 (ms)", "frames/s", "planned (KiB)",
                           "persistent (KiB)", "heap (KiB)", "RSS (MiB)", "peak RSS (MiB)"], rightAligned: Set(3..<11))
        for r in results {
            let name = r.method == .source || r.method == .bnAdapt ? r.method.name : "\(r.method.name) (\(r.mode.name))"
            table.add([name, "\(r.protocolName) \(r.setting)", r.framesPerStep == 1 ? "1 frame" : "\(r.framesPerStep) frames",
                       fixed(r.p50 * 1000, 3), fixed(r.p99 * 1000, 3), fixed(r.framesPerSecond, 0),
                       String(r.plannedBytes >> 10), String(r.persistentBytes >> 10), String(r.heapBytes >> 10),
                       fixed(Double(r.rss) / 1048576, 1), fixed(Double(r.peakRSS) / 1048576, 1)])
        }
        print("adaptation step latency and memory, \(model) over \(stream) (1 thread):")
        print("")
        print(table.rendered())
        if !runtimeResults.isEmpty {
            var rt = Table(["method", "between updates p50 (ms)", "p99 (ms)", "x fused source", "update frames p50 (ms)", "p99 (ms)", "frames"],
                           rightAligned: Set(1..<7))
            for r in runtimeResults {
                rt.add([r.method.name, fixed(r.betweenP50 * 1000, 3), fixed(r.betweenP99 * 1000, 3), fixed(r.betweenP50 / fusedP50, 2),
                        r.updateCount > 0 ? fixed(r.updateP50 * 1000, 3) : "-", r.updateCount > 0 ? fixed(r.updateP99 * 1000, 3) : "-",
                        "\(r.betweenCount) + \(r.updateCount)"])
            }
            print("")
            print("through the runtime (Runtime.step, what lichen_step runs; window \(window), every \(every), saved prediction, fused \(fusedPredict)), "
                  + "fused source inference p50 \(fixed(fusedP50 * 1000, 3)) ms:")
            print("")
            print(rt.rendered())
        }
    }

    /// One method and protocol from a freshly loaded model.
    func measure(_ method: AdaptationMethod, mode: AdaptationMode, prediction: FrameAdapter.Prediction?, file: StreamFile) throws -> Result {
        let frameMode = prediction != nil
        let loaded = try LoadedModel(path: model, budgetBytes: budget << 20, trainable: false)
        try requireStreamFits(file, path: stream, model: loaded)
        let rows = frameMode ? window : batch
        // The plan: CoTTA's threshold as given, RMT's prototypes from one batch of the training
        // split and no warm-up (neither changes the cost of a step).
        var plan = AdaptationPlan(method, mode: mode,
                                  framing: prediction.map { .frames(window: window, every: every, prediction: $0) } ?? .batch(size: rows),
                                  cottaThreshold: .given(cottaThreshold))
        plan.rmt = RMT.Configuration(warmUpSamples: 0, prototypeSamples: rows)
        let sourceData: FashionMNISTSource? = plan.needsSource ? try FashionMNISTSource(directory: dataDirectory, seed: 1) : nil
        let running = try naming(model) { () throws(LichenError) in
            try plan.assemble(spec: loaded.spec, store: loaded.store, arena: loaded.arena, source: sourceData)
        }
        // The stream's first frames, outside the budget (the camera's buffer, not Lichen's).
        let perStep = frameMode ? 1 : batch
        let timedSteps = frameMode ? frames : max(5, (frames + batch - 1) / batch)
        // Frame mode: the timed frames start once the window is full (steady state).
        let warmupSteps = frameMode ? max(warmup, window) : warmup
        let totalSteps = warmupSteps + timedSteps
        let available = min(file.frameCount, max(perStep, min(totalSteps * perStep, 8192)))
        let source = try naming("frames") { () throws(LichenError) in try Arena(byteCount: available * file.pixelsPerFrame * 4 + (4 << 20)) }
        var dims = [available]
        dims += loaded.spec.inputShape.dimensions
        let data = try naming(stream) { () throws(LichenError) in
            let t = try source.persistentTensor(.f32, try Shape(dimensions: dims))
            try file.writeFrames(start: 0, count: available, into: t)
            return t
        }
        var cursor = 0
        func nextInput() throws(LichenError) -> TensorView {
            if cursor + perStep > available { cursor = 0 }
            let v = try data.leadingRows(cursor, count: perStep)
            cursor += perStep
            return v
        }
        var samples: [Double] = []
        samples.reserveCapacity(timedSteps)
        try naming(method.name) { () throws(LichenError) in
            for i in 0..<totalSteps {
                let x = try nextInput()
                let t0 = now()
                if frameMode {
                    _ = try running.step(frame: x)
                } else {
                    _ = try running.step(batch: x)
                }
                let dt = now() - t0
                if i >= warmupSteps { samples.append(dt) }
            }
        }
        let total = samples.reduce(0, +)
        samples.sort()
        let stats = loaded.arena.stats
        let rss = processRSS()
        withExtendedLifetime(source) {}
        return Result(method: method, mode: mode, protocolName: frameMode ? "frame" : "batch",
                      setting: prediction.map { "B \(window), K \(every), \($0.name)" } ?? "\(batch)", prediction: prediction,
                      framesPerStep: perStep, steps: samples.count,
                      p50: Self.quantile(samples, 0.5), p99: Self.quantile(samples, 0.99),
                      framesPerSecond: Double(samples.count * perStep) / total,
                      plannedBytes: stats.plannedBytes, persistentBytes: stats.persistentBytes, heapBytes: stats.heapInUseBytes,
                      rss: rss.current, peakRSS: rss.peak)
    }
}
