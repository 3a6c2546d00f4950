import ArgumentParser
import Foundation
import Lichen

/// `lichen source-pack --model M --data fashion-mnist --frames N --out P [--seed S]`: a small
/// file of labelled source frames for a board (what RMT and CoTTA's threshold read there).
struct SourcePackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "source-pack",
        abstract: "Write a source pack: labelled clean training frames for RMT and CoTTA's threshold on a board.",
        discussion: """
            Picks --frames frames of the training split, class-balanced (the classes take turns in a \
            seeded shuffled order, so every class has N / classes frames, give or take one), and writes \
            them with their labels as a stream file (one "clean" domain, severity 0) to --out, atomically. \
            The model is checked against the frames (input size and class count), and its accuracy and \
            mean top-class confidence on the pack are printed, so an operator can see the pack stands for \
            the source data. A runtime reads the pack into its budget at lichen_method_set \
            (lichen_method_params.source_pack; `lichen serve --source-pack`; `lichen adapt --source-pack`).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("Model file (GGUF) the pack is for.", valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Source data set: fashion-mnist.", valueName: "name"))
    var data: String = "fashion-mnist"

    @Option(name: .long, help: ArgumentHelp("Frames in the pack (16...60000).", valueName: "n"))
    var frames: Int = 1024

    @Option(name: .long, help: ArgumentHelp("Output file.", valueName: "path"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("Seed of the frame choice.", valueName: "s"))
    var seed: UInt64 = 1

    @Option(name: .long, help: ArgumentHelp("Folder holding the Fashion-MNIST IDX .gz files.", valueName: "path"))
    var dataDirectory: String = FashionMNIST.defaultDirectory

    func validate() throws {
        guard data == "fashion-mnist" else { throw ValidationError("--data must be fashion-mnist") }
        guard frames >= 16 && frames <= 60_000 else { throw ValidationError("--frames must be in 16...60000") }
    }

    func run() throws {
        let loaded = try LoadedModel(path: model, budgetBytes: 256 << 20, trainable: false)
        let spec = loaded.spec
        let side = FashionMNIST.imageRows
        guard spec.inputShape.elementCount == FashionMNIST.pixelsPerImage, spec.classCount >= FashionMNIST.classCount else {
            throw CommandFailure("\(model): input \(shapeText(spec.inputShape)) and \(spec.classCount) classes do not take Fashion-MNIST frames")
        }
        let source = try FashionMNISTSource(directory: dataDirectory, seed: seed)
        let set = source.data
        // Class-balanced: walk the seeded order, taking a frame when its class is behind.
        let classes = FashionMNIST.classCount
        let order = try naming("order") { () throws(LichenError) in
            let p = try SeededPermutation(count: set.count, arena: source.arena)
            p.shuffle(seed: seed)
            return p
        }
        var perClass = [Int](repeating: 0, count: classes)
        let quota = (frames + classes - 1) / classes
        var chosen: [Int] = []
        chosen.reserveCapacity(frames)
        for i in 0..<set.count where chosen.count < frames {
            let k = set.label(order[i])
            if perClass[k] < quota {
                perClass[k] += 1
                chosen.append(order[i])
            }
        }
        var writer = try naming(out) { () throws(LichenError) in
            try StreamFileWriter(kind: .custom, width: side, height: side, classCount: spec.classCount, seed: seed)
        }
        try naming(out) { () throws(LichenError) in
            writer.reserveCapacity(frames: chosen.count)
            try writer.beginDomain(name: "clean", severity: 0)
            for index in chosen {
                let pixels = try set.images.pixels(ofImage: index)
                var bytes = [UInt8](repeating: 0, count: pixels.count)
                for j in 0..<pixels.count { bytes[j] = pixels[j] }
                try writer.append(frame: bytes, label: set.label(index))
            }
            try writer.write(toPath: out)
        }
        // The source model on the pack, as a check that it stands for the source data.
        let pack = try naming(out) { () throws(LichenError) in try StreamFile(path: out) }
        let batch = 64
        let (input, labels) = try batchBuffers(loaded, batch: batch)
        let graph = try naming(model) { () throws(LichenError) in
            try Graph(spec: spec, store: loaded.store, batchSize: batch, arena: loaded.arena)
        }
        var accuracy = Accuracy()
        var confidence = 0.0
        var start = 0
        while start < pack.frameCount {
            let n = min(batch, pack.frameCount - start)
            let z = try naming(out) { () throws(LichenError) in
                let x = try input.leadingRows(0, count: n), y = try labels.leadingRows(0, count: n)
                try pack.writeFrames(start: start, count: n, into: x)
                try pack.writeLabels(start: start, count: n, into: y)
                return try graph.forward(input: x)
            }
            try accuracy.add(logits: z, labels: try naming("labels") { () throws(LichenError) in try labels.leadingRows(0, count: n) },
                             count: n)
            let values = z.floats
            let c = spec.classCount
            for b in 0..<n {
                var m = values[b * c]
                for k in 1..<c { m = max(m, values[b * c + k]) }
                var sum = 0.0
                for k in 0..<c { sum += exp(Double(values[b * c + k] - m)) }
                confidence += 1 / sum
            }
            start += n
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        if global.json {
            print(JSON.object([
                ("out", .string(out)), ("model", .string(model)), ("data", .string(data)), ("frames", .int(pack.frameCount)),
                ("seed", .string(String(seed))), ("bytes", .int(size)),
                ("per_class", .array(perClass.map { .int($0) })),
                ("source_accuracy", .number(accuracy.fraction)),
                ("mean_confidence", .number(confidence / Double(max(1, pack.frameCount)))),
            ]).rendered())
            return
        }
        print("\(out): \(pack.frameCount) frames of \(data) (per class \(perClass.map(String.init).joined(separator: " "))), \(size) bytes, seed \(seed)")
        print("\(model) on the pack: accuracy \(fixed(100 * accuracy.fraction, 2)) %, mean top-class confidence "
              + fixed(confidence / Double(max(1, pack.frameCount)), 4))
    }
}
