import Foundation
import Lichen
import Testing

/// Interoperability with ggml's reference Python package `gguf` (gguf-py), both directions:
/// a file Lichen writes opens in gguf.GGUFReader with the same values and bytes, and is
/// byte-identical to what gguf.GGUFWriter writes for the same content; a file gguf.GGUFWriter
/// writes (F32, F16, and Q8_0 / Q4_0 from gguf.quants.quantize) opens in Lichen with the
/// same metadata and tensor bytes.
@Suite("GGUF interop with gguf-py")
struct GGUFInteropTests {
    /// Deterministic tensor bytes, the same formula as `pattern` in the Python script.
    static func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ seed &* 11 &+ 5) }
    }

    @Test("a file Lichen writes reads back in gguf-py, byte-identical to gguf-py's writer")
    func lichenToPython() throws {
        let dir = try TemporaryDirectory()
        var w = try GGUFWriter()
        try w.add("general.architecture", .string("lichen-interop"))
        try w.add("t.u8", .uint8(200))
        try w.add("t.i8", .int8(-100))
        try w.add("t.u16", .uint16(60000))
        try w.add("t.i16", .int16(-30000))
        try w.add("t.u32", .uint32(4_000_000_000))
        try w.add("t.i32", .int32(-2_000_000_000))
        try w.add("t.f32", .float32(0.15625))
        try w.add("t.bool", .bool(true))
        try w.add("t.string", .string("héllo, 世界 🌿"))
        try w.add("t.u64", .uint64(18_000_000_000_000_000_000))
        try w.add("t.i64", .int64(-9_000_000_000_000_000_000))
        try w.add("t.f64", .float64(2.718281828459045))
        try w.add("t.arr.u8", .array(elementType: .uint8, elements: [.uint8(1), .uint8(2), .uint8(255)]))
        try w.add("t.arr.i32", .array(elementType: .int32, elements: [.int32(-1), .int32(7)]))
        try w.add("t.arr.f32", .array(elementType: .float32, elements: [.float32(0.5), .float32(-4)]))
        try w.add("t.arr.u64", .array(elementType: .uint64, elements: [.uint64(1 << 40)]))
        try w.add("t.arr.bool", .array(elementType: .bool, elements: [.bool(false), .bool(true)]))
        try w.add("t.arr.str", .array(elementType: .string, elements: [.string("t-shirt"), .string("ankle boot ✓")]))
        try w.add("t.arr.nested", .array(elementType: .array, elements: [
            .array(elementType: .int32, elements: [.int32(1), .int32(2)]),
            .array(elementType: .int32, elements: [.int32(3)]),
        ]))
        let floats: [Float] = (0..<6).map { Float($0) * 0.25 - 0.5 }
        try w.addTensor("w.f32", shape: try Shape(2, 3), floats: floats)
        try w.addTensor("w.f16", type: .f16, shape: try Shape(4, 32), bytes: Self.pattern(4 * 32 * 2, seed: 1))
        try w.addTensor("w.q8_0", type: .q8_0, shape: try Shape(2, 64), bytes: Self.pattern(2 * 2 * 34, seed: 2))
        try w.addTensor("w.q4_0", type: .q4_0, shape: try Shape(1, 32), bytes: Self.pattern(18, seed: 3))
        let path = dir.url.appendingPathComponent("lichen.gguf").path
        try w.write(toPath: path)
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"), "the temporary file was left behind")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(try w.serialized()), "file differs from serialized()")

        let output = try runPython(dir, ["check-lichen", path, dir.url.appendingPathComponent("python.gguf").path])
        #expect(output.contains("OK"), "gguf-py check printed: \(output)")
    }

    @Test("a file gguf-py writes (F32, F16, Q8_0, Q4_0) reads in Lichen with the same values and bytes")
    func pythonToLichen() throws {
        let dir = try TemporaryDirectory()
        let path = dir.url.appendingPathComponent("python.gguf").path
        let expectedPath = dir.url.appendingPathComponent("expected.json").path
        _ = try runPython(dir, ["write-python", path, expectedPath])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: expectedPath)))
        let expected = try #require(json as? [String: Any])
        let metadata = try #require(expected["metadata"] as? [[Any]])
        let tensors = try #require(expected["tensors"] as? [[String: Any]])

        for mode in [GGUFFile.LoadMode.map, .mapShared, .read] {
            let file = try GGUFFile(path: path, mode: mode)
            #expect(file.isMapped == (mode != .read))
            #expect(file.version == 3 && file.alignment == 32)
            #expect(file.metadataKeys == metadata.map { $0[0] as? String ?? "?" }, "key order")
            for entry in metadata {
                let key = try #require(entry[0] as? String), type = try #require(entry[1] as? String)
                let value = try file.value(key)
                #expect(Self.matches(value, type: type, json: entry[2]), "\(key): Lichen read \(value), gguf-py wrote \(type) \(entry[2])")
            }
            #expect(file.tensorCount == tensors.count)
            for t in tensors {
                let name = try #require(t["name"] as? String)
                let info = try file.tensorInfo(name)
                let ne = try #require(t["ne"] as? [Int])
                #expect(info.shape.dimensions == ne.reversed(), "\(name): shape \(info.shape.dimensions), ne \(ne)")
                #expect(Int(info.type.rawValue) == t["type"] as? Int, "\(name): type")
                let bytes = Array(try file.tensorBytes(name))
                let hex = bytes.map { String(format: "%02x", $0) }.joined()
                #expect(hex == t["hex"] as? String, "\(name): tensor bytes differ")
                let view = try file.tensor(name)
                #expect(view.byteCount == bytes.count && view.shape == info.shape, "\(name): view")
            }
            #expect(try file.strings("tokenizer.labels") == ["t-shirt", "trouser", "pullover", "élan ✓"])
            #expect(try file.floats("t.arr.f32") == [0.5, -1.25, 3])
            #expect(try file.uint32("general.quantization_version") == 2)
        }
    }

    /// Whether a value read by Lichen matches what the Python script recorded.
    static func matches(_ value: GGUFMetadataValue, type: String, json: Any) -> Bool {
        func number(_ x: Any) -> NSNumber? { x as? NSNumber }
        switch value {
        case .uint8(let v): return type == "UINT8" && number(json)?.uint8Value == v
        case .int8(let v): return type == "INT8" && number(json)?.int8Value == v
        case .uint16(let v): return type == "UINT16" && number(json)?.uint16Value == v
        case .int16(let v): return type == "INT16" && number(json)?.int16Value == v
        case .uint32(let v): return type == "UINT32" && number(json)?.uint32Value == v
        case .int32(let v): return type == "INT32" && number(json)?.int32Value == v
        case .uint64(let v): return type == "UINT64" && number(json)?.uint64Value == v
        case .int64(let v): return type == "INT64" && number(json)?.int64Value == v
        case .float32(let v): return type == "FLOAT32" && number(json).map { Float($0.doubleValue) } == v
        case .float64(let v): return type == "FLOAT64" && number(json)?.doubleValue == v
        case .bool(let v): return type == "BOOL" && (json as? Bool) == v
        case .string(let v): return type == "STRING" && (json as? String) == v
        case .array(let elementType, let elements):
            guard let list = json as? [Any], list.count == elements.count,
                  type == "ARRAY:" + String(describing: elementType.name).uppercased()
            else { return false }
            let inner = String(describing: elementType.name).uppercased()
            return zip(elements, list).allSatisfy { matches($0, type: inner, json: $1) }
        }
    }

    /// Runs the Python side with `arguments`; throws with its output when it fails.
    func runPython(_ dir: TemporaryDirectory, _ arguments: [String]) throws -> String {
        let script = dir.url.appendingPathComponent("gguf_interop.py")
        try Self.pythonScript.write(to: script, atomically: true, encoding: .utf8)
        let probe = try run(["python3", "-c", "import gguf, numpy"])
        guard probe.status == 0 else {
            throw InteropError.missing(
                "python3 with the gguf and numpy packages is required (run ports/host/setup): \(probe.output)")
        }
        let result = try run(["python3", script.path] + arguments)
        guard result.status == 0 else { throw InteropError.failed("gguf-py side failed:\n\(result.output)") }
        return result.output
    }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            throw InteropError.missing("cannot start \(arguments[0]) (run ports/host/setup): \(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    enum InteropError: Error, CustomStringConvertible {
        case missing(String)
        case failed(String)
        var description: String {
            switch self {
            case .missing(let s), .failed(let s): return s
            }
        }
    }

    /// A directory under the system temporary directory, removed when the test ends.
    final class TemporaryDirectory {
        let url: URL
        init() throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-gguf-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(at: url) }
    }

    /// The Python side. `check-lichen LICHEN OUT`: reads Lichen's file with gguf.GGUFReader,
    /// compares every value and tensor with the content the Swift test wrote, writes the same
    /// content with gguf.GGUFWriter to OUT and compares the two files byte for byte.
    /// `write-python OUT JSON`: writes a file with gguf.GGUFWriter and records what it wrote.
    static let pythonScript = #"""
