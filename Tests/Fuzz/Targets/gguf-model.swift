// libFuzzer target: the GGUF model parser, from bytes to loaded parameters.
//
// Built by ports/host/fuzz into one module with Sources/Lichen (so internal API is reachable)
// and linked with libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer. Every input must
// either load or be refused with a LichenError; a trap, a sanitizer report or a leak is a finding.

/// The arena inputs load into (this target's and adapter-file's; one target runs per process):
/// small, so size claims run into the budget quickly. Made at the first input.
nonisolated(unsafe) private var fuzzArenaStorage: Arena? = nil
func fuzzArena() -> Arena? {
    if fuzzArenaStorage == nil { fuzzArenaStorage = try? Arena(byteCount: 8 << 20) }
    return fuzzArenaStorage
}

public func lichenFuzzGGUFModel(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    guard let arena = fuzzArena() else { return 0 }
    // Copied to an aligned buffer of its own so ASan sees reads past the input's end.
    let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: size)
    do throws(LichenError) {
        let file = try GGUFFile(copying: raw)
        let spec = try ModelFile.readSpec(file)
        try ModelFile.checkParameters(file, spec: spec)
        let mark = arena.lowEndMark()
        defer { try? arena.resetLowEnd(to: mark) }
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
        _ = try spec.inferShapes()
        // The adapter reader over the same bytes: a model file must be refused, never trap.
        _ = try? AdapterFile.read(file, arena: arena)
    } catch {
        _ = error.description  // every error must render
    }
    return 0
}
