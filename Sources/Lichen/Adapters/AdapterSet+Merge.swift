extension AdapterSet {
    /// The merged weight of layer weight `weightName`: f32 `[n_out, n_in]` =
    /// `W + Σ_members s · B · A` over the members that adapt it, W dequantized when q8_0/q4_0.
    ///
    /// - Parameter output: f32 `[n_out, n_in]` (any shape of that row count and row length).
    /// - Throws: `.notFound(kind: "LoRA target layer", ...)` when no linear or conv layer has that
    ///   weight; `.shapeMismatch` for an output of the wrong shape.
    /// - Note: Allocates nothing.
    public func mergedWeight(_ weightName: String, into output: TensorView) throws(LichenError) {
        for (i, node) in graph.nodes.enumerated() where node.kind == .linear || node.kind == .conv2d || node.kind == .conv1d {
            guard graph.store.parameters[node.weight].name == weightName else { continue }
            try mergeLayer(i, into: output)
            return
        }
        throw .notFound(kind: "LoRA target layer", name: weightName)
    }

    func mergeLayer(_ i: Int, into output: TensorView) throws(LichenError) {
        let node = graph.nodes[i]
        let rows = node.kind == .linear ? node.outFeatures : node.outChannels
        let k = node.kind == .linear ? node.inFeatures : node.groupDepth
        try output.require(.f32, "output")
        guard output.rowCount == rows && output.shape.last == k else {
            throw .shapeMismatch(operand: "output", dimension: 0, expected: rows, got: output.rowCount)
        }
        let out = try output.reshaped(try Shape(rows, k))
        let w = try graph.store.parameters[node.weight].value.reshaped(try Shape(rows, k))
        if w.type.isQuantized {
            try graph.kernels.dequantizeRows(w, into: out)
        } else {
            try out.copy(from: w)
        }
        for e in firstEntry[i]..<firstEntry[i + 1] {
            let entry = entries[e]
            try Kernels.sgemm(entry.b, entry.a, into: out, alpha: entry.s, beta: 1)
        }
    }

    /// A new parameter store holding the base with every adapted weight merged into an f32 copy
    /// (`W + Σ s · B · A`, in the row form `[n_out, n_in]` the graph takes); every other
    /// parameter is copied unchanged (quantized ones stay quantized). Nothing is trainable.
    /// Build a `Graph` over it to run the merged model without the set.
    ///
    /// - Throws: `.budgetExceeded` (values come from `arena`'s low end); nothing of the base changes.
    /// - Note: Allocates (on request, not in a step).
    public func mergedParameters(arena: Arena) throws(LichenError) -> ParameterStore {
        let store = ParameterStore(arena: arena)
        var merged = [Int](repeating: -1, count: graph.store.count)
        for (i, node) in graph.nodes.enumerated() where hasEntries(i) { merged[node.weight] = i }
        for p in 0..<graph.store.count {
            let parameter = graph.store.parameters[p]
            let layer = merged[p]
            if layer < 0 {
                try store.add(name: parameter.name, role: parameter.role, copying: parameter.value, trainable: false)
                continue
            }
            let node = graph.nodes[layer]
            let rows = node.kind == .linear ? node.outFeatures : node.outChannels
            let k = node.kind == .linear ? node.inFeatures : node.groupDepth
            let value = try TensorView.allocate(in: arena, type: .f32, shape: try Shape(rows, k))
            try mergeLayer(layer, into: value)
            // The value lives in the arena's low end as long as the arena: adopted, not copied again.
            try store.adopt(name: parameter.name, role: parameter.role, view: value, writable: true, trainable: false)
        }
        return store
    }
}
