import Lichen

/// Lichen model files: descriptions round-trip through GGUFWriter → GGUFFile for the built-in
/// architectures and specs using every layer kind; shape inference and the parameter list;
/// hostile descriptions (unknown kinds, bad inputs, missing keys, wrong types, absurd counts,
/// out-of-range attributes) throw the exact error.
let modelFileChecks: [Check] = modelFileRoundTripChecks + modelFileHostileChecks

// MARK: - Specs and helpers

/// Every layer kind but conv1d, on a [4, 8, 8] input; 5 classes.
private func imageSpec() -> ModelSpec {
    var layers: [LayerSpec] = []
    func add(_ kind: LayerKind, _ name: String, _ inputs: [Int], _ edit: (inout LayerSpec) -> Void = { _ in }) {
        var l = LayerSpec(kind: kind, name: name, inputs: inputs)
        edit(&l)
        layers.append(l)
    }
    add(.conv2d, "stem.conv", [-1]) { $0.outputs = 8; $0.kernelH = 3; $0.kernelW = 3; $0.padH = 1; $0.padW = 1 }
    add(.batchNorm, "stem.bn", [0]) { $0.epsilon = 1e-3; $0.momentum = 0.05 }
    add(.relu, "stem.relu", [1])
    add(.conv2d, "dw", [2]) {
        $0.outputs = 8; $0.kernelH = 3; $0.kernelW = 3; $0.padH = 2; $0.padW = 2
        $0.dilationH = 2; $0.dilationW = 2; $0.groups = 8; $0.hasBias = false
    }
    add(.groupNorm, "gn", [3]) { $0.groups = 4; $0.epsilon = 1e-4 }
    add(.gelu, "gelu", [4])
    add(.add, "residual", [2, 5])
    add(.silu, "silu", [6])
    add(.maxPool2d, "maxpool", [7]) { $0.kernelH = 2; $0.kernelW = 2; $0.strideH = 2; $0.strideW = 2 }
    add(.avgPool2d, "avgpool", [8]) { $0.kernelH = 3; $0.kernelW = 3; $0.padH = 1; $0.padW = 1 }
    add(.layerNorm, "ln", [9]) { $0.epsilon = 1e-6 }
    add(.tanh, "tanh", [10])
    add(.globalAvgPool, "gap", [11])
    add(.linear, "fc", [12]) { $0.outputs = 16; $0.hasBias = false }
    add(.flatten, "flat", [13])
    add(.linear, "head", [14]) { $0.outputs = 5 }
    add(.softmax, "probs", [15])
    return ModelSpec(architecture: "every-kind-2d", inputShape: shape([4, 8, 8]), classCount: 5, layers: layers)
}

/// conv1d on a [4, 32] input; 3 classes.
private func sequenceSpec() -> ModelSpec {
    var c1 = LayerSpec(kind: .conv1d, name: "c1", inputs: [-1])
    c1.outputs = 6; c1.kernelW = 5; c1.strideW = 2; c1.padW = 2; c1.groups = 2
    let bn = LayerSpec(kind: .batchNorm, name: "bn", inputs: [0])
    var c2 = LayerSpec(kind: .conv1d, name: "c2", inputs: [1])
    c2.outputs = 6; c2.kernelW = 3; c2.dilationW = 2; c2.padW = 2; c2.hasBias = false
    let flat = LayerSpec(kind: .flatten, name: "flat", inputs: [2])
    var fc = LayerSpec(kind: .linear, name: "fc", inputs: [3])
    fc.outputs = 3
    return ModelSpec(architecture: "every-kind-1d", inputShape: shape([4, 32]), classCount: 3, layers: [c1, bn, c2, flat, fc])
}

private func shape(_ dims: [Int]) -> Shape {
    do { return try Shape(dimensions: dims) } catch { fatalError("test shape") }
}

/// Deterministic f32 tensors for every parameter of `spec` (weights may be stored flat).
private func parameterTensors(_ spec: ModelSpec, flatConv: Bool = false) throws(LichenError) -> [ModelTensor] {
    var tensors: [ModelTensor] = []
    var seed: UInt64 = 1
    for p in try ModelFile.expectedParameters(spec) {
        let s = flatConv && p.isQuantizable ? (p.flatShape ?? p.shape) : p.shape
        var rng = SplitMix64(seed: seed)
        seed += 1
        var bytes: [UInt8] = []
        for _ in 0..<(s.elementCount ?? 0) {
            let bits = rng.nextFloat(-1, 1).bitPattern
            for b in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt32(b)))) }
        }
        tensors.append(ModelTensor(name: p.name, type: .f32, shape: s, bytes: bytes))
    }
    return tensors
}

