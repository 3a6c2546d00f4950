/// One tensor to write into a model file: name, element type, shape (outermost first) and
/// its bytes in that type's layout.
public struct ModelTensor {
    public var name: String
    public var type: ElementType
    public var shape: Shape
    public var bytes: [UInt8]

    public init(name: String, type: ElementType, shape: Shape, bytes: [UInt8]) {
        self.name = name
        self.type = type
        self.shape = shape
        self.bytes = bytes
    }
}

/// A parameter tensor a model description needs: `<layer name>.<role suffix>` with its shape.
public struct ModelParameter {
    /// `<layer name>.weight`, `.bias`, `.running_mean` or `.running_var`.
    public let name: String
    /// Index of the layer in `ModelSpec.layers`.
    public let layer: Int
    /// "weight", "bias", "running_mean" or "running_var".
    public let suffix: String
    /// Lichen's shape, outermost first (PyTorch's shape of the same parameter).
    public let shape: Shape
    /// For conv weights, the equivalent 2-D shape [out, in/groups * kernel elements] (the
    /// im2col row layout, same bytes in f32). Quantized conv weights are stored in this shape,
    /// because GGUF needs a quantized tensor's innermost dimension to be whole 32-value blocks.
    public let flatShape: Shape?
    /// Whether `lichen quantize` may store it as Q8_0/Q4_0: the weights of linear and conv layers.
    public var isQuantizable: Bool { flatShape != nil }
    /// Values per row when quantized: the innermost dimension of `flatShape`.
    public var rowLength: Int { flatShape?.last ?? shape.last }
}

/// Lichen model files: GGUF v3 with `general.architecture = "lichen"`, the architecture under
/// `lichen.*` keys and the parameters as tensors `<layer name>.weight|bias|running_mean|running_var`.
/// The key schema is in `Format/README.md` ("Lichen model files").
///
/// Reading validates the description completely (`readSpec`) and the parameters against it
/// (`checkParameters`); a hostile file throws, naming the key or tensor.
public enum ModelFile {
    /// `general.architecture` of every Lichen model file.
    public static let architecture = "lichen"
    /// `general.quantization_version` written when any tensor is quantized (ggml's current value).
    public static let quantizationVersion: UInt32 = 2
    /// Longest layer name: the longest tensor name (64 bytes) minus ".running_mean".
    public static let maximumLayerNameLength = GGUFFile.maximumTensorNameLength - 13

    // MARK: - Writing

