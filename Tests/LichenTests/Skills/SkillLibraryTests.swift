import Foundation
import Lichen
import LichenChecks
import Testing

/// The skill library (Sources/Lichen/Skills/SkillLibrary.swift) on real folders: add, list,
/// remove, load, reopen; refusals naming what and where; parameter isolation (adding,
/// composing and expanding leave every existing skill file byte-identical); the metadata file
/// as the independent `gguf` package reads it. Also runs the core skill checks.
@Suite("Skill library")
struct SkillLibraryTests {
    @Test("the core skill checks pass", arguments: LichenChecks.all.filter { $0.fullName.hasPrefix("Skills/") }.map(\.fullName))
    func coreCheck(_ name: String) throws {
        let check = try #require(LichenChecks.all.first { $0.fullName == name })
        let outcome = check.run()
        #expect(outcome.failures == 0, "\(outcome.failures) of \(outcome.assertions) assertions failed: \(outcome.messages)")
    }

    /// A small base: fc1 (6 -> 16) relu fc2 (16 -> 2), its graph and identity.
    struct Base {
        let arena: Arena
        let store: ParameterStore
        let graph: Graph
        let base: AdapterBase
        let directory: String

        init(seed: UInt64 = 1, name: String = "skill-test-base") throws {
            arena = try Arena(byteCount: 32 << 20)
            var fc1 = LayerSpec(kind: .linear, name: "fc1", inputs: [-1])
            fc1.outputs = 16
            var fc2 = LayerSpec(kind: .linear, name: "fc2", inputs: [1])
            fc2.outputs = 2
            let spec = ModelSpec(architecture: "skill-test", inputShape: try Shape(6), classCount: 2,
                                 layers: [fc1, LayerSpec(kind: .relu, name: "relu1", inputs: [0]), fc2])
            store = ParameterStore(arena: arena)
            try ParameterInitializer.initialize(spec, into: store, seed: seed)
            store.freezeAll()
            graph = try Graph(spec: spec, store: store, batchSize: 4, arena: arena)
            base = try AdapterBase(name: name, store: store)
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-skills-\(UUID().uuidString)").path
        }

        /// A skill over fc1 and fc2 (ranks r1, r2), random A and B from `seed`.
        func skill(_ name: String, seed: UInt64, r1: Int = 4, r2: Int = 2, alpha: Float = 16, trainable: Bool = false) throws -> LoRAAdapter {
            let a = try LoRAAdapter(name: name, base: base, alpha: alpha, shapes: [
                LoRATargetShape(weightName: "fc1.weight", rank: r1, inputCount: 6, outputCount: 16),
                LoRATargetShape(weightName: "fc2.weight", rank: r2, inputCount: 16, outputCount: 2),
            ], trainable: trainable, arena: arena)
            var rng = SplitMix64(seed: seed)
            for t in a.targets {
                try t.a.copy(from: (0..<t.a.elementCount).map { _ in rng.nextFloat(-0.5, 0.5) })
                try t.b.copy(from: (0..<t.b.elementCount).map { _ in rng.nextFloat(-0.5, 0.5) })
            }
            return a
        }
    }

    func files(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        return out
    }

