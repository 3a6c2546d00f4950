extension GGUFWriter {
    /// `GGUFFile.contentHash()` of the bytes this writer produces, and their count.
    /// - Throws: as `serialized()`.
    public func contentHash() throws(LichenError) -> (byteCount: Int, hash: UInt64) {
        let bytes = try serialized()
        return (bytes.count, bytes.withUnsafeBytes { GGUFFile.contentHash(of: $0) })
    }
}