    /// Adds `general.architecture`, `general.name`, `general.quantization_version` (when
    /// `quantized`) and the description of `spec` under `lichen.*` to `writer`.
    ///
    /// - Throws: `.invalidModel` if `spec` is invalid (see `ModelSpec.inferShapes`);
    ///   `.invalidArgument` from the writer if a key was already added.
    public static func addSpec(
        _ spec: ModelSpec, name: String, quantized: Bool, to writer: inout GGUFWriter
    ) throws(LichenError) {
        _ = try spec.inferShapes()
        try writer.add("general.architecture", .string(architecture))
        try writer.add("general.name", .string(name))
        if quantized { try writer.add("general.quantization_version", .uint32(quantizationVersion)) }
        try writer.add("lichen.arch", .string(spec.architecture))
        try writer.add("lichen.input_shape", int32s(spec.inputShape.dimensions))
        try writer.add("lichen.class_count", .uint32(UInt32(spec.classCount)))
        try writer.add("lichen.layer_count", .uint32(UInt32(spec.layers.count)))
        for (i, layer) in spec.layers.enumerated() {
            func key(_ attribute: String) -> String { ModelSpec.layerKey(i, attribute) }
            try writer.add(key("kind"), .string(layer.kind.name))
            try writer.add(key("name"), .string(layer.name))
            try writer.add(key("inputs"), int32s(layer.inputs))
            switch layer.kind {
            case .linear:
                try writer.add(key("outputs"), .uint32(UInt32(layer.outputs)))
                try writer.add(key("bias"), .bool(layer.hasBias))
            case .conv2d:
                try writer.add(key("outputs"), .uint32(UInt32(layer.outputs)))
                try writer.add(key("kernel"), int32s([layer.kernelH, layer.kernelW]))
                try writer.add(key("stride"), int32s([layer.strideH, layer.strideW]))
                try writer.add(key("padding"), int32s([layer.padH, layer.padW]))
                try writer.add(key("dilation"), int32s([layer.dilationH, layer.dilationW]))
                try writer.add(key("groups"), .uint32(UInt32(layer.groups)))
                try writer.add(key("bias"), .bool(layer.hasBias))
            case .conv1d:
                try writer.add(key("outputs"), .uint32(UInt32(layer.outputs)))
                try writer.add(key("kernel"), int32s([layer.kernelW]))
                try writer.add(key("stride"), int32s([layer.strideW]))
                try writer.add(key("padding"), int32s([layer.padW]))
                try writer.add(key("dilation"), int32s([layer.dilationW]))
                try writer.add(key("groups"), .uint32(UInt32(layer.groups)))
                try writer.add(key("bias"), .bool(layer.hasBias))
            case .batchNorm:
                try writer.add(key("epsilon"), .float32(layer.epsilon))
                try writer.add(key("momentum"), .float32(layer.momentum))
            case .groupNorm:
                try writer.add(key("groups"), .uint32(UInt32(layer.groups)))
                try writer.add(key("epsilon"), .float32(layer.epsilon))
            case .layerNorm:
                try writer.add(key("epsilon"), .float32(layer.epsilon))
            case .maxPool2d, .avgPool2d:
                try writer.add(key("kernel"), int32s([layer.kernelH, layer.kernelW]))
                try writer.add(key("stride"), int32s([layer.strideH, layer.strideW]))
                try writer.add(key("padding"), int32s([layer.padH, layer.padW]))
            case .slice:
                try writer.add(key("start"), .uint32(UInt32(layer.start)))
                try writer.add(key("outputs"), .uint32(UInt32(layer.outputs)))
            case .relu, .gelu, .silu, .tanh, .elu, .globalAvgPool, .flatten, .add, .softmax, .concat:
                break
            }
        }
    }

    /// A writer holding a complete model file: the description of `spec`, then `extras` (provenance
    /// keys such as `lichen.train.seed`, in order), then `tensors` (in order). Every parameter
    /// `spec` needs must be among `tensors` with its shape (see `checkParameters`).
    ///
    /// - Throws: `.invalidModel`, `.notFound(kind: "tensor", ...)`, `.parameterShapeMismatch`;
    ///   `.invalidArgument` for a duplicate key or tensor, or an extra key that belongs to the
    ///   description (`isDescriptionKey`); the writer's tensor errors.
    /// - Note: Copies every tensor's bytes into the writer.
    public static func writer(
        spec: ModelSpec, name: String, tensors: [ModelTensor],
        extras: [ModelMetadataEntry] = [], alignment: Int = GGUFFile.defaultAlignment
    ) throws(LichenError) -> GGUFWriter {
        var quantized = false
        for t in tensors where t.type.isQuantized { quantized = true }
        var writer = try GGUFWriter(alignment: alignment)
        try addSpec(spec, name: name, quantized: quantized, to: &writer)
        for extra in extras {
            guard !isDescriptionKey(extra.key) else {
                throw .invalidModel(key: extra.key, value: "(extra)", reason: "this key is written from the description")
            }
            try writer.add(extra.key, extra.value)
        }
        var found: [TensorSummary] = []
        for t in tensors {
            try writer.addTensor(t.name, type: t.type, shape: t.shape, bytes: t.bytes)
            found.append(TensorSummary(name: t.name, type: t.type, shape: t.shape))
        }
        try checkParameters(spec, found)
        return writer
    }

    /// Writes a complete model file to `path` atomically; see `writer(spec:name:tensors:extras:alignment:)`.
    public static func write(
        spec: ModelSpec, name: String, tensors: [ModelTensor], extras: [ModelMetadataEntry] = [],
        toPath path: String
    ) throws(LichenError) {
        try writer(spec: spec, name: name, tensors: tensors, extras: extras).write(toPath: path)
    }

