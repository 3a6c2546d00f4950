/// Metadata lookup: typed getters over the validated key/value records. Values are read from
/// the file's bytes when asked for; arrays are copied only by the getters that return them.
extension GGUFFile {
    /// Number of metadata key/value pairs.
    public var metadataCount: Int { layout.entries.count }

    /// The keys in file order.
    public var metadataKeys: [String] {
        layout.entries.map { bytes.string($0.keyStart, $0.keyLength) }
    }

    /// Whether the file has metadata key `key`.
    public func contains(_ key: String) -> Bool { entryIndex(key) != nil }

    /// The type of the value under `key`, or nil if there is none.
    public func type(of key: String) -> GGUFValueType? {
        entryIndex(key).map { layout.entries[$0].type }
    }

    /// The value under `key`, copied into memory (arrays with all their elements).
    /// - Throws: `.notFound(kind: "metadata key", name:)`.
    public func value(_ key: String) throws(LichenError) -> GGUFMetadataValue {
        let e = try entry(key)
        return decode(e.type, at: e.valueOffset).value
    }

    /// The value under `key` with every array (nested ones too) cut to its first
    /// `arrayElementLimit` elements, and the full element count of the top-level array (nil
    /// for a scalar). What a listing shows: a 30 MB u8 array costs `arrayElementLimit` values,
    /// not 30 million (`value(_:)` materialises them all, about 1.5 GiB).
    /// - Throws: `.notFound(kind: "metadata key", name:)`.
    /// - Note: Allocates at most `arrayElementLimit` values per array level.
    public func value(_ key: String, arrayElementLimit: Int) throws(LichenError) -> (value: GGUFMetadataValue, count: Int?) {
        let e = try entry(key)
        let limit = max(0, arrayElementLimit)
        let count: Int? = e.type == .array ? arrayView(key: key, at: e.valueOffset).count : nil
        return (decode(e.type, at: e.valueOffset, arrayElementLimit: limit).value, count)
    }

    /// The string under `key`.
    /// - Throws: `.notFound`; `.valueTypeMismatch` unless the value is a string.
    public func string(_ key: String) throws(LichenError) -> String {
        let e = try entry(key, expecting: .string)
        return readString(at: e.valueOffset).value
    }

    /// The uint32 under `key` (exactly a uint32, as `general.alignment` and
    /// `general.quantization_version` are).
    /// - Throws: `.notFound`; `.valueTypeMismatch` unless the value is a uint32.
    public func uint32(_ key: String) throws(LichenError) -> UInt32 {
        let e = try entry(key, expecting: .uint32)
        return readU32(e.valueOffset)
    }

    /// The integer under `key`, of any of the eight integer types.
    /// - Throws: `.notFound`; `.valueTypeMismatch` for a non-integer, or a uint64 above `Int.max`.
    public func int(_ key: String) throws(LichenError) -> Int {
        let e = try entry(key)
        guard e.type.isInteger, let v = integer(e.type, at: e.valueOffset) else {
            throw .valueTypeMismatch(key: key, expected: "integer that fits in Int", got: e.type.name)
        }
        return v
    }

    /// The float under `key`: a float32, or a float64 rounded to the nearest float.
    /// - Throws: `.notFound`; `.valueTypeMismatch` unless the value is a float32 or float64.
    public func float(_ key: String) throws(LichenError) -> Float {
        let e = try entry(key)
        switch decode(e.type, at: e.valueOffset).value {
        case .float32(let v): return v
        case .float64(let v): return Float(v)
        default: throw .valueTypeMismatch(key: key, expected: "float32 or float64", got: e.type.name)
        }
    }

    /// The float64 under `key` (a float32 is widened exactly).
    /// - Throws: `.notFound`; `.valueTypeMismatch` unless the value is a float32 or float64.
    public func double(_ key: String) throws(LichenError) -> Double {
        let e = try entry(key)
        switch decode(e.type, at: e.valueOffset).value {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: throw .valueTypeMismatch(key: key, expected: "float32 or float64", got: e.type.name)
        }
    }

    /// The bool under `key`.
    /// - Throws: `.notFound`; `.valueTypeMismatch` unless the value is a bool.
    public func bool(_ key: String) throws(LichenError) -> Bool {
        let e = try entry(key, expecting: .bool)
        return bytes.base.load(fromByteOffset: e.valueOffset, as: UInt8.self) != 0
    }

    /// The array under `key`, as a lazy view: element type and count, elements on demand.
    /// - Throws: `.notFound`; `.valueTypeMismatch` unless the value is an array.
    public func array(_ key: String) throws(LichenError) -> GGUFArray {
        let e = try entry(key, expecting: .array)
        return arrayView(key: key, at: e.valueOffset)
    }