/// Opens `bytes` as a GGUF file (copied into an aligned buffer).
private func openModel(_ bytes: [UInt8]) throws(LichenError) -> GGUFFile {
    var result: Result<GGUFFile, LichenError> = .failure(.malformedFile(offset: -1, reason: "not run"))
    bytes.withUnsafeBytes { raw in
        do throws(LichenError) { result = .success(try GGUFFile(copying: raw)) } catch { result = .failure(error) }
    }
    return try result.get()
}

/// Whether two specs are equal field by field.
private func same(_ a: ModelSpec, _ b: ModelSpec) -> Bool {
    guard a.architecture == b.architecture, a.inputShape == b.inputShape, a.classCount == b.classCount,
          a.layers.count == b.layers.count else { return false }
    for (x, y) in zip(a.layers, b.layers) {
        guard x.kind == y.kind, x.name == y.name, x.inputs == y.inputs, x.outputs == y.outputs,
              x.kernelH == y.kernelH, x.kernelW == y.kernelW, x.strideH == y.strideH, x.strideW == y.strideW,
              x.padH == y.padH, x.padW == y.padW, x.dilationH == y.dilationH, x.dilationW == y.dilationW,
              x.groups == y.groups, x.hasBias == y.hasBias, x.start == y.start,
              x.epsilon.bitPattern == y.epsilon.bitPattern, x.momentum.bitPattern == y.momentum.bitPattern
        else { return false }
    }
    return true
}

private func dimsText(_ dims: Shape) -> String {
    var s = "["
    for (i, d) in dims.dimensions.enumerated() { s += (i == 0 ? "" : ", ") + String(d) }
    return s + "]"
}

/// The metadata of a valid model file for `spec`, as entries (without `general.alignment`).
private func entries(_ spec: ModelSpec) throws(LichenError) -> [ModelMetadataEntry] {
    var w = try GGUFWriter()
    try ModelFile.addSpec(spec, name: "hostile", quantized: false, to: &w)
    let file = try openModel(try w.serialized())
    var out: [ModelMetadataEntry] = []
    for key in file.metadataKeys where key != "general.alignment" {
        out.append(ModelMetadataEntry(key, try file.value(key)))
    }
    return out
}

/// Reads the description of `spec` after `edit` changed its metadata.
private func readEdited(
    _ spec: ModelSpec, _ edit: (inout [ModelMetadataEntry]) -> Void
) throws(LichenError) -> ModelSpec {
    var e = try entries(spec)
    edit(&e)
    var w = try GGUFWriter()
    for x in e { try w.add(x.key, x.value) }
    return try ModelFile.readSpec(try openModel(try w.serialized()))
}

private func set(_ e: inout [ModelMetadataEntry], _ key: String, _ value: GGUFMetadataValue) {
    for i in e.indices where e[i].key == key { e[i].value = value; return }
    e.append(ModelMetadataEntry(key, value))
}

private func remove(_ e: inout [ModelMetadataEntry], _ key: String) {
    e.removeAll { $0.key == key }
}

private func ints(_ values: [Int]) -> GGUFMetadataValue {
    .array(elementType: .int32, elements: values.map { .int32(Int32($0)) })
}

// MARK: - Round trips

