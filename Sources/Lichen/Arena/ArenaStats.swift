/// A snapshot of an `Arena`'s accounting, in bytes unless the name says otherwise.
///
/// The budget is `reservedBytes`. It is split into the control block, the low end
/// (`plannedBytes` + `persistentBytes` + alignment padding), the gap (`bytesLeft`) and the
/// heap end (`heapExtentBytes` + `heapWasteBytes`), so
/// `controlBytes + lowUsedBytes + bytesLeft + heapExtentBytes + heapWasteBytes == reservedBytes`.
public struct ArenaStats: Equatable, Sendable {
    /// The budget: size of the region.
    public var reservedBytes: Int
    /// The arena's own bookkeeping at the start of the region (inside the budget).
    public var controlBytes: Int
    /// Bytes of planned step regions (`Arena.reservePlan`).
    public var plannedBytes: Int
    /// Bytes of persistent objects (`Arena.allocatePersistent`).
    public var persistentBytes: Int
    /// The low end's extent: planned + persistent + alignment padding.
    public var lowUsedBytes: Int
    /// The highest `lowUsedBytes` seen.
    public var lowPeakBytes: Int
    /// Usable bytes of live heap allocations (jemalloc size classes, so >= the bytes asked).
    public var heapInUseBytes: Int
    /// The highest `heapInUseBytes` seen.
    public var heapPeakBytes: Int
    /// Bytes handed to jemalloc as extents, including its metadata. Only grows.
    public var heapExtentBytes: Int
    /// Bytes skipped at the heap end to honour extent alignment.
    public var heapWasteBytes: Int
    /// The gap between the two ends.
    public var bytesLeft: Int
    /// Successful heap allocations, heap frees, and heap allocations that failed.
    public var heapAllocationCount: UInt64
    public var heapFreeCount: UInt64
    public var heapFailureCount: UInt64
    /// jemalloc extent hook calls: alloc (and how many were refused), dalloc, destroy, the rest.
    public var hookAllocCalls: UInt64
    public var hookAllocFailures: UInt64
    public var hookDeallocCalls: UInt64
    public var hookDestroyCalls: UInt64
    public var hookOtherCalls: UInt64
    /// Extents or heap pointers seen outside the heap end. Stays 0 unless jemalloc misbehaves.
    public var hookOutsideCount: UInt64
    /// The largest extent jemalloc asked for.
    public var largestHookRequest: Int
    /// jemalloc's page size (the heap end's granularity): 4 KiB on x86-64, 64 KiB on Debian arm64.
    public var heapPageSize: Int
    /// Address range of the region, the low end's bump pointer and the heap end's lowest address.
    public var regionStart: UInt
    public var regionEnd: UInt
    public var lowEnd: UInt
    public var highStart: UInt
}