    /// Whether `key` is written by `addSpec` (or is `general.alignment`): the description keys
    /// a tool rewriting a model file must not copy as extras.
    public static func isDescriptionKey(_ key: String) -> Bool {
        switch key {
        case "general.architecture", "general.name", "general.quantization_version", "general.alignment",
             "lichen.arch", "lichen.input_shape", "lichen.class_count", "lichen.layer_count":
            return true
        default:
            return key.utf8.starts(with: "lichen.layer.".utf8)
        }
    }

    // MARK: - Reading

    /// The model description in `file`, validated completely: `general.architecture` is "lichen",
    /// every key the schema needs is present with an accepted type, kinds are known, the layer
    /// count is bounded by the file's metadata, arrays have the expected lengths, and the result
    /// passes `ModelSpec.inferShapes()` (input indices, attribute ranges, shapes).
    ///
    /// - Throws: `.notFound(kind: "metadata key", name:)` for a missing key; `.valueTypeMismatch`
    ///   for a key of the wrong type; `.invalidModel(key:value:reason:)` for a bad value.
    /// - Note: Allocates the spec. Extra keys (provenance) are ignored.
    public static func readSpec(_ file: GGUFFile) throws(LichenError) -> ModelSpec {
        let arch = try file.string("general.architecture")
        guard arch == architecture else {
            throw .invalidModel(key: "general.architecture", value: quote(arch), reason: "not a Lichen model file (expected \"lichen\")")
        }
        let name = try file.string("lichen.arch")
        let inputDims = try smallInts(file, "lichen.input_shape", counts: 1...3, reason: "the input shape must have 1 to 3 dimensions")
        for d in inputDims where d < 1 || d > ModelSpec.maximumExtent {
            throw .invalidModel(key: "lichen.input_shape", value: specText(inputDims), reason: "input dimensions must be in 1...16777216")
        }
        let inputShape = try Shape(dimensions: inputDims)
        let classCount = try file.int("lichen.class_count")
        let layerCount = try file.int("lichen.layer_count")
        // Each layer has at least three keys (kind, name, inputs): a count beyond that is a lie.
        guard layerCount >= 1, layerCount <= file.metadataCount / 3 else {
            throw .invalidModel(key: "lichen.layer_count", value: String(layerCount),
                                reason: "must be at least 1 and at most a third of the file's metadata keys")
        }
        var layers: [LayerSpec] = []
        layers.reserveCapacity(layerCount)
        for i in 0..<layerCount {
            layers.append(try readLayer(file, i))
        }
        let spec = ModelSpec(architecture: name, inputShape: inputShape, classCount: classCount, layers: layers)
        _ = try spec.inferShapes()
        return spec
    }

