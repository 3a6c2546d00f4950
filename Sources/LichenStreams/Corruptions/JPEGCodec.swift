import CJPEGCodec

/// Grayscale JPEG through libjpeg-turbo in memory (the CJPEGCodec wrapper catches libjpeg's
/// errors with setjmp in C and returns them as status codes).
public enum JPEGCodec {
    /// Encodes 8-bit gray pixels (row-major) at `quality` 1...100 (libjpeg's standard tables
    /// scaled by jpeg_set_quality, baseline), returning the JPEG stream.
    public static func encode(_ pixels: [UInt8], width: Int, height: Int, quality: Int) throws -> [UInt8] {
        guard width > 0, height > 0, pixels.count == width * height else {
            throw CorruptionError(.badSize, "jpeg: \(pixels.count) pixels for \(width)x\(height)")
        }
        // Far above any baseline gray stream of this size (≤ ~2 bytes per pixel plus tables).
        let capacity = 4 * width * height + 4096
        var out = [UInt8](repeating: 0, count: capacity)
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                lcj_encode_gray(p.baseAddress, Int32(width), Int32(height), Int32(quality), o.baseAddress, capacity, &size, &message, message.count)
            }
        }
        guard status == LCJ_OK else { throw error(status, message, "encode") }
        return Array(out[0..<size])
    }

    /// Decodes a JPEG stream that must hold a `width` x `height` image, as 8-bit gray.
    public static func decode(_ data: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        guard width > 0, height > 0 else { throw CorruptionError(.badSize, "jpeg: \(width)x\(height)") }
        var pixels = [UInt8](repeating: 0, count: width * height)
        var warnings: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = data.withUnsafeBufferPointer { d in
            pixels.withUnsafeMutableBufferPointer { p in
                lcj_decode_gray(d.baseAddress, d.count, p.baseAddress, Int32(width), Int32(height), &warnings, &message, message.count)
            }
        }
        guard status == LCJ_OK else { throw error(status, message, "decode") }
        return pixels
    }

    /// Encode at `quality`, then decode.
    public static func roundTrip(_ pixels: [UInt8], width: Int, height: Int, quality: Int) throws -> [UInt8] {
        try decode(encode(pixels, width: width, height: height, quality: quality), width: width, height: height)
    }

    private static func error(_ status: Int32, _ message: [CChar], _ operation: String) -> CorruptionError {
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return CorruptionError(.codec, "jpeg \(operation) failed (status \(status)): \(text)")
    }
}