    @Test("add, list, load, remove, reopen")
    func roundTrip() throws {
        let b = try Base()
        defer { try? FileManager.default.removeItem(atPath: b.directory) }
        let lib = try SkillLibrary(directory: b.directory, graph: b.graph, base: b.base, arena: b.arena, create: true)
        #expect(lib.skills.isEmpty)
        let reach = try b.skill("reach", seed: 1)
        let m = try lib.add(reach, name: "reach", purpose: "reach the goal", trainingData: "point-sim reach, seed 1",
                            evaluation: SkillEvaluation(metric: "return", score: 12.5))
        #expect(m.rank == 4 && m.alpha == 16 && m.base == b.base && m.evaluation?.score == 12.5)
        _ = try lib.add(try b.skill("avoid", seed: 2, r1: 2, r2: 1, alpha: 8), name: "avoid", purpose: "keep clear", trainingData: "d2")
        #expect(lib.skills.map(\.name) == ["avoid", "reach"])
        #expect(try files(b.directory).keys.sorted() == ["avoid.lora.gguf", "avoid.skill.gguf", "reach.lora.gguf", "reach.skill.gguf"])
        // Loading gives the values written, bit for bit.
        let loaded = try lib.load("reach")
        for (t, u) in zip(loaded.targets, reach.targets) {
            #expect(try t.a.toArray().map(\.bitPattern) == u.a.toArray().map(\.bitPattern))
            #expect(try t.b.toArray().map(\.bitPattern) == u.b.toArray().map(\.bitPattern))
        }
        #expect(loaded.name == "reach" && loaded.alpha == 16)
        // Reopening lists the same records.
        let again = try SkillLibrary(directory: b.directory, graph: b.graph, base: b.base, arena: b.arena)
        #expect(again.skills == lib.skills)
        // A new evaluation replaces the metadata file only.
        let adapterBytes = try Data(contentsOf: URL(fileURLWithPath: lib.adapterPath("reach")))
        try lib.setEvaluation(SkillEvaluation(metric: "return", score: 20), of: "reach")
        #expect(try Data(contentsOf: URL(fileURLWithPath: lib.adapterPath("reach"))) == adapterBytes)
        #expect(try SkillLibrary(directory: b.directory, graph: b.graph, base: b.base, arena: b.arena).skill(named: "reach")?.evaluation?.score == 20)
        try lib.remove("avoid")
        #expect(lib.skills.map(\.name) == ["reach"])
        #expect(try files(b.directory).keys.sorted() == ["reach.lora.gguf", "reach.skill.gguf"])
        #expect(throws: LichenError.notFound(kind: "skill", name: "avoid")) { try lib.remove("avoid") }
        #expect(throws: LichenError.notFound(kind: "skill", name: "nope")) { _ = try lib.load("nope") }
    }

