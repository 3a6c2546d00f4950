import Lichen

/// Memory holding `bytes`, and a ByteView over it (the memory must outlive the view).
func byteMemory(_ bytes: [UInt8]) -> CheckMemory {
    let m = CheckMemory(byteCount: bytes.count)
    for i in 0..<bytes.count { m.bytes[i] = bytes[i] }
    return m
}

func byteView(_ m: CheckMemory, _ count: Int? = nil) throws(LichenError) -> ByteView {
    try ByteView(base: m.base, byteCount: count ?? m.byteCount)
}

func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }

/// IDX image content: header then `count` images whose pixel k is (image * 31 + k) mod 256.
func idxImages(count: Int, rows: Int, columns: Int, magic: UInt32 = 0x803) -> [UInt8] {
    var out = bigEndian(magic) + bigEndian(UInt32(count)) + bigEndian(UInt32(rows)) + bigEndian(UInt32(columns))
    for i in 0..<count { for k in 0..<(rows * columns) { out.append(UInt8((i * 31 + k) % 256)) } }
    return out
}

func idxLabels(_ labels: [UInt8], magic: UInt32 = 0x801) -> [UInt8] {
    bigEndian(magic) + bigEndian(UInt32(labels.count)) + labels
}

func staticText(_ s: StaticString) -> String { s.withUTF8Buffer { String(decoding: $0, as: UTF8.self) } }

/// CRC-32 (IEEE, reflected, as gzip uses), bit by bit.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xedb8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}

/// A single-member gzip file holding `data` in one stored (uncompressed) deflate block.
func storedGzip(_ data: [UInt8]) -> [UInt8] {
    let n = UInt16(data.count)
    var out: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]
    out += [1, UInt8(n & 0xff), UInt8(n >> 8), UInt8(~n & 0xff), UInt8(~n >> 8)]
    out += data
    let crc = crc32(data), size = UInt32(data.count)
    for s in [0, 8, 16, 24] { out.append(UInt8((crc >> UInt32(s)) & 0xff)) }
    for s in [0, 8, 16, 24] { out.append(UInt8((size >> UInt32(s)) & 0xff)) }
    return out
}

/// `gzip.compress(b"lichen lichen lichen: fungus and alga living as one\n" * 3, mtime=0)` from Python.
let pythonGzip: [UInt8] = [
    31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 203, 201, 76, 206, 72, 205, 83, 200, 65, 166, 172, 20, 210, 74, 243, 210, 75, 139, 21, 18, 243,
    82, 20, 18, 115, 210, 19, 129, 226, 101, 153, 121, 233, 10, 137, 197, 10, 249, 121, 169, 92, 57, 116, 210, 3, 0, 222, 55, 214,
    109, 156, 0, 0, 0,
]

