import LichenStreams
import Testing

@Suite("JPEG through libjpeg-turbo")
struct JPEGCodecTests {
    static func bytes(_ image: [Float]) -> [UInt8] { image.map { UInt8(($0 * 255).rounded()) } }

    static func meanAbsoluteDifference(_ a: [UInt8], _ b: [UInt8]) -> Double {
        Double(zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(a.count)
    }

    @Test("a stream is a JPEG (SOI ... EOI) and decodes to a changed image; lower quality changes more")
    func qualityLadder() throws {
        let images = try CorruptionFixtures.subset().prefix(16).map(Self.bytes)
        var previous = 0.0
        for quality in [95, 80, 65, 50, 40, 20, 5] {
            var total = 0.0
            for image in images {
                let stream = try JPEGCodec.encode(image, width: 28, height: 28, quality: quality)
                #expect(stream.prefix(2) == [0xFF, 0xD8] && stream.suffix(2) == [0xFF, 0xD9])
                let decoded = try JPEGCodec.decode(stream, width: 28, height: 28)
                #expect(decoded != image, "quality \(quality) returned the input unchanged")
                total += Self.meanAbsoluteDifference(decoded, image)
            }
            let change = total / Double(images.count)
            #expect(change > previous, "quality \(quality): mean change \(change) <= \(previous) at the higher quality")
            previous = change
        }
    }

    /// A constant image has only DC coefficients: the error is the DC rounding, at most half a
    /// DC quantization step / 8 (libjpeg's DC entry 16 scaled to 6 at q 80, 20 at q 40 → within
    /// 1 level; 80 at q 10 → within 5 levels).
    @Test("constant images round-trip within the DC rounding", arguments: [0, 37, 128, 200, 255])
    func constant(_ level: Int) throws {
        let image = [UInt8](repeating: UInt8(level), count: 28 * 28)
        for (quality, tolerance) in [(80, 1), (40, 1), (10, 5)] {
            let decoded = try JPEGCodec.roundTrip(image, width: 28, height: 28, quality: quality)
            let worst = decoded.map { abs(Int($0) - level) }.max() ?? 0
            #expect(worst <= tolerance, "level \(level) quality \(quality): off by \(worst)")
        }
    }

    @Test("jpeg_compression is the codec's round trip of the 8-bit image")
    func corruptionUsesCodec() throws {
        let image = try CorruptionFixtures.subset()[2]
        for severity in 1...5 {
            let quality = [80, 65, 58, 50, 40][severity - 1]
            let viaCodec = try JPEGCodec.roundTrip(Self.bytes(image), width: 28, height: 28, quality: quality)
            let viaCorruption = try Corruption.jpegCompression.apply(to: image, width: 28, height: 28, severity: severity, seed: 0)
            #expect(viaCorruption == viaCodec.map { Float($0) / 255 })
        }
    }

    static func codecKind(_ body: () throws -> [UInt8]) -> (CorruptionError.Kind, String)? {
        do {
            _ = try body()
            return nil
        } catch let error as CorruptionError {
            return (error.kind, error.description)
        } catch {
            return nil
        }
    }

    @Test("libjpeg errors come back as CorruptionError(.codec) with libjpeg's message, no crash")
    func errors() throws {
        let image = [UInt8](repeating: 90, count: 28 * 28)
        let stream = try JPEGCodec.encode(image, width: 28, height: 28, quality: 50)

        // Not a JPEG at all: libjpeg's "Not a JPEG file" error_exit.
        let garbage = Self.codecKind { try JPEGCodec.decode([UInt8](repeating: 0x42, count: 100), width: 28, height: 28) }
        #expect(garbage?.0 == .codec)
        #expect(garbage?.1.contains("JPEG") == true, "\(String(describing: garbage))")
        // Header cut short.
        #expect(Self.codecKind { try JPEGCodec.decode(Array(stream.prefix(30)), width: 28, height: 28) }?.0 == .codec)
        // Empty input, wrong expected size, out-of-range quality.
        #expect(Self.codecKind { try JPEGCodec.decode([], width: 28, height: 28) }?.0 == .codec)
        let mismatch = Self.codecKind { try JPEGCodec.decode(stream, width: 27, height: 28) }
        #expect(mismatch?.0 == .codec && mismatch?.1.contains("expected 27x28") == true)
        #expect(Self.codecKind { try JPEGCodec.encode(image, width: 28, height: 28, quality: 0) }?.0 == .codec)
        #expect(Self.codecKind { try JPEGCodec.encode(image, width: 28, height: 28, quality: 101) }?.0 == .codec)
        #expect(Self.codecKind { try JPEGCodec.encode(image, width: 28, height: 27, quality: 50) }?.0 == .badSize)
        // The codec still works after the failures.
        #expect(try JPEGCodec.decode(stream, width: 28, height: 28).count == 28 * 28)
    }
}
