import Lichen

/// Opens `bytes` as a GGUF file (copied into an aligned buffer).
func adapterOpen(_ bytes: [UInt8]) throws(LichenError) -> GGUFFile {
    var result: Result<GGUFFile, LichenError> = .failure(.malformedFile(offset: -1, reason: "not run"))
    bytes.withUnsafeBytes { raw in
        do throws(LichenError) { result = .success(try GGUFFile(copying: raw)) } catch { result = .failure(error) }
    }
    return try result.get()
}

/// Adapter files (Format/AdapterFile.swift): round trip, and every validation error.
let adapterFileChecks: [Check] = [
    Check("Format/AdapterFile", "round trip: metadata, shapes and values survive, and the loaded adapter gives the same outputs") { c in
        checking(&c) { c throws(LichenError) in
            let m = try AdapterCheckModel(type: .q8_0, seed: 71, batch: 2)
            let original = try m.adapter("skill", alpha: 6, [("conv.weight", 3), ("fc1.weight", 4), ("fc2.weight", 2)], seed: 72)
            let bytes = try AdapterFile.writer(original).serialized()
            let file = try adapterOpen(bytes)
            c.expect(try file.string("general.type") == "adapter", "general.type")
            c.expect(try file.string("adapter.type") == "lora", "adapter.type")
            c.expect(try file.float("adapter.lora.alpha") == 6, "adapter.lora.alpha")
            c.expect(try file.string("general.name") == "skill", "general.name")
            c.expect(try file.string("lichen.adapter.base.name") == "check-base", "base name")
            c.expect(try file.int("lichen.adapter.base.parameter_count") == m.base.parameterCount, "base parameter count")
            c.expect(try file.tensorInfo("conv.weight.lora_a").shape == (try Shape(3, 32)), "conv A shape [r, n_in]")
            c.expect(try file.tensorInfo("fc1.weight.lora_b").shape == (try Shape(32, 4)), "fc1 B shape [n_out, r]")
            let loaded = try AdapterFile.read(file, arena: m.arena)
            c.expect(loaded.name == "skill" && loaded.alpha == 6 && loaded.base == m.base, "name, alpha and base read back")
            c.expect(loaded.targets.count == 3, "three targets")
            for (t, u) in zip(original.targets, loaded.targets) {
                c.expect(t.shape == u.shape, t.weightName + ": target shape")
                let ta = try t.a.toArray(), ua = try u.a.toArray(), tb = try t.b.toArray(), ub = try u.b.toArray()
                c.expect(ta == ua && tb == ub, t.weightName + ": values bit-exact")
            }
            var rng = SplitMix64(seed: 73)
            let xm = CheckMemory.floats(rng.floats(2 * 50, 0, 1))
            let input = try xm.view(.f32, [2] + AdapterCheckModel.inputDims)
            let y1 = try m.graph.forward(input: input, adapters: try AdapterSet(members: [AdapterSet.Member(original, scale: 0.5)],
                                                                                 graph: m.graph, base: m.base, arena: m.arena)).toArray()
            let y2 = try m.graph.forward(input: input, adapters: try AdapterSet(members: [AdapterSet.Member(loaded, scale: 0.5)],
                                                                                 graph: m.graph, base: m.base, arena: m.arena)).toArray()
            c.expect(y1 == y2, "outputs of the loaded adapter differ by " + show(adapterMaxDifference(y1, y2)))
            // The same adapter written twice gives the same bytes.
            c.expect(try AdapterFile.writer(loaded).serialized() == bytes, "writing the loaded adapter gives other bytes")
        }
    },
]