    private static func readLayer(_ file: GGUFFile, _ i: Int) throws(LichenError) -> LayerSpec {
        func key(_ attribute: String) -> String { ModelSpec.layerKey(i, attribute) }
        let kindName = try file.string(key("kind"))
        var kind: LayerKind? = nil
        for k in LayerKind.allCases where k.name == kindName { kind = k }
        guard let kind else { throw .invalidModel(key: key("kind"), value: quote(kindName), reason: "unknown layer kind") }
        let name = try file.string(key("name"))
        let inputs = try smallInts(file, key("inputs"), counts: 1...2, reason: "a layer takes one or two inputs")
        var layer = LayerSpec(kind: kind, name: name, inputs: inputs)

        func count(_ attribute: String) throws(LichenError) -> Int {
            let v = try file.int(key(attribute))
            guard v >= 1, v <= ModelSpec.maximumExtent else {
                throw .invalidModel(key: key(attribute), value: String(v), reason: "must be in 1...16777216")
            }
            return v
        }
        func pair(_ attribute: String, _ n: Int) throws(LichenError) -> [Int] {
            let v = try smallInts(file, key(attribute), counts: n...n,
                                  reason: n == 2 ? "must have two elements [h, w]" : "must have one element")
            for x in v where x < 0 || x > ModelSpec.maximumExtent {
                throw .invalidModel(key: key(attribute), value: specText(v), reason: "elements must be in 0...16777216")
            }
            return v
        }
        func epsilon() throws(LichenError) -> Float { try file.float(key("epsilon")) }

        switch kind {
        case .linear:
            layer.outputs = try count("outputs")
            layer.hasBias = try file.bool(key("bias"))
        case .conv2d:
            layer.outputs = try count("outputs")
            let k = try pair("kernel", 2), s = try pair("stride", 2), p = try pair("padding", 2), d = try pair("dilation", 2)
            layer.kernelH = k[0]; layer.kernelW = k[1]
            layer.strideH = s[0]; layer.strideW = s[1]
            layer.padH = p[0]; layer.padW = p[1]
            layer.dilationH = d[0]; layer.dilationW = d[1]
            layer.groups = try count("groups")
            layer.hasBias = try file.bool(key("bias"))
        case .conv1d:
            layer.outputs = try count("outputs")
            layer.kernelW = try pair("kernel", 1)[0]
            layer.strideW = try pair("stride", 1)[0]
            layer.padW = try pair("padding", 1)[0]
            layer.dilationW = try pair("dilation", 1)[0]
            layer.groups = try count("groups")
            layer.hasBias = try file.bool(key("bias"))
        case .batchNorm:
            layer.epsilon = try epsilon()
            layer.momentum = try file.float(key("momentum"))
        case .groupNorm:
            layer.groups = try count("groups")
            layer.epsilon = try epsilon()
        case .layerNorm:
            layer.epsilon = try epsilon()
        case .maxPool2d, .avgPool2d:
            let k = try pair("kernel", 2), s = try pair("stride", 2), p = try pair("padding", 2)
            layer.kernelH = k[0]; layer.kernelW = k[1]
            layer.strideH = s[0]; layer.strideW = s[1]
            layer.padH = p[0]; layer.padW = p[1]
        case .slice:
            let start = try file.int(key("start"))
            guard start >= 0, start <= ModelSpec.maximumExtent else {
                throw .invalidModel(key: key("start"), value: String(start), reason: "must be in 0...16777216")
            }
            layer.start = start
            layer.outputs = try count("outputs")
        case .relu, .gelu, .silu, .tanh, .elu, .globalAvgPool, .flatten, .add, .softmax, .concat:
            break
        }
        return layer
    }

    /// An integer array under `key` whose length is in `counts` (checked before it is copied).
    private static func smallInts(
        _ file: GGUFFile, _ key: String, counts: ClosedRange<Int>, reason: StaticString
    ) throws(LichenError) -> [Int] {
        let array = try file.array(key)
        guard counts.contains(array.count) else {
            throw .invalidModel(key: key, value: "an array of " + String(array.count) + " elements", reason: reason)
        }
        return try array.ints()
    }

    // MARK: - Parameters

    /// Every parameter tensor `spec` needs, in layer order, with its shape.
    ///
    /// linear: weight [out, in] (+ bias [out]); conv2d: weight [out, in/groups, kh, kw];
    /// conv1d: weight [out, in/groups, k] (+ bias [out]); batch norm: weight, bias,
    /// running_mean, running_var [C]; group norm: weight, bias [C]; layer norm: weight, bias
    /// [features of a sample]. Other kinds have none.
    ///
    /// - Throws: `.invalidModel` if the spec is invalid or a parameter's size overflows.
    public static func expectedParameters(_ spec: ModelSpec) throws(LichenError) -> [ModelParameter] {
        let shapes = try spec.inferShapes()
        var result: [ModelParameter] = []
        for (i, layer) in spec.layers.enumerated() {
            let input = layer.inputs[0] == -1 ? spec.inputShape : shapes[layer.inputs[0]]
            func add(_ suffix: String, _ dims: [Int], flat: [Int]? = nil) throws(LichenError) {
                let shape = try Shape(dimensions: dims)
                guard let n = shape.elementCount, n <= 1 << 40 else {
                    throw .invalidModel(key: ModelSpec.layerKey(i, "kind"), value: layer.kind.name, reason: "a parameter is too large")
                }
                let flatShape: Shape? = flat == nil ? nil : try Shape(dimensions: flat ?? [])
                result.append(ModelParameter(name: layer.name + "." + suffix, layer: i, suffix: suffix,
                                             shape: shape, flatShape: flatShape))
            }
            switch layer.kind {
            case .linear:
                try add("weight", [layer.outputs, input[0]], flat: [layer.outputs, input[0]])
                if layer.hasBias { try add("bias", [layer.outputs]) }
            case .conv2d:
                let c = input[0] / layer.groups
                try add("weight", [layer.outputs, c, layer.kernelH, layer.kernelW],
                        flat: [layer.outputs, c * layer.kernelH * layer.kernelW])
                if layer.hasBias { try add("bias", [layer.outputs]) }
            case .conv1d:
                let c = input[0] / layer.groups
                try add("weight", [layer.outputs, c, layer.kernelW], flat: [layer.outputs, c * layer.kernelW])
                if layer.hasBias { try add("bias", [layer.outputs]) }
            case .batchNorm:
                for suffix in ["weight", "bias", "running_mean", "running_var"] { try add(suffix, [input[0]]) }
            case .groupNorm:
                try add("weight", [input[0]])
                try add("bias", [input[0]])
            case .layerNorm:
                let features = input.elementCount ?? 0
                try add("weight", [features])
                try add("bias", [features])
            case .relu, .gelu, .silu, .tanh, .elu, .maxPool2d, .avgPool2d, .globalAvgPool, .flatten, .add, .softmax, .concat, .slice:
                break
            }
        }
        return result
    }

