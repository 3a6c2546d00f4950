import CRuntime

/// Hands immutable objects (adapter sets) from control threads to the control loop at a step
/// boundary, without the loop ever waiting.
///
/// - Control side (`publish`, `collect`, `latest`; any thread, serialised by a mutex the loop
///   never takes): `publish` gives the value a new generation, keeps a strong reference to it
///   and puts it in the pending cell with one atomic exchange.
/// - Loop side (`acquire`, `confirm`; one thread, the one that steps): at the start of a step,
///   one atomic exchange empties the pending cell; if it held something, that becomes the loop's
///   value. After the step, `confirm` stores its generation in a second atomic cell ("the loop
///   has left everything older"). The loop holds no strong reference of its own, and since the
///   control side keeps its reference to the older values until that store, nothing the loop
///   releases (a graph's reference to the previous set) is ever the last one: the loop never
///   frees anything.
/// - `collect` (control side) drops the references to every value older than the generation
///   the loop has published: the loop has left them, so their memory is freed on the control
///   thread. A value published and replaced before the loop took it is dropped at once by the
///   publish that replaced it (its exchange got it back from the pending cell, so the loop can
///   never take it): a burst of publishes between two steps holds two values, not all of them.
///
/// The loop only ever moves to newer generations, so a value is never freed while a step can
/// still see it, and every step sees exactly one value from start to end.
public final class StepBoundarySwap<Value: AnyObject>: @unchecked Sendable {
    /// One published value. `value` nil means "nothing" (no adapter).
    final class Entry {
        let generation: UInt64
        let value: Value?

        init(generation: UInt64, value: Value?) {
            self.generation = generation
            self.value = value
        }
    }

    // Two atomic cells from the arena: [0] the pending entry (unretained), [1] the generation
    // the loop is on.
    private let cells: UnsafeMutableRawPointer
    private let mutex: UnsafeMutableRawPointer
    // Keeps the region the cells and the mutex live in alive until deinit is done with them.
    private let arena: Arena
    // Control side, under `mutex`: every entry that may still be seen, oldest first.
    private var owned: [Entry] = []
    private var nextGeneration: UInt64 = 1
    // Loop side: the entry the loop is on (kept alive by `owned`).
    private var loopEntry: UnsafeMutableRawPointer
    private var unconfirmed = false

    /// - Parameter initial: the value the loop starts with (generation 0).
    /// - Throws: `.budgetExceeded` (cells and mutex come from `arena`); `.systemError` when
    ///   the mutex cannot be initialised.
    public init(initial: Value?, arena: Arena) throws(LichenError) {
        self.arena = arena
        cells = try arena.allocatePersistent(byteCount: 2 * lcr_atomic_cell_size(), alignment: lcr_atomic_cell_alignment())
        mutex = try arena.allocatePersistent(byteCount: lcr_os_mutex_size(), alignment: max(16, lcr_os_mutex_alignment()))
        let rc = lcr_os_mutex_init(mutex)
        guard rc == 0 else { throw .systemError(call: "pthread_mutex_init", errno: Int32(rc)) }
        let first = Entry(generation: 0, value: initial)
        owned.append(first)
        loopEntry = Unmanaged.passUnretained(first).toOpaque()
        lcr_atomic_pointer_store(cells, nil)
        lcr_atomic_u64_store(cells + 8, 0)
    }

    deinit {
        lcr_os_mutex_destroy(mutex)
    }

    // MARK: - Loop side

    /// The value for the step about to start: the newest published one if there is a new one,
    /// else the one the previous step saw. One atomic exchange; no lock, no allocation, no free.
    /// Call `confirm()` once the step no longer needs anything older.
    @inline(__always)
    public func acquire() -> Value? {
        if let p = lcr_atomic_pointer_exchange(cells, nil) {
            loopEntry = p
            unconfirmed = true
        }
        // safe: `owned` keeps the entry alive until the loop confirms a newer generation.
        return Unmanaged<Entry>.fromOpaque(loopEntry).takeUnretainedValue().value
    }

