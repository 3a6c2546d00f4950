import Lichen

/// Stream files: CRC-32 vectors, writer → reader round trips of every field, writer refusals,
/// and a hostile corpus built in code (every truncation, bad magic/version/kind/geometry,
/// counts near 2^64, domain ranges that overlap, leave gaps or do not cover the frames, bad
/// names and severities, labels >= the class count, checksum mismatches, trailing bytes), each
/// of which must throw the exact error and never trap.
let streamFileChecks: [Check] = streamFileRoundTripChecks + streamFileHostileChecks

// MARK: - Helpers

private let streamName = "test.stream"

private func corrupt(_ offset: Int, _ reason: StaticString) -> LichenError {
    .corruptFile(path: streamName, offset: offset, reason: reason)
}

/// The sample stream: 4×4 frames, 10 classes, two domains ("clean" at 0 with 2 frames,
/// "gaussian_noise" at 5 with 4 frames). Pixel j of frame i is (37 i + 11 j) mod 256;
/// label of frame i is (3 i + 1) mod 10.
private struct Sample {
    static let width = 4, height = 4, frames = 6, seed: UInt64 = 0xDEAD_BEEF_0123_4567
    static let names = ["clean", "gaussian_noise"]
    static let severities = [0, 5]
    static let counts = [2, 4]

    static func pixels(_ i: Int) -> [UInt8] {
        (0..<(width * height)).map { UInt8(truncatingIfNeeded: 37 * i + 11 * $0) }
    }

    static func label(_ i: Int) -> Int { (3 * i + 1) % 10 }

    static func writer(kind: StreamFile.Kind = .custom) throws(LichenError) -> StreamFileWriter {
        var w = try StreamFileWriter(kind: kind, width: width, height: height, classCount: 10, seed: seed)
        var frame = 0
        for d in 0..<names.count {
            try w.beginDomain(name: names[d], severity: severities[d])
            for _ in 0..<counts[d] {
                try w.append(frame: pixels(frame), label: label(frame))
                frame += 1
            }
        }
        return w
    }

    static func bytes() -> [UInt8] {
        do { return try writer().serialized() } catch { fatalError("sample stream: " + error.description) }
    }

    // Offsets in the sample file.
    static let record0 = 48
    static let record1 = 48 + 18 + 5  // "clean"
    static let labels = record1 + 18 + 14  // "gaussian_noise"
    static let framesStart = labels + frames
    static let trailer = framesStart + frames * width * height
    static let total = trailer + 4
}

/// Opens `bytes` under the name `test.stream`.
private func open(_ bytes: [UInt8]) throws(LichenError) -> StreamFile {
    try StreamFile(bytes: bytes, name: streamName)
}

private func set32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
    for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
}

private func set64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
    for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
}

/// Rewrites the trailer as the CRC-32 of every byte before it (so that a mutation is caught
/// by the rule it breaks, not by the checksum).
private func fixCRC(_ b: inout [UInt8]) {
    guard b.count >= 4 else { return }
    set32(&b, b.count - 4, CRC32.checksum(Array(b[0..<(b.count - 4)])))
}

/// The sample with `edit` applied and the checksum fixed.
private func mutated(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
    var b = Sample.bytes()
    edit(&b)
    fixCRC(&b)
    return b
}

private func expectRefused(_ c: inout CheckContext, _ bytes: [UInt8], _ expected: LichenError, _ what: String) {
    c.expectThrows(expected, what) { () throws(LichenError) in try open(bytes) }
}

/// The error the format rules give for the sample cut to its first `length` bytes: the first
/// header field that does not fit, then the count bounds (checked against the bytes after the
/// header), then the first domain field, section or trailer that does not fit.
private func truncationError(_ length: Int) -> LichenError {
    let headerFields = [(0, 4), (4, 4), (8, 4), (12, 4), (16, 4), (20, 4), (24, 4), (28, 4), (32, 8), (40, 8)]
    for (offset, size) in headerFields where length < offset + size { return corrupt(offset, StreamFileReason.truncated) }
    let after = length - 48
    if 2 > after / 19 { return corrupt(28, StreamFileReason.domainCountTooLarge) }
    if Sample.frames > after / (Sample.width * Sample.height + 1) { return corrupt(32, StreamFileReason.frameCountTooLarge) }
    for (record, nameLength) in [(Sample.record0, 5), (Sample.record1, 14)] {
        for (offset, size) in [(0, 8), (8, 8), (16, 1), (17, 1), (18, nameLength)] where length < record + offset + size {
            return corrupt(record + offset, StreamFileReason.truncated)
        }
    }
    if length < Sample.framesStart { return corrupt(Sample.labels, StreamFileReason.truncated) }
    if length < Sample.trailer { return corrupt(Sample.framesStart, StreamFileReason.truncated) }
    return corrupt(Sample.trailer, StreamFileReason.truncated)
}

