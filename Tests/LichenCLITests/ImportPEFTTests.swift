import Foundation
import Lichen
import Testing

/// `lichen import --peft`: a PEFT LoRA adapter made in Python (numpy + safetensors) for an
/// imported fmnist-cnn converts to an adapter file whose outputs, applied unmerged over the base,
/// equal a numpy forward computed from the tensors the safetensors package reads; bad adapters
/// fail with exit status 1 and a message naming the tensor or key.
@Suite("lichen import --peft")
struct ImportPEFTTests {
    /// Writes the base (w.safetensors -> base.gguf) and a PEFT adapter in `dir`/peft; returns base.gguf's path.
    static func fixture(_ dir: URL, rslora: Bool = false, extraConfig: String = "", breakShape: Bool = false) throws -> String {
        try ModelFixtures.writeSafetensors(dir, arch: "cnn", name: "w.safetensors")
        let base = dir.appendingPathComponent("base.gguf").path
        let r = try CLIRunner.run(["import", "--safetensors", dir.appendingPathComponent("w.safetensors").path,
                                   "--arch", "fmnist-cnn", "--out", base, "--name", "peft-test-base"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        try ModelFixtures.python("""
            import sys, os, json, numpy as np
            from safetensors.numpy import save_file
            d, rs, extra, broken = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4] == "1"
            os.makedirs(d + "/peft", exist_ok=True)
            config = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["conv1", "conv2", "fc1", "fc2"],
                      "bias": "none", "use_rslora": rs, "lora_dropout": 0.0, "fan_in_fan_out": False}
            if extra: config.update(json.loads(extra))
            json.dump(config, open(d + "/peft/adapter_config.json", "w"))
            rng = np.random.default_rng(7)
            f = lambda *s: (rng.standard_normal(s) * 0.05).astype(np.float32)
            t = {}
            p = "base_model.model."
            t[p + "conv1.lora_A.weight"] = f(4, 1, 3, 3); t[p + "conv1.lora_B.weight"] = f(32, 4, 1, 1)
            t[p + "conv2.lora_A.weight"] = f(2, 32, 3, 3); t[p + "conv2.lora_B.weight"] = f(64, 2, 1, 1)
            t[p + "fc1.lora_A.weight"] = f(4, 3136); t[p + "fc1.lora_B.weight"] = f(128, 4)
            t[p + "fc2.lora_A.weight"] = f(4, 128); t[p + "fc2.lora_B.weight"] = f(10, 4) if not broken else f(11, 4)
            save_file(t, d + "/peft/adapter_model.safetensors")
            """, [dir.path, rslora ? "1" : "0", extraConfig, breakShape ? "1" : "0"])
        return base
    }

    @Test("outputs over the base equal numpy's forward from the safetensors tensors (two ranks: rank_pattern style)")
    func outputsMatchNumpy() throws {
        let dir = try ModelFixtures.directory()
        let base = try Self.fixture(dir)
        let out = dir.appendingPathComponent("a.gguf").path
        let r = try CLIRunner.run(["import", "--peft", dir.appendingPathComponent("peft").path, "--base", base, "--out", out, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let targets = try #require(doc["targets"] as? [[String: Any]])
        #expect(targets.map { $0["tensor"] as? String ?? "" } == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"])
        #expect(targets.map { $0["rank"] as? Int ?? 0 } == [4, 2, 4, 4])
        #expect(doc["alpha"] as? Double == 8)
        // numpy: the fmnist-cnn forward (inference, running statistics) with every LoRA applied
        // unmerged, y = W x + (lora_alpha / r) B (A x), conv A with the layer's kernel, B 1x1.
        try ModelFixtures.python("""
            import sys, numpy as np
            from safetensors.numpy import load_file
            d = sys.argv[1]
            w = load_file(d + "/w.safetensors")
            lora = load_file(d + "/peft/adapter_model.safetensors")
            alpha = 8.0
            rng = np.random.default_rng(11)
            x = rng.random((3, 1, 28, 28)).astype(np.float32)
            x.astype("<f4").tofile(d + "/x.bin")
            x = x.astype(np.float64)
            def conv(x, k, pad):
                n, c, h, wd = x.shape
                o, _, kh, kw = k.shape
                xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
                oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
                cols = np.stack([xp[:, :, i:i + oh, j:j + ow] for i in range(kh) for j in range(kw)], axis=2)  # n, c, kh*kw, oh, ow
                return np.einsum("nckhw,ock->nohw", cols, k.reshape(o, c, kh * kw).astype(np.float64))
            def lora_conv(x, name, pad):
                a = lora["base_model.model." + name + ".lora_A.weight"].astype(np.float64)
                b = lora["base_model.model." + name + ".lora_B.weight"].astype(np.float64)
                return (alpha / a.shape[0]) * conv(conv(x, a, pad), b, 0)
            def lora_linear(x, name):
                a = lora["base_model.model." + name + ".lora_A.weight"].astype(np.float64)
                b = lora["base_model.model." + name + ".lora_B.weight"].astype(np.float64)
                return (alpha / a.shape[0]) * (x @ a.T) @ b.T
            def bn(x, name):
                g = lambda s: w[name + "." + s].astype(np.float64)[None, :, None, None]
                return (x - g("running_mean")) / np.sqrt(g("running_var") + 1e-5) * g("weight") + g("bias")
            def pool(x):
                n, c, h, wd = x.shape
                return x.reshape(n, c, h // 2, 2, wd // 2, 2).max(axis=(3, 5))
            f64 = lambda k: w[k].astype(np.float64)
            h = conv(x, w["conv1.weight"], 1) + f64("conv1.bias")[None, :, None, None] + lora_conv(x, "conv1", 1)
            h = pool(np.maximum(bn(h, "bn1"), 0))
            h2 = conv(h, w["conv2.weight"], 1) + f64("conv2.bias")[None, :, None, None] + lora_conv(h, "conv2", 1)
            h = pool(np.maximum(bn(h2, "bn2"), 0)).reshape(3, -1)
            h = np.maximum(h @ f64("fc1.weight").T + f64("fc1.bias") + lora_linear(h, "fc1"), 0)
            y = h @ f64("fc2.weight").T + f64("fc2.bias") + lora_linear(h, "fc2")
            y.astype("<f4").tofile(d + "/y.bin")
            """, [dir.path])
        let x = try Self.floats(dir.appendingPathComponent("x.bin"))
        let expected = try Self.floats(dir.appendingPathComponent("y.bin"))
        #expect(x.count == 3 * 784 && expected.count == 30)
        let got = try Self.forward(base: base, adapter: out, input: x, batch: 3)
        var worst: Float = 0
        for i in 0..<min(got.count, expected.count) { worst = max(worst, abs(got[i] - expected[i]) / (1 + abs(expected[i]))) }
        #expect(got.count == 30 && worst < 1e-4, "largest relative difference \(worst)")
        // And the adapter matters: without it the outputs differ.
        let plain = try Self.forward(base: base, adapter: nil, input: x, batch: 3)
        var change: Float = 0
        for i in 0..<min(plain.count, expected.count) { change = max(change, abs(plain[i] - expected[i])) }
        #expect(change > 1e-2, "the adapter changed the logits by only \(change)")
    }

    @Test("use_rslora writes alpha = lora_alpha * sqrt(r); the file names its base and PEFT provenance (gguf-py)")
    func rsLoRA() throws {
        let dir = try ModelFixtures.directory()
        let base = try Self.fixture(dir, rslora: true, extraConfig: "")
        let out = dir.appendingPathComponent("a.gguf").path
        // conv2 has rank 2, the others 4: one alpha cannot express rsLoRA's scaling.
        let mixed = try CLIRunner.run(["import", "--peft", dir.appendingPathComponent("peft").path, "--base", base, "--out", out])
        #expect(mixed.status == 1 && mixed.stderr.contains("use_rslora"), "stderr: \(mixed.stderr)")
        try ModelFixtures.python("""
            import sys, numpy as np
            from safetensors.numpy import load_file, save_file
            d = sys.argv[1]
            t = load_file(d + "/peft/adapter_model.safetensors")
            t = {k: v for k, v in t.items() if ".conv2." not in k}
            save_file(t, d + "/peft/adapter_model.safetensors")
            """, [dir.path])
        let r = try CLIRunner.run(["import", "--peft", dir.appendingPathComponent("peft").path, "--base", base, "--out", out, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let output = try ModelFixtures.python("""
            import sys, numpy as np, gguf
            from safetensors.numpy import load_file
            d = sys.argv[1]
            r = gguf.GGUFReader(d + "/a.gguf")
            def field(k):
                f = r.fields[k]
                return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]]
            assert field("general.type") == "adapter" and field("adapter.type") == "lora"
            assert abs(float(field("adapter.lora.alpha")) - 16.0) < 1e-6, field("adapter.lora.alpha")
            assert field("lichen.adapter.base.name") == "peft-test-base"
            assert bool(field("lichen.import.peft.use_rslora"))
            src = load_file(d + "/peft/adapter_model.safetensors")
            for t in r.tensors:
                layer, half = t.name.rsplit(".", 1)[0].rsplit(".", 1)[0], t.name.rsplit(".", 1)[1]
                want = src["base_model.model." + layer + (".lora_A.weight" if half == "lora_a" else ".lora_B.weight")]
                want = want.reshape(want.shape[0], -1)
                assert list(reversed([int(s) for s in t.shape])) == list(want.shape), (t.name, t.shape, want.shape)
                assert np.array_equal(np.asarray(t.data).reshape(-1), want.reshape(-1)), t.name
            print("OK", len(r.tensors))
            """, [dir.path])
        #expect(output.contains("OK 6"), "gguf-py check: \(output)")
    }

    @Test("a shape the base does not have, a module it does not have, and DoRA are refused (exit 1, message names them)")
    func refusals() throws {
        let dir = try ModelFixtures.directory()
        let base = try Self.fixture(dir, breakShape: true)
        let peft = dir.appendingPathComponent("peft").path
        let out = dir.appendingPathComponent("a.gguf").path
        let shape = try CLIRunner.run(["import", "--peft", peft, "--base", base, "--out", out])
        #expect(shape.status == 1 && shape.stderr.contains("base_model.model.fc2.lora_B.weight") && shape.stderr.contains("[11, 4]"),
                "stderr: \(shape.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let dora = try ModelFixtures.directory()
        let base2 = try Self.fixture(dora, extraConfig: "{\"use_dora\": true}")
        let r = try CLIRunner.run(["import", "--peft", dora.appendingPathComponent("peft").path, "--base", base2, "--out", out])
        #expect(r.status == 1 && r.stderr.contains("use_dora"), "stderr: \(r.stderr)")
        try ModelFixtures.python("""
            import sys, numpy as np
            from safetensors.numpy import load_file, save_file
            d = sys.argv[1]
            t = load_file(d + "/peft/adapter_model.safetensors")
            t["base_model.model.head.lora_A.weight"] = np.zeros((2, 10), np.float32)
            t["base_model.model.head.lora_B.weight"] = np.zeros((3, 2), np.float32)
            save_file(t, d + "/peft/adapter_model.safetensors")
            import json; c = json.load(open(d + "/peft/adapter_config.json")); c["use_dora"] = False
            json.dump(c, open(d + "/peft/adapter_config.json", "w"))
            """, [dora.path])
        let module = try CLIRunner.run(["import", "--peft", dora.appendingPathComponent("peft").path, "--base", base2, "--out", out])
        #expect(module.status == 1 && module.stderr.contains("module 'head'"), "stderr: \(module.stderr)")
        let usage = try CLIRunner.run(["import", "--peft", peft, "--out", out])
        #expect(usage.status == 64 || usage.status == 2, "missing --base is a usage error: \(usage.status) \(usage.stderr)")
    }

    static func floats(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }

    /// Logits of the model at `base` with the adapter file at `adapter` (scale 1), through Lichen's API.
    static func forward(base: String, adapter: String?, input: [Float], batch: Int) throws -> [Float] {
        let file = try GGUFFile(path: base)
        let spec = try ModelFile.readSpec(file)
        let arena = try Arena(byteCount: 64 << 20)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
        let graph = try Graph(spec: spec, store: store, batchSize: batch, arena: arena)
        var set: AdapterSet? = nil
        if let adapter {
            let a = try AdapterFile.read(path: adapter, arena: arena)
            set = try AdapterSet(members: [AdapterSet.Member(a)], graph: graph,
                                 base: try AdapterBase(name: try file.string("general.name"), store: store), arena: arena)
        }
        let x = try arena.persistentTensor(.f32, try Shape(batch, 1, 28, 28))
        try x.copy(from: input)
        return try graph.forward(input: x, adapters: set).toArray()
    }
}