    /// The integer array under `key` (elements of any integer type that fit in Int).
    public func ints(_ key: String) throws(LichenError) -> [Int] { try array(key).ints() }
    /// The float array under `key` (float32 or float64 elements).
    public func floats(_ key: String) throws(LichenError) -> [Float] { try array(key).floats() }
    /// The string array under `key`.
    public func strings(_ key: String) throws(LichenError) -> [String] { try array(key).strings() }

    // MARK: - Internals (offsets here were all validated at open)

    func entry(_ key: String) throws(LichenError) -> Entry {
        guard let i = entryIndex(key) else { throw .notFound(kind: "metadata key", name: key) }
        return layout.entries[i]
    }

    func entry(_ key: String, expecting type: GGUFValueType) throws(LichenError) -> Entry {
        let e = try entry(key)
        guard e.type == type else { throw .valueTypeMismatch(key: key, expected: type.name, got: e.type.name) }
        return e
    }

    func entryIndex(_ key: String) -> Int? {
        var k = key
        return k.withUTF8 { utf8 -> Int? in
            let entries = layout.entries
            return GGUFFile.search(layout.entryOrder, UnsafeRawBufferPointer(utf8)) {
                bytes.slice(entries[$0].keyStart, entries[$0].keyLength)
            }
        }
    }

    func arrayView(key: String, at offset: Int) -> GGUFArray {
        let type = GGUFValueType(rawValue: readU32(offset)) ?? .uint8  // validated at open
        let count = Int(truncatingIfNeeded: readU64(offset + 4))  // validated: fits in the file
        return GGUFArray(file: self, key: key, elementType: type, count: count, elementsOffset: offset + 12)
    }

    func readU32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: bytes.base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func readU64(_ offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    func readString(at offset: Int) -> (value: String, end: Int) {
        let length = Int(truncatingIfNeeded: readU64(offset))  // validated at open
        return (bytes.string(offset + 8, length), offset + 8 + length)
    }

    /// An integer of integer type `type` at `offset`, or nil if it does not fit in Int.
    func integer(_ type: GGUFValueType, at offset: Int) -> Int? {
        let p = bytes.base
        switch type {
        case .uint8: return Int(p.load(fromByteOffset: offset, as: UInt8.self))
        case .int8: return Int(p.load(fromByteOffset: offset, as: Int8.self))
        case .uint16: return Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
        case .int16: return Int(Int16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: Int16.self)))
        case .uint32: return Int(exactly: readU32(offset))
        case .int32: return Int(exactly: Int32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
        case .uint64: return Int(exactly: readU64(offset))
        case .int64: return Int(exactly: Int64(bitPattern: readU64(offset)))
        default: return nil
        }
    }

    /// The value of `type` at `offset` and the offset just past it.
    func decode(_ type: GGUFValueType, at offset: Int) -> (value: GGUFMetadataValue, end: Int) {
        decode(type, at: offset, arrayElementLimit: Int.max)
    }

    /// The offset just past the value of `type` at `offset`, without materialising it.
    func skip(_ type: GGUFValueType, at offset: Int) -> Int {
        if let size = type.fixedByteCount { return offset + size }
        switch type {
        case .string:
            // safe: validation checked every string's length lies inside the file.
            return offset + 8 + Int(truncatingIfNeeded: readU64(offset))
        case .array:
            let view = arrayView(key: "", at: offset)
            if let size = view.elementType.fixedByteCount { return view.elementsOffset + view.count * size }
            var pos = view.elementsOffset
            for _ in 0..<view.count { pos = skip(view.elementType, at: pos) }
            return pos
        default:
            return offset
        }
    }

