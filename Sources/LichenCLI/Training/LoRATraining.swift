import Foundation
import Lichen
import LichenStreams

/// Labelled 28x28 images held as bytes (pixel = round(255 v), as stream files store frames).
struct ImageSet {
    var pixels: [UInt8]
    var labels: [Int]
    var count: Int { labels.count }

    /// The first `count` images of `data` (in `order` when given), each corrupted with
    /// `corruption` at `severity` and seed `mix(seed, index)`; clean when `corruption` is nil.
    static func make(_ data: FashionMNIST, count: Int, corruption: Corruption?, severity: Int, seed: UInt64,
                     progress: ProgressBar?) throws -> ImageSet {
        let n = FashionMNIST.pixelsPerImage
        var set = ImageSet(pixels: [UInt8](repeating: 0, count: count * n), labels: [])
        set.labels.reserveCapacity(count)
        var source = [Float](repeating: 0, count: n)
        for i in 0..<count {
            let bytes = try naming("data") { () throws(LichenError) in try data.images.pixels(ofImage: i) }
            if let corruption {
                for p in 0..<n { source[p] = Float(bytes[p]) / 255 }
                let out = try corruption.apply(to: source, width: 28, height: 28, severity: severity,
                                               seed: StreamBuilder.frameSeed(seed, domain: 0, frame: i))
                for p in 0..<n {
                    let v = out[p].isNaN ? 0 : min(max(out[p], 0), 1)
                    set.pixels[i * n + p] = UInt8((v * 255).rounded())
                }
            } else {
                for p in 0..<n { set.pixels[i * n + p] = bytes[p] }
            }
            set.labels.append(data.label(i))
            if i % 250 == 0 || i == count - 1 { progress?.update(i + 1) }
        }
        progress?.finish()
        return set
    }

    /// The frames of every record of `file` named `domain` (at most `limit`), with their labels.
    static func fromStream(_ file: StreamFile, path: String, domain: String, limit: Int?) throws -> ImageSet {
        let records = file.domains.filter { $0.name == domain }
        guard !records.isEmpty else {
            throw CommandFailure("\(path): no domain '\(domain)' (domains: \(Set(file.domains.map(\.name)).sorted().joined(separator: ", ")))")
        }
        guard file.width == 28, file.height == 28, file.channels == 1, file.classCount <= FashionMNIST.classCount else {
            throw CommandFailure("\(path): frames of \(file.width)x\(file.height)x\(file.channels) are not Fashion-MNIST's 28x28x1")
        }
        var set = ImageSet(pixels: [], labels: [])
        for r in records {
            for i in r.frames {
                if let limit, set.count >= limit { return set }
                try naming(path) { () throws(LichenError) in
                    set.pixels += try file.framePixels(i)
                    set.labels.append(try file.label(i))
                }
            }
        }
        return set
    }

    /// Writes images `indices` as f32 pixel / 255 into `x` ([n, 1, 28, 28]) and labels into `y`.
    func write(_ indices: [Int], into x: TensorView, labels y: TensorView) throws {
        let n = FashionMNIST.pixelsPerImage
        let xs = try x.f32Elements("images"), ys = try y.f32Elements("labels")
        for (k, i) in indices.enumerated() {
            for p in 0..<n { xs[k * n + p] = Float(pixels[i * n + p]) / 255 }
            ys[k] = Float(labels[i])
        }
    }
}

