/// The skill metadata file, `<name>.skill.gguf`: GGUF v3, metadata only (no tensors).
///
/// | key | type | meaning |
/// | --- | --- | --- |
/// | `general.architecture` | string | `"lichen"` |
/// | `general.type` | string | `"skill"` |
/// | `general.name` | string | the skill's name (also the file names' stem) |
/// | `lichen.skill.purpose` | string | what it does |
/// | `lichen.skill.training_data` | string | what it was trained on |
/// | `lichen.skill.rank` | uint32 | largest rank over its targets |
/// | `lichen.skill.alpha` | float32 | its adapter's `adapter.lora.alpha` |
/// | `lichen.skill.base.name` / `.parameter_count` / `.hash` | string / uint64 / uint64 | `AdapterBase` |
/// | `lichen.skill.adapter.byte_count` | uint64 | bytes of `<name>.lora.gguf` |
/// | `lichen.skill.adapter.hash` | uint64 | `GGUFFile.contentHash()` of those bytes (byte count << 32, CRC-32) |
/// | `lichen.skill.evaluation.metric` / `.score` | string / float32 | both or neither |
public enum SkillFile {
    public static let generalType = "skill"
    /// File name suffix of the metadata file.
    public static let metadataSuffix = ".skill.gguf"
    /// File name suffix of the adapter file.
    public static let adapterSuffix = ".lora.gguf"
    /// Largest metadata file read.
    public static let maximumMetadataBytes = 64 << 10

    /// The metadata keys.
    public enum Key {
        public static let name = "general.name"
        public static let purpose = "lichen.skill.purpose"
        public static let trainingData = "lichen.skill.training_data"
        public static let rank = "lichen.skill.rank"
        public static let alpha = "lichen.skill.alpha"
        public static let baseName = "lichen.skill.base.name"
        public static let baseParameterCount = "lichen.skill.base.parameter_count"
        public static let baseHash = "lichen.skill.base.hash"
        public static let adapterByteCount = "lichen.skill.adapter.byte_count"
        public static let adapterHash = "lichen.skill.adapter.hash"
        public static let metric = "lichen.skill.evaluation.metric"
        public static let score = "lichen.skill.evaluation.score"
    }

    /// A writer holding `metadata`.
    /// - Throws: `.invalidModel` for a bad name, a text over 4096 bytes, a non-finite score;
    ///   `.invalidArgument` from `GGUFWriter`.
    public static func writer(_ m: SkillMetadata) throws(LichenError) -> GGUFWriter {
        try check(m)
        var w = try GGUFWriter()
        try w.add("general.architecture", .string(ModelFile.architecture))
        try w.add("general.type", .string(generalType))
        try w.add(Key.name, .string(m.name))
        try w.add(Key.purpose, .string(m.purpose))
        try w.add(Key.trainingData, .string(m.trainingData))
        try w.add(Key.rank, .uint32(UInt32(m.rank)))
        try w.add(Key.alpha, .float32(m.alpha))
        try w.add(Key.baseName, .string(m.base.name))
        try w.add(Key.baseParameterCount, .uint64(UInt64(m.base.parameterCount)))
        try w.add(Key.baseHash, .uint64(m.base.hash))
        try w.add(Key.adapterByteCount, .uint64(UInt64(m.adapterByteCount)))
        try w.add(Key.adapterHash, .uint64(m.adapterHash))
        if let e = m.evaluation {
            try w.add(Key.metric, .string(e.metric))
            try w.add(Key.score, .float32(e.score))
        }
        return w
    }

    /// Reads and validates a metadata file.
    /// - Throws: `.invalidModel(key:value:reason:)` naming the key for a file that is not a
    ///   Lichen skill file, a bad name, a rank outside 1...4096, an alpha outside 0...65536, a
    ///   text over 4096 bytes, a metric without a score (or the reverse), a non-finite score;
    ///   `.notFound(kind: "metadata key", ...)` / `.valueTypeMismatch` for missing or mistyped keys.
    public static func read(_ file: GGUFFile) throws(LichenError) -> SkillMetadata {
        let arch = try file.string("general.architecture")
        guard arch == ModelFile.architecture else {
            throw .invalidModel(key: "general.architecture", value: arch, reason: "not a Lichen skill file (expected \"lichen\")")
        }
        let type = try file.string("general.type")
        guard type == generalType else {
            throw .invalidModel(key: "general.type", value: type, reason: "not a skill metadata file (expected \"skill\")")
        }
        guard file.tensorCount == 0 else {
            throw .invalidModel(key: "tensors", value: String(file.tensorCount), reason: "a skill metadata file holds no tensors")
        }
        var evaluation: SkillEvaluation? = nil
        switch (file.contains(Key.metric), file.contains(Key.score)) {
        case (true, true):
            evaluation = SkillEvaluation(metric: try file.string(Key.metric), score: try file.float(Key.score))
        case (false, false):
            break
        default:
            throw .invalidModel(key: Key.score, value: file.contains(Key.score) ? "present" : "absent",
                                reason: "an evaluation has both a metric and a score")
        }
        let m = SkillMetadata(
            name: try file.string(Key.name), purpose: try file.string(Key.purpose),
            trainingData: try file.string(Key.trainingData), rank: try file.int(Key.rank),
            alpha: try file.float(Key.alpha),
            base: AdapterBase(name: try file.string(Key.baseName), parameterCount: try file.int(Key.baseParameterCount),
                              hash: try AdapterFile.uint64(file, Key.baseHash)),
            adapterByteCount: try file.int(Key.adapterByteCount), adapterHash: try AdapterFile.uint64(file, Key.adapterHash),
            evaluation: evaluation)
        try check(m)
        return m
    }

    static func check(_ m: SkillMetadata) throws(LichenError) {
        try SkillMetadata.validate(name: m.name)
        for (key, value) in [(Key.purpose, m.purpose), (Key.trainingData, m.trainingData), (Key.metric, m.evaluation?.metric ?? "")] {
            guard value.utf8.count <= SkillMetadata.maximumTextBytes else {
                throw .invalidModel(key: key, value: String(value.utf8.count) + " bytes", reason: "texts have at most 4096 bytes")
            }
        }
        guard m.rank >= 1 && m.rank <= LoRAAdapter.maximumRank else {
            throw .invalidModel(key: Key.rank, value: String(m.rank), reason: "must be in 1...4096")
        }
        guard m.alpha.isFinite && m.alpha >= 0 && m.alpha <= LoRAAdapter.maximumAlpha else {
            throw .invalidModel(key: Key.alpha, value: floatText(m.alpha), reason: "must be finite and in 0...65536")
        }
        guard m.adapterByteCount > 0 else {
            throw .invalidModel(key: Key.adapterByteCount, value: String(m.adapterByteCount), reason: "must be positive")
        }
        if let e = m.evaluation, !e.score.isFinite {
            throw .invalidModel(key: Key.score, value: floatText(e.score), reason: "must be finite")
        }
    }
}
