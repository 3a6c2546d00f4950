/// CRC-32 as zlib, gzip and PNG compute it (IEEE 802.3, reflected polynomial 0xEDB88320,
/// initial value and final xor 0xFFFFFFFF): `crc32("123456789") == 0xCBF43926`.
///
/// Used for the stream file trailer and by the CLI's PNG writer. Slicing-by-4 over a table
/// built once; allocation-free after that.
public struct CRC32 {
    private var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// The CRC of every byte given to `update` so far.
    public var value: UInt32 { state ^ 0xFFFF_FFFF }

    /// Four 256-entry tables: table k maps a byte to its CRC contribution k bytes ahead.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 4 * 256)
        for n in 0..<256 {
            var c = UInt32(n)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[n] = c
        }
        for n in 0..<256 {
            var c = t[n]
            for k in 1..<4 {
                c = t[Int(c & 0xFF)] ^ (c >> 8)
                t[k * 256 + n] = c
            }
        }
        return t
    }()

    /// Adds `bytes` to the CRC.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return }
        var c = state
        CRC32.tables.withUnsafeBufferPointer { t in
            var i = 0
            // safe: every index below stays inside 0 ..< n, and table indices inside 0 ..< 1024.
            while n - i >= 4 {
                let word = UInt32(base.load(fromByteOffset: i, as: UInt8.self))
                    | UInt32(base.load(fromByteOffset: i + 1, as: UInt8.self)) << 8
                    | UInt32(base.load(fromByteOffset: i + 2, as: UInt8.self)) << 16
                    | UInt32(base.load(fromByteOffset: i + 3, as: UInt8.self)) << 24
                c ^= word
                c = t[768 + Int(c & 0xFF)] ^ t[512 + Int((c >> 8) & 0xFF)]
                    ^ t[256 + Int((c >> 16) & 0xFF)] ^ t[Int(c >> 24)]
                i += 4
            }
            while i < n {
                c = t[Int((c ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        state = c
    }

    /// Adds `bytes` to the CRC.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The CRC of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c = CRC32()
        c.update(bytes)
        return c.value
    }
}
