import ArgumentParser
import Foundation
import Lichen

/// `lichen inspect --model M.gguf [--batch N] [--method NAME[,NAME..]] [--window B]
/// [--lora-rank r [--lora-alpha a] [--lora-targets list]] [--json]`.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model file: architecture, layers with output shapes, tensors and memory.",
        discussion: """
            The file is validated completely (GGUF container, lichen.* description, every parameter's shape \
            and type) before anything is printed; an invalid file exits with status 1. Shapes are per \
            sample, outermost first. Memory: with --load map (the default) the weights are a read-only \
            mapping of the file (page cache, shared) and nothing is copied; with --load read the whole \
            file is copied into memory, as on boards without mmap. --method (source, bn, tent, cotta, \
            rmt, several comma-separated, or all) assembles each method's plan as a runtime does (batches of --batch, \
            or with --window frame mode: the session at the window's rows, the ring and the saved statistics) and prints the budget it takes, measured from the arena: the planned step region, the \
            session's persistent objects (gradients, loss scratch, logits, snapshots of the initial trainables, \
            optimizer state; for Tent the snapshot and optimizer shares are given from the trained values), \
            the frame window and the heap. --lora-rank r (frugal mode) adds the LoRA adapter to tent, cotta \
            and rmt's trainables: its A and B (with gradients) and the adapter sets' workspaces are in the heap, \
            their copies (teacher, anchor, snapshots) and optimizer moments in the session.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var lora: AdaptationLoRAOptions

    @Option(name: .long, help: ArgumentHelp("Model file (GGUF).", valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("How to load the file: map or read.", valueName: "mode"))
    var load: String = "map"

    @Option(name: .long, help: ArgumentHelp("Batch size the step memory is planned for.", valueName: "n"))
    var batch: Int = 1

    @Option(name: .long, help: ArgumentHelp("Adaptation methods whose budget to print (comma-separated, or all).", valueName: "name"))
    var method: String?

    @Option(name: .long, help: ArgumentHelp("What Tent trains for --method: frugal or full.", valueName: "frugal|full"))
    var mode: String = "frugal"

    @Option(name: .long, help: ArgumentHelp("With --window: RMT's source pack, for the runtime's whole budget (lichen_plan_budget).",
                                            valueName: "path"))
    var sourcePack: String?

    @Flag(name: .long, help: "With --window: the learner thread's memory (lichen_method_params.learner): its version buffer, window snapshot and counters.")
    var learner = false

    @Option(name: .long, help: ArgumentHelp("Frame-mode window B for --method (adds the window's ring and the saved batch statistics).", valueName: "B"))
    var window: Int?

    @Option(name: .long, help: ArgumentHelp("Folder holding the Fashion-MNIST IDX .gz files (RMT's source batches for --method rmt).",
                                            valueName: "path"))
    var dataDirectory: String = FashionMNIST.defaultDirectory

    /// The methods --method names.
    func methods() throws -> [AdaptationMethod] {
        guard let method else { return [] }
        if method == "all" { return AdaptCommand.available.compactMap { AdaptationMethod(name: $0) } }
        var out: [AdaptationMethod] = []
        for part in method.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let m = AdaptationMethod(name: name) else {
                throw ValidationError("unknown method '\(name)'; available: \(AdaptCommand.available.joined(separator: ", ")), all")
            }
            if !out.contains(m) { out.append(m) }
        }
        return out
    }

    func validate() throws {
        _ = try methods()
        guard AdaptationMode(name: mode) != nil else { throw ValidationError("--mode must be frugal or full") }
        if lora.loraRank != nil && mode == "full" { throw ValidationError("--lora-rank is for --mode frugal (full mode trains every weight)") }
        if lora.loraRank != nil && method == nil { throw ValidationError("--lora-rank goes with --method") }
        if let window, !(window >= 1 && window <= AdaptationPlan.maximumRows) { throw ValidationError("--window must be in 1...4096") }
        guard load == "map" || load == "read" else { throw ValidationError("--load must be map or read, not '\(load)'") }
        guard batch >= 1 && batch <= 65_536 else { throw ValidationError("--batch must be in 1...65536") }
    }

    /// Planned step memory of the model at one batch size, measured by building its graphs.
    struct StepMemory {
        /// Parameter bytes copied into the budget (f32 values; quantized weights stay in the mapping).
        var parameterBytes: Int
        /// Inference: activations and scratch, planned (overlapping lifetimes share bytes).
        var inferencePlanned: Int
        var inferenceSum: Int
        /// Training every f32 parameter: saved activations, gradients, scratch, planned.
        var trainingPlanned: Int
        var trainingSum: Int
        /// Gradient buffers of the trainable parameters (outside the step plan).
        var gradientBytes: Int
        var trainableValues: Int
    }

    func stepMemory(_ file: GGUFFile, _ spec: ModelSpec) throws -> StepMemory {
        try naming(model) { () throws(LichenError) in
            // Address space only (reserved without backing): the figures are what the plans use.
            let arena = try Arena(byteCount: 4 << 30)
            let store = ParameterStore(arena: arena)
            try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
            let parameterBytes = arena.stats.persistentBytes
            let inference = try Graph(spec: spec, store: store, batchSize: batch, arena: arena)
            for role in [ParameterRole.weight, .bias, .normWeight, .normBias] { try store.setTrainable(true, role: role) }
            let beforeGradients = arena.stats.persistentBytes
            let training = try Graph(spec: spec, store: store, batchSize: batch, arena: arena,
                                     options: GraphOptions(training: true, batchNormMode: .batchStatistics))
            return StepMemory(parameterBytes: parameterBytes,
                              inferencePlanned: inference.plannedBytes, inferenceSum: inference.sumOfPlannedSizes,
                              trainingPlanned: training.plannedBytes, trainingSum: training.sumOfPlannedSizes,
                              gradientBytes: beforeGradients - parameterBytes, trainableValues: store.trainableValueCount)
        }
    }

    /// What one method's session takes from the budget, measured from the arena's accounting.
    struct MethodBudget {
        var method: AdaptationMethod
        var mode: AdaptationMode
        var parameterBytes: Int
        var plannedBytes: Int
        /// Persistent bytes the session took (everything but the planned region).
        var sessionPersistentBytes: Int
        /// LoRA values trained (A and B), 0 without LoRA.
        var loraValues: Int
        /// Trained values (store parameters and LoRA A, B), and the shares of snapshots and optimizer state in the above.
        var trainedValues: Int
        var snapshotBytes: Int
        var optimizerStateBytes: Int
        var windowBytes: Int
        var heapBytes: Int
        var totalBytes: Int
        /// What a runtime running this plan needs in all (lichen_plan_budget), with --window; nil otherwise.
        var runtimeBytes: Int?
        /// The fused models of frames between updates (frame mode): folded copies, step regions, refold factors.
        var fusedBytes: Int
        /// The learner thread's memory (--learner): the second version buffer, the window snapshot, cells and times.
        var learnerBytes: Int?
    }

    func methodBudget(_ method: AdaptationMethod, _ file: GGUFFile, _ spec: ModelSpec) throws -> MethodBudget {
        let mode = AdaptationMode(name: self.mode) ?? .frugal
        // The budget does not depend on CoTTA's threshold; RMT's prototypes need source batches
        // (one batch here: the prototype buffer has the same size whatever the sample count)
        // and its warm-up is skipped (it changes values, not sizes).
        var plan = AdaptationPlan(method, mode: mode,
                                  framing: window.map { .frames(window: $0, every: $0, prediction: .saved) } ?? .batch(size: batch),
                                  lora: method == .source || method == .bnAdapt ? nil : loraSettings, cottaThreshold: .given(0.5))
        plan.rmt = RMT.Configuration(warmUpSamples: 0, prototypeSamples: batch)
        if learner && window != nil && method != .source && loraSettings == nil { plan.learner = BackgroundLearner.Settings() }
        let source: FashionMNISTSource? = plan.needsSource ? try FashionMNISTSource(directory: dataDirectory, seed: 1) : nil
        let budget = try naming(model) { () throws(LichenError) in
            let arena = try Arena(byteCount: 4 << 30)
            let store = ParameterStore(arena: arena)
            try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
            let s0 = arena.stats
            let running = try plan.assemble(spec: spec, store: store, arena: arena, source: source)
            let session = running.session
            let fused = running.frames?.fused
            let learner = running.learner
            let learnerPlanned = learner?.plannedBytes ?? 0
            let windowBytes = (running.frames?.reservedBytes ?? 0) - (fused?.persistentBytes ?? 0) - (learner?.persistentBytes ?? 0)
            let s2 = arena.stats
            var s1 = s2
            s1.persistentBytes -= windowBytes + (fused?.persistentBytes ?? 0) + (learner?.persistentBytes ?? 0)
            s1.plannedBytes -= (fused?.plannedBytes ?? 0) + learnerPlanned
            let trained = session.trainedValueCount
            var norm = 0
            for i in session.trainedParameters { norm += store[i].value.elementCount }
            // Adam keeps two moments per value, SGD with momentum one.
            var copies = 1
            if case .adam = session.optimizerConfiguration { copies = 2 }
            let gradientMethod = !session.trainedParameters.isEmpty
            let planned = s1.plannedBytes - s0.plannedBytes
            let persistent = s1.persistentBytes - s0.persistentBytes
            return MethodBudget(method: method, mode: mode, parameterBytes: s0.persistentBytes, plannedBytes: planned,
                                sessionPersistentBytes: persistent, loraValues: trained - norm, trainedValues: trained,
                                snapshotBytes: gradientMethod ? 4 * trained : 0, optimizerStateBytes: gradientMethod ? 4 * trained * copies : 0,
                                windowBytes: windowBytes, heapBytes: s2.heapInUseBytes,
                                totalBytes: s2.lowUsedBytes + s2.heapInUseBytes, runtimeBytes: nil, fusedBytes: fused?.byteCount ?? 0,
                                learnerBytes: learner?.reservedBytes)
        }
        var result = budget
        // The runtime's whole budget for this plan, as lichen_plan_budget measures it (frame mode;
        // RMT's source data from --source-pack).
        if window != nil, method != .rmt || sourcePack != nil {
            var runtimePlan = plan
            runtimePlan.sourcePack = sourcePack
            if method == .rmt { runtimePlan.rmt.prototypeSamples = window ?? 1 }
            result.runtimeBytes = try naming(model) { () throws(LichenError) in
                try Runtime.requiredBudget(modelPath: model, plan: runtimePlan, ceiling: 1 << 30)
            }
        }
        return result
    }

    /// The LoRA settings of --lora-rank (nil without).
    var loraSettings: AdaptationLoRA? { lora.configuration(seed: 1) }

    func run() throws {
        let (file, spec) = try openModel(model, mode: load == "read" ? .read : .map)
        let budgets = try methods().map { try methodBudget($0, file, spec) }
        func budgetName(_ b: MethodBudget) -> String {
            b.trainedValues == 0 ? b.method.name : "\(b.method.name) (\(b.mode.name)\(b.loraValues > 0 ? "+lora" : ""))"
        }
        let shapes = try naming(model) { () throws(LichenError) in try spec.inferShapes() }
        let parameters = try naming(model) { () throws(LichenError) in try ModelFile.expectedParameters(spec) }
        let name = (try? file.string("general.name")) ?? ""
        let mapped = file.isMapped ? file.byteCount : 0
        let copied = file.isMapped ? 0 : file.byteCount

        var byType: [(ElementType, Int, Int)] = []  // type, tensors, bytes
        for t in file.tensors {
            if let i = byType.firstIndex(where: { $0.0 == t.type }) {
                byType[i].1 += 1
                byType[i].2 += t.byteCount
            } else {
                byType.append((t.type, 1, t.byteCount))
            }
        }
        let parameterValues = parameters.reduce(0) { $0 + ($1.shape.elementCount ?? 0) }
        let provenance = file.metadataKeys.filter { !ModelFile.isDescriptionKey($0) }
        func inputName(_ i: Int) -> String { i == -1 ? "input" : spec.layers[i].name }

        // MARK: Step memory (planned)
        let step = try stepMemory(file, spec)

        if global.json {
            let layers: [JSON] = spec.layers.enumerated().map { i, layer in
                .object([
                    ("index", .int(i)), ("kind", .string(layer.kind.name)), ("name", .string(layer.name)),
                    ("inputs", .array(layer.inputs.map { .int($0) })),
                    ("output_shape", .array(shapes[i].dimensions.map { .int($0) })),
                    ("attributes", .object(layerAttributes(layer))),
                ])
            }
            let tensors: [JSON] = file.tensors.map { t in
                .object([
                    ("name", .string(t.name)), ("type", .string(t.type.name)),
                    ("shape", .array(t.shape.dimensions.map { .int($0) })),
                    ("bytes", .int(t.byteCount)), ("offset", .int(t.fileOffset)),
                ])
            }
            var metadata: [(String, JSON)] = []
            for key in provenance {
                if let m = metadataListing(file, key) { metadata.append((key, m.json)) }
            }
            let doc: JSON = .object([
                ("model", .string(model)), ("name", .string(name)), ("architecture", .string(spec.architecture)),
                ("gguf_version", .int(file.version)), ("alignment", .int(file.alignment)),
                ("input_shape", .array(spec.inputShape.dimensions.map { .int($0) })),
                ("class_count", .int(spec.classCount)),
                ("layers", .array(layers)),
                ("tensors", .array(tensors)),
                ("bytes_by_type", .object(byType.map { ($0.0.name, .int($0.2)) })),
                ("tensor_bytes", .int(file.tensors.reduce(0) { $0 + $1.byteCount })),
                ("parameter_count", .int(parameterValues)),
                ("file_bytes", .int(file.byteCount)),
                ("memory", .object([("load", .string(load)), ("mapped_bytes", .int(mapped)), ("copied_bytes", .int(copied))])),
                ("step_memory", .object([
                    ("batch", .int(batch)),
                    ("parameter_bytes_in_budget", .int(step.parameterBytes)),
                    ("inference_planned_bytes", .int(step.inferencePlanned)),
                    ("inference_sum_of_sizes_bytes", .int(step.inferenceSum)),
                    ("training_planned_bytes", .int(step.trainingPlanned)),
                    ("training_sum_of_sizes_bytes", .int(step.trainingSum)),
                    ("training_gradient_bytes", .int(step.gradientBytes)),
                    ("trainable_values", .int(step.trainableValues)),
                ])),
                ("metadata", .object(metadata)),
                ("methods", .array(budgets.map { b in
                    .object([
                        ("method", .string(b.method.name)), ("mode", b.trainedValues > 0 ? .string(b.mode.name) : .null),
                        ("batch", .int(batch)), ("window", window.map { .int($0) } ?? .null),
                        ("parameter_bytes_in_budget", .int(b.parameterBytes)),
                        ("planned_step_bytes", .int(b.plannedBytes)),
                        ("session_persistent_bytes", .int(b.sessionPersistentBytes)),
                        ("trained_values", .int(b.trainedValues)),
                        ("lora", b.loraValues > 0 ? lora.json(trainedValues: b.loraValues) : .null),
                        ("snapshot_bytes", .int(b.snapshotBytes)),
                        ("optimizer_state_bytes", .int(b.optimizerStateBytes)),
                        ("window_bytes", .int(b.windowBytes)),
                        ("heap_bytes", .int(b.heapBytes)),
                        ("total_bytes", .int(b.totalBytes)),
                        ("fused_bytes", .int(b.fusedBytes)),
                        ("learner_bytes", b.learnerBytes.map { .int($0) } ?? .null),
                        ("runtime_budget_bytes", b.runtimeBytes.map { .int($0) } ?? .null),
                    ])
                })),
            ])
            print(doc.rendered())
            return
        }

        print("model:        \(model)" + (name.isEmpty ? "" : " (\(name))"))
        print("architecture: \(spec.architecture), GGUF v\(file.version), alignment \(file.alignment) B")
        print("input:        \(shapeText(spec.inputShape)) per sample, \(spec.classCount) classes")
        print("")
        var layerTable = Table(["#", "kind", "name", "inputs", "output shape", "attributes"], rightAligned: [0])
        for (i, layer) in spec.layers.enumerated() {
            layerTable.add([String(i), layer.kind.name, layer.name, layer.inputs.map(inputName).joined(separator: ", "),
                            shapeText(shapes[i]), attributeText(layer)])
        }
        print(layerTable.rendered())
        print("")
        var tensorTable = Table(["tensor", "type", "shape", "bytes"], rightAligned: [3])
        for t in file.tensors { tensorTable.add([t.name, t.type.name, shapeText(t.shape), String(t.byteCount)]) }
        print(tensorTable.rendered())
        print("")
        var typeTable = Table(["type", "tensors", "bytes"], rightAligned: [1, 2])
        for (type, count, bytes) in byType { typeTable.add([type.name, String(count), String(bytes)]) }
        print(typeTable.rendered())
        print("")
        print("parameters:   \(parameterValues) values in \(parameters.count) tensors")
        print("file:         \(file.byteCount) bytes (\(byteText(file.byteCount)))")
        print("memory:       \(mapped) bytes mapped read-only, \(copied) bytes copied (--load \(load))")
        print("")
        print("step memory at batch \(batch) (planned from tensor lifetimes; sum of sizes without reuse in brackets):")
        print("  parameters in the budget:  \(step.parameterBytes) bytes (f32 copies; quantized weights stay mapped)")
        print("  inference step:            \(step.inferencePlanned) bytes (\(step.inferenceSum))")
        print("  training step (all f32):   \(step.trainingPlanned) bytes (\(step.trainingSum)) "
              + "+ \(step.gradientBytes) bytes of gradients for \(step.trainableValues) trainable values")
        if !budgets.isEmpty {
            print("")
            print("adaptation budget at batch \(batch)" + (window.map { ", frame window \($0)" } ?? "") + " (bytes, measured from the arena):")
            var columns = ["method", "trained values", "parameters", "planned step", "session", "of which snapshots", "of which optimizer",
                           "window", "fused"]
            if learner { columns.append("learner") }
            columns += ["heap", "total"]
            var t = Table(columns, rightAligned: Set(1..<columns.count))
            for b in budgets {
                var row = [budgetName(b), String(b.trainedValues), String(b.parameterBytes), String(b.plannedBytes), String(b.sessionPersistentBytes),
                           String(b.snapshotBytes), String(b.optimizerStateBytes), String(b.windowBytes), String(b.fusedBytes)]
                if learner { row.append(b.learnerBytes.map { String($0) } ?? "-") }
                row += [String(b.heapBytes), String(b.totalBytes)]
                t.add(row)
            }
            print(t.rendered())
            print("session: gradients, loss scratch, logits, snapshots of the initial trainables, optimizer state (and any teacher copies)")
            if learner {
                print("learner: the second fused version (folded copies and step regions), the window snapshot, the exchange cells and the update-time ring; "
                      + "the session (optimizer state, teacher and anchor copies) is the learner's and is in the columns before")
            }
            if window != nil {
                let list = budgets.map { b in "\(b.method.name) \(b.runtimeBytes.map { "\($0) (\(byteText($0)))" } ?? "- (rmt needs --source-pack)")" }
                print("a runtime's whole budget for each plan (lichen_plan_budget: model, method, runtime; no control endpoint): "
                      + list.joined(separator: ", "))
            }
            if let text = lora.text {
                print("\(text): A and B with their gradients and the adapter sets' workspaces are in the heap column")
            }
        }
        if !provenance.isEmpty {
            print("")
            var metaTable = Table(["metadata", "value"])
            for key in provenance {
                if let m = metadataListing(file, key) { metaTable.add([key, m.text]) }
            }
            print(metaTable.rendered())
        }
    }
}
