import Lichen

/// A refused stream request (unknown domain name, count or severity out of range) or a
/// failure while corrupting a frame; the message says which.
public struct StreamBuildError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}

/// What a stream holds: its kind and its domains in order, each a corruption (or clean
/// frames) with one or more severity segments.
public struct StreamPlan: Equatable, Sendable {
    /// A run of `count` frames of one domain at `severity` (0 for clean).
    public struct Segment: Equatable, Sendable {
        public let severity: Int
        public let count: Int

        public init(severity: Int, count: Int) {
            self.severity = severity
            self.count = count
        }
    }

    /// One domain: `corruption` (nil for clean frames) over its segments, in order.
    public struct Domain: Equatable, Sendable {
        public let corruption: Corruption?
        public let segments: [Segment]

        public init(corruption: Corruption?, segments: [Segment]) {
            self.corruption = corruption
            self.segments = segments
        }

        /// The corruption's name, or "clean".
        public var name: String { corruption?.rawValue ?? StreamBuilder.cleanName }
        /// Frames of the domain (all segments).
        public var frameCount: Int { segments.reduce(0) { $0 + $1.count } }
    }

    public let kind: StreamFile.Kind
    public let domains: [Domain]

    /// Frames of the whole stream.
    public var frameCount: Int { domains.reduce(0) { $0 + $1.frameCount } }

    /// The 15 corruptions in the standard continual order, each at `severity`, `perDomain`
    /// frames each.
    /// - Throws: `StreamBuildError` for a severity outside 1...5 or a count outside 1...10000.
    public static func continual(severity: Int = 5, perDomain: Int = StreamBuilder.testImageCount) throws -> StreamPlan {
        try checkSeverity(severity)
        try checkCount(perDomain)
        let domains = Corruption.continualOrder.map { Domain(corruption: $0, segments: [Segment(severity: severity, count: perDomain)]) }
        return StreamPlan(kind: .continual, domains: domains)
    }

    /// The gradual setting of CoTTA: the first corruption at severities 5, 4, 3, 2, 1, every
    /// later one at 1, 2, 3, 4, 5, 4, 3, 2, 1; each segment `perDomain / 9` frames (rounded
    /// down), so a later domain has `9 × (perDomain / 9)` frames and the first `5 × (perDomain / 9)`.
    /// - Throws: `StreamBuildError` for a count outside 9...10000 or an empty or repeating order.
    public static func gradual(order: [Corruption] = Corruption.continualOrder,
                               perDomain: Int = StreamBuilder.testImageCount) throws -> StreamPlan {
        try checkCount(perDomain)
        guard perDomain >= 9 else {
            throw StreamBuildError("a gradual stream needs at least 9 images per domain (one per severity segment), got \(perDomain)")
        }
        try checkOrder(order.map(\.rawValue))
        let m = perDomain / 9
        var domains: [Domain] = []
        for (i, c) in order.enumerated() {
            let severities = i == 0 ? StreamBuilder.gradualFirstSeverities : StreamBuilder.gradualSeverities
            domains.append(Domain(corruption: c, segments: severities.map { Segment(severity: $0, count: m) }))
        }
        return StreamPlan(kind: .gradual, domains: domains)
    }

    /// Any list of domains, in the order given: each entry a corruption name or "clean",
    /// optionally followed by ":severity" (`fog:3`); entries without one take `severity`
    /// (clean frames are severity 0). `perDomain` frames each.
    /// A name may come back (`fog:1,fog:5`).
    /// - Throws: `StreamBuildError` for an unknown name, a bad severity or count, or an empty list.
    public static func custom(_ entries: [String], severity: Int = 5,
                              perDomain: Int = StreamBuilder.testImageCount) throws -> StreamPlan {
        try checkCount(perDomain)
        guard !entries.isEmpty else { throw StreamBuildError("a custom stream needs at least one domain") }
        var domains: [Domain] = []
        for entry in entries {
            let parts = entry.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2 else { throw StreamBuildError("domain '\(entry)' is not NAME or NAME:SEVERITY") }
            let name = parts[0]
            var s = severity
            if parts.count == 2 {
                guard let v = Int(parts[1]) else { throw StreamBuildError("domain '\(entry)': severity '\(parts[1])' is not a number") }
                s = v
            }
            if name == StreamBuilder.cleanName {
                guard parts.count == 1 || s == 0 else { throw StreamBuildError("domain '\(entry)': clean frames have severity 0") }
                domains.append(Domain(corruption: nil, segments: [Segment(severity: 0, count: perDomain)]))
                continue
            }
            guard let c = Corruption(rawValue: name) else {
                throw StreamBuildError("unknown domain '\(name)'; known: \(StreamBuilder.domainNames.joined(separator: ", "))")
            }
            try checkSeverity(s)
            domains.append(Domain(corruption: c, segments: [Segment(severity: s, count: perDomain)]))
        }
        return StreamPlan(kind: .custom, domains: domains)
    }

    static func checkSeverity(_ s: Int) throws {
        guard (1...5).contains(s) else { throw StreamBuildError("severity \(s) is outside 1...5") }
    }

    static func checkCount(_ n: Int) throws {
        guard n >= 1 && n <= StreamBuilder.testImageCount else {
            throw StreamBuildError("images per domain \(n) is outside 1...\(StreamBuilder.testImageCount) (the test set)")
        }
    }

    static func checkOrder(_ names: [String]) throws {
        guard !names.isEmpty else { throw StreamBuildError("the stream needs at least one domain") }
        var seen: Set<String> = []
        for n in names where !seen.insert(n).inserted { throw StreamBuildError("domain '\(n)' is given twice") }
    }
}

