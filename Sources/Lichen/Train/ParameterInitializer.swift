/// Fresh parameters for a model, from a seed: the same seed gives the same bits everywhere.
///
/// PyTorch's defaults, so a model trained here starts where one trained there would:
/// linear and conv weights and biases uniform in [-1/sqrt(fanIn), 1/sqrt(fanIn)] (kaiming_uniform
/// with a = sqrt(5)); norm weights 1 and biases 0; running mean 0 and running variance 1.
public enum ParameterInitializer {
    /// Adds every parameter `spec` needs to `store`, trainable (running statistics excepted).
    ///
    /// - Throws: `.invalidModel` for an invalid spec; what `ParameterStore.add` throws
    ///   (`.duplicateName`, `.budgetExceeded`).
    /// - Note: Allocates (build time).
    public static func initialize(_ spec: ModelSpec, into store: ParameterStore, seed: UInt64) throws(LichenError) {
        var random = SplitMix64Random(seed: seed)
        let parameters = try ModelFile.expectedParameters(spec)
        // fan_in of each layer: its weight's row length (in for linear, in/groups * kh * kw for conv).
        var fanIn = [Int](repeating: 1, count: spec.layers.count)
        for p in parameters where p.suffix == "weight" { fanIn[p.layer] = max(p.rowLength, 1) }
        for parameter in parameters {
            let count = parameter.shape.elementCount ?? 0
            let role = ModelFile.role(of: parameter, in: spec)
            var values = [Float](repeating: 0, count: count)
            switch role {
            case .weight, .bias:
                let bound = 1 / Float(fanIn[parameter.layer]).squareRoot()
                for i in 0..<count {
                    // 24 random bits -> uniform in [-bound, bound)
                    let unit = Float(random.next() >> 40) * (1.0 / Float(1 << 24))
                    values[i] = (2 * unit - 1) * bound
                }
            case .normWeight, .runningVariance:
                for i in 0..<count { values[i] = 1 }
            case .normBias, .runningMean, .loraA, .loraB:
                break
            }
            try store.add(name: parameter.name, role: role, shape: parameter.shape, values: values,
                          trainable: !role.isRunningStatistic)
        }
    }
}
