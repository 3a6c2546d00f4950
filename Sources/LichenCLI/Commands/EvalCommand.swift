import ArgumentParser
import Foundation
import Lichen

/// `lichen eval --model M.gguf [--stream S] [--json]`: clean test accuracy on Fashion-MNIST, or
/// the source model's error on each domain of a stream file; `--adapter A.gguf[:scale]`
/// (repeatable) applies LoRA adapters unmerged.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Clean test accuracy of a model on the Fashion-MNIST test images, or its error on a stream.",
        discussion: """
            The model runs for inference (batch norm with its running statistics), quantized weights \
            straight from the mapped file. Prints the accuracy and the accuracy per class; --json prints \
            one document whose error rates and accuracies are fractions in [0, 1]. With --stream: the \
            source model's error (1 - accuracy) on each domain of the stream and the mean over domains, \
            one column per domain (a gradual domain counts all its severity segments). \
            --adapter A.gguf[:scale] (repeatable) applies LoRA adapter files for this model, unmerged, each \
            with its scale (default 1); an adapter of another base model is refused.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("Model file (GGUF).", valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Folder holding the Fashion-MNIST IDX .gz files.", valueName: "path"))
    var dataDirectory: String = FashionMNIST.defaultDirectory

    @Option(name: .long, help: ArgumentHelp("Examples per forward.", valueName: "n"))
    var batch: Int = 200

    @Option(name: .long, help: ArgumentHelp("Evaluate the first n test images only (default: all 10,000).", valueName: "n"))
    var limit: Int?

    @Option(name: .long, help: ArgumentHelp("Stream file (lichen stream make): error per domain.", valueName: "path"))
    var stream: String?

    @Option(name: .long, help: ArgumentHelp("Memory budget, in MiB.", valueName: "MiB"))
    var budget: Int = 256

    @Option(name: .long, help: ArgumentHelp("A LoRA adapter file to apply, with an optional scale (repeatable).",
                                            valueName: "path[:scale]"))
    var adapter: [String] = []

    func validate() throws {
        guard batch >= 1 && batch <= 10_000 else { throw ValidationError("--batch must be in 1...10000") }
        guard budget >= 16 && budget <= 1 << 16 else { throw ValidationError("--budget must be in 16...65536 MiB") }
        if let limit { guard limit >= 1 && limit <= 10_000 else { throw ValidationError("--limit must be in 1...10000") } }
        if stream != nil && limit != nil { throw ValidationError("--limit is for the test set; a stream is evaluated whole") }
        for a in adapter { _ = try EvalCommand.adapterArgument(a) }
    }

    /// (path, scale) of `path[:scale]`; the text after the last colon is a scale when it parses as one.
    static func adapterArgument(_ text: String) throws -> (path: String, scale: Float) {
        if let colon = text.lastIndex(of: ":"), let scale = Float(text[text.index(after: colon)...]) {
            guard scale.isFinite else { throw ValidationError("--adapter \(text): the scale must be finite") }
            let path = String(text[..<colon])
            guard !path.isEmpty else { throw ValidationError("--adapter \(text): no path") }
            return (path, scale)
        }
        guard !text.isEmpty else { throw ValidationError("--adapter must not be empty") }
        return (text, 1)
    }

    /// Loads every --adapter for `graph` and makes them its adapter set; returns what was loaded.
    func applyAdapters(_ loaded: LoadedModel, graph: Graph) throws -> [(path: String, scale: Float, adapter: LoRAAdapter)] {
        guard !adapter.isEmpty else { return [] }
        let baseName = try naming(model) { () throws(LichenError) in try loaded.file.string("general.name") }
        let identity = try naming(model) { () throws(LichenError) in try AdapterBase(name: baseName, store: loaded.store) }
        var out: [(path: String, scale: Float, adapter: LoRAAdapter)] = []
        for a in adapter {
            let (path, scale) = try EvalCommand.adapterArgument(a)
            let lora = try naming(path) { () throws(LichenError) in try AdapterFile.read(path: path, arena: loaded.arena) }
            out.append((path, scale, lora))
        }
        let set = try naming(adapter.joined(separator: ", ")) { () throws(LichenError) in
            try AdapterSet(members: out.map { AdapterSet.Member($0.adapter, scale: $0.scale) }, graph: graph, base: identity,
                           arena: loaded.arena)
        }
        try naming(model) { () throws(LichenError) in try graph.setAdapters(set) }
        return out
    }

    func adaptersJSON(_ list: [(path: String, scale: Float, adapter: LoRAAdapter)]) -> JSON {
        .array(list.map { .object([("path", .string($0.path)), ("scale", floatJSON($0.scale)), ("name", .string($0.adapter.name)),
                                   ("bytes", .int($0.adapter.byteCount))]) })
    }

    func adaptersText(_ list: [(path: String, scale: Float, adapter: LoRAAdapter)]) -> String {
        list.isEmpty ? "" : " with " + list.map { "\($0.path) x \($0.scale)" }.joined(separator: ", ")
    }

    func run() throws {
        if let stream { return try runStream(stream) }
        let loaded = try LoadedModel(path: model, budgetBytes: budget << 20, trainable: false)
        let spec = loaded.spec
        let test = try naming(dataDirectory) { () throws(LichenError) in
            try FashionMNIST.load(.test, directory: dataDirectory, arena: loaded.arena)
        }
        let (graph, input, labels) = try naming(model) { () throws(LichenError) in
            let graph = try Graph(spec: spec, store: loaded.store, batchSize: batch, arena: loaded.arena)
            var dims = [batch]
            dims += spec.inputShape.dimensions
            let input = try loaded.arena.persistentTensor(.f32, try Shape(dimensions: dims))
            let labels = try loaded.arena.persistentTensor(.f32, try Shape(batch))
            return (graph, input, labels)
        }
        let adapters = try applyAdapters(loaded, graph: graph)
        let start = Date()
        let count = limit ?? test.count
        let accuracy = try evaluate(graph: graph, data: test, count: count, input: input, labels: labels, batch: batch,
                                    progress: ProgressBar("eval", total: count, enabled: stderrIsTerminal || global.verbose))
        let seconds = Date().timeIntervalSince(start)
        let types = Set(loaded.file.tensors.map(\.type.name)).sorted()
        if global.json {
            var classes: [JSON] = []
            for c in 0..<10 {
                let acc = accuracy.perClassTotal[c] == 0 ? 0 : Double(accuracy.perClassCorrect[c]) / Double(accuracy.perClassTotal[c])
                classes.append(.object([("class", .int(c)), ("name", .string(className(c))),
                                        ("accuracy", .number(acc)), ("count", .int(accuracy.perClassTotal[c]))]))
            }
            let doc: JSON = .object([
                ("model", .string(model)),
                ("architecture", .string(spec.architecture)),
                ("adapters", adaptersJSON(adapters)),
                ("tensor_types", .array(types.map { .string($0) })),
                ("examples", .int(accuracy.total)),
                ("clean_accuracy", .number(accuracy.fraction)),
                ("clean_error", .number(1 - accuracy.fraction)),
                ("per_class", .array(classes)),
                ("planned_step_bytes", .int(graph.plannedBytes)),
                ("seconds", .number(seconds)),
            ])
            print(doc.rendered())
        } else {
            var table = Table(["class", "name", "accuracy (%)", "images"], rightAligned: [0, 2, 3])
            for c in 0..<10 {
                let acc = accuracy.perClassTotal[c] == 0 ? 0 : Double(accuracy.perClassCorrect[c]) / Double(accuracy.perClassTotal[c])
                table.add([String(c), className(c), fixed(100 * acc, 2), String(accuracy.perClassTotal[c])])
            }
            print(table.rendered())
            print("")
            print("\(model): \(spec.architecture) (\(types.joined(separator: ", ")))\(adaptersText(adapters)), clean test accuracy "
                  + "\(fixed(100 * accuracy.fraction, 2)) % on \(accuracy.total) images, \(fixed(seconds, 2)) s")
        }
    }

    func className(_ c: Int) -> String {
        guard let name = FashionMNIST.className(c) else { return "?" }
        return name.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
    }
}

// MARK: - Streams

extension EvalCommand {
    /// Per-domain error of the source model on `path`, batch by batch within each domain record.
    func runStream(_ path: String) throws {
        let loaded = try LoadedModel(path: model, budgetBytes: budget << 20, trainable: false)
        let spec = loaded.spec
        let file = try openStream(path)
        try requireStreamFits(file, path: path, model: loaded)
        let (input, labels) = try batchBuffers(loaded, batch: batch)
        let graph = try naming(model) { () throws(LichenError) in
            try Graph(spec: spec, store: loaded.store, batchSize: batch, arena: loaded.arena)
        }
        let adapters = try applyAdapters(loaded, graph: graph)
        let start = Date()
        let progress = ProgressBar("eval", total: file.frameCount, enabled: stderrIsTerminal || global.verbose)
        let perRecord = try streamAccuracy(file, path: path, input: input, labels: labels, batch: batch, progress: progress) { x in
            try naming("forward") { () throws(LichenError) in try graph.forward(input: x) }
        }
        let seconds = Date().timeIntervalSince(start)
        let groups = domainGroups(file)
        var errors: [Double] = []
        var correct = 0, total = 0
        for g in groups {
            let c = perRecord[g.records].reduce(0) { $0 + $1.correct }
            let t = perRecord[g.records].reduce(0) { $0 + $1.total }
            errors.append(t == 0 ? 0 : 1 - Double(c) / Double(t))
            correct += c
            total += t
        }
        let mean = errors.isEmpty ? 0 : errors.reduce(0, +) / Double(errors.count)
        let overall = total == 0 ? 0 : 1 - Double(correct) / Double(total)
        if global.json {
            var domains: [JSON] = []
            for (g, e) in zip(groups, errors) {
                var pairs: [(String, JSON)] = [("name", .string(g.name)), ("severity", .int(g.severity))]
                if g.severities.count > 1 { pairs.append(("severities", .array(g.severities.map { .int($0) }))) }
                pairs += [("frames", .int(g.frameCount)), ("error", .number(e))]
                domains.append(.object(pairs))
            }
            var pairs: [(String, JSON)] = [
                ("model", .string(model)),
                ("architecture", .string(spec.architecture)),
                ("stream", .string(path)),
                ("adapters", adaptersJSON(adapters)),
                ("kind", .string(file.kind.name)),
                ("seed", .string(String(file.seed))),
                ("method", .string("source")),
                ("frames", .int(total)),
                ("domains", .array(domains)),
                ("mean_error", .number(mean)),
                ("overall_error", .number(overall)),
            ]
            if file.domains.count > groups.count {
                pairs.append(("segments", .array(zip(file.domains, perRecord).map { d, a in
                    .object([("name", .string(d.name)), ("severity", .int(d.severity)), ("first_frame", .int(d.firstFrame)),
                             ("frames", .int(d.frameCount)), ("error", .number(1 - a.fraction))])
                })))
            }
            pairs.append(("seconds", .number(seconds)))
            print(JSON.object(pairs).rendered())
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
        table.add([adapters.isEmpty ? "source" : "source+lora"] + errors.map { fixed(100 * $0, 1) } + [fixed(100 * mean, 1)])
        let severities = Set(groups.map(\.severityText))
        let severityNote = severities.count == 1 ? "severity \(severities.first!)" : "severities as listed by lichen stream show"
        print("error (%) per domain, \(file.kind.name) stream \(path) (\(severityNote), \(total) frames):")
        print("")
        print(table.rendered())
        print("")
        print("\(model): \(spec.architecture)\(adaptersText(adapters)), mean error \(fixed(100 * mean, 2)) % over \(groups.count) domains, "
              + "\(fixed(seconds, 2)) s")
    }
}
