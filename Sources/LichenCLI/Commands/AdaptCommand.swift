import ArgumentParser
import Foundation
import Lichen

/// `lichen adapt --model M.gguf --stream S --method source|bn|tent [--compare m1,m2,..]
/// [--mode frugal|full] [--lora-rank r [--lora-alpha a] [--lora-targets list]]
/// [--batch N | --window B --every K [--frame-predict window|saved]] [--passes N] [--guard BOUND]
/// [--reset-every N] [--plot out.svg] [--json]`: online test-time adaptation over a stream.
struct AdaptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapt",
        abstract: "Online test-time adaptation over a stream: error per domain of each method.",
        discussion: """
            Each method starts from the model as stored (it is reloaded between methods) and runs \
            over the whole stream in order, with no reset between domains, in batches of --batch \
            frames inside each domain record. Every batch is predicted and then adapted on; the \
            error (1 - top-1 accuracy) counts the prediction made before the batch's update. \
            Methods: source (running statistics, no updates), bn (batch statistics in every \
            forward, no parameter changes), tent (batch statistics; one Adam step per batch, lr \
            1e-3, betas 0.9/0.999, on the mean softmax entropy; --mode frugal trains the norm \
            layers' scale and shift, --mode full every f32 parameter and needs an f32 model), cotta \
            (EMA teacher, augmentation-averaged teacher logits when the anchor's mean confidence is \
            below a threshold computed from the source model on the Fashion-MNIST training images, \
            soft cross-entropy, Adam lr 1e-3, stochastic restore; same modes), rmt (symmetric \
            cross-entropy against an EMA teacher on a clean and an augmented view, contrastive loss \
            towards source class prototypes, source replay, warm-up on source data; same modes). \
            --lora-rank r adds a LoRA adapter to frugal mode's trainables for tent, cotta and rmt: \
            y = W x + (alpha / r) B (A x) on the --lora-targets layers (conv, linear, or layer \
            names; default conv,linear), over the frozen base; B starts at 0, so the model starts \
            as stored; A and B are trained, copied into teacher and anchor, restored and reset \
            like the norm parameters. \
            Frame mode (--window B [--every K], K defaults to B): frames arrive one at a time; \
            each frame is predicted from the window of the last B frames ending at it, and the \
            method adapts on that window every K frames once it is full (K = B makes the same \
            updates as --batch B). --frame-predict saved (the default) predicts a frame between \
            updates with a batch-1 forward normalised with the batch statistics saved by the last \
            update's forward over the window (cotta: the EMA teacher; rmt: student + teacher); \
            --frame-predict window forwards the whole window ending at the frame (exact, B times \
            the cost; cotta and rmt: the student). --passes N runs the stream N times without reset and reports \
            every pass. --guard BOUND resets the trainables to the stored model when the effective \
            number of predicted classes over the last --guard-window predictions (W^2 / sum of \
            squared class counts) falls under BOUND; --reset-every N resets every N frames. \
            Prints one row per method (and pass), one column per domain and the mean over domains, \
            in %; --json prints one document whose errors are fractions in [0, 1]. --plot writes \
            the error per domain of each method as an SVG bar chart. \
            --learn lrh|lrr|constant (frame mode, source method) adds online supervised learning, \
            for a robot with a trusted source of labels: after each frame is predicted, every \
            --learn-every-th frame's stream label is learned from (the runtime's lichen_learn): \
            every f32 parameter (a quantized model: its biases and norm parameters) by plain SGD \
            over minibatches of 10 at a learning rate eta that stays --learn-rate (constant) or is \
            regulated by LRR or LRH (Sources/Lichen/Homeostasis/README.md; classes 5 and above \
            excitatory). The error still counts the prediction made before the frame's update.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var lora: AdaptationLoRAOptions

    @OptionGroup var planOptions: PlanOptions

    @Option(name: .long, help: ArgumentHelp("Model file (GGUF).", valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Stream file (lichen stream make).", valueName: "path"))
    var stream: String

    @Option(name: .long, help: ArgumentHelp("Method: source, bn, tent, cotta or rmt.", valueName: "name"))
    var method: String?

    @Option(name: .long, help: ArgumentHelp("Methods to run one after another, comma-separated (e.g. source,bn,tent).",
                                            valueName: "m1,m2,.."))
    var compare: String?

    @Option(name: .long, help: ArgumentHelp("Frames per batch (the reference uses 200; default 200).", valueName: "n"))
    var batch: Int?

    @Option(name: .long, help: ArgumentHelp("Frame mode: predict each frame from the window of the last B frames.", valueName: "B"))
    var window: Int?

    @Option(name: .long, help: ArgumentHelp("Frame mode: adapt on the window every K frames (default: B).", valueName: "K"))
    var every: Int?

    @Option(name: .long, help: ArgumentHelp("Frame mode: predict frames between updates from the saved batch statistics (batch 1) or the whole window.",
                                            valueName: "saved|window"))
    var framePredict: String?

    @Option(name: .long, help: ArgumentHelp("Run the stream this many times without reset.", valueName: "n"))
    var passes: Int = 1

    @Option(name: .long, help: ArgumentHelp("Write the error per domain of each method as an SVG bar chart.", valueName: "out.svg"))
    var plot: String?

    @Option(name: .long, help: ArgumentHelp("Frame mode: write each frame's predicted class (first pass), one line per frame, \"method frame class\" (-1: frame refused), to this file.",
                                            valueName: "path"))
    var predictions: String?

    @Option(name: .long, help: ArgumentHelp("Memory budget per method, in MiB.", valueName: "MiB"))
    var budget: Int = 256

    @Option(name: .long, help: ArgumentHelp("Frame mode, source method: learn online from the stream's labels with this learning-rate policy.",
                                            valueName: "lrh|lrr|constant"))
    var learn: String?

    @Option(name: .long, help: ArgumentHelp("--learn: eta at the start (constant: throughout); Delta is a tenth of it.", valueName: "eta"))
    var learnRate: Double = 1e-3

    @Option(name: .long, help: ArgumentHelp("--learn: learn from every N-th frame's label (1: every frame).", valueName: "N"))
    var learnEvery: Int = 1

    static let available = ["source", "bn", "tent", "cotta", "rmt"]
    static let planned: [String] = []

    /// The methods to run, in order.
    func methods() throws -> [AdaptationMethod] {
        var names: [String] = []
        if let method { names.append(method) }
        if let compare {
            for part in compare.split(separator: ",", omittingEmptySubsequences: false) {
                let name = part.trimmingCharacters(in: .whitespaces)
                if !names.contains(name) { names.append(name) }
            }
        }
        guard !names.isEmpty else { throw ValidationError("give --method NAME or --compare m1,m2,..") }
        var out: [AdaptationMethod] = []
        for name in names {
            if Self.planned.contains(name) {
                throw ValidationError("method '\(name)' is not available yet; available: \(Self.available.joined(separator: ", "))")
            }
            guard let m = AdaptationMethod(name: name) else {
                throw ValidationError("unknown method '\(name)'; available: \(Self.available.joined(separator: ", "))")
            }
            out.append(m)
        }
        return out
    }

    func validate() throws {
        _ = try methods()
        if lora.loraRank != nil && planOptions.mode == "full" { throw ValidationError("--lora-rank is for --mode frugal (full mode trains every weight)") }
        if let batch, !(batch >= 1 && batch <= AdaptationPlan.maximumRows) { throw ValidationError("--batch must be in 1...4096") }
        if window != nil && batch != nil { throw ValidationError("give --batch N or --window B [--every K], not both") }
        if every != nil && window == nil { throw ValidationError("--every needs --window") }
        if let framePredict {
            guard window != nil else { throw ValidationError("--frame-predict needs --window") }
            guard FrameAdapter.Prediction(name: framePredict) != nil else { throw ValidationError("--frame-predict must be saved or window") }
        }
        if let window, !(window >= 1 && window <= AdaptationPlan.maximumRows) { throw ValidationError("--window must be in 1...4096") }
        if let every, !(every >= 1 && every <= 1_000_000) { throw ValidationError("--every must be in 1...1000000") }
        guard passes >= 1 && passes <= 1000 else { throw ValidationError("--passes must be in 1...1000") }
        if predictions != nil && window == nil { throw ValidationError("--predictions needs frame mode (--window)") }
        guard budget >= 16 && budget <= 1 << 16 else { throw ValidationError("--budget must be in 16...65536 MiB") }
        if let learn {
            guard LearningRatePolicy(name: learn) != nil else { throw ValidationError("--learn must be lrh, lrr or constant") }
            guard window != nil else { throw ValidationError("--learn needs frame mode (--window)") }
            guard learnRate.isFinite && learnRate >= 0 && learnRate <= 1e3 else { throw ValidationError("--learn-rate must be in 0...1000") }
            guard learnEvery >= 1 && learnEvery <= 1_000_000 else { throw ValidationError("--learn-every must be in 1...1000000") }
        }
    }

    /// Online learning's settings (--learn), else nil: the paper's constants at --learn-rate.
    var learning: HomeostasisConfiguration? {
        guard let learn, let policy = LearningRatePolicy(name: learn) else { return nil }
        return HomeostasisConfiguration(policy: policy, initialLearningRate: learnRate, step: learnRate / 10, effects: [],
                                        seed: planOptions.seed)
    }

    /// Frame mode's prediction between updates (`FrameAdapter`'s default unless --frame-predict).
    var framePrediction: FrameAdapter.Prediction { framePredict.flatMap { FrameAdapter.Prediction(name: $0) } ?? .saved }

    /// The batch size of batch mode (nil in frame mode).
    var batchSize: Int? { window == nil ? (batch ?? 200) : nil }

    /// Batches of --batch, or frames with --window.
    var framing: AdaptationPlan.Framing {
        if let window { return .frames(window: window, every: every ?? window, prediction: framePrediction) }
        return .batch(size: batchSize ?? 200)
    }

    /// Correct and total counts of one method, per domain record of the stream, per pass.
    struct Outcome {
        let method: AdaptationMethod
        let passes: [[Accuracy]]
        /// Resets (collapse, periodic) in each pass.
        let collapseResets: [Int]
        let periodicResets: [Int]
        /// Frames refused as bad input (skipped, not scored).
        let rejectedFrames: Int
        let adaptationSteps: Int
        /// Online learning's figures (--learn), else nil.
        let learned: LearnedFigures?
        let seconds: Double
        /// Values trained (store parameters and LoRA A, B).
        let trainedValues: Int
        var perRecord: [Accuracy] { passes[0] }
    }

    /// What online learning did over a method's run.
    struct LearnedFigures {
        let samples: Int, updates: Int, decisions: Int, taken: Int
        let rate: Double
    }

    func run() throws {
        let methods = try methods()
        if let predictions { FileManager.default.createFile(atPath: predictions, contents: nil) }
        let adaptationMode = planOptions.adaptationMode
        let file = try openStream(stream)
        var outcomes: [Outcome] = []
        var architecture = ""
        for method in methods {
            let outcome = try run(method, mode: adaptationMode, file: file, architecture: &architecture)
            outcomes.append(outcome)
        }
        try report(outcomes, mode: adaptationMode, file: file, architecture: architecture)
    }

    /// One method over the whole stream (`passes` times), from a freshly loaded model.
    func run(_ method: AdaptationMethod, mode: AdaptationMode, file: StreamFile, architecture: inout String) throws -> Outcome {
        let loaded = try LoadedModel(path: model, budgetBytes: budget << 20, trainable: false)
        let spec = loaded.spec
        architecture = spec.architecture
        try requireStreamFits(file, path: stream, model: loaded)
        let provider = try planOptions.provider(for: method)
        var plan = planOptions.plan(method, framing: framing, lora: lora,
                                    sourceFrames: try planOptions.sourceFrameCount(for: method, provider: provider))
        plan.learning = learning
        let (input, labels) = try batchBuffers(loaded, batch: batchSize ?? 1)
        if method == .rmt { log("rmt: prototypes and \(plan.rmt.warmUpSamples / plan.framing.rows) warm-up steps on \(planOptions.sourceText)") }
        let running = try naming(model) { () throws(LichenError) in
            try plan.assemble(spec: spec, store: loaded.store, arena: loaded.arena, source: provider)
        }
        if let threshold = running.cottaThreshold, planOptions.cottaThreshold == nil {
            log("cotta: threshold \(fixed(Double(threshold), 4)) from \(planOptions.sourceText)")
        }
        let session = running.session
        if let adapter = session.loraAdapter {
            log("\(method.name): \(session.trainedValueCount) trained values, of which \(session.trainedValueCount - normValues(session)) in "
                + "\(lora.text ?? "LoRA") (\(adapter.targets.map { $0.weightName }.joined(separator: ", ")))")
        }
        let frames = running.frames
        let watch = running.collapseGuard
        let rows = plan.framing.rows
        let start = Date()
        var passes: [[Accuracy]] = []
        var collapseResets: [Int] = [], periodicResets: [Int] = []
        var frameIndex = 0
        for pass in 1...self.passes {
            let label = self.passes > 1 ? "adapt \(method.name) pass \(pass)/\(self.passes)" : "adapt \(method.name)"
            let progress = ProgressBar(label, total: file.frameCount, enabled: (stderrIsTerminal && !global.json) || global.verbose)
            let collapsesBefore = watch?.collapseResetCount ?? 0, periodicBefore = watch?.periodicResetCount ?? 0
            func observe() {
                guard let watch, running.lastVerdict != .none, global.verbose else { return }
                let verdict = running.lastVerdict
                log("\(method.name): pass \(pass): \(verdict == .collapseReset ? "collapse" : "periodic") reset after prediction \(watch.lastResetAt)"
                    + (verdict == .collapseReset ? " (effective classes \(fixed(watch.lastEffectiveClasses, 2)))" : ""))
            }
            let perRecord: [Accuracy]
            if frames != nil {
                var classes: [Int] = []
                defer { if pass == 1, let predictions { appendPredictions(classes, method: method, to: predictions) } }
                perRecord = try frameAccuracy(file, path: stream, input: input, labels: labels, progress: progress) { x in
                    let z: TensorView
                    do throws(LichenError) {
                        z = try running.step(frame: x)
                        if predictions != nil { classes.append(try CollapseGuard.topClass(z.f32Elements("logits"), row: 0, classes: z.shape[1])) }
                        if running.learning != nil && frameIndex % learnEvery == 0 {
                            // The logits stay valid: learning runs on its own graph.
                            _ = try running.learn(frame: x, label: Int(try labels.f32Elements("labels")[0]))
                        }
                        frameIndex += 1
                    } catch {
                        switch error {
                        case .nonFiniteValue, .shapeMismatch:
                            if global.verbose { log("\(method.name): frame skipped: \(error.description)") }
                            if predictions != nil { classes.append(-1) }
                            return nil
                        default:
                            throw CommandFailure("\(method.name): \(error.description)")
                        }
                    }
                    observe()
                    return z
                }
            } else {
                perRecord = try streamAccuracy(file, path: stream, input: input, labels: labels, batch: rows, progress: progress) { x in
                    let z = try naming(method.name) { () throws(LichenError) in try running.step(batch: x) }
                    observe()
                    return z
                }
            }
            passes.append(perRecord)
            collapseResets.append((watch?.collapseResetCount ?? 0) - collapsesBefore)
            periodicResets.append((watch?.periodicResetCount ?? 0) - periodicBefore)
            if global.verbose {
                for (record, accuracy) in zip(file.domains, perRecord) {
                    log("\(method.name): pass \(pass): \(record.name) severity \(record.severity): error \(fixed(100 * (1 - accuracy.fraction), 2)) %")
                }
            }
        }
        let learned = running.learning.map { l in
            LearnedFigures(samples: l.sampleCount, updates: l.learner.updateCount, decisions: l.learner.decisionCount,
                           taken: l.learner.takenCount, rate: l.learner.learningRate)
        }
        if let learned {
            log("\(method.name): learned from \(learned.samples) labelled frames (\(learned.updates) updates, \(learned.decisions) decisions, "
                + "\(learned.taken) taken), eta at the end \(String(format: "%.3e", learned.rate))")
        }
        return Outcome(method: method, passes: passes, collapseResets: collapseResets, periodicResets: periodicResets,
                       rejectedFrames: frames?.rejectedFrameCount ?? 0, adaptationSteps: frames?.adaptationCount ?? running.batchCount,
                       learned: learned, seconds: Date().timeIntervalSince(start), trainedValues: session.trainedValueCount)
    }

    /// Appends "method frame class" lines to the --predictions file.
    func appendPredictions(_ classes: [Int], method: AdaptationMethod, to path: String) {
        var text = ""
        for (i, k) in classes.enumerated() { text += "\(method.name) \(i) \(k)\n" }
        if let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(text.data(using: .utf8) ?? Data())
            handle.closeFile()
        }
    }

    /// Values of the store parameters a session trains (the norm parameters in frugal mode).
    func normValues(_ session: AdaptationSession) -> Int {
        session.trainedParameters.reduce(0) { $0 + session.store[$1].value.elementCount }
    }

    func report(_ outcomes: [Outcome], mode: AdaptationMode, file: StreamFile, architecture: String) throws {
        let groups = domainGroups(file)
        func errors(_ perRecord: [Accuracy]) -> (perDomain: [Double], mean: Double, frames: Int) {
            var e: [Double] = []
            var total = 0
            for g in groups {
                let c = perRecord[g.records].reduce(0) { $0 + $1.correct }
                let t = perRecord[g.records].reduce(0) { $0 + $1.total }
                e.append(t == 0 ? 0 : 1 - Double(c) / Double(t))
                total += t
            }
            return (e, e.isEmpty ? 0 : e.reduce(0, +) / Double(e.count), total)
        }
        func modeName(_ m: AdaptationMethod) -> String? { m == .source || m == .bnAdapt ? nil : mode.name }
        func label(_ o: Outcome) -> String {
            let suffix = lora.loraRank.map { r in "+lora r\(r)" } ?? ""
            return modeName(o.method).map { m in "\(o.method.name) (\(m)\(suffix))" } ?? o.method.name
        }
        let resetting = planOptions.guard != nil || planOptions.resetEvery != nil
        if let plot {
            var series: [(name: String, values: [Double])] = []
            for o in outcomes {
                let shown = passes == 1 ? [0] : [0, passes - 1]
                for p in shown {
                    let (perDomain, mean, _) = errors(o.passes[p])
                    let name = passes == 1 ? label(o) : "\(label(o)), pass \(p + 1)"
                    series.append((name, (perDomain + [mean]).map { 100 * $0 }))
                }
            }
            let chart = GroupedBarChart(
                title: "online error per domain, \(file.kind.name) stream, \(modeText)",
                xLabel: "domain", yLabel: "online error (%)", categories: groups.map(\.name) + ["mean"], series: series)
            do {
                try chart.svg().write(toFile: plot, atomically: true, encoding: .utf8)
            } catch {
                throw CommandFailure("\(plot): cannot write the plot: \(error.localizedDescription)")
            }
        }
        if global.json {
            var methods: [JSON] = []
            for o in outcomes {
                func domainList(_ perRecord: [Accuracy]) -> (JSON, Double) {
                    let (perDomain, mean, _) = errors(perRecord)
                    var domains: [JSON] = []
                    for (g, e) in zip(groups, perDomain) {
                        var pairs: [(String, JSON)] = [("name", .string(g.name)), ("severity", .int(g.severity))]
                        if g.severities.count > 1 { pairs.append(("severities", .array(g.severities.map { .int($0) }))) }
                        pairs += [("frames", .int(g.frameCount)), ("error", .number(e))]
                        domains.append(.object(pairs))
                    }
                    return (.array(domains), mean)
                }
                let (first, firstMean) = domainList(o.passes[0])
                var passList: [JSON] = []
                for (p, perRecord) in o.passes.enumerated() {
                    let (domains, mean) = domainList(perRecord)
                    passList.append(.object([
                        ("pass", .int(p + 1)), ("domains", domains), ("mean_error", .number(mean)),
                        ("collapse_resets", .int(o.collapseResets[p])), ("periodic_resets", .int(o.periodicResets[p])),
                    ]))
                }
                methods.append(.object([
                    ("method", .string(o.method.name)),
                    ("mode", modeName(o.method).map { .string($0) } ?? .null),
                    ("domains", first),
                    ("mean_error", .number(firstMean)),
                    ("passes", .array(passList)),
                    ("resets", .int(o.collapseResets.reduce(0, +) + o.periodicResets.reduce(0, +))),
                    ("rejected_frames", .int(o.rejectedFrames)),
                    ("adaptation_steps", .int(o.adaptationSteps)),
                    ("learning", o.learned.map { l in
                        .object([("policy", .string(learn ?? "")), ("samples", .int(l.samples)), ("updates", .int(l.updates)),
                                 ("decisions", .int(l.decisions)), ("taken", .int(l.taken)), ("rate_end", .number(l.rate))])
                    } ?? .null),
                    ("trained_values", .int(o.trainedValues)),
                    ("seconds", .number(o.seconds)),
                ]))
            }
            var pairs: [(String, JSON)] = [
                ("model", .string(model)),
                ("architecture", .string(architecture)),
                ("stream", .string(stream)),
                ("kind", .string(file.kind.name)),
                ("seed", .string(String(file.seed))),
                ("protocol", .string(window == nil ? "batch" : "frame")),
                ("batch", batchSize.map { .int($0) } ?? .null),
                ("window", window.map { .int($0) } ?? .null),
                ("every", window.map { _ in .int(every ?? window ?? 0) } ?? .null),
                ("frame_predict", window.map { _ in .string(framePrediction.name) } ?? .null),
                ("passes", .int(passes)),
            ]
            pairs.append(("guard", planOptions.guard.map { .object([("min_effective_classes", .number($0)), ("window", .int(planOptions.guardWindow))]) } ?? .null))
            pairs.append(("reset_every", planOptions.resetEvery.map { .int($0) } ?? .null))
            pairs.append(("lora", lora.json(trainedValues: nil)))
            pairs.append(("learn", learn.map { name in
                .object([("policy", .string(name)), ("rate", .number(learnRate)), ("every", .int(learnEvery))])
            } ?? .null))
            pairs.append(("methods", .array(methods)))
            print(JSON.object(pairs).rendered())
            return
        }
        var header = ["method"]
        if passes > 1 { header.append("pass") }
        let firstDomain = header.count
        var used: [String: Int] = [:]
        for g in groups {
            let short = g.name.split(separator: "_").first.map(String.init) ?? g.name
            used[short, default: 0] += 1
            header.append(short)
        }
        for (i, g) in groups.enumerated() where used[header[i + firstDomain], default: 0] > 1 {
            header[i + firstDomain] += "-" + g.severityText
        }
        header.append("mean")
        if resetting { header.append("resets") }
        var table = Table(header, rightAligned: Set(1..<header.count))
        var frames = 0
        for o in outcomes {
            for (p, perRecord) in o.passes.enumerated() {
                let (perDomain, mean, total) = errors(perRecord)
                frames = total
                var row = [label(o)]
                if passes > 1 { row.append(String(p + 1)) }
                row += perDomain.map { fixed(100 * $0, 1) } + [fixed(100 * mean, 1)]
                if resetting { row.append(String(o.collapseResets[p] + o.periodicResets[p])) }
                table.add(row)
            }
        }
        let severities = Set(groups.map(\.severityText))
        let severityNote = severities.count == 1 ? "severity \(severities.first!)" : "severities as listed by lichen stream show"
        print("online error (%) per domain, \(file.kind.name) stream \(stream) (\(severityNote), \(frames) frames, \(modeText)):")
        print("")
        print(table.rendered())
        print("")
        let times = outcomes.map { "\($0.method.name) \(fixed($0.seconds, 2)) s" }.joined(separator: ", ")
        print("\(model): \(architecture), \(groups.count) domains; \(times)")
        if passes > 1 {
            let means = outcomes.map { o in
                "\(label(o)): " + o.passes.map { fixed(100 * errors($0).mean, 1) }.joined(separator: " ")
            }
            print("mean error (%) by pass: " + means.joined(separator: "; "))
        }
        if resetting {
            let what = [planOptions.guard.map { "guard: effective classes under \(fixed($0, 2)) over \(planOptions.guardWindow) predictions" },
                        planOptions.resetEvery.map { "reset every \($0) frames" }].compactMap { $0 }.joined(separator: ", ")
            let counts = outcomes.map { "\($0.method.name) \($0.collapseResets.reduce(0, +)) collapse + \($0.periodicResets.reduce(0, +)) periodic" }
            print("resets (\(what)): " + counts.joined(separator: ", "))
        }
        let rejected = outcomes.reduce(0) { $0 + $1.rejectedFrames }
        if rejected > 0 { print("frames skipped as bad input: \(rejected)") }
        for o in outcomes {
            guard let l = o.learned else { continue }
            print("online learning (\(learn ?? ""), eta0 \(learnRate), every \(learnEvery) frame(s)): \(o.method.name) learned from \(l.samples) labelled frames, "
                  + "\(l.updates) updates, \(l.decisions) decisions (\(l.taken) taken), eta at the end \(String(format: "%.3e", l.rate))")
        }
    }

    /// "batch 200" or "frame mode, window 64, every 16".
    var modeText: String {
        let loraText = lora.text.map { ", " + $0 } ?? ""
        if let window { return "frame mode, window \(window), every \(every ?? window), \(framePrediction.name) prediction" + loraText }
        return "batch \(batchSize ?? 200)" + loraText
    }
}
