import ArgumentParser
import Foundation
import Lichen

/// `lichen quantize --model M.gguf --type q8_0|q4_0 --out M-q8_0.gguf`.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Store a model's linear and conv weights as Q8_0 or Q4_0.",
        discussion: """
            Weights of linear and conv layers whose rows (in/groups x kernel values) are a multiple of 32 \
            are quantized row by row with ggml's reference rounding (byte-identical to gguf-py's \
            gguf.quants.quantize); conv weights are then stored 2-D [out, in/groups*kh*kw]. Other weights \
            stay as they are (the table says why), and biases, norm parameters and running statistics stay \
            f32. Metadata is copied, except lichen.eval.* (measured on the source model) and \
            general.quantization_version (set to 2). The error columns are the largest and the RMS \
            difference between the dequantized and the original weight, divided by the weight's RMS.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("Source model (GGUF, f32 or f16 weights).", valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Weight type: q8_0 or q4_0.", valueName: "type"))
    var type: String

    @Option(name: .long, help: ArgumentHelp("Quantized model to write (atomically).", valueName: "path"))
    var out: String

    func validate() throws {
        guard type == "q8_0" || type == "q4_0" else { throw ValidationError("--type must be q8_0 or q4_0, not '\(type)'") }
        guard !model.isEmpty, !out.isEmpty else { throw ValidationError("--model and --out must not be empty") }
        guard URL(fileURLWithPath: model).standardized.path != URL(fileURLWithPath: out).standardized.path else {
            throw ValidationError("--out must differ from --model")
        }
    }

    /// One row of the report.
    struct Row {
        var tensor: String
        var layer: String
        var kind: String
        var typeBefore: ElementType
        var typeAfter: ElementType
        var shapeBefore: Shape
        var shapeAfter: Shape
        var bytesBefore: Int
        var bytesAfter: Int
        var note: String
        var error: QuantizationError?
    }

    struct QuantizationError {
        var maxAbs: Double
        var rms: Double
        var weightRMS: Double
        var relativeMaxAbs: Double { weightRMS > 0 ? maxAbs / weightRMS : 0 }
        var relativeRMS: Double { weightRMS > 0 ? rms / weightRMS : 0 }
    }

    func run() throws {
        let target: ElementType = type == "q8_0" ? .q8_0 : .q4_0
        let (file, spec) = try openModel(model)
        let parameters = try naming(model) { () throws(LichenError) in try ModelFile.expectedParameters(spec) }
        let kernels = Kernels.best
        var tensors: [ModelTensor] = []
        var rows: [Row] = []
        for info in file.tensors {
            let bytes = try naming(model) { () throws(LichenError) in try file.tensorBytes(info.name) }
            let parameter = parameters.first { $0.name == info.name }
            let layer = parameter.map { spec.layers[$0.layer] }
            var row = Row(tensor: info.name, layer: layer?.name ?? "-", kind: layer?.kind.name ?? "-",
                          typeBefore: info.type, typeAfter: info.type, shapeBefore: info.shape, shapeAfter: info.shape,
                          bytesBefore: info.byteCount, bytesAfter: info.byteCount, note: "", error: nil)
            var tensor = ModelTensor(name: info.name, type: info.type, shape: info.shape, bytes: Array(bytes))
            if let p = parameter, p.isQuantizable, let flat = p.flatShape {
                if info.type.isQuantized {
                    throw CommandFailure("\(model): tensor '\(info.name)' is already \(info.type.name); quantize the f32 model")
                }
                if p.rowLength % 32 != 0 {
                    row.note = "kept \(info.type.name): rows of \(p.rowLength) values are not a multiple of 32"
                } else {
                    let count = flat.elementCount ?? 0
                    guard let values = floatValues(bytes, type: info.type, count: count) else {
                        throw CommandFailure("\(model): tensor '\(info.name)' is \(info.type.name); expected f32 or f16")
                    }
                    let (quantized, error) = try naming(model) { () throws(LichenError) in
                        try Self.quantize(values, shape: flat, to: target, kernels: kernels)
                    }
                    tensor = ModelTensor(name: info.name, type: target, shape: flat, bytes: quantized)
                    row.typeAfter = target
                    row.shapeAfter = flat
                    row.bytesAfter = quantized.count
                    row.error = error
                    row.note = "quantized, rows of \(p.rowLength) values"
                }
            } else if let p = parameter {
                switch p.suffix {
                case "bias": row.note = "bias: stays f32"
                case "running_mean", "running_var": row.note = "running statistic: stays f32"
                default: row.note = "norm parameter: stays f32"
                }
            } else {
                row.note = "not a parameter of the description: copied"
            }
            tensors.append(tensor)
            rows.append(row)
        }

        var extras: [ModelMetadataEntry] = []
        var dropped: [String] = []
        for key in file.metadataKeys where !ModelFile.isDescriptionKey(key) && key != "lichen.quantize.type" {
            if key.hasPrefix("lichen.eval.") { dropped.append(key); continue }
            let value = try naming(model) { () throws(LichenError) in try file.value(key) }
            extras.append(ModelMetadataEntry(key, value))
        }
        extras.append(ModelMetadataEntry("lichen.quantize.type", .string(target.name)))
        if !dropped.isEmpty {
            log("note: not copied (measured on the source model): " + dropped.joined(separator: ", "))
        }
        let name = (try? file.string("general.name")) ?? spec.architecture
        try naming(out) { () throws(LichenError) in
            try ModelFile.write(spec: spec, name: name, tensors: tensors, extras: extras, toPath: out)
        }
        let fileBytes = ((try? FileManager.default.attributesOfItem(atPath: out)[.size]) as? NSNumber)?.intValue ?? 0
        report(rows, target: target, sourceBytes: file.byteCount, outputBytes: fileBytes)
    }

    /// Quantizes `values` (shape `shape`, rows of a multiple of 32) and measures the round-trip error.
    static func quantize(
        _ values: [Float], shape: Shape, to target: ElementType, kernels: Kernels
    ) throws(LichenError) -> ([UInt8], QuantizationError) {
        let rows = shape[0], k = shape.last
        guard let byteCount = target.byteCount(values: rows * k) else {
            throw .invalidArgument(name: "shape", value: k, reason: "row size overflows")
        }
        var input = values
        var output = [UInt8](repeating: 0, count: byteCount)
        var restored = [Float](repeating: 0, count: values.count)
        var failure: LichenError? = nil
        input.withUnsafeMutableBytes { x in
            output.withUnsafeMutableBytes { q in
                restored.withUnsafeMutableBytes { y in
                    guard let xb = x.baseAddress, let qb = q.baseAddress, let yb = y.baseAddress else { return }
                    do throws(LichenError) {
                        let xv = try TensorView(base: xb, byteCount: x.count, type: .f32, shape: shape)
                        let qv = try TensorView(base: qb, byteCount: q.count, type: target, shape: shape)
                        let yv = try TensorView(base: yb, byteCount: y.count, type: .f32, shape: shape)
                        try kernels.quantizeRows(xv, into: qv)
                        try kernels.dequantizeRows(qv, into: yv)
                    } catch {
                        failure = error
                    }
                }
            }
        }
        if let failure { throw failure }
        var maxAbs = 0.0, sumSquares = 0.0, weightSquares = 0.0
        for (a, b) in zip(values, restored) {
            let d = Double(b) - Double(a)
            maxAbs = max(maxAbs, abs(d))
            sumSquares += d * d
            weightSquares += Double(a) * Double(a)
        }
        let n = Double(max(values.count, 1))
        return (output, QuantizationError(maxAbs: maxAbs, rms: (sumSquares / n).squareRoot(),
                                          weightRMS: (weightSquares / n).squareRoot()))
    }

    func report(_ rows: [Row], target: ElementType, sourceBytes: Int, outputBytes: Int) {
        let before = rows.reduce(0) { $0 + $1.bytesBefore }, after = rows.reduce(0) { $0 + $1.bytesAfter }
        if global.json {
            let items: [JSON] = rows.map { r in
                var pairs: [(String, JSON)] = [
                    ("name", .string(r.tensor)), ("layer", .string(r.layer)), ("kind", .string(r.kind)),
                    ("type_before", .string(r.typeBefore.name)), ("type_after", .string(r.typeAfter.name)),
                    ("shape_before", .array(r.shapeBefore.dimensions.map { .int($0) })),
                    ("shape_after", .array(r.shapeAfter.dimensions.map { .int($0) })),
                    ("bytes_before", .int(r.bytesBefore)), ("bytes_after", .int(r.bytesAfter)),
                    ("quantized", .bool(r.error != nil)), ("note", .string(r.note)),
                ]
                if let e = r.error {
                    pairs += [("max_abs_error", .number(e.maxAbs)), ("rms_error", .number(e.rms)),
                              ("weight_rms", .number(e.weightRMS)),
                              ("relative_max_abs_error", .number(e.relativeMaxAbs)),
                              ("relative_rms_error", .number(e.relativeRMS))]
                }
                return .object(pairs)
            }
            let doc: JSON = .object([
                ("model", .string(model)), ("out", .string(out)), ("type", .string(target.name)),
                ("tensors", .array(items)),
                ("tensor_bytes_before", .int(before)), ("tensor_bytes_after", .int(after)),
                ("file_bytes_before", .int(sourceBytes)), ("file_bytes_after", .int(outputBytes)),
            ])
            print(doc.rendered())
            return
        }
        var table = Table(["tensor", "layer", "type", "bytes before", "bytes after", "max |err| / rms", "rms err / rms", "note"],
                          rightAligned: [3, 4, 5, 6])
        for r in rows {
            let type = r.typeBefore == r.typeAfter ? r.typeBefore.name : r.typeBefore.name + " -> " + r.typeAfter.name
            table.add([r.tensor, r.kind == "-" ? "-" : r.layer + " (" + r.kind + ")", type,
                       String(r.bytesBefore), String(r.bytesAfter),
                       r.error.map { fixed($0.relativeMaxAbs, 4) } ?? "-", r.error.map { fixed($0.relativeRMS, 4) } ?? "-",
                       r.note])
        }
        print(table.rendered())
        print("")
        let ratio = before > 0 ? fixed(Double(after) / Double(before), 3) : "n/a"
        print("tensor bytes \(before) -> \(after) (x\(ratio)); file \(byteText(sourceBytes)) -> \(byteText(outputBytes)); wrote \(out)")
    }
}
