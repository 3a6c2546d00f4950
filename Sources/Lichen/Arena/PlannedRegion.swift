/// A planned step region inside an `Arena`: one block of `plan.plannedBytes` at `base`, with
/// buffer `id` at `base + plan.offsets[id]`. Non-owning: the arena owns the bytes, and the
/// region is valid as long as the arena lives (and is not rolled back past it).
public struct PlannedRegion {
    /// First byte of the region (16-byte aligned).
    public let base: UnsafeMutableRawPointer
    /// The plan the region was reserved for.
    public let plan: MemoryPlan

    /// Bytes of the region.
    public var byteCount: Int { plan.plannedBytes }

    /// The address of buffer `id`.
    /// - Throws: `.invalidArgument` for an id the plan does not have.
    public func pointer(forBuffer id: Int) throws(LichenError) -> UnsafeMutableRawPointer {
        guard id >= 0 && id < plan.count else {
            throw .invalidArgument(name: "PlannedRegion.buffer", value: id, reason: "no such buffer in the plan")
        }
        // safe: offsets[id] + roundedSizes[id] <= plannedBytes, the region's size.
        return base + plan.offsets[id]
    }

    /// A tensor view over buffer `id` (its rounded size is the view's buffer size).
    /// - Throws: as `pointer(forBuffer:)` and `TensorView.init`.
    public func view(forBuffer id: Int, type: ElementType, shape: Shape) throws(LichenError) -> TensorView {
        let p = try pointer(forBuffer: id)
        return try TensorView(base: p, byteCount: plan.roundedSizes[id], type: type, shape: shape)
    }
}