// MARK: - Round trips

private let streamFileRoundTripChecks: [Check] = [
    Check("Format/StreamFile", "CRC-32 matches the standard check values") { c in
        c.expect(CRC32.checksum([]) == 0, "crc32 of nothing")
        c.expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926, "crc32('123456789')")
        c.expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339, "crc32(fox)")
        // Split updates give the same value as one update, for every split point.
        let bytes = (0..<37).map { UInt8(truncatingIfNeeded: $0 &* 91 &+ 7) }
        let whole = CRC32.checksum(bytes)
        var same = true
        for split in 0...bytes.count {
            var crc = CRC32()
            crc.update(Array(bytes[0..<split]))
            crc.update(Array(bytes[split...]))
            same = same && crc.value == whole
        }
        c.expect(same, "crc32 in two parts equals crc32 in one")
    },
    Check("Format/StreamFile", "writer then reader: every header field, domain, label and pixel") { c in
        for kind in [StreamFile.Kind.continual, .gradual, .custom] {
            guard let w = c.expectNoThrow("writer", { () throws(LichenError) in try Sample.writer(kind: kind) }),
                  let bytes = c.expectNoThrow("serialized", { () throws(LichenError) in try w.serialized() }),
                  let s = c.expectNoThrow("open", { () throws(LichenError) in try open(bytes) })
            else { return }
            c.expect(bytes.count == Sample.total, "file size " + String(bytes.count) + ", expected " + String(Sample.total))
            c.expect(s.kind == kind, "kind")
            c.expect(s.width == 4 && s.height == 4 && s.channels == 1 && s.pixelsPerFrame == 16, "geometry")
            c.expect(s.classCount == 10 && s.frameCount == 6 && s.seed == Sample.seed, "class count, frame count, seed")
            c.expect(s.byteCount == bytes.count && s.path == streamName && !s.isMapped, "byte count, name, not mapped")
            let expected = [
                StreamFile.Domain(name: "clean", severity: 0, firstFrame: 0, frameCount: 2),
                StreamFile.Domain(name: "gaussian_noise", severity: 5, firstFrame: 2, frameCount: 4),
            ]
            c.expect(s.domains == expected, "domains")
            c.expect(s.domains[1].frames == 2..<6, "frame range")
            c.expect(w.domains == expected, "writer's domains")
            var labelsOK = true, pixelsOK = true, domainOK = true
            for i in 0..<6 {
                let label = (try? s.label(i)) ?? -1
                labelsOK = labelsOK && label == Sample.label(i)
                pixelsOK = pixelsOK && ((try? s.framePixels(i)) ?? []) == Sample.pixels(i)
                domainOK = domainOK && ((try? s.domainIndex(ofFrame: i)) ?? -1) == (i < 2 ? 0 : 1)
            }
            c.expect(labelsOK, "labels")
            c.expect(pixelsOK, "pixels")
            c.expect(domainOK, "domain of each frame")
            var histogram = [Int](repeating: 0, count: 10)
            for i in 0..<6 { histogram[Sample.label(i)] += 1 }
            c.expect(s.labelHistogram() == histogram, "label histogram")
            c.expect(s.checksum == CRC32.checksum(Array(bytes[0..<(bytes.count - 4)])), "stored checksum")
        }
    },
    Check("Format/StreamFile", "writeFrames gives pixel / 255 in [n, 1, h, w]; writeLabels the labels") { c in
        guard let s = c.expectNoThrow("open", { () throws(LichenError) in try open(Sample.bytes()) }),
              let arena = c.expectNoThrow("arena", { () throws(LichenError) in try Arena(byteCount: 4 << 20) }),
              let x = c.expectNoThrow("frames", { () throws(LichenError) in try arena.persistentTensor(.f32, try Shape(3, 1, 4, 4)) }),
              let y = c.expectNoThrow("labels", { () throws(LichenError) in try arena.persistentTensor(.f32, try Shape(3)) })
        else { return }
        _ = c.expectNoThrow("writeFrames", { () throws(LichenError) in try s.writeFrames(start: 2, count: 3, into: x) })
        _ = c.expectNoThrow("writeLabels", { () throws(LichenError) in try s.writeLabels(start: 2, count: 3, into: y) })
        let xs = (try? x.toArray()) ?? [], ys = (try? y.toArray()) ?? []
        var ok = xs.count == 48 && ys.count == 3
        if ok {
            for i in 0..<3 {
                let p = Sample.pixels(2 + i)
                for j in 0..<16 { ok = ok && xs[16 * i + j] == Float(p[j]) / 255 }
                ok = ok && ys[i] == Float(Sample.label(2 + i))
            }
        }
        c.expect(ok, "frames 2..<5 and their labels")
        // Flat [n, 16] is accepted too; wrong sizes and ranges are refused.
        if let flat = try? arena.persistentTensor(.f32, try Shape(3, 16)) {
            _ = c.expectNoThrow("flat frames", { () throws(LichenError) in try s.writeFrames(start: 3, count: 3, into: flat) })
            let expected = (3..<6).flatMap { Sample.pixels($0).map { Float($0) / 255 } }
            c.expect(((try? flat.toArray()) ?? []) == expected, "frames 3..<6 into [3, 16]")
        }
        c.expectThrows(.invalidArgument(name: "start", value: 4, reason: "frames run past the end of the stream"), "past the end") {
            () throws(LichenError) in try s.writeFrames(start: 4, count: 3, into: x)
        }
        c.expectThrows(.invalidArgument(name: "start", value: -1, reason: "frames run past the end of the stream"), "negative") {
            () throws(LichenError) in try s.writeFrames(start: -1, count: 3, into: x)
        }
        c.expectThrows(.shapeMismatch(operand: "frames", dimension: 0, expected: 2, got: 3), "wrong batch") {
            () throws(LichenError) in try s.writeFrames(start: 0, count: 2, into: x)
        }
        if let wrong = try? arena.persistentTensor(.f32, try Shape(3, 15)) {
            c.expectThrows(.shapeMismatch(operand: "frames", dimension: 1, expected: 16, got: 15), "wrong frame size") {
                () throws(LichenError) in try s.writeFrames(start: 0, count: 3, into: wrong)
            }
        }
        c.expectThrows(.invalidArgument(name: "frame", value: 6, reason: "no frame with this index"), "label past the end") {
            () throws(LichenError) in try s.label(6)
        }
    },
    Check("Format/StreamFile", "the writer refuses what the format cannot hold") { c in
        c.expectThrows(.invalidArgument(name: "width", value: 0, reason: "must be in 1...4096"), "width 0") { () throws(LichenError) in
            try StreamFileWriter(kind: .custom, width: 0, height: 4, classCount: 10, seed: 0)
        }
        c.expectThrows(.invalidArgument(name: "classCount", value: 257, reason: "must be in 1...256"), "257 classes") {
            () throws(LichenError) in try StreamFileWriter(kind: .custom, width: 4, height: 4, classCount: 257, seed: 0)
        }
        guard var w = c.expectNoThrow("writer", { () throws(LichenError) in
            try StreamFileWriter(kind: .custom, width: 2, height: 2, classCount: 10, seed: 1)
        }) else { return }
        c.expectThrows(.invalidArgument(name: "domains", value: 0, reason: "a stream needs at least one domain"), "no domain") {
            () throws(LichenError) in try w.serialized()
        }
        c.expectThrows(.invalidArgument(name: "domain", value: 0, reason: "begin a domain before appending frames"), "no domain yet") {
            () throws(LichenError) in try w.append(frame: [0, 0, 0, 0], label: 0)
        }
        c.expectThrows(.invalidArgument(name: "severity", value: 6, reason: "must be in 0...5"), "severity 6") {
            () throws(LichenError) in try w.beginDomain(name: "fog", severity: 6)
        }
        c.expectThrows(.invalidArgument(name: "name", value: 65, reason: "domain name must be 1 to 64 UTF-8 bytes"), "long name") {
            () throws(LichenError) in try w.beginDomain(name: String(repeating: "x", count: 65), severity: 1)
        }
        _ = c.expectNoThrow("begin", { () throws(LichenError) in try w.beginDomain(name: "fog", severity: 2) })
        c.expectThrows(.invalidArgument(name: "domain", value: 0, reason: "the last domain has no frames"), "empty last domain") {
            () throws(LichenError) in try w.serialized()
        }
        c.expectThrows(.invalidArgument(name: "domain", value: 0, reason: "the previous domain has no frames"), "empty domain") {
            () throws(LichenError) in try w.beginDomain(name: "snow", severity: 2)
        }
        c.expectThrows(.invalidArgument(name: "label", value: 10, reason: "must be below the class count"), "label 10") {
            () throws(LichenError) in try w.append(frame: [0, 0, 0, 0], label: 10)
        }
        c.expectThrows(.shapeMismatch(operand: "frame", dimension: 0, expected: 4, got: 3), "short frame") {
            () throws(LichenError) in try w.append(frame: [0, 0, 0], label: 1)
        }
        _ = c.expectNoThrow("append", { () throws(LichenError) in try w.append(frame: [1, 2, 3, 4], label: 9) })
        let s = c.expectNoThrow("open", { () throws(LichenError) in try open(try w.serialized()) })
        c.expect(s?.frameCount == 1 && s?.domains.first?.name == "fog", "one-frame stream")
    },
]

