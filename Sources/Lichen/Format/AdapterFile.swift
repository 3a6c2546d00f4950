/// LoRA adapter files: GGUF v3 in llama.cpp's adapter convention (`src/llama-adapter.cpp`)
/// plus the identity of the base model the adapter belongs to (Format/README.md, "Adapter files").
///
/// Metadata: `general.architecture = "lichen"` (llama.cpp requires the base's architecture),
/// `general.type = "adapter"`, `general.name`, `adapter.type = "lora"`, `adapter.lora.alpha`
/// (float32; 0 when absent, llama.cpp's rule), `lichen.adapter.base.name` (the base's
/// `general.name`), `lichen.adapter.base.parameter_count` (uint64) and
/// `lichen.adapter.base.hash` (uint64, `AdapterBase`). Tensors: `<base weight>.lora_a` f32
/// `[r, n_in]` and `<base weight>.lora_b` f32 `[n_out, r]` (ggml `ne` `[n_in, r]`, `[r, n_out]`),
/// pairs in target order; a conv weight's n_in is `in * kh * kw` (its row form).
public enum AdapterFile {
    public static let generalType = "adapter"
    public static let adapterType = "lora"
    public static let suffixA = ".lora_a"
    public static let suffixB = ".lora_b"

    /// Reads an adapter from `file`, validated completely, into the arena's heap.
    ///
    /// - Parameters:
    ///   - name: the name the adapter is listed under (e.g. the file's path); `general.name`
    ///     when nil.
    ///   - trainable: also allocate gradients (to train it further).
    /// - Throws: `.invalidModel(key:value:reason:)` naming the key or tensor for: a file that
    ///   is not a Lichen LoRA adapter (`general.architecture`, `general.type`, `adapter.type`),
    ///   a negative or non-finite alpha, a tensor that is not f32 or not 2-D, a tensor without
    ///   the `.lora_a` / `.lora_b` suffix, a missing half (`.notFound(kind: "tensor", ...)`),
    ///   no tensors at all; `.parameterShapeMismatch` when A's r differs from B's;
    ///   `.invalidArgument(name: "LoRA rank", ...)` for a rank above min(n_in, n_out, 4096);
    ///   `.nonFiniteValue(operand: "LoRA tensor", ...)`; `.notFound` / `.valueTypeMismatch` for
    ///   missing or mistyped keys; `.budgetExceeded`. Hostile and truncated files already fail
    ///   in `GGUFFile` with `.malformedFile`. Nothing is allocated when it throws.
    /// - Note: Allocates (load time, off the step).
    public static func read(_ file: GGUFFile, name: String? = nil, trainable: Bool = false, arena: Arena) throws(LichenError) -> LoRAAdapter {
        let arch = try file.string("general.architecture")
        guard arch == ModelFile.architecture else {
            throw .invalidModel(key: "general.architecture", value: arch, reason: "not a Lichen adapter (expected \"lichen\")")
        }
        // A model file has no general.type: say that it is a model, not that a key is missing.
        if !file.contains("general.type") && file.contains("lichen.layer_count") {
            throw .invalidModel(key: "general.type", value: "(absent: a model file)", reason: "not an adapter file (expected \"adapter\")")
        }
        let type = try file.string("general.type")
        guard type == generalType else {
            throw .invalidModel(key: "general.type", value: type, reason: "not an adapter file (expected \"adapter\")")
        }
        let adapterKind = try file.string("adapter.type")
        guard adapterKind == adapterType else {
            throw .invalidModel(key: "adapter.type", value: adapterKind, reason: "only LoRA adapters are supported (expected \"lora\")")
        }
        let alpha: Float = file.contains("adapter.lora.alpha") ? try file.float("adapter.lora.alpha") : 0
        guard alpha.isFinite && alpha >= 0 && alpha <= LoRAAdapter.maximumAlpha else {
            throw .invalidModel(key: "adapter.lora.alpha", value: floatText(alpha), reason: "must be finite and in 0...65536")
        }
        let base = AdapterBase(name: try file.string("lichen.adapter.base.name"),
                               parameterCount: try file.int("lichen.adapter.base.parameter_count"),
                               hash: try uint64(file, "lichen.adapter.base.hash"))
        var shapes: [LoRATargetShape] = []
        var pairs: [(a: GGUFTensorInfo, b: GGUFTensorInfo)] = []
        for info in file.tensors {
            let (weight, isA) = try split(info.name)
            guard info.type == .f32 else {
                throw .invalidModel(key: info.name, value: info.type.name, reason: "LoRA tensors must be f32")
            }
            guard info.shape.rank == 2 else {
                throw .invalidModel(key: info.name, value: String(info.shape.rank), reason: "LoRA tensors must be 2-D")
            }
            if !isA {
                guard file.containsTensor(weight + suffixA) else { throw .notFound(kind: "tensor", name: weight + suffixA) }
                continue
            }
            let other = weight + suffixB
            guard file.containsTensor(other) else { throw .notFound(kind: "tensor", name: other) }
            let b = try file.tensorInfo(other)
            // A [r, n_in], B [n_out, r]; B must be 2-D f32 too (checked when its turn comes, but
            // its shape is needed now).
            guard b.shape.rank == 2 && b.type == .f32 else {
                throw .invalidModel(key: other, value: b.type.name, reason: "LoRA tensors must be 2-D f32")
            }
            let r = info.shape[0]
            guard b.shape[1] == r else {
                throw .parameterShapeMismatch(tensor: other, expected: AdapterSet.text(b.shape[0], r), got: AdapterSet.text(b.shape[0], b.shape[1]))
            }
            let shape = LoRATargetShape(weightName: weight, rank: r, inputCount: info.shape[1], outputCount: b.shape[0])
            try LoRAAdapter.validate(shape)
            shapes.append(shape)
            pairs.append((info, b))
        }
        guard !shapes.isEmpty else {
            throw .invalidModel(key: "tensors", value: "0", reason: "an adapter file holds at least one .lora_a/.lora_b pair")
        }
        for (a, b) in pairs {
            for info in [a, b] {
                if let i = try file.view(info).firstNonFiniteIndex() { throw .nonFiniteValue(operand: "LoRA tensor", index: i) }
            }
        }
        var listed = ""
        if let name { listed = name } else { listed = try file.string("general.name") }
        let adapter = try LoRAAdapter(name: listed, base: base, alpha: alpha, shapes: shapes,
                                      trainable: trainable, arena: arena)
        for (k, (a, b)) in pairs.enumerated() {
            try adapter.targets[k].a.copy(from: try file.view(a))
            try adapter.targets[k].b.copy(from: try file.view(b))
        }
        return adapter
    }

