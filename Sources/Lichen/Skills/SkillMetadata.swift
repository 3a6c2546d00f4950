/// What a skill library records about one skill besides its LoRA adapter: why it exists, what
/// it was trained on, its rank and alpha, the base it belongs to, its adapter file's identity
/// and, once measured, an evaluation score.
///
/// Stored as `<name>.skill.gguf` next to the adapter `<name>.lora.gguf` (Skills/README.md): a
/// GGUF v3 file with metadata only, so the adapter file is written once and never again, while
/// a new evaluation replaces only this file.
public struct SkillMetadata: Equatable, Sendable {
    /// The skill's name: 1...40 bytes of `a-z`, `0-9`, `_`, `-`, starting with a letter or digit
    /// (it is part of file names).
    public let name: String
    /// What the skill does, for people ("reach the goal").
    public let purpose: String
    /// The data it was trained on ("point-sim reach, seed 3, 4000 transitions").
    public let trainingData: String
    /// Largest rank over its targets.
    public let rank: Int
    /// `adapter.lora.alpha` of its adapter file.
    public let alpha: Float
    /// The base model the skill belongs to.
    public let base: AdapterBase
    /// Bytes of the adapter file.
    public let adapterByteCount: Int
    /// The adapter file's content hash (`GGUFFile.contentHash()`: byte count and CRC-32).
    public let adapterHash: UInt64
    /// The last evaluation, if any.
    public let evaluation: SkillEvaluation?

    public init(name: String, purpose: String, trainingData: String, rank: Int, alpha: Float, base: AdapterBase,
                adapterByteCount: Int, adapterHash: UInt64, evaluation: SkillEvaluation?) {
        self.name = name
        self.purpose = purpose
        self.trainingData = trainingData
        self.rank = rank
        self.alpha = alpha
        self.base = base
        self.adapterByteCount = adapterByteCount
        self.adapterHash = adapterHash
        self.evaluation = evaluation
    }

    /// The same record with another evaluation.
    public func with(evaluation: SkillEvaluation?) -> SkillMetadata {
        SkillMetadata(name: name, purpose: purpose, trainingData: trainingData, rank: rank, alpha: alpha, base: base,
                      adapterByteCount: adapterByteCount, adapterHash: adapterHash, evaluation: evaluation)
    }

    /// Longest skill name.
    public static let maximumNameBytes = 40
    /// Longest purpose or training-data text.
    public static let maximumTextBytes = 4096

    /// Checks `name` as a skill name (see `name`).
    /// - Throws: `.invalidModel(key: "lichen.skill.name", value: name, reason:)`.
    public static func validate(name: String) throws(LichenError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty && bytes.count <= maximumNameBytes else {
            throw .invalidModel(key: SkillFile.Key.name, value: name, reason: "a skill name has 1...40 bytes")
        }
        for (i, b) in bytes.enumerated() {
            let lowerOrDigit = (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
            guard lowerOrDigit || (i > 0 && (b == 0x5F || b == 0x2D)) else {
                throw .invalidModel(key: SkillFile.Key.name, value: name,
                                    reason: "a skill name is a-z, 0-9, '_' and '-', starting with a letter or digit")
            }
        }
    }
}

/// One measured score of a skill: what was measured and the value.
public struct SkillEvaluation: Equatable, Sendable {
    /// What the score is ("return", "mean denoising loss", ...).
    public let metric: String
    /// The value, finite.
    public let score: Float

    public init(metric: String, score: Float) {
        self.metric = metric
        self.score = score
    }
}
