import Lichen

/// Runs `predict` over every frame of the stream, one frame at a time (frame mode), and
/// returns the accuracy of each domain record. `predict` returns the frame's logits
/// (`[1, classes]`), or nil when the frame was refused (bad input: skipped and counted by the
/// caller, not scored).
func frameAccuracy(
    _ file: StreamFile, path: String, input: TensorView, labels: TensorView, progress: ProgressBar,
    predict: (TensorView) throws -> TensorView?
) throws -> [Accuracy] {
    var perRecord: [Accuracy] = []
    var done = 0
    let x = try naming("frame") { () throws(LichenError) in try input.leadingRows(0, count: 1) }
    let y = try naming("frame") { () throws(LichenError) in try labels.leadingRows(0, count: 1) }
    for record in file.domains {
        var accuracy = Accuracy()
        for frame in record.frames {
            try naming(path) { () throws(LichenError) in
                try file.writeFrames(start: frame, count: 1, into: x)
                try file.writeLabels(start: frame, count: 1, into: y)
            }
            if let z = try predict(x) { try accuracy.add(logits: z, labels: y, count: 1) }
            done += 1
            progress.update(done)
        }
        perRecord.append(accuracy)
    }
    progress.finish()
    return perRecord
}