    /// Reads the adapter file at `path` into the arena's heap, validates it, builds the adapter
    /// there and frees the file's bytes: nothing outside the budget is allocated for it.
    ///
    /// The file is opened through `UntrustedFile` without following a symbolic link, and sized
    /// against what the heap can still give (the bytes left plus the heap's free extents) before
    /// a byte is read: a file larger than that (a sparse multi-gigabyte file included) is
    /// refused with `.budgetExceeded(asked: file size, left:)`.
    /// - Throws: `.fileRefused`, `.fileError` (see `UntrustedFile`); `.budgetExceeded`; as
    ///   `GGUFFile(borrowing:)` and `read(_:name:trainable:arena:)`.
    public static func read(path: String, name: String? = nil, trainable: Bool = false, arena: Arena) throws(LichenError) -> LoRAAdapter {
        let stats = arena.stats
        let heapRoom = stats.bytesLeft + max(0, stats.heapExtentBytes - stats.heapInUseBytes)
        let handle = try openSized(path, heapRoom: heapRoom)
        guard handle.byteCount > 0 else { throw .malformedFile(offset: 0, reason: GGUFReason.truncated) }
        let buffer = try arena.heapAllocate(byteCount: handle.byteCount, alignment: 64)
        defer { arena.heapFree(buffer) }
        try handle.readAll(into: buffer)
        // safe: the buffer holds the file's byteCount bytes and outlives `file` (freed by the defer
        // after the adapter, which copies its values, is built).
        let file = try GGUFFile(borrowing: UnsafeRawBufferPointer(start: buffer, count: handle.byteCount))
        return try read(file, name: name ?? path, trainable: trainable, arena: arena)
    }

