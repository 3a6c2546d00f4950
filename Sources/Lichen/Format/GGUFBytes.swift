/// Bounds-checked little-endian reads over the bytes of a file. Every read checks that it
/// fits and throws `.malformedFile(offset:reason: GGUFReason.truncated)` naming its own
/// offset when it does not; nothing here can trap on input.
struct GGUFBytes {
    let base: UnsafeRawPointer
    let count: Int

    /// Throws unless `length` bytes starting at `offset` lie inside the file.
    @inline(__always)
    func require(_ offset: Int, _ length: Int) throws(LichenError) {
        // safe: offset and length are >= 0 here; the subtraction cannot underflow.
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else {
            throw .malformedFile(offset: offset, reason: GGUFReason.truncated)
        }
    }

    func u8(_ offset: Int) throws(LichenError) -> UInt8 {
        try require(offset, 1)
        return base.load(fromByteOffset: offset, as: UInt8.self)
    }

    func u32(_ offset: Int) throws(LichenError) -> UInt32 {
        try require(offset, 4)
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(_ offset: Int) throws(LichenError) -> UInt64 {
        try require(offset, 8)
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Reads a string header at `offset`: returns the offset of its bytes and its length,
    /// after checking the bytes lie inside the file.
    func stringRange(_ offset: Int) throws(LichenError) -> (start: Int, length: Int) {
        let raw = try u64(offset)
        let start = offset + 8  // safe: u64 checked offset + 8 <= count
        guard raw <= UInt64(count - start), let length = Int(exactly: raw) else {
            throw .malformedFile(offset: offset, reason: GGUFReason.stringTooLong)
        }
        return (start, length)
    }

    /// The bytes `start ..< start + length` (already validated) as a buffer.
    @inline(__always)
    func slice(_ start: Int, _ length: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + start, count: length)
    }

    /// The bytes `start ..< start + length` (already validated, valid UTF-8) as a String.
    func string(_ start: Int, _ length: Int) -> String {
        String(decoding: slice(start, length), as: UTF8.self)
    }

    /// Whether the bytes at `start` equal `other`.
    func equals(_ start: Int, _ length: Int, _ other: UnsafeRawBufferPointer) -> Bool {
        guard length == other.count else { return false }
        return compare(slice(start, length), other) == 0
    }
}

/// Lexicographic byte comparison: negative, zero or positive.
func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let n = min(a.count, b.count)
    var i = 0
    while i < n {
        let x = a[i], y = b[i]
        if x != y { return x < y ? -1 : 1 }
        i += 1
    }
    return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
}

/// Whether `bytes` are well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    let n = bytes.count
    while i < n {
        let b0 = bytes[i]
        if b0 < 0x80 { i += 1; continue }
        var need = 0
        var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; upper = 0x9F
        case 0xF0: need = 3; lower = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; upper = 0x8F
        default: return false
        }
        guard need <= n - i - 1 else { return false }
        let b1 = bytes[i + 1]
        guard b1 >= lower, b1 <= upper else { return false }
        var k = 2
        while k <= need {
            let b = bytes[i + k]
            guard b >= 0x80, b <= 0xBF else { return false }
            k += 1
        }
        i += need + 1
    }
    return true
}
