/// Shape inference and validation of a `ModelSpec`: every layer's per-sample output shape,
/// computed layer by layer from the input shape, with every attribute and connection checked.
///
/// Errors name the model-file key of the offending value (`lichen.layer.<i>.<attribute>`), so
/// a description read from a file and one built in code fail with the same message.
extension ModelSpec {
    /// Largest value accepted for any dimension or integer attribute (kernel, stride, padding,
    /// dilation, groups, outputs, input dimensions). Keeps the shape arithmetic far from overflow.
    public static let maximumExtent = 1 << 24

    /// The metadata key of attribute `attribute` of layer `index`: `lichen.layer.<index>.<attribute>`.
    public static func layerKey(_ index: Int, _ attribute: String) -> String {
        "lichen.layer." + String(index) + "." + attribute
    }

    /// Validates the description and returns each layer's output shape (per sample, no batch
    /// dimension), in layer order.
    ///
    /// Rules: at least one layer; input shape of rank 1 to 3 with dimensions in 1...`maximumExtent`;
    /// layer names non-empty and unique; every input index names an earlier layer or -1 (the
    /// model input), one input per layer except `add` (two, of equal shapes); linear takes
    /// [features]; conv2d and pooling take [C, H, W]; conv1d takes [C, L]; group norm's channel
    /// count is a multiple of `groups`; conv channels are multiples of `groups`; kernel, stride,
    /// dilation >= 1, padding >= 0 (pooling: at most half the kernel); every output dimension >= 1;
    /// epsilon finite and > 0; momentum in [0, 1]; the last layer's output is [classCount].
    ///
    /// - Throws: `.invalidModel(key:value:reason:)` naming the first offending key.
    /// - Note: Allocates the result array.
    public func inferShapes() throws(LichenError) -> [Shape] {
        guard !layers.isEmpty else {
            throw .invalidModel(key: "lichen.layer_count", value: "0", reason: "a model needs at least one layer")
        }
        guard inputShape.rank >= 1, inputShape.rank <= 3 else {
            throw .invalidModel(key: "lichen.input_shape", value: specText(inputShape),
                                reason: "the per-sample input shape must have rank 1 to 3")
        }
        for d in inputShape.dimensions where d < 1 || d > ModelSpec.maximumExtent {
            throw .invalidModel(key: "lichen.input_shape", value: specText(inputShape),
                                reason: "input dimensions must be in 1...16777216")
        }
        guard classCount >= 1, classCount <= ModelSpec.maximumExtent else {
            throw .invalidModel(key: "lichen.class_count", value: String(classCount), reason: "must be in 1...16777216")
        }
        var shapes: [Shape] = []
        shapes.reserveCapacity(layers.count)
        for (i, layer) in layers.enumerated() {
            guard !layer.name.isEmpty else {
                throw .invalidModel(key: ModelSpec.layerKey(i, "name"), value: "\"\"", reason: "layer names must not be empty")
            }
            guard layer.name.utf8.count <= ModelFile.maximumLayerNameLength else {
                throw .invalidModel(key: ModelSpec.layerKey(i, "name"), value: layer.name,
                                    reason: "layer names must be at most 51 bytes (tensor names are at most 64)")
            }
            for j in 0..<i where layers[j].name == layer.name {
                throw .invalidModel(key: ModelSpec.layerKey(i, "name"), value: layer.name, reason: "layer names must be unique")
            }
            let wanted = layer.kind == .add || layer.kind == .concat ? 2 : 1
            guard layer.inputs.count == wanted else {
                throw .invalidModel(key: ModelSpec.layerKey(i, "inputs"), value: specText(layer.inputs),
                                    reason: wanted == 2 ? "add and concat take exactly two inputs" : "this kind takes exactly one input")
            }
            var inputs: [Shape] = []
            for index in layer.inputs {
                guard index >= -1, index < i else {
                    throw .invalidModel(key: ModelSpec.layerKey(i, "inputs"), value: specText(layer.inputs),
                                        reason: "an input must be -1 (the model input) or an earlier layer")
                }
                inputs.append(index == -1 ? inputShape : shapes[index])
            }
            shapes.append(try ModelSpec.outputShape(of: layer, index: i, inputs: inputs))
        }
        let last = shapes[shapes.count - 1]
        guard last.rank == 1, last[0] == classCount else {
            throw .invalidModel(key: "lichen.class_count", value: String(classCount),
                                reason: "the last layer's output must be [class_count]")
        }
        return shapes
    }

