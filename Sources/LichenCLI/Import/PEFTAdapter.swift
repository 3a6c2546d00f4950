import Foundation
import Lichen

/// A PEFT LoRA adapter directory (`adapter_config.json` + `adapter_model.safetensors`) converted
/// to a `LoRAAdapter` over a Lichen base model (format and mapping in Import/README.md, "PEFT adapters").
struct PEFTAdapter {
    /// One converted target.
    struct Target {
        var module: String
        var weight: String
        var rank: Int
        var a: [Float]  // [r, n_in]
        var b: [Float]  // [n_out, r]
        var nIn: Int
        var nOut: Int
    }

    let directory: String
    let rank: Int
    let loraAlpha: Double
    /// The alpha written to the file (lora_alpha, or lora_alpha * sqrt(r) for rsLoRA).
    let alpha: Float
    let useRSLoRA: Bool
    let targetModules: String
    let targets: [Target]

    static let configKeysRejectedWhenSet = ["use_dora", "fan_in_fan_out"]

    /// Reads `directory` and maps its modules to the layers of `spec` through `sources` (the
    /// PyTorch module name of each layer).
    init(directory: String, spec: ModelSpec, sources: [String]) throws {
        self.directory = directory
        let configPath = (directory as NSString).appendingPathComponent("adapter_config.json")
        func fail(_ message: String) -> CommandFailure { CommandFailure("\(configPath): \(message)") }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: configPath)) } catch {
            throw fail("cannot read the PEFT config: \(error.localizedDescription)")
        }
        guard let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        if let type = config["peft_type"] {
            guard let t = type as? String, t.uppercased() == "LORA" else { throw fail("peft_type must be \"LORA\", not \(type)") }
        }
        guard let r = config["r"].flatMap(SafetensorsFile.integer), r >= 1 else { throw fail("'r' must be a positive integer") }
        guard let alphaNumber = config["lora_alpha"] as? NSNumber, alphaNumber.doubleValue.isFinite, alphaNumber.doubleValue > 0 else {
            throw fail("'lora_alpha' must be a number > 0")
        }
        for key in PEFTAdapter.configKeysRejectedWhenSet {
            if let v = config[key] as? Bool, v { throw fail("'\(key)': true is not supported (plain LoRA only)") }
        }
        if let bias = config["bias"] as? String, bias != "none" {
            throw fail("'bias': \"\(bias)\" is not supported (LoRA without bias terms only: \"none\")")
        }
        if let pattern = config["alpha_pattern"] as? [String: Any], !pattern.isEmpty {
            throw fail("'alpha_pattern' is not supported (one lora_alpha for every module)")
        }
        if let saved = config["modules_to_save"], !(saved is NSNull) {
            if let list = saved as? [Any], list.isEmpty {} else { throw fail("'modules_to_save' is not supported (LoRA tensors only)") }
        }
        let rs = (config["use_rslora"] as? Bool) ?? false
        switch config["target_modules"] {
        case let list as [String]: targetModules = list.joined(separator: ",")
        case let s as String: targetModules = s
        default: targetModules = ""
        }
        rank = r
        loraAlpha = alphaNumber.doubleValue
        useRSLoRA = rs

        let weightsPath = (directory as NSString).appendingPathComponent("adapter_model.safetensors")
        let file = try SafetensorsFile(path: weightsPath)
        func bad(_ message: String) -> CommandFailure { CommandFailure("\(weightsPath): \(message)") }
        // module -> (A tensor, B tensor)
        var halves: [String: (a: SafetensorsFile.Tensor?, b: SafetensorsFile.Tensor?)] = [:]
        var order: [String] = []
        for t in file.tensors {
            guard let (module, isA) = PEFTAdapter.split(t.name) else {
                throw bad("unexpected tensor '\(t.name)': expected base_model.model.<module>.lora_A.weight or .lora_B.weight")
            }
            if halves[module] == nil { halves[module] = (nil, nil); order.append(module) }
            if isA { halves[module]!.a = t } else { halves[module]!.b = t }
        }
        guard !order.isEmpty else { throw bad("no LoRA tensors") }
        let outputs = try naming(spec.architecture) { () throws(LichenError) in try spec.inferShapes() }
        var targets: [Target] = []
        var ranks: Set<Int> = []
        for module in order {
            guard let a = halves[module]!.a else { throw bad("module '\(module)' has lora_B but no lora_A") }
            guard let b = halves[module]!.b else { throw bad("module '\(module)' has lora_A but no lora_B") }
            guard let layerIndex = sources.firstIndex(of: module) else {
                throw bad("module '\(module)' is no layer of \(spec.architecture) (modules: \(sources.joined(separator: ", ")))")
            }
            let layer = spec.layers[layerIndex]
            let source = layer.inputs.first ?? -1
            let input = source < 0 ? spec.inputShape.dimensions : outputs[source].dimensions
            let ra = a.shape.first ?? 0
            let target: Target
            switch layer.kind {
            case .linear:
                let nIn = input.last ?? 0
                guard a.shape == [ra, nIn] else { throw bad("'\(a.name)' has shape \(a.shape), layer '\(layer.name)' needs [r, \(nIn)]") }
                guard b.shape == [layer.outputs, ra] else {
                    throw bad("'\(b.name)' has shape \(b.shape), layer '\(layer.name)' needs [\(layer.outputs), \(ra)]")
                }
                target = Target(module: module, weight: layer.name + ".weight", rank: ra, a: try file.floats(a), b: try file.floats(b),
                                nIn: nIn, nOut: layer.outputs)
            case .conv2d, .conv1d:
                let inChannels = input.first ?? 0
                let kernel = layer.kind == .conv2d ? [layer.kernelH, layer.kernelW] : [layer.kernelW]
                let ones = layer.kind == .conv2d ? [1, 1] : [1]
                guard layer.groups == 1 else { throw bad("layer '\(layer.name)' is a grouped convolution: LoRA is not supported on it") }
                guard a.shape == [ra, inChannels] + kernel else {
                    throw bad("'\(a.name)' has shape \(a.shape), layer '\(layer.name)' needs \([ra, inChannels] + kernel) (a conv with its kernel)")
                }
                guard b.shape == [layer.outputs, ra] + ones else {
                    throw bad("'\(b.name)' has shape \(b.shape), layer '\(layer.name)' needs \([layer.outputs, ra] + ones) (a 1x1 conv)")
                }
                target = Target(module: module, weight: layer.name + ".weight", rank: ra, a: try file.floats(a), b: try file.floats(b),
                                nIn: inChannels * kernel.reduce(1, *), nOut: layer.outputs)
            default:
                throw bad("module '\(module)' is a \(layer.kind.name) layer: LoRA applies to linear and conv layers only")
            }
            ranks.insert(target.rank)
            targets.append(target)
        }
        if rs && ranks.count > 1 {
            throw fail("use_rslora with ranks that differ between modules cannot be written with one alpha")
        }
        // PEFT: scaling = lora_alpha / r (rsLoRA: lora_alpha / sqrt(r)); the file's rule is alpha / r.
        let written = rs ? loraAlpha * Double(ranks.first ?? r).squareRoot() : loraAlpha
        alpha = Float(written)
        self.targets = targets
    }

    /// (module, is lora_A) of `base_model.model.<module>.lora_A[.<adapter>].weight`.
    static func split(_ name: String) -> (String, Bool)? {
        let prefix = "base_model.model."
        guard name.hasPrefix(prefix), name.hasSuffix(".weight") else { return nil }
        var parts = String(name.dropFirst(prefix.count).dropLast(".weight".count)).components(separatedBy: ".")
        // An adapter name ("default") may sit between lora_A and weight.
        if parts.count >= 2, parts[parts.count - 2] == "lora_A" || parts[parts.count - 2] == "lora_B" { parts.removeLast() }
        guard parts.count >= 2, let last = parts.last, last == "lora_A" || last == "lora_B" else { return nil }
        return (parts.dropLast().joined(separator: "."), last == "lora_A")
    }
}
