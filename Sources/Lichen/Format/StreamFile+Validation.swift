extension StreamFile {
    /// Checks the whole file (the rules on `StreamFile`, in file order, then the checksum,
    /// then the labels) and returns its layout.
    static func validate(_ b: StreamBytes) throws(LichenError) -> Layout {
        var layout = Layout()
        // Header.
        try b.require(0, 4)
        let m = magic
        guard b.base.load(fromByteOffset: 0, as: UInt8.self) == m.0, b.base.load(fromByteOffset: 1, as: UInt8.self) == m.1,
              b.base.load(fromByteOffset: 2, as: UInt8.self) == m.2, b.base.load(fromByteOffset: 3, as: UInt8.self) == m.3
        else { throw b.fail(0, StreamFileReason.badMagic) }
        let version = try b.u32(4)
        guard version == UInt32(StreamFile.version) else {
            throw .unsupportedVersion(format: "stream file", version: Int(version))
        }
        guard let kind = Kind(rawValue: try b.u32(8)) else { throw b.fail(8, StreamFileReason.unknownKind) }
        layout.kind = kind
        let width = try b.u32(12)
        guard width >= 1, width <= UInt32(maximumDimension) else { throw b.fail(12, StreamFileReason.badWidth) }
        let height = try b.u32(16)
        guard height >= 1, height <= UInt32(maximumDimension) else { throw b.fail(16, StreamFileReason.badHeight) }
        guard try b.u32(20) == 1 else { throw b.fail(20, StreamFileReason.badChannels) }
        let classCount = try b.u32(24)
        guard classCount >= 1, classCount <= 256 else { throw b.fail(24, StreamFileReason.badClassCount) }
        let domainCount = try b.u32(28)
        let frameCount = try b.u64(32)
        layout.seed = try b.u64(40)
        layout.width = Int(width)
        layout.height = Int(height)
        layout.classCount = Int(classCount)

        // Counts, bounded by the file size before anything is reserved.
        guard domainCount >= 1 else { throw b.fail(28, StreamFileReason.noDomains) }
        let afterHeader = b.count - headerByteCount  // safe: the header was read, count >= 48
        guard Int(domainCount) <= afterHeader / (domainRecordByteCount + 1) else {
            throw b.fail(28, StreamFileReason.domainCountTooLarge)
        }
        guard frameCount >= 1 else { throw b.fail(32, StreamFileReason.noFrames) }
        // Each frame takes one label byte and width × height pixel bytes (<= 2^24 + 1 in all).
        let perFrame = layout.width * layout.height + 1  // safe: both <= 4096
        guard frameCount <= UInt64(afterHeader / perFrame) else {
            throw b.fail(32, StreamFileReason.frameCountTooLarge)
        }
        let frames = Int(frameCount)  // safe: bounded by the file size above
        layout.frameCount = frames

        // Domain table: records in order, covering 0 ..< frames exactly.
        var domains: [Domain] = []
        domains.reserveCapacity(Int(domainCount))
        var offset = headerByteCount
        var next = 0
        for _ in 0..<Int(domainCount) {
            let first = try b.u64(offset)
            let count = try b.u64(offset + 8)
            let severity = try b.u8(offset + 16)
            let nameLength = Int(try b.u8(offset + 17))
            let nameStart = offset + domainRecordByteCount
            // The fields in file order.
            if first < UInt64(next) { throw b.fail(offset, StreamFileReason.domainOverlaps) }
            if first > UInt64(next) { throw b.fail(offset, StreamFileReason.domainGap) }
            guard count >= 1 else { throw b.fail(offset + 8, StreamFileReason.emptyDomain) }
            // safe: next <= frames, so frames - next cannot underflow.
            guard count <= UInt64(frames - next) else { throw b.fail(offset + 8, StreamFileReason.domainPastEnd) }
            guard severity <= UInt8(maximumSeverity) else { throw b.fail(offset + 16, StreamFileReason.badSeverity) }
            guard nameLength >= 1, nameLength <= maximumNameLength else {
                throw b.fail(offset + 17, StreamFileReason.badNameLength)
            }
            try b.require(nameStart, nameLength)
            guard isValidUTF8(b.slice(nameStart, nameLength)) else { throw b.fail(nameStart, StreamFileReason.nameNotUTF8) }
            let name = String(decoding: b.slice(nameStart, nameLength), as: UTF8.self)
            domains.append(Domain(name: name, severity: Int(severity), firstFrame: next, frameCount: Int(count)))
            next += Int(count)  // safe: <= frames
            offset = nameStart + nameLength  // safe: require() checked it lies inside the file
        }
        guard next == frames else { throw b.fail(32, StreamFileReason.framesNotCovered) }
        layout.domains = domains

        // Sections: labels, frames, the CRC-32 trailer, and nothing after it.
        layout.labelsOffset = offset
        try b.require(offset, frames)
        layout.framesOffset = offset + frames  // safe: inside the file
        let pixels = layout.width * layout.height
        // safe: frames × pixels <= the file size (checked with perFrame above).
        try b.require(layout.framesOffset, frames * pixels)
        let trailer = layout.framesOffset + frames * pixels
        let stored = try b.u32(trailer)
        guard b.count - trailer == 4 else { throw b.fail(trailer + 4, StreamFileReason.trailingBytes) }
        var crc = CRC32()
        crc.update(b.slice(0, trailer))
        guard crc.value == stored else { throw b.fail(trailer, StreamFileReason.checksumMismatch) }
        layout.checksum = stored

        // Labels, now that the bytes are known to be the ones written.
        let labels = b.slice(layout.labelsOffset, frames)
        for i in 0..<frames where UInt32(labels[i]) >= classCount {
            throw b.fail(layout.labelsOffset + i, StreamFileReason.labelOutOfRange)
        }
        return layout
    }
}
