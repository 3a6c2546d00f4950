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
        // Every key Lichen reads must have the JSON type PEFT writes: a string or null where a
        // number or a boolean belongs is refused, never read as a default.
        try PEFTAdapter.checkTypes(config, fail: fail)
        let r = try PEFTAdapter.checked(fail) { () throws(LichenError) in
            try Checked.integer(PEFTAdapter.number(config["r"]) ?? .nan, as: Int.self, name: "'r'", in: 1...LoRAAdapter.maximumRank)
        }
        let alphaValue = try PEFTAdapter.checked(fail) { () throws(LichenError) in
            try Checked.finite(PEFTAdapter.number(config["lora_alpha"]) ?? .nan, name: "'lora_alpha'",
                               in: Double.leastNonzeroMagnitude...PEFTAdapter.maximumAlpha, allowed: "a number > 0 and <= 65536")
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
        loraAlpha = alphaValue
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

    /// Largest lora_alpha taken (after rsLoRA's sqrt(r) it must still be a finite f32).
    static let maximumAlpha = 65536.0
    /// Keys whose value must be a JSON boolean when present (null refused too).
    static let booleanKeys = ["use_rslora", "use_dora", "fan_in_fan_out", "inference_mode"]
    /// Keys whose value must be a JSON number when present.
    static let numberKeys = ["r", "lora_alpha", "lora_dropout"]
    /// Keys whose value must be a JSON string when present.
    static let stringKeys = ["peft_type", "bias"]

    /// Refuses a config whose known keys carry the wrong JSON type (a string or null for a
    /// number or a boolean, a number for a string, a list that is not of strings).
    static func checkTypes(_ config: [String: Any], fail: (String) -> CommandFailure) throws {
        for key in booleanKeys {
            guard let v = config[key] else { continue }
            guard isBoolean(v) else { throw fail("'\(key)' must be true or false, not \(jsonText(v))") }
        }
        for key in numberKeys {
            guard let v = config[key] else { continue }
            guard number(v) != nil else { throw fail("'\(key)' must be a number, not \(jsonText(v))") }
        }
        for key in stringKeys {
            guard let v = config[key] else { continue }
            guard v is String else { throw fail("'\(key)' must be a string, not \(jsonText(v))") }
        }
        if let v = config["target_modules"], !(v is NSNull), !(v is String) {
            guard let list = v as? [Any], list.allSatisfy({ $0 is String }) else {
                throw fail("'target_modules' must be a string or a list of strings, not \(jsonText(v))")
            }
        }
        if let v = config["alpha_pattern"], !(v is NSNull), !(v is [String: Any]) {
            throw fail("'alpha_pattern' must be an object, not \(jsonText(v))")
        }
    }

    /// Whether a JSONSerialization value is a JSON boolean (Foundation gives booleans as NSNumber).
    static func isBoolean(_ v: Any) -> Bool {
        // Linux Foundation: true is a __NSCFBoolean, while a plain NSNumber 1 also casts to Bool.
        String(describing: type(of: v)).contains("Boolean")
    }

    /// A JSON number (not a boolean) as a Double, or nil.
    static func number(_ v: Any?) -> Double? {
        guard let v, !isBoolean(v), let n = v as? NSNumber, !(v is String) else { return nil }
        return n.doubleValue
    }

    /// A short text of a JSON value for messages.
    static func jsonText(_ v: Any) -> String {
        if v is NSNull { return "null" }
        if isBoolean(v) { return (v as? Bool) == true ? "true" : "false" }
        if let s = v as? String { return "\"" + String(s.prefix(40)) + "\"" }
        if let n = number(v) { return String(n) }
        if v is [Any] { return "a list" }
        return "an object"
    }

    /// Runs `body`, turning its `LichenError` into this config's failure message.
    static func checked<T>(_ fail: (String) -> CommandFailure, _ body: () throws(LichenError) -> T) throws -> T {
        do { return try body() } catch { throw fail(error.description) }
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