import json, sys
import numpy as np
import gguf
from gguf import GGUFValueType as T, GGMLQuantizationType as Q

def pattern(count, seed):
    return np.array([(i * 37 + seed * 11 + 5) & 0xFF for i in range(count)], dtype=np.uint8)

def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)

SCALARS = [
    ("t.u8", T.UINT8, 200), ("t.i8", T.INT8, -100), ("t.u16", T.UINT16, 60000), ("t.i16", T.INT16, -30000),
    ("t.u32", T.UINT32, 4000000000), ("t.i32", T.INT32, -2000000000), ("t.f32", T.FLOAT32, 0.15625),
    ("t.bool", T.BOOL, True), ("t.string", T.STRING, "héllo, 世界 🌿"),
    ("t.u64", T.UINT64, 18000000000000000000), ("t.i64", T.INT64, -9000000000000000000),
    ("t.f64", T.FLOAT64, 2.718281828459045),
]
ARRAYS = [
    ("t.arr.u8", T.UINT8, [1, 2, 255]), ("t.arr.i32", T.INT32, [-1, 7]), ("t.arr.f32", T.FLOAT32, [0.5, -4.0]),
    ("t.arr.u64", T.UINT64, [1 << 40]), ("t.arr.bool", T.BOOL, [False, True]),
    ("t.arr.str", T.STRING, ["t-shirt", "ankle boot ✓"]),
]
NESTED = ("t.arr.nested", [[1, 2], [3]])

