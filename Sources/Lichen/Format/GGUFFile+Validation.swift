/// Validation of a whole GGUF header. Every count, length, type, offset and size is checked
/// before it is used, with overflow-checked arithmetic; each failure names the offset of the
/// field that broke a rule. Work and memory are linear in the file size.
extension GGUFFile {
    /// The smallest metadata record: key length (8), type (4), one byte of value.
    static let minimumEntryByteCount = 13
    /// The smallest tensor record: name length (8), n_dims (4), one dim (8), type (4), offset (8).
    static let minimumTensorInfoByteCount = 32

    static func validate(_ b: GGUFBytes) throws(LichenError) -> Layout {
        var layout = Layout()

        // Header: magic, version, counts.
        try b.require(0, 4)
        guard b.base.load(fromByteOffset: 0, as: UInt8.self) == 0x47,  // G
              b.base.load(fromByteOffset: 1, as: UInt8.self) == 0x47,  // G
              b.base.load(fromByteOffset: 2, as: UInt8.self) == 0x55,  // U
              b.base.load(fromByteOffset: 3, as: UInt8.self) == 0x46  // F
        else { throw .malformedFile(offset: 0, reason: GGUFReason.badMagic) }
        let version = try b.u32(4)
        guard version == 3 || version == 2 else {
            throw .unsupportedVersion(format: "GGUF", version: Int(truncatingIfNeeded: version))
        }
        layout.version = Int(version)
        let rawTensorCount = try b.u64(8)
        let rawEntryCount = try b.u64(16)
        var pos = 24
        let left = UInt64(b.count - pos)  // safe: u64(16) proved count >= 24
        guard rawEntryCount <= left / UInt64(minimumEntryByteCount), let entryCount = Int(exactly: rawEntryCount) else {
            throw .malformedFile(offset: 16, reason: GGUFReason.metadataCountTooLarge)
        }
        guard rawTensorCount <= left / UInt64(minimumTensorInfoByteCount), let tensorCount = Int(exactly: rawTensorCount)
        else { throw .malformedFile(offset: 8, reason: GGUFReason.tensorCountTooLarge) }

        // Metadata.
        layout.entries.reserveCapacity(entryCount)
        var alignmentEntry: Entry? = nil
        for _ in 0..<entryCount {
            let keyOffset = pos
            let (keyStart, keyLength) = try b.stringRange(pos)
            guard keyLength <= maximumKeyLength else {
                throw .malformedFile(offset: keyOffset, reason: GGUFReason.keyTooLong)
            }
            guard isValidUTF8(b.slice(keyStart, keyLength)) else {
                throw .malformedFile(offset: keyStart, reason: GGUFReason.keyNotUTF8)
            }
            pos = keyStart + keyLength  // safe: inside the file
            let typeOffset = pos
            let type = try valueType(b, typeOffset)
            pos = typeOffset + 4
            let entry = Entry(keyStart: keyStart, keyLength: keyLength, keyOffset: keyOffset, type: type, valueOffset: pos)
            pos = try skipValue(b, type, at: pos, depth: 0)
            layout.entries.append(entry)
            if b.equals(keyStart, keyLength, alignmentKeyBytes) { alignmentEntry = entry }
        }
        layout.entryOrder = sortedOrder(layout.entries.count) { i in
            let e = layout.entries[i]
            return b.slice(e.keyStart, e.keyLength)
        } position: { layout.entries[$0].keyOffset }
        if let duplicate = firstDuplicate(layout.entryOrder, { i in
            let e = layout.entries[i]
            return b.slice(e.keyStart, e.keyLength)
        }, position: { layout.entries[$0].keyOffset }) {
            throw .malformedFile(offset: layout.entries[duplicate].keyOffset, reason: GGUFReason.duplicateKey)
        }
        if let entry = alignmentEntry {
            guard entry.type == .uint32 else {
                throw .malformedFile(offset: entry.keyOffset, reason: GGUFReason.alignmentNotUInt32)
            }
            let value = try b.u32(entry.valueOffset)
            guard value != 0, value & (value - 1) == 0, value % 8 == 0, let alignment = Int(exactly: value) else {
                throw .malformedFile(offset: entry.valueOffset, reason: GGUFReason.badAlignment)
            }
            layout.alignment = alignment
        }

        // Tensor infos.
        layout.tensors.reserveCapacity(tensorCount)
        var relativeOffsets: [UInt64] = []
        relativeOffsets.reserveCapacity(tensorCount)
        for _ in 0..<tensorCount {
            let infoOffset = pos
            let (nameStart, nameLength) = try b.stringRange(pos)
            guard nameLength <= maximumTensorNameLength else {
                throw .malformedFile(offset: infoOffset, reason: GGUFReason.tensorNameTooLong)
            }
            guard isValidUTF8(b.slice(nameStart, nameLength)) else {
                throw .malformedFile(offset: nameStart, reason: GGUFReason.tensorNameNotUTF8)
            }
            pos = nameStart + nameLength
            let rankOffset = pos
            let rank = try b.u32(rankOffset)
            guard rank >= 1, rank <= 4 else { throw .malformedFile(offset: rankOffset, reason: GGUFReason.badRank) }
            pos += 4
            // ggml `ne`, innermost first; Lichen's Shape is outermost first.
            var ne = [Int](repeating: 0, count: Int(rank))
            var elements = 1
            for i in 0..<Int(rank) {
                let dimOffset = pos + 8 * i
                let raw = try b.u64(dimOffset)
                guard raw != 0 else { throw .malformedFile(offset: dimOffset, reason: GGUFReason.zeroDimension) }
                guard let d = Int(exactly: raw) else {
                    throw .malformedFile(offset: dimOffset, reason: GGUFReason.tensorTooLarge)
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw .malformedFile(offset: dimOffset, reason: GGUFReason.tensorTooLarge) }
                elements = product
                ne[i] = d
            }
            let dimsOffset = pos
            pos += 8 * Int(rank)
            let typeOffset = pos
            let rawType = try b.u32(typeOffset)
            pos += 4
            guard let type = ElementType(rawValue: rawType) else {
                throw .unsupportedTensorType(
                    tensor: b.string(nameStart, nameLength), type: Int(exactly: rawType) ?? Int.max)
            }
            guard ne[0] % type.blockLength == 0 else {
                throw .malformedFile(offset: dimsOffset, reason: GGUFReason.rowNotWholeBlocks)
            }
            guard let byteCount = type.byteCount(values: elements) else {
                throw .malformedFile(offset: dimsOffset, reason: GGUFReason.tensorTooLarge)
            }
            let offsetField = pos
            relativeOffsets.append(try b.u64(offsetField))
            pos += 8
            let shape: Shape
            do {
                shape = try Shape(dimensions: ne.reversed())
            } catch {
                throw .malformedFile(offset: dimsOffset, reason: GGUFReason.badRank)
            }
            layout.tensors.append(GGUFTensorInfo(
                name: b.string(nameStart, nameLength), type: type, shape: shape, fileOffset: 0, byteCount: byteCount,
                infoOffset: infoOffset, offsetFieldOffset: offsetField, nameStart: nameStart, nameLength: nameLength))
        }
        layout.tensorOrder = sortedOrder(layout.tensors.count) { i in
            b.slice(layout.tensors[i].nameStart, layout.tensors[i].nameLength)
        } position: { layout.tensors[$0].infoOffset }
        if let duplicate = firstDuplicate(layout.tensorOrder, { i in
            b.slice(layout.tensors[i].nameStart, layout.tensors[i].nameLength)
        }, position: { layout.tensors[$0].infoOffset }) {
            throw .malformedFile(offset: layout.tensors[duplicate].infoOffset, reason: GGUFReason.duplicateTensorName)
        }

        // Tensor data: aligned, inside the file, disjoint.
        let alignment = layout.alignment
        let (padded, overflow) = pos.addingReportingOverflow(alignment - 1)
        // safe: alignment is a power of two, so the mask clears the low bits.
        let dataOffset = overflow ? Int.max : padded & ~(alignment - 1)
        layout.dataOffset = dataOffset
        for i in 0..<layout.tensors.count {
            let t = layout.tensors[i]
            let raw = relativeOffsets[i]
            guard raw % UInt64(alignment) == 0 else {
                throw .malformedFile(offset: t.offsetFieldOffset, reason: GGUFReason.misalignedTensor)
            }
            guard !overflow, let relative = Int(exactly: raw) else {
                throw .malformedFile(offset: t.offsetFieldOffset, reason: GGUFReason.tensorPastEnd)
            }
            let (start, o1) = dataOffset.addingReportingOverflow(relative)
            let (end, o2) = start.addingReportingOverflow(t.byteCount)
            guard !o1, !o2, end <= b.count else {
                throw .malformedFile(offset: t.offsetFieldOffset, reason: GGUFReason.tensorPastEnd)
            }
            layout.tensors[i] = GGUFTensorInfo(
                name: t.name, type: t.type, shape: t.shape, fileOffset: start, byteCount: t.byteCount,
                infoOffset: t.infoOffset, offsetFieldOffset: t.offsetFieldOffset,
                nameStart: t.nameStart, nameLength: t.nameLength)
        }
        var byStart = Array(0..<layout.tensors.count)
        byStart.sort { x, y in
            let a = layout.tensors[x], c = layout.tensors[y]
            return a.fileOffset != c.fileOffset ? a.fileOffset < c.fileOffset : a.infoOffset < c.infoOffset
        }
        var k = 1
        while k < byStart.count {
            let previous = layout.tensors[byStart[k - 1]], next = layout.tensors[byStart[k]]
            // safe: both ends were checked to be inside the file.
            if previous.fileOffset + previous.byteCount > next.fileOffset {
                let later = previous.infoOffset > next.infoOffset ? previous : next
                throw .malformedFile(offset: later.offsetFieldOffset, reason: GGUFReason.tensorsOverlap)
            }
            k += 1
        }
        return layout
    }