    /// `path` opened without following a link, refused with `.budgetExceeded(asked: its size,
    /// left: heapRoom)` when it is larger than the heap can still give.
    private static func openSized(_ path: String, heapRoom: Int) throws(LichenError) -> UntrustedFile {
        do throws(LichenError) {
            return try UntrustedFile(path: path, maximumBytes: heapRoom, followSymbolicLinks: false)
        } catch {
            // Only the size refusal carries sizes.
            if case .fileRefused(_, _, let size, let limit) = error, size > limit {
                throw .budgetExceeded(asked: size, left: limit)
            }
            throw error
        }
    }

    /// (base weight name, is `.lora_a`) of a tensor name.
    static func split(_ name: String) throws(LichenError) -> (String, Bool) {
        let bytes = Array(name.utf8)
        for (suffix, isA) in [(suffixA, true), (suffixB, false)] {
            let s = Array(suffix.utf8)
            guard bytes.count > s.count && Array(bytes[(bytes.count - s.count)...]) == s else { continue }
            return (String(decoding: bytes[..<(bytes.count - s.count)], as: UTF8.self), isA)
        }
        throw .invalidModel(key: name, value: name, reason: "adapter tensors are named <base weight>.lora_a or .lora_b")
    }

    static func uint64(_ file: GGUFFile, _ key: String) throws(LichenError) -> UInt64 {
        let v = try file.value(key)
        guard case .uint64(let x) = v else { throw .valueTypeMismatch(key: key, expected: "uint64", got: v.type.name) }
        return x
    }

    /// A writer holding `adapter` (its A and B values as they are now).
    ///
    /// - Parameters:
    ///   - name: `general.name` (default: the adapter's name).
    ///   - extras: more metadata, written after the adapter keys (provenance: `lichen.train.*`, ...).
    /// - Throws: `.invalidArgument` from `GGUFWriter` (a tensor name over 64 bytes, a duplicate key).
    public static func writer(_ adapter: LoRAAdapter, name: String? = nil, extras: [ModelMetadataEntry] = []) throws(LichenError) -> GGUFWriter {
        var w = try GGUFWriter()
        try w.add("general.architecture", .string(ModelFile.architecture))
        try w.add("general.type", .string(generalType))
        try w.add("general.name", .string(name ?? adapter.name))
        try w.add("adapter.type", .string(adapterType))
        try w.add("adapter.lora.alpha", .float32(adapter.alpha))
        try w.add("lichen.adapter.base.name", .string(adapter.base.name))
        try w.add("lichen.adapter.base.parameter_count", .uint64(UInt64(adapter.base.parameterCount)))
        try w.add("lichen.adapter.base.hash", .uint64(adapter.base.hash))
        for e in extras { try w.add(e.key, e.value) }
        for t in adapter.targets {
            try w.addTensor(t.weightName + suffixA, shape: t.a.shape, floats: try t.a.toArray())
            try w.addTensor(t.weightName + suffixB, shape: t.b.shape, floats: try t.b.toArray())
        }
        return w
    }

    /// Writes `adapter` to `path` atomically (see `writer`).
    public static func write(_ adapter: LoRAAdapter, name: String? = nil, extras: [ModelMetadataEntry] = [], toPath path: String) throws(LichenError) {
        try writer(adapter, name: name, extras: extras).write(toPath: path)
    }
}
