/// A folder of named skills over one frozen base model (PSEC's skill library Π, methods.md §1.1,
/// §1.3): each skill is a LoRA adapter file `<name>.lora.gguf` (the adapter convention of
/// Format/AdapterFile.swift) and a metadata file `<name>.skill.gguf` (`SkillFile`).
///
/// Parameter isolation: a skill's adapter file is written once, by `add`, through a temporary
/// file published with link(2) (it never replaces a file), and never written again. `remove`
/// deletes both files; `setEvaluation` replaces only the metadata file. Every skill is validated
/// against the base when the library is opened and again when it is loaded: its metadata, its
/// adapter file's bytes (size and content hash recorded in the metadata), the adapter's base
/// identity and every target's layer and shape in the base's graph (as `AdapterSet` checks them).
///
/// Not for the step: every call reads or writes files and allocates (control thread).
public final class SkillLibrary {
    /// The folder.
    public let directory: String
    /// The base model every skill must belong to.
    public let base: AdapterBase
    /// A graph of the base model: targets are checked against its linear and conv layers.
    public let graph: Graph
    /// The heap adapters are read into (and freed from after validation).
    public let arena: Arena
    /// The skills, sorted by name.
    public private(set) var skills: [SkillMetadata] = []

    /// Opens (and with `create`, makes) the library in `directory` and validates every skill in it.
    ///
    /// - Throws: `.fileError(path:call: "mkdir" / "opendir", errno:)`; for a skill that does not
    ///   validate, the error of `validate(_:)` (the library refuses to open rather than skip it);
    ///   `.notFound(kind: "skill adapter file", name: path)` for metadata without its adapter;
    ///   `.notFound(kind: "skill metadata file", name: path)` for an adapter without its metadata.
    public init(directory: String, graph: Graph, base: AdapterBase, arena: Arena, create: Bool = false) throws(LichenError) {
        if create { try Directory.create(directory) }
        self.directory = directory
        self.graph = graph
        self.base = base
        self.arena = arena
        let names = try Directory.entries(directory)
        var found: [SkillMetadata] = []
        for entry in names {
            if let stem = SkillLibrary.stem(entry, SkillFile.adapterSuffix) {
                guard names.contains(stem + SkillFile.metadataSuffix) else {
                    throw .notFound(kind: "skill metadata file", name: metadataPath(stem))
                }
                continue
            }
            guard let stem = SkillLibrary.stem(entry, SkillFile.metadataSuffix) else { continue }
            guard names.contains(stem + SkillFile.adapterSuffix) else {
                throw .notFound(kind: "skill adapter file", name: adapterPath(stem))
            }
            let m = try readMetadata(stem)
            _ = try loadValidated(m, trainable: false)
            found.append(m)
        }
        skills = found
    }

    /// The path of skill `name`'s adapter file.
    public func adapterPath(_ name: String) -> String { directory + "/" + name + SkillFile.adapterSuffix }
    /// The path of skill `name`'s metadata file.
    public func metadataPath(_ name: String) -> String { directory + "/" + name + SkillFile.metadataSuffix }

    /// The skill called `name`, or nil.
    public func skill(named name: String) -> SkillMetadata? {
        for s in skills where s.name == name { return s }
        return nil
    }

