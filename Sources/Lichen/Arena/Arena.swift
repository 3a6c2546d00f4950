import CRuntime

/// The memory budget: one region of `byteCount` bytes that everything Lichen allocates after
/// start-up lives in, carved from both ends (the C side is `CRuntime/include/lcr_arena.h`).
///
/// - The low end grows up: planned step regions (`reservePlan`) and persistent objects
///   (`allocatePersistent`), bump-allocated, never freed one by one.
/// - The high end grows down: one jemalloc arena whose extents come only from this region
///   (`heapAllocate` / `heapFree`), for objects made while running (hot-swapped adapters,
///   new skills). Freed extents stay with jemalloc for reuse; the high end never gives bytes
///   back to the gap.
///
/// A request that does not fit throws `.budgetExceeded(asked:left:)` and changes nothing.
///
/// Minimum budget: jemalloc takes its arena metadata (2 MiB at 2 MiB alignment on Debian's
/// x86-64 and arm64 builds) from the region when the arena is created, so a budget below
/// about 2 MiB + `ArenaStats.controlBytes` fails with `.budgetExceeded`; the first heap
/// allocation needs up to 7 heap pages more (`Arena.minimumByteCount`).
///
/// Threads: the C layer is thread-safe (a mutex guards the boundary between the ends, and the
/// extent hooks may run on any thread). Load-time use of the low end is expected from one
/// thread; the heap may be used from a control thread while steps run.
public final class Arena: @unchecked Sendable {
    // safe: non-nil for the life of the object; destroyed in deinit only.
    private let handle: OpaquePointer
    /// The budget in bytes.
    public let byteCount: Int
    /// Whether the region belongs to the caller (`init(buffer:byteCount:)`).
    public let usesCallerBuffer: Bool

    /// Heap allocations are aligned to at least this much by default.
    public static let defaultAlignment = 16

    /// A budget that holds the arena's own metadata and one first small heap allocation on this
    /// machine's jemalloc: 2 MiB (metadata) + control block + 8 jemalloc pages (a slab of any
    /// small size class takes at most 7 pages; the 112-byte class takes exactly 7). Measured:
    /// 2 MiB + control + 6 pages creates the arena but cannot serve a 100-byte request, on
    /// x86-64 (4 KiB pages) and on Debian's arm64 jemalloc (64 KiB pages) alike.
    public static var minimumByteCount: Int {
        (2 << 20) + lcr_arena_control_bytes() + 8 * heapPageSize
    }

    /// jemalloc's page size (its extent granularity).
    public static var heapPageSize: Int {
        Int(lcr_arena_heap_page_size())
    }

    /// Reserves a region of `byteCount` bytes (anonymous memory, backed only when touched).
    ///
    /// - Throws: `.invalidArgument` for `byteCount <= 0`; `.budgetExceeded` when the budget
    ///   cannot hold the arena's own metadata (asked = the block needed, left = the bytes there
    ///   were); `.systemError` when the reservation fails.
    public init(byteCount: Int) throws(LichenError) {
        guard byteCount > 0 else {
            throw .invalidArgument(name: "Arena.byteCount", value: byteCount, reason: "must be > 0")
        }
        self.handle = try Arena.create(buffer: nil, byteCount: byteCount)
        self.byteCount = byteCount
        self.usesCallerBuffer = false
    }

    /// An arena over the caller's buffer, which must stay valid, and untouched by anyone else,
    /// until the arena is gone. The arena never frees it.
    ///
    /// - Throws: as `init(byteCount:)`.
    public init(buffer: UnsafeMutableRawPointer, byteCount: Int) throws(LichenError) {
        guard byteCount > 0 else {
            throw .invalidArgument(name: "Arena.byteCount", value: byteCount, reason: "must be > 0")
        }
        self.handle = try Arena.create(buffer: buffer, byteCount: byteCount)
        self.byteCount = byteCount
        self.usesCallerBuffer = true
    }

    deinit {
        lcr_arena_destroy(handle)
    }

