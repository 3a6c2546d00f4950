import CRuntime

/// The adapter operations (control side: the endpoint's thread or any caller's thread).
///
/// Each operation takes `controlMutex` (so operations do not interleave and never meet a
/// method change half-way), reads the newest set, loads and validates what it needs and builds
/// a whole new `AdapterSet` for the model's graph inside the budget's heap, then publishes it
/// with one atomic exchange (`StepBoundarySwap`). The loop picks it up at the start of its next
/// step. Any failure — a missing file, a bad GGUF, an adapter of another base model, a shape
/// mismatch, a duplicate name, over budget — throws before anything is published: the active
/// set stays as it was, and what the failed attempt allocated is freed as it unwinds.
///
/// Adapters are named after their file (the base name without `.gguf`); names are unique in a
/// set. Old sets, and adapters no set refers to any more, are freed on the control side once
/// the loop has confirmed leaving them (`StepBoundarySwap.collect`, run by every operation and
/// by `status()`).
extension Runtime {
    /// Loads the adapter file at `path` and adds it to the active set with `scale`.
    /// - Returns: the new set's generation.
    /// - Throws: `.invalidArgument(name: "model", ...)` before a model is loaded; what
    ///   `AdapterFile.read(path:name:arena:)` and `AdapterSet.init` throw; `.duplicateName`
    ///   when an adapter of that name is already active.
    @discardableResult
    public func loadAdapter(path: String, scale: Float) throws(LichenError) -> UInt64 {
        try adapterOperation { (members, files) throws(LichenError) in
            let adapter = try Runtime.readAdapter(path, arena: arena)
            try checkBase(adapter)
            members.append(AdapterSet.Member(adapter, scale: scale))
            files[adapter.name] = path
            return ()
        }
    }

    /// Removes the adapter called `name` from the active set.
    /// - Throws: `.notFound(kind: "adapter", name:)`; `.invalidArgument(name: "model", ...)`.
    @discardableResult
    public func unloadAdapter(name: String) throws(LichenError) -> UInt64 {
        try adapterOperation { (members, files) throws(LichenError) in
            guard let i = members.firstIndex(where: { $0.adapter.name == name }) else {
                throw .notFound(kind: "adapter", name: name)
            }
            members.remove(at: i)
            files[name] = nil
            return ()
        }
    }

    /// Replaces the whole active set with the adapters in `list` (empty: no adapter). Every
    /// file is loaded and the set built before anything is published.
    @discardableResult
    public func swapAdapters(_ list: [ControlAdapterSpec]) throws(LichenError) -> UInt64 {
        var failedPath: String? = nil
        return try swapAdapters(list, failedPath: &failedPath)
    }

    /// `swapAdapters(_:)`, leaving in `failedPath` the file whose reading failed (nil when the
    /// failure was not a file's), so that an answer can name which file of a swap was bad.
    @discardableResult
    func swapAdapters(_ list: [ControlAdapterSpec], failedPath: inout String?) throws(LichenError) -> UInt64 {
        try adapterOperation { (members, files) throws(LichenError) in
            var fresh: [AdapterSet.Member] = []
            var names: [String: String] = [:]
            for item in list {
                failedPath = item.path
                let adapter = try Runtime.readAdapter(item.path, arena: arena)
                try checkBase(adapter)
                failedPath = nil
                fresh.append(AdapterSet.Member(adapter, scale: item.scale))
                names[adapter.name] = item.path
            }
            members = fresh
            files = names
            return ()
        }
    }

    /// Sets the scale of the active adapter called `name`.
    /// - Throws: `.notFound(kind: "adapter", name:)`; `.outOfRange` for a scale that is not
    ///   finite or outside ±`AdapterSet.maximumScale` (the message gives the range).
    @discardableResult
    public func scaleAdapter(name: String, scale: Float) throws(LichenError) -> UInt64 {
        try adapterOperation { (members, _) throws(LichenError) in
            guard let i = members.firstIndex(where: { $0.adapter.name == name }) else {
                throw .notFound(kind: "adapter", name: name)
            }
            members[i] = AdapterSet.Member(members[i].adapter, scale: scale)
            return ()
        }
    }

    /// The newest set's adapters and its generation (what the loop sees from its next step).
    public func adapterList() -> (adapters: [ControlAdapterInfo], generation: UInt64) {
        lcr_os_mutex_lock(controlMutex)
        defer { lcr_os_mutex_unlock(controlMutex) }
        adapters.collect()
        let (set, generation) = adapters.latest()
        var out: [ControlAdapterInfo] = []
        for m in set?.members ?? [] {
            var rank = 0
            for t in m.adapter.targets { rank = max(rank, t.rank) }
            out.append(ControlAdapterInfo(
                name: m.adapter.name, file: adapterFiles[m.adapter.name] ?? "", rank: rank, scale: m.scale,
                byteCount: m.adapter.byteCount))
        }
        return (out, generation)
    }

