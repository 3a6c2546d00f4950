import Foundation
import Testing

/// `lichen quantize`: the quantized weights are byte-identical to gguf-py's
/// `gguf.quants.quantize` of the same f32 weights, rows that are not whole 32-value blocks stay
/// f32, norms and biases stay f32, metadata is copied, `--json` prints one document.
@Suite("lichen quantize")
struct QuantizeCommandTests {
    /// An f32 fmnist-cnn model made by `lichen import` in a fresh directory.
    static func cnnModel() throws -> URL {
        let dir = try ModelFixtures.directory()
        try ModelFixtures.writeSafetensors(dir, arch: "cnn", name: "w.safetensors")
        let r = try CLIRunner.run(["import", "--safetensors", dir.appendingPathComponent("w.safetensors").path,
                                   "--arch", "fmnist-cnn", "--out", dir.appendingPathComponent("m.gguf").path])
        guard r.status == 0 else { throw ModelFixtures.PythonFailure(description: "import failed: \(r.stderr)") }
        return dir
    }

    @Test("Q8_0 and Q4_0 weights equal gguf-py's quantize of the f32 weights; 9-value rows stay f32",
          arguments: ["q8_0", "q4_0"])
    func bytesMatchGGUFPy(_ type: String) throws {
        let dir = try Self.cnnModel()
        let out = dir.appendingPathComponent("m-\(type).gguf").path
        let r = try CLIRunner.run(["quantize", "--model", dir.appendingPathComponent("m.gguf").path, "--type", type, "--out", out])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("kept f32: rows of 9 values are not a multiple of 32"), "stdout: \(r.stdout)")
        let output = try ModelFixtures.python("""
            import sys, numpy as np, gguf
            from gguf.quants import quantize
            d, kind = sys.argv[1], sys.argv[2]
            qtype = gguf.GGMLQuantizationType.Q8_0 if kind == "q8_0" else gguf.GGMLQuantizationType.Q4_0
            src = {t.name: t for t in gguf.GGUFReader(d + "/m.gguf").tensors}
            r = gguf.GGUFReader(d + "/m-" + kind + ".gguf")
            dst = {t.name: t for t in r.tensors}
            assert sorted(src) == sorted(dst)
            assert int(r.fields["general.quantization_version"].contents()) == 2
            assert r.fields["lichen.quantize.type"].contents() == kind
            assert r.fields["lichen.import.source"].contents() == "w.safetensors"
            assert int(r.fields["lichen.layer_count"].contents()) == 12
            for name in ["conv2.weight", "fc1.weight", "fc2.weight"]:
                w = np.asarray(src[name].data, dtype=np.float32)
                w = w.reshape(w.shape[0], -1)          # conv: [out, in*kh*kw]
                t = dst[name]
                assert t.tensor_type == qtype, (name, t.tensor_type)
                assert list(reversed([int(x) for x in t.shape])) == list(w.shape), (name, t.shape)
                want = quantize(w, qtype).tobytes()
                got = np.asarray(t.data).tobytes()
                assert got == want, name + ": bytes differ from gguf.quants.quantize"
            for name, t in dst.items():
                if name in ("conv2.weight", "fc1.weight", "fc2.weight"):
                    continue
                assert t.tensor_type == gguf.GGMLQuantizationType.F32, (name, t.tensor_type)
                assert np.asarray(t.data).tobytes() == np.asarray(src[name].data).tobytes(), name + " changed"
            assert [int(x) for x in dst["conv1.weight"].shape] == [3, 3, 1, 32]
            print("OK")
            """, [dir.path, type])
        #expect(output.contains("OK"), "gguf-py check: \(output)")
    }

    @Test("--json prints one document with every tensor, the error measures and the byte counts")
    func json() throws {
        let dir = try Self.cnnModel()
        let out = dir.appendingPathComponent("q.gguf").path
        let r = try CLIRunner.run(["quantize", "--model", dir.appendingPathComponent("m.gguf").path, "--type", "q8_0",
                                   "--out", out, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(doc["type"] as? String == "q8_0")
        let tensors = try #require(doc["tensors"] as? [[String: Any]])
        #expect(tensors.count == 16)
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0["name"] as? String ?? "", $0) })
        let conv1 = try #require(byName["conv1.weight"])
        #expect(conv1["type_after"] as? String == "f32" && conv1["quantized"] as? Bool == false)
        #expect(conv1["bytes_after"] as? Int == 32 * 9 * 4)
        let conv2 = try #require(byName["conv2.weight"])
        #expect(conv2["type_after"] as? String == "q8_0")
        #expect(conv2["shape_before"] as? [Int] == [64, 32, 3, 3] && conv2["shape_after"] as? [Int] == [64, 288])
        #expect(conv2["bytes_before"] as? Int == 64 * 288 * 4 && conv2["bytes_after"] as? Int == 64 * 9 * 34)
        let relative = try #require(conv2["relative_rms_error"] as? Double)
        let relativeMax = try #require(conv2["relative_max_abs_error"] as? Double)
        // Q8_0 rounds to 1/127 of each block's max: small, but not zero.
        #expect(relative > 0 && relative < 0.02 && relativeMax >= relative, "\(conv2)")
        #expect(byName["bn1.running_var"]?["type_after"] as? String == "f32")
        #expect(byName["fc2.bias"]?["note"] as? String == "bias: stays f32")
        let before = try #require(doc["tensor_bytes_before"] as? Int), after = try #require(doc["tensor_bytes_after"] as? Int)
        #expect(after < before / 3)
    }

    @Test("a quantized model is refused; a bad --type is a usage error; a missing model fails")
    func refusals() throws {
        let dir = try Self.cnnModel()
        let q = dir.appendingPathComponent("q.gguf").path
        var r = try CLIRunner.run(["quantize", "--model", dir.appendingPathComponent("m.gguf").path, "--type", "q4_0", "--out", q])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        r = try CLIRunner.run(["quantize", "--model", q, "--type", "q8_0", "--out", dir.appendingPathComponent("qq.gguf").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("tensor 'conv2.weight' is already q4_0"), "stderr: \(r.stderr)")
        r = try CLIRunner.run(["quantize", "--model", q, "--type", "q5_1", "--out", "x.gguf"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--type must be q8_0 or q4_0"), "stderr: \(r.stderr)")
        r = try CLIRunner.run(["quantize", "--model", dir.appendingPathComponent("missing.gguf").path, "--type", "q8_0",
                               "--out", dir.appendingPathComponent("x.gguf").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("missing.gguf") && r.stderr.contains("open"), "stderr: \(r.stderr)")
    }

    @Test("a model written by gguf-py quantizes; provenance is copied, lichen.eval.* is not")
    func metadata() throws {
        let dir = try ModelFixtures.directory()
        _ = try ModelFixtures.python("""
            import sys, numpy as np, gguf
            d = sys.argv[1]
            w = gguf.GGUFWriter(d + "/py.gguf", "lichen")
            w.add_name("from python")
            w.add_string("lichen.arch", "probe")
            w.add_array("lichen.input_shape", [64])
            w.add_uint32("lichen.class_count", 2)
            w.add_uint32("lichen.layer_count", 1)
            w.add_string("lichen.layer.0.kind", "linear")
            w.add_string("lichen.layer.0.name", "fc")
            w.add_array("lichen.layer.0.inputs", [-1])
            w.add_uint32("lichen.layer.0.outputs", 2)
            w.add_bool("lichen.layer.0.bias", False)
            w.add_uint64("lichen.train.seed", 7)
            w.add_float32("lichen.eval.clean_accuracy", 0.5)
            w.add_tensor("fc.weight", np.linspace(-1, 1, 128, dtype=np.float32).reshape(2, 64))
            w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
            """, [dir.path])
        let r = try CLIRunner.run(["quantize", "--model", dir.appendingPathComponent("py.gguf").path, "--type", "q8_0",
                                   "--out", dir.appendingPathComponent("q.gguf").path])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("lichen.eval.clean_accuracy"), "stderr: \(r.stderr)")
        let output = try ModelFixtures.python("""
            import sys, numpy as np, gguf
            from gguf.quants import quantize
            r = gguf.GGUFReader(sys.argv[1] + "/q.gguf")
            assert r.fields["general.name"].contents() == "from python"
            assert int(r.fields["lichen.train.seed"].contents()) == 7
            assert "lichen.eval.clean_accuracy" not in r.fields
            t = r.tensors[0]
            want = quantize(np.linspace(-1, 1, 128, dtype=np.float32).reshape(2, 64), gguf.GGMLQuantizationType.Q8_0)
            assert np.asarray(t.data).tobytes() == want.tobytes()
            print("OK")
            """, [dir.path])
        #expect(output.contains("OK"), "gguf-py check: \(output)")
    }
}