/// The layers `--targets` names: "conv" (every conv layer), "linear" (every linear layer), or
/// layer names, comma-separated; each as a LoRA target of rank `rank`.
func loraTargets(_ list: String, spec: ModelSpec, rank: Int) throws -> [LoRATargetShape] {
    let outputs = try naming(spec.architecture) { () throws(LichenError) in try spec.inferShapes() }
    var chosen: [Int] = []
    for item in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
        let matches: [Int]
        switch item {
        case "conv": matches = spec.layers.indices.filter { spec.layers[$0].kind == .conv2d || spec.layers[$0].kind == .conv1d }
        case "linear": matches = spec.layers.indices.filter { spec.layers[$0].kind == .linear }
        default:
            guard let i = spec.layers.firstIndex(where: { $0.name == item }) else {
                throw CommandFailure("--targets: no layer '\(item)' in \(spec.architecture) (layers: "
                                     + spec.layers.map(\.name).joined(separator: ", ") + ")")
            }
            let k = spec.layers[i].kind
            guard k == .linear || k == .conv2d || k == .conv1d else {
                throw CommandFailure("--targets: '\(item)' is a \(k.name) layer; LoRA applies to linear and conv layers")
            }
            matches = [i]
        }
        for i in matches where !chosen.contains(i) { chosen.append(i) }
    }
    guard !chosen.isEmpty else { throw CommandFailure("--targets selects no layer of \(spec.architecture)") }
    return try chosen.sorted().map { i in
        let layer = spec.layers[i]
        let source = layer.inputs.first ?? -1
        let input = source < 0 ? spec.inputShape.dimensions : outputs[source].dimensions
        let nIn: Int
        if layer.kind == .linear {
            nIn = input.last ?? 0
        } else {
            guard layer.groups == 1 else { throw CommandFailure("--targets: '\(layer.name)' is a grouped convolution") }
            nIn = (input.first ?? 0) * layer.kernelW * (layer.kind == .conv2d ? layer.kernelH : 1)
        }
        guard rank <= min(nIn, layer.outputs) else {
            throw CommandFailure("--rank \(rank) is above min(n_in, n_out) = \(min(nIn, layer.outputs)) of layer '\(layer.name)'")
        }
        return LoRATargetShape(weightName: layer.name + ".weight", rank: rank, inputCount: nIn, outputCount: layer.outputs)
    }
}

