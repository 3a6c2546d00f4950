/// The adapters a graph applies, each with its scale: immutable after construction, built for
/// one `Graph` and validated against its base model.
///
/// Construction does everything that can fail or allocate: it checks that every adapter belongs
/// to the graph's base (`AdapterBase`), that every target names a linear or conv weight of the
/// graph with the adapter's n_in and n_out, that scales are finite and names unique, and it
/// allocates the step workspace (A x of every target for the graph's batch, and one scratch for
/// backward) from the arena's heap. A forward given the set (`Graph.forward(input:adapters:)`
/// or `Graph.setAdapters(_:)`) then only reads it: no lock, no allocation.
///
/// Hot-swap: build the new set off the control loop, hand it over with one atomic exchange, and
/// have the loop pass it to its next forward. Lifetime rule: a set must stay alive until the
/// loop has left it. The graph itself keeps a strong reference to the set of its last forward
/// (for the backward that may follow) until the next forward with another set, or
/// `setAdapters(nil)`; the holder that drops the last reference frees the workspace (one
/// `heapFree`), so retire old sets on the control thread, not in the step. The set keeps its
/// graph alive and the graph keeps its current set: call `graph.setAdapters(nil)` before dropping
/// both, or neither (nor the arena behind them) is freed.
///
/// Adapters are shared: the same `LoRAAdapter` may sit in several sets (the old and the new
/// one during a swap). Its memory is counted once, in the adapter (`LoRAAdapter.byteCount`);
/// `byteCount` here is the set's own workspace.
///
/// `@unchecked Sendable`: every stored property is immutable after construction, so a set built on
/// the control thread may be handed to the loop; its workspace is written only by the step of the
/// one graph that runs it (one step at a time).
public final class AdapterSet: @unchecked Sendable {
    /// One adapter of the set with its user scale.
    public struct Member {
        public let adapter: LoRAAdapter
        /// The user scale (llama.cpp's `--lora-scaled FILE:SCALE`); 0 turns it off.
        public let scale: Float

        public init(_ adapter: LoRAAdapter, scale: Float = 1) {
            self.adapter = adapter
            self.scale = scale
        }
    }

    /// One target of one member, resolved to a graph layer.
    struct Entry {
        /// f32 `[r, n_in]`, `[n_out, r]`, and their gradients (nil: frozen).
        let a: TensorView, b: TensorView
        let gradientA: TensorView?, gradientB: TensorView?
        /// The effective multiplier s.
        let s: Float
        let rank: Int
        /// A x saved for backward: linear `[batchSize * rowsPerSample, r]`; conv `[batchSize, r * P]`.
        let u: TensorView
        /// Linear: `[batchSize * rowsPerSample, r]` (dimension 0 set per step); conv: one sample's `[r, P]`.
        let rowShape: Shape
        /// The member the entry belongs to (its column of `sampleWeights`).
        let member: Int
    }

    /// Per-sample member weights α (PSEC's context-aware composition, Skills/README.md), f32
    /// `[batchSize, members]`, when the set was built with `perSampleWeights: true`; else nil.
    /// Every linear entry of member m then adds `α[n, m] · s · B (A x)` for sample n. Written by
    /// the caller before a forward (e.g. the context-aware module's output); read by the step.
    public let sampleWeights: TensorView?
    /// dLoss/dα, same shape: backward adds into it (zero it between steps).
    public let sampleWeightGradient: TensorView?

    /// Largest number of members.
    public static let maximumMemberCount = 256

    /// The graph the set was built for.
    public let graph: Graph
    /// The base model the members belong to.
    public let base: AdapterBase
    /// The members, in the order given (applied in this order).
    public let members: [Member]
    /// Entries grouped by layer: layer i's are `entries[firstEntry[i] ..< firstEntry[i + 1]]`.
    let entries: [Entry]
    let firstEntry: [Int]
    /// The same members built for a second graph of the same model (a method's teacher, which
    /// must see the adapters the student sees), or nil.
    public let companion: AdapterSet?
    /// Backward scratch, `[max(rows * r, r * P)]` over the entries.
    let scratch: TensorView?
    let workspace: HeapBuffer?

    /// Bytes of the set's own workspace in the arena's heap (0 for an empty set).
    public var byteCount: Int { workspace?.byteCount ?? 0 }

