import Foundation
import Testing

/// `lichen import`: safetensors written by the Python `safetensors` package (numpy backend)
/// import, and the GGUF file, read back by gguf-py's GGUFReader, holds the same values; bad
/// safetensors and architecture files fail with exit status 1 and a message naming the tensor.
@Suite("lichen import")
struct ImportCommandTests {
    @Test("fmnist-mlp weights from safetensors arrive unchanged in the GGUF file (read by gguf-py)")
    func mlpRoundTrip() throws {
        let dir = try ModelFixtures.directory()
        try ModelFixtures.writeSafetensors(dir, arch: "mlp", name: "w.safetensors")
        let out = dir.appendingPathComponent("m.gguf").path
        let r = try CLIRunner.run(["import", "--safetensors", dir.appendingPathComponent("w.safetensors").path,
                                   "--arch", "fmnist-mlp", "--out", out, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let tensors = try #require(doc["tensors"] as? [[String: Any]])
        #expect(tensors.map { $0["name"] as? String ?? "" } == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"])
        let output = try ModelFixtures.python("""
            import sys, numpy as np, gguf
            from safetensors.numpy import load_file
            d = sys.argv[1]
            src = load_file(d + "/w.safetensors")
            r = gguf.GGUFReader(d + "/m.gguf")
            def field(k):
                f = r.fields[k]
                return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]]
            assert field("general.architecture") == "lichen", field("general.architecture")
            assert int(field("lichen.layer_count")) == 6
            assert list(field("lichen.input_shape")) == [1, 28, 28]
            assert field("lichen.layer.1.kind") == "linear" and field("lichen.layer.1.name") == "fc1"
            assert "general.quantization_version" not in r.fields
            names = [t.name for t in r.tensors]
            assert sorted(names) == sorted(src.keys()), names
            for t in r.tensors:
                want = src[t.name]
                assert t.tensor_type == gguf.GGMLQuantizationType.F32, t.tensor_type
                assert list(reversed([int(x) for x in t.shape])) == list(want.shape), (t.name, t.shape)
                assert np.array_equal(np.asarray(t.data).reshape(-1), want.reshape(-1)), t.name
            print("OK")
            """, [dir.path])
        #expect(output.contains("OK"), "gguf-py check: \(output)")
    }

    @Test("F16 weights are widened exactly; num_batches_tracked is ignored (fmnist-cnn)")
    func cnnHalfPrecision() throws {
        let dir = try ModelFixtures.directory()
        try ModelFixtures.writeSafetensors(dir, arch: "cnn", name: "w.safetensors", halfConv2: true)
        let out = dir.appendingPathComponent("m.gguf").path
        let r = try CLIRunner.run(["import", "--safetensors", dir.appendingPathComponent("w.safetensors").path,
                                   "--arch", "fmnist-cnn", "--out", out, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect((doc["ignored"] as? [String])?.sorted() == ["bn1.num_batches_tracked", "bn2.num_batches_tracked"])
        let output = try ModelFixtures.python("""
            import sys, numpy as np, gguf
            from safetensors.numpy import load_file
            d = sys.argv[1]
            src = load_file(d + "/w.safetensors")
            r = gguf.GGUFReader(d + "/m.gguf")
            assert src["conv2.weight"].dtype == np.float16
            for t in r.tensors:
                want = src[t.name].astype(np.float32)
                assert np.array_equal(np.asarray(t.data).reshape(-1), want.reshape(-1)), t.name
            assert len(r.tensors) == 16
            print("OK")
            """, [dir.path])
        #expect(output.contains("OK"), "gguf-py check: \(output)")
    }

    @Test("an architecture JSON file with source names (nn.Sequential indices) imports")
    func architectureFile() throws {
        let dir = try ModelFixtures.directory()
        let arch = """
            {"architecture": "tiny", "input_shape": [2, 6, 6], "class_count": 3,
             "layers": [
               {"kind": "conv2d", "name": "conv", "source": "features.0", "outputs": 4, "kernel": 3, "padding": 1, "bias": false},
               {"kind": "batch_norm", "name": "bn", "source": "features.1", "epsilon": 0.001},
               {"kind": "relu", "name": "act"},
               {"kind": "max_pool2d", "name": "pool", "kernel": 2},
               {"kind": "add", "name": "sum", "inputs": ["pool", "pool"]},
               {"kind": "flatten", "name": "flat"},
               {"kind": "linear", "name": "head", "source": "classifier", "outputs": 3}
             ]}
            """
        try arch.write(to: dir.appendingPathComponent("tiny.json"), atomically: true, encoding: .utf8)
        _ = try ModelFixtures.python("""
            import sys, numpy as np
            from safetensors.numpy import save_file
            rng = np.random.default_rng(7)
            f = lambda *s: rng.standard_normal(s).astype(np.float32)
            save_file({"features.0.weight": f(4, 2, 3, 3), "features.1.weight": f(4), "features.1.bias": f(4),
                       "features.1.running_mean": f(4), "features.1.running_var": np.abs(f(4)),
                       "features.1.num_batches_tracked": np.array(3, dtype=np.int64),
                       "classifier.weight": f(3, 36), "classifier.bias": f(3)}, sys.argv[1] + "/t.safetensors")
            """, [dir.path])
        let out = dir.appendingPathComponent("t.gguf").path
        let r = try CLIRunner.run(["import", "--safetensors", dir.appendingPathComponent("t.safetensors").path,
                                   "--arch", dir.appendingPathComponent("tiny.json").path, "--out", out])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("features.1.running_var"))
        let inspect = try CLIRunner.run(["inspect", "--model", out, "--json"])
        #expect(inspect.status == 0, "stderr: \(inspect.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
        let layers = try #require(doc["layers"] as? [[String: Any]])
        #expect(layers.map { $0["output_shape"] as? [Int] ?? [] } == [[4, 6, 6], [4, 6, 6], [4, 6, 6], [4, 3, 3], [4, 3, 3], [36], [3]])
        #expect(layers[4]["inputs"] as? [Int] == [3, 3])
        let tensors = try #require(doc["tensors"] as? [[String: Any]])
        #expect(tensors.map { $0["name"] as? String ?? "" } == ["conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                                                                "bn.running_var", "head.weight", "head.bias"])
    }

    @Test("bad safetensors fail with status 1 and name the tensor", arguments: [
        ("truncated", "fc3.weight"),
        ("overlap", "overlaps tensor"),
        ("f64", "'fc1.weight' has dtype F64"),
        ("missing", "missing tensor 'fc2.bias'"),
        ("transposed", "'fc1.weight' has shape [784, 256], the architecture needs [256, 784]"),
        ("extra", "unexpected tensor 'fc4.weight'"),
        ("sizes", "'fc1.bias': data_offsets"),
        ("header", "header length"),
        ("nan", "tensor 'fc2.weight' element 517 is NaN or infinite"),
        ("inf16", "tensor 'fc1.bias' element 3 is NaN or infinite"),
        ("nanbf16", "tensor 'fc3.bias' element 9 is NaN or infinite"),
    ])
    func badSafetensors(_ kind: String, _ message: String) throws {
        let dir = try ModelFixtures.directory()
        _ = try ModelFixtures.python("""
            import sys, json, struct, numpy as np
            from safetensors.numpy import save_file
            d, kind = sys.argv[1], sys.argv[2]
            rng = np.random.default_rng(3)
            w = {}
            for n, (o, i) in {"fc1": (256, 784), "fc2": (128, 256), "fc3": (10, 128)}.items():
                w[n + ".weight"] = rng.standard_normal((o, i)).astype(np.float32)
                w[n + ".bias"] = rng.standard_normal((o,)).astype(np.float32)
            path = d + "/bad.safetensors"
            def raw(header, data):
                h = json.dumps(header).encode()
                open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
            if kind == "truncated":
                save_file(w, path)
                b = open(path, "rb").read()
                open(path, "wb").write(b[:-64])
            elif kind == "overlap":
                raw({"fc3.bias": {"dtype": "F32", "shape": [10], "data_offsets": [0, 40]},
                     "fc2.bias": {"dtype": "F32", "shape": [128], "data_offsets": [20, 532]}}, bytes(532))
            elif kind == "f64":
                w["fc1.weight"] = w["fc1.weight"].astype(np.float64); save_file(w, path)
            elif kind == "missing":
                del w["fc2.bias"]; save_file(w, path)
            elif kind == "transposed":
                w["fc1.weight"] = np.ascontiguousarray(w["fc1.weight"].T); save_file(w, path)
            elif kind == "extra":
                w["fc4.weight"] = np.zeros((2, 2), np.float32); save_file(w, path)
            elif kind == "sizes":
                raw({"fc1.bias": {"dtype": "F32", "shape": [256], "data_offsets": [0, 1000]}}, bytes(1024))
            elif kind == "header":
                open(path, "wb").write(struct.pack("<Q", 1 << 40) + b"{}")
            elif kind == "nan":
                w["fc2.weight"].flat[517] = np.nan; save_file(w, path)
            elif kind == "inf16":
                w["fc1.bias"] = w["fc1.bias"].astype(np.float16); w["fc1.bias"][3] = np.inf; save_file(w, path)
            elif kind == "nanbf16":
                b = w["fc3.bias"].view(np.uint32) >> 16
                b = b.astype(np.uint16); b[9] = 0x7FC0
                h = {}; data = b""
                for n, a in w.items():
                    if n == "fc3.bias":
                        raw_bytes, dt = b.tobytes(), "BF16"
                    else:
                        raw_bytes, dt = a.tobytes(), "F32"
                    h[n] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [len(data), len(data) + len(raw_bytes)]}
                    data += raw_bytes
                raw(h, data)
            """, [dir.path, kind])
        let r = try CLIRunner.run(["import", "--safetensors", dir.appendingPathComponent("bad.safetensors").path,
                                   "--arch", "fmnist-mlp", "--out", dir.appendingPathComponent("m.gguf").path])
        #expect(r.status == 1, "\(kind): status \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.contains(message), "\(kind): stderr: \(r.stderr)")
        #expect(r.stderr.contains("bad.safetensors"), "\(kind): the message names no file: \(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("m.gguf").path), "\(kind): a file was written")
    }

    @Test("truncations anywhere (length field, header, data) fail with status 1, never a crash")
    func truncations() throws {
        let dir = try ModelFixtures.directory()
        try ModelFixtures.writeSafetensors(dir, arch: "mlp", name: "w.safetensors")
        let whole = try Data(contentsOf: dir.appendingPathComponent("w.safetensors"))
        let headerEnd = 8 + Int(whole.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) })
        let cuts = [0, 1, 7, 8, 9, headerEnd / 2, headerEnd - 1, headerEnd, headerEnd + 1, whole.count / 2, whole.count - 1]
        for cut in cuts {
            let path = dir.appendingPathComponent("cut-\(cut).safetensors")
            try whole.prefix(cut).write(to: path)
            let r = try CLIRunner.run(["import", "--safetensors", path.path, "--arch", "fmnist-mlp",
                                       "--out", dir.appendingPathComponent("m.gguf").path])
            #expect(r.status == 1, "cut at \(cut): status \(r.status), stderr: \(r.stderr)")
            #expect(r.stderr.contains("cut-\(cut).safetensors"), "cut at \(cut): \(r.stderr)")
        }
    }

    @Test("bad architecture files fail with status 1; an unknown --arch name is a usage error")
    func badArchitecture() throws {
        let dir = try ModelFixtures.directory()
        try ModelFixtures.writeSafetensors(dir, arch: "mlp", name: "w.safetensors")
        let cases: [(String, String)] = [
            (#"{"architecture": "x", "input_shape": [4], "class_count": 2, "layers": [{"kind": "dense", "name": "a"}]}"#,
             "layers[0]: unknown kind 'dense'"),
            (#"{"architecture": "x", "input_shape": [4], "class_count": 2, "layers": [{"kind": "linear", "name": "a", "outputs": 2, "kernal": 3}]}"#,
             "layers[0]: unknown key 'kernal'"),
            (#"{"architecture": "x", "input_shape": [4], "class_count": 3, "layers": [{"kind": "linear", "name": "a", "outputs": 2}]}"#,
             "the last layer's output must be [class_count]"),
            (#"{"architecture": "x", "input_shape": [4], "class_count": 2, "layers": [{"kind": "relu", "name": "a", "inputs": [4]}, {"kind": "linear", "name": "b", "outputs": 2}]}"#,
             "'lichen.layer.0.inputs' = [4]"),
            ("[1, 2]", "the architecture file is not a JSON object"),
        ]
        for (i, (text, message)) in cases.enumerated() {
            let path = dir.appendingPathComponent("a\(i).json")
            try text.write(to: path, atomically: true, encoding: .utf8)
            let r = try CLIRunner.run(["import", "--safetensors", dir.appendingPathComponent("w.safetensors").path,
                                       "--arch", path.path, "--out", dir.appendingPathComponent("m.gguf").path])
            #expect(r.status == 1, "case \(i): status \(r.status), stderr: \(r.stderr)")
            #expect(r.stderr.contains(message) && r.stderr.contains("a\(i).json"), "case \(i): stderr: \(r.stderr)")
        }
        let r = try CLIRunner.run(["import", "--safetensors", "w.safetensors", "--arch", "resnet50", "--out", "m.gguf"])
        #expect(r.status == 2, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("--arch must be fmnist-cnn, fmnist-mlp or a .json architecture file"))
    }
}

/// Shared fixtures of the model-file command tests: temporary directories, python3 with numpy,
/// safetensors and gguf (ports/host/setup installs them), seeded weights of the built-in architectures.
enum ModelFixtures {
    struct PythonFailure: Error, CustomStringConvertible { let description: String }

    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs `script` with python3 and `arguments`; returns stdout, throws with stderr on failure.
    @discardableResult
    static func python(_ script: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PythonFailure(description: "python3 failed (needs numpy, safetensors, gguf: run ports/host/setup):\n"
                                + String(decoding: e, as: UTF8.self))
        }
        return String(decoding: o, as: UTF8.self)
    }

