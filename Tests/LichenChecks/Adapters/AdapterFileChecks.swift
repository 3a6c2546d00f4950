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
    Check("Format/AdapterFile", "every validation error: wrong type keys, alpha, base keys, tensor types, shapes, names, halves, ranks, NaN, no tensors") { c in
        checking(&c) { c throws(LichenError) in
            let m = try AdapterCheckModel(type: .f32, seed: 81, batch: 1)
            let arena = m.arena
            let ok = try adapterFileBytes(m.base)
            c.expect(c.expectNoThrow("the valid file") { () throws(LichenError) in try AdapterFile.read(try adapterOpen(ok), arena: arena) } != nil,
                     "the valid file reads")
            func expectRead(_ expected: LichenError, _ what: String, _ bytes: [UInt8]) {
                let heap = arena.stats.heapInUseBytes
                c.expectThrows(expected, what) { () throws(LichenError) in try AdapterFile.read(try adapterOpen(bytes), arena: arena) }
                c.expect(arena.stats.heapInUseBytes == heap, what + ": a refused file left heap memory in use")
            }
            expectRead(.invalidModel(key: "general.type", value: "model", reason: "not an adapter file (expected \"adapter\")"), "general.type",
                       try adapterFileBytes(m.base, generalType: "model"))
            expectRead(.invalidModel(key: "general.architecture", value: "llama", reason: "not a Lichen adapter (expected \"lichen\")"),
                       "architecture", try adapterFileBytes(m.base, architecture: "llama"))
            expectRead(.invalidModel(key: "adapter.type", value: "ia3", reason: "only LoRA adapters are supported (expected \"lora\")"),
                       "adapter.type", try adapterFileBytes(m.base, adapterType: "ia3"))
            expectRead(.invalidModel(key: "adapter.lora.alpha", value: floatText(-1), reason: "must be finite and in 0...65536"), "negative alpha",
                       try adapterFileBytes(m.base, alpha: -1))
            expectRead(.invalidModel(key: "adapter.lora.alpha", value: floatText(.nan), reason: "must be finite and in 0...65536"), "NaN alpha",
                       try adapterFileBytes(m.base, alpha: .nan))
            expectRead(.notFound(kind: "metadata key", name: "lichen.adapter.base.hash"), "missing base hash",
                       try adapterFileBytes(m.base, hash: nil))
            expectRead(.valueTypeMismatch(key: "lichen.adapter.base.hash", expected: "uint64", got: "uint32"), "base hash as uint32",
                       try adapterFileBytes(m.base, hash: .uint32(7)))
            expectRead(.notFound(kind: "metadata key", name: "lichen.adapter.base.name"), "missing base name",
                       try adapterFileBytes(m.base, baseName: nil))
            let a = LoRAFileTensor(name: "fc1.weight.lora_a", dims: [2, 64]), b = LoRAFileTensor(name: "fc1.weight.lora_b", dims: [32, 2])
            expectRead(.invalidModel(key: "fc1.weight.lora_a", value: "f16", reason: "LoRA tensors must be f32"), "f16 tensor",
                       try adapterFileBytes(m.base, tensors: [LoRAFileTensor(name: "fc1.weight.lora_a", dims: [2, 64], type: .f16), b]))
            expectRead(.invalidModel(key: "fc1.weight.lora_a", value: "1", reason: "LoRA tensors must be 2-D"), "1-D tensor",
                       try adapterFileBytes(m.base, tensors: [LoRAFileTensor(name: "fc1.weight.lora_a", dims: [128]), b]))
            expectRead(.invalidModel(key: "fc1.weight.lora_c", value: "fc1.weight.lora_c", reason: "adapter tensors are named <base weight>.lora_a or .lora_b"),
                       "bad suffix", try adapterFileBytes(m.base, tensors: [a, b, LoRAFileTensor(name: "fc1.weight.lora_c", dims: [2, 2])]))
            expectRead(.notFound(kind: "tensor", name: "fc1.weight.lora_b"), "missing B", try adapterFileBytes(m.base, tensors: [a]))
            expectRead(.notFound(kind: "tensor", name: "fc1.weight.lora_a"), "missing A", try adapterFileBytes(m.base, tensors: [b]))
            expectRead(.parameterShapeMismatch(tensor: "fc1.weight.lora_b", expected: "[32, 2]", got: "[32, 3]"), "rank of A and B differ",
                       try adapterFileBytes(m.base, tensors: [a, LoRAFileTensor(name: "fc1.weight.lora_b", dims: [32, 3])]))
            expectRead(.invalidArgument(name: "LoRA rank", value: 5, reason: "must be in 1...min(n_in, n_out, 4096)"), "rank above n_out",
                       try adapterFileBytes(m.base, tensors: [LoRAFileTensor(name: "fc2.weight.lora_a", dims: [5, 32]),
                                                               LoRAFileTensor(name: "fc2.weight.lora_b", dims: [3, 5])]))
            expectRead(.invalidModel(key: "tensors", value: "0", reason: "an adapter file holds at least one .lora_a/.lora_b pair"), "no tensors",
                       try adapterFileBytes(m.base, tensors: []))
            expectRead(.nonFiniteValue(operand: "LoRA tensor", index: 5), "NaN value",
                       try adapterFileBytes(m.base, tensors: [LoRAFileTensor(name: "fc1.weight.lora_a", dims: [2, 64], nanAt: 5), b]))
            // A shape that fits no base weight is read, then refused by the set, with the base untouched.
            let wrong = try AdapterFile.read(try adapterOpen(try adapterFileBytes(m.base, tensors: [
                LoRAFileTensor(name: "fc1.weight.lora_a", dims: [2, 60]), LoRAFileTensor(name: "fc1.weight.lora_b", dims: [32, 2])])), arena: arena)
            c.expectThrows(.parameterShapeMismatch(tensor: "fc1.weight.lora_a", expected: "[2, 64]", got: "[2, 60]"), "n_in against the base")
            { () throws(LichenError) in try AdapterSet(members: [AdapterSet.Member(wrong)], graph: m.graph, base: m.base, arena: arena) }
            // An adapter of another base model.
            let other = AdapterBase(name: m.base.name, parameterCount: m.base.parameterCount, hash: m.base.hash ^ 1)
            let foreign = try AdapterFile.read(try adapterOpen(try adapterFileBytes(other)), arena: arena)
            c.expectThrows(.invalidModel(key: "lichen.adapter.base", value: "check-base", reason: "the adapter belongs to another base model"),
                           "another base") { () throws(LichenError) in
                try AdapterSet(members: [AdapterSet.Member(foreign)], graph: m.graph, base: m.base, arena: arena)
            }
        }
    },
    Check("Format/AdapterFile", "every truncation and hostile header bytes throw; nothing traps, nothing stays allocated") { c in
        checking(&c) { c throws(LichenError) in
            let m = try AdapterCheckModel(type: .f32, seed: 91, batch: 1)
            let ok = try adapterFileBytes(m.base)
            let heap = m.arena.stats.heapInUseBytes
            var cut = 0
            while cut < ok.count {
                let bytes = Array(ok[0..<cut])
                do throws(LichenError) {
                    _ = try AdapterFile.read(try adapterOpen(bytes), arena: m.arena)
                    c.expect(false, "a file cut at \(cut) of \(ok.count) bytes was read")
                } catch {
                    c.expect(true, "")
                }
                cut += cut < 512 ? 1 : 61
            }
            // Flip every byte of the header region to 0xFF, one at a time: an error or a valid read, never a trap.
            var flips = 0
            for i in 0..<min(ok.count, 400) {
                var bytes = ok
                bytes[i] = bytes[i] == 0xFF ? 0 : 0xFF
                do throws(LichenError) { _ = try AdapterFile.read(try adapterOpen(bytes), arena: m.arena) } catch { flips += 1 }
            }
            c.expect(flips > 300, "most header flips must be refused (\(flips) of 400 were)")
            c.expect(m.arena.stats.heapInUseBytes == heap, "refused files left heap memory in use")
        }
    },
]