/// Makes stream files from the Fashion-MNIST test images and the corruptions, deterministically:
/// the same plan, seed and data give the same bytes.
///
/// The rule, per domain d (its 0-based position in the plan):
/// - `H(x)` is the first output of `SplitMix64Random(seed: x)`; the domain's seed is
///   `domainSeed = H(H(seed) ^ d)`.
/// - Images: with shuffling (the default), the 10,000 test images in the order of
///   `SeededPermutation` shuffled with `domainSeed` (Fisher–Yates from the top; see
///   SeededPermutation.swift); without, test-set order. The domain's frames are the first
///   `frameCount` images of that order, segment after segment (a gradual domain's segments
///   take consecutive slices, so no image repeats within a domain).
/// - Frame j of the domain (0-based, across its segments) is corrupted by
///   `Corruption.apply(severity:seed:)` with seed `H(domainSeed ^ H(j))`, on pixel / 255, and
///   stored as `round(255 × v)` (ties away from zero; v is already in [0, 1]). Clean frames are
///   the test images' bytes, unchanged. Labels are the test labels of the images used.
public enum StreamBuilder {
    public static let cleanName = "clean"
    public static let testImageCount = 10_000
    /// Severities of every gradual domain after the first.
    public static let gradualSeverities = [1, 2, 3, 4, 5, 4, 3, 2, 1]
    /// Severities of the first gradual domain (CoTTA starts at the hardest).
    public static let gradualFirstSeverities = [5, 4, 3, 2, 1]
    /// Every name a domain may have: the corruptions in the continual order, then "clean".
    public static var domainNames: [String] { Corruption.continualOrder.map(\.rawValue) + [cleanName] }

    /// `H(x)`: the first output of SplitMix64 seeded with `x`.
    public static func mix(_ x: UInt64) -> UInt64 {
        var r = SplitMix64Random(seed: x)
        return r.next()
    }

    /// The seed of domain `domain` (its position in the plan).
    public static func domainSeed(_ seed: UInt64, domain: Int) -> UInt64 {
        mix(mix(seed) ^ UInt64(domain))
    }

    /// The corruption seed of frame `frame` of domain `domain`.
    public static func frameSeed(_ seed: UInt64, domain: Int, frame: Int) -> UInt64 {
        mix(domainSeed(seed, domain: domain) ^ mix(UInt64(frame)))
    }

    /// Builds the stream `plan` from `data` (the Fashion-MNIST test split), ready to write.
    ///
    /// - Parameters:
    ///   - shuffle: shuffle each domain's images (see the type's rule); false keeps test-set order.
    ///   - progress: called with (frames done, frames in all) every 500 frames and at the end.
    /// - Throws: `StreamBuildError` when `data` has fewer images than a domain needs or a
    ///   corruption fails; `LichenError` from the writer or the arena.
    public static func build(
        _ plan: StreamPlan, seed: UInt64, data: FashionMNIST, shuffle: Bool = true,
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> StreamFileWriter {
        let width = FashionMNIST.imageColumns, height = FashionMNIST.imageRows
        let pixels = width * height
        for d in plan.domains where d.frameCount > data.count {
            throw StreamBuildError("domain '\(d.name)' needs \(d.frameCount) images, the data has \(data.count)")
        }
        var writer = try StreamFileWriter(kind: plan.kind, width: width, height: height,
                                          classCount: FashionMNIST.classCount, seed: seed)
        let total = plan.frameCount
        writer.reserveCapacity(frames: total)
        let arena = try Arena(byteCount: Arena.minimumByteCount + 4 * data.count + (1 << 20))
        let order = try SeededPermutation(count: data.count, arena: arena)
        var done = 0
        var source = [Float](repeating: 0, count: pixels)
        var frame = [UInt8](repeating: 0, count: pixels)
        for (d, domain) in plan.domains.enumerated() {
            let dSeed = domainSeed(seed, domain: d)
            if shuffle { order.shuffle(seed: dSeed) } else { order.resetToIdentity() }
            var j = 0
            for segment in domain.segments {
                try writer.beginDomain(name: domain.name, severity: segment.severity)
                for _ in 0..<segment.count {
                    let image = order[j]
                    let bytes = try data.images.pixels(ofImage: image)
                    if let corruption = domain.corruption {
                        for p in 0..<pixels { source[p] = Float(bytes[p]) / 255 }
                        let out: [Float]
                        do {
                            out = try corruption.apply(to: source, width: width, height: height,
                                                       severity: segment.severity, seed: mix(dSeed ^ mix(UInt64(j))))
                        } catch {
                            throw StreamBuildError("\(domain.name) severity \(segment.severity), image \(image): \(error)")
                        }
                        guard out.count == pixels else {
                            throw StreamBuildError("\(domain.name): \(out.count) pixels back for \(pixels)")
                        }
                        for p in 0..<pixels { frame[p] = quantize(out[p]) }
                    } else {
                        for p in 0..<pixels { frame[p] = bytes[p] }
                    }
                    try writer.append(frame: frame, label: data.label(image))
                    j += 1
                    done += 1
                    if done % 500 == 0 || done == total { progress?(done, total) }
                }
            }
        }
        return writer
    }

    /// `round(255 × v)` for v in [0, 1] (values outside, or NaN, are clipped first).
    @inline(__always)
    static func quantize(_ v: Float) -> UInt8 {
        let c = v.isNaN ? 0 : min(max(v, 0), 1)
        return UInt8((c * 255).rounded())
    }
}
