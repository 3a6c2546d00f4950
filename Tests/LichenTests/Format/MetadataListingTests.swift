import Foundation
import Lichen
import Testing

/// One long metadata array made `inspect` take 28 s and 1.5 GiB for a 30 MB file: every element
/// became a value. `value(_:arrayElementLimit:)` reads only the first elements and the count.
@Suite("Metadata listing")
struct MetadataListingTests {
    /// A GGUF v3 file with no tensors and the given (key, value bytes) pairs, built by hand.
    static func file(_ entries: [(String, [UInt8])]) -> [UInt8] {
        var b: [UInt8] = Array("GGUF".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        u32(3); u64(0); u64(UInt64(entries.count))
        for (key, value) in entries {
            u64(UInt64(key.utf8.count)); b += Array(key.utf8); b += value
        }
        while b.count % 32 != 0 { b.append(0) }
        return b
    }

    static func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    @Test("a 30,000,000-element u8 array gives its first 16 elements and its count; what follows it still reads")
    func longArrayIsBounded() throws {
        let n = 30_000_000
        var array = Self.le32(9) + Self.le32(0) + Self.le64(UInt64(n))
        array += (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        // An array of string arrays, cut at both levels.
        var nested = Self.le32(9) + Self.le32(9) + Self.le64(40)
        for i in 0..<40 {
            nested += Self.le32(8) + Self.le64(20)
            for j in 0..<20 { let s = "s\(i).\(j)"; nested += Self.le64(UInt64(s.utf8.count)) + Array(s.utf8) }
        }
        let bytes = Self.file([("big", array), ("nested", nested), ("after", Self.le32(4) + Self.le32(77))])
        try bytes.withUnsafeBytes { raw in
            let file = try GGUFFile(borrowing: raw)
            let (value, count) = try file.value("big", arrayElementLimit: 16)
            #expect(count == n)
            guard case .array(let type, let elements) = value else { Issue.record("\(value)"); return }
            #expect(type == .uint8)
            #expect(elements == (0..<16).map { GGUFMetadataValue.uint8(UInt8(truncatingIfNeeded: $0 &* 7)) })
            let (cut, outer) = try file.value("nested", arrayElementLimit: 3)
            #expect(outer == 40)
            #expect(cut == .array(elementType: .array, elements: (0..<3).map { i in
                .array(elementType: .string, elements: (0..<3).map { j in .string("s\(i).\(j)") }) }))
            #expect(try file.value("after", arrayElementLimit: 3) == (.uint32(77), nil))
            #expect(try file.value("after") == .uint32(77))
        }
    }
}
