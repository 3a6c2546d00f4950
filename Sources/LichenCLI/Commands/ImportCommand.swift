import ArgumentParser
import Foundation
import Lichen

/// `lichen import --safetensors W.safetensors --arch ARCH --out M.gguf`, and
/// `lichen import --peft DIR --base M.gguf --out A.gguf` (a PEFT LoRA adapter to an adapter file).
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert PyTorch weights (safetensors) into a Lichen model file, or a PEFT LoRA adapter into an adapter file.",
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
            relu, gelu, silu, tanh, elu, max_pool2d, avg_pool2d, global_avg_pool, flatten, add, softmax.

            Each layer's parameters are read from "<source>.weight", ".bias", ".running_mean" and \
            ".running_var" in the safetensors file (source defaults to the layer name, i.e. the PyTorch \
            module name); ".num_batches_tracked" is ignored. Every parameter the architecture needs must \
            be present with PyTorch's shape, as F32, F16 or BF16 (stored as f32); any other tensor is an \
            error. Built-in layer names: fmnist-cnn conv1, bn1, conv2, bn2, fc1, fc2; fmnist-mlp fc1, fc2, fc3.

            With --peft DIR --base M.gguf: reads DIR/adapter_config.json (r, lora_alpha, target_modules; \
            use_rslora becomes alpha = lora_alpha * sqrt(r); use_dora, bias other than "none", \
            alpha_pattern and modules_to_save are refused) and DIR/adapter_model.safetensors \
            (base_model.model.<module>.lora_A.weight / lora_B.weight), maps each PyTorch module to the \
            base's layer whose source it is (--arch gives the sources as for --safetensors; default: the \
            layer names), checks every shape against the base (conv A [r, in, kh, kw], B [out, r, 1, 1]) \
            and writes an adapter file for that base (llama.cpp's convention; Format/README.md).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("PyTorch weights (a state dict saved with safetensors).", valueName: "path"))
    var safetensors: String?

    @Option(name: .long, help: ArgumentHelp("fmnist-cnn, fmnist-mlp, or an architecture JSON file.", valueName: "arch"))
    var arch: String?

    @Option(name: .long, help: ArgumentHelp("A PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors).",
                                            valueName: "dir"))
    var peft: String?

    @Option(name: .long, help: ArgumentHelp("The Lichen base model the PEFT adapter belongs to (with --peft).", valueName: "path"))
    var base: String?

    @Option(name: .long, help: ArgumentHelp("Model file to write (GGUF, atomically).", valueName: "path"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("general.name of the model or adapter (default: the architecture's name; "
                                            + "for --peft the output file's name).", valueName: "name"))
    var name: String?

    func validate() throws {
        guard !out.isEmpty else { throw ValidationError("--out must not be empty") }
        if let arch {
            guard !arch.isEmpty else { throw ValidationError("--arch must not be empty") }
            if ModelSpec.builtin(named: arch) == nil, !arch.hasSuffix(".json") {
                throw ValidationError("--arch must be fmnist-cnn, fmnist-mlp or a .json architecture file, not '\(arch)'")
            }
        }
        if let peft {
            guard safetensors == nil else { throw ValidationError("--peft and --safetensors exclude each other") }
            guard !peft.isEmpty else { throw ValidationError("--peft must not be empty") }
            guard let base, !base.isEmpty else { throw ValidationError("--peft needs --base M.gguf (the model the adapter belongs to)") }
            return
        }
        guard base == nil else { throw ValidationError("--base is for --peft") }
        guard let safetensors, !safetensors.isEmpty, arch != nil else {
            throw ValidationError("give --safetensors W.safetensors --arch ARCH, or --peft DIR --base M.gguf")
        }
    }

    struct Imported {
        var name: String
        var source: String
        var dtype: String
        var shape: Shape
    }

    func run() throws {
        if let peft, let base { return try runPEFT(peft, base: base) }
        guard let safetensors, let arch else { throw ExitCode(2) }
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

// MARK: - PEFT adapters

extension ImportCommand {
    func runPEFT(_ directory: String, base: String) throws {
        let loaded = try LoadedModel(path: base, budgetBytes: 64 << 20 + 4 * fileSize(base), trainable: false)
        let spec = loaded.spec
        var sources = spec.layers.map(\.name)
        if let arch {
            let architecture = try ArchitectureFile.builtin(arch) ?? ArchitectureFile(path: arch)
            guard architecture.spec.layers.map(\.name) == spec.layers.map(\.name) else {
                throw CommandFailure("\(arch): its layers are not those of \(base) (\(spec.architecture))")
            }
            sources = architecture.sources
        }
        let peft = try PEFTAdapter(directory: directory, spec: spec, sources: sources)
        let adapterName = name ?? URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent
        let baseName = try naming(base) { () throws(LichenError) in try loaded.file.string("general.name") }
        let adapter = try naming(out) { () throws(LichenError) in
            let identity = try AdapterBase(name: baseName, store: loaded.store)
            let shapes = peft.targets.map { LoRATargetShape(weightName: $0.weight, rank: $0.rank, inputCount: $0.nIn, outputCount: $0.nOut) }
            let adapter = try LoRAAdapter(name: adapterName, base: identity, alpha: peft.alpha, shapes: shapes, arena: loaded.arena)
            for (t, p) in zip(adapter.targets, peft.targets) {
                try t.a.copy(from: p.a)
                try t.b.copy(from: p.b)
                if let i = try t.a.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "lora_A", index: i) }
                if let i = try t.b.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "lora_B", index: i) }
            }
            // The adapter must apply to the base: build a set over a one-sample graph.
            let graph = try Graph(spec: spec, store: loaded.store, batchSize: 1, arena: loaded.arena)
            _ = try AdapterSet(members: [AdapterSet.Member(adapter)], graph: graph, base: identity, arena: loaded.arena)
            return adapter
        }
        let extras = [
            ModelMetadataEntry("lichen.import.source", .string(URL(fileURLWithPath: directory).lastPathComponent)),
            ModelMetadataEntry("lichen.import.peft.r", .uint32(try naming(directory) { () throws(LichenError) in
                try Checked.integer(peft.rank, as: UInt32.self, name: "'r'", in: 1...UInt32(LoRAAdapter.maximumRank)) })),
            ModelMetadataEntry("lichen.import.peft.lora_alpha", .float32(Float(peft.loraAlpha))),
            ModelMetadataEntry("lichen.import.peft.use_rslora", .bool(peft.useRSLoRA)),
            ModelMetadataEntry("lichen.import.peft.target_modules", .string(peft.targetModules)),
        ]
        try naming(out) { () throws(LichenError) in try AdapterFile.write(adapter, extras: extras, toPath: out) }
        if global.json {
            let doc: JSON = .object([
                ("peft", .string(directory)), ("base", .string(base)), ("out", .string(out)), ("name", .string(adapterName)),
                ("base_name", .string(baseName)), ("r", .int(peft.rank)), ("lora_alpha", .number(peft.loraAlpha)),
                ("use_rslora", .bool(peft.useRSLoRA)), ("alpha", floatJSON(peft.alpha)),
                ("targets", .array(peft.targets.map { t in
                    .object([("module", .string(t.module)), ("tensor", .string(t.weight)), ("rank", .int(t.rank)),
                             ("n_in", .int(t.nIn)), ("n_out", .int(t.nOut))])
                })),
                ("adapter_bytes", .int(adapter.byteCount)),
            ])
            print(doc.rendered())
            return
        }
        var table = Table(["module", "tensor", "rank", "A", "B"], rightAligned: [2])
        for t in peft.targets {
            table.add([t.module, t.weight, String(t.rank), "[\(t.rank), \(t.nIn)]", "[\(t.nOut), \(t.rank)]"])
        }
        print(table.rendered())
        print("")
        print("\(peft.targets.count) targets, alpha \(peft.alpha) (lora_alpha \(peft.loraAlpha)\(peft.useRSLoRA ? ", rsLoRA" : "")), "
              + "\(byteText(adapter.byteCount)) of f32 for base \(baseName); wrote \(out)")
    }

    func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
    }
}