private let modelFileRoundTripChecks: [Check] = [
    Check("Format/ModelFile", "built-in and every-kind specs round-trip through GGUFWriter and GGUFFile") { c in
        let specs = [ModelSpec.fashionMNISTCNN, ModelSpec.fashionMNISTMLP, imageSpec(), sequenceSpec()]
        for spec in specs {
            let read: GGUFFile? = c.expectNoThrow("round trip of " + spec.architecture) { () throws(LichenError) in
                let tensors = try parameterTensors(spec)
                var extras = [ModelMetadataEntry("lichen.train.seed", .uint64(42))]
                extras.append(ModelMetadataEntry("lichen.eval.clean_accuracy", .float32(0.9125)))
                let w = try ModelFile.writer(spec: spec, name: "round trip", tensors: tensors, extras: extras)
                let file = try openModel(try w.serialized())
                try ModelFile.checkParameters(file, spec: spec)
                for t in tensors {
                    let stored = try file.tensorBytes(t.name)
                    var equal = stored.count == t.bytes.count
                    for i in 0..<min(stored.count, t.bytes.count) where stored[i] != t.bytes[i] { equal = false }
                    if !equal { throw .notFound(kind: "identical tensor", name: t.name) }
                }
                return file
            }
            guard let file = read else { continue }
            let back = c.expectNoThrow("readSpec of " + spec.architecture) { () throws(LichenError) in try ModelFile.readSpec(file) }
            c.expect(back.map { same($0, spec) } == true, spec.architecture + ": the description read back differs")
            c.expect((try? file.string("general.architecture")) == "lichen", "general.architecture")
            c.expect((try? file.string("general.name")) == "round trip", "general.name")
            c.expect(!file.contains("general.quantization_version"), "no quantization_version in an f32 file")
            c.expect((try? file.int("lichen.train.seed")) == 42, "provenance key kept")
        }
    },
    Check("Format/ModelFile", "shape inference and parameter list of the built-in CNN") { c in
        let spec = ModelSpec.fashionMNISTCNN
        guard let shapes = c.expectNoThrow("inferShapes", { () throws(LichenError) in try spec.inferShapes() }) else { return }
        let expected = ["[32, 28, 28]", "[32, 28, 28]", "[32, 28, 28]", "[32, 14, 14]", "[64, 14, 14]", "[64, 14, 14]",
                        "[64, 14, 14]", "[64, 7, 7]", "[3136]", "[128]", "[128]", "[10]"]
        c.expect(shapes.map(dimsText) == expected, "CNN shapes: " + shapes.map(dimsText).joined(separator: " "))
        guard let params = c.expectNoThrow("parameters", { () throws(LichenError) in try ModelFile.expectedParameters(spec) }) else { return }
        let listed = params.map { $0.name + " " + dimsText($0.shape) }
        let wanted = ["conv1.weight [32, 1, 3, 3]", "conv1.bias [32]",
                      "bn1.weight [32]", "bn1.bias [32]", "bn1.running_mean [32]", "bn1.running_var [32]",
                      "conv2.weight [64, 32, 3, 3]", "conv2.bias [64]",
                      "bn2.weight [64]", "bn2.bias [64]", "bn2.running_mean [64]", "bn2.running_var [64]",
                      "fc1.weight [128, 3136]", "fc1.bias [128]", "fc2.weight [10, 128]", "fc2.bias [10]"]
        c.expect(listed == wanted, "CNN parameters: " + listed.joined(separator: ", "))
        c.expect(params.filter { $0.isQuantizable }.map { $0.rowLength } == [9, 288, 3136, 128], "row lengths")
        c.expect(params.filter { $0.isQuantizable }.map { $0.name } == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"],
                 "quantizable weights")
        let mlp = (try? ModelFile.expectedParameters(ModelSpec.fashionMNISTMLP))?.map { $0.name + " " + dimsText($0.shape) } ?? []
        c.expect(mlp == ["fc1.weight [256, 784]", "fc1.bias [256]", "fc2.weight [128, 256]", "fc2.bias [128]",
                         "fc3.weight [10, 128]", "fc3.bias [10]"], "MLP parameters: " + mlp.joined(separator: ", "))
        let image = (try? imageSpec().inferShapes())?.map(dimsText) ?? []
        c.expect(image == ["[8, 8, 8]", "[8, 8, 8]", "[8, 8, 8]", "[8, 8, 8]", "[8, 8, 8]", "[8, 8, 8]", "[8, 8, 8]",
                           "[8, 8, 8]", "[8, 4, 4]", "[8, 4, 4]", "[8, 4, 4]", "[8, 4, 4]", "[8]", "[16]", "[16]", "[5]", "[5]"],
                 "every-kind shapes: " + image.joined(separator: " "))
        let seq = (try? sequenceSpec().inferShapes())?.map(dimsText) ?? []
        c.expect(seq == ["[6, 16]", "[6, 16]", "[6, 16]", "[96]", "[3]"], "conv1d shapes: " + seq.joined(separator: " "))
        let seqParams = (try? ModelFile.expectedParameters(sequenceSpec()))?.map { $0.name + " " + dimsText($0.shape) } ?? []
        c.expect(seqParams.first == "c1.weight [6, 2, 5]" && seqParams.contains("c2.weight [6, 6, 3]")
                 && !seqParams.contains("c2.bias [6]"), "conv1d parameters: " + seqParams.joined(separator: ", "))
    },
    Check("Format/ModelFile", "quantized, flat conv weights and quantization_version") { c in
        let spec = ModelSpec.fashionMNISTCNN
        let file: GGUFFile? = c.expectNoThrow("quantized file") { () throws(LichenError) in
            var tensors = try parameterTensors(spec, flatConv: true)
            for i in tensors.indices where tensors[i].name == "conv2.weight" {
                // [64, 288] f32 → q8_0: 9 blocks of 34 bytes per row; the values do not matter here.
                tensors[i] = ModelTensor(name: "conv2.weight", type: .q8_0, shape: shape([64, 288]),
                                         bytes: [UInt8](repeating: 0, count: 64 * 9 * 34))
            }
            return try openModel(try ModelFile.writer(spec: spec, name: "q", tensors: tensors).serialized())
        }
        guard let file else { return }
        c.expect((try? file.uint32("general.quantization_version")) == 2, "quantization_version 2")
        c.expectNoThrow("checkParameters accepts the flat layout") { () throws(LichenError) in
            try ModelFile.checkParameters(file, spec: spec)
        }
        c.expect((try? ModelFile.readSpec(file)).map { same($0, spec) } == true, "spec read back")
    },
]

