// libFuzzer target: a skill's metadata file (SkillFile.read: a GGUF file of metadata only),
// the file a skill library reads for every skill it lists or loads.
//
// Built by ports/host/fuzz into one module with Sources/Lichen; every input must read or be
// refused with a LichenError; what it reads must survive a write and read back equal.

public func lichenFuzzSkillFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: size)
    do throws(LichenError) {
        let file = try GGUFFile(copying: raw)
        let m = try SkillFile.read(file)
        // What was accepted writes and reads back to the same metadata.
        let written = try SkillFile.writer(m).serialized()
        var again: SkillMetadata? = nil
        written.withUnsafeBytes { b in again = try? SkillFile.read(try GGUFFile(copying: b)) }
        if again != m { fatalError("skill metadata does not survive a round trip") }
    } catch {
        _ = error.description  // every error must render
    }
    return 0
}
