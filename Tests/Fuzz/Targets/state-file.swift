// libFuzzer target: the adapted-state file reader (StateFile.parse), then the match against a
// small state (a restore that must refuse or load, never trap).
//
// Built by ports/host/fuzz into one module with Sources/Lichen; every input must parse or be
// refused with a LichenError.

public func lichenFuzzStateFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: size)
    do throws(LichenError) {
        let contents = try StateFile.parse(raw)
        // Every offset the parse hands out lies inside the input.
        for t in contents.tensors where t.offset < 0 || t.offset + 4 * t.count > size {
            fatalError("tensor \(t.name) outside the input")
        }
        _ = contents.planText.utf8.count
    } catch {
        _ = error.description  // every error must render
    }
    return 0
}
