import Lichen

/// GGUF reader and writer: round trips of every value and tensor type, the exact byte
/// layout, and a hostile corpus built in code (every truncation of a valid file, counts and
/// lengths near 2^64, broken tensors) that must throw the exact error and never trap.
let formatChecks: [Check] = ggufRoundTripChecks + ggufHostileChecks

// MARK: - Helpers

/// Opens `bytes` as a GGUF file (copied into a 64-byte aligned buffer).
private func parse(_ bytes: [UInt8]) throws(LichenError) -> GGUFFile {
    var result: Result<GGUFFile, LichenError> = .failure(.malformedFile(offset: -1, reason: "not run"))
    bytes.withUnsafeBytes { raw in
        do throws(LichenError) { result = .success(try GGUFFile(copying: raw)) } catch { result = .failure(error) }
    }
    return try result.get()
}

/// Raw GGUF bytes, little-endian, for files the writer would refuse to make.
private struct RawGGUF {
    var bytes: [UInt8] = []
    var count: Int { bytes.count }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: s.utf8) }
    mutating func rawStr(_ b: [UInt8]) { u64(UInt64(b.count)); bytes.append(contentsOf: b) }
    mutating func zeros(_ n: Int) { bytes.append(contentsOf: [UInt8](repeating: 0, count: n)) }
    mutating func pad(_ alignment: Int = 32) { zeros((alignment - count % alignment) % alignment) }

    /// Magic, version, counts.
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes.append(contentsOf: [0x47, 0x47, 0x55, 0x46])
        u32(version); u64(tensors); u64(kvs)
    }

    /// One key with a uint32 value; returns the offset of the value.
    @discardableResult
    mutating func kvU32(_ key: String, _ v: UInt32) -> Int { str(key); u32(4); let at = count; u32(v); return at }

    /// Offsets of the fields of one tensor info record.
    struct Info { var record = 0, rank = 0, dims = 0, type = 0, offset = 0 }

    @discardableResult
    mutating func tensor(_ name: String, ne: [UInt64], type: UInt32 = 0, offset: UInt64, rank: UInt32? = nil) -> Info {
        var info = Info()
        info.record = count; str(name)
        info.rank = count; u32(rank ?? UInt32(ne.count))
        info.dims = count; for d in ne { u64(d) }
        info.type = count; u32(type)
        info.offset = count; u64(offset)
        return info
    }
}

/// Expects `bytes` to be refused with exactly `expected`.
private func expectRefused(_ c: inout CheckContext, _ bytes: [UInt8], _ expected: LichenError, _ what: String) {
    c.expectThrows(expected, what) { () throws(LichenError) in try parse(bytes) }
}

/// Whether `text` contains `part` (without Foundation).
private func has(_ text: String, _ part: String) -> Bool {
    let t = Array(text.utf8), p = Array(part.utf8)
    guard p.count <= t.count else { return false }
    for i in 0...(t.count - p.count) where Array(t[i..<(i + p.count)]) == p { return true }
    return false
}

private func bad(_ offset: Int, _ reason: StaticString) -> LichenError { .malformedFile(offset: offset, reason: reason) }

/// Deterministic bytes for a tensor of `count` bytes.
private func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
}

