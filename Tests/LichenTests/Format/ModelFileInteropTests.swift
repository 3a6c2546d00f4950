import Foundation
import Lichen
import Testing

/// Lichen model files as gguf-py sees them: every `lichen.*` key has the type the schema
/// (Format/README.md) gives it, tensors have Lichen's shapes (ggml's `ne` reversed) and values.
@Suite("Model files with gguf-py")
struct ModelFileInteropTests {
    /// conv1d, group norm, layer norm and a linear layer without bias on a [4, 16] input.
    static var sequenceSpec: ModelSpec {
        get throws {
            var c = LayerSpec(kind: .conv1d, name: "conv", inputs: [-1])
            c.outputs = 8; c.kernelW = 3; c.padW = 1; c.groups = 2
            var g = LayerSpec(kind: .groupNorm, name: "gn", inputs: [0])
            g.groups = 4; g.epsilon = 1e-3
            let s = LayerSpec(kind: .silu, name: "act", inputs: [1])
            let ln = LayerSpec(kind: .layerNorm, name: "ln", inputs: [2])
            let f = LayerSpec(kind: .flatten, name: "flat", inputs: [3])
            var fc = LayerSpec(kind: .linear, name: "fc", inputs: [4])
            fc.outputs = 5; fc.hasBias = false
            return ModelSpec(architecture: "seq", inputShape: try Shape(4, 16), classCount: 5, layers: [c, g, s, ln, f, fc])
        }
    }

    @Test("gguf-py reads every key with the schema's type, and the tensors with Lichen's shapes and values")
    func schemaTypes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-modelfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var expected: [String] = []
        for (index, spec) in [ModelSpec.fashionMNISTCNN, try Self.sequenceSpec].enumerated() {
            var tensors: [ModelTensor] = []
            for p in try ModelFile.expectedParameters(spec) {
                let n = p.shape.elementCount ?? 0
                let values = (0..<n).map { Float($0 % 97) * 0.125 - 6 }
                let bytes = values.withUnsafeBytes { Array($0) }
                tensors.append(ModelTensor(name: p.name, type: .f32, shape: p.shape, bytes: bytes))
                expected.append("\(index) \(p.name) \(p.shape.dimensions)")
            }
            try ModelFile.write(spec: spec, name: "interop", tensors: tensors,
                                extras: [ModelMetadataEntry("lichen.train.seed", .uint64(9))],
                                toPath: dir.appendingPathComponent("m\(index).gguf").path)
        }
        let script = """
            import sys, numpy as np, gguf
            T = gguf.GGUFValueType
            types = {"kind": [T.STRING], "name": [T.STRING], "inputs": [T.ARRAY, T.INT32], "outputs": [T.UINT32],
                     "kernel": [T.ARRAY, T.INT32], "stride": [T.ARRAY, T.INT32], "padding": [T.ARRAY, T.INT32],
                     "dilation": [T.ARRAY, T.INT32], "groups": [T.UINT32], "bias": [T.BOOL],
                     "epsilon": [T.FLOAT32], "momentum": [T.FLOAT32]}
            top = {"general.architecture": [T.STRING], "general.name": [T.STRING], "lichen.arch": [T.STRING],
                   "lichen.input_shape": [T.ARRAY, T.INT32], "lichen.class_count": [T.UINT32],
                   "lichen.layer_count": [T.UINT32], "lichen.train.seed": [T.UINT64], "general.alignment": [T.UINT32]}
            for i in range(2):
                r = gguf.GGUFReader(sys.argv[1] + "/m%d.gguf" % i)
                assert r.fields["general.architecture"].contents() == "lichen"
                for k, f in r.fields.items():
                    if k.startswith("GGUF."):
                        continue
                    want = top.get(k) or types[k.split(".")[-1]]
                    assert list(f.types) == want, (k, f.types, want)
                n = int(r.fields["lichen.layer_count"].contents())
                assert "lichen.layer.%d.kind" % (n - 1) in r.fields and "lichen.layer.%d.kind" % n not in r.fields
                for t in r.tensors:
                    shape = list(reversed([int(x) for x in t.shape]))
                    count = int(np.prod(shape))
                    want = (np.arange(count) % 97).astype(np.float32) * 0.125 - 6
                    assert np.array_equal(np.asarray(t.data).reshape(-1), want), t.name
                    print(i, t.name, shape)
            c1 = gguf.GGUFReader(sys.argv[1] + "/m1.gguf").fields
            assert list(c1["lichen.layer.0.kernel"].contents()) == [3] and int(c1["lichen.layer.0.groups"].contents()) == 2
            assert "lichen.layer.5.bias" in c1 and not bool(c1["lichen.layer.5.bias"].contents())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, dir.path]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "gguf-py side failed (needs numpy and gguf: ports/host/setup):\n\(e)")
        #expect(o.trimmingCharacters(in: .whitespacesAndNewlines) == expected.joined(separator: "\n"))
    }
}