/// One tensor of a hand-made adapter file: f32 (or f16) of `dims`, values i / 100 (NaN at `nanAt`).
struct LoRAFileTensor {
    var name: String
    var dims: [Int]
    var type: ElementType = .f32
    var nanAt: Int = -1
}

/// The bytes of an adapter file built key by key, each key replaceable (nil: left out).
func adapterFileBytes(
    _ base: AdapterBase, generalType: String = "adapter", architecture: String = "lichen", adapterType: String = "lora",
    alpha: Float = 4, hash: GGUFMetadataValue?? = .some(nil), baseName: String?? = .some(nil),
    tensors: [LoRAFileTensor] = [LoRAFileTensor(name: "fc1.weight.lora_a", dims: [2, 64]), LoRAFileTensor(name: "fc1.weight.lora_b", dims: [32, 2])]
) throws(LichenError) -> [UInt8] {
    var w = try GGUFWriter()
    try w.add("general.architecture", .string(architecture))
    try w.add("general.type", .string(generalType))
    try w.add("general.name", .string("hand-made"))
    try w.add("adapter.type", .string(adapterType))
    try w.add("adapter.lora.alpha", .float32(alpha))
    switch baseName {
    case .some(.some(let n)): try w.add("lichen.adapter.base.name", .string(n))
    case .some(.none): try w.add("lichen.adapter.base.name", .string(base.name))
    case .none: break
    }
    try w.add("lichen.adapter.base.parameter_count", .uint64(UInt64(base.parameterCount)))
    switch hash {
    case .some(.some(let h)): try w.add("lichen.adapter.base.hash", h)
    case .some(.none): try w.add("lichen.adapter.base.hash", .uint64(base.hash))
    case .none: break
    }
    for t in tensors {
        var count = 1
        for d in t.dims { count *= d }
        if t.type == .f16 {
            var bytes: [UInt8] = []
            for i in 0..<count {
                let h = Kernels.halfBits(from: Float(i) / 100)
                bytes.append(UInt8(truncatingIfNeeded: h))
                bytes.append(UInt8(truncatingIfNeeded: h >> 8))
            }
            try w.addTensor(t.name, type: .f16, shape: try Shape(dimensions: t.dims), bytes: bytes)
        } else {
            var values: [Float] = []
            for i in 0..<count { values.append(i == t.nanAt ? .nan : Float(i % 17) / 100) }
            try w.addTensor(t.name, shape: try Shape(dimensions: t.dims), floats: values)
        }
    }
    return try w.serialized()
}