def lichen_tensors():
    f32 = (np.arange(6, dtype=np.float32) * 0.25 - 0.5).reshape(2, 3)
    f16 = pattern(4 * 32 * 2, 1).view(np.float16).reshape(4, 32)
    q8 = pattern(2 * 2 * 34, 2).reshape(2, 68)
    q4 = pattern(18, 3).reshape(1, 18)
    return [("w.f32", f32, None), ("w.f16", f16, None), ("w.q8_0", q8, Q.Q8_0), ("w.q4_0", q4, Q.Q4_0)]

def check_lichen(path, out):
    r = gguf.GGUFReader(path)
    keys = [k for k in r.fields.keys() if not k.startswith("GGUF.")]
    want_keys = ["general.architecture"] + [k for k, _, _ in SCALARS] + [k for k, _, _ in ARRAYS] + [NESTED[0], "general.alignment"]
    if keys != want_keys:
        fail("keys %r != %r" % (keys, want_keys))
    if r.fields["general.architecture"].contents() != "lichen-interop":
        fail("architecture")
    for key, vtype, value in SCALARS:
        f = r.fields[key]
        if f.types != [vtype]:
            fail("%s: type %r, expected %r" % (key, f.types, vtype))
        got = f.contents()
        if vtype == T.FLOAT32:
            ok = np.float32(got) == np.float32(value)
        else:
            ok = got == value
        if not ok:
            fail("%s: %r != %r" % (key, got, value))
    for key, vtype, value in ARRAYS:
        f = r.fields[key]
        if f.types != [T.ARRAY, vtype]:
            fail("%s: types %r" % (key, f.types))
        if f.contents() != value:
            fail("%s: %r != %r" % (key, f.contents(), value))
    f = r.fields[NESTED[0]]
    if f.types[:3] != [T.ARRAY, T.ARRAY, T.INT32] or f.contents() != [1, 2, 3]:
        fail("nested: %r %r" % (f.types, f.contents()))
    if r.fields["general.alignment"].contents() != 32 or r.alignment != 32:
        fail("alignment")
    tensors = {t.name: t for t in r.tensors}
    for name, arr, raw in lichen_tensors():
        t = tensors[name]
        want_type = raw if raw is not None else (Q.F32 if arr.dtype == np.float32 else Q.F16)
        if t.tensor_type != want_type:
            fail("%s: type %r" % (name, t.tensor_type))
        if t.data.tobytes() != arr.tobytes():
            fail("%s: bytes differ" % name)
        if t.data_offset % 32 != 0:
            fail("%s: offset %d not aligned" % (name, t.data_offset))
    if [int(d) for d in tensors["w.q8_0"].shape] != [64, 2] or [int(d) for d in tensors["w.f32"].shape] != [3, 2]:
        fail("shapes (ne) %r %r" % (tensors["w.q8_0"].shape, tensors["w.f32"].shape))

    w = gguf.GGUFWriter(out, "lichen-interop")
    for key, vtype, value in SCALARS:
        w.add_key_value(key, value, vtype)
    for key, vtype, value in ARRAYS:
        w.add_key_value(key, value, T.ARRAY, sub_type=vtype)
    w.add_key_value(NESTED[0], NESTED[1], T.ARRAY, sub_type=T.ARRAY)
    w.add_custom_alignment(32)
    for name, arr, raw in lichen_tensors():
        w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    a, b = open(path, "rb").read(), open(out, "rb").read()
    if a != b:
        first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        fail("Lichen's file (%d bytes) differs from gguf-py's (%d bytes) first at byte %d" % (len(a), len(b), first))
    print("OK: gguf-py read every value and tensor; files are byte-identical (%d bytes)" % len(a))

