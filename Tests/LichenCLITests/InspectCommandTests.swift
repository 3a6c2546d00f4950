import Foundation
import Testing

/// `lichen inspect`: `--json` is one document whose layers and tensors match the file (tensors
/// checked against gguf-py's reader); invalid files exit 1 naming the file and the key.
@Suite("lichen inspect")
struct InspectCommandTests {
    @Test("--json: one document with layers, tensors (as gguf-py reads them), bytes by type and memory")
    func json() throws {
        let dir = try QuantizeCommandTests.cnnModel()
        let model = dir.appendingPathComponent("q.gguf").path
        let q = try CLIRunner.run(["quantize", "--model", dir.appendingPathComponent("m.gguf").path, "--type", "q8_0", "--out", model])
        #expect(q.status == 0, "stderr: \(q.stderr)")
        for load in ["map", "read"] {
            let r = try CLIRunner.run(["inspect", "--model", model, "--json", "--load", load])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            #expect(doc["architecture"] as? String == "fmnist-cnn")
            #expect(doc["input_shape"] as? [Int] == [1, 28, 28] && doc["class_count"] as? Int == 10)
            let layers = try #require(doc["layers"] as? [[String: Any]])
            #expect(layers.map { $0["name"] as? String ?? "" } == ["conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2",
                                                                   "pool2", "flatten", "fc1", "relu3", "fc2"])
            #expect(layers[7]["output_shape"] as? [Int] == [64, 7, 7] && layers[8]["output_shape"] as? [Int] == [3136])
            let attributes = try #require(layers[0]["attributes"] as? [String: Any])
            #expect(attributes["kernel"] as? [Int] == [3, 3] && attributes["padding"] as? [Int] == [1, 1])
            let fileBytes = try #require(doc["file_bytes"] as? Int)
            let size = try #require(try FileManager.default.attributesOfItem(atPath: model)[.size] as? NSNumber)
            #expect(fileBytes == size.intValue)
            let memory = try #require(doc["memory"] as? [String: Any])
            #expect(memory["mapped_bytes"] as? Int == (load == "map" ? fileBytes : 0))
            #expect(memory["copied_bytes"] as? Int == (load == "read" ? fileBytes : 0))
            let byType = try #require(doc["bytes_by_type"] as? [String: Int])
            #expect(byType["q8_0"] == 64 * 9 * 34 + 128 * 98 * 34 + 10 * 4 * 34, "\(byType)")

            let tensors = try #require(doc["tensors"] as? [[String: Any]])
            let listing = tensors.map { t in
                "\(t["name"] as? String ?? "") \(t["type"] as? String ?? "") \(t["shape"] as? [Int] ?? []) \(t["bytes"] as? Int ?? -1) \(t["offset"] as? Int ?? -1)"
            }.joined(separator: "\n")
            let expected = try ModelFixtures.python("""
                import sys, gguf
                r = gguf.GGUFReader(sys.argv[1])
                for t in r.tensors:
                    shape = list(reversed([int(x) for x in t.shape]))
                    print(t.name, t.tensor_type.name.lower(), "[" + ", ".join(map(str, shape)) + "]", int(t.n_bytes), int(t.data_offset))
                """, [model])
            #expect(listing == expected.trimmingCharacters(in: .whitespacesAndNewlines), "Lichen:\n\(listing)\ngguf-py:\n\(expected)")
        }
    }

    @Test("the table names every layer and tensor")
    func table() throws {
        let dir = try QuantizeCommandTests.cnnModel()
        let r = try CLIRunner.run(["inspect", "--model", dir.appendingPathComponent("m.gguf").path])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        for text in ["fmnist-cnn", "max_pool2d", "[64, 7, 7]", "bn2.running_var", "mapped read-only", "lichen.import.source"] {
            #expect(r.stdout.contains(text), "missing \(text): \(r.stdout)")
        }
    }

    @Test("files that are not valid Lichen models exit 1 naming the file and the key")
    func invalid() throws {
        let dir = try ModelFixtures.directory()
        _ = try ModelFixtures.python("""
            import sys, numpy as np, gguf
            d = sys.argv[1]
            w = gguf.GGUFWriter(d + "/llama.gguf", "llama")
            w.add_tensor("x", np.zeros(4, np.float32))
            w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
            w = gguf.GGUFWriter(d + "/broken.gguf", "lichen")
            w.add_string("lichen.arch", "x")
            w.add_array("lichen.input_shape", [4])
            w.add_uint32("lichen.class_count", 2)
            w.add_uint32("lichen.layer_count", 1)
            w.add_string("lichen.layer.0.kind", "linear")
            w.add_string("lichen.layer.0.name", "fc")
            w.add_array("lichen.layer.0.inputs", [-1])
            w.add_uint32("lichen.layer.0.outputs", 2)
            w.add_bool("lichen.layer.0.bias", True)
            w.add_tensor("fc.weight", np.zeros((4, 2), np.float32))
            w.add_tensor("fc.bias", np.zeros(2, np.float32))
            w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
            open(d + "/garbage.gguf", "wb").write(b"GGUF" + bytes([3, 0, 0, 0]) + bytes(4))
            """, [dir.path])
        let cases = [
            ("llama.gguf", "'general.architecture' = \"llama\": not a Lichen model file"),
            ("broken.gguf", "tensor 'fc.weight' has shape [4, 2], expected [2, 4]"),
            ("garbage.gguf", "malformed file at byte offset"),
            ("absent.gguf", "file error: open on"),
        ]
        for (name, message) in cases {
            let r = try CLIRunner.run(["inspect", "--model", dir.appendingPathComponent(name).path, "--json"])
            #expect(r.status == 1, "\(name): status \(r.status)")
            #expect(r.stderr.contains(name) && r.stderr.contains(message), "\(name): stderr: \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(name): stdout: \(r.stdout)")
        }
        let r = try CLIRunner.run(["inspect", "--model", "m.gguf", "--load", "copy"])
        #expect(r.status == 2)
    }
}
