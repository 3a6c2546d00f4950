import ArgumentParser
import Foundation
import Lichen

/// `lichen adapt --model M.gguf --stream S --method source|bn|tent [--compare m1,m2,..]
/// [--mode frugal|full] [--batch N] [--json]`: online test-time adaptation over a stream.
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
            layers' scale and shift, --mode full every f32 parameter and needs an f32 model). \
            Prints one row per method, one column per domain and the mean over domains, in %; \
            --json prints one document whose errors are fractions in [0, 1].
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("Model file (GGUF).", valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Stream file (lichen stream make).", valueName: "path"))
    var stream: String

    @Option(name: .long, help: ArgumentHelp("Method: source, bn or tent.", valueName: "name"))
    var method: String?

    @Option(name: .long, help: ArgumentHelp("Methods to run one after another, comma-separated (e.g. source,bn,tent).",
                                            valueName: "m1,m2,.."))
    var compare: String?

    @Option(name: .long, help: ArgumentHelp("What Tent trains: frugal (norm scale and shift) or full (every f32 parameter).",
                                            valueName: "frugal|full"))
    var mode: String = "frugal"

    @Option(name: .long, help: ArgumentHelp("Frames per batch (the reference uses 200).", valueName: "n"))
    var batch: Int = 200

    @Option(name: .long, help: ArgumentHelp("Memory budget per method, in MiB.", valueName: "MiB"))
    var budget: Int = 256

    static let available = ["source", "bn", "tent"]
    static let planned = ["cotta", "rmt"]

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
        guard AdaptationMode(name: mode) != nil else { throw ValidationError("--mode must be frugal or full") }
        guard batch >= 1 && batch <= 10_000 else { throw ValidationError("--batch must be in 1...10000") }
        guard budget >= 16 && budget <= 1 << 16 else { throw ValidationError("--budget must be in 16...65536 MiB") }
    }

    /// Correct and total counts of one method, per domain record of the stream.
    struct Outcome {
        let method: AdaptationMethod
        let perRecord: [Accuracy]
        let seconds: Double
    }

    func run() throws {
        let methods = try methods()
        let adaptationMode = AdaptationMode(name: mode) ?? .frugal
        let file = try openStream(stream)
        var outcomes: [Outcome] = []
        var architecture = ""
        for method in methods {
            let outcome = try run(method, mode: adaptationMode, file: file, architecture: &architecture)
            outcomes.append(outcome)
        }
        report(outcomes, mode: adaptationMode, file: file, architecture: architecture)
    }

    /// One method over the whole stream, from a freshly loaded model.
    func run(_ method: AdaptationMethod, mode: AdaptationMode, file: StreamFile, architecture: inout String) throws -> Outcome {
        let loaded = try LoadedModel(path: model, budgetBytes: budget << 20, trainable: false)
        let spec = loaded.spec
        architecture = spec.architecture
        try requireStreamFits(file, path: stream, model: loaded)
        let (input, labels) = try batchBuffers(loaded, batch: batch)
        let session = try naming(model) { () throws(LichenError) in
            try AdaptationSession(method: method, spec: spec, store: loaded.store, batchSize: batch, arena: loaded.arena,
                                  mode: mode)
        }
        let start = Date()
        let progress = ProgressBar("adapt \(method.name)", total: file.frameCount, enabled: stderrIsTerminal || global.verbose)
        let perRecord = try streamAccuracy(file, path: stream, input: input, labels: labels, batch: batch, progress: progress) { x in
            try naming(method.name) { () throws(LichenError) in try session.step(batch: x) }
        }
        if global.verbose {
            for (record, accuracy) in zip(file.domains, perRecord) {
                log("\(method.name): \(record.name) severity \(record.severity): error \(fixed(100 * (1 - accuracy.fraction), 2)) %")
            }
        }
        return Outcome(method: method, perRecord: perRecord, seconds: Date().timeIntervalSince(start))
    }

    func report(_ outcomes: [Outcome], mode: AdaptationMode, file: StreamFile, architecture: String) {
        let groups = domainGroups(file)
        func errors(_ o: Outcome) -> (perDomain: [Double], mean: Double, frames: Int) {
            var e: [Double] = []
            var total = 0
            for g in groups {
                let c = o.perRecord[g.records].reduce(0) { $0 + $1.correct }
                let t = o.perRecord[g.records].reduce(0) { $0 + $1.total }
                e.append(t == 0 ? 0 : 1 - Double(c) / Double(t))
                total += t
            }
            return (e, e.isEmpty ? 0 : e.reduce(0, +) / Double(e.count), total)
        }
        func modeName(_ m: AdaptationMethod) -> String? { m == .tent ? mode.name : nil }
        if global.json {
            var methods: [JSON] = []
            for o in outcomes {
                let (perDomain, mean, _) = errors(o)
                var domains: [JSON] = []
                for (g, e) in zip(groups, perDomain) {
                    var pairs: [(String, JSON)] = [("name", .string(g.name)), ("severity", .int(g.severity))]
                    if g.severities.count > 1 { pairs.append(("severities", .array(g.severities.map { .int($0) }))) }
                    pairs += [("frames", .int(g.frameCount)), ("error", .number(e))]
                    domains.append(.object(pairs))
                }
                methods.append(.object([
                    ("method", .string(o.method.name)),
                    ("mode", modeName(o.method).map { .string($0) } ?? .null),
                    ("domains", .array(domains)),
                    ("mean_error", .number(mean)),
                    ("seconds", .number(o.seconds)),
                ]))
            }
            let doc: JSON = .object([
                ("model", .string(model)),
                ("architecture", .string(architecture)),
                ("stream", .string(stream)),
                ("kind", .string(file.kind.name)),
                ("seed", .string(String(file.seed))),
                ("batch", .int(batch)),
                ("methods", .array(methods)),
            ])
            print(doc.rendered())
            return
        }
        var header = ["method"]
        var used: [String: Int] = [:]
        for g in groups {
            let short = g.name.split(separator: "_").first.map(String.init) ?? g.name
            used[short, default: 0] += 1
            header.append(short)
        }
        for (i, g) in groups.enumerated() where used[header[i + 1], default: 0] > 1 {
            header[i + 1] += "-" + g.severityText
        }
        header.append("mean")
        var table = Table(header, rightAligned: Set(1..<header.count))
        var frames = 0
        for o in outcomes {
            let (perDomain, mean, total) = errors(o)
            frames = total
            let label = modeName(o.method).map { "\(o.method.name) (\($0))" } ?? o.method.name
            table.add([label] + perDomain.map { fixed(100 * $0, 1) } + [fixed(100 * mean, 1)])
        }
        let severities = Set(groups.map(\.severityText))
        let severityNote = severities.count == 1 ? "severity \(severities.first!)" : "severities as listed by lichen stream show"
        print("online error (%) per domain, \(file.kind.name) stream \(stream) (\(severityNote), \(frames) frames, batch \(batch)):")
        print("")
        print(table.rendered())
        print("")
        let times = outcomes.map { "\($0.method.name) \(fixed($0.seconds, 2)) s" }.joined(separator: ", ")
        print("\(model): \(architecture), \(groups.count) domains; \(times)")
    }
}