    private static func create(buffer: UnsafeMutableRawPointer?, byteCount: Int) throws(LichenError) -> OpaquePointer {
        var out: OpaquePointer? = nil
        var result = lcr_arena_create_result()
        let status = lcr_arena_create(buffer, byteCount, &out, &result)
        switch status {
        case LCR_ARENA_OK:
            if let out { return out }
            throw .systemError(call: "lcr_arena_create", errno: 0)
        case LCR_ARENA_BUDGET:
            throw .budgetExceeded(asked: result.needed, left: result.left)
        case LCR_ARENA_SYSTEM:
            throw .systemError(call: "mmap", errno: Int32(result.error))
        case LCR_ARENA_INVALID:
            throw .invalidArgument(name: "Arena.buffer", value: byteCount, reason: "buffer and size do not describe a region")
        default:
            throw .systemError(call: "mallctl", errno: Int32(result.error))
        }
    }

    // MARK: - Low end

    /// `byteCount` bytes from the low end that live as long as the arena.
    ///
    /// - Parameters:
    ///   - alignment: a power of two (default 16).
    /// - Throws: `.invalidArgument` for a negative size or a bad alignment;
    ///   `.budgetExceeded(asked: byteCount, left:)` with the bytes the low end could still give
    ///   at that alignment.
    public func allocatePersistent(byteCount: Int, alignment: Int = Arena.defaultAlignment) throws(LichenError)
        -> UnsafeMutableRawPointer
    {
        try take(byteCount: byteCount, alignment: alignment, use: LCR_ARENA_USE_PERSISTENT)
    }

    /// Reserves the region a `MemoryPlan` describes, 16-byte aligned, from the low end.
    /// - Throws: `.budgetExceeded(asked: plan.plannedBytes, left:)`.
    public func reservePlan(_ plan: MemoryPlan) throws(LichenError) -> PlannedRegion {
        let base = try take(byteCount: plan.plannedBytes, alignment: Planner.alignment, use: LCR_ARENA_USE_PLANNED)
        return PlannedRegion(base: base, plan: plan)
    }

    /// The low end's position, to roll back to with `resetLowEnd(to:)`.
    public func lowEndMark() -> LowEndMark {
        LowEndMark(raw: lcr_arena_get_mark(handle))
    }

    /// Rolls the low end back to `mark`: everything planned or allocated persistently after
    /// it is gone (pointers into it must no longer be used).
    /// - Throws: `.invalidArgument` when `mark` is ahead of the current position.
    public func resetLowEnd(to mark: LowEndMark) throws(LichenError) {
        guard lcr_arena_reset(handle, mark.raw) == 0 else {
            throw .invalidArgument(name: "Arena.mark", value: mark.raw.low_used_bytes, reason: "mark is ahead of the low end")
        }
    }

    private func take(byteCount: Int, alignment: Int, use: lcr_arena_use) throws(LichenError) -> UnsafeMutableRawPointer {
        guard byteCount >= 0 else {
            throw .invalidArgument(name: "Arena.byteCount", value: byteCount, reason: "must be >= 0")
        }
        guard alignment > 0 && alignment & (alignment - 1) == 0 else {
            throw .invalidArgument(name: "Arena.alignment", value: alignment, reason: "must be a power of two")
        }
        guard let p = lcr_arena_take(handle, byteCount, alignment, use) else {
            throw .budgetExceeded(asked: byteCount, left: Int(lcr_arena_low_available(handle, alignment)))
        }
        return p
    }

    // MARK: - Heap (high end)

    /// `byteCount` bytes from the capped jemalloc heap, freed with `heapFree`.
    ///
    /// - Parameters:
    ///   - alignment: a power of two (default 16).
    /// - Throws: `.invalidArgument` for a size <= 0 or a bad alignment;
    ///   `.budgetExceeded(asked: byteCount, left:)` where `left` is the gap between the two
    ///   ends. jemalloc rounds to size classes and grows in whole pages, so a request can fail
    ///   while `left` is still a little larger than `asked`.
    public func heapAllocate(byteCount: Int, alignment: Int = Arena.defaultAlignment) throws(LichenError)
        -> UnsafeMutableRawPointer
    {
        guard byteCount > 0 else {
            throw .invalidArgument(name: "Arena.heapByteCount", value: byteCount, reason: "must be > 0")
        }
        guard alignment > 0 && alignment & (alignment - 1) == 0 else {
            throw .invalidArgument(name: "Arena.alignment", value: alignment, reason: "must be a power of two")
        }
        guard let p = lcr_arena_heap_alloc(handle, byteCount, alignment) else {
            throw .budgetExceeded(asked: byteCount, left: stats.bytesLeft)
        }
        return p
    }

