import ArgumentParser
import Foundation
import Lichen

/// `lichen import --safetensors W.safetensors --arch ARCH --out M.gguf`.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert PyTorch weights (safetensors) and an architecture into a Lichen model file.",
        discussion: """
            --arch is a built-in architecture (fmnist-cnn, fmnist-mlp) or a JSON file describing one:

              {
                "architecture": "tiny-cnn",
                "input_shape": [1, 28, 28],
                "class_count": 10,
                "layers": [
                  {"kind": "conv2d", "name": "c1", "outputs": 8, "kernel": 3, "padding": 1},
                  {"kind": "batch_norm", "name": "bn"},
                  {"kind": "relu", "name": "act"},
                  {"kind": "max_pool2d", "name": "pool", "kernel": 2},
                  {"kind": "flatten", "name": "flatten"},
                  {"kind": "linear", "name": "fc", "outputs": 10, "source": "classifier.0"}
                ]
              }

            Layers run in order; "inputs" (layer names, indices, or "input" for the model input) \
            defaults to the previous layer. Attributes: outputs, kernel, stride, padding, dilation (an \
            integer or [h, w]; conv1d [k]), groups, bias (true/false), epsilon, momentum; pooling stride \
            defaults to the kernel. Kinds: linear, conv2d, conv1d, batch_norm, group_norm, layer_norm, \
            relu, gelu, silu, tanh, max_pool2d, avg_pool2d, global_avg_pool, flatten, add, softmax.

            Each layer's parameters are read from "<source>.weight", ".bias", ".running_mean" and \
            ".running_var" in the safetensors file (source defaults to the layer name, i.e. the PyTorch \
            module name); ".num_batches_tracked" is ignored. Every parameter the architecture needs must \
            be present with PyTorch's shape, as F32, F16 or BF16 (stored as f32); any other tensor is an \
            error. Built-in layer names: fmnist-cnn conv1, bn1, conv2, bn2, fc1, fc2; fmnist-mlp fc1, fc2, fc3.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("PyTorch weights (a state dict saved with safetensors).", valueName: "path"))
    var safetensors: String

    @Option(name: .long, help: ArgumentHelp("fmnist-cnn, fmnist-mlp, or an architecture JSON file.", valueName: "arch"))
    var arch: String

    @Option(name: .long, help: ArgumentHelp("Model file to write (GGUF, atomically).", valueName: "path"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("general.name of the model (default: the architecture's name).", valueName: "name"))
    var name: String?

    func validate() throws {
        guard !safetensors.isEmpty, !arch.isEmpty, !out.isEmpty else {
            throw ValidationError("--safetensors, --arch and --out must not be empty")
        }
        if ModelSpec.builtin(named: arch) == nil, !arch.hasSuffix(".json") {
            throw ValidationError("--arch must be fmnist-cnn, fmnist-mlp or a .json architecture file, not '\(arch)'")
        }
    }

    struct Imported {
        var name: String
        var source: String
        var dtype: String
        var shape: Shape
    }

    func run() throws {
        let architecture = try ArchitectureFile.builtin(arch) ?? ArchitectureFile(path: arch)
        let spec = architecture.spec
        let weights = try SafetensorsFile(path: safetensors)
        let parameters = try naming(arch) { () throws(LichenError) in try ModelFile.expectedParameters(spec) }

        var byName: [String: SafetensorsFile.Tensor] = [:]
        for t in weights.tensors { byName[t.name] = t }
        var used: Set<String> = []
        var tensors: [ModelTensor] = []
        var imported: [Imported] = []
        for p in parameters {
            let source = architecture.sources[p.layer] + "." + p.suffix
            guard let t = byName[source] else {
                throw CommandFailure("\(safetensors): missing tensor '\(source)' (\(p.suffix) of layer "
                                     + "'\(spec.layers[p.layer].name)', shape \(shapeText(p.shape)))")
            }
            used.insert(source)
            guard t.shape == p.shape.dimensions else {
                throw CommandFailure("\(safetensors): tensor '\(source)' has shape \(t.shape), the architecture needs "
                                     + "\(shapeText(p.shape)) (\(p.suffix) of layer '\(spec.layers[p.layer].name)')")
            }
            let values = try weights.floats(t)
            tensors.append(ModelTensor(name: p.name, type: .f32, shape: p.shape, bytes: f32Bytes(values)))
            imported.append(Imported(name: p.name, source: source, dtype: t.dtype, shape: p.shape))
        }
        let ignored = weights.tensors.filter { $0.name.hasSuffix(".num_batches_tracked") }.map(\.name)
        for t in weights.tensors where !used.contains(t.name) && !t.name.hasSuffix(".num_batches_tracked") {
            throw CommandFailure("\(safetensors): unexpected tensor '\(t.name)': no layer of the architecture "
                                 + "'\(spec.architecture)' has this parameter")
        }

        let extras = [
            ModelMetadataEntry("lichen.import.source", .string(URL(fileURLWithPath: safetensors).lastPathComponent)),
            ModelMetadataEntry("lichen.import.arch", .string(ModelSpec.builtin(named: arch) != nil
                                                             ? arch : URL(fileURLWithPath: arch).lastPathComponent)),
        ]
        let modelName = name ?? spec.architecture
        try naming(out) { () throws(LichenError) in
            try ModelFile.write(spec: spec, name: modelName, tensors: tensors, extras: extras, toPath: out)
        }
        if global.verbose, !ignored.isEmpty { log("ignored: " + ignored.joined(separator: ", ")) }

        let total = tensors.reduce(0) { $0 + $1.bytes.count }
        if global.json {
            let doc: JSON = .object([
                ("safetensors", .string(safetensors)), ("arch", .string(arch)), ("out", .string(out)),
                ("name", .string(modelName)), ("architecture", .string(spec.architecture)),
                ("tensors", .array(imported.map { i in
                    .object([("name", .string(i.name)), ("source", .string(i.source)), ("source_dtype", .string(i.dtype)),
                             ("type", .string("f32")), ("shape", .array(i.shape.dimensions.map { .int($0) }))])
                })),
                ("ignored", .array(ignored.map { .string($0) })),
                ("tensor_bytes", .int(total)),
            ])
            print(doc.rendered())
            return
        }
        var table = Table(["tensor", "from", "dtype", "shape"])
        for i in imported { table.add([i.name, i.source, i.dtype + " -> f32", shapeText(i.shape)]) }
        print(table.rendered())
        print("")
        print("\(imported.count) tensors, \(total) bytes of f32; ignored \(ignored.count) (num_batches_tracked); wrote \(out)")
    }
}