// MARK: - Hostile descriptions

private let modelFileHostileChecks: [Check] = [
    Check("Format/ModelFile", "hostile descriptions throw the exact error") { c in
        let cnn = ModelSpec.fashionMNISTCNN
        let image = imageSpec()
        func expect(_ expected: LichenError, _ what: String, _ spec: ModelSpec, _ edit: (inout [ModelMetadataEntry]) -> Void) {
            c.expectThrows(expected, what) { () throws(LichenError) in try readEdited(spec, edit) }
        }
        // The untouched metadata reads.
        c.expect((try? readEdited(cnn) { _ in }).map { same($0, cnn) } == true, "untouched CNN metadata reads back")

        expect(.invalidModel(key: "general.architecture", value: "\"llama\"", reason: "not a Lichen model file (expected \"lichen\")"),
               "foreign architecture", cnn) { set(&$0, "general.architecture", .string("llama")) }
        expect(.invalidModel(key: "lichen.layer.1.kind", value: "\"convolution\"", reason: "unknown layer kind"),
               "unknown kind", cnn) { set(&$0, "lichen.layer.1.kind", .string("convolution")) }
        expect(.invalidModel(key: "lichen.layer.2.inputs", value: "[5]", reason: "an input must be -1 (the model input) or an earlier layer"),
               "forward input", cnn) { set(&$0, "lichen.layer.2.inputs", ints([5])) }
        expect(.invalidModel(key: "lichen.layer.2.inputs", value: "[2]", reason: "an input must be -1 (the model input) or an earlier layer"),
               "self input", cnn) { set(&$0, "lichen.layer.2.inputs", ints([2])) }
        expect(.invalidModel(key: "lichen.layer.0.inputs", value: "[-2]", reason: "an input must be -1 (the model input) or an earlier layer"),
               "negative input", cnn) { set(&$0, "lichen.layer.0.inputs", ints([-2])) }
        expect(.invalidModel(key: "lichen.layer.2.inputs", value: "[0, 1]", reason: "this kind takes exactly one input"),
               "two inputs to relu", cnn) { set(&$0, "lichen.layer.2.inputs", ints([0, 1])) }
        expect(.invalidModel(key: "lichen.layer.2.inputs", value: "an array of 3 elements", reason: "a layer takes one or two inputs"),
               "three inputs", cnn) { set(&$0, "lichen.layer.2.inputs", ints([0, 1, 0])) }
        expect(.invalidModel(key: "lichen.layer.6.inputs", value: "[8, 8, 8] + [4, 8, 8]", reason: "add takes two inputs of the same shape"),
               "add of different shapes", image) { set(&$0, "lichen.layer.6.inputs", ints([2, -1])) }
        expect(.notFound(kind: "metadata key", name: "lichen.layer.4.kernel"), "missing kernel", cnn) {
            remove(&$0, "lichen.layer.4.kernel")
        }
        expect(.notFound(kind: "metadata key", name: "lichen.layer.11.kind"), "missing kind", cnn) {
            remove(&$0, "lichen.layer.11.kind")
        }
        expect(.notFound(kind: "metadata key", name: "lichen.class_count"), "missing class count", cnn) {
            remove(&$0, "lichen.class_count")
        }
        expect(.valueTypeMismatch(key: "lichen.layer.0.outputs", expected: "integer that fits in Int", got: "string"),
               "outputs as a string", cnn) { set(&$0, "lichen.layer.0.outputs", .string("32")) }
        expect(.valueTypeMismatch(key: "lichen.layer.0.bias", expected: "bool", got: "uint8"),
               "bias as an integer", cnn) { set(&$0, "lichen.layer.0.bias", .uint8(1)) }
        expect(.valueTypeMismatch(key: "lichen.layer.1.epsilon", expected: "float32 or float64", got: "int32"),
               "epsilon as an integer", cnn) { set(&$0, "lichen.layer.1.epsilon", .int32(0)) }
        expect(.valueTypeMismatch(key: "lichen.layer.3.inputs", expected: "array of integers", got: "string"),
               "inputs as strings", cnn) { set(&$0, "lichen.layer.3.inputs", .array(elementType: .string, elements: [.string("2")])) }
        expect(.valueTypeMismatch(key: "lichen.layer.3.kind", expected: "string", got: "uint32"),
               "kind as a number", cnn) { set(&$0, "lichen.layer.3.kind", .uint32(10)) }
        expect(.invalidModel(key: "lichen.layer_count", value: "4611686018427387904",
                             reason: "must be at least 1 and at most a third of the file's metadata keys"),
               "absurd layer count", cnn) { set(&$0, "lichen.layer_count", .uint64(1 << 62)) }
        expect(.valueTypeMismatch(key: "lichen.layer_count", expected: "integer that fits in Int", got: "uint64"),
               "layer count above Int.max", cnn) { set(&$0, "lichen.layer_count", .uint64(UInt64.max)) }
        expect(.invalidModel(key: "lichen.layer_count", value: "0",
                             reason: "must be at least 1 and at most a third of the file's metadata keys"),
               "no layers", cnn) { set(&$0, "lichen.layer_count", .uint32(0)) }
        expect(.notFound(kind: "metadata key", name: "lichen.layer.12.kind"), "one layer more than described", cnn) {
            set(&$0, "lichen.layer_count", .uint32(13))
        }
        expect(.invalidModel(key: "lichen.class_count", value: "10", reason: "the last layer's output must be [class_count]"),
               "one layer fewer than described", cnn) { set(&$0, "lichen.layer_count", .uint32(11)) }
        expect(.invalidModel(key: "lichen.layer.0.outputs", value: "4294967295", reason: "must be in 1...16777216"),
               "absurd outputs", cnn) { set(&$0, "lichen.layer.0.outputs", .uint32(UInt32.max)) }
        expect(.invalidModel(key: "lichen.layer.0.kernel", value: "an array of 3 elements", reason: "must have two elements [h, w]"),
               "3-element kernel", cnn) { set(&$0, "lichen.layer.0.kernel", ints([3, 3, 3])) }
        expect(.invalidModel(key: "lichen.layer.0.kernel", value: "0", reason: "must be in 1...16777216"),
               "zero kernel", cnn) { set(&$0, "lichen.layer.0.kernel", ints([0, 3])) }
        expect(.invalidModel(key: "lichen.layer.0.padding", value: "[-1, 1]", reason: "elements must be in 0...16777216"),
               "negative padding", cnn) { set(&$0, "lichen.layer.0.padding", ints([-1, 1])) }
        expect(.invalidModel(key: "lichen.layer.0.kernel", value: "[31, 31]", reason: "the kernel does not fit in the (padded) input"),
               "kernel larger than the input", cnn) { set(&$0, "lichen.layer.0.kernel", ints([31, 31])) }
        expect(.invalidModel(key: "lichen.layer.0.groups", value: "3", reason: "input and output channels must be multiples of groups"),
               "groups not dividing the channels", image) { set(&$0, "lichen.layer.0.groups", .uint32(3)) }
        expect(.invalidModel(key: "lichen.layer.4.groups", value: "3", reason: "the channel count must be a multiple of groups"),
               "group norm groups not dividing", image) { set(&$0, "lichen.layer.4.groups", .uint32(3)) }
        expect(.invalidModel(key: "lichen.layer.1.epsilon", value: "-1.00000", reason: "epsilon must be finite and > 0"),
               "negative epsilon", cnn) { set(&$0, "lichen.layer.1.epsilon", .float32(-1)) }
        expect(.invalidModel(key: "lichen.layer.1.epsilon", value: "nan", reason: "epsilon must be finite and > 0"),
               "NaN epsilon", cnn) { set(&$0, "lichen.layer.1.epsilon", .float32(.nan)) }
        expect(.invalidModel(key: "lichen.layer.1.momentum", value: "2.00000", reason: "momentum must be in [0, 1]"),
               "momentum above 1", cnn) { set(&$0, "lichen.layer.1.momentum", .float64(2)) }
        expect(.invalidModel(key: "lichen.layer.3.padding", value: "[2, 2]", reason: "pooling padding must be at most half the kernel"),
               "pool padding above half the kernel", cnn) { set(&$0, "lichen.layer.3.padding", ints([2, 2])) }
        expect(.invalidModel(key: "lichen.layer.9.inputs", value: "[64, 7, 7]", reason: "linear takes a [features] input (add a flatten)"),
               "linear on an image", cnn) { set(&$0, "lichen.layer.9.inputs", ints([7])) }
        expect(.invalidModel(key: "lichen.layer.4.name", value: "conv1", reason: "layer names must be unique"),
               "duplicate name", cnn) { set(&$0, "lichen.layer.4.name", .string("conv1")) }
        expect(.invalidModel(key: "lichen.layer.0.name", value: "\"\"", reason: "layer names must not be empty"),
               "empty name", cnn) { set(&$0, "lichen.layer.0.name", .string("")) }
        expect(.invalidModel(key: "lichen.input_shape", value: "an array of 4 elements", reason: "the input shape must have 1 to 3 dimensions"),
               "rank-4 input", cnn) { set(&$0, "lichen.input_shape", ints([1, 1, 28, 28])) }
        expect(.invalidModel(key: "lichen.input_shape", value: "[0, 28, 28]", reason: "input dimensions must be in 1...16777216"),
               "zero input dimension", cnn) { set(&$0, "lichen.input_shape", ints([0, 28, 28])) }
        expect(.invalidModel(key: "lichen.layer.0.inputs", value: "[1, 28]", reason: "conv2d takes a [C, H, W] input"),
               "conv2d on a rank-2 input", cnn) { set(&$0, "lichen.input_shape", ints([1, 28])) }
    },
    Check("Format/ModelFile", "parameters missing, misshapen or of the wrong type are refused") { c in
        let spec = ModelSpec.fashionMNISTMLP
        guard let good = c.expectNoThrow("tensors", { () throws(LichenError) in try parameterTensors(spec) }) else { return }
        func attempt(_ tensors: [ModelTensor]) throws(LichenError) {
            _ = try ModelFile.writer(spec: spec, name: "p", tensors: tensors)
        }
        c.expectThrows(.notFound(kind: "tensor", name: "fc2.bias"), "missing bias") { () throws(LichenError) in
            try attempt(good.filter { $0.name != "fc2.bias" })
        }
        var wrong = good
        wrong[0] = ModelTensor(name: "fc1.weight", type: .f32, shape: shape([784, 256]), bytes: good[0].bytes)
        c.expectThrows(.parameterShapeMismatch(tensor: "fc1.weight", expected: "[256, 784]", got: "[784, 256]"),
                       "transposed weight") { () throws(LichenError) in try attempt(wrong) }
        wrong = good
        wrong[1] = ModelTensor(name: "fc1.bias", type: .f16, shape: shape([256]), bytes: [UInt8](repeating: 0, count: 512))
        c.expectThrows(.invalidModel(key: "fc1.bias", value: "f16", reason: "biases, norm parameters and running statistics must be f32"),
                       "f16 bias") { () throws(LichenError) in try attempt(wrong) }
        c.expectThrows(.invalidModel(key: "lichen.arch", value: "(extra)", reason: "this key is written from the description"),
                       "extra description key") { () throws(LichenError) in
            _ = try ModelFile.writer(spec: spec, name: "p", tensors: good, extras: [ModelMetadataEntry("lichen.arch", .string("x"))])
        }
    },
]