    /// Bytes of the set's workspace plus every member adapter's.
    public var totalByteCount: Int {
        var n = byteCount
        for m in members { n += m.adapter.byteCount }
        return n
    }

    /// Largest scale magnitude a member may have (llama.cpp's `--lora-scaled` takes any float;
    /// useful LoRA scales lie within a few units, and a bound keeps B·A·x finite).
    public static let maximumScale: Float = 100

    /// Builds a set for `graph`.
    ///
    /// - Parameters:
    ///   - members: adapters with their scales (may be empty: the base model alone).
    ///   - graph: the graph that will run it; its parameter store is the base.
    ///   - base: the identity of the graph's base model (`AdapterBase(name:store:)`).
    ///   - arena: the heap the workspace comes from.
    /// - Throws: `.invalidModel(key: "lichen.adapter.base", ...)` for an adapter of another base
    ///   model; `.notFound(kind: "LoRA target layer", name: weight)` for a target that is not a
    ///   linear or conv weight of the graph; `.parameterShapeMismatch(tensor: "<weight>.lora_a"
    ///   or `.lora_b`, ...)` when n_in or n_out differ from the base weight's;
    ///   `.invalidModel(key: weight, ...)` for a grouped conv; `.outOfRange` for a
    ///   scale that is not finite or outside ±`maximumScale`; `.invalidArgument` for too many members; `.duplicateName(kind: "adapter", ...)`;
    ///   `.budgetExceeded`. Nothing is allocated when it throws.
    /// - Note: Allocates (control thread, not the step).
    ///   - companionGraph: a second graph of the same model to build the same members for
    ///     (`companion`), checked and built first.
    ///   - perSampleWeights: allocate `sampleWeights` and `sampleWeightGradient` (linear targets
    ///     only: a conv target is refused with `.invalidArgument(name: "per-sample weights", ...)`,
    ///     as is a companion graph).
    public init(members: [Member], graph: Graph, base: AdapterBase, arena: Arena, companionGraph: Graph? = nil,
                perSampleWeights: Bool = false) throws(LichenError) {
        if perSampleWeights && companionGraph != nil {
            throw .invalidArgument(name: "per-sample weights", value: 1, reason: "a set with per-sample weights has no companion")
        }
        guard members.count <= AdapterSet.maximumMemberCount else {
            throw .invalidArgument(name: "adapter count", value: members.count, reason: "a set holds at most 256 adapters")
        }
        let layerCount = graph.nodes.count
        // Resolve every target to its layer first: nothing is allocated before all checks pass.
        var perLayer = [[(member: Int, target: Int)]](repeating: [], count: layerCount)
        for (mi, m) in members.enumerated() {
            let adapter = m.adapter
            for j in 0..<mi where members[j].adapter === adapter || members[j].adapter.name == adapter.name {
                throw .duplicateName(kind: "adapter", name: adapter.name)
            }
            // Checked here, the one place every set is built (API, socket, CLI): a huge scale is
            // finite yet turns the next ordinary frame into infinite logits.
            _ = try Checked.finite(m.scale, name: "scale of adapter '" + adapter.name + "'",
                                   in: -AdapterSet.maximumScale...AdapterSet.maximumScale)
            guard adapter.base == base else {
                throw .invalidModel(key: "lichen.adapter.base", value: adapter.base.name,
                                    reason: "the adapter belongs to another base model")
            }
            for (ti, t) in adapter.targets.enumerated() {
                let layer = try AdapterSet.layer(of: t.shape, in: graph)
                if perSampleWeights && graph.nodes[layer].kind != .linear {
                    throw .invalidArgument(name: "per-sample weights", value: layer, reason: "per-sample weights take linear targets only")
                }
                perLayer[layer].append((mi, ti))
            }
        }
        companion = try companionGraph.map { (g) throws(LichenError) in try AdapterSet(members: members, graph: g, base: base, arena: arena) }
        // Workspace layout.
        var offsets: [Int] = []
        var total = 0
        var scratchCount = 0
        for i in 0..<layerCount {
            let node = graph.nodes[i]
            for (mi, ti) in perLayer[i] {
                let r = members[mi].adapter.targets[ti].rank
                let count: Int
                if node.kind == .linear {
                    count = graph.batchSize * node.rowsPerSample * r
                    scratchCount = max(scratchCount, count)
                } else {
                    count = graph.batchSize * r * node.positions
                    scratchCount = max(scratchCount, r * node.positions)
                }
                offsets.append(total)
                total += (count * 4 + 63) / 64 * 64
            }
        }
        let scratchOffset = total
        total += (scratchCount * 4 + 63) / 64 * 64
        let weightsOffset = total
        let weightCount = perSampleWeights ? graph.batchSize * max(members.count, 1) : 0
        total += 2 * ((weightCount * 4 + 63) / 64 * 64)
        let workspace: HeapBuffer? = total > 0 ? try HeapBuffer(arena: arena, byteCount: total) : nil
        var entries: [Entry] = []
        var firstEntry: [Int] = [0]
        var k = 0
        for i in 0..<layerCount {
            let node = graph.nodes[i]
            for (mi, ti) in perLayer[i] {
                let adapter = members[mi].adapter
                let t = adapter.targets[ti]
                let linear = node.kind == .linear
                let shape = linear
                    ? try Shape(graph.batchSize * node.rowsPerSample, t.rank)
                    : try Shape(graph.batchSize, t.rank * node.positions)
                let rowShape = linear ? shape : try Shape(t.rank, node.positions)
                // Non-nil: a workspace exists whenever there is an entry.
                guard let workspace else { break }
                let u = try workspace.view(byteOffset: offsets[k], type: .f32, shape: shape)
                k += 1
                entries.append(Entry(a: t.a, b: t.b, gradientA: t.gradientA, gradientB: t.gradientB,
                                     s: adapter.effectiveScale(members[mi].scale, target: ti), rank: t.rank, u: u, rowShape: rowShape,
                                     member: mi))
            }
            firstEntry.append(entries.count)
        }
        self.graph = graph
        self.base = base
        self.members = members
        self.entries = entries
        self.firstEntry = firstEntry
        self.workspace = workspace
        self.scratch = scratchCount > 0 ? try workspace?.view(byteOffset: scratchOffset, type: .f32, shape: try Shape(scratchCount)) : nil
        if weightCount > 0, let workspace {
            let shape = try Shape(graph.batchSize, max(members.count, 1))
            let w = try workspace.view(byteOffset: weightsOffset, type: .f32, shape: shape)
            let g = try workspace.view(byteOffset: weightsOffset + (weightCount * 4 + 63) / 64 * 64, type: .f32, shape: shape)
            try w.fill(1)
            try g.fill(0)
            sampleWeights = w
            sampleWeightGradient = g
        } else {
            sampleWeights = nil
            sampleWeightGradient = nil
        }
    }

