/// One buffer the planner places: its size and the steps (operator indices) from its first
/// to its last use, both inclusive. Two buffers may share bytes only when their lifetimes
/// do not overlap.
public struct PlannedBuffer: Equatable, Sendable {
    public let byteCount: Int
    public let firstUse: Int
    public let lastUse: Int

    /// - Throws: `.invalidArgument` for a negative size or step, or `lastUse < firstUse`.
    public init(byteCount: Int, firstUse: Int, lastUse: Int) throws(LichenError) {
        guard byteCount >= 0 else {
            throw .invalidArgument(name: "PlannedBuffer.byteCount", value: byteCount, reason: "must be >= 0")
        }
        guard byteCount <= Int.max - Planner.alignment else {
            throw .invalidArgument(name: "PlannedBuffer.byteCount", value: byteCount, reason: "too large to round up")
        }
        guard firstUse >= 0 else {
            throw .invalidArgument(name: "PlannedBuffer.firstUse", value: firstUse, reason: "must be >= 0")
        }
        guard lastUse >= firstUse else {
            throw .invalidArgument(name: "PlannedBuffer.lastUse", value: lastUse, reason: "must be >= firstUse")
        }
        self.byteCount = byteCount
        self.firstUse = firstUse
        self.lastUse = lastUse
    }

    /// Whether both buffers are alive at some common step.
    public func isAlive(togetherWith other: PlannedBuffer) -> Bool {
        firstUse <= other.lastUse && other.firstUse <= lastUse
    }

    /// Whether the buffer is alive at `step`.
    public func isAlive(at step: Int) -> Bool { firstUse <= step && step <= lastUse }
}

/// Places step buffers inside one region so that buffers alive at the same time never share
/// bytes, keeping the region small: TensorFlow Lite Micro's GreedyMemoryPlanner.
///
/// Sizes are rounded up to 16 bytes and every offset is a multiple of 16. Buffers are placed
/// largest first (ties: the one added first); each goes into the lowest gap, between the
/// already-placed buffers whose lifetimes overlap its own, that is large enough, or else just
/// above the highest of them. O(n^2) in the number of buffers.
///
/// - Note: Uses Swift arrays. Planning happens once, when a model is loaded, never in a step.
public struct Planner: Sendable {
    /// Alignment of every offset and granularity of every size.
    public static let alignment = 16

    /// The buffers added so far, in the order they were added (their ids).
    public private(set) var buffers: [PlannedBuffer] = []

    public init() {}

    /// Adds a buffer and returns its id (its index in the plan).
    /// - Throws: `.invalidArgument` as `PlannedBuffer.init` does.
    @discardableResult
    public mutating func addBuffer(byteCount: Int, firstUse: Int, lastUse: Int) throws(LichenError) -> Int {
        buffers.append(try PlannedBuffer(byteCount: byteCount, firstUse: firstUse, lastUse: lastUse))
        return buffers.count - 1
    }

    /// Adds a buffer and returns its id.
    @discardableResult
    public mutating func add(_ buffer: PlannedBuffer) -> Int {
        buffers.append(buffer)
        return buffers.count - 1
    }

    /// Places every buffer.
    /// - Throws: `.invalidArgument` when the plan's size would overflow `Int`.
    public func plan() throws(LichenError) -> MemoryPlan {
        let n = buffers.count
        var sizes: [Int] = []
        sizes.reserveCapacity(n)
        var sum = 0
        for b in buffers {
            let rounded = Planner.roundUp(b.byteCount)
            let (s, o) = sum.addingReportingOverflow(rounded)
            if o { throw .invalidArgument(name: "Planner.sumOfSizes", value: n, reason: "total size overflows") }
            sum = s
            sizes.append(rounded)
        }
        // Largest first; equal sizes keep the order they were added in (deterministic).
        var order = Array(0..<n)
        order.sort { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : $0 < $1 }

        var offsets = [Int](repeating: 0, count: n)
        // Placed buffer ids, ordered by offset (ties by end offset), as TFLM's linked list.
        var placed: [Int] = []
        placed.reserveCapacity(n)
        var highWater = 0
        for id in order {
            let size = sizes[id]
            let me = buffers[id]
            var candidate = 0
            for other in placed where sizes[other] > 0 && me.isAlive(togetherWith: buffers[other]) {
                let start = offsets[other]
                // The gap below `other` holds the buffer: first fit.
                if start >= candidate && start - candidate >= size { break }
                candidate = max(candidate, start + sizes[other])  // cannot overflow: <= sum
            }
            offsets[id] = candidate
            highWater = max(highWater, candidate + size)
            // Insert keeping `placed` ordered by offset.
            var i = placed.count
            while i > 0 && offsets[placed[i - 1]] > candidate { i -= 1 }
            placed.insert(id, at: i)
        }
        return MemoryPlan(buffers: buffers, roundedSizes: sizes, offsets: offsets, plannedBytes: highWater, sumOfSizes: sum)
    }