    /// The bytes of "general.alignment".
    static var alignmentKeyBytes: UnsafeRawBufferPointer {
        let key: StaticString = "general.alignment"
        return UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
    }

    /// Reads a value type id at `offset`.
    static func valueType(_ b: GGUFBytes, _ offset: Int) throws(LichenError) -> GGUFValueType {
        guard let type = GGUFValueType(rawValue: try b.u32(offset)) else {
            throw .malformedFile(offset: offset, reason: GGUFReason.unknownValueType)
        }
        return type
    }

    /// Validates one value of `type` at `offset` and returns the offset just past it.
    /// Recursion is bounded by `maximumArrayDepth`.
    static func skipValue(_ b: GGUFBytes, _ type: GGUFValueType, at offset: Int, depth: Int) throws(LichenError) -> Int {
        switch type {
        case .string:
            let (start, length) = try b.stringRange(offset)
            guard isValidUTF8(b.slice(start, length)) else {
                throw .malformedFile(offset: offset, reason: GGUFReason.stringNotUTF8)
            }
            return start + length
        case .bool:
            let v = try b.u8(offset)
            guard v <= 1 else { throw .malformedFile(offset: offset, reason: GGUFReason.badBool) }
            return offset + 1
        case .array:
            guard depth < maximumArrayDepth else { throw .malformedFile(offset: offset, reason: GGUFReason.arrayTooDeep) }
            let elementType = try valueType(b, offset)
            let rawCount = try b.u64(offset + 4)
            var pos = offset + 12
            let left = UInt64(b.count - pos)  // safe: u64 proved pos <= count
            guard rawCount <= left / UInt64(elementType.minimumByteCount), let count = Int(exactly: rawCount) else {
                throw .malformedFile(offset: offset + 4, reason: GGUFReason.arrayCountTooLarge)
            }
            if let size = elementType.fixedByteCount, elementType != .bool {
                return pos + count * size  // safe: count * size <= bytes left, checked above
            }
            for _ in 0..<count {
                pos = try skipValue(b, elementType, at: pos, depth: depth + 1)
            }
            return pos
        default:
            let size = type.fixedByteCount ?? 1
            try b.require(offset, size)
            return offset + size
        }
    }

    /// Indices 0..<count sorted by their key bytes (ties by position, so the order is total).
    static func sortedOrder(
        _ count: Int, _ keyOf: (Int) -> UnsafeRawBufferPointer, position: (Int) -> Int
    ) -> [Int] {
        var order = Array(0..<count)
        order.sort { x, y in
            let c = compare(keyOf(x), keyOf(y))
            return c != 0 ? c < 0 : position(x) < position(y)
        }
        return order
    }

    /// In a sorted order, the later (by position) of the first two equal keys found, if any.
    static func firstDuplicate(
        _ order: [Int], _ keyOf: (Int) -> UnsafeRawBufferPointer, position: (Int) -> Int
    ) -> Int? {
        var found: Int? = nil
        var k = 1
        while k < order.count {
            if compare(keyOf(order[k - 1]), keyOf(order[k])) == 0 {
                // Ties are sorted by position, so order[k] is the later record; report the earliest such.
                if found.map({ position(order[k]) < position($0) }) ?? true { found = order[k] }
            }
            k += 1
        }
        return found
    }
}