// MARK: - Hostile input

private let streamFileHostileChecks: [Check] = [
    Check("Format/StreamFile", "every truncation throws the exact error") { c in
        let full = Sample.bytes()
        for length in 0..<full.count {
            let cut = Array(full[0..<length])
            expectRefused(&c, cut, truncationError(length), "cut to " + String(length) + " bytes")
        }
        // The section boundaries by name.
        expectRefused(&c, Array(full[0..<Sample.trailer]), corrupt(Sample.trailer, StreamFileReason.truncated), "no trailer")
        expectRefused(&c, Array(full[0..<(Sample.trailer - 1)]), corrupt(Sample.framesStart, StreamFileReason.truncated), "frames cut")
        expectRefused(&c, Array(full[0..<0]), corrupt(0, StreamFileReason.truncated), "empty")
        expectRefused(&c, Array(full[0..<48]), corrupt(28, StreamFileReason.domainCountTooLarge), "header only")
    },
    Check("Format/StreamFile", "bad magic, version, kind, geometry and class count") { c in
        expectRefused(&c, mutated { $0[3] = 0x54 }, corrupt(0, StreamFileReason.badMagic), "LCHT")
        expectRefused(&c, mutated { $0[0] = 0x47; $0[1] = 0x47; $0[2] = 0x55; $0[3] = 0x46 }, corrupt(0, StreamFileReason.badMagic), "GGUF")
        expectRefused(&c, mutated { set32(&$0, 4, 2) }, .unsupportedVersion(format: "stream file", version: 2), "version 2")
        expectRefused(&c, mutated { set32(&$0, 4, 0) }, .unsupportedVersion(format: "stream file", version: 0), "version 0")
        expectRefused(&c, mutated { set32(&$0, 8, 3) }, corrupt(8, StreamFileReason.unknownKind), "kind 3")
        expectRefused(&c, mutated { set32(&$0, 8, .max) }, corrupt(8, StreamFileReason.unknownKind), "kind 2^32-1")
        expectRefused(&c, mutated { set32(&$0, 12, 0) }, corrupt(12, StreamFileReason.badWidth), "width 0")
        expectRefused(&c, mutated { set32(&$0, 12, 4097) }, corrupt(12, StreamFileReason.badWidth), "width 4097")
        expectRefused(&c, mutated { set32(&$0, 16, 0) }, corrupt(16, StreamFileReason.badHeight), "height 0")
        expectRefused(&c, mutated { set32(&$0, 16, .max) }, corrupt(16, StreamFileReason.badHeight), "height 2^32-1")
        expectRefused(&c, mutated { set32(&$0, 20, 3) }, corrupt(20, StreamFileReason.badChannels), "3 channels")
        expectRefused(&c, mutated { set32(&$0, 24, 0) }, corrupt(24, StreamFileReason.badClassCount), "0 classes")
        expectRefused(&c, mutated { set32(&$0, 24, 257) }, corrupt(24, StreamFileReason.badClassCount), "257 classes")
        // A wider frame with the same frame count no longer fits in the file.
        expectRefused(&c, mutated { set32(&$0, 12, 4096) }, corrupt(32, StreamFileReason.frameCountTooLarge), "width 4096")
    },
    Check("Format/StreamFile", "counts of zero and near 2^64 are refused before anything is reserved") { c in
        expectRefused(&c, mutated { set32(&$0, 28, 0) }, corrupt(28, StreamFileReason.noDomains), "0 domains")
        expectRefused(&c, mutated { set32(&$0, 28, .max) }, corrupt(28, StreamFileReason.domainCountTooLarge), "2^32-1 domains")
        expectRefused(&c, mutated { set32(&$0, 28, 9) }, corrupt(28, StreamFileReason.domainCountTooLarge), "9 domains")
        expectRefused(&c, mutated { set64(&$0, 32, 0) }, corrupt(32, StreamFileReason.noFrames), "0 frames")
        for n: UInt64 in [.max, .max - 1, 1 << 63, 1 << 62, 1 << 32, 10] {
            expectRefused(&c, mutated { set64(&$0, 32, n) }, corrupt(32, StreamFileReason.frameCountTooLarge), "frame count " + String(n))
        }
        // 7 frames fit the file but the domains hold 6; 5 frames are fewer than the domains hold.
        expectRefused(&c, mutated { set64(&$0, 32, 7) }, corrupt(32, StreamFileReason.framesNotCovered), "7 frames")
        expectRefused(&c, mutated { set64(&$0, 32, 5) }, corrupt(Sample.record1 + 8, StreamFileReason.domainPastEnd), "5 frames")
        let r0 = Sample.record0, r1 = Sample.record1
        for n: UInt64 in [.max, .max - 1, 1 << 63, 7] {
            expectRefused(&c, mutated { set64(&$0, r0 + 8, n) }, corrupt(r0 + 8, StreamFileReason.domainPastEnd), "domain count " + String(n))
            expectRefused(&c, mutated { set64(&$0, r1, n) }, corrupt(r1, StreamFileReason.domainGap), "first frame " + String(n))
        }
    },
    Check("Format/StreamFile", "domain ranges must cover the frames exactly, in order") { c in
        let r0 = Sample.record0, r1 = Sample.record1
        expectRefused(&c, mutated { set64(&$0, r0, 1) }, corrupt(r0, StreamFileReason.domainGap), "first domain starts at 1")
        expectRefused(&c, mutated { set64(&$0, r1, 1) }, corrupt(r1, StreamFileReason.domainOverlaps), "overlap")
        expectRefused(&c, mutated { set64(&$0, r1, 0) }, corrupt(r1, StreamFileReason.domainOverlaps), "same start")
        expectRefused(&c, mutated { set64(&$0, r1, 3) }, corrupt(r1, StreamFileReason.domainGap), "gap")
        expectRefused(&c, mutated { set64(&$0, r0 + 8, 1) }, corrupt(r1, StreamFileReason.domainGap), "first domain shorter")
        expectRefused(&c, mutated { set64(&$0, r0 + 8, 3) }, corrupt(r1, StreamFileReason.domainOverlaps), "first domain longer")
        expectRefused(&c, mutated { set64(&$0, r1 + 8, 3) }, corrupt(32, StreamFileReason.framesNotCovered), "last frame left out")
        expectRefused(&c, mutated { set64(&$0, r1 + 8, 5) }, corrupt(r1 + 8, StreamFileReason.domainPastEnd), "past the last frame")
        expectRefused(&c, mutated { set64(&$0, r1 + 8, 0) }, corrupt(r1 + 8, StreamFileReason.emptyDomain), "empty domain")
        expectRefused(&c, mutated { set64(&$0, r0 + 8, 0) }, corrupt(r0 + 8, StreamFileReason.emptyDomain), "empty first domain")
    },
    Check("Format/StreamFile", "bad severities and names") { c in
        let r0 = Sample.record0, r1 = Sample.record1
        expectRefused(&c, mutated { $0[r0 + 16] = 6 }, corrupt(r0 + 16, StreamFileReason.badSeverity), "severity 6")
        expectRefused(&c, mutated { $0[r1 + 16] = 255 }, corrupt(r1 + 16, StreamFileReason.badSeverity), "severity 255")
        expectRefused(&c, mutated { $0[r0 + 17] = 0 }, corrupt(r0 + 17, StreamFileReason.badNameLength), "empty name")
        expectRefused(&c, mutated { $0[r1 + 17] = 65 }, corrupt(r1 + 17, StreamFileReason.badNameLength), "name of 65 bytes")
        expectRefused(&c, mutated { $0[r0 + 18] = 0xFF }, corrupt(r0 + 18, StreamFileReason.nameNotUTF8), "0xFF in a name")
        expectRefused(&c, mutated { $0[r1 + 20] = 0xC0 }, corrupt(r1 + 18, StreamFileReason.nameNotUTF8), "overlong form")
        // A longer name length reads into the next record: its fields are then wrong.
        expectRefused(&c, mutated { $0[r0 + 17] = 6 }, corrupt(r1 + 1, StreamFileReason.domainGap), "name length 6")
        // UTF-8 names of more than one byte per character are fine.
        var w = try? StreamFileWriter(kind: .custom, width: 1, height: 1, classCount: 2, seed: 0)
        try? w?.beginDomain(name: "brouillard-é", severity: 3)
        try? w?.append(frame: [7], label: 1)
        let s = try? open((try? w?.serialized()) ?? [])
        c.expect(s?.domains.first?.name == "brouillard-é", "UTF-8 name round trip")
    },
    Check("Format/StreamFile", "labels at or above the class count, checksum mismatches, trailing bytes") { c in
        let labels = Sample.labels, trailer = Sample.trailer
        expectRefused(&c, mutated { $0[labels + 3] = 10 }, corrupt(labels + 3, StreamFileReason.labelOutOfRange), "label 10")
        expectRefused(&c, mutated { $0[labels + 5] = 255 }, corrupt(labels + 5, StreamFileReason.labelOutOfRange), "label 255")
        expectRefused(&c, mutated { set32(&$0, 24, 2) }, corrupt(labels + 1, StreamFileReason.labelOutOfRange), "2 classes")
        // Any byte changed without fixing the checksum: the checksum catches it.
        let full = Sample.bytes()
        for at in [Sample.labels + 1, Sample.framesStart, Sample.framesStart + 50, trailer - 1, trailer, trailer + 3] {
            var b = full
            b[at] ^= 0x01
            expectRefused(&c, b, corrupt(trailer, StreamFileReason.checksumMismatch), "bit flip at " + String(at))
        }
        var seed = full
        seed[40] ^= 0x80
        expectRefused(&c, seed, corrupt(trailer, StreamFileReason.checksumMismatch), "seed changed")
        expectRefused(&c, full + [0], corrupt(trailer + 4, StreamFileReason.trailingBytes), "one byte after the trailer")
        expectRefused(&c, full + full, corrupt(trailer + 4, StreamFileReason.trailingBytes), "two files")
    },
    Check("Format/StreamFile", "every single-byte change is refused or leaves a valid file; none traps") { c in
        // Byte by byte, three values each: the reader either refuses the file with a
        // corruptFile or unsupportedVersion error or (never, here, thanks to the checksum)
        // accepts it.
        let full = Sample.bytes()
        var refused = 0, unexpected = 0
        for at in 0..<full.count {
            for value: UInt8 in [0x00, 0x80, 0xFF] where full[at] != value {
                var b = full
                b[at] = value
                do throws(LichenError) {
                    _ = try open(b)
                } catch {
                    switch error {
                    case .corruptFile, .unsupportedVersion: refused += 1
                    default: unexpected += 1
                    }
                    continue
                }
                unexpected += 1  // accepted: a change the checksum missed
            }
        }
        c.expect(unexpected == 0, String(unexpected) + " changes were accepted or gave another error")
        c.expect(refused > 3 * full.count / 2, "refused " + String(refused))
    },
]