let dataChecks: [Check] = [
    Check("Data/IDX", "valid image and label content parses; pixels and labels read back") { c in
        checking(&c) { c throws(LichenError) in
            let im = byteMemory(idxImages(count: 3, rows: 2, columns: 4))
            let images = try IDXImages.parse(try byteView(im))
            c.expect(images.count == 3 && images.rows == 2 && images.columns == 4, "header fields")
            c.expect(images.pixel(image: 2, row: 1, column: 3) == UInt8((2 * 31 + 7) % 256), "pixel (2, 1, 3)")
            let px = try images.pixels(ofImage: 1)
            c.expect(px.count == 8 && px[0] == 31 && px[7] == 38, "pixels of image 1")
            let lm = byteMemory(idxLabels([0, 9, 4]))
            let labels = try IDXLabels.parse(try byteView(lm))
            c.expect(labels.count == 3 && labels[0] == 0 && labels[1] == 9 && labels[2] == 4, "labels")
            let empty = byteMemory(idxLabels([]))
            c.expect(try IDXLabels.parse(try byteView(empty)).count == 0, "zero labels parse")
        }
    },
    Check("Data/IDX", "hostile content throws with the offset: every truncation, bad magic, count mismatch, trailing bytes, label 10") { c in
        let good = idxImages(count: 2, rows: 3, columns: 3)
        let im = byteMemory(good)
        for n in 0..<good.count {
            let expected: LichenError
            switch n {
            case 0..<4: expected = .malformedFile(offset: 0, reason: "data ends inside a 4-byte field")
            case 4..<8: expected = .malformedFile(offset: 4, reason: "data ends inside a 4-byte field")
            case 8..<12: expected = .malformedFile(offset: 8, reason: "data ends inside a 4-byte field")
            case 12..<16: expected = .malformedFile(offset: 12, reason: "data ends inside a 4-byte field")
            default: expected = .malformedFile(offset: n, reason: "IDX images: data ends before the images the header counts")
            }
            c.expectThrows(expected, "images cut to \(n) bytes") { () throws(LichenError) in try IDXImages.parse(try byteView(im, n)) }
        }
        let bad = byteMemory(idxImages(count: 2, rows: 3, columns: 3, magic: 0x801))
        c.expectThrows(.malformedFile(offset: 0, reason: "IDX images: magic is not 0x00000803 (unsigned bytes, 3 dimensions)"), "label magic on images") {
            () throws(LichenError) in try IDXImages.parse(try byteView(bad))
        }
        var counted3 = idxImages(count: 2, rows: 3, columns: 3)
        counted3[7] = 3
        let c3 = byteMemory(counted3)
        c.expectThrows(.malformedFile(offset: 34, reason: "IDX images: data ends before the images the header counts"), "header counts 3 images, data holds 2") {
            () throws(LichenError) in try IDXImages.parse(try byteView(c3))
        }
        let extra = byteMemory(good + [0])
        c.expectThrows(.malformedFile(offset: 34, reason: "IDX images: bytes follow the last image the header counts"), "a trailing byte") {
            () throws(LichenError) in try IDXImages.parse(try byteView(extra))
        }
        var huge = idxImages(count: 0, rows: 3, columns: 3)
        huge[4] = 0xff; huge[5] = 0xff; huge[6] = 0xff; huge[7] = 0xff
        huge[8] = 0xff; huge[9] = 0xff; huge[10] = 0xff; huge[11] = 0xff
        huge[12] = 0xff; huge[13] = 0xff; huge[14] = 0xff; huge[15] = 0xff
        let hm = byteMemory(huge)
        c.expectThrows(.malformedFile(offset: 4, reason: "IDX images: size in the header overflows"), "dimensions of 2^32-1") {
            () throws(LichenError) in try IDXImages.parse(try byteView(hm))
        }
        let ten = byteMemory(idxLabels([1, 2, 10, 3]))
        c.expectThrows(.malformedFile(offset: 10, reason: "IDX labels: label is not below the class count"), "label 10") {
            () throws(LichenError) in try IDXLabels.parse(try byteView(ten))
        }
        let lm = byteMemory(idxLabels([1, 2, 3]))
        for n in 8..<11 {
            c.expectThrows(.malformedFile(offset: n, reason: "IDX labels: data ends before the labels the header counts"), "labels cut to \(n)") {
                () throws(LichenError) in try IDXLabels.parse(try byteView(lm, n))
            }
        }
        let swapped = byteMemory(idxLabels([1], magic: 0x803))
        c.expectThrows(.malformedFile(offset: 0, reason: "IDX labels: magic is not 0x00000801 (unsigned bytes, 1 dimension)"), "image magic on labels") {
            () throws(LichenError) in try IDXLabels.parse(try byteView(swapped))
        }
    },
    Check("Data/FashionMNIST", "counts must agree and images be 28x28; batches are pixel/255 and labels in permutation order") { c in
        guard let arena = checkArena(&c) else { return }
        checking(&c) { c throws(LichenError) in
            let im = byteMemory(idxImages(count: 5, rows: 28, columns: 28))
            let lm = byteMemory(idxLabels([3, 1, 4, 1, 5]))
            let images = try IDXImages.parse(try byteView(im))
            let short = byteMemory(idxLabels([3, 1, 4]))
            c.expectThrows(.shapeMismatch(operand: "labels", dimension: 0, expected: 5, got: 3), "5 images, 3 labels") { () throws(LichenError) in
                try FashionMNIST(images: images, labels: try IDXLabels.parse(try byteView(short)))
            }
            let small = byteMemory(idxImages(count: 5, rows: 27, columns: 28))
            c.expectThrows(.shapeMismatch(operand: "images", dimension: 1, expected: 28, got: 27), "27 rows") { () throws(LichenError) in
                try FashionMNIST(images: try IDXImages.parse(try byteView(small)), labels: try IDXLabels.parse(try byteView(lm)))
            }
            let data = try FashionMNIST(images: images, labels: try IDXLabels.parse(try byteView(lm)))
            let order = try SeededPermutation(count: 5, arena: arena)
            order.shuffle(seed: 3)
            let x = CheckMemory(byteCount: 3 * 784 * 4), y = CheckMemory(byteCount: 12)
            try data.writeBatch(order: order, start: 1, images: try x.view(.f32, [3, 1, 28, 28]), labels: try y.view(.f32, [3]))
            let labelOf: [Float] = [3, 1, 4, 1, 5]
            for i in 0..<3 {
                let e = order[1 + i]
                c.expect(y.floats[i] == labelOf[e], "label of batch row \(i)")
                var same = true
                for k in 0..<784 where x.floats[i * 784 + k] != Float((e * 31 + k) % 256) / 255 { same = false }
                c.expect(same, "pixels of batch row \(i) are image \(e) / 255")
            }
            c.expectThrows(.invalidArgument(name: "start", value: 3, reason: "batch runs past the end of the dataset"), "batch past the end") {
                () throws(LichenError) in try data.writeBatch(start: 3, images: try x.view(.f32, [3, 784]))
            }
            c.expectThrows(.shapeMismatch(operand: "images", dimension: 1, expected: 784, got: 783), "rows of 783") {
                () throws(LichenError) in try data.writeBatch(start: 0, images: try x.view(.f32, [3, 783]))
            }
            c.expect(staticText(FashionMNIST.classNames[9]) == "Ankle boot" && staticText(FashionMNIST.classNames[0]) == "T-shirt/top", "class names")
            c.expect(FashionMNIST.className(10) == nil, "no class 10")
        }
    },
    Check("Data/SeededPermutation", "the same seed gives the same order, pinned to an independent implementation") { c in
        guard let arena = checkArena(&c) else { return }
        checking(&c) { c throws(LichenError) in
            let p = try SeededPermutation(count: 10, arena: arena)
            p.shuffle(seed: 42)
            let got = (0..<10).map { p[$0] }
            c.expect(got == [8, 3, 6, 5, 4, 0, 9, 2, 1, 7], "seed 42 over 10: \(got)")
            p.shuffle(seed: 5)
            p.shuffle(seed: 42)
            c.expect((0..<10).map { p[$0] } == got, "reshuffling with the seed repeats the order")
            let big = try SeededPermutation(count: 60000, arena: arena)
            big.shuffle(seed: 7)
            c.expect((0..<6).map { big[$0] } == [39440, 5058, 34367, 29420, 58428, 54336], "seed 7 over 60000, first six")
            var weighted = 0
            for i in 0..<1000 { weighted += i * big[i] }
            c.expect(weighted == 15_320_934_741, "seed 7 over 60000, first thousand")
            var seen = [Bool](repeating: false, count: 60000)
            for i in 0..<60000 { seen[big[i]] = true }
            c.expect(!seen.contains(false), "a permutation")
        }
    },
    Check("Data/Gzip", "zlib inflates Python's gzip and stored blocks; corrupt, truncated and oversized input throws with the offset") { c in
        checking(&c) { c throws(LichenError) in
            let out = CheckMemory(byteCount: 256)
            let py = byteMemory(pythonGzip)
            let n = try byteView(out).inflateGzip(from: try byteView(py))
            let line = Array("lichen lichen lichen: fungus and alga living as one\n".utf8)
            c.expect(n == 3 * line.count, "decompressed length \(n)")
            var same = n == 3 * line.count
            for i in 0..<min(n, 3 * line.count) where out.bytes[i] != line[i % line.count] { same = false }
            c.expect(same, "decompressed text")
            let payload = idxLabels([1, 2, 3, 9])
            let gz = storedGzip(payload)
            let gm = byteMemory(gz)
            c.expect(try byteView(out).inflateGzip(from: try byteView(gm)) == payload.count, "stored block")
            // Two members concatenated are one stream (as gzip(1) and Python read them).
            let twice = byteMemory(gz + gz)
            c.expect(try byteView(out).inflateGzip(from: try byteView(twice)) == 2 * payload.count, "two members")
            // Every truncation throws (never traps, never succeeds).
            for cut in 0..<gz.count {
                do throws(LichenError) {
                    _ = try byteView(out).inflateGzip(from: try byteView(gm, cut))
                    c.expect(false, "gzip cut to \(cut) bytes did not throw")
                } catch {
                    if case .malformedFile = error { c.expect(true, "") } else { c.expect(false, "cut \(cut): " + error.description) }
                }
            }
            c.expectThrows(.malformedFile(offset: gz.count - 1, reason: "gzip data is truncated"), "cut before the last byte") {
                () throws(LichenError) in try byteView(out).inflateGzip(from: try byteView(gm, gz.count - 1))
            }
            // A flipped payload byte fails the CRC-32, found in the trailer.
            var flipped = gz
            flipped[17] ^= 0x40
            let fm = byteMemory(flipped)
            do throws(LichenError) {
                _ = try byteView(out).inflateGzip(from: try byteView(fm))
                c.expect(false, "a flipped byte was not detected")
            } catch {
                if case .malformedFile(let offset, _) = error {
                    c.expect(offset >= 15 + payload.count && offset <= gz.count, "CRC failure offset \(offset) lies in the trailer")
                } else {
                    c.expect(false, "flipped byte: " + error.description)
                }
            }
            let notGzip = byteMemory(payload + payload)
            c.expectThrows(.malformedFile(offset: 2, reason: "corrupt gzip data (header, deflate stream, CRC-32 or length)"), "not gzip") {
                () throws(LichenError) in try byteView(out).inflateGzip(from: try byteView(notGzip))
            }
            let garbage = byteMemory(gz + [0, 0, 0, 0])
            do throws(LichenError) {
                _ = try byteView(out).inflateGzip(from: try byteView(garbage))
                c.expect(false, "bytes after the member were accepted")
            } catch {
                if case .malformedFile = error { c.expect(true, "") } else { c.expect(false, "garbage: " + error.description) }
            }
            c.expectThrows(.bufferTooSmall(operand: "gzip output", needed: 11, available: 10), "output larger than the buffer") {
                () throws(LichenError) in try byteView(out, 10).inflateGzip(from: try byteView(gm))
            }
            c.expect(try byteView(out, payload.count).inflateGzip(from: try byteView(gm)) == payload.count, "an exactly sized buffer")
        }
    },
]