/// Every value type, with edge values, nested arrays and unicode strings.
private func sampleMetadata() -> [(String, GGUFMetadataValue)] {
    [
        ("general.architecture", .string("lichen-test")),
        ("test.u8", .uint8(255)), ("test.i8", .int8(-128)),
        ("test.u16", .uint16(65535)), ("test.i16", .int16(-32768)),
        ("test.u32", .uint32(4_000_000_000)), ("test.i32", .int32(-2_000_000_000)),
        ("test.f32", .float32(-1.5e-7)), ("test.bool.true", .bool(true)), ("test.bool.false", .bool(false)),
        ("test.string", .string("héllo, 世界 🌿")), ("test.string.empty", .string("")),
        ("test.u64", .uint64(UInt64.max)), ("test.i64", .int64(Int64.min)), ("test.f64", .float64(3.141592653589793)),
        ("test.nan", .float32(Float(bitPattern: 0x7FC0_1234))),
        ("test.array.u8", .array(elementType: .uint8, elements: [.uint8(0), .uint8(1), .uint8(255)])),
        ("test.array.i8", .array(elementType: .int8, elements: [.int8(-1), .int8(127)])),
        ("test.array.u16", .array(elementType: .uint16, elements: [.uint16(7)])),
        ("test.array.i16", .array(elementType: .int16, elements: [.int16(-7), .int16(300)])),
        ("test.array.u32", .array(elementType: .uint32, elements: [.uint32(1), .uint32(2), .uint32(3)])),
        ("test.array.i32", .array(elementType: .int32, elements: [.int32(-1), .int32(Int32.max)])),
        ("test.array.f32", .array(elementType: .float32, elements: [.float32(0.25), .float32(-2)])),
        ("test.array.bool", .array(elementType: .bool, elements: [.bool(true), .bool(false), .bool(true)])),
        ("test.array.string", .array(elementType: .string, elements: [.string("a"), .string(""), .string("ünïcødé ✓")])),
        ("test.array.u64", .array(elementType: .uint64, elements: [.uint64(1 << 40)])),
        ("test.array.i64", .array(elementType: .int64, elements: [.int64(-(1 << 40))])),
        ("test.array.f64", .array(elementType: .float64, elements: [.float64(1e300), .float64(-0.0)])),
        ("test.array.empty", .array(elementType: .float32, elements: [])),
        ("test.array.nested", .array(elementType: .array, elements: [
            .array(elementType: .int32, elements: [.int32(1), .int32(2)]),
            .array(elementType: .int32, elements: []),
            .array(elementType: .int32, elements: [.int32(3)]),
        ])),
        ("test.array.nested3", .array(elementType: .array, elements: [
            .array(elementType: .array, elements: [.array(elementType: .string, elements: [.string("deep")])]),
        ])),
        ("lichen.ключ.日本", .string("unicode key")),
    ]
}

/// One sample tensor. (A struct, not a tuple: read from an array of 4-element tuples, the
/// names arrived corrupted in the Embedded aarch64 build; the cause is not isolated yet.)
private struct SampleTensor {
    let name: String
    let type: ElementType
    let dims: [Int]
    let size: Int
    init(_ name: String, _ type: ElementType, _ dims: [Int], _ size: Int) {
        self.name = name; self.type = type; self.dims = dims; self.size = size
    }
}

/// Tensors of every type and rank.
private func sampleTensors() -> [SampleTensor] {
    [
        SampleTensor("weight.f32", .f32, [3, 4], 48),
        SampleTensor("bias.f32", .f32, [5], 20),
        SampleTensor("conv.f32", .f32, [2, 1, 3, 2], 48),
        SampleTensor("weight.f16", .f16, [2, 3], 12),
        SampleTensor("weight.q8_0", .q8_0, [3, 64], 3 * 2 * 34),
        SampleTensor("weight.q4_0", .q4_0, [2, 1, 32], 2 * 18),
    ]
}

private func buildSample(alignment: Int = 32) throws(LichenError) -> [UInt8] {
    var w = try GGUFWriter(alignment: alignment)
    for (k, v) in sampleMetadata() { try w.add(k, v) }
    for (i, t) in sampleTensors().enumerated() {
        try w.addTensor(t.name, type: t.type, shape: try Shape(dimensions: t.dims), bytes: pattern(t.size, seed: UInt64(i)))
    }
    return try w.serialized()
}

// MARK: - Round trips

