import Foundation
import Lichen

/// An architecture description for `lichen import --arch FILE.json` (format in Import/README.md):
/// the `ModelSpec` it describes plus, per layer, the PyTorch module name its parameters have in
/// the safetensors file (`source`, default: the layer's name).
struct ArchitectureFile {
    let spec: ModelSpec
    /// PyTorch module name of each layer's parameters.
    let sources: [String]

    static let topLevelKeys: Set<String> = ["architecture", "input_shape", "class_count", "layers"]
    static let layerKeys: Set<String> = ["kind", "name", "source", "inputs", "outputs", "kernel", "stride", "padding",
                                         "dilation", "groups", "bias", "epsilon", "momentum", "start"]

    /// The built-in architecture `name` (sources = layer names), or nil.
    static func builtin(_ name: String) -> ArchitectureFile? {
        guard let spec = ModelSpec.builtin(named: name) else { return nil }
        return ArchitectureFile(spec: spec, sources: spec.layers.map(\.name))
    }

    init(spec: ModelSpec, sources: [String]) {
        self.spec = spec
        self.sources = sources
    }

    /// Reads and validates the JSON description at `path`.
    init(path: String) throws {
        func fail(_ message: String) -> CommandFailure { CommandFailure("\(path): \(message)") }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw fail("cannot read the architecture file: \(error.localizedDescription)")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("the architecture file is not a JSON object")
        }
        for key in root.keys where !Self.topLevelKeys.contains(key) {
            throw fail("unknown key '\(key)' (expected \(Self.topLevelKeys.sorted().joined(separator: ", ")))")
        }
        guard let architecture = root["architecture"] as? String, !architecture.isEmpty else {
            throw fail("'architecture' must be a non-empty string")
        }
        guard let inputDims = SafetensorsFile.integers(root["input_shape"]), (1...3).contains(inputDims.count),
              inputDims.allSatisfy({ $0 >= 1 }) else {
            throw fail("'input_shape' must be 1 to 3 positive integers (per sample, e.g. [1, 28, 28])")
        }
        guard let classes = root["class_count"].flatMap(SafetensorsFile.integer), classes >= 1 else {
            throw fail("'class_count' must be a positive integer")
        }
        guard let entries = root["layers"] as? [Any], !entries.isEmpty else {
            throw fail("'layers' must be a non-empty array")
        }
        var layers: [LayerSpec] = []
        var sources: [String] = []
        for (i, item) in entries.enumerated() {
            func bad(_ message: String) -> CommandFailure { fail("layers[\(i)]: \(message)") }
            guard let entry = item as? [String: Any] else { throw bad("each layer must be a JSON object") }
            for key in entry.keys where !Self.layerKeys.contains(key) {
                throw bad("unknown key '\(key)' (expected \(Self.layerKeys.sorted().joined(separator: ", ")))")
            }
            guard let kindName = entry["kind"] as? String else { throw bad("'kind' must be a string") }
            guard let kind = LayerKind.allCases.first(where: { $0.name == kindName }) else {
                throw bad("unknown kind '\(kindName)' (expected \(LayerKind.allCases.map(\.name).joined(separator: ", ")))")
            }
            guard let name = entry["name"] as? String, !name.isEmpty else { throw bad("'name' must be a non-empty string") }
            var inputs: [Int] = [i - 1]
            if let raw = entry["inputs"] {
                guard let list = raw as? [Any] else { throw bad("'inputs' must be an array of layer indices or names") }
                inputs = []
                for x in list {
                    if let s = x as? String {
                        if s == "input" { inputs.append(-1); continue }
                        guard let j = layers.firstIndex(where: { $0.name == s }) else {
                            throw bad("input '\(s)' names no earlier layer (use \"input\" for the model input)")
                        }
                        inputs.append(j)
                    } else if let j = SafetensorsFile.integer(x) {
                        inputs.append(j)
                    } else {
                        throw bad("'inputs' must be an array of layer indices or names")
                    }
                }
            }
            var layer = LayerSpec(kind: kind, name: name, inputs: inputs)
            func int(_ key: String) throws -> Int? {
                guard let raw = entry[key] else { return nil }
                guard let v = SafetensorsFile.integer(raw) else { throw bad("'\(key)' must be an integer") }
                return v
            }
            /// An integer or [h, w] (one element for conv1d).
            func pair(_ key: String) throws -> (Int, Int)? {
                guard let raw = entry[key] else { return nil }
                if let v = SafetensorsFile.integer(raw) { return (v, v) }
                if let v = SafetensorsFile.integers(raw) {
                    if kind == .conv1d, v.count == 1 { return (1, v[0]) }
                    if kind != .conv1d, v.count == 2 { return (v[0], v[1]) }
                }
                throw bad(kind == .conv1d ? "'\(key)' must be an integer or [k]" : "'\(key)' must be an integer or [h, w]")
            }
            func float(_ key: String) throws -> Float? {
                guard let raw = entry[key] else { return nil }
                guard let n = raw as? NSNumber, !String(describing: type(of: raw)).contains("Boolean") else {
                    throw bad("'\(key)' must be a number")
                }
                return n.floatValue
            }
            if let v = try int("outputs") { layer.outputs = v }
            if let v = try int("start") { layer.start = v }
            if let v = try int("groups") { layer.groups = v }
            if let raw = entry["bias"] {
                guard String(describing: type(of: raw)).contains("Boolean"), let b = raw as? Bool else {
                    throw bad("'bias' must be true or false")
                }
                layer.hasBias = b
            }
            if let v = try float("epsilon") { layer.epsilon = v }
            if let v = try float("momentum") { layer.momentum = v }
            if let (h, w) = try pair("kernel") { layer.kernelH = h; layer.kernelW = w }
            if kind == .maxPool2d || kind == .avgPool2d {  // PyTorch: pooling stride defaults to the kernel
                layer.strideH = layer.kernelH; layer.strideW = layer.kernelW
            }
            if let (h, w) = try pair("stride") { layer.strideH = h; layer.strideW = w }
            if let (h, w) = try pair("padding") { layer.padH = h; layer.padW = w }
            if let (h, w) = try pair("dilation") { layer.dilationH = h; layer.dilationW = w }
            let source: String
            if let raw = entry["source"] {
                guard let s = raw as? String else { throw bad("'source' must be a string (a PyTorch module name)") }
                source = s
            } else {
                source = name
            }
            layers.append(layer)
            sources.append(source)
        }
        let shape: Shape
        do { shape = try Shape(dimensions: inputDims) } catch { throw fail("'input_shape': \(error)") }
        let spec = ModelSpec(architecture: architecture, inputShape: shape, classCount: classes, layers: layers)
        _ = try naming(path) { () throws(LichenError) in try spec.inferShapes() }
        self.spec = spec
        self.sources = sources
    }
}
