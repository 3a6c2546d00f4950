/// The built-in architectures, by name (`lichen import --arch fmnist-cnn`, `lichen train --arch cnn`).
///
/// Layer names follow PyTorch module names of the same network written with named attributes
/// (`self.conv1 = nn.Conv2d(...)`), so a state dict of that network imports unchanged.
extension ModelSpec {
    /// Names accepted by `builtin(named:)`.
    public static let builtinNames: [String] = ["fmnist-cnn", "fmnist-mlp"]

    /// The built-in architecture called `name` ("fmnist-cnn" or "fmnist-mlp"; "cnn" and "mlp"
    /// are accepted as short names), or nil.
    public static func builtin(named name: String) -> ModelSpec? {
        switch name {
        case "fmnist-cnn", "cnn": return fashionMNISTCNN
        case "fmnist-mlp", "mlp": return fashionMNISTMLP
        default: return nil
        }
    }

    /// Fashion-MNIST CNN, input [1, 28, 28], 10 classes:
    /// conv1 (1→32, 3x3, pad 1) · bn1 · relu1 · pool1 (max 2x2) · conv2 (32→64, 3x3, pad 1) · bn2 ·
    /// relu2 · pool2 (max 2x2) · flatten · fc1 (3136→128) · relu3 · fc2 (128→10).
    public static var fashionMNISTCNN: ModelSpec {
        var layers: [LayerSpec] = []
        layers.append(conv("conv1", from: -1, outputs: 32))
        layers.append(simple(.batchNorm, "bn1", from: 0))
        layers.append(simple(.relu, "relu1", from: 1))
        layers.append(maxPool("pool1", from: 2))
        layers.append(conv("conv2", from: 3, outputs: 64))
        layers.append(simple(.batchNorm, "bn2", from: 4))
        layers.append(simple(.relu, "relu2", from: 5))
        layers.append(maxPool("pool2", from: 6))
        layers.append(simple(.flatten, "flatten", from: 7))
        layers.append(linear("fc1", from: 8, outputs: 128))
        layers.append(simple(.relu, "relu3", from: 9))
        layers.append(linear("fc2", from: 10, outputs: 10))
        return ModelSpec(architecture: "fmnist-cnn", inputShape: fashionMNISTInput, classCount: 10, layers: layers)
    }

    /// Fashion-MNIST MLP, input [1, 28, 28], 10 classes:
    /// flatten · fc1 (784→256) · relu1 · fc2 (256→128) · relu2 · fc3 (128→10).
    public static var fashionMNISTMLP: ModelSpec {
        var layers: [LayerSpec] = []
        layers.append(simple(.flatten, "flatten", from: -1))
        layers.append(linear("fc1", from: 0, outputs: 256))
        layers.append(simple(.relu, "relu1", from: 1))
        layers.append(linear("fc2", from: 2, outputs: 128))
        layers.append(simple(.relu, "relu2", from: 3))
        layers.append(linear("fc3", from: 4, outputs: 10))
        return ModelSpec(architecture: "fmnist-mlp", inputShape: fashionMNISTInput, classCount: 10, layers: layers)
    }

    private static var fashionMNISTInput: Shape {
        do { return try Shape(dimensions: [1, 28, 28]) } catch {
            fatalError("a constant rank-3 shape with positive dimensions is always accepted")
        }
    }

    private static func simple(_ kind: LayerKind, _ name: String, from input: Int) -> LayerSpec {
        LayerSpec(kind: kind, name: name, inputs: [input])
    }

    private static func linear(_ name: String, from input: Int, outputs: Int) -> LayerSpec {
        var l = LayerSpec(kind: .linear, name: name, inputs: [input])
        l.outputs = outputs
        return l
    }

    /// 3x3 convolution, stride 1, padding 1, with bias.
    private static func conv(_ name: String, from input: Int, outputs: Int) -> LayerSpec {
        var l = LayerSpec(kind: .conv2d, name: name, inputs: [input])
        l.outputs = outputs
        l.kernelH = 3; l.kernelW = 3
        l.padH = 1; l.padW = 1
        return l
    }

    /// 2x2 max pooling, stride 2.
    private static func maxPool(_ name: String, from input: Int) -> LayerSpec {
        var l = LayerSpec(kind: .maxPool2d, name: name, inputs: [input])
        l.kernelH = 2; l.kernelW = 2
        l.strideH = 2; l.strideW = 2
        return l
    }
}
