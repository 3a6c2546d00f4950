/// Row buffers a classification loss computes into: `[maximumBatch, classes]` f32 views
/// taken once from the arena, used as `[batch, classes]` prefixes for any batch up to the
/// maximum. Internal to the losses.
struct LossScratch {
    let maximumBatch: Int
    let classes: Int
    private let buffers: (TensorView, TensorView, TensorView, TensorView)
    let count: Int

    /// `count` (1 to 4) buffers of `[maximumBatch, classes]`.
    init(maximumBatch: Int, classes: Int, count: Int, arena: Arena) throws(LichenError) {
        guard maximumBatch > 0 else {
            throw .invalidArgument(name: "maximumBatch", value: maximumBatch, reason: "must be > 0")
        }
        guard classes > 0 else { throw .invalidArgument(name: "classes", value: classes, reason: "must be > 0") }
        let shape = try Shape(maximumBatch, classes)
        let a = try arena.persistentTensor(.f32, shape)
        let b = count > 1 ? try arena.persistentTensor(.f32, shape) : a
        let c = count > 2 ? try arena.persistentTensor(.f32, shape) : a
        let d = count > 3 ? try arena.persistentTensor(.f32, shape) : a
        self.maximumBatch = maximumBatch
        self.classes = classes
        self.buffers = (a, b, c, d)
        self.count = count
    }

    /// Buffer `i` as `[batch, classes]`.
    func rows(_ i: Int, batch: Int) throws(LichenError) -> TensorView {
        switch i {
        case 0: return try buffers.0.leadingRows(0, count: batch)
        case 1: return try buffers.1.leadingRows(0, count: batch)
        case 2: return try buffers.2.leadingRows(0, count: batch)
        default: return try buffers.3.leadingRows(0, count: batch)
        }
    }
}

/// Checks of loss operands, shared by the losses.
enum LossOperands {
    /// The batch size of `logits` (`[batch, classes]`, any rank read as rows of the innermost
    /// dimension), after checking its type, its class count, the batch bound and that every
    /// value is finite.
    static func batch(
        of logits: TensorView, _ operand: StaticString, classes: Int, maximumBatch: Int
    ) throws(LichenError) -> Int {
        let values = try logits.f32Elements(operand)
        guard logits.shape.last == classes else {
            throw .shapeMismatch(operand: operand, dimension: max(logits.shape.rank - 1, 0), expected: classes, got: logits.shape.last)
        }
        let batch = logits.rowCount
        guard batch > 0 else { throw .invalidArgument(name: "batch", value: 0, reason: "a loss needs at least one row") }
        guard batch <= maximumBatch else {
            throw .shapeMismatch(operand: operand, dimension: 0, expected: maximumBatch, got: batch)
        }
        if let bad = values.firstNonFiniteIndex() {
            throw .invalidArgument(name: operand, value: bad, reason: "value at this flat index is NaN or infinite")
        }
        return batch
    }

    /// Checks that `view` is f32 `[batch, classes]`.
    static func requireRows(_ view: TensorView, _ operand: StaticString, batch: Int, classes: Int) throws(LichenError) {
        try view.require(.f32, operand)
        guard view.shape.last == classes else {
            throw .shapeMismatch(operand: operand, dimension: max(view.shape.rank - 1, 0), expected: classes, got: view.shape.last)
        }
        guard view.rowCount == batch else { throw .shapeMismatch(operand: operand, dimension: 0, expected: batch, got: view.rowCount) }
    }
}
