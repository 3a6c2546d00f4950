import CRuntime
import Foundation
import Lichen
import LichenChecks
import Testing

/// Byte compatibility of Lichen's Q8_0 / Q4_0 with the `gguf` Python package's quants module
/// (`gguf.quants.quantize` / `dequantize`), in both directions, for every supported table.
/// Needs python3 with gguf and numpy (ports/host/setup installs them); fails without them.
@Suite("GGML compatibility")
struct GGMLCompatibilityTests {
    static let rows = 7
    static let k = 288

    /// Inputs with ties, an all-zero block, tiny and large magnitudes.
    static func inputs() -> [Float] {
        var rng = SplitMix64(seed: 42)
        var x = (0..<(rows * k)).map { _ in rng.nextFloat(-1, 1) }
        for i in 0..<k { x[k + i] *= 1e-4 }
        for i in 0..<k { x[2 * k + i] *= 500 }
        for i in 0..<k { x[3 * k + i] = Float(Int(rng.next() % 41) - 20) * 0.25 }
        for i in 0..<32 { x[4 * k + i] = 0 }
        return x
    }

    /// Runs `script` with python3; the script reads and writes files in `dir`.
    func python(_ script: String, in dir: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, dir.path]
        let err = Pipe()
        process.standardError = err
        do { try process.run() } catch {
            Issue.record("python3 could not be started (\(error)); run ports/host/setup to install python3, numpy and gguf")
            throw error
        }
        process.waitUntilExit()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        try #require(process.terminationStatus == 0, "python3 failed: \(message)\nRun ports/host/setup to install numpy and gguf.")
    }

    static let script = """
        import sys, os
        import numpy as np
        from gguf.quants import quantize, dequantize
        from gguf import GGMLQuantizationType as T
        d = sys.argv[1]
        rows, k = \(rows), \(k)
        x = np.fromfile(os.path.join(d, "x.f32"), dtype=np.float32).reshape(rows, k)
        for name, t in (("q8_0", T.Q8_0), ("q4_0", T.Q4_0)):
            quantize(x, t).tofile(os.path.join(d, "py." + name))
            lq = np.fromfile(os.path.join(d, "lichen." + name), dtype=np.uint8).reshape(rows, -1)
            dequantize(lq, t).astype(np.float32).tofile(os.path.join(d, "pydeq." + name))
        """

    @Test(arguments: KernelISA.supported.map(\.name))
    func quantizationMatchesGGUFPy(isaName: String) throws {
        let isa = try #require(KernelISA.allCases.first { $0.name == isaName })
        let kernels = try #require(Kernels(isa: isa))
        let rows = Self.rows, k = Self.k
        var x = Self.inputs()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-ggml-\(isaName)-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try x.withUnsafeBytes { try Data($0).write(to: dir.appendingPathComponent("x.f32")) }

        var lichen: [ElementType: [UInt8]] = [:]
        var lichenDeq: [ElementType: [Float]] = [:]
        for type in [ElementType.q8_0, .q4_0] {
            let bytes = try #require(type.byteCount(values: rows * k))
            var q = [UInt8](repeating: 0, count: bytes)
            var deq = [Float](repeating: 0, count: rows * k)
            try x.withUnsafeMutableBytes { xb in
                try q.withUnsafeMutableBytes { qb in
                    try deq.withUnsafeMutableBytes { db in
                        let xv = try TensorView(base: xb.baseAddress!, byteCount: xb.count, type: .f32, shape: Shape(rows, k))
                        let qv = try TensorView(base: qb.baseAddress!, byteCount: qb.count, type: type, shape: Shape(rows, k))
                        let dv = try TensorView(base: db.baseAddress!, byteCount: db.count, type: .f32, shape: Shape(rows, k))
                        try kernels.quantizeRows(xv, into: qv)
                        try kernels.dequantizeRows(qv, into: dv)
                    }
                }
            }
            lichen[type] = q
            lichenDeq[type] = deq
            try Data(q).write(to: dir.appendingPathComponent("lichen." + type.name))
        }

        try python(Self.script, in: dir)

        for type in [ElementType.q8_0, .q4_0] {
            // Python's quantization of the same floats is byte-identical to Lichen's ...
            let py = [UInt8](try Data(contentsOf: dir.appendingPathComponent("py." + type.name)))
            #expect(py.count == lichen[type]!.count, "\(isaName) \(type.name): byte counts differ")
            let firstDiff = zip(py, lichen[type]!).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(firstDiff == nil, "\(isaName) \(type.name): first differing byte at \(firstDiff ?? -1)")
            // ... and Python's bytes, dequantized by Lichen, give the floats gguf-py gives.
            var pyBytes = py
            var lichenOfPy = [Float](repeating: 0, count: rows * k)
            try pyBytes.withUnsafeMutableBytes { qb in
                try lichenOfPy.withUnsafeMutableBytes { db in
                    let qv = try TensorView(base: qb.baseAddress!, byteCount: qb.count, type: type, shape: Shape(rows, k))
                    let dv = try TensorView(base: db.baseAddress!, byteCount: db.count, type: .f32, shape: Shape(rows, k))
                    try kernels.dequantizeRows(qv, into: dv)
                }
            }
            // Lichen-quantized rows dequantize in Python to the floats Lichen gives.
            let pyDeqData = try Data(contentsOf: dir.appendingPathComponent("pydeq." + type.name))
            let pyDeq = pyDeqData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            #expect(pyDeq.count == rows * k)
            let deqMismatch = zip(pyDeq, lichenDeq[type]!).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(deqMismatch == 0, "\(isaName) \(type.name): \(deqMismatch) values dequantize differently in gguf-py")
            let ofPyMismatch = zip(pyDeq, lichenOfPy).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(ofPyMismatch == 0, "\(isaName) \(type.name): Python's bytes dequantize differently in Lichen (\(ofPyMismatch) values)")
        }
    }
}