private let ggufRoundTripChecks: [Check] = [
    Check("Format/GGUF", "every value and tensor type survives writer then reader") { c in
        for alignment in [32, 64] {
            guard let bytes = c.expectNoThrow("serialize", { () throws(LichenError) in try buildSample(alignment: alignment) }),
                  let file = c.expectNoThrow("parse", { () throws(LichenError) in try parse(bytes) })
            else { return }
            let metadata = sampleMetadata()
            c.expect(file.version == 3 && file.alignment == alignment, "version/alignment")
            c.expect(file.metadataCount == metadata.count + 1, "metadata count " + String(file.metadataCount))
            c.expect(file.metadataKeys == metadata.map { $0.0 } + ["general.alignment"], "keys in the order added")
            for (k, v) in metadata {
                let got = c.expectNoThrow(k, { () throws(LichenError) in try file.value(k) })
                c.expect(got == v, k + ": value differs after the round trip")
            }
            c.expect((try? file.uint32("general.alignment")) == UInt32(alignment), "general.alignment")
            c.expect(file.dataOffset % alignment == 0, "data section aligned")
            let tensors = sampleTensors()
            c.expect(file.tensorCount == tensors.count, "tensor count")
            c.expect(file.tensors.map { $0.name } == tensors.map { $0.name }, "tensor order")
            for (i, t) in tensors.enumerated() {
                let name = t.name, type = t.type, dims = t.dims, size = t.size
                guard let info = c.expectNoThrow(name, { () throws(LichenError) in try file.tensorInfo(name) }),
                      let view = c.expectNoThrow(name, { () throws(LichenError) in try file.tensor(name) }),
                      let raw = c.expectNoThrow(name, { () throws(LichenError) in try file.tensorBytes(name) })
                else { continue }
                c.expect(info.type == type && info.shape.dimensions == dims && info.byteCount == size, name + ": info")
                c.expect(info.fileOffset % alignment == 0, name + ": offset aligned")
                c.expect(view.type == type && view.shape.dimensions == dims && view.byteCount == size, name + ": view")
                c.expect(UnsafeRawPointer(view.base) == raw.baseAddress, name + ": view is over the file's bytes")
                c.expect(Array(raw) == pattern(size, seed: UInt64(i)), name + ": bytes differ")
            }
        }
    },
    Check("Format/GGUF", "typed getters convert, and refuse missing keys and wrong types") { c in
        guard let bytes = c.expectNoThrow("serialize", { () throws(LichenError) in try buildSample() }),
              let f = c.expectNoThrow("parse", { () throws(LichenError) in try parse(bytes) })
        else { return }
        c.expect((try? f.string("test.string")) == "héllo, 世界 🌿", "string")
        c.expect((try? f.string("lichen.ключ.日本")) == "unicode key", "unicode key lookup")
        c.expect((try? f.uint32("test.u32")) == 4_000_000_000, "uint32")
        c.expect((try? f.int("test.i8")) == -128 && (try? f.int("test.u16")) == 65535, "int from small types")
        c.expect((try? f.int("test.i64")) == Int(Int64.min), "int from int64")
        c.expect((try? f.float("test.f32")) == -1.5e-7 && (try? f.double("test.f64")) == 3.141592653589793, "floats")
        c.expect((try? f.bool("test.bool.true")) == true && (try? f.bool("test.bool.false")) == false, "bools")
        c.expect((try? f.ints("test.array.u32")) == [1, 2, 3] && (try? f.ints("test.array.i16")) == [-7, 300], "int arrays")
        c.expect((try? f.floats("test.array.f32")) == [0.25, -2], "float array")
        c.expect((try? f.strings("test.array.string")) == ["a", "", "ünïcødé ✓"], "string array")
        c.expect((try? f.array("test.array.bool").bools()) == [true, false, true], "bool array")
        c.expect((try? f.array("test.array.empty").count) == 0, "empty array")
        let nested = try? f.array("test.array.nested").arrays()
        c.expect(nested?.count == 3 && (try? nested?[0].ints()) == [1, 2] && nested?[1].count == 0
                 && (try? nested?[2].ints()) == [3], "nested array views")
        c.expect(f.type(of: "test.f64") == .float64 && f.type(of: "nope") == nil && f.contains("test.u8"), "type(of:)")
        c.expectThrows(.notFound(kind: "metadata key", name: "nope"), "missing key") {
            () throws(LichenError) in try f.string("nope")
        }
        c.expectThrows(.valueTypeMismatch(key: "test.u32", expected: "string", got: "uint32"), "string of a uint32") {
            () throws(LichenError) in try f.string("test.u32")
        }
        c.expectThrows(.valueTypeMismatch(key: "test.u64", expected: "integer that fits in Int", got: "uint64"), "u64 max") {
            () throws(LichenError) in try f.int("test.u64")
        }
        c.expectThrows(.valueTypeMismatch(key: "test.string", expected: "float32 or float64", got: "string"), "float") {
            () throws(LichenError) in try f.float("test.string")
        }
        c.expectThrows(.valueTypeMismatch(key: "test.array.string", expected: "array of integers", got: "string"), "ints") {
            () throws(LichenError) in try f.ints("test.array.string")
        }
        c.expectThrows(.notFound(kind: "tensor", name: "missing"), "missing tensor") {
            () throws(LichenError) in try f.tensor("missing")
        }
    },
    Check("Format/GGUF", "writer byte layout matches the GGUF spec exactly") { c in
        // One key, one f32 tensor of 3 values: every byte spelled out.
        var w: GGUFWriter
        do throws(LichenError) {
            w = try GGUFWriter()
            try w.add("a", .uint8(7))
            try w.addTensor("t", shape: try Shape(3), floats: [1, 2, 3])
        } catch { c.fail("build: " + error.description); return }
        var e = RawGGUF()
        e.header(tensors: 1, kvs: 2)
        e.str("a"); e.u32(0); e.u8(7)
        e.kvU32("general.alignment", 32)
        e.tensor("t", ne: [3], type: 0, offset: 0)
        e.pad()
        for v: Float in [1, 2, 3] { e.u32(v.bitPattern) }
        e.pad()
        let got = try? w.serialized()
        c.expect(got == e.bytes, "serialized bytes differ from the hand-built file")
    },
    Check("Format/GGUF", "writer refuses bad keys, arrays and tensors") { c in
        guard var w = c.expectNoThrow("init", { () throws(LichenError) in try GGUFWriter() }) else { return }
        c.expectThrows(.invalidArgument(name: "alignment", value: 12, reason: "must be a power of two >= 8"), "alignment 12") {
            () throws(LichenError) in try GGUFWriter(alignment: 12)
        }
        _ = c.expectNoThrow("first key", { () throws(LichenError) in try w.add("k", .bool(true)) })
        c.expectThrows(.invalidArgument(name: "key", value: 0, reason: "key already added (value is its index)"), "dup") {
            () throws(LichenError) in try w.add("k", .bool(false))
        }
        c.expectThrows(.invalidArgument(name: "array", value: 1, reason: "element type differs from the array's"), "mixed") {
            () throws(LichenError) in try w.add("m", .array(elementType: .uint8, elements: [.uint8(1), .int8(1)]))
        }
        c.expectThrows(.invalidArgument(name: "shape.rank", value: 0, reason: "rank must be 1 to 4"), "rank 0") {
            () throws(LichenError) in try w.addTensor("s", type: .f32, shape: try Shape(), bytes: [0, 0, 0, 0])
        }
        c.expectThrows(.shapeMismatch(operand: "tensor", dimension: 0, expected: 32, got: 16), "q8_0 row of 16") {
            () throws(LichenError) in try w.addTensor("q", type: .q8_0, shape: try Shape(16), bytes: [UInt8](repeating: 0, count: 17))
        }
        c.expectThrows(.bufferTooSmall(operand: "tensor", needed: 8, available: 4), "short bytes") {
            () throws(LichenError) in try w.addTensor("f", type: .f32, shape: try Shape(2), bytes: [0, 0, 0, 0])
        }
    },
]