def write_python(path, expected_path):
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(path, "fmnist-cnn")
    meta = [("general.architecture", "STRING", "fmnist-cnn")]
    def add(key, vtype, value, sub=None):
        if sub is None:
            w.add_key_value(key, value, vtype)
            meta.append((key, vtype.name, value))
        else:
            w.add_key_value(key, value, T.ARRAY, sub_type=sub)
            meta.append((key, "ARRAY:" + sub.name, value))
    w.add_quantization_version(2)
    meta.append(("general.quantization_version", "UINT32", 2))
    add("general.name", T.STRING, "Fashion-MNIST CNN ✓")
    add("t.u8", T.UINT8, 3); add("t.i16", T.INT16, -2); add("t.u64", T.UINT64, 1 << 50)
    add("t.i64", T.INT64, -(1 << 50)); add("t.f32", T.FLOAT32, 0.1); add("t.f64", T.FLOAT64, 0.1)
    add("t.bool", T.BOOL, False); add("t.i32", T.INT32, -5)
    add("tokenizer.labels", None, ["t-shirt", "trouser", "pullover", "élan ✓"], sub=T.STRING)
    add("t.arr.f32", None, [0.5, -1.25, 3.0], sub=T.FLOAT32)
    add("t.arr.i8", None, [-128, 0, 127], sub=T.INT8)
    add("t.arr.u16", None, [0, 65535], sub=T.UINT16)
    add("t.arr.u32", None, [1, 2, 3], sub=T.UINT32)
    add("t.arr.f64", None, [1e300, -2.5], sub=T.FLOAT64)
    add("t.arr.bool", None, [True, False, True], sub=T.BOOL)

    f32 = rng.standard_normal((3, 4)).astype(np.float32)
    f16 = rng.standard_normal((2, 8)).astype(np.float16)
    base8 = rng.standard_normal((4, 64)).astype(np.float32)
    base4 = rng.standard_normal((2, 32)).astype(np.float32)
    q8 = gguf.quants.quantize(base8, Q.Q8_0)
    q4 = gguf.quants.quantize(base4, Q.Q4_0)
    one = rng.standard_normal(5).astype(np.float32)
    tensors = [("conv1.weight", f32, None, [4, 3]), ("conv1.bias", one, None, [5]), ("fc.f16", f16, None, [8, 2]),
               ("fc1.weight", q8, Q.Q8_0, [64, 4]), ("fc2.weight", q4, Q.Q4_0, [32, 2])]
    for name, arr, raw, ne in tensors:
        w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    type_of = {np.dtype(np.float32): int(Q.F32), np.dtype(np.float16): int(Q.F16)}
    out = {
        "metadata": [[k, t, v] for k, t, v in meta],
        "tensors": [{"name": n, "type": int(raw) if raw is not None else type_of[a.dtype], "ne": ne,
                     "hex": a.tobytes().hex()} for n, a, raw, ne in tensors],
    }
    with open(expected_path, "w") as f:
        json.dump(out, f, ensure_ascii=False)
    print("OK: wrote %s" % path)

if __name__ == "__main__":
    if sys.argv[1] == "check-lichen":
        check_lichen(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "write-python":
        write_python(sys.argv[2], sys.argv[3])
    else:
        fail("unknown command " + sys.argv[1])
"""#
}
