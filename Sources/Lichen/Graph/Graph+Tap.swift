/// The feature tap of `GraphOptions.tapLayer`: the input of one layer, read after a forward and
/// given an extra gradient in backward (an encoder h and a head g with the split at that layer).
extension Graph {
    /// The tapped layer's input from the last forward, `[n, features...]` (n the forward's
    /// batch); valid until the next forward.
    /// - Throws: `.invalidArgument` when the graph has no tap or no forward ran.
    /// - Note: Allocates nothing.
    public func tappedInput(batch n: Int) throws(LichenError) -> TensorView {
        let tap = options.tapLayer
        guard tap >= 0 else { throw .invalidArgument(name: "tapLayer", value: tap, reason: "the graph was built without a feature tap") }
        guard n >= 1 && n <= batchSize else {
            throw .invalidArgument(name: "tap.batch", value: n, reason: "must be in 1...the batch size the graph was built for")
        }
        let node = nodes[tap]
        return try value(node.input0, Graph.batched(node.inShape, n))
    }

    /// The tapped input's shape for a batch of `n`: `[n, features...]`.
    /// - Throws: `.invalidArgument` when the graph has no tap.
    public func tappedShape(batch n: Int) throws(LichenError) -> Shape {
        let tap = options.tapLayer
        guard tap >= 0 else { throw .invalidArgument(name: "tapLayer", value: tap, reason: "the graph was built without a feature tap") }
        return Graph.batched(nodes[tap].inShape, n)
    }

    /// Backward as `backward(outputGradient:)`, adding `tapGradient` (`[n, features...]`, the
    /// tapped input's shape) to dLoss/d(tapped input) once every layer at or after the tap has
    /// run backward: the total gradient is the head's plus `tapGradient`.
    ///
    /// - Throws: as `backward(outputGradient:)`; `.invalidArgument` without a tap or when no
    ///   gradient flows into the tapped value (nothing upstream can train);
    ///   `.shapeMismatch(operand: "tapGradient", ...)`; `.nonFiniteValue(operand: "tapGradient", ...)`.
    /// - Note: Allocates nothing.
    public func backward(outputGradient: TensorView, tapGradient: TensorView) throws(LichenError) {
        let tap = options.tapLayer
        guard tap >= 0 else { throw .invalidArgument(name: "tapLayer", value: tap, reason: "the graph was built without a feature tap") }
        guard gradientBuffer[nodes[tap].input0] >= 0 else {
            throw .invalidArgument(name: "tapGradient", value: tap, reason: "no gradient flows into the tapped value")
        }
        try tapGradient.require(.f32, "tapGradient")
        let n = forwardBatch
        try Graph.requireShape(tapGradient, Graph.batched(nodes[tap].inShape, max(n, 1)), "tapGradient")
        if let i = try tapGradient.firstNonFiniteIndex() { throw .nonFiniteValue(operand: "tapGradient", index: i) }
        try backward(outputGradient: outputGradient, inputGradient: nil, tapGradient: tapGradient)
    }

    func addTapGradient(_ extra: TensorView, _ n: Int) throws(LichenError) {
        let node = nodes[options.tapLayer]
        let g = try gradient(node.input0, Graph.batched(node.inShape, n))
        try g.withFloats { (gs) throws(LichenError) in
            try extra.withFloats { (es) throws(LichenError) in
                for i in 0..<gs.count { gs[i] += es[i] }
            }
        }
    }
}