// MARK: - Hostile input

/// A small valid file whose last tensor ends exactly at the end of the file (no trailing
/// padding), so every strict prefix of it is invalid.
private func truncationSample() throws(LichenError) -> [UInt8] {
    var w = try GGUFWriter()
    try w.add("general.architecture", .string("cnn"))
    try w.add("labels", .array(elementType: .string, elements: [.string("t-shirt"), .string("bag")]))
    try w.add("nested", .array(elementType: .array, elements: [.array(elementType: .bool, elements: [.bool(true)])]))
    try w.add("flag", .bool(false))
    try w.add("scale", .float64(0.5))
    try w.addTensor("q", type: .q8_0, shape: try Shape(32), bytes: pattern(34, seed: 9))
    try w.addTensor("b", shape: try Shape(8), floats: [1, 2, 3, 4, 5, 6, 7, 8])
    return try w.serialized()
}

private let ggufHostileChecks: [Check] = [
    Check("Format/GGUF", "truncation at every byte throws, naming an offset inside the prefix") { c in
        guard let full = c.expectNoThrow("build", { () throws(LichenError) in try truncationSample() }) else { return }
        _ = c.expectNoThrow("the whole file opens", { () throws(LichenError) in try parse(full) })
        var wrong = 0
        for cut in 0..<full.count {
            do throws(LichenError) {
                _ = try parse(Array(full[0..<cut]))
                c.fail("prefix of " + String(cut) + " bytes opened")
                wrong += 1
            } catch {
                if case .malformedFile(let offset, _) = error, offset >= 0, offset <= cut { continue }
                c.fail("prefix of " + String(cut) + " bytes: " + error.description)
                wrong += 1
            }
        }
        c.expect(wrong == 0, String(wrong) + " of " + String(full.count) + " prefixes misreported")
    },
    Check("Format/GGUF", "wrong magic, unsupported versions, and version 2") { c in
        expectRefused(&c, [], bad(0, GGUFReason.truncated), "empty file")
        var m = RawGGUF(); m.bytes = [0x47, 0x47, 0x4D, 0x4C]; m.u32(3); m.u64(0); m.u64(0)
        expectRefused(&c, m.bytes, bad(0, GGUFReason.badMagic), "GGML magic")
        for v: UInt32 in [0, 1, 4, 0x0300_0000] {
            var r = RawGGUF(); r.header(version: v, tensors: 0, kvs: 0)
            expectRefused(&c, r.bytes, .unsupportedVersion(format: "GGUF", version: Int(v)), "version " + String(v))
        }
        var v2 = RawGGUF(); v2.header(version: 2, tensors: 0, kvs: 1); v2.kvU32("x", 5)
        let f = c.expectNoThrow("version 2", { () throws(LichenError) in try parse(v2.bytes) })
        c.expect(f?.version == 2 && (try? f?.uint32("x")) == 5, "version 2 read")
        let message = LichenError.malformedFile(offset: 0, reason: GGUFReason.badMagic).description
        c.expect(has(message, "offset 0"), "message names the offset: " + message)
    },
    Check("Format/GGUF", "counts and lengths near 2^64 are refused before any allocation") { c in
        for huge: UInt64 in [UInt64.max, UInt64.max - 7, 1 << 63, 1 << 61, 1 << 32] {
            var t = RawGGUF(); t.header(tensors: huge, kvs: 0)
            expectRefused(&c, t.bytes, bad(8, GGUFReason.tensorCountTooLarge), "tensor_count")
            var k = RawGGUF(); k.header(tensors: 0, kvs: huge)
            expectRefused(&c, k.bytes, bad(16, GGUFReason.metadataCountTooLarge), "kv_count")
            var s = RawGGUF(); s.header(tensors: 0, kvs: 1); s.u64(huge); s.bytes += Array("key".utf8); s.u32(4); s.u32(0)
            expectRefused(&c, s.bytes, bad(24, GGUFReason.stringTooLong), "key length")
            var v = RawGGUF(); v.header(tensors: 0, kvs: 1); v.str("k"); v.u32(8); let vs = v.count; v.u64(huge); v.zeros(8)
            expectRefused(&c, v.bytes, bad(vs, GGUFReason.stringTooLong), "string value length")
            for element: UInt32 in [0, 6, 8, 9, 12] {
                var a = RawGGUF(); a.header(tensors: 0, kvs: 1); a.str("k"); a.u32(9); let at = a.count
                a.u32(element); a.u64(huge); a.zeros(16)
                expectRefused(&c, a.bytes, bad(at + 4, GGUFReason.arrayCountTooLarge), "array count, element type " + String(element))
            }
            var n = RawGGUF(); n.header(tensors: 1, kvs: 0); n.u64(huge); n.zeros(40)
            expectRefused(&c, n.bytes, bad(24, GGUFReason.stringTooLong), "tensor name length")
            var d = RawGGUF(); d.header(tensors: 1, kvs: 0); let info = d.tensor("w", ne: [huge], offset: 0); d.pad(); d.zeros(64)
            // A dimension that fits in Int with a byte count that fits is only too big for the file.
            let fits = huge <= UInt64(Int.max) && !Int(huge).multipliedReportingOverflow(by: 4).overflow
            expectRefused(&c, d.bytes, fits ? bad(info.offset, GGUFReason.tensorPastEnd)
                                            : bad(info.dims, GGUFReason.tensorTooLarge), "dimension")
        }
        // Element count overflow on the second dimension, and byte count overflow of a valid element count.
        var e = RawGGUF(); e.header(tensors: 1, kvs: 0); let i1 = e.tensor("w", ne: [1 << 32, 1 << 32], offset: 0); e.pad(); e.zeros(64)
        expectRefused(&c, e.bytes, bad(i1.dims + 8, GGUFReason.tensorTooLarge), "element count overflows")
        var b = RawGGUF(); b.header(tensors: 1, kvs: 0); let i2 = b.tensor("w", ne: [1 << 62], offset: 0); b.pad(); b.zeros(64)
        expectRefused(&c, b.bytes, bad(i2.dims, GGUFReason.tensorTooLarge), "byte count overflows")
        // A tensor offset that would wrap the address.
        var o = RawGGUF(); o.header(tensors: 1, kvs: 0); let i3 = o.tensor("w", ne: [8], offset: UInt64.max - 31); o.pad(); o.zeros(32)
        expectRefused(&c, o.bytes, bad(i3.offset, GGUFReason.tensorPastEnd), "offset near 2^64")
    },
    Check("Format/GGUF", "bad value types, bools, UTF-8, duplicates, nesting and alignment") { c in
        var u = RawGGUF(); u.header(tensors: 0, kvs: 1); u.str("k"); let ut = u.count; u.u32(13); u.u32(0)
        expectRefused(&c, u.bytes, bad(ut, GGUFReason.unknownValueType), "value type 13")
        var ua = RawGGUF(); ua.header(tensors: 0, kvs: 1); ua.str("k"); ua.u32(9); let uat = ua.count; ua.u32(99); ua.u64(1); ua.u32(0)
        expectRefused(&c, ua.bytes, bad(uat, GGUFReason.unknownValueType), "array element type 99")
        var bb = RawGGUF(); bb.header(tensors: 0, kvs: 1); bb.str("k"); bb.u32(7); let bv = bb.count; bb.u8(2)
        expectRefused(&c, bb.bytes, bad(bv, GGUFReason.badBool), "bool 2")
        var ba = RawGGUF(); ba.header(tensors: 0, kvs: 1); ba.str("k"); ba.u32(9); ba.u32(7); ba.u64(3); let bav = ba.count
        ba.u8(1); ba.u8(0xFF); ba.u8(0)
        expectRefused(&c, ba.bytes, bad(bav + 1, GGUFReason.badBool), "bool 255 in an array")
        for key: [UInt8] in [[0xFF], [0x61, 0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x61, 0xE2, 0x82]] {
            var k = RawGGUF(); k.header(tensors: 0, kvs: 1); k.rawStr(key); k.u32(0); k.u8(0)
            expectRefused(&c, k.bytes, bad(32, GGUFReason.keyNotUTF8), "bad UTF-8 key")
        }
        var sv = RawGGUF(); sv.header(tensors: 0, kvs: 1); sv.str("k"); sv.u32(8); let svs = sv.count; sv.rawStr([0x80])
        expectRefused(&c, sv.bytes, bad(svs, GGUFReason.stringNotUTF8), "bad UTF-8 value")
        var long = RawGGUF(); long.header(tensors: 0, kvs: 1); long.str(String(repeating: "k", count: 65536)); long.u32(0); long.u8(0)
        expectRefused(&c, long.bytes, bad(24, GGUFReason.keyTooLong), "key of 65536 bytes")
        var dk = RawGGUF(); dk.header(tensors: 0, kvs: 3); dk.kvU32("a", 1); dk.kvU32("b", 2); let second = dk.count; dk.kvU32("a", 3)
        expectRefused(&c, dk.bytes, bad(second, GGUFReason.duplicateKey), "duplicate key")
        // Arrays nested 5 deep.
        var deep = RawGGUF(); deep.header(tensors: 0, kvs: 1); deep.str("k"); deep.u32(9)
        var depthOffsets: [Int] = []
        for _ in 0..<4 { depthOffsets.append(deep.count); deep.u32(9); deep.u64(1) }
        let fifth = deep.count; deep.u32(0); deep.u64(0)
        expectRefused(&c, deep.bytes, bad(fifth, GGUFReason.arrayTooDeep), "arrays 5 deep")
        // general.alignment.
        for a: UInt32 in [0, 4, 12, 48, 1 << 31 | 8] {
            var r = RawGGUF(); r.header(tensors: 0, kvs: 1); let v = r.kvU32("general.alignment", a)
            expectRefused(&c, r.bytes, bad(v, GGUFReason.badAlignment), "alignment " + String(a))
        }
        var at = RawGGUF(); at.header(tensors: 0, kvs: 1); at.str("general.alignment"); at.u32(10); at.u64(32)
        expectRefused(&c, at.bytes, bad(24, GGUFReason.alignmentNotUInt32), "alignment as uint64")
        var a64 = RawGGUF(); a64.header(tensors: 2, kvs: 1); a64.kvU32("general.alignment", 64)
        a64.tensor("x", ne: [8], offset: 0); let mis = a64.tensor("y", ne: [8], offset: 32); a64.pad(64); a64.zeros(128)
        expectRefused(&c, a64.bytes, bad(mis.offset, GGUFReason.misalignedTensor), "offset 32 under alignment 64")
    },
    Check("Format/GGUF", "bad tensor infos: rank, dims, types, names, offsets, overlap, end of file") { c in
        func one(_ name: String = "w", ne: [UInt64], type: UInt32 = 0, offset: UInt64 = 0, rank: UInt32? = nil,
                 data: Int = 64) -> (RawGGUF, RawGGUF.Info) {
            var r = RawGGUF(); r.header(tensors: 1, kvs: 0)
            let info = r.tensor(name, ne: ne, type: type, offset: offset, rank: rank); r.pad(); r.zeros(data)
            return (r, info)
        }
        for rank: UInt32 in [0, 5, UInt32.max] {
            let (r, i) = one(ne: [], rank: rank)
            expectRefused(&c, r.bytes, bad(i.rank, GGUFReason.badRank), "n_dims " + String(rank))
        }
        let (z, zi) = one(ne: [4, 0])
        expectRefused(&c, z.bytes, bad(zi.dims + 8, GGUFReason.zeroDimension), "zero dimension")
        for type: UInt32 in [3, 6, 7, 12, 30, 1000, UInt32.max] {
            let (r, _) = one(ne: [32], type: type)
            expectRefused(&c, r.bytes, .unsupportedTensorType(tensor: "w", type: Int(type)), "ggml type " + String(type))
        }
        let (q, qi) = one(ne: [16, 2], type: 8)
        expectRefused(&c, q.bytes, bad(qi.dims, GGUFReason.rowNotWholeBlocks), "q8_0 row of 16")
        let (q4, q4i) = one(ne: [48], type: 2)
        expectRefused(&c, q4.bytes, bad(q4i.dims, GGUFReason.rowNotWholeBlocks), "q4_0 row of 48")
        let (ln, lni) = one(String(repeating: "n", count: 65), ne: [8])
        expectRefused(&c, ln.bytes, bad(lni.record, GGUFReason.tensorNameTooLong), "name of 65 bytes")
        var bn = RawGGUF(); bn.header(tensors: 1, kvs: 0); bn.rawStr([0x77, 0xC3]); bn.u32(1); bn.u64(8); bn.u32(0); bn.u64(0)
        bn.pad(); bn.zeros(32)
        expectRefused(&c, bn.bytes, bad(32, GGUFReason.tensorNameNotUTF8), "bad UTF-8 name")
        let (m, mi) = one(ne: [8], offset: 16)
        expectRefused(&c, m.bytes, bad(mi.offset, GGUFReason.misalignedTensor), "offset 16")
        let (p, pi) = one(ne: [8], offset: 1 << 20)
        expectRefused(&c, p.bytes, bad(pi.offset, GGUFReason.tensorPastEnd), "data past the end")
        let (e, ei) = one(ne: [17], data: 64)  // 68 bytes of data, 64 in the file
        expectRefused(&c, e.bytes, bad(ei.offset, GGUFReason.tensorPastEnd), "data one element short")
        var dup = RawGGUF(); dup.header(tensors: 2, kvs: 0)
        dup.tensor("w", ne: [8], offset: 0); let d2 = dup.tensor("w", ne: [8], offset: 32); dup.pad(); dup.zeros(64)
        expectRefused(&c, dup.bytes, bad(d2.record, GGUFReason.duplicateTensorName), "duplicate tensor name")
        var ov = RawGGUF(); ov.header(tensors: 2, kvs: 0)
        ov.tensor("a", ne: [16], offset: 0); let o2 = ov.tensor("b", ne: [16], offset: 32); ov.pad(); ov.zeros(128)
        expectRefused(&c, ov.bytes, bad(o2.offset, GGUFReason.tensorsOverlap), "overlapping tensors")
        var ov2 = RawGGUF(); ov2.header(tensors: 2, kvs: 0)
        // The error names the tensor listed later in the file.
        ov2.tensor("a", ne: [8], offset: 32); let o3 = ov2.tensor("b", ne: [16], offset: 0); ov2.pad(); ov2.zeros(128)
        expectRefused(&c, ov2.bytes, bad(o3.offset, GGUFReason.tensorsOverlap), "overlap, listed out of order")
        // Shared data is refused even when identical; adjacent tensors are fine.
        var same = RawGGUF(); same.header(tensors: 2, kvs: 0)
        same.tensor("a", ne: [8], offset: 0); let s2 = same.tensor("b", ne: [8], offset: 0); same.pad(); same.zeros(64)
        expectRefused(&c, same.bytes, bad(s2.offset, GGUFReason.tensorsOverlap), "same offset")
        var ok = RawGGUF(); ok.header(tensors: 2, kvs: 0)
        ok.tensor("a", ne: [8], offset: 0); ok.tensor("b", ne: [8, 1, 1, 1], offset: 32); ok.pad(); ok.zeros(64)
        let f = c.expectNoThrow("adjacent tensors", { () throws(LichenError) in try parse(ok.bytes) })
        c.expect(f?.tensors.map { $0.shape.dimensions } == [[8], [1, 1, 1, 8]], "rank-4 ne reversed into the shape")
        let message = LichenError.malformedFile(offset: pi.offset, reason: GGUFReason.tensorPastEnd).description
        c.expect(has(message, "offset " + String(pi.offset)), "message names the offset: " + message)
    },
]
