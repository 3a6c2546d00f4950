/// What a parameter is for. Optimizer groups, adaptation methods and model files select
/// parameters by role; running statistics are buffers, never trainable.
public enum ParameterRole: UInt8, Sendable, CaseIterable {
    case weight = 0
    case bias = 1
    case normWeight = 2
    case normBias = 3
    case runningMean = 4
    case runningVariance = 5
    case loraA = 6
    case loraB = 7

    /// Whether the role is a running statistic (batch norm's mean or variance).
    public var isRunningStatistic: Bool { self == .runningMean || self == .runningVariance }

    /// Lower-case name ("weight", "norm_bias", "running_var", ...).
    public var name: String {
        switch self {
        case .weight: return "weight"
        case .bias: return "bias"
        case .normWeight: return "norm_weight"
        case .normBias: return "norm_bias"
        case .runningMean: return "running_mean"
        case .runningVariance: return "running_var"
        case .loraA: return "lora_a"
        case .loraB: return "lora_b"
        }
    }
}

/// One named parameter: its value, its gradient when it has one, its role and whether it trains.
public struct Parameter {
    /// Unique name, `<layer name>.weight|bias|running_mean|running_var` for graph layers.
    public let name: String
    public let role: ParameterRole
    /// The value: f32 in arena memory (copied in), or an adopted view (possibly a read-only
    /// q8_0/q4_0 view into a mapped model file).
    public let value: TensorView
    /// f32 gradient of the value's shape, in arena memory; allocated the first time the
    /// parameter is made trainable and kept afterwards.
    public internal(set) var gradient: TensorView?
    /// Whether backward accumulates a gradient for it and optimizers update it.
    public internal(set) var trainable: Bool
    /// Whether Lichen may write the value (copied parameters and views adopted as writable).
    /// Only writable f32 parameters can train; running statistics must be writable to be updated.
    public let isWritable: Bool

    /// Whether the parameter could ever be trained: writable f32, not a running statistic.
    public var canTrain: Bool { isWritable && value.type == .f32 && !role.isRunningStatistic }
}

/// The named parameters of a model, in the order they were added.
///
/// Values either live in the arena (added with `add(name:role:shape:values:)` or
/// `add(name:role:copying:)`) or are adopted views over memory someone else keeps alive
/// (`adopt(name:role:view:writable:)`, e.g. a mapped GGUF tensor). Gradients always live in
/// the arena. Quantized values are frozen: they never train and never get a gradient.
///
/// - Note: Adding parameters and making them trainable allocate (build time). Lookups by
///   index, `zeroGradients` and iteration allocate nothing.
public final class ParameterStore {
    /// The arena values and gradients are allocated from.
    public let arena: Arena
    /// The parameters, by index.
    public private(set) var parameters: [Parameter] = []

    public init(arena: Arena) {
        self.arena = arena
    }

    /// Number of parameters.
    public var count: Int { parameters.count }

    /// Parameter `index` (0 ..< count).
    public subscript(index: Int) -> Parameter { parameters[index] }

    /// The index of the parameter called `name`, or nil.
    public func index(of name: String) -> Int? {
        for i in 0..<parameters.count where parameters[i].name == name { return i }
        return nil
    }

    /// The parameter called `name`.
    /// - Throws: `.notFound(kind: "parameter", name:)`.
    public func parameter(named name: String) throws(LichenError) -> Parameter {
        guard let i = index(of: name) else { throw .notFound(kind: "parameter", name: name) }
        return parameters[i]
    }

    // MARK: - Adding

    /// Adds an f32 parameter of `shape`, copying `values` into the arena.
    ///
    /// - Parameters:
    ///   - trainable: ignored (false) for running statistics.
    /// - Returns: the new parameter's index.
    /// - Throws: `.duplicateName`, `.shapeMismatch` (`values.count` differs from the shape's
    ///   element count), `.nonFiniteValue`, `.budgetExceeded`.
    @discardableResult
    public func add(name: String, role: ParameterRole, shape: Shape, values: [Float], trainable: Bool = true)
        throws(LichenError) -> Int
    {
        try requireNewName(name)
        let count = shape.elementCount ?? -1
        guard values.count == count else {
            throw .shapeMismatch(operand: "values", dimension: 0, expected: count, got: values.count)
        }
        for i in 0..<values.count where !values[i].isFinite { throw .nonFiniteValue(operand: "parameter values", index: i) }
        let value = try TensorView.allocate(in: arena, type: .f32, shape: shape)
        try value.copy(from: values)
        return try append(name: name, role: role, value: value, writable: true, trainable: trainable)
    }

    /// Adds a parameter holding a copy of `source` (f32, or q8_0/q4_0, which stays frozen) in the arena.
    ///
    /// - Returns: the new parameter's index.
    /// - Throws: `.duplicateName`, `.unsupportedElementType` (f16), `.nonFiniteValue` (f32 values), `.budgetExceeded`.
    @discardableResult
    public func add(name: String, role: ParameterRole, copying source: TensorView, trainable: Bool = true)
        throws(LichenError) -> Int
    {
        try requireNewName(name)
        guard source.type != .f16 else { throw .unsupportedElementType(operand: "parameter", type: source.type) }
        if source.type == .f32, let i = try source.firstNonFiniteIndex() {
            throw .nonFiniteValue(operand: "parameter values", index: i)
        }
        let value = try TensorView.allocate(in: arena, type: source.type, shape: source.shape)
        try value.copy(from: source)
        return try append(name: name, role: role, value: value, writable: true, trainable: trainable && source.type == .f32)
    }