    /// `byteCount` rounded up to `alignment` (callers checked it cannot overflow).
    @inline(__always)
    static func roundUp(_ byteCount: Int) -> Int {
        (byteCount + (alignment - 1)) & ~(alignment - 1)
    }
}

/// The planner's output: an offset for every buffer inside one region of `plannedBytes`.
public struct MemoryPlan: Equatable, Sendable {
    /// The buffers, by id.
    public let buffers: [PlannedBuffer]
    /// Each buffer's size rounded up to `Planner.alignment`.
    public let roundedSizes: [Int]
    /// Each buffer's offset from the region's base (multiples of `Planner.alignment`).
    public let offsets: [Int]
    /// The region's size: the highest `offset + roundedSize` (0 for no buffers).
    public let plannedBytes: Int
    /// The plain sum of the rounded sizes: what the region would need without reuse.
    public let sumOfSizes: Int

    /// The number of buffers.
    public var count: Int { buffers.count }

    init(buffers: [PlannedBuffer], roundedSizes: [Int], offsets: [Int], plannedBytes: Int, sumOfSizes: Int) {
        self.buffers = buffers
        self.roundedSizes = roundedSizes
        self.offsets = offsets
        self.plannedBytes = plannedBytes
        self.sumOfSizes = sumOfSizes
    }

    /// A plan with offsets chosen elsewhere (an offline plan stored with a model). Not checked
    /// for overlaps: call `overlapsWhileAlive()` before trusting it.
    /// - Throws: `.invalidArgument` when the counts differ, an offset is negative or not a
    ///   multiple of `Planner.alignment`, or the region's size overflows.
    public init(buffers: [PlannedBuffer], offsets: [Int]) throws(LichenError) {
        guard buffers.count == offsets.count else {
            throw .invalidArgument(name: "MemoryPlan.offsets", value: offsets.count, reason: "one offset per buffer required")
        }
        var sizes: [Int] = []
        sizes.reserveCapacity(buffers.count)
        var sum = 0
        var high = 0
        for (i, b) in buffers.enumerated() {
            let size = Planner.roundUp(b.byteCount)
            let offset = offsets[i]
            guard offset >= 0 && offset % Planner.alignment == 0 else {
                throw .invalidArgument(name: "MemoryPlan.offset", value: offset, reason: "must be >= 0 and 16-aligned")
            }
            let (end, o1) = offset.addingReportingOverflow(size)
            let (s, o2) = sum.addingReportingOverflow(size)
            if o1 || o2 { throw .invalidArgument(name: "MemoryPlan.offset", value: offset, reason: "region size overflows") }
            sum = s
            high = max(high, end)
            sizes.append(size)
        }
        self.init(buffers: buffers, roundedSizes: sizes, offsets: offsets, plannedBytes: high, sumOfSizes: sum)
    }

    /// Whether two buffers that are alive at the same step share a byte. A correct plan
    /// returns false. O(n^2); for tests and debug builds.
    public func overlapsWhileAlive() -> Bool {
        let n = buffers.count
        for i in 0..<n where roundedSizes[i] > 0 {
            for j in (i + 1)..<n where roundedSizes[j] > 0 && buffers[i].isAlive(togetherWith: buffers[j]) {
                let disjoint = offsets[i] + roundedSizes[i] <= offsets[j] || offsets[j] + roundedSizes[j] <= offsets[i]
                if !disjoint { return true }
            }
        }
        return false
    }
}
