import ArgumentParser
import Foundation
import Lichen

/// `--lora-rank r [--lora-alpha a] [--lora-targets conv,linear|names]`: frugal mode's optional
/// LoRA trainables for tent, cotta and rmt (`adapt`, `inspect --method`). Without --lora-rank
/// there is no adapter.
struct AdaptationLoRAOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Frugal mode: also train a LoRA adapter of rank r (B starts at 0, so the model starts as stored; default: no LoRA).",
                                            valueName: "r"))
    var loraRank: Int?

    @Option(name: .long, help: ArgumentHelp("With --lora-rank: alpha, B·A is scaled by alpha / r (default 2r).", valueName: "a"))
    var loraAlpha: Float?

    @Option(name: .long, help: ArgumentHelp("With --lora-rank: conv, linear, or layer names, comma-separated (default conv,linear).",
                                            valueName: "list"))
    var loraTargets: String?

    func validate() throws {
        guard let loraRank else {
            if loraAlpha != nil || loraTargets != nil { throw ValidationError("--lora-alpha and --lora-targets need --lora-rank") }
            return
        }
        guard loraRank >= 1 && loraRank <= LoRAAdapter.maximumRank else { throw ValidationError("--lora-rank must be in 1...4096") }
        if let loraAlpha {
            do { _ = try Checked.finite(loraAlpha, name: "--lora-alpha", in: 0...LoRAAdapter.maximumAlpha) } catch {
                throw ValidationError(error.description)
            }
        }
        if let loraTargets, targetList(loraTargets).isEmpty { throw ValidationError("--lora-targets must name at least one target") }
    }

    func targetList(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The core's settings (nil without --lora-rank); A's initial values come from `seed`.
    func configuration(seed: UInt64) -> AdaptationLoRA? {
        guard let loraRank else { return nil }
        return AdaptationLoRA(rank: loraRank, alpha: loraAlpha, targets: targetList(loraTargets ?? "conv,linear"), seed: seed)
    }

    /// "LoRA r4 alpha 8 on conv,linear", or nil.
    var text: String? {
        guard let c = configuration(seed: 0) else { return nil }
        return "LoRA r\(c.rank) alpha \(fixed(Double(c.alpha), c.alpha == c.alpha.rounded() ? 0 : 3)) on \(c.targets.joined(separator: ","))"
    }

    /// The settings as a JSON object, or null.
    func json(trainedValues: Int?) -> JSON {
        guard let c = configuration(seed: 0) else { return .null }
        var pairs: [(String, JSON)] = [("rank", .int(c.rank)), ("alpha", .number(Double(c.alpha))),
                                       ("targets", .array(c.targets.map { .string($0) }))]
        if let trainedValues { pairs.append(("values", .int(trainedValues))) }
        return .object(pairs)
    }
}
