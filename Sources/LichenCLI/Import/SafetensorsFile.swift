import Foundation
import Lichen

/// A safetensors file (huggingface/safetensors): an 8-byte little-endian header length N, N bytes
/// of JSON header `{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`,
/// then the data section; offsets are relative to the data section.
///
/// Everything is checked when the file is opened: the header length against the file size and a
/// 100 MiB cap, the header is a JSON object of well-formed entries, every dtype is known, shapes
/// are non-negative with element counts that do not overflow, offsets lie inside the data section,
/// each tensor's byte size matches dtype x shape, and no two tensors overlap. Errors name the file,
/// the tensor and the file offset.
struct SafetensorsFile {
    struct Tensor {
        let name: String
        let dtype: String
        let shape: [Int]
        /// Absolute offsets in the file.
        let begin: Int
        let end: Int
    }

    static let maximumHeaderBytes = 100 << 20

    /// Bytes per element of the dtypes safetensors defines.
    static let dtypeSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
    ]

    let path: String
    let data: Data
    /// Tensors in header order (JSON object order is not kept by the parser: sorted by offset).
    let tensors: [Tensor]
    let metadata: [String: String]

    init(path: String) throws {
        self.path = path
        func fail(_ message: String) -> CommandFailure { CommandFailure("\(path): \(message)") }
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw fail("cannot read the file: \(error.localizedDescription)")
        }
        guard data.count >= 8 else { throw fail("the file is \(data.count) bytes, shorter than its 8-byte header length") }
        let length = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length <= UInt64(Self.maximumHeaderBytes), Int(length) <= data.count - 8 else {
            throw fail("header length \(length) at byte offset 0 exceeds the file (\(data.count) bytes) or 100 MiB")
        }
        let headerEnd = 8 + Int(length)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd))
        } catch {
            throw fail("the header (bytes 8..<\(headerEnd)) is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("the header (bytes 8..<\(headerEnd)) is not a JSON object") }
        let dataSize = data.count - headerEnd

        var metadata: [String: String] = [:]
        var tensors: [Tensor] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let entry = value as? [String: Any] else { throw fail("tensor '\(name)': the header entry is not an object") }
            for key in entry.keys where !["dtype", "shape", "data_offsets"].contains(key) {
                throw fail("tensor '\(name)': unknown header field '\(key)'")
            }
            guard let dtype = entry["dtype"] as? String else { throw fail("tensor '\(name)': missing or non-string dtype") }
            guard let size = Self.dtypeSizes[dtype] else { throw fail("tensor '\(name)': unknown dtype '\(dtype)'") }
            guard let shape = Self.integers(entry["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("tensor '\(name)': shape must be an array of non-negative integers")
            }
            guard let offsets = Self.integers(entry["data_offsets"]), offsets.count == 2 else {
                throw fail("tensor '\(name)': data_offsets must be two integers [begin, end]")
            }
            let begin = offsets[0], end = offsets[1]
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw fail("tensor '\(name)': data_offsets [\(begin), \(end)] lie outside the data section "
                           + "(\(dataSize) bytes from byte offset \(headerEnd))")
            }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw fail("tensor '\(name)': the element count of shape \(shape) overflows") }
                count = p
            }
            let (bytes, o) = count.multipliedReportingOverflow(by: size)
            guard !o, bytes == end - begin else {
                throw fail("tensor '\(name)': data_offsets [\(begin), \(end)] hold \(end - begin) bytes, but \(dtype) "
                           + "\(shape) needs \(o ? "more than Int.max" : String(bytes)) (at byte offset \(headerEnd + begin))")
            }
            tensors.append(Tensor(name: name, dtype: dtype, shape: shape, begin: headerEnd + begin, end: headerEnd + end))
        }
        tensors.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        for (a, b) in zip(tensors, tensors.dropFirst()) where b.begin < a.end && b.begin < b.end {
            throw fail("tensor '\(b.name)' (bytes \(b.begin)..<\(b.end) of the file) overlaps tensor '\(a.name)' "
                       + "(bytes \(a.begin)..<\(a.end))")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// An array of JSON integers (no fractions, no booleans), or nil.
    static func integers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var out: [Int] = []
        for item in array {
            guard let i = integer(item) else { return nil }
            out.append(i)
        }
        return out
    }

    /// A JSON integer (3 and 3.0, not 3.5, not true), or nil.
    static func integer(_ item: Any) -> Int? {
        // Foundation parses true/false as NSNumber too (a boolean subclass): refuse those.
        guard let n = item as? NSNumber, !String(describing: type(of: item)).contains("Boolean") else { return nil }
        let d = n.doubleValue
        guard d == d.rounded(), abs(d) < 9.0e15 else { return nil }
        return Int(exactly: d)
    }

    /// The tensor's values as f32 (F32, F16 and BF16), little-endian.
    func floats(_ t: Tensor) throws -> [Float] {
        let count = t.shape.reduce(1, *)
        let values = data.withUnsafeBytes { raw -> [Float]? in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[t.begin..<t.end])
            switch t.dtype {
            case "F32": return floatValues(bytes, type: .f32, count: count)
            case "F16": return floatValues(bytes, type: .f16, count: count)
            case "BF16":
                return (0..<count).map {
                    Float(bitPattern: UInt32(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16)
                }
            default: return nil
            }
        }
        guard let values else {
            throw CommandFailure("\(path): tensor '\(t.name)' has dtype \(t.dtype); Lichen imports F32, F16 and BF16")
        }
        // Imports (models and PEFT adapters) take finite weights only: a NaN written into a model
        // file would be refused at load anyway, and poisons every output it reaches.
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw CommandFailure("\(path): " + LichenError.nonFiniteTensor(tensor: t.name, unit: "element", index: i).description
                                 + " (\(values[i]))")
        }
        return values
    }
}
