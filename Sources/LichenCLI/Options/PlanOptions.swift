import ArgumentParser
import Foundation
import Lichen

/// The method settings `lichen adapt`, `lichen serve`, `lichen bench adapt` and `lichen inspect
/// --method` share: everything of an `AdaptationPlan` but the method and the framing (each
/// command has its own --batch / --window / --every). The commands turn these into a plan and
/// build through `AdaptationPlan.assemble`, as a robot's runtime does.
struct PlanOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("What a gradient method trains: frugal (norm scale and shift, plus LoRA with --lora-rank) or full (every f32 parameter).",
                                            valueName: "frugal|full"))
    var mode: String = "frugal"

    @Option(name: .long, help: ArgumentHelp("Collapse guard: reset when the effective number of predicted classes falls under this bound (e.g. 3).",
                                            valueName: "bound"))
    var `guard`: Double?

    @Option(name: .long, help: ArgumentHelp("Predictions the collapse guard looks back over.", valueName: "n"))
    var guardWindow: Int = 200

    @Option(name: .long, help: ArgumentHelp("What the collapse guard resets to: source (the model as loaded) or last-good (the last state it judged healthy, kept before each update; the model when there is none).",
                                            valueName: "source|last-good"))
    var guardReset: String = "source"

    @Option(name: .long, help: ArgumentHelp("Reset the trainables every N frames.", valueName: "n"))
    var resetEvery: Int?

    @Option(name: .long, help: ArgumentHelp("CoTTA's confidence threshold; default: computed from the source model on the source data (5 % quantile of the top softmax probability, minus 0.05).",
                                            valueName: "p"))
    var cottaThreshold: Float?

    @Option(name: .long, help: ArgumentHelp("CoTTA: augmented teacher passes averaged when the gate fires (the reference uses 32).", valueName: "n"))
    var augmentations: Int = 32

    @Option(name: .long, help: ArgumentHelp("Source pack (lichen source-pack): labelled source frames for cotta's threshold and rmt, read into the budget. Default: the Fashion-MNIST training split from --data-directory.",
                                            valueName: "path"))
    var sourcePack: String?

    @Option(name: .long, help: ArgumentHelp("Folder holding the Fashion-MNIST IDX .gz files (source data of cotta's threshold and rmt without --source-pack).",
                                            valueName: "path"))
    var dataDirectory: String = FashionMNIST.defaultDirectory

    @Option(name: .long, help: ArgumentHelp("Seed of the methods' random draws (augmentations, restore masks, LoRA's A, source order).", valueName: "s"))
    var seed: UInt64 = 1

    @Flag(name: .long, help: "RMT without source replay (the source-free variant, --lambda-src 0).")
    var rmtSourceFree = false

    @Option(name: .long, help: ArgumentHelp("RMT: weight of the source replay loss (the reference uses 1).", valueName: "λ"))
    var lambdaSrc: Float = 1

    @Option(name: .long, help: ArgumentHelp("RMT: weight of the contrastive loss (the reference uses 1; 0 turns it off).", valueName: "λ"))
    var lambdaCont: Float = 1

    @Option(name: .long, help: ArgumentHelp("RMT: source samples of the mean-teacher warm-up (the reference uses 50000; 0 turns it off).",
                                            valueName: "n"))
    var warmupSamples: Int = 50_000

    @Option(name: .long, help: ArgumentHelp("RMT: source samples averaged into the class prototypes (default: the whole source set).",
                                            valueName: "n"))
    var prototypeSamples: Int?

    @Option(name: .long, help: ArgumentHelp("Frame mode, saved prediction: predict frames between updates through the fused inference model refolded after each update (on), or the graph (off).",
                                            valueName: "on|off"))
    var fusedPredict: String = "on"

    @Option(name: .long, help: ArgumentHelp("Frame mode: run updates on a learner thread beside the loop (on: steps predict through the newest published version and never wait on an update; needs --fused-predict on and no LoRA trainables), or inside the step that triggers them (off, deterministic).",
                                            valueName: "on|off"))
    var learner: String = "off"

    @Option(name: .long, help: ArgumentHelp("Pin the learner thread to this CPU (one the process may run on).", valueName: "cpu"))
    var learnerCPU: Int?

    @Option(name: .long, help: ArgumentHelp("The learner thread's nice value, -20...19 (raising it is always allowed; lowering it below the process's needs CAP_SYS_NICE).",
                                            valueName: "n"))
    var learnerNice: Int = 0

    func validate() throws {
        guard AdaptationPlan.Guard.ResetTarget(rawValue: guardReset) != nil else { throw ValidationError("--guard-reset must be source or last-good") }
        guard learner == "on" || learner == "off" else { throw ValidationError("--learner must be on or off") }
        if let learnerCPU { guard learnerCPU >= 0 && learnerCPU < 1024 else { throw ValidationError("--learner-cpu must be in 0...1023") } }
        guard learnerNice >= -20 && learnerNice <= 19 else { throw ValidationError("--learner-nice must be in -20...19") }
        guard fusedPredict == "on" || fusedPredict == "off" else { throw ValidationError("--fused-predict must be on or off") }
        guard AdaptationMode(name: mode) != nil else { throw ValidationError("--mode must be frugal or full") }
        if let bound = `guard`, !(bound > 0 && bound <= 1000) { throw ValidationError("--guard must be in (0, 1000]: a number of classes") }
        guard guardWindow >= 1 && guardWindow <= 1 << 20 else { throw ValidationError("--guard-window must be in 1...1048576") }
        if let resetEvery, !(resetEvery >= 1 && resetEvery <= 1 << 30) { throw ValidationError("--reset-every must be in 1...1073741824") }
        if let cottaThreshold { guard cottaThreshold.isFinite else { throw ValidationError("--cotta-threshold must be finite") } }
        guard augmentations >= 1 && augmentations <= 1024 else { throw ValidationError("--augmentations must be in 1...1024") }
        guard lambdaSrc.isFinite && lambdaSrc >= 0 && lambdaSrc <= 1e6 else { throw ValidationError("--lambda-src must be in 0...1e6") }
        guard lambdaCont.isFinite && lambdaCont >= 0 && lambdaCont <= 1e6 else { throw ValidationError("--lambda-cont must be in 0...1e6") }
        guard warmupSamples >= 0 && warmupSamples <= 10_000_000 else { throw ValidationError("--warmup-samples must be in 0...10000000") }
        if let prototypeSamples, !(prototypeSamples >= 1 && prototypeSamples <= 10_000_000) {
            throw ValidationError("--prototype-samples must be in 1...10000000")
        }
    }

    var adaptationMode: AdaptationMode { AdaptationMode(name: mode) ?? .frugal }

    /// The plan of `method` with `framing` and these settings (LoRA from `lora` for the
    /// gradient methods). `sourceFrames` is the size of the source set in use (the pack's or
    /// the training split's): CoTTA's threshold and RMT's prototypes default to all of it.
    func plan(_ method: AdaptationMethod, framing: AdaptationPlan.Framing, lora: AdaptationLoRAOptions, sourceFrames: Int) -> AdaptationPlan {
        var p = AdaptationPlan(method, mode: adaptationMode, framing: framing,
                               lora: method == .source || method == .bnAdapt ? nil : lora.configuration(seed: seed), seed: seed)
        if `guard` != nil || resetEvery != nil {
            p.collapseGuard = AdaptationPlan.Guard(minimumEffectiveClasses: `guard` ?? 0, window: guardWindow, resetEvery: resetEvery ?? 0,
                                                   resetTo: AdaptationPlan.Guard.ResetTarget(rawValue: guardReset) ?? .source)
        }
        p.cottaThreshold = cottaThreshold.map { .given($0) } ?? .fromSource(quantile: 0.05, margin: 0.05, frames: sourceFrames)
        p.cotta = CoTTA.Configuration(threshold: 0, augmentations: augmentations, seed: seed)
        p.rmt = RMT.Configuration(lambdaContrast: lambdaCont, lambdaSource: rmtSourceFree ? 0 : lambdaSrc, warmUpSamples: warmupSamples,
                                  prototypeSamples: prototypeSamples ?? max(1, sourceFrames), seed: seed)
        p.sourcePack = sourcePack
        p.fusedPrediction = fusedPredict == "on"
        if learner == "on" { p.learner = BackgroundLearner.Settings(cpu: learnerCPU, nice: learnerNice) }
        return p
    }

    /// The source data of `method` under these settings: nil when it needs none or the pack
    /// serves it (the plan loads the pack itself), else the Fashion-MNIST training split.
    func provider(for method: AdaptationMethod) throws -> FashionMNISTSource? {
        guard sourcePack == nil else { return nil }
        let needs = method == .rmt ? (rmtSourceFree ? 0 : lambdaSrc) > 0 || lambdaCont > 0 || warmupSamples > 0
            : method == .cotta && cottaThreshold == nil
        return needs ? try FashionMNISTSource(directory: dataDirectory, seed: seed) : nil
    }

    /// Frames in the source set `method` reads (the pack's, or the training split's; 0 when none).
    func sourceFrameCount(for method: AdaptationMethod, provider: FashionMNISTSource?) throws -> Int {
        if let provider { return provider.count }
        guard let sourcePack else { return 0 }
        return try naming(sourcePack) { () throws(LichenError) in try StreamFile(path: sourcePack).frameCount }
    }

    /// "source pack P" or "Fashion-MNIST training split", for logs.
    var sourceText: String { sourcePack.map { "source pack \($0)" } ?? "the Fashion-MNIST training split" }
}
