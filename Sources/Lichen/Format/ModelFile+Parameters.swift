extension ModelFile {
    /// Fills `store` with every parameter `spec` needs, taken from `file`.
    ///
    /// - f32 tensors are copied into the store's arena (so they can train, and batch norm can
    ///   update its running statistics); f16 tensors are converted to f32 copies.
    /// - q8_0/q4_0 weights are adopted as read-only views into the file's bytes (zero-copy over
    ///   the mapping) unless `copyQuantized` is true, in which case they are copied into the
    ///   arena (for boards without mmap). Either way they stay frozen.
    /// - Conv weights may be stored 4-D/3-D or flat `[out, in/groups * kh * kw]` (quantized ones
    ///   must be flat: a GGUF block row is the innermost dimension); they are given to the graph flat.
    ///
    /// - Parameters:
    ///   - trainable: whether the f32 parameters (not running statistics) start trainable.
    /// - Throws: what `checkParameters` throws, `.duplicateName` if the store already holds a
    ///   name, `.nonFiniteValue` for NaN or infinite values, `.budgetExceeded`.
    public static func loadParameters(
        _ file: GGUFFile, spec: ModelSpec, into store: ParameterStore, trainable: Bool, copyQuantized: Bool = false
    ) throws(LichenError) {
        try checkParameters(file, spec: spec)
        for parameter in try expectedParameters(spec) {
            let info = try file.tensorInfo(parameter.name)
            let role = role(of: parameter, in: spec)
            // Quantized conv weights go to the graph flat, [out, rowLength] (whole blocks per row);
            // f32 ones keep the layer's own shape (the graph takes either).
            let shape = info.type.isQuantized ? (parameter.flatShape ?? parameter.shape) : parameter.shape
            switch info.type {
            case .f32:
                let view = try file.view(info)
                let flat = try TensorView(base: view.base, byteCount: view.byteCount, type: .f32, shape: shape)
                try store.add(name: parameter.name, role: role, copying: flat, trainable: trainable)
            case .f16:
                let view = try file.view(info)
                let count = shape.elementCount ?? 0
                var values = [Float](repeating: 0, count: count)
                // safe: the view was validated by GGUFFile to hold `count` f16 values.
                let halves = UnsafeRawPointer(view.base).assumingMemoryBound(to: UInt16.self)
                for i in 0..<count { values[i] = Kernels.float(fromHalfBits: halves[i]) }
                try store.add(name: parameter.name, role: role, shape: shape, values: values, trainable: trainable)
            case .q8_0, .q4_0:
                let view = try file.view(info)
                let flat = try TensorView(base: view.base, byteCount: view.byteCount, type: info.type, shape: shape)
                if copyQuantized {
                    try store.add(name: parameter.name, role: role, copying: flat, trainable: false)
                } else {
                    try store.adopt(name: parameter.name, role: role, view: flat, writable: false, trainable: false)
                }
            }
        }
    }

    /// The role of an expected parameter: norm layers' weight and bias are `normWeight` and
    /// `normBias`; batch norm's running statistics are buffers.
    static func role(of parameter: ModelParameter, in spec: ModelSpec) -> ParameterRole {
        let kind = spec.layers[parameter.layer].kind
        let isNorm = kind == .batchNorm || kind == .groupNorm || kind == .layerNorm
        switch parameter.suffix {
        case "running_mean": return .runningMean
        case "running_var": return .runningVariance
        case "bias": return isNorm ? .normBias : .bias
        default: return isNorm ? .normWeight : .weight
        }
    }
}

extension ModelFile {
    /// The parameters of `spec` held in `store`, as tensors for a model file: f32 values in the
    /// layer's own shape, quantized ones as stored (flat rows of blocks).
    ///
    /// - Throws: `.notFound(kind: "parameter", ...)` when the store lacks a parameter.
    /// - Note: Copies every value (tool-side: writing a file).
    public static func tensors(of spec: ModelSpec, from store: ParameterStore) throws(LichenError) -> [ModelTensor] {
        var out: [ModelTensor] = []
        for parameter in try expectedParameters(spec) {
            let value = try store.parameter(named: parameter.name).value
            let shape = value.type.isQuantized ? value.shape : parameter.shape
            // safe: the store's views were validated when they were made; byteCount is their extent.
            let bytes = Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(value.base), count: value.byteCount))
            out.append(ModelTensor(name: parameter.name, type: value.type, shape: shape, bytes: bytes))
        }
        return out
    }
}