    /// `decode(_:at:)` keeping at most `arrayElementLimit` elements of each array (the offset
    /// returned is still the one past the whole value).
    func decode(_ type: GGUFValueType, at offset: Int, arrayElementLimit: Int) -> (value: GGUFMetadataValue, end: Int) {
        let p = bytes.base
        switch type {
        case .uint8: return (.uint8(p.load(fromByteOffset: offset, as: UInt8.self)), offset + 1)
        case .int8: return (.int8(p.load(fromByteOffset: offset, as: Int8.self)), offset + 1)
        case .uint16:
            return (.uint16(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))), offset + 2)
        case .int16:
            return (.int16(Int16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: Int16.self))), offset + 2)
        case .uint32: return (.uint32(readU32(offset)), offset + 4)
        case .int32: return (.int32(Int32(bitPattern: readU32(offset))), offset + 4)
        case .float32: return (.float32(Float(bitPattern: readU32(offset))), offset + 4)
        case .bool: return (.bool(p.load(fromByteOffset: offset, as: UInt8.self) != 0), offset + 1)
        case .string:
            let (s, end) = readString(at: offset)
            return (.string(s), end)
        case .array:
            let view = arrayView(key: "", at: offset)
            let kept = min(view.count, arrayElementLimit)
            var elements: [GGUFMetadataValue] = []
            elements.reserveCapacity(kept)
            var pos = view.elementsOffset
            for _ in 0..<kept {
                let (v, end) = decode(view.elementType, at: pos, arrayElementLimit: arrayElementLimit)
                elements.append(v)
                pos = end
            }
            if kept < view.count {
                if let size = view.elementType.fixedByteCount {
                    pos = view.elementsOffset + view.count * size
                } else {
                    for _ in kept..<view.count { pos = skip(view.elementType, at: pos) }
                }
            }
            return (.array(elementType: view.elementType, elements: elements), pos)
        case .uint64: return (.uint64(readU64(offset)), offset + 8)
        case .int64: return (.int64(Int64(bitPattern: readU64(offset))), offset + 8)
        case .float64: return (.float64(Double(bitPattern: readU64(offset))), offset + 8)
        }
    }
}

/// A metadata array in a `GGUFFile`, read in place. Typed getters copy the elements out.
/// Keeps its file alive.
public struct GGUFArray {
    let file: GGUFFile
    let key: String
    /// The type of every element.
    public let elementType: GGUFValueType
    /// Number of elements.
    public let count: Int
    let elementsOffset: Int

    /// The elements as values (nested arrays included).
    public func values() -> [GGUFMetadataValue] {
        if case .array(_, let elements) = file.decode(.array, at: elementsOffset - 12).value { return elements }
        return []
    }

    /// Integer elements (any integer element type).
    /// - Throws: `.valueTypeMismatch` for other element types or a uint64 above `Int.max`.
    public func ints() throws(LichenError) -> [Int] {
        guard elementType.isInteger, let size = elementType.fixedByteCount else {
            throw .valueTypeMismatch(key: key, expected: "array of integers", got: elementType.name)
        }
        var out: [Int] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            guard let v = file.integer(elementType, at: elementsOffset + i * size) else {
                throw .valueTypeMismatch(key: key, expected: "integers that fit in Int", got: elementType.name)
            }
            out.append(v)
        }
        return out
    }

    /// Float elements (float32, or float64 rounded to float).
    /// - Throws: `.valueTypeMismatch` for other element types.
    public func floats() throws(LichenError) -> [Float] {
        guard elementType == .float32 || elementType == .float64 else {
            throw .valueTypeMismatch(key: key, expected: "array of floats", got: elementType.name)
        }
        var out: [Float] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            if elementType == .float32 {
                out.append(Float(bitPattern: file.readU32(elementsOffset + 4 * i)))
            } else {
                out.append(Float(Double(bitPattern: file.readU64(elementsOffset + 8 * i))))
            }
        }
        return out
    }

    /// Bool elements.
    /// - Throws: `.valueTypeMismatch` for other element types.
    public func bools() throws(LichenError) -> [Bool] {
        guard elementType == .bool else {
            throw .valueTypeMismatch(key: key, expected: "array of bools", got: elementType.name)
        }
        let p = file.bytes.base
        return (0..<count).map { p.load(fromByteOffset: elementsOffset + $0, as: UInt8.self) != 0 }
    }

    /// String elements.
    /// - Throws: `.valueTypeMismatch` for other element types.
    public func strings() throws(LichenError) -> [String] {
        guard elementType == .string else {
            throw .valueTypeMismatch(key: key, expected: "array of strings", got: elementType.name)
        }
        var out: [String] = []
        out.reserveCapacity(count)
        var pos = elementsOffset
        for _ in 0..<count {
            let (s, end) = file.readString(at: pos)
            out.append(s)
            pos = end
        }
        return out
    }

    /// Nested array elements, as lazy views.
    /// - Throws: `.valueTypeMismatch` for other element types.
    public func arrays() throws(LichenError) -> [GGUFArray] {
        guard elementType == .array else {
            throw .valueTypeMismatch(key: key, expected: "array of arrays", got: elementType.name)
        }
        var out: [GGUFArray] = []
        out.reserveCapacity(count)
        var pos = elementsOffset
        for _ in 0..<count {
            out.append(file.arrayView(key: key, at: pos))
            // Cannot fail: the file was validated at open with at least this much depth left.
            pos = (try? GGUFFile.skipValue(file.bytes, .array, at: pos, depth: 1)) ?? file.bytes.count
        }
        return out
    }
}