    /// Adds `adapter` as skill `name`: writes its adapter file (general.name = `name`), then
    /// its metadata file, each only if no file of that name exists.
    ///
    /// - Parameters:
    ///   - adapter: a LoRA adapter over this library's base (its values as they are now are
    ///     written; later changes to it do not reach the file).
    ///   - name: the skill's name (`SkillMetadata.validate(name:)`).
    ///   - purpose, trainingData: texts of at most 4096 bytes.
    ///   - evaluation: a score measured before adding, if any.
    /// - Returns: the metadata written.
    /// - Throws: `.duplicateName(kind: "skill", name:)` when the library has the name or a file of
    ///   either name exists; `.invalidModel` for a bad name or text; the errors of
    ///   `AdapterSet.layer(of:in:)` and `.invalidModel(key: "lichen.adapter.base", ...)` for an
    ///   adapter of another base or shape; `.nonFiniteValue(operand: "LoRA tensor", ...)`;
    ///   `.fileError` / `.systemError` from writing (nothing of the skill is left behind then).
    public func add(_ adapter: LoRAAdapter, name: String, purpose: String, trainingData: String,
                    evaluation: SkillEvaluation? = nil) throws(LichenError) -> SkillMetadata {
        try SkillMetadata.validate(name: name)
        guard skill(named: name) == nil && !Directory.exists(adapterPath(name)) && !Directory.exists(metadataPath(name)) else {
            throw .duplicateName(kind: "skill", name: name)
        }
        try checkAgainstBase(adapter)
        for t in adapter.targets {
            if let i = try t.a.f32Elements("LoRA tensor").firstNonFiniteIndex() { throw .nonFiniteValue(operand: "LoRA tensor", index: i) }
            if let i = try t.b.f32Elements("LoRA tensor").firstNonFiniteIndex() { throw .nonFiniteValue(operand: "LoRA tensor", index: i) }
        }
        let adapterWriter = try AdapterFile.writer(adapter, name: name)
        let (byteCount, hash) = try adapterWriter.contentHash()
        var rank = 0
        for t in adapter.targets { rank = max(rank, t.rank) }
        let m = SkillMetadata(name: name, purpose: purpose, trainingData: trainingData, rank: rank, alpha: adapter.alpha,
                              base: base, adapterByteCount: byteCount, adapterHash: hash, evaluation: evaluation)
        let metadataWriter = try SkillFile.writer(m)
        try adapterWriter.writeNew(toPath: adapterPath(name))
        do throws(LichenError) {
            try metadataWriter.writeNew(toPath: metadataPath(name))
        } catch {
            try? Directory.removeFile(adapterPath(name))
            throw error
        }
        insert(m)
        return m
    }

    /// Removes skill `name`: its metadata file first (a crash in between leaves an adapter file
    /// without metadata, which `init` reports, never a skill without its adapter), then its adapter.
    /// - Throws: `.notFound(kind: "skill", name:)`; `.fileError(path:call: "unlink", errno:)`.
    public func remove(_ name: String) throws(LichenError) {
        guard let i = skills.firstIndex(where: { $0.name == name }) else { throw .notFound(kind: "skill", name: name) }
        try Directory.removeFile(metadataPath(name))
        skills.remove(at: i)
        try Directory.removeFile(adapterPath(name))
        try Directory.syncParent(of: adapterPath(name))
    }

    /// Records a new evaluation of skill `name`: replaces its metadata file (atomically); the
    /// adapter file is not touched.
    /// - Throws: `.notFound(kind: "skill", name:)`; `.invalidModel` for a non-finite score;
    ///   `.systemError` from writing.
    public func setEvaluation(_ evaluation: SkillEvaluation, of name: String) throws(LichenError) {
        guard let i = skills.firstIndex(where: { $0.name == name }) else { throw .notFound(kind: "skill", name: name) }
        let m = skills[i].with(evaluation: evaluation)
        try SkillFile.writer(m).write(toPath: metadataPath(name))
        skills[i] = m
    }

    /// Reads skill `name`'s adapter into the arena's heap, validated against its metadata and the base.
    /// - Parameter trainable: also allocate gradients (expansion trains a copy, never the file).
    /// - Throws: `.notFound(kind: "skill", name:)`; the errors of `validate`.
    public func load(_ name: String, trainable: Bool = false) throws(LichenError) -> LoRAAdapter {
        guard let m = skill(named: name) else { throw .notFound(kind: "skill", name: name) }
        return try loadValidated(m, trainable: trainable)
    }

    /// Every skill's adapter, in name order.
    public func loadAll() throws(LichenError) -> [LoRAAdapter] {
        var out: [LoRAAdapter] = []
        for m in skills { out.append(try loadValidated(m, trainable: false)) }
        return out
    }

    // MARK: - Validation