    /// The layer whose weight a target adapts, checked against the target's shape.
    static func layer(of t: LoRATargetShape, in graph: Graph) throws(LichenError) -> Int {
        for (i, node) in graph.nodes.enumerated() where node.kind == .linear || node.kind == .conv2d || node.kind == .conv1d {
            guard graph.store.parameters[node.weight].name == t.weightName else { continue }
            let nIn = node.kind == .linear ? node.inFeatures : node.groupDepth
            let nOut = node.kind == .linear ? node.outFeatures : node.outChannels
            if node.kind != .linear && node.groups != 1 {
                throw .invalidModel(key: t.weightName, value: String(node.groups), reason: "LoRA on grouped convolutions is not supported")
            }
            guard t.inputCount == nIn else {
                throw .parameterShapeMismatch(tensor: t.weightName + ".lora_a", expected: AdapterSet.text(t.rank, nIn),
                                              got: AdapterSet.text(t.rank, t.inputCount))
            }
            guard t.outputCount == nOut else {
                throw .parameterShapeMismatch(tensor: t.weightName + ".lora_b", expected: AdapterSet.text(nOut, t.rank),
                                              got: AdapterSet.text(t.outputCount, t.rank))
            }
            return i
        }
        throw .notFound(kind: "LoRA target layer", name: t.weightName)
    }

    static func text(_ a: Int, _ b: Int) -> String { "[" + String(a) + ", " + String(b) + "]" }

    /// Whether layer `i` has adapters in this set.
    @inline(__always)
    func hasEntries(_ i: Int) -> Bool { firstEntry[i] < firstEntry[i + 1] }
}
