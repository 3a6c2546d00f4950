// libFuzzer target: the stream file reader (StreamFile), then every frame and label read back.
// Every input must load or be refused with a LichenError.

public func lichenFuzzStreamFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: size)
    do throws(LichenError) {
        let file = try StreamFile(copying: raw)
        for i in 0..<min(file.frameCount, 64) {
            _ = try file.label(i)
            _ = try file.framePixels(i)
        }
        _ = file.labelHistogram()
    } catch {
        _ = error.description
    }
    return 0
}
