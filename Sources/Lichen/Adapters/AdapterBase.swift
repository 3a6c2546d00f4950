/// Which base model an adapter belongs to: the base's `general.name`, its parameter count and a
/// 64-bit FNV-1a hash of its parameters.
///
/// The hash covers, for every parameter in store order, its name, its element count and, for
/// every f32 parameter that is not a linear or conv weight (biases, norm affine, running
/// statistics), its values' bits. Linear and conv weights enter by name and element count only,
/// so the f32 model and its Q8_0 / Q4_0 quantizations (which `lichen quantize` makes from it
/// with every other tensor copied unchanged) share one identity and an adapter trained over one
/// applies to the others. A retrained model of the same architecture differs in its biases and
/// norm parameters and so is another base.
public struct AdapterBase: Equatable, Sendable {
    /// The base model's `general.name`.
    public let name: String
    /// Sum of the element counts of every base parameter.
    public let parameterCount: Int
    /// FNV-1a 64 over the parameters as described above.
    public let hash: UInt64

    public init(name: String, parameterCount: Int, hash: UInt64) {
        self.name = name
        self.parameterCount = parameterCount
        self.hash = hash
    }

    /// The identity of the base model whose parameters are in `store`, named `name`.
    ///
    /// - Throws: `.unsupportedElementType` only for a store holding views it cannot read.
    /// - Note: Reads every non-weight f32 parameter once (load time).
    public init(name: String, store: ParameterStore) throws(LichenError) {
        var h = FNV1a64()
        var count = 0
        for i in 0..<store.count {
            let p = store[i]
            h.add(p.name)
            h.add(byte: 0)
            let n = p.value.elementCount
            h.add(UInt64(n))
            count += n
            if p.role != .weight && p.value.type == .f32 {
                try p.value.withFloats { (v) throws(LichenError) in
                    for k in 0..<v.count { h.add(UInt64(v[k].bitPattern)) }
                }
            }
        }
        self.init(name: name, parameterCount: count, hash: h.value)
    }
}

/// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3), over bytes.
struct FNV1a64 {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }

    /// The 8 bytes of `v`, little-endian.
    mutating func add(_ v: UInt64) {
        for k in 0..<8 { add(byte: UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) }
    }

    /// The UTF-8 bytes of `s`.
    mutating func add(_ s: String) {
        for b in s.utf8 { add(byte: b) }
    }
}