    /// The output shape of `layer` (layer `index`) for input shapes `inputs`, checking its attributes.
    static func outputShape(of layer: LayerSpec, index i: Int, inputs: [Shape]) throws(LichenError) -> Shape {
        let x = inputs[0]
        func fail(_ attribute: String, _ value: String, _ reason: StaticString) -> LichenError {
            .invalidModel(key: layerKey(i, attribute), value: value, reason: reason)
        }
        func extent(_ attribute: String, _ v: Int, minimum: Int) throws(LichenError) {
            guard v >= minimum, v <= maximumExtent else {
                throw fail(attribute, String(v), minimum == 0 ? "must be in 0...16777216" : "must be in 1...16777216")
            }
        }
        func window(_ attribute: String, _ a: Int, _ b: Int, minimum: Int) throws(LichenError) {
            try extent(attribute, a, minimum: minimum)
            try extent(attribute, b, minimum: minimum)
        }
        /// Output length of a sliding window; throws when the window does not fit.
        func slide(_ n: Int, kernel k: Int, stride s: Int, pad p: Int, dilation d: Int) throws(LichenError) -> Int {
            let span = d * (k - 1) + 1
            let room = n + 2 * p - span
            guard room >= 0 else {
                throw fail("kernel", specText([layer.kernelH, layer.kernelW]), "the kernel does not fit in the (padded) input")
            }
            return room / s + 1
        }
        func convChecks(channels: Int) throws(LichenError) {
            try extent("outputs", layer.outputs, minimum: 1)
            try extent("groups", layer.groups, minimum: 1)
            guard channels % layer.groups == 0, layer.outputs % layer.groups == 0 else {
                throw fail("groups", String(layer.groups), "input and output channels must be multiples of groups")
            }
        }
        func make(_ dims: [Int]) throws(LichenError) -> Shape {
            let shape = try Shape(dimensions: dims)
            guard let n = shape.elementCount, n <= 1 << 40 else {
                throw fail("kind", layer.kind.name, "the output is too large")
            }
            return shape
        }

        switch layer.kind {
        case .linear:
            guard x.rank == 1 else { throw fail("inputs", specText(x), "linear takes a [features] input (add a flatten)") }
            try extent("outputs", layer.outputs, minimum: 1)
            return try make([layer.outputs])

        case .conv2d:
            guard x.rank == 3 else { throw fail("inputs", specText(x), "conv2d takes a [C, H, W] input") }
            try convChecks(channels: x[0])
            try window("kernel", layer.kernelH, layer.kernelW, minimum: 1)
            try window("stride", layer.strideH, layer.strideW, minimum: 1)
            try window("padding", layer.padH, layer.padW, minimum: 0)
            try window("dilation", layer.dilationH, layer.dilationW, minimum: 1)
            let h = try slide(x[1], kernel: layer.kernelH, stride: layer.strideH, pad: layer.padH, dilation: layer.dilationH)
            let w = try slide(x[2], kernel: layer.kernelW, stride: layer.strideW, pad: layer.padW, dilation: layer.dilationW)
            return try make([layer.outputs, h, w])

        case .conv1d:
            guard x.rank == 2 else { throw fail("inputs", specText(x), "conv1d takes a [C, L] input") }
            try convChecks(channels: x[0])
            try extent("kernel", layer.kernelW, minimum: 1)
            try extent("stride", layer.strideW, minimum: 1)
            try extent("padding", layer.padW, minimum: 0)
            try extent("dilation", layer.dilationW, minimum: 1)
            let l = try slide(x[1], kernel: layer.kernelW, stride: layer.strideW, pad: layer.padW, dilation: layer.dilationW)
            return try make([layer.outputs, l])

        case .batchNorm, .groupNorm, .layerNorm:
            guard layer.epsilon.isFinite, layer.epsilon > 0 else {
                throw fail("epsilon", floatText(layer.epsilon), "epsilon must be finite and > 0")
            }
            if layer.kind == .batchNorm {
                guard layer.momentum >= 0, layer.momentum <= 1 else {
                    throw fail("momentum", floatText(layer.momentum), "momentum must be in [0, 1]")
                }
            }
            if layer.kind == .groupNorm {
                try extent("groups", layer.groups, minimum: 1)
                guard x[0] % layer.groups == 0 else {
                    throw fail("groups", String(layer.groups), "the channel count must be a multiple of groups")
                }
            }
            return x

        case .relu, .gelu, .silu, .tanh, .elu, .softmax:
            return x

        case .maxPool2d, .avgPool2d:
            guard x.rank == 3 else { throw fail("inputs", specText(x), "pooling takes a [C, H, W] input") }
            try window("kernel", layer.kernelH, layer.kernelW, minimum: 1)
            try window("stride", layer.strideH, layer.strideW, minimum: 1)
            try window("padding", layer.padH, layer.padW, minimum: 0)
            guard 2 * layer.padH <= layer.kernelH, 2 * layer.padW <= layer.kernelW else {
                throw fail("padding", specText([layer.padH, layer.padW]), "pooling padding must be at most half the kernel")
            }
            let h = try slide(x[1], kernel: layer.kernelH, stride: layer.strideH, pad: layer.padH, dilation: 1)
            let w = try slide(x[2], kernel: layer.kernelW, stride: layer.strideW, pad: layer.padW, dilation: 1)
            return try make([x[0], h, w])

        case .globalAvgPool:
            guard x.rank == 3 else { throw fail("inputs", specText(x), "global average pooling takes a [C, H, W] input") }
            return try make([x[0]])

        case .flatten:
            guard let n = x.elementCount else { throw fail("inputs", specText(x), "the input is too large") }
            return try make([n])

        case .add:
            guard inputs[0] == inputs[1] else {
                throw fail("inputs", specText(inputs[0]) + " + " + specText(inputs[1]), "add takes two inputs of the same shape")
            }
            return x

        case .concat:
            guard x.rank == 1 && inputs[1].rank == 1 else {
                throw fail("inputs", specText(inputs[0]) + " + " + specText(inputs[1]), "concat takes two [features] inputs")
            }
            return try make([x[0] + inputs[1][0]])

        case .slice:
            guard x.rank == 1 else { throw fail("inputs", specText(x), "slice takes a [features] input") }
            try extent("outputs", layer.outputs, minimum: 1)
            guard layer.start >= 0 && layer.start <= x[0] - layer.outputs else {
                throw fail("start", String(layer.start), "start + outputs must be at most the input's features")
            }
            return try make([layer.outputs])
        }
    }
}

/// "[a, b, c]" for a shape.
func specText(_ shape: Shape) -> String { specText(shape.dimensions) }

/// "[a, b, c]" for integers.
func specText(_ values: [Int]) -> String {
    var s = "["
    for (i, v) in values.enumerated() { s += (i == 0 ? "" : ", ") + String(v) }
    return s + "]"
}

