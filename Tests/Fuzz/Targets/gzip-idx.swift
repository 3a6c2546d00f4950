// libFuzzer target: Fashion-MNIST's files as Lichen reads them, gzip (zlib through
// lcr_gzip_inflate_memory) then IDX (images and labels). The input is taken as gzip data and
// inflated into a bounded buffer, then the inflated bytes, and the input itself, are parsed as
// IDX images and as IDX labels.
//
// Built by ports/host/fuzz into one module with Sources/Lichen. Every input must be read or
// refused with a LichenError; what parses must describe exactly the bytes it was given.

/// The inflated bytes' buffer (1 MiB: larger content must be refused with bufferTooSmall).
nonisolated(unsafe) private var inflated: UnsafeMutableRawPointer? = nil
private let inflatedCapacity = 1 << 20

public func lichenFuzzGzipIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    if inflated == nil { inflated = UnsafeMutableRawPointer.allocate(byteCount: inflatedCapacity, alignment: 64) }
    guard let inflated else { return 0 }
    // A copy of its own, so AddressSanitizer sees a read past the input's end.
    let input = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 16)
    defer { input.deallocate() }
    input.copyMemory(from: data, byteCount: size)
    func parse(_ bytes: ByteView) {
        if let images = try? IDXImages.parse(bytes),
           images.count * images.pixelsPerImage + IDXImages.headerByteCount != bytes.count {
            fatalError("IDX images parsed with a size other than the bytes'")
        }
        if let labels = try? IDXLabels.parse(bytes), labels.count + IDXLabels.headerByteCount != bytes.count {
            fatalError("IDX labels parsed with a size other than the bytes'")
        }
    }
    do throws(LichenError) {
        let compressed = size == 0 ? ByteView.empty : try ByteView(base: input, byteCount: size)
        parse(compressed)
        let output = try ByteView(base: inflated, byteCount: inflatedCapacity)
        let n = try output.inflateGzip(from: compressed)
        guard n >= 0 && n <= inflatedCapacity else { fatalError("inflate reported \(n) bytes for a \(inflatedCapacity)-byte buffer") }
        parse(n == 0 ? ByteView.empty : try ByteView(base: inflated, byteCount: n))
    } catch {
        _ = error.description  // every error must render
    }
    return 0
}
