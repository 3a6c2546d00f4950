/// SplitMix64 (Steele, Lea and Flood 2014): a small seeded generator whose output is the same
/// on every platform (64-bit integer arithmetic only).
public struct SplitMix64Random: Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0 ..< bound` without modulo bias (Lemire's multiply-shift with rejection).
    /// `bound` must be > 0.
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "bound must be > 0")
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }
}

/// A permutation of `0 ..< count` held in the arena (4 bytes per index), reshuffled by seed:
/// the order depends only on the seed and the count, never on earlier shuffles or the platform.
///
/// `shuffle(seed:)` resets to the identity and runs Fisher–Yates from the top: for
/// i = count−1 down to 1, swap i with j = `next(below: i + 1)` of `SplitMix64Random(seed:)`.
public struct SeededPermutation {
    public let count: Int
    private let storage: ByteView

    /// The identity permutation of `count` indices, storage from `arena`.
    /// - Throws: `.invalidArgument` for a count outside 0...2^32−1; `.budgetExceeded`.
    public init(count: Int, arena: Arena) throws(LichenError) {
        guard count >= 0 && UInt64(count) <= UInt64(UInt32.max) else {
            throw .invalidArgument(name: "count", value: count, reason: "must lie in 0...2^32-1")
        }
        self.count = count
        self.storage = try ByteView.allocate(byteCount: 4 * count, from: arena, alignment: 4)
        resetToIdentity()
    }

    /// Puts every index back in place.
    public func resetToIdentity() {
        for i in 0..<count { storage.setUInt32(UInt32(i), slot: i) }
    }

    /// The permutation for `seed` (see the type's comment). Allocates nothing.
    public func shuffle(seed: UInt64) {
        resetToIdentity()
        guard count > 1 else { return }
        var random = SplitMix64Random(seed: seed)
        var i = count - 1
        while i > 0 {
            let j = Int(random.next(below: UInt64(i + 1)))
            let a = storage.uint32(slot: i)
            storage.setUInt32(storage.uint32(slot: j), slot: i)
            storage.setUInt32(a, slot: j)
            i -= 1
        }
    }

    /// The index at position `position`; traps when out of range.
    public subscript(position: Int) -> Int {
        Int(storage.uint32(slot: position))
    }
}
