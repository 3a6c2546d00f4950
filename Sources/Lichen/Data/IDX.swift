/// The images of an IDX file of unsigned bytes with three dimensions (magic 0x00000803):
/// a 16-byte big-endian header (magic, count, rows, columns), then `count` images of
/// `rows × columns` bytes, row-major. A view over the caller's bytes: nothing is copied.
public struct IDXImages {
    /// The whole IDX content, header included.
    public let bytes: ByteView
    public let count: Int
    public let rows: Int
    public let columns: Int

    public static let magic: UInt32 = 0x0000_0803
    public static let headerByteCount = 16

    /// Bytes of one image.
    public var pixelsPerImage: Int { rows * columns }

    /// Parses and validates IDX image content.
    ///
    /// - Throws: `.malformedFile(offset:reason:)`, offsets into `bytes`: offset 0 for a wrong
    ///   magic; the field's offset when the header is cut short; the data's length when the
    ///   images the header counts do not fit; the end of the last image when bytes follow it.
    ///   Zero rows or columns, or a size that overflows, is reported at the field's offset.
    public static func parse(_ bytes: ByteView) throws(LichenError) -> IDXImages {
        let magic = try bytes.bigEndianUInt32(at: 0)
        guard magic == IDXImages.magic else {
            throw .malformedFile(offset: 0, reason: "IDX images: magic is not 0x00000803 (unsigned bytes, 3 dimensions)")
        }
        let count = Int(try bytes.bigEndianUInt32(at: 4))
        let rows = Int(try bytes.bigEndianUInt32(at: 8))
        let columns = Int(try bytes.bigEndianUInt32(at: 12))
        guard rows > 0 else { throw .malformedFile(offset: 8, reason: "IDX images: zero rows") }
        guard columns > 0 else { throw .malformedFile(offset: 12, reason: "IDX images: zero columns") }
        let (perImage, o1) = rows.multipliedReportingOverflow(by: columns)
        let (pixels, o2) = perImage.multipliedReportingOverflow(by: count)
        let (expected, o3) = pixels.addingReportingOverflow(headerByteCount)
        guard !o1, !o2, !o3 else { throw .malformedFile(offset: 4, reason: "IDX images: size in the header overflows") }
        guard bytes.count >= expected else {
            throw .malformedFile(offset: bytes.count, reason: "IDX images: data ends before the images the header counts")
        }
        guard bytes.count == expected else {
            throw .malformedFile(offset: expected, reason: "IDX images: bytes follow the last image the header counts")
        }
        return IDXImages(bytes: bytes, count: count, rows: rows, columns: columns)
    }

    /// Byte offset of image `index` in `bytes`.
    public func offset(ofImage index: Int) -> Int { IDXImages.headerByteCount + index * pixelsPerImage }

    /// Pixel (row, column) of image `index`; traps when out of range.
    public func pixel(image index: Int, row: Int, column: Int) -> UInt8 {
        precondition(index >= 0 && index < count && row >= 0 && row < rows && column >= 0 && column < columns,
                     "IDXImages pixel out of range")
        return bytes[offset(ofImage: index) + row * columns + column]
    }

    /// The pixels of image `index`.
    /// - Throws: `.invalidArgument(name: "image", value: index, ...)` when out of range.
    public func pixels(ofImage index: Int) throws(LichenError) -> ByteView {
        guard index >= 0 && index < count else {
            throw .invalidArgument(name: "image", value: index, reason: "no image with this index")
        }
        return try bytes.slice(offset(ofImage: index), byteCount: pixelsPerImage)
    }
}

/// The labels of an IDX file of unsigned bytes with one dimension (magic 0x00000801):
/// an 8-byte big-endian header (magic, count), then one byte per label.
public struct IDXLabels {
    /// The whole IDX content, header included.
    public let bytes: ByteView
    public let count: Int

    public static let magic: UInt32 = 0x0000_0801
    public static let headerByteCount = 8

    /// Parses and validates IDX label content; every label must be below `classCount`.
    ///
    /// - Throws: `.malformedFile(offset:reason:)` as `IDXImages.parse`, and at `8 + i` for a
    ///   label i that is `>= classCount`; `.invalidArgument` for `classCount` outside 1...256.
    public static func parse(_ bytes: ByteView, classCount: Int = 10) throws(LichenError) -> IDXLabels {
        guard classCount >= 1 && classCount <= 256 else {
            throw .invalidArgument(name: "classCount", value: classCount, reason: "must lie in 1...256 for byte labels")
        }
        let magic = try bytes.bigEndianUInt32(at: 0)
        guard magic == IDXLabels.magic else {
            throw .malformedFile(offset: 0, reason: "IDX labels: magic is not 0x00000801 (unsigned bytes, 1 dimension)")
        }
        let count = Int(try bytes.bigEndianUInt32(at: 4))
        let expected = headerByteCount + count
        guard bytes.count >= expected else {
            throw .malformedFile(offset: bytes.count, reason: "IDX labels: data ends before the labels the header counts")
        }
        guard bytes.count == expected else {
            throw .malformedFile(offset: expected, reason: "IDX labels: bytes follow the last label the header counts")
        }
        for i in 0..<count where Int(bytes[headerByteCount + i]) >= classCount {
            throw .malformedFile(offset: headerByteCount + i, reason: "IDX labels: label is not below the class count")
        }
        return IDXLabels(bytes: bytes, count: count)
    }

    /// Label `index`; traps when out of range.
    public subscript(index: Int) -> Int {
        precondition(index >= 0 && index < count, "IDXLabels index out of range")
        return Int(bytes[IDXLabels.headerByteCount + index])
    }
}