    @Test("refusals: a name taken, a bad name, another base, another shape, an unknown layer, NaN values")
    func refusals() throws {
        let b = try Base()
        defer { try? FileManager.default.removeItem(atPath: b.directory) }
        let lib = try SkillLibrary(directory: b.directory, graph: b.graph, base: b.base, arena: b.arena, create: true)
        _ = try lib.add(try b.skill("reach", seed: 1), name: "reach", purpose: "", trainingData: "")
        let before = try files(b.directory)
        #expect(throws: LichenError.duplicateName(kind: "skill", name: "reach")) {
            _ = try lib.add(try b.skill("x", seed: 3), name: "reach", purpose: "", trainingData: "")
        }
        #expect(throws: LichenError.invalidModel(key: "general.name", value: "../evil",
                                                 reason: "a skill name is a-z, 0-9, '_' and '-', starting with a letter or digit")) {
            _ = try lib.add(try b.skill("x", seed: 3), name: "../evil", purpose: "", trainingData: "")
        }
        #expect(throws: LichenError.invalidModel(key: "general.name", value: "", reason: "a skill name has 1...40 bytes")) {
            _ = try lib.add(try b.skill("x", seed: 3), name: "", purpose: "", trainingData: "")
        }
        let other = try Base(seed: 2, name: "other-base")
        #expect(throws: LichenError.invalidModel(key: "lichen.adapter.base", value: "other-base",
                                                 reason: "the adapter belongs to another base model")) {
            _ = try lib.add(try other.skill("x", seed: 3), name: "x", purpose: "", trainingData: "")
        }
        let wide = try LoRAAdapter(name: "wide", base: b.base, alpha: 1, shapes: [
            LoRATargetShape(weightName: "fc1.weight", rank: 2, inputCount: 7, outputCount: 16)], arena: b.arena)
        #expect(throws: LichenError.parameterShapeMismatch(tensor: "fc1.weight.lora_a", expected: "[2, 6]", got: "[2, 7]")) {
            _ = try lib.add(wide, name: "wide", purpose: "", trainingData: "")
        }
        let unknown = try LoRAAdapter(name: "u", base: b.base, alpha: 1, shapes: [
            LoRATargetShape(weightName: "fc9.weight", rank: 2, inputCount: 6, outputCount: 16)], arena: b.arena)
        #expect(throws: LichenError.notFound(kind: "LoRA target layer", name: "fc9.weight")) {
            _ = try lib.add(unknown, name: "u", purpose: "", trainingData: "")
        }
        let nan = try b.skill("n", seed: 4)
        try nan.targets[1].b.withFloats { v in v[1] = .nan }
        #expect(throws: LichenError.nonFiniteValue(operand: "LoRA tensor", index: 1)) {
            _ = try lib.add(nan, name: "n", purpose: "", trainingData: "")
        }
        // Nothing was written by the refused adds.
        #expect(try files(b.directory) == before)
        #expect(lib.skills.map(\.name) == ["reach"])
    }

    @Test("a changed, truncated or missing file is refused when the library opens, naming the file")
    func damagedFiles() throws {
        let b = try Base()
        defer { try? FileManager.default.removeItem(atPath: b.directory) }
        let lib = try SkillLibrary(directory: b.directory, graph: b.graph, base: b.base, arena: b.arena, create: true)
        _ = try lib.add(try b.skill("reach", seed: 1), name: "reach", purpose: "p", trainingData: "d")
        let adapterURL = URL(fileURLWithPath: lib.adapterPath("reach")), metaURL = URL(fileURLWithPath: lib.metadataPath("reach"))
        let adapter = try Data(contentsOf: adapterURL), meta = try Data(contentsOf: metaURL)
        func open() throws { _ = try SkillLibrary(directory: b.directory, graph: b.graph, base: b.base, arena: b.arena) }
        // One flipped value byte in the adapter's tensor data: the recorded hash no longer matches.
        var flipped = adapter
        flipped[flipped.count - 3] ^= 0x40
        try flipped.write(to: adapterURL)
        #expect(throws: LichenError.corruptFile(path: lib.adapterPath("reach"), offset: 0,
                                                reason: "the adapter file's bytes differ from those the skill's metadata records")) { try open() }
        // Truncated inside the tensor table: the GGUF reader's offset and reason, with the path.
        try adapter.prefix(adapter.count / 2).write(to: adapterURL)
        do { try open(); Issue.record("a truncated adapter file was taken") } catch let e as LichenError {
            guard case .corruptFile(let path, let offset, _) = e, path == lib.adapterPath("reach"), offset > 0, offset <= adapter.count / 2 else {
                Issue.record("expected .corruptFile naming the adapter and an offset inside it, got \(e)"); return
            }
        }
        // Truncated inside the tensor data (header intact): the size differs from the record.
        try adapter.prefix(adapter.count - 4).write(to: adapterURL)
        #expect(throws: LichenError.self) { try open() }
        try adapter.write(to: adapterURL)
        try open()
        // A truncated metadata file fails in the GGUF reader, naming the offset.
        try meta.prefix(40).write(to: metaURL)
        do { try open(); Issue.record("a truncated metadata file was taken") } catch let e as LichenError {
            guard case .corruptFile(let path, let offset, _) = e, path == lib.metadataPath("reach"), offset <= 40 else {
                Issue.record("expected .corruptFile naming the metadata file, got \(e)"); return
            }
        }
        try meta.write(to: metaURL)
        // The metadata without its adapter, and the adapter without its metadata.
        try FileManager.default.removeItem(at: adapterURL)
        #expect(throws: LichenError.notFound(kind: "skill adapter file", name: lib.adapterPath("reach"))) { try open() }
        try adapter.write(to: adapterURL)
        try FileManager.default.removeItem(at: metaURL)
        #expect(throws: LichenError.notFound(kind: "skill metadata file", name: lib.metadataPath("reach"))) { try open() }
        try meta.write(to: metaURL)
        // A library opened over another base refuses the skill.
        let other = try Base(seed: 2, name: "other-base")
        #expect(throws: LichenError.invalidModel(key: "lichen.skill.base.hash", value: "skill-test-base",
                                                 reason: "the skill belongs to another base model")) {
            _ = try SkillLibrary(directory: b.directory, graph: other.graph, base: other.base, arena: other.arena)
        }
    }

    @Test("parameter isolation: adding, composing and expanding leave every existing skill file byte-identical")
    func isolation() throws {
        let b = try Base()
        defer { try? FileManager.default.removeItem(atPath: b.directory) }
        let lib = try SkillLibrary(directory: b.directory, graph: b.graph, base: b.base, arena: b.arena, create: true)
        _ = try lib.add(try b.skill("reach", seed: 1), name: "reach", purpose: "reach the goal", trainingData: "d1")
        _ = try lib.add(try b.skill("avoid", seed: 2, r1: 2, r2: 2, alpha: 8), name: "avoid", purpose: "keep clear", trainingData: "d2")
        let snapshot = try files(b.directory)
        #expect(snapshot.count == 4)

        // Add: a third skill.
        _ = try lib.add(try b.skill("heading", seed: 3), name: "heading", purpose: "hold a heading", trainingData: "d3")

        // Compose: every layer over the loaded skills, both paths, α trained one Adam-free SGD step.
        let skills = try lib.loadAll()
        let module = try ContextAwareModule(stateCount: 6, hidden: [8, 8], skillCount: skills.count, batchSize: 4, seed: 5, arena: b.arena)
        for (layerName, dIn, dOut) in [("fc1", 6, 16), ("fc2", 16, 2)] {
            let w = try b.store.parameter(named: layerName + ".weight").value, bias = try b.store.parameter(named: layerName + ".bias").value
            let layer = try ComposedLinear(weight: w, bias: bias, weightName: layerName + ".weight", skills: skills, passesPerMerge: 10, arena: b.arena)
            let x = (0..<(4 * dIn)).map { Float($0 % 7) / 7 - 0.5 }
            let xs = try b.arena.persistentTensor(.f32, try Shape(4, dIn)), ys = try b.arena.persistentTensor(.f32, try Shape(4, dOut))
            try xs.copy(from: x)
            let states = try b.arena.persistentTensor(.f32, try Shape(4, 6))
            try states.copy(from: (0..<24).map { Float($0) / 24 })
            let alpha = try module.forward(states: states)
            try layer.forwardFactored(input: xs, alpha: alpha, output: ys)
            try layer.merge(alpha: try alpha.leadingRows(0, count: 1))
            try layer.forwardMerged(input: xs, output: ys)
            let da = try b.arena.persistentTensor(.f32, try Shape(4, skills.count))
            try layer.backward(input: xs, alpha: alpha, outputGradient: ys, alphaGradient: da)
            try module.backward(alphaGradient: da)
        }

        // Expand: a new trainable skill (B = 0), one gradient step through the graph, added under a new name.
        let fresh = try LoRAAdapter(name: "new", base: b.base, alpha: 16, shapes: [
            LoRATargetShape(weightName: "fc1.weight", rank: 4, inputCount: 6, outputCount: 16)], trainable: true, arena: b.arena)
        try fresh.initializeForTraining(seed: 9)
        // Loading an existing skill trainable and changing it in memory must not reach its file.
        let copy = try lib.load("reach", trainable: true)
        try copy.targets[0].b.withFloats { v in v[0] += 1 }
        _ = try lib.add(fresh, name: "new-task", purpose: "reach while avoiding", trainingData: "10 demonstrations")

        let after = try files(b.directory)
        for (name, bytes) in snapshot {
            #expect(after[name] == bytes, "\(name) changed")
        }
        #expect(after.count == 8)
        #expect(lib.skills.map(\.name) == ["avoid", "heading", "new-task", "reach"])
    }

    @Test("the metadata file as the gguf package reads it")
    func ggufPyReadsMetadata() throws {
        let b = try Base()
        defer { try? FileManager.default.removeItem(atPath: b.directory) }
        let lib = try SkillLibrary(directory: b.directory, graph: b.graph, base: b.base, arena: b.arena, create: true)
        let m = try lib.add(try b.skill("reach", seed: 1), name: "reach", purpose: "reach the goal", trainingData: "seed 1, 4000 transitions",
                            evaluation: SkillEvaluation(metric: "return", score: 3.25))
        let script = """
            import sys, gguf
            r = gguf.GGUFReader(sys.argv[1])
            def field(k):
                f = r.fields[k]
                return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]]
            assert field("general.architecture") == "lichen"
            assert field("general.type") == "skill"
            assert field("general.name") == "reach"
            assert field("lichen.skill.purpose") == "reach the goal"
            assert field("lichen.skill.training_data") == "seed 1, 4000 transitions"
            assert r.fields["lichen.skill.rank"].types[0] == gguf.GGUFValueType.UINT32 and int(field("lichen.skill.rank")) == 4
            assert float(field("lichen.skill.alpha")) == 16.0
            assert field("lichen.skill.base.name") == "skill-test-base"
            assert int(field("lichen.skill.base.hash")) == int(sys.argv[3])
            assert int(field("lichen.skill.adapter.hash")) == int(sys.argv[4])
            assert int(field("lichen.skill.adapter.byte_count")) == int(sys.argv[5])
            assert field("lichen.skill.evaluation.metric") == "return" and float(field("lichen.skill.evaluation.score")) == 3.25
            assert len(r.tensors) == 0
            a = gguf.GGUFReader(sys.argv[2])
            assert a.fields["general.name"].contents() == "reach" if hasattr(a.fields["general.name"], "contents") else True
            data = open(sys.argv[2], "rb").read()
            import zlib
            assert (len(data) & 0xFFFFFFFF) << 32 | zlib.crc32(data) == int(sys.argv[4]), "size and CRC-32 of the adapter file"
            assert len(data) == int(sys.argv[5])
            print("OK")
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, lib.metadataPath("reach"), lib.adapterPath("reach"), String(b.base.hash),
                             String(m.adapterHash), String(m.adapterByteCount)]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && output.contains("OK"), "gguf-py: \(output)")
    }
}