    /// Frees a pointer from `heapAllocate` of this arena. Returns false, and frees nothing,
    /// when the pointer does not lie in this arena's heap end. (A pointer inside the heap end
    /// that `heapAllocate` did not return is a bug jemalloc cannot survive.)
    @discardableResult
    public func heapFree(_ pointer: UnsafeMutableRawPointer) -> Bool {
        lcr_arena_heap_free(handle, pointer) == 0
    }

    /// The usable size of a live heap allocation (>= the bytes asked for).
    public func heapUsableSize(_ pointer: UnsafeMutableRawPointer) -> Int {
        Int(lcr_arena_heap_usable_size(handle, pointer))
    }

    // MARK: - Accounting

    /// jemalloc's own statistic `stats.arenas.<i>.<name>` for this arena's heap ("mapped",
    /// "retained", "resident", "base", ...), or nil when jemalloc has no such size statistic.
    /// "mapped" counts every extent the heap got, so it equals `stats.heapExtentBytes` when
    /// jemalloc took memory only from this region.
    /// The corresponding C function is `lcr_arena_jemalloc_stat`.
    public func jemallocStatistic(_ name: StaticString) -> Int? {
        var value = 0
        // safe: a StaticString's bytes are NUL-terminated UTF-8.
        let rc = lcr_arena_jemalloc_stat(handle, UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self), &value)
        return rc == 0 ? value : nil
    }

    /// Whether `[pointer, pointer + byteCount)` lies inside the region.
    public func contains(_ pointer: UnsafeRawPointer, byteCount: Int) -> Bool {
        byteCount >= 0 && lcr_arena_contains(handle, pointer, byteCount) != 0
    }

    /// A snapshot of the accounting.
    public var stats: ArenaStats {
        var s = lcr_arena_stats()
        lcr_arena_get_stats(handle, &s)
        return ArenaStats(
            reservedBytes: Int(s.reserved_bytes),
            controlBytes: Int(s.control_bytes),
            plannedBytes: Int(s.planned_bytes),
            persistentBytes: Int(s.persistent_bytes),
            lowUsedBytes: Int(s.low_used_bytes),
            lowPeakBytes: Int(s.low_peak_bytes),
            heapInUseBytes: Int(s.heap_allocated_bytes),
            heapPeakBytes: Int(s.heap_peak_bytes),
            heapExtentBytes: Int(s.heap_extent_bytes),
            heapWasteBytes: Int(s.heap_waste_bytes),
            bytesLeft: Int(s.bytes_left),
            heapAllocationCount: s.heap_alloc_count,
            heapFreeCount: s.heap_free_count,
            heapFailureCount: s.heap_alloc_failures,
            hookAllocCalls: s.hook_alloc_calls,
            hookAllocFailures: s.hook_alloc_failures,
            hookDeallocCalls: s.hook_dalloc_calls,
            hookDestroyCalls: s.hook_destroy_calls,
            hookOtherCalls: s.hook_other_calls,
            hookOutsideCount: s.hook_outside_count,
            largestHookRequest: Int(s.largest_hook_request),
            heapPageSize: Int(s.jemalloc_page),
            regionStart: UInt(s.region_start),
            regionEnd: UInt(s.region_end),
            lowEnd: UInt(s.low_end),
            highStart: UInt(s.high_start)
        )
    }
}

/// A position of an arena's low end (`Arena.lowEndMark()`).
public struct LowEndMark: Sendable {
    let raw: lcr_arena_mark
}
