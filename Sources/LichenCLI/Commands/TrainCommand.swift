import ArgumentParser
import Foundation
import Lichen

/// `lichen train --data fashion-mnist --arch cnn|mlp --epochs N --seed S --out M.gguf`, and
/// `lichen train --lora --base M.gguf [--rank r --alpha a --targets ...] [--corruption NAME --severity S] --out A.gguf`.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on Fashion-MNIST and write it as a Lichen model file (GGUF, f32), or, with --lora, a LoRA adapter over a frozen model.",
        discussion: """
            Parameters start from PyTorch's default initialisation drawn from --seed; each epoch visits \
            the training examples in an order shuffled from the seed and the epoch number. Batch norm \
            trains on batch statistics and keeps running statistics for inference. After every epoch \
            the model is evaluated on the 10,000 test images (running statistics). The same command \
            with the same seed writes the same bytes. The file records the command (without --out), \
            the seed and the final clean test accuracy under lichen.train.* and lichen.eval.*.

            With --lora --base M.gguf: trains a LoRA adapter over the frozen base (f32 or quantized; \
            batch norm keeps its running statistics) on the first --limit training images (default \
            10,000), each corrupted with --corruption at --severity (the corruptions of lichen stream \
            make; clean without --corruption), or on the frames of --domain in a --stream file (the domain \
            error is then measured on those frames). A starts PEFT's way (kaiming-uniform), B at 0, so the \
            adapter starts as a no-op. --targets: conv, linear (every layer of that kind) or layer names, \
            comma-separated. Reports the error on the first --test-limit test images (default 2,000), \
            corrupted the same way and clean, before and after, and writes an adapter file (GGUF, \
            llama.cpp's LoRA convention). Defaults for --lora: --epochs 3, --lr 2e-3, --weight-decay 0.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("Training data set (fashion-mnist).", valueName: "name"))
    var data: String = "fashion-mnist"

    @Option(name: .long, help: ArgumentHelp("Folder holding the Fashion-MNIST IDX .gz files.", valueName: "path"))
    var dataDirectory: String = FashionMNIST.defaultDirectory

    @Option(name: .long, help: ArgumentHelp("Architecture: cnn (fmnist-cnn) or mlp (fmnist-mlp).", valueName: "arch"))
    var arch: String = "cnn"

    @Option(name: .customLong("epochs"), help: ArgumentHelp("Passes over the training set (default 10; 3 with --lora).", valueName: "n"))
    var epochsOption: Int?
    var epochs: Int { epochsOption ?? (lora ? 3 : 10) }

    @Option(name: .long, help: ArgumentHelp("Seed of the initialisation and the shuffles.", valueName: "seed"))
    var seed: UInt64 = 1

    @Option(name: .long, help: ArgumentHelp("Examples per step.", valueName: "n"))
    var batch: Int = 64

    @Option(name: .long, help: ArgumentHelp("Adam learning rate (peak, for the cosine schedule).", valueName: "rate"))
    var lr: Float = 2e-3

    @Option(name: .customLong("weight-decay"), help: ArgumentHelp("Decoupled weight decay (AdamW; default 1e-4, 0 with --lora).", valueName: "decay"))
    var weightDecayOption: Float?
    var weightDecay: Float { weightDecayOption ?? (lora ? 0 : 1e-4) }

    @Option(name: .long, help: ArgumentHelp("Learning-rate schedule: cosine (to 0 over all steps) or constant.", valueName: "name"))
    var schedule: String = "cosine"

    @Option(name: .long, help: ArgumentHelp("Training examples per epoch (a shuffled subset; default: all 60,000).", valueName: "n"))
    var limit: Int?

    @Option(name: .long, help: ArgumentHelp("Test images evaluated after each epoch (the first n; default: all 10,000).", valueName: "n"))
    var testLimit: Int?

    @Option(name: .long, help: ArgumentHelp("Memory budget for the run, in MiB.", valueName: "MiB"))
    var budget: Int = 512

    @Option(name: .long, help: ArgumentHelp("Model (or, with --lora, adapter) file to write (atomically).", valueName: "path"))
    var out: String

    // MARK: LoRA

    @Flag(name: .long, help: "Train a LoRA adapter over the frozen model given by --base.")
    var lora = false

    @Option(name: [.customLong("base"), .customLong("model")],
            help: ArgumentHelp("With --lora: the base model (GGUF; f32, q8_0 or q4_0).", valueName: "path"))
    var base: String?

    @Option(name: .long, help: ArgumentHelp("With --lora: the adapter's rank r.", valueName: "r"))
    var rank: Int = 4

    @Option(name: .long, help: ArgumentHelp("With --lora: alpha (the update is scaled by alpha / r).", valueName: "a"))
    var alpha: Float = 8

    @Option(name: .long, help: ArgumentHelp("With --lora: conv, linear, or layer names, comma-separated.", valueName: "list"))
    var targets: String = "conv,linear"

    @Option(name: .long, help: ArgumentHelp("With --lora: the corruption of the training domain (e.g. glass_blur).", valueName: "name"))
    var corruption: String?

    @Option(name: .long, help: ArgumentHelp("With --lora --corruption: its severity, 1...5.", valueName: "s"))
    var severity: Int = 5

    @Option(name: .long, help: ArgumentHelp("With --lora: train on a stream file's frames (with --domain).", valueName: "path"))
    var stream: String?

    @Option(name: .long, help: ArgumentHelp("With --lora --stream: the domain whose frames to train on.", valueName: "name"))
    var domain: String?

    func validate() throws {
        guard data == "fashion-mnist" else { throw ValidationError("--data must be fashion-mnist, not '\(data)'") }
        guard ModelSpec.builtin(named: arch) != nil else {
            throw ValidationError("--arch must be cnn or mlp (or fmnist-cnn, fmnist-mlp), not '\(arch)'")
        }
        guard epochs >= 1 && epochs <= 1000 else { throw ValidationError("--epochs must be in 1...1000") }
        guard batch >= 1 && batch <= 4096 else { throw ValidationError("--batch must be in 1...4096") }
        guard lr > 0 && lr.isFinite else { throw ValidationError("--lr must be > 0") }
        guard weightDecay >= 0 && weightDecay.isFinite else { throw ValidationError("--weight-decay must be >= 0") }
        guard schedule == "cosine" || schedule == "constant" else { throw ValidationError("--schedule must be cosine or constant") }
        if let limit { guard limit >= 1 && limit <= 60_000 else { throw ValidationError("--limit must be in 1...60000") } }
        if let testLimit { guard testLimit >= 1 && testLimit <= 10_000 else { throw ValidationError("--test-limit must be in 1...10000") } }
        guard budget >= 16 && budget <= 1 << 16 else { throw ValidationError("--budget must be in 16...65536 MiB") }
        guard !out.isEmpty else { throw ValidationError("--out must not be empty") }
        if lora {
            guard let base, !base.isEmpty else { throw ValidationError("--lora needs --base M.gguf (the frozen model)") }
            guard rank >= 1 && rank <= LoRAAdapter.maximumRank else { throw ValidationError("--rank must be in 1...4096") }
            guard alpha >= 0 && alpha.isFinite else { throw ValidationError("--alpha must be finite and >= 0") }
            guard (1...5).contains(severity) else { throw ValidationError("--severity must be in 1...5") }
            guard (stream == nil) == (domain == nil) else { throw ValidationError("--stream and --domain go together") }
            guard stream == nil || corruption == nil else { throw ValidationError("--stream and --corruption exclude each other") }
        } else {
            guard base == nil, corruption == nil, stream == nil, domain == nil else {
                throw ValidationError("--base, --corruption, --stream and --domain are for --lora")
            }
        }
    }

    /// The command that reproduces this run, without --out (recorded in the file).
    var canonicalCommand: String {
        var parts = ["lichen train --data \(data) --arch \(arch) --epochs \(epochs) --seed \(seed) --batch \(batch)",
                     "--lr \(lr) --weight-decay \(weightDecay) --schedule \(schedule)"]
        if let limit { parts.append("--limit \(limit)") }
        if let testLimit { parts.append("--test-limit \(testLimit)") }
        return parts.joined(separator: " ")
    }

    struct EpochResult {
        var epoch: Int
        var loss: Double
        var trainAccuracy: Double
        var testAccuracy: Double
        var seconds: Double
    }

    func run() throws {
        if lora, let base { return try runLoRA(base: base) }
        guard let spec = ModelSpec.builtin(named: arch) else { throw ExitCode(2) }
        let showProgress = stderrIsTerminal || global.verbose
        let arena = try naming("arena") { () throws(LichenError) in try Arena(byteCount: budget << 20) }
        log("train: loading Fashion-MNIST from \(dataDirectory)")
        let train = try naming(dataDirectory) { () throws(LichenError) in
            try FashionMNIST.load(.train, directory: dataDirectory, arena: arena)
        }
        let test = try naming(dataDirectory) { () throws(LichenError) in
            try FashionMNIST.load(.test, directory: dataDirectory, arena: arena)
        }
        let store = ParameterStore(arena: arena)
        let perEpoch = limit ?? train.count
        let (trainGraph, evalGraph, input, labels, logitGradient, loss, optimizer, order) = try naming("model") {
            () throws(LichenError) in
            try ParameterInitializer.initialize(spec, into: store, seed: seed)
            let trainGraph = try Graph(spec: spec, store: store, batchSize: batch, arena: arena,
                                       options: GraphOptions(training: true, batchNormMode: .batchStatistics,
                                                             updateRunningStatistics: true))
            let evalGraph = try Graph(spec: spec, store: store, batchSize: batch, arena: arena)
            var inputDims = [batch]
            inputDims += spec.inputShape.dimensions
            let input = try arena.persistentTensor(.f32, try Shape(dimensions: inputDims))
            let labels = try arena.persistentTensor(.f32, try Shape(batch))
            let logitGradient = try arena.persistentTensor(.f32, try Shape(batch, spec.classCount))
            let loss = try CrossEntropyLoss(maximumBatch: batch, classes: spec.classCount, arena: arena)
            var trainables: [TrainableParameter] = []
            try store.forEachTrainable { (_, value, gradient) throws(LichenError) in
                trainables.append(TrainableParameter(value: value, gradient: gradient))
            }
            let optimizer = try Adam(parameters: trainables, groups: [Adam.Group(learningRate: lr, weightDecay: weightDecay)],
                                     weightDecayMode: .decoupled, arena: arena)
            let order = try SeededPermutation(count: train.count, arena: arena)
            return (trainGraph, evalGraph, input, labels, logitGradient, loss, optimizer, order)
        }
        log("train: \(spec.architecture), \(store.trainableValueCount) trainable values, batch \(batch), "
            + "\(perEpoch) examples per epoch, \(epochs) epochs; step memory \(trainGraph.plannedBytes) bytes planned")

        let stepsPerEpoch = (perEpoch + batch - 1) / batch
        let totalSteps = stepsPerEpoch * epochs
        var step = 0
        var results: [EpochResult] = []
        for epoch in 1...epochs {
            let epochStart = Date()
            // The same shuffle on every platform: SplitMix64 from (seed, epoch).
            order.shuffle(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch))
            var lossSum = 0.0
            var trainAccuracy = Accuracy()
            let bar = ProgressBar("epoch \(epoch)/\(epochs)", total: perEpoch, enabled: showProgress)
            var start = 0
            while start < perEpoch {
                let n = min(batch, perEpoch - start)
                if schedule == "cosine" {
                    let rate = Float(0.5 * (1 + cos(Double.pi * Double(step) / Double(totalSteps)))) * lr
                    try naming("optimizer") { () throws(LichenError) in try optimizer.setLearningRate(rate, group: 0) }
                }
                let (batchLoss, logits, y) = try naming("step \(step)") { () throws(LichenError) in
                    let x = try input.leadingRows(0, count: n)
                    let y = try labels.leadingRows(0, count: n)
                    let g = try logitGradient.leadingRows(0, count: n)
                    try train.writeBatch(order: order, start: start, images: x, labels: y)
                    try store.zeroGradients()
                    let logits = try trainGraph.forward(input: x)
                    let value = try loss.compute(logits: logits, labels: y, gradient: g)
                    try trainGraph.backward(outputGradient: g)
                    try optimizer.step()
                    return (value, logits, y)
                }
                // Training accuracy counts the predictions made before each step's update.
                try trainAccuracy.add(logits: logits, labels: y, count: n)
                lossSum += Double(batchLoss) * Double(n)
                start += n
                step += 1
                bar.update(start, suffix: "loss " + fixed(lossSum / Double(start), 4))
            }
            bar.finish()
            let evalBar = ProgressBar("  test", total: testLimit ?? test.count, enabled: showProgress)
            let accuracy = try evaluate(graph: evalGraph, data: test, count: testLimit ?? test.count, input: input,
                                        labels: labels, batch: batch, progress: evalBar)
            let result = EpochResult(epoch: epoch, loss: lossSum / Double(perEpoch), trainAccuracy: trainAccuracy.fraction,
                                     testAccuracy: accuracy.fraction, seconds: Date().timeIntervalSince(epochStart))
            results.append(result)
            log("epoch \(epoch)/\(epochs): loss \(fixed(result.loss, 4)), train accuracy \(fixed(100 * result.trainAccuracy, 2)) %, clean test accuracy "
                + "\(fixed(100 * result.testAccuracy, 2)) %, \(fixed(result.seconds, 1)) s")
        }

        let final = results[results.count - 1]
        let extras: [ModelMetadataEntry] = [
            ModelMetadataEntry("lichen.train.command", .string(canonicalCommand)),
            ModelMetadataEntry("lichen.train.data", .string(data)),
            ModelMetadataEntry("lichen.train.seed", .uint64(seed)),
            ModelMetadataEntry("lichen.train.epochs", .uint32(UInt32(epochs))),
            ModelMetadataEntry("lichen.train.examples_per_epoch", .uint32(UInt32(perEpoch))),
            ModelMetadataEntry("lichen.eval.clean_accuracy", .float32(Float(final.testAccuracy))),
            ModelMetadataEntry("lichen.eval.test_images", .uint32(UInt32(testLimit ?? test.count))),
        ]
        try naming(out) { () throws(LichenError) in
            let tensors = try ModelFile.tensors(of: spec, from: store)
            try ModelFile.write(spec: spec, name: spec.architecture, tensors: tensors, extras: extras, toPath: out)
        }
        log("train: wrote \(out)")
        if global.json {
            let doc: JSON = .object([
                ("command", .string(canonicalCommand)),
                ("out", .string(out)),
                ("architecture", .string(spec.architecture)),
                ("seed", .int(Int(truncatingIfNeeded: seed))),
                ("planned_step_bytes", .int(trainGraph.plannedBytes)),
                ("epochs", .array(results.map {
                    .object([("epoch", .int($0.epoch)), ("loss", .number($0.loss)), ("train_accuracy", .number($0.trainAccuracy)),
                             ("clean_test_accuracy", .number($0.testAccuracy)), ("seconds", .number($0.seconds))])
                })),
                ("clean_test_accuracy", .number(final.testAccuracy)),
            ])
            print(doc.rendered())
        } else {
            var table = Table(["epoch", "loss", "train accuracy (%)", "clean test accuracy (%)", "time (s)"],
                              rightAligned: [0, 1, 2, 3, 4])
            for r in results {
                table.add([String(r.epoch), fixed(r.loss, 4), fixed(100 * r.trainAccuracy, 2), fixed(100 * r.testAccuracy, 2),
                           fixed(r.seconds, 1)])
            }
            print(table.rendered())
            print("wrote \(out): \(spec.architecture), clean test accuracy \(fixed(100 * final.testAccuracy, 2)) %")
        }
    }
}
