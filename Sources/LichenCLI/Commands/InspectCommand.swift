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

    func validate() throws {
        guard load == "map" || load == "read" else { throw ValidationError("--load must be map or read, not '\(load)'") }
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
        // Planned step memory for `--batch N` (activations, gradients, scratch from the graph's
        // memory plan) belongs here, printed next to the mapped/copied figures, once the graph
        // can plan a model. Until then nothing is printed and `--batch` is not declared.

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
