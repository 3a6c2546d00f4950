import Foundation
import Lichen

/// A runtime failure of a model-file command: printed to stderr by the root command, exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Runs `body`, turning a `LichenError` into a `CommandFailure` that starts with `path`.
func naming<T>(_ path: String, _ body: () throws(LichenError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        throw CommandFailure(path + ": " + error.description)
    }
}

/// Opens and validates a Lichen model file: the GGUF container, the description and the parameters.
func openModel(_ path: String, mode: GGUFFile.LoadMode = .map) throws -> (file: GGUFFile, spec: ModelSpec) {
    let file = try naming(path) { () throws(LichenError) in try GGUFFile(path: path, mode: mode) }
    let spec = try naming(path) { () throws(LichenError) in try ModelFile.readSpec(file) }
    try naming(path) { () throws(LichenError) in try ModelFile.checkParameters(file, spec: spec) }
    return (file, spec)
}

/// "[a, b, c]".
func shapeText(_ shape: Shape) -> String { "[" + shape.dimensions.map(String.init).joined(separator: ", ") + "]" }

/// "1.2 MiB", "512 B".
func byteText(_ n: Int) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1 << 20 { return fixed(Double(n) / 1024, 1) + " KiB" }
    return fixed(Double(n) / Double(1 << 20), 2) + " MiB"
}

/// The f32 values of a tensor stored as f32 or f16 (little-endian).
func floatValues(_ bytes: UnsafeRawBufferPointer, type: ElementType, count: Int) -> [Float]? {
    switch type {
    case .f32:
        guard bytes.count >= count * 4 else { return nil }
        return (0..<count).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
    case .f16:
        guard bytes.count >= count * 2 else { return nil }
        return (0..<count).map { Kernels.float(fromHalfBits: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
    case .q4_0, .q8_0:
        return nil
    }
}

/// Little-endian f32 bytes of `values`.
func f32Bytes(_ values: [Float]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: values.count * 4)
    out.withUnsafeMutableBytes { raw in
        for (i, v) in values.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
    }
    return out
}

/// A metadata value as JSON (arrays element by element).
func jsonValue(_ value: GGUFMetadataValue) -> JSON {
    switch value {
    case .uint8(let v): return .int(Int(v))
    case .int8(let v): return .int(Int(v))
    case .uint16(let v): return .int(Int(v))
    case .int16(let v): return .int(Int(v))
    case .uint32(let v): return .int(Int(v))
    case .int32(let v): return .int(Int(v))
    case .uint64(let v): return v <= UInt64(Int.max) ? .int(Int(v)) : .number(Double(v))
    case .int64(let v): return .int(Int(v))
    case .float32(let v): return .number(Double(v))
    case .float64(let v): return .number(v)
    case .bool(let v): return .bool(v)
    case .string(let v): return .string(v)
    case .array(_, let elements): return .array(elements.map(jsonValue))
    }
}

/// How many elements of a metadata array a listing shows (`metadataListing`).
let metadataArrayPreview = 16

/// The metadata value under `key` for a listing (`inspect`): at most `metadataArrayPreview`
/// elements of each array are read, so one long array costs no more than a short one. An
/// array that was cut is shown as JSON `{"count": N, "first": [...]}` and as text
/// `[a, b, ..., p, ...] (N elements)`. Nil when the key is absent.
func metadataListing(_ file: GGUFFile, _ key: String) -> (json: JSON, text: String)? {
    guard let (value, count) = try? file.value(key, arrayElementLimit: metadataArrayPreview) else { return nil }
    guard let count, count > metadataArrayPreview else { return (jsonValue(value), plainText(value)) }
    let shown = plainText(value)
    let text = String(shown.dropLast()) + ", ...] (\(count) elements)"
    return (.object([("count", .int(count)), ("first", jsonValue(value))]), text)
}

/// A metadata value as short text for tables.
func plainText(_ value: GGUFMetadataValue) -> String {
    switch jsonValue(value) {
    case .string(let s): return s
    case let other: return other.rendered(indent: 0)
    }
}

/// The layer attributes that matter for `layer.kind`, as (key, JSON) pairs, schema names.
func layerAttributes(_ layer: LayerSpec) -> [(String, JSON)] {
    let pair = { (a: Int, b: Int) -> JSON in .array([.int(a), .int(b)]) }
    switch layer.kind {
    case .linear:
        return [("outputs", .int(layer.outputs)), ("bias", .bool(layer.hasBias))]
    case .conv2d:
        return [("outputs", .int(layer.outputs)), ("kernel", pair(layer.kernelH, layer.kernelW)),
                ("stride", pair(layer.strideH, layer.strideW)), ("padding", pair(layer.padH, layer.padW)),
                ("dilation", pair(layer.dilationH, layer.dilationW)), ("groups", .int(layer.groups)),
                ("bias", .bool(layer.hasBias))]
    case .conv1d:
        return [("outputs", .int(layer.outputs)), ("kernel", .array([.int(layer.kernelW)])),
                ("stride", .array([.int(layer.strideW)])), ("padding", .array([.int(layer.padW)])),
                ("dilation", .array([.int(layer.dilationW)])), ("groups", .int(layer.groups)),
                ("bias", .bool(layer.hasBias))]
    case .batchNorm:
        return [("epsilon", floatJSON(layer.epsilon)), ("momentum", floatJSON(layer.momentum))]
    case .groupNorm:
        return [("groups", .int(layer.groups)), ("epsilon", floatJSON(layer.epsilon))]
    case .layerNorm:
        return [("epsilon", floatJSON(layer.epsilon))]
    case .maxPool2d, .avgPool2d:
        return [("kernel", pair(layer.kernelH, layer.kernelW)), ("stride", pair(layer.strideH, layer.strideW)),
                ("padding", pair(layer.padH, layer.padW))]
    case .slice:
        return [("start", .int(layer.start)), ("outputs", .int(layer.outputs))]
    case .relu, .gelu, .silu, .tanh, .elu, .globalAvgPool, .flatten, .add, .softmax, .concat:
        return []
    }
}

/// "outputs=32 kernel=3x3 ..." for tables.
func attributeText(_ layer: LayerSpec) -> String {
    layerAttributes(layer).map { key, value -> String in
        switch value {
        case .array(let items):
            return key + "=" + items.map { $0.rendered(indent: 0) }.joined(separator: "x")
        case .number(let d):
            return key + "=" + String(Float(d))
        default:
            return key + "=" + value.rendered(indent: 0)
        }
    }.joined(separator: " ")
}

/// A float as a JSON number with its shortest decimal form (1e-05, not 9.99999974e-06).
func floatJSON(_ f: Float) -> JSON { .number(Double(String(f)) ?? Double(f)) }