    /// Adopts an existing view as a parameter without copying. The memory must outlive the store
    /// (and every graph built over it). A view adopted read-only (`writable: false`, e.g. a
    /// mapped model file) is never written: it cannot train, and a batch norm cannot update it.
    ///
    /// - Returns: the new parameter's index.
    /// - Throws: `.duplicateName`, `.unsupportedElementType` (f16), `.budgetExceeded` (a gradient).
    @discardableResult
    public func adopt(name: String, role: ParameterRole, view: TensorView, writable: Bool = false, trainable: Bool = false)
        throws(LichenError) -> Int
    {
        try requireNewName(name)
        guard view.type != .f16 else { throw .unsupportedElementType(operand: "parameter", type: view.type) }
        return try append(name: name, role: role, value: view, writable: writable, trainable: trainable)
    }

    private func requireNewName(_ name: String) throws(LichenError) {
        guard !name.isEmpty else { throw .invalidArgument(name: "parameter name", value: 0, reason: "must not be empty") }
        if index(of: name) != nil { throw .duplicateName(kind: "parameter", name: name) }
    }

    private func append(name: String, role: ParameterRole, value: TensorView, writable: Bool, trainable: Bool)
        throws(LichenError) -> Int
    {
        parameters.append(Parameter(name: name, role: role, value: value, gradient: nil, trainable: false, isWritable: writable))
        let i = parameters.count - 1
        if trainable && parameters[i].canTrain { try makeTrainable(i) }
        return i
    }

    private func makeTrainable(_ i: Int) throws(LichenError) {
        if parameters[i].gradient == nil {
            parameters[i].gradient = try TensorView.allocate(in: arena, type: .f32, shape: parameters[i].value.shape)
        }
        parameters[i].trainable = true
    }

    // MARK: - Training flags

    /// Makes parameter `index` trainable or frozen. A gradient is allocated (zeroed) the first
    /// time it becomes trainable.
    ///
    /// - Throws: `.invalidArgument` when asked to train a parameter that cannot (quantized,
    ///   read-only, or a running statistic); `.budgetExceeded`.
    public func setTrainable(_ trainable: Bool, index: Int) throws(LichenError) {
        guard index >= 0 && index < parameters.count else {
            throw .invalidArgument(name: "parameter index", value: index, reason: "no such parameter")
        }
        if !trainable {
            parameters[index].trainable = false
            return
        }
        guard parameters[index].canTrain else {
            throw .invalidArgument(name: "trainable", value: Int(parameters[index].role.rawValue),
                                   reason: "only writable f32 parameters that are not running statistics can train")
        }
        try makeTrainable(index)
    }

    /// Makes the parameter called `name` trainable or frozen (see `setTrainable(_:index:)`).
    /// - Throws: `.notFound`, and as `setTrainable(_:index:)`.
    public func setTrainable(_ trainable: Bool, name: String) throws(LichenError) {
        guard let i = index(of: name) else { throw .notFound(kind: "parameter", name: name) }
        try setTrainable(trainable, index: i)
    }

    /// Makes every parameter of `role` that can train trainable (or every one of `role` frozen).
    /// Quantized, read-only and running-statistic parameters are left frozen.
    ///
    /// - Returns: how many parameters of `role` are trainable afterwards.
    /// - Throws: `.budgetExceeded` (gradients).
    @discardableResult
    public func setTrainable(_ trainable: Bool, role: ParameterRole) throws(LichenError) -> Int {
        var n = 0
        for i in 0..<parameters.count where parameters[i].role == role {
            if trainable && parameters[i].canTrain {
                try makeTrainable(i)
            } else {
                parameters[i].trainable = false
            }
            if parameters[i].trainable { n += 1 }
        }
        return n
    }

    /// Freezes every parameter and lets go of every gradient, for an owner about to give the
    /// arena memory they live in back (a runtime rebuilding its method: the next method's
    /// trainables get fresh gradients instead of views into memory that is someone else's now).
    public func forgetGradients() {
        for i in 0..<parameters.count {
            parameters[i].trainable = false
            parameters[i].gradient = nil
        }
    }

    /// Freezes every parameter.
    public func freezeAll() {
        for i in 0..<parameters.count { parameters[i].trainable = false }
    }

    // MARK: - Gradients

    /// Sets every allocated gradient to zero.
    /// - Note: Allocates nothing.
    public func zeroGradients() throws(LichenError) {
        for i in 0..<parameters.count {
            if let g = parameters[i].gradient { try g.fill(0) }
        }
    }

    /// Number of trainable parameters.
    public var trainableCount: Int {
        var n = 0
        for p in parameters where p.trainable { n += 1 }
        return n
    }

    /// Number of trainable values (elements).
    public var trainableValueCount: Int {
        var n = 0
        for p in parameters where p.trainable { n += p.value.elementCount }
        return n
    }

    /// Calls `body` with the value and gradient of every trainable parameter, in order.
    /// - Note: Allocates nothing.
    public func forEachTrainable(_ body: (_ index: Int, _ value: TensorView, _ gradient: TensorView) throws(LichenError) -> Void)
        throws(LichenError)
    {
        for i in 0..<parameters.count where parameters[i].trainable {
            if let g = parameters[i].gradient { try body(i, parameters[i].value, g) }
        }
    }
}