    /// Drops the adapter sets (and adapters) the loop has left. Returns how many sets went.
    @discardableResult
    public func collectAdapters() -> Int {
        adapters.collect()
    }

    /// Reads the adapter file at `path`, named after the file; a file that cannot be opened or
    /// read is reported with its path (`.fileError`).
    static func readAdapter(_ path: String, arena: Arena) throws(LichenError) -> LoRAAdapter {
        do throws(LichenError) {
            return try AdapterFile.read(path: path, name: adapterName(path), arena: arena)
        } catch {
            if case .systemError(let call, let errno) = error { throw .fileError(path: path, call: call, errno: errno) }
            throw error
        }
    }

    /// Refuses an adapter made for another base model while its file is still the one being
    /// read (the same error `AdapterSet.init` gives, early enough to name the file).
    func checkBase(_ adapter: LoRAAdapter) throws(LichenError) {
        if let base = adapterBase, adapter.base != base {
            throw .invalidModel(key: "lichen.adapter.base", value: adapter.base.name, reason: "the adapter belongs to another base model")
        }
    }

    /// The adapter name for a file: its base name without `.gguf`.
    static func adapterName(_ path: String) -> String {
        var name = Substring(path)
        if let slash = name.lastIndex(of: "/") { name = name[name.index(after: slash)...] }
        if name.hasSuffix(".gguf") { name = name.dropLast(5) }
        return name.isEmpty ? path : String(name)
    }

    // MARK: - Internals

    /// Runs `change` on a copy of the newest set's members and files, builds the new set and
    /// publishes it; nothing changes when `change` or the build throws.
    func adapterOperation(
        _ change: (inout [AdapterSet.Member], inout [String: String]) throws(LichenError) -> Void
    ) throws(LichenError) -> UInt64 {
        lcr_os_mutex_lock(controlMutex)
        defer { lcr_os_mutex_unlock(controlMutex) }
        do throws(LichenError) {
            guard let frames, let base = adapterBase else {
                throw .invalidArgument(name: "model", value: 0, reason: "load a model before its adapters")
            }
            var members = adapters.latest().value?.members ?? []
            var files = adapterFiles
            try change(&members, &files)
            let set = members.isEmpty
                ? nil : try AdapterSet(members: members, graph: frames.session.graph, base: base, arena: arena,
                                       companionGraph: frames.session.policy.teacherGraph)
            return publishLocked(set, files: files)
        } catch {
            throw failed(error)
        }
    }

    /// Publishes `set` (under `controlMutex`) and the figures status reads without a lock.
    func publishLocked(_ set: AdapterSet?, files: [String: String]) -> UInt64 {
        adapterFiles = files
        let generation = adapters.publish(set)
        lcr_atomic_u64_store(cell(Runtime.activeAdaptersCell), UInt64(set?.members.count ?? 0))
        lcr_atomic_u64_store(cell(Runtime.adapterGenerationCell), generation)
        return generation
    }

    /// After `setMethod` replaced the graph (loop thread, under `controlMutex`): rebuilds the
    /// newest set for the new graph, publishes it and takes it at once, so the next step runs
    /// the same adapters on the new graph.
    func graphChangedLocked() throws(LichenError) {
        guard let frames, let base = adapterBase else { return }
        let members = adapters.latest().value?.members ?? []
        if !members.isEmpty {
            let set = try AdapterSet(members: members, graph: frames.session.graph, base: base, arena: arena,
                                     companionGraph: frames.session.policy.teacherGraph)
            _ = publishLocked(set, files: adapterFiles)
        }
        let current = adapters.acquire()
        try frames.session.policy.setSkillAdapters(current)
        if adapters.confirm() { _ = lcr_atomic_u64_fetch_add(cell(Runtime.swapsCell), 1) }
    }

    /// Runs an adapter request of the control protocol; returns the answer's message. A file
    /// that fails to read is left in `failedPath` (nil otherwise), for the error's answer.
    func performAdapterOperation(_ request: ControlRequest, failedPath: inout String?) throws(LichenError) -> String {
        switch request {
        case .load(let path, let scale):
            failedPath = path
            try loadAdapter(path: path, scale: scale)
            failedPath = nil
            return "loaded \(Runtime.adapterName(path)) from \(path)"
        case .unload(let name):
            try unloadAdapter(name: name)
            return "unloaded \(name)"
        case .swap(let list):
            try swapAdapters(list, failedPath: &failedPath)
            return "swapped in \(list.count) adapter\(list.count == 1 ? "" : "s")"
        case .scale(let name, let scale):
            try scaleAdapter(name: name, scale: scale)
            return "\(name) scaled to \(floatText(scale))"
        case .list, .status:
            return ""
        }
    }
}