    /// Seeded PyTorch-shaped weights of fmnist-`arch` ("mlp" or "cnn"), saved with safetensors.numpy.
    /// The CNN's batch norms carry num_batches_tracked (int64); `halfConv2` stores conv2.weight as F16.
    static func writeSafetensors(_ dir: URL, arch: String, name: String, halfConv2: Bool = false) throws {
        try python("""
            import sys, numpy as np
            from safetensors.numpy import save_file
            d, arch, name, half = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
            rng = np.random.default_rng(2024)
            f = lambda *s: (rng.standard_normal(s) * 0.1).astype(np.float32)
            w = {}
            if arch == "mlp":
                for n, (o, i) in {"fc1": (256, 784), "fc2": (128, 256), "fc3": (10, 128)}.items():
                    w[n + ".weight"] = f(o, i); w[n + ".bias"] = f(o)
            else:
                w["conv1.weight"] = f(32, 1, 3, 3); w["conv1.bias"] = f(32)
                w["conv2.weight"] = f(64, 32, 3, 3); w["conv2.bias"] = f(64)
                for b, c in (("bn1", 32), ("bn2", 64)):
                    w[b + ".weight"] = 1 + f(c); w[b + ".bias"] = f(c)
                    w[b + ".running_mean"] = f(c); w[b + ".running_var"] = 1 + np.abs(f(c))
                    w[b + ".num_batches_tracked"] = np.array(100, dtype=np.int64)
                w["fc1.weight"] = f(128, 3136); w["fc1.bias"] = f(128)
                w["fc2.weight"] = f(10, 128); w["fc2.bias"] = f(10)
                if half:
                    w["conv2.weight"] = w["conv2.weight"].astype(np.float16)
            save_file(w, d + "/" + name)
            """, [dir.path, arch, name, halfConv2 ? "1" : "0"])
    }
}
