import Lichen

/// An 8-bit grayscale image for the CLI's pictures (contact sheets), written as PNG.
struct GrayImage {
    let width: Int
    let height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int, background: UInt8 = 0) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: background, count: width * height)
    }

    /// Sets one pixel; coordinates outside the image are ignored.
    mutating func set(_ x: Int, _ y: Int, _ value: UInt8) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        pixels[y * width + x] = value
    }

    /// Draws a `side` × `side` grayscale tile (row-major bytes) at (x, y), each pixel `scale` × `scale`.
    mutating func draw(tile: [UInt8], side w: Int, rows h: Int, at x: Int, _ y: Int, scale: Int) {
        for r in 0..<h {
            for c in 0..<w {
                let v = tile[r * w + c]
                for dy in 0..<scale {
                    for dx in 0..<scale { set(x + c * scale + dx, y + r * scale + dy, v) }
                }
            }
        }
    }

    /// Draws `text` in the built-in 5×7 font (upper case; unknown characters as '?') with its
    /// top-left corner at (x, y), each font pixel `scale` × `scale`.
    mutating func draw(text: String, at x: Int, _ y: Int, scale: Int, value: UInt8 = 255) {
        var cx = x
        for ch in text.uppercased() {
            let rows = BitmapFont.glyph(ch)
            for (r, bits) in rows.enumerated() {
                for c in 0..<5 where bits & (1 << (4 - c)) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale { set(cx + c * scale + dx, y + r * scale + dy, value) }
                    }
                }
            }
            cx += BitmapFont.advance * scale
        }
    }

    /// The image as a PNG file: signature, IHDR (8-bit grayscale, no interlace), one IDAT
    /// holding a zlib stream of stored (uncompressed) deflate blocks, IEND.
    func pngBytes() -> [UInt8] {
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var ihdr: [UInt8] = []
        putBE32(&ihdr, UInt32(width))
        putBE32(&ihdr, UInt32(height))
        ihdr += [8, 0, 0, 0, 0]  // bit depth 8, color type 0 (gray), deflate, filter 0, no interlace
        chunk(&out, "IHDR", ihdr)
        // Scanlines: filter type 0 (none) and the row's bytes.
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (width + 1))
        for y in 0..<height {
            raw.append(0)
            raw += pixels[(y * width)..<((y + 1) * width)]
        }
        chunk(&out, "IDAT", zlibStored(raw))
        chunk(&out, "IEND", [])
        return out
    }

    private func chunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        putBE32(&out, UInt32(data.count))
        let typeBytes = Array(type.utf8)
        var crc = CRC32()
        crc.update(typeBytes)
        crc.update(data)
        out += typeBytes
        out += data
        putBE32(&out, crc.value)
    }
}

/// A zlib stream (RFC 1950) of deflate stored blocks (RFC 1951, BTYPE 00) holding `data`.
func zlibStored(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x78, 0x01]  // CM 8, CINFO 7; FLEVEL 0; FCHECK makes 0x7801 a multiple of 31
    var start = 0
    repeat {
        let n = min(65_535, data.count - start)
        let final = start + n == data.count
        out.append(final ? 1 : 0)
        out.append(UInt8(n & 0xFF)); out.append(UInt8(n >> 8))
        out.append(UInt8(~n & 0xFF)); out.append(UInt8((~n >> 8) & 0xFF))
        out += data[start..<(start + n)]
        start += n
    } while start < data.count
    putBE32(&out, adler32(data))
    return out
}

/// Adler-32 (RFC 1950).
func adler32(_ data: [UInt8]) -> UInt32 {
    var a: UInt32 = 1, b: UInt32 = 0
    var i = 0
    while i < data.count {
        let end = min(i + 5552, data.count)  // the most bytes before b can overflow 32 bits
        while i < end {
            a += UInt32(data[i])
            b += a
            i += 1
        }
        a %= 65_521
        b %= 65_521
    }
    return b << 16 | a
}

private func putBE32(_ out: inout [UInt8], _ v: UInt32) {
    out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
}

/// A 5×7 bitmap font: upper-case letters, digits and a few signs; each glyph is seven rows of
/// five bits (bit 4 the leftmost pixel).
enum BitmapFont {
    static let height = 7
    /// Horizontal distance from one character to the next, in font pixels.
    static let advance = 6

    static func glyph(_ ch: Character) -> [UInt8] {
        glyphs[ch] ?? glyphs["?"]!
    }

    static let glyphs: [Character: [UInt8]] = [
        "A": [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        "B": [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110],
        "C": [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110],
        "D": [0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110],
        "E": [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
        "F": [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000],
        "G": [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
        "H": [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        "I": [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        "J": [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100],
        "K": [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
        "L": [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        "M": [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
        "N": [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001],
        "O": [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        "P": [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
        "Q": [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101],
        "R": [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
        "S": [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
        "T": [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
        "U": [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        "V": [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
        "W": [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010],
        "X": [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001],
        "Y": [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100],
        "Z": [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111],
        "0": [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        "1": [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        "2": [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        "3": [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
        "4": [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        "5": [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        "6": [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        "7": [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        "8": [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        "9": [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        "_": [0, 0, 0, 0, 0, 0, 0b11111],
        "-": [0, 0, 0, 0b11111, 0, 0, 0],
        ":": [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0],
        ".": [0, 0, 0, 0, 0, 0b01100, 0b01100],
        ",": [0, 0, 0, 0, 0b01100, 0b00100, 0b01000],
        "/": [0b00001, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b10000],
        "(": [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010],
        ")": [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000],
        " ": [0, 0, 0, 0, 0, 0, 0],
        "?": [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0, 0b00100],
    ]
}
