/// A zero-filled block of bytes from an arena's capped heap (its high end), freed when the
/// last reference goes: the memory of long-lived objects created while running (adapters
/// loaded by hot-swap, adapter sets), which come and go without growing the budget's use.
///
/// Code outside the unsafe folders reaches the bytes only through `view(byteOffset:type:shape:)`.
/// The views do not keep the buffer alive: whoever holds them holds the buffer too.
/// `@unchecked Sendable`: the pointer and size never change, the arena's heap is thread-safe, and
/// the bytes are written only by the owner of the object that holds the buffer.
public final class HeapBuffer: @unchecked Sendable {
    /// The arena the bytes came from (and go back to).
    public let arena: Arena
    /// Bytes asked for.
    public let byteCount: Int
    // safe: `byteCount` bytes from `arena.heapAllocate`, owned until deinit.
    private let base: UnsafeMutableRawPointer

    /// `byteCount` zero bytes (at least 1) from `arena`'s heap, 64-byte aligned.
    ///
    /// - Throws: `.invalidArgument` for a negative size; `.budgetExceeded(asked:left:)`.
    /// - Note: Allocates (from the arena's heap only).
    public init(arena: Arena, byteCount: Int) throws(LichenError) {
        guard byteCount >= 0 else {
            throw .invalidArgument(name: "HeapBuffer.byteCount", value: byteCount, reason: "must be >= 0")
        }
        let bytes = max(byteCount, 1)
        let p = try arena.heapAllocate(byteCount: bytes, alignment: 64)
        // safe: the heap just gave `bytes` bytes at p.
        p.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        self.arena = arena
        self.byteCount = byteCount
        self.base = p
    }

    deinit {
        arena.heapFree(base)
    }

    /// Bytes the heap actually holds for this buffer (jemalloc's size class, >= `byteCount`).
    public var usableByteCount: Int { arena.heapUsableSize(base) }

    /// A contiguous view of `type` and `shape` starting `byteOffset` bytes into the buffer.
    ///
    /// - Throws: `.outOfBounds` when the view would reach past the buffer; as `TensorView.init`.
    /// - Note: Allocates nothing.
    public func view(byteOffset: Int, type: ElementType, shape: Shape) throws(LichenError) -> TensorView {
        guard byteOffset >= 0 && byteOffset <= byteCount else {
            throw .outOfBounds(operand: "HeapBuffer.view", end: byteOffset, limit: byteCount)
        }
        // safe: byteOffset lies inside the block; TensorView.init checks the rest fits.
        return try TensorView(base: base + byteOffset, byteCount: byteCount - byteOffset, type: type, shape: shape)
    }
}
