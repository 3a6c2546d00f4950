extension GGUFFile {
    /// FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over every byte of the
    /// file as read: a skill's metadata records it for its adapter file, so a changed or
    /// replaced adapter file is noticed before it is used.
    /// - Note: Reads the whole file once; allocates nothing.
    public var contentHash: UInt64 {
        var h = FNV1a64()
        // safe: rawBytes covers the file's byteCount validated bytes, alive as long as self.
        for b in rawBytes { h.add(byte: b) }
        return h.value
    }
}

extension GGUFWriter {
    /// `GGUFFile.contentHash` of the bytes this writer produces, and their count.
    /// - Throws: as `serialized()`.
    public func contentHash() throws(LichenError) -> (byteCount: Int, hash: UInt64) {
        let bytes = try serialized()
        var h = FNV1a64()
        for b in bytes { h.add(byte: b) }
        return (bytes.count, h.value)
    }
}
