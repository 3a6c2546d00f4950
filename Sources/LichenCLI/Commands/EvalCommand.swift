import ArgumentParser
import Foundation
import Lichen

/// `lichen eval --model M.gguf [--json]`: clean test accuracy on Fashion-MNIST.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Clean test accuracy of a model on the 10,000 Fashion-MNIST test images.",
        discussion: """
            The model runs for inference (batch norm with its running statistics), quantized weights \
            straight from the mapped file. Prints the accuracy and the accuracy per class; --json prints \
            one document whose error rates and accuracies are fractions in [0, 1].
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("Model file (GGUF).", valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Folder holding the Fashion-MNIST IDX .gz files.", valueName: "path"))
    var dataDirectory: String = FashionMNIST.defaultDirectory

    @Option(name: .long, help: ArgumentHelp("Examples per forward.", valueName: "n"))
    var batch: Int = 200

    @Option(name: .long, help: ArgumentHelp("Evaluate the first n test images only (default: all 10,000).", valueName: "n"))
    var limit: Int?

    @Option(name: .long, help: ArgumentHelp("Memory budget, in MiB.", valueName: "MiB"))
    var budget: Int = 256

    func validate() throws {
        guard batch >= 1 && batch <= 10_000 else { throw ValidationError("--batch must be in 1...10000") }
        guard budget >= 16 && budget <= 1 << 16 else { throw ValidationError("--budget must be in 16...65536 MiB") }
        if let limit { guard limit >= 1 && limit <= 10_000 else { throw ValidationError("--limit must be in 1...10000") } }
    }

    func run() throws {
        let loaded = try LoadedModel(path: model, budgetBytes: budget << 20, trainable: false)
        let spec = loaded.spec
        let test = try naming(dataDirectory) { () throws(LichenError) in
            try FashionMNIST.load(.test, directory: dataDirectory, arena: loaded.arena)
        }
        let (graph, input, labels) = try naming(model) { () throws(LichenError) in
            let graph = try Graph(spec: spec, store: loaded.store, batchSize: batch, arena: loaded.arena)
            var dims = [batch]
            dims += spec.inputShape.dimensions
            let input = try loaded.arena.persistentTensor(.f32, try Shape(dimensions: dims))
            let labels = try loaded.arena.persistentTensor(.f32, try Shape(batch))
            return (graph, input, labels)
        }
        let start = Date()
        let count = limit ?? test.count
        let accuracy = try evaluate(graph: graph, data: test, count: count, input: input, labels: labels, batch: batch,
                                    progress: ProgressBar("eval", total: count, enabled: stderrIsTerminal || global.verbose))
        let seconds = Date().timeIntervalSince(start)
        let types = Set(loaded.file.tensors.map(\.type.name)).sorted()
        if global.json {
            var classes: [JSON] = []
            for c in 0..<10 {
                let acc = accuracy.perClassTotal[c] == 0 ? 0 : Double(accuracy.perClassCorrect[c]) / Double(accuracy.perClassTotal[c])
                classes.append(.object([("class", .int(c)), ("name", .string(className(c))),
                                        ("accuracy", .number(acc)), ("count", .int(accuracy.perClassTotal[c]))]))
            }
            let doc: JSON = .object([
                ("model", .string(model)),
                ("architecture", .string(spec.architecture)),
                ("tensor_types", .array(types.map { .string($0) })),
                ("examples", .int(accuracy.total)),
                ("clean_accuracy", .number(accuracy.fraction)),
                ("clean_error", .number(1 - accuracy.fraction)),
                ("per_class", .array(classes)),
                ("planned_step_bytes", .int(graph.plannedBytes)),
                ("seconds", .number(seconds)),
            ])
            print(doc.rendered())
        } else {
            var table = Table(["class", "name", "accuracy (%)", "images"], rightAligned: [0, 2, 3])
            for c in 0..<10 {
                let acc = accuracy.perClassTotal[c] == 0 ? 0 : Double(accuracy.perClassCorrect[c]) / Double(accuracy.perClassTotal[c])
                table.add([String(c), className(c), fixed(100 * acc, 2), String(accuracy.perClassTotal[c])])
            }
            print(table.rendered())
            print("")
            print("\(model): \(spec.architecture) (\(types.joined(separator: ", "))), clean test accuracy "
                  + "\(fixed(100 * accuracy.fraction, 2)) % on \(accuracy.total) images, \(fixed(seconds, 2)) s")
        }
    }

    func className(_ c: Int) -> String {
        guard let name = FashionMNIST.className(c) else { return "?" }
        return name.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
    }
}