    /// Checks that `file` holds every parameter `spec` needs, each with its shape (conv weights:
    /// the 4-D/3-D shape or the flat 2-D one) and an accepted type: f32, f16, q8_0 or q4_0 for
    /// linear and conv weights, f32 for everything else. Extra tensors are allowed.
    ///
    /// Every value is checked finite here, the one place for all element types: f32 and f16
    /// elements, and each q8_0/q4_0 block's fp16 scale (one NaN scale poisons every output the
    /// block feeds).
    ///
    /// - Throws: `.notFound(kind: "tensor", name:)`, `.parameterShapeMismatch`,
    ///   `.invalidModel(key: <tensor name>, ...)` for a type not accepted,
    ///   `.nonFiniteTensor(tensor:unit:index:)` naming the tensor and the element or block.
    public static func checkParameters(_ file: GGUFFile, spec: ModelSpec) throws(LichenError) {
        var found: [TensorSummary] = []
        for t in file.tensors { found.append(TensorSummary(name: t.name, type: t.type, shape: t.shape)) }
        try checkParameters(spec, found)
        for p in try expectedParameters(spec) {
            let info = try file.tensorInfo(p.name)
            if let i = try file.view(info).firstNonFiniteValue() {
                throw .nonFiniteTensor(tensor: p.name, unit: info.type.nonFiniteUnit, index: i)
            }
        }
    }

    struct TensorSummary {
        let name: String
        let type: ElementType
        let shape: Shape
    }

    private static func checkParameters(_ spec: ModelSpec, _ tensors: [TensorSummary]) throws(LichenError) {
        for p in try expectedParameters(spec) {
            var match: TensorSummary? = nil
            for t in tensors where t.name == p.name { match = t }
            guard let t = match else { throw .notFound(kind: "tensor", name: p.name) }
            let shapeOK = t.shape == p.shape || (p.flatShape != nil && t.shape == p.flatShape)
            guard shapeOK else {
                throw .parameterShapeMismatch(tensor: p.name, expected: specText(p.shape), got: specText(t.shape))
            }
            if p.isQuantizable {
                if t.type.isQuantized && t.shape.rank > 2 && t.shape.last % 32 != 0 {
                    throw .invalidModel(key: p.name, value: t.type.name, reason: "quantized conv weights are stored 2-D [out, in/groups*kernel]")
                }
            } else if t.type != .f32 {
                throw .invalidModel(key: p.name, value: t.type.name, reason: "biases, norm parameters and running statistics must be f32")
            }
        }
    }

    private static func int32s(_ values: [Int]) -> GGUFMetadataValue {
        var elements: [GGUFMetadataValue] = []
        for v in values { elements.append(.int32(Int32(truncatingIfNeeded: v))) }
        return .array(elementType: .int32, elements: elements)
    }

    private static func quote(_ s: String) -> String { "\"" + s + "\"" }
}

/// One metadata key and value, for `ModelFile.writer(spec:name:tensors:extras:alignment:)`.
public struct ModelMetadataEntry {
    public var key: String
    public var value: GGUFMetadataValue

    public init(_ key: String, _ value: GGUFMetadataValue) {
        self.key = key
        self.value = value
    }
}
