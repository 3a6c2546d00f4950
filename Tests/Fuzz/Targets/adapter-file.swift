// libFuzzer target: the LoRA adapter file reader (AdapterFile.read: llama.cpp's GGUF adapter
// convention plus the base's identity), what `lichen_adapter_load` and the control endpoint's
// load and swap read from an operator's file while the loop runs.
//
// Built by ports/host/fuzz into one module with Sources/Lichen. Every input must read or be
// refused with a LichenError; an adapter that reads must write and read back to the same
// alpha, targets and values.

public func lichenFuzzAdapterFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    guard let arena = fuzzArena() else { return 0 }  // gguf-model.swift
    let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: size)
    do throws(LichenError) {
        let file = try GGUFFile(copying: raw)
        let adapter = try AdapterFile.read(file, arena: arena)
        let written = try AdapterFile.writer(adapter).serialized()
        var again: LoRAAdapter? = nil
        written.withUnsafeBytes { b in again = try? AdapterFile.read(try GGUFFile(copying: b), arena: arena) }
        guard let again, again.alpha == adapter.alpha, again.targets.count == adapter.targets.count, again.base == adapter.base else {
            fatalError("an adapter does not survive a write and a read")
        }
        for (x, y) in zip(adapter.targets, again.targets) {
            guard x.shape == y.shape, (try? x.a.toArray()) == (try? y.a.toArray()), (try? x.b.toArray()) == (try? y.b.toArray()) else {
                fatalError("adapter target \(x.weightName) does not survive a write and a read")
            }
        }
    } catch {
        _ = error.description  // every error must render
    }
    return 0
}
