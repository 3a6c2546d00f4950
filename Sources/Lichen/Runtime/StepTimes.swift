import CRuntime

/// The durations of the last `window` steps (a ring in arena memory) and their percentiles.
///
/// The loop records with relaxed atomic stores (so a reader on another thread sees whole
/// values); a reader copies the ring into its own scratch and sorts the copy. Percentiles are
/// nearest-rank: the p-th is the ⌈p/100 · n⌉-th smallest of the n recorded durations.
///
/// - Note: `record` allocates nothing and takes no lock. `summary` takes the caller's lock
///   discipline: one reader at a time (the runtime calls it under its control mutex).
public final class StepTimes: @unchecked Sendable {
    public let window: Int
    private let ring: UnsafeMutableRawPointer    // window atomic cells
    private let counter: UnsafeMutableRawPointer // one atomic cell: steps recorded
    private let scratch: UnsafeMutablePointer<UInt64>
    // Keeps the region the ring lives in alive as long as this object.
    private let arena: Arena

    /// - Throws: `.invalidArgument` for a window below 1; `.budgetExceeded`.
    public init(window: Int, arena: Arena) throws(LichenError) {
        guard window >= 1 && window <= 1 << 20 else {
            throw .invalidArgument(name: "StepTimes.window", value: window, reason: "must be in 1...1048576")
        }
        self.window = window
        self.arena = arena
        let cell = lcr_atomic_cell_size()
        ring = try arena.allocatePersistent(byteCount: window * cell, alignment: lcr_atomic_cell_alignment())
        counter = try arena.allocatePersistent(byteCount: cell, alignment: lcr_atomic_cell_alignment())
        let raw = try arena.allocatePersistent(byteCount: window * 8, alignment: 8)
        scratch = raw.bindMemory(to: UInt64.self, capacity: window)
        for i in 0..<window { lcr_atomic_u64_store_relaxed(ring + i * cell, 0) }
        lcr_atomic_u64_store(counter, 0)
    }

    /// Records one step's duration. Loop side; allocates nothing.
    @inline(__always)
    public func record(nanoseconds: UInt64) {
        let n = lcr_atomic_u64_load_relaxed(counter)
        lcr_atomic_u64_store_relaxed(ring + Int(n % UInt64(window)) * lcr_atomic_cell_size(), nanoseconds)
        lcr_atomic_u64_store(counter, n &+ 1)
    }

    /// Steps recorded since creation or `clear()`.
    public var recordedCount: UInt64 { lcr_atomic_u64_load(counter) }

    /// Forgets every recorded duration (loop side, or while the loop is not stepping).
    public func clear() {
        lcr_atomic_u64_store(counter, 0)
    }

    /// p50, p99 and the maximum of the durations in the window (0s when none was recorded).
    public func summary() -> (p50: UInt64, p99: UInt64, max: UInt64, count: Int) {
        let total = lcr_atomic_u64_load(counter)
        let n = Int(min(total, UInt64(window)))
        guard n > 0 else { return (0, 0, 0, 0) }
        let cell = lcr_atomic_cell_size()
        for i in 0..<n { scratch[i] = lcr_atomic_u64_load_relaxed(ring + i * cell) }
        heapSort(scratch, count: n)
        return (StepTimes.nearestRank(scratch, count: n, percent: 50),
                StepTimes.nearestRank(scratch, count: n, percent: 99),
                scratch[n - 1], n)
    }

    /// The ⌈percent/100 · count⌉-th smallest of sorted `values`.
    static func nearestRank(_ values: UnsafeMutablePointer<UInt64>, count: Int, percent: Int) -> UInt64 {
        let rank = (percent * count + 99) / 100
        return values[max(1, min(count, rank)) - 1]
    }
}
