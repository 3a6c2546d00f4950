import Foundation
import Lichen

/// A model loaded for inference or training: its file, description, parameters and arena.
final class LoadedModel {
    let path: String
    let file: GGUFFile
    let spec: ModelSpec
    let arena: Arena
    let store: ParameterStore

    /// Opens `path`, validates it, and loads its parameters into a fresh arena of `budgetBytes`.
    init(path: String, budgetBytes: Int, trainable: Bool) throws {
        let (file, spec) = try openModel(path)
        self.path = path
        self.file = file
        self.spec = spec
        arena = try naming(path) { () throws(LichenError) in try Arena(byteCount: budgetBytes) }
        store = ParameterStore(arena: arena)
        try naming(path) { () throws(LichenError) in
            try ModelFile.loadParameters(file, spec: spec, into: store, trainable: trainable)
        }
    }
}

/// Accuracy of a classifier over a labelled split, batch by batch, with a progress line.
struct Accuracy {
    var correct = 0
    var total = 0
    var perClassCorrect = [Int](repeating: 0, count: 10)
    var perClassTotal = [Int](repeating: 0, count: 10)

    var fraction: Double { total == 0 ? 0 : Double(correct) / Double(total) }

    /// Counts the rows of `logits` ([n, classes]) whose largest value is at the label.
    mutating func add(logits: TensorView, labels: TensorView, count n: Int) throws {
        let y = try logits.f32Elements("logits")
        let l = try labels.f32Elements("labels")
        let classes = n == 0 ? 0 : y.count / logits.shape[0]
        for i in 0..<n {
            var best = 0
            var bestValue = y[i * classes]
            for c in 1..<classes where y[i * classes + c] > bestValue {
                best = c
                bestValue = y[i * classes + c]
            }
            let label = Int(l[i])
            if label >= 0 && label < perClassTotal.count {
                perClassTotal[label] += 1
                if best == label { perClassCorrect[label] += 1 }
            }
            if best == label { correct += 1 }
            total += 1
        }
    }
}

/// Evaluates `graph` (inference) on the first `count` examples of `data`, `batch` at a time.
func evaluate(graph: Graph, data: FashionMNIST, count: Int, input: TensorView, labels: TensorView, batch: Int,
              progress: ProgressBar?) throws -> Accuracy {
    var accuracy = Accuracy()
    var start = 0
    let count = min(count, data.count)
    while start < count {
        let n = min(batch, count - start)
        let x = try naming("batch") { () throws(LichenError) in try input.leadingRows(0, count: n) }
        let y = try naming("batch") { () throws(LichenError) in try labels.leadingRows(0, count: n) }
        try naming("data") { () throws(LichenError) in try data.writeBatch(start: start, images: x, labels: y) }
        let logits = try naming("forward") { () throws(LichenError) in try graph.forward(input: x) }
        try accuracy.add(logits: logits, labels: y, count: n)
        start += n
        progress?.update(start)
    }
    progress?.finish()
    return accuracy
}

/// A progress bar on stderr (only when stderr is a terminal or --verbose asks for it).
final class ProgressBar {
    let label: String
    let total: Int
    let enabled: Bool
    var lastDrawn = -1.0
    let start = Date()

    init(_ label: String, total: Int, enabled: Bool) {
        self.label = label
        self.total = total
        self.enabled = enabled
    }

    func update(_ done: Int, suffix: String = "") {
        guard enabled, total > 0 else { return }
        let fraction = Double(done) / Double(total)
        guard fraction - lastDrawn >= 0.01 || done == total else { return }
        lastDrawn = fraction
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let elapsed = Date().timeIntervalSince(start)
        let line = "\r\(label) [\(bar)] \(done)/\(total) \(fixed(elapsed, 1)) s \(suffix)"
        FileHandle.standardError.write(line.data(using: .utf8) ?? Data())
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write("\n".data(using: .utf8) ?? Data())
    }
}

/// Whether stderr is a terminal (progress bars only draw there unless asked).
var stderrIsTerminal: Bool { isatty(2) != 0 }

/// A model's input and label buffers for one batch of `batch` frames, in its arena.
func batchBuffers(_ loaded: LoadedModel, batch: Int) throws -> (input: TensorView, labels: TensorView) {
    try naming(loaded.path) { () throws(LichenError) in
        var dims = [batch]
        dims += loaded.spec.inputShape.dimensions
        let input = try loaded.arena.persistentTensor(.f32, try Shape(dimensions: dims))
        let labels = try loaded.arena.persistentTensor(.f32, try Shape(batch))
        return (input, labels)
    }
}

/// Throws unless the frames of `file` fit the model's input and its labels the model's classes.
func requireStreamFits(_ file: StreamFile, path: String, model loaded: LoadedModel) throws {
    let spec = loaded.spec
    // An image input ([..., height, width]) must match the frame's geometry, not just its pixel count.
    let dims = spec.inputShape.dimensions
    let geometryFits = dims.count < 2 || (dims[dims.count - 2] == file.height && dims[dims.count - 1] == file.width)
    guard let inputValues = spec.inputShape.elementCount, inputValues == file.pixelsPerFrame, geometryFits else {
        throw CommandFailure("\(path): frames of \(file.width)x\(file.height)x\(file.channels) do not fit the input "
                             + "\(shapeText(spec.inputShape)) of \(loaded.path)")
    }
    guard file.classCount <= spec.classCount else {
        throw CommandFailure("\(path): \(file.classCount) classes, the model has \(spec.classCount)")
    }
}

/// Runs `predict` over every frame of the stream, `batch` frames at a time inside each domain
/// record (a batch never spans two records), and returns the accuracy of each record. The
/// prediction for a batch is whatever `predict` returns for it (for adaptation: before the update).
func streamAccuracy(
    _ file: StreamFile, path: String, input: TensorView, labels: TensorView, batch: Int, progress: ProgressBar,
    predict: (TensorView) throws -> TensorView
) throws -> [Accuracy] {
    var perRecord: [Accuracy] = []
    var done = 0
    for record in file.domains {
        var accuracy = Accuracy()
        var first = record.firstFrame
        let end = record.firstFrame + record.frameCount
        while first < end {
            let n = min(batch, end - first)
            let x = try naming("batch") { () throws(LichenError) in try input.leadingRows(0, count: n) }
            let y = try naming("batch") { () throws(LichenError) in try labels.leadingRows(0, count: n) }
            try naming(path) { () throws(LichenError) in
                try file.writeFrames(start: first, count: n, into: x)
                try file.writeLabels(start: first, count: n, into: y)
            }
            try accuracy.add(logits: try predict(x), labels: y, count: n)
            first += n
            done += n
            progress.update(done)
        }
        perRecord.append(accuracy)
    }
    progress.finish()
    return perRecord
}
