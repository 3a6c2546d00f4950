import ArgumentParser
import Foundation
import Glibc
import Lichen

/// Set by SIGINT / SIGTERM: the loop finishes its tick and prints its summary.
nonisolated(unsafe) private var serveStopRequested: sig_atomic_t = 0

/// `lichen serve --model M --socket P --stream S [--rate 200] [--seconds N]`: a runtime in a
/// fixed-rate loop over a stream, serving its control endpoint (what the example controller
/// does, from the CLI: for tests, demos and measurements).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a model at a fixed rate over a stream, adapting, with a control socket for `lichen adapters`.",
        discussion: """
            Creates a runtime with the budget, loads the model, starts the control endpoint on --socket, \
            and steps one frame per tick (frames taken from the stream in order, wrapping around) until \
            --seconds or --frames is reached or SIGINT/SIGTERM arrives. Every second it prints steps, \
            step p99 and the active adapters to stderr; at the end a summary (a table, or one JSON \
            document with --json). Step times are measured inside the runtime (adapter pick-up, \
            forward, adaptation); a tick whose step overruns the period starts the next one at once.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var lora: AdaptationLoRAOptions

    @OptionGroup var planOptions: PlanOptions

    @Option(name: .long, help: ArgumentHelp("Model file (GGUF).", valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Control socket to serve.", valueName: "path"))
    var socket: String

    @Option(name: .long, help: ArgumentHelp("Stream file the frames come from.", valueName: "path"))
    var stream: String

    @Option(name: .long, help: ArgumentHelp("Ticks per second (0: as fast as it steps).", valueName: "hz"))
    var rate: Double = 200

    @Option(name: .long, help: ArgumentHelp("Stop after this many seconds.", valueName: "s"))
    var seconds: Double = 10

    @Option(name: .long, help: ArgumentHelp("Stop after this many frames (overrides --seconds).", valueName: "n"))
    var frames: Int?

    @Option(name: .long, help: ArgumentHelp("Adaptation method: source, bn, tent, cotta or rmt (cotta without --cotta-threshold and rmt need --source-pack).",
                                            valueName: "name"))
    var method: String = "source"

    @Option(name: .long, help: ArgumentHelp("Frames between updates predicted from the saved batch statistics (batch 1) or the whole window.",
                                            valueName: "saved|window"))
    var framePredict: String = "saved"

    @Option(name: .long, help: ArgumentHelp("Frames per window (each prediction and update sees them).", valueName: "b"))
    var window: Int = 16

    @Option(name: .long, help: ArgumentHelp("Frames between adaptation steps.", valueName: "k"))
    var every: Int = 16

    @Option(name: .long, help: ArgumentHelp("Memory budget in MiB.", valueName: "mib"))
    var budgetMib: Int = 64

    @Option(name: .long, help: ArgumentHelp("Steps the step-time percentiles cover.", valueName: "n"))
    var metricsWindow: Int = 1024

    @Option(name: .long, parsing: .upToNextOption,
            help: ArgumentHelp("Adapter files a client thread swaps in turn over the socket while the loop runs (a measurement aid).",
                               valueName: "path"))
    var swapBetween: [String] = []

    @Option(name: .long, help: ArgumentHelp("Swaps per second of that client.", valueName: "hz"))
    var swapRate: Double = 20

    @Option(name: .long, help: ArgumentHelp("Adapted-state file: restored at start when it matches the model and method settings (a file that does not is left in place), saved while running and at the end (lichen state show|verify).",
                                            valueName: "path"))
    var state: String?

    @Option(name: .long, help: ArgumentHelp("With --state: save every this many updates (0: not by count).", valueName: "n"))
    var stateEvery: Int = 16

    @Option(name: .long, help: ArgumentHelp("With --state: save every this many seconds (0: not by time).", valueName: "s"))
    var stateEverySeconds: Double = 0

    @Flag(name: .long, help: "With --state: save over a state file that was refused (another model or plan, damaged).")
    var stateOverwrite = false

    func validate() throws {
        guard AdaptationMethod(name: method) != nil else { throw ValidationError("--method must be source, bn, tent, cotta or rmt") }
        guard FrameAdapter.Prediction(name: framePredict) != nil else { throw ValidationError("--frame-predict must be saved or window") }
        if lora.loraRank != nil && planOptions.mode == "full" { throw ValidationError("--lora-rank is for --mode frugal (full mode trains every weight)") }
        guard rate >= 0 && rate <= 100_000 else { throw ValidationError("--rate must be in 0...100000") }
        guard seconds > 0 && seconds <= 31_536_000 else { throw ValidationError("--seconds must be in (0, 31536000] (one year)") }
        if let frames { guard frames >= 1 else { throw ValidationError("--frames must be >= 1") } }
        guard window >= 1 && window <= 4096 && every >= 1 else { throw ValidationError("--window must be in 1...4096 and --every >= 1") }
        guard budgetMib >= 8 && budgetMib <= 1 << 20 else { throw ValidationError("--budget-mib must be at least 8") }
        guard metricsWindow >= 1 && metricsWindow <= 1 << 20 else { throw ValidationError("--metrics-window must be in 1...1048576") }
        guard swapRate > 0 && swapRate <= 10_000 else { throw ValidationError("--swap-rate must be in (0, 10000]") }
        guard stateEvery >= 0 && stateEvery <= 1 << 30 else { throw ValidationError("--state-every must be in 0...1073741824") }
        guard stateEverySeconds.isFinite && stateEverySeconds >= 0 && stateEverySeconds <= 86_400 else {
            throw ValidationError("--state-every-seconds must be in 0...86400")
        }
    }

    /// The runtime's plan from the flags: frame mode, the source pack (if any) as the source data.
    func servePlan() throws(LichenError) -> AdaptationPlan {
        let m = AdaptationMethod(name: method) ?? .source
        let packFrames = try planOptions.sourcePack.map { path throws(LichenError) in try StreamFile(path: path).frameCount } ?? 0
        var p = planOptions.plan(m, framing: .frames(window: window, every: every, prediction: FrameAdapter.Prediction(name: framePredict) ?? .saved),
                                 lora: lora, sourceFrames: packFrames)
        if planOptions.prototypeSamples == nil { p.rmt.prototypeSamples = max(1, packFrames) }
        return p
    }

    func run() throws {
        let file = try naming(stream) { () throws(LichenError) in try StreamFile(path: stream) }
        let runtime = try naming(model) { () throws(LichenError) in
            let rt = try Runtime(budgetBytes: budgetMib << 20,
                                 configuration: RuntimeConfiguration(socketPath: socket, metricsWindow: metricsWindow, statePath: state,
                                                                     stateEveryUpdates: stateEvery, stateEverySeconds: stateEverySeconds,
                                                                     stateOverwrite: stateOverwrite))
            try rt.loadModel(path: model)
            try rt.setMethod(try servePlan())
            return rt
        }
        if let state {
            switch runtime.methodFigures().stateRestore {
            case 1: log("serve: restored the adapted state from \(state)")
            case 2: log("serve: warning: \(state) refused (\(runtime.lastError.map { $0.description } ?? "?")); "
                        + (stateOverwrite ? "it will be overwritten" : "left in place, nothing saved (--state-overwrite replaces it)"))
            default: log("serve: no adapted state at \(state) yet; saving there")
            }
        }
        guard file.pixelsPerFrame == runtime.frameElementCount else {
            throw CommandFailure("\(stream): frames of \(file.pixelsPerFrame) pixels; the model takes \(runtime.frameElementCount) values")
        }
        // The frames as f32 / 255, converted once before the loop.
        let total = frames ?? Int((rate > 0 ? rate * seconds : 1_000_000).rounded(.up))
        let distinct = min(file.frameCount, total)
        let n = runtime.frameElementCount
        var pixels = [Float](repeating: 0, count: distinct * n)
        var labels = [Int](repeating: 0, count: distinct)
        for i in 0..<distinct {
            let p = try naming(stream) { () throws(LichenError) in try file.framePixels(i) }
            for k in 0..<n { pixels[i * n + k] = Float(p[k]) / 255 }
            labels[i] = try naming(stream) { () throws(LichenError) in try file.label(i) }
        }
        signal(SIGINT) { _ in serveStopRequested = 1 }
        signal(SIGTERM) { _ in serveStopRequested = 1 }
        // A parent may have started us with these blocked (posix_spawn passes its mask on).
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        log("serve: \(model) on \(socket), \(method), \(rate) Hz, \(total) frames (budget \(budgetMib) MiB)")

        let swapper = SwapClient(socket: socket, files: swapBetween, rate: swapRate)
        if !swapBetween.isEmpty { swapper.start() }
        defer { swapper.stop() }

        var logits = [Float](repeating: 0, count: runtime.classCount)
        let period = rate > 0 ? UInt64(1e9 / rate) : 0
        let start = Self.now()
        var nextTick = start
        var nextReport = start + 1_000_000_000
        var correct = 0, stepped = 0, overruns = 0
        let deadline = frames == nil ? start + UInt64(seconds * 1e9) : UInt64.max
        while stepped < total && serveStopRequested == 0 && Self.now() < deadline {
            let i = stepped % distinct
            let k = try pixels.withUnsafeBufferPointer { all in
                try logits.withUnsafeMutableBufferPointer { out in
                    try naming("step") { () throws(LichenError) in
                        try runtime.step(frame: UnsafeBufferPointer(rebasing: all[(i * n)..<((i + 1) * n)]), logits: out)
                    }
                }
            }
            if k == labels[i] { correct += 1 }
            stepped += 1
            let t = Self.now()
            if t >= nextReport {
                let s = runtime.status()
                log("serve: \(Int((t - start) / 1_000_000_000)) s  steps \(s.steps)  p99 \(fixed(Double(s.stepP99Nanoseconds) / 1e6, 3)) ms  "
                    + "adapters \(s.activeAdapters) (generation \(s.generation))  swaps \(s.swaps)")
                nextReport += 1_000_000_000
            }
            if period > 0 {
                nextTick += period
                if t < nextTick {
                    Self.sleep(until: nextTick)
                } else {
                    overruns += 1
                    nextTick = t
                }
            }
        }
        swapper.stop()
        let elapsed = Double(Self.now() - start) / 1e9
        let s = runtime.status()
        let f = runtime.methodFigures()
        let calls = swapper.summary()
        let error = stepped > 0 ? 1 - Double(correct) / Double(stepped) : 0
        if global.json {
            print(JSON.object([
                ("model", .string(model)), ("stream", .string(stream)), ("method", .string(s.method)),
                ("rate_hz", .number(rate)), ("seconds", .number(elapsed)), ("steps", .int(Int(s.steps))),
                ("online_error", .number(error)), ("overruns", .int(overruns)), ("swaps", .int(Int(s.swaps))),
                ("active_adapters", .int(s.activeAdapters)),
                ("step_p50_ms", .number(Double(s.stepP50Nanoseconds) / 1e6)),
                ("step_p99_ms", .number(Double(s.stepP99Nanoseconds) / 1e6)),
                ("step_max_ms", .number(Double(s.stepMaxNanoseconds) / 1e6)),
                ("budget_bytes", .int(s.budgetBytes)), ("used_bytes", .int(s.usedBytes)),
                ("metrics_window", .int(runtime.stepTimes.window)),
                ("swap_requests", .int(calls.count)), ("swap_failures", .int(calls.failures)),
                ("swap_request_p50_ms", .number(calls.p50)), ("swap_request_max_ms", .number(calls.max)),
                ("updates", .int(Int(f.updates))), ("learner", .bool(f.learnerRunning)),
                ("dropped_frames", .int(Int(f.droppedFrames))), ("max_learner_lag", .int(Int(f.maximumLearnerLag))),
                ("update_p50_ms", .number(Double(f.updateP50Nanoseconds) / 1e6)), ("update_p99_ms", .number(Double(f.updateP99Nanoseconds) / 1e6)),
                ("guard_resets", .int(Int(f.guardResets))), ("state_restore", .int(Int(f.stateRestore))),
                ("state_saves", .int(Int(f.stateSaves))), ("state_save_failures", .int(Int(f.stateSaveFailures))),
            ]).rendered())
        } else {
            var t = Table(["serve", "value"])
            t.add(["steps", "\(s.steps) in \(fixed(elapsed, 2)) s"])
            t.add(["method", s.method])
            t.add(["online error", fixed(error * 100, 2) + " %"])
            t.add(["overrun ticks", "\(overruns)"])
            t.add(["swaps picked up", "\(s.swaps)"])
            t.add(["active adapters", "\(s.activeAdapters)"])
            t.add(["step p50 / p99 / max", "\(fixed(Double(s.stepP50Nanoseconds) / 1e6, 3)) / \(fixed(Double(s.stepP99Nanoseconds) / 1e6, 3)) / \(fixed(Double(s.stepMaxNanoseconds) / 1e6, 3)) ms (last \(runtime.stepTimes.window) steps)"])
            t.add(["budget used", "\(s.usedBytes) of \(s.budgetBytes) bytes"])
            t.add(["updates", "\(f.updates)" + (f.learnerRunning ? " on the learner thread (\(f.droppedFrames) frames dropped, lag max \(f.maximumLearnerLag))" : " in the step")
                   + (f.updates > 0 ? ", p50 \(fixed(Double(f.updateP50Nanoseconds) / 1e6, 2)) ms" : "")])
            if state != nil { t.add(["state saves", "\(f.stateSaves) (\(f.stateSaveFailures) failed)"]) }
            if calls.count > 0 {
                t.add(["swap requests", "\(calls.count) (\(calls.failures) failed), round trip p50 \(fixed(calls.p50, 3)) / max \(fixed(calls.max, 3)) ms"])
            }
            print(t.rendered())
        }
    }

    /// A control client on its own thread: swaps the files in turn at `rate` per second over
    /// the socket, timing each round trip (load, validation and set build on the runtime's side).
    final class SwapClient: @unchecked Sendable {
        let socket: String
        let files: [String]
        let rate: Double
        private let lock = NSLock()
        private var running = false
        private var finished = true
        private var times: [Double] = []
        private var failures = 0

        init(socket: String, files: [String], rate: Double) {
            self.socket = socket
            self.files = files
            self.rate = rate
        }

        func start() {
            running = true
            finished = false
            Thread { self.loop() }.start()
        }

        private func loop() {
            var k = 0
            var next = ServeCommand.now()
            let period = UInt64(1e9 / rate)
            while true {
                lock.lock()
                let go = running
                lock.unlock()
                if !go { break }
                let path = files[k % files.count]
                k += 1
                let t0 = ServeCommand.now()
                let ok = (try? AdaptersCommand.call(socket, .swap([ControlAdapterSpec(path: path, scale: 1)]), timeoutMs: 10_000))?.status == .ok
                let ms = Double(ServeCommand.now() - t0) / 1e6
                lock.lock()
                times.append(ms)
                if !ok { failures += 1 }
                lock.unlock()
                next += period
                ServeCommand.sleep(until: next)
            }
            lock.lock()
            finished = true
            lock.unlock()
        }

        func stop() {
            lock.lock()
            running = false
            lock.unlock()
            while true {
                lock.lock()
                let done = finished
                lock.unlock()
                if done { return }
                usleep(1000)
            }
        }

        func summary() -> (count: Int, failures: Int, p50: Double, max: Double) {
            lock.lock()
            defer { lock.unlock() }
            let sorted = times.sorted()
            guard !sorted.isEmpty else { return (0, failures, 0, 0) }
            return (sorted.count, failures, sorted[(sorted.count + 1) / 2 - 1], sorted[sorted.count - 1])
        }
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func sleep(until t: UInt64) {
        var ts = timespec(tv_sec: Int(t / 1_000_000_000), tv_nsec: Int(t % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {
            if serveStopRequested != 0 { return }
        }
    }
}