    func readMetadata(_ stem: String) throws(LichenError) -> SkillMetadata {
        let path = metadataPath(stem)
        let file = try SkillLibrary.open(path, mode: .read, maximumBytes: SkillFile.maximumMetadataBytes)
        let m = try SkillFile.read(file)
        guard m.name == stem else {
            throw .invalidModel(key: SkillFile.Key.name, value: m.name, reason: "differs from the file name's skill name")
        }
        return m
    }

    /// Reads `m`'s adapter file and checks it against `m` and the base.
    /// - Throws: `.corruptFile(path:offset: 0, reason:)` when the file's size or content hash
    ///   differs from the metadata's (the adapter file was changed or replaced);
    ///   `.corruptFile(path:offset:reason:)` with the GGUF reader's offset for a malformed or
    ///   truncated file; `.fileRefused` for a file larger than recorded;
    ///   `.invalidModel(key: "lichen.skill.base.hash", ...)` when the metadata names another
    ///   base; `.invalidModel(key: "lichen.adapter.base", ...)` for an adapter of another base;
    ///   `.invalidModel(key: "lichen.skill.rank" / "lichen.skill.alpha", ...)` when they differ
    ///   from the adapter's; shape errors as `AdapterSet`; `AdapterFile.read`'s errors.
    func loadValidated(_ m: SkillMetadata, trainable: Bool) throws(LichenError) -> LoRAAdapter {
        guard m.base == base else {
            throw .invalidModel(key: SkillFile.Key.baseHash, value: m.base.name, reason: "the skill belongs to another base model")
        }
        let path = adapterPath(m.name)
        let file = try SkillLibrary.open(path, mode: .map, maximumBytes: m.adapterByteCount)
        guard file.byteCount == m.adapterByteCount && file.contentHash() == m.adapterHash else {
            throw .corruptFile(path: path, offset: 0, reason: "the adapter file's bytes differ from those the skill's metadata records")
        }
        let adapter = try AdapterFile.read(file, name: m.name, trainable: trainable, arena: arena)
        try checkAgainstBase(adapter)
        var rank = 0
        for t in adapter.targets { rank = max(rank, t.rank) }
        guard rank == m.rank else {
            throw .invalidModel(key: SkillFile.Key.rank, value: String(m.rank), reason: "differs from the adapter's rank")
        }
        guard adapter.alpha == m.alpha else {
            throw .invalidModel(key: SkillFile.Key.alpha, value: floatText(m.alpha), reason: "differs from the adapter's alpha")
        }
        return adapter
    }

    /// `path` opened as a GGUF file without following a final link; a malformed file's error
    /// names the path (`.corruptFile(path:offset:reason:)` with the GGUF reader's offset and reason).
    static func open(_ path: String, mode: GGUFFile.LoadMode, maximumBytes: Int) throws(LichenError) -> GGUFFile {
        do throws(LichenError) {
            return try GGUFFile(path: path, mode: mode, maximumBytes: maximumBytes, followSymbolicLinks: false)
        } catch {
            if case .malformedFile(let offset, let reason) = error { throw .corruptFile(path: path, offset: offset, reason: reason) }
            throw error
        }
    }

    func checkAgainstBase(_ adapter: LoRAAdapter) throws(LichenError) {
        guard adapter.base == base else {
            throw .invalidModel(key: "lichen.adapter.base", value: adapter.base.name, reason: "the adapter belongs to another base model")
        }
        for t in adapter.targets { _ = try AdapterSet.layer(of: t.shape, in: graph) }
    }

    private func insert(_ m: SkillMetadata) {
        var i = 0
        while i < skills.count && Array(skills[i].name.utf8).lexicographicallyPrecedes(Array(m.name.utf8)) { i += 1 }
        skills.insert(m, at: i)
    }

    /// `entry` without `suffix` when it ends with it and the rest is a valid skill name, else nil.
    static func stem(_ entry: String, _ suffix: String) -> String? {
        let e = Array(entry.utf8), s = Array(suffix.utf8)
        guard e.count > s.count && Array(e[(e.count - s.count)...]) == s else { return nil }
        let stem = String(decoding: e[..<(e.count - s.count)], as: UTF8.self)
        do throws(LichenError) { try SkillMetadata.validate(name: stem) } catch { return nil }
        return stem
    }
}