    /// Tells the control side that the loop has left every value older than the one
    /// `acquire()` returned (one atomic store when the value changed; nothing otherwise).
    /// Until then those values stay alive, so anything the step did with the previous value
    /// (a graph still referring to it) can never be what frees it.
    /// - Returns: whether the step had picked up a new value.
    @inline(__always)
    @discardableResult
    public func confirm() -> Bool {
        guard unconfirmed else { return false }
        unconfirmed = false
        let entry = Unmanaged<Entry>.fromOpaque(loopEntry).takeUnretainedValue()
        lcr_atomic_u64_store(cells + 8, entry.generation)
        return true
    }

    /// The generation the loop is on (what it stored last).
    public var loopGeneration: UInt64 { lcr_atomic_u64_load(cells + 8) }

    // MARK: - Control side

    /// Publishes `value` for the loop's next step and returns its generation. Frees what the
    /// loop has left (`collect`).
    @discardableResult
    public func publish(_ value: Value?) -> UInt64 {
        lcr_os_mutex_lock(mutex)
        let entry = Entry(generation: nextGeneration, value: value)
        nextGeneration += 1
        owned.append(entry)
        dropUntaken(lcr_atomic_pointer_exchange(cells, Unmanaged.passUnretained(entry).toOpaque()))
        collectLocked()
        lcr_os_mutex_unlock(mutex)
        return entry.generation
    }

    /// Drops the entry a publish took back out of the pending cell: the exchange handed it to
    /// this thread, not to the loop, so the loop never saw it and never will (it only moves to
    /// what it takes from the cell). Without this a burst of publishes between two steps kept
    /// every replaced set alive until the loop's next step, and could fill the budget.
    private func dropUntaken(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        // safe: `owned` still holds the entry (it is released only here or by collect).
        if let i = owned.firstIndex(where: { Unmanaged.passUnretained($0).toOpaque() == pointer }) {
            owned.remove(at: i)
        }
    }

    /// Drops every value the loop has left. Returns how many were dropped.
    @discardableResult
    public func collect() -> Int {
        lcr_os_mutex_lock(mutex)
        let n = collectLocked()
        lcr_os_mutex_unlock(mutex)
        return n
    }

    @discardableResult
    private func collectLocked() -> Int {
        let left = lcr_atomic_u64_load(cells + 8)
        var dropped = 0
        while owned.count > 1 && owned[0].generation < left {
            owned.removeFirst()
            dropped += 1
        }
        return dropped
    }

    /// The newest published value and its generation (what the loop will see from its next
    /// step on).
    public func latest() -> (value: Value?, generation: UInt64) {
        lcr_os_mutex_lock(mutex)
        let e = owned[owned.count - 1]
        lcr_os_mutex_unlock(mutex)
        return (e.value, e.generation)
    }

    /// Runs `body` with the newest value while holding the control side's lock, so a
    /// read-modify-publish sequence (`publishLocked`) is not interleaved with another one.
    public func update<R>(_ body: (_ current: Value?, _ publish: (Value?) -> UInt64) throws(LichenError) -> R) throws(LichenError) -> R {
        lcr_os_mutex_lock(mutex)
        defer { lcr_os_mutex_unlock(mutex) }
        let current = owned[owned.count - 1].value
        return try body(current) { value in
            let entry = Entry(generation: self.nextGeneration, value: value)
            self.nextGeneration += 1
            self.owned.append(entry)
            self.dropUntaken(lcr_atomic_pointer_exchange(self.cells, Unmanaged.passUnretained(entry).toOpaque()))
            self.collectLocked()
            return entry.generation
        }
    }

    /// Values held for the loop (the newest plus those it may not have left yet).
    public var heldCount: Int {
        lcr_os_mutex_lock(mutex)
        let n = owned.count
        lcr_os_mutex_unlock(mutex)
        return n
    }
}
