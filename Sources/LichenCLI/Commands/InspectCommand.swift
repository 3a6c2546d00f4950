import ArgumentParser
import Foundation
import Lichen

/// `lichen inspect --model M.gguf [--json]`.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model file: architecture, layers with output shapes, tensors and memory.",
        discussion: """
            The file is validated completely (GGUF container, lichen.* description, every parameter's shape \
            and type) before anything is printed; an invalid file exits with status 1. Shapes are per \
            sample, outermost first. Memory: with --load map (the default) the weights are a read-only \
            mapping of the file (page cache, shared) and nothing is copied; with --load read the whole \
            file is copied into memory, as on boards without mmap.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("Model file (GGUF).", valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("How to load the file: map or read.", valueName: "mode"))
    var load: String = "map"

    @Option(name: .long, help: ArgumentHelp("Batch size the step memory is planned for.", valueName: "n"))
    var batch: Int = 1

    func validate() throws {
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

    func run() throws {
        let (file, spec) = try openModel(model, mode: load == "read" ? .read : .map)
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
                if let value = try? file.value(key) { metadata.append((key, jsonValue(value))) }
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
        if !provenance.isEmpty {
            print("")
            var metaTable = Table(["metadata", "value"])
            for key in provenance {
                if let value = try? file.value(key) { metaTable.add([key, plainText(value)]) }
            }
            print(metaTable.rendered())
        }
    }
}