extension TrainCommand {
    /// `lichen train --lora --base M.gguf ...`: trains one adapter over the frozen base.
    func runLoRA(base: String) throws {
        let showProgress = stderrIsTerminal || global.verbose
        let loaded = try LoadedModel(path: base, budgetBytes: budget << 20, trainable: false)
        let spec = loaded.spec
        let arena = loaded.arena
        let corruptionKind: Corruption? = try corruption.map { name in
            guard let c = Corruption(rawValue: name) else {
                throw CommandFailure("--corruption: unknown corruption '\(name)' (one of "
                                     + Corruption.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            return c
        }
        let shapes = try loraTargets(targets, spec: spec, rank: rank)
        let baseName = try naming(base) { () throws(LichenError) in try loaded.file.string("general.name") }
        log("train --lora: loading Fashion-MNIST from \(dataDirectory)")
        let trainData = try naming(dataDirectory) { () throws(LichenError) in try FashionMNIST.load(.train, directory: dataDirectory, arena: arena) }
        let testData = try naming(dataDirectory) { () throws(LichenError) in try FashionMNIST.load(.test, directory: dataDirectory, arena: arena) }
        let testCount = testLimit ?? 2_000
        let trainSet: ImageSet, domainTest: ImageSet, domain: String
        if let stream, let streamDomain = self.domain {
            // The stream's frames of that domain: trained on, and the domain error is measured on them.
            trainSet = try ImageSet.fromStream(try openStream(stream), path: stream, domain: streamDomain, limit: limit)
            domainTest = trainSet
            domain = "\(streamDomain) (the \(trainSet.count) training frames of \(URL(fileURLWithPath: stream).lastPathComponent))"
        } else {
            let count = limit ?? 10_000
            domain = corruptionKind.map { "\($0.rawValue) severity \(severity)" } ?? "clean"
            trainSet = try ImageSet.make(trainData, count: count, corruption: corruptionKind, severity: severity, seed: seed,
                                         progress: ProgressBar("corrupt train", total: count, enabled: showProgress))
            // Test images get their own corruption seeds (another stream of frame seeds).
            domainTest = try ImageSet.make(testData, count: testCount, corruption: corruptionKind, severity: severity, seed: seed ^ 0x7E57,
                                           progress: ProgressBar("corrupt test", total: testCount, enabled: showProgress))
        }
        let perEpoch = trainSet.count
        let cleanTest = try ImageSet.make(testData, count: testCount, corruption: nil, severity: 0, seed: 0, progress: nil)

        let (trainGraph, evalGraph, adapter, trainAdapters, evalAdapters, input, labels, logitGradient, loss, optimizer, order) =
            try naming("lora") { () throws(LichenError) in
                let identity = try AdapterBase(name: baseName, store: loaded.store)
                let adapter = try LoRAAdapter(name: URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent, base: identity,
                                              alpha: alpha, shapes: shapes, trainable: true, arena: arena)
                try adapter.initializeForTraining(seed: seed)
                let trainGraph = try Graph(spec: spec, store: loaded.store, batchSize: batch, arena: arena,
                                           options: GraphOptions(training: true, trainAdapters: true))
                let evalGraph = try Graph(spec: spec, store: loaded.store, batchSize: batch, arena: arena)
                let member = [AdapterSet.Member(adapter)]
                let trainAdapters = try AdapterSet(members: member, graph: trainGraph, base: identity, arena: arena)
                let evalAdapters = try AdapterSet(members: member, graph: evalGraph, base: identity, arena: arena)
                var dims = [batch]
                dims += spec.inputShape.dimensions
                let input = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
                let labels = try arena.persistentTensor(.f32, try Shape(batch))
                let logitGradient = try arena.persistentTensor(.f32, try Shape(batch, spec.classCount))
                let loss = try CrossEntropyLoss(maximumBatch: batch, classes: spec.classCount, arena: arena)
                let optimizer = try Adam(parameters: adapter.trainableParameters(),
                                         groups: [Adam.Group(learningRate: lr, weightDecay: weightDecay)],
                                         weightDecayMode: .decoupled, arena: arena)
                let order = try SeededPermutation(count: perEpoch, arena: arena)
                return (trainGraph, evalGraph, adapter, trainAdapters, evalAdapters, input, labels, logitGradient, loss, optimizer, order)
            }
        let trainableValues = adapter.targets.reduce(0) { $0 + $1.a.elementCount + $1.b.elementCount }
        log("train --lora: \(spec.architecture) base \(base) (frozen), targets "
            + shapes.map { "\($0.weightName) r\($0.rank)" }.joined(separator: ", ")
            + ", alpha \(alpha), \(trainableValues) trainable values, \(perEpoch) \(domain) training images per epoch, "
            + "batch \(batch), \(epochs) epochs; step memory \(trainGraph.plannedBytes) bytes planned")

        func errorRate(_ set: ImageSet, adapters: AdapterSet?) throws -> Double {
            try naming("eval") { () throws(LichenError) in try evalGraph.setAdapters(adapters) }
            var accuracy = Accuracy()
            var start = 0
            while start < set.count {
                let n = min(batch, set.count - start)
                let x = try naming("batch") { () throws(LichenError) in try input.leadingRows(0, count: n) }
                let y = try naming("batch") { () throws(LichenError) in try labels.leadingRows(0, count: n) }
                try set.write(Array(start..<(start + n)), into: x, labels: y)
                let logits = try naming("forward") { () throws(LichenError) in try evalGraph.forward(input: x) }
                try accuracy.add(logits: logits, labels: y, count: n)
                start += n
            }
            return 1 - accuracy.fraction
        }
        let before = (domain: try errorRate(domainTest, adapters: nil), clean: try errorRate(cleanTest, adapters: nil))
        log("before: error \(fixed(100 * before.domain, 2)) % on \(domain), \(fixed(100 * before.clean, 2)) % on the first "
            + "\(testCount) clean test images")

        let stepsPerEpoch = (perEpoch + batch - 1) / batch
        let totalSteps = stepsPerEpoch * epochs
        var step = 0
        var epochRows: [(epoch: Int, loss: Double, domainError: Double, seconds: Double)] = []
        let start = Date()
        for epoch in 1...epochs {
            let epochStart = Date()
            order.shuffle(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch))
            var lossSum = 0.0
            let bar = ProgressBar("epoch \(epoch)/\(epochs)", total: perEpoch, enabled: showProgress)
            var first = 0
            while first < perEpoch {
                let n = min(batch, perEpoch - first)
                if schedule == "cosine" {
                    let rate = Float(0.5 * (1 + cos(Double.pi * Double(step) / Double(totalSteps)))) * lr
                    try naming("optimizer") { () throws(LichenError) in try optimizer.setLearningRate(rate, group: 0) }
                }
                let x = try naming("batch") { () throws(LichenError) in try input.leadingRows(0, count: n) }
                let y = try naming("batch") { () throws(LichenError) in try labels.leadingRows(0, count: n) }
                try trainSet.write((first..<(first + n)).map { order[$0] }, into: x, labels: y)
                let value = try naming("step \(step)") { () throws(LichenError) in
                    let g = try logitGradient.leadingRows(0, count: n)
                    try adapter.zeroGradients()
                    let logits = try trainGraph.forward(input: x, adapters: trainAdapters)
                    let value = try loss.compute(logits: logits, labels: y, gradient: g)
                    try trainGraph.backward(outputGradient: g)
                    try optimizer.step()
                    return value
                }
                lossSum += Double(value) * Double(n)
                first += n
                step += 1
                bar.update(first, suffix: "loss " + fixed(lossSum / Double(first), 4))
            }
            bar.finish()
            let e = try errorRate(domainTest, adapters: evalAdapters)
            epochRows.append((epoch, lossSum / Double(perEpoch), e, Date().timeIntervalSince(epochStart)))
            log("epoch \(epoch)/\(epochs): loss \(fixed(lossSum / Double(perEpoch), 4)), error \(fixed(100 * e, 2)) % on \(domain)")
        }
        let seconds = Date().timeIntervalSince(start)
        let after = (domain: try errorRate(domainTest, adapters: evalAdapters), clean: try errorRate(cleanTest, adapters: evalAdapters))

        let extras: [ModelMetadataEntry] = [
            ModelMetadataEntry("lichen.train.command", .string(loraCommand)),
            ModelMetadataEntry("lichen.train.base", .string(URL(fileURLWithPath: base).lastPathComponent)),
            ModelMetadataEntry("lichen.train.domain", .string(domain)),
            ModelMetadataEntry("lichen.train.seed", .uint64(seed)),
            ModelMetadataEntry("lichen.train.epochs", .uint32(UInt32(epochs))),
            ModelMetadataEntry("lichen.train.examples_per_epoch", .uint32(UInt32(perEpoch))),
            ModelMetadataEntry("lichen.eval.test_images", .uint32(UInt32(testCount))),
            ModelMetadataEntry("lichen.eval.domain_error_before", .float32(Float(before.domain))),
            ModelMetadataEntry("lichen.eval.domain_error", .float32(Float(after.domain))),
            ModelMetadataEntry("lichen.eval.clean_error_before", .float32(Float(before.clean))),
            ModelMetadataEntry("lichen.eval.clean_error", .float32(Float(after.clean))),
        ]
        try naming(out) { () throws(LichenError) in try AdapterFile.write(adapter, extras: extras, toPath: out) }
        log("train --lora: wrote \(out)")
        if global.json {
            let doc: JSON = .object([
                ("command", .string(loraCommand)), ("out", .string(out)), ("base", .string(base)),
                ("domain", .string(domain)), ("seed", .int(Int(truncatingIfNeeded: seed))),
                ("targets", .array(shapes.map { .object([("tensor", .string($0.weightName)), ("rank", .int($0.rank))]) })),
                ("alpha", floatJSON(alpha)), ("adapter_bytes", .int(adapter.byteCount)),
                ("trainable_values", .int(trainableValues)), ("planned_step_bytes", .int(trainGraph.plannedBytes)),
                ("test_images", .int(testCount)), ("domain_images", .int(domainTest.count)),
                ("epochs", .array(epochRows.map {
                    .object([("epoch", .int($0.epoch)), ("loss", .number($0.loss)), ("domain_error", .number($0.domainError)),
                             ("seconds", .number($0.seconds))])
                })),
                ("domain_error_before", .number(before.domain)), ("domain_error", .number(after.domain)),
                ("clean_error_before", .number(before.clean)), ("clean_error", .number(after.clean)),
                ("seconds", .number(seconds)),
            ])
            print(doc.rendered())
            return
        }
        var table = Table(["images", "count", "base error (%)", "base + adapter error (%)"], rightAligned: [1, 2, 3])
        table.add([domain, String(domainTest.count), fixed(100 * before.domain, 2), fixed(100 * after.domain, 2)])
        table.add(["clean test", String(testCount), fixed(100 * before.clean, 2), fixed(100 * after.clean, 2)])
        print(table.rendered())
        print("wrote \(out): LoRA over \(base), \(shapes.count) targets, \(trainableValues) values (\(byteText(adapter.byteCount)) "
              + "with gradients), \(epochs) epochs on \(perEpoch) \(domain) images, \(fixed(seconds, 1)) s")
    }

    /// The command that reproduces this adapter, without --out.
    var loraCommand: String {
        var parts = ["lichen train --lora --base \(URL(fileURLWithPath: base ?? "").lastPathComponent) --rank \(rank) --alpha \(alpha)",
                     "--targets \(targets) --epochs \(epochs) --seed \(seed) --batch \(batch) --lr \(lr)",
                     "--weight-decay \(weightDecay) --schedule \(schedule)"]
        if let corruption { parts.append("--corruption \(corruption) --severity \(severity)") }
        if let stream, let domain { parts.append("--stream \(URL(fileURLWithPath: stream).lastPathComponent) --domain \(domain)") }
        if let limit { parts.append("--limit \(limit)") }
        if let testLimit { parts.append("--test-limit \(testLimit)") }
        return parts.joined(separator: " ")
    }
}
