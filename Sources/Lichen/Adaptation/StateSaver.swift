import CRuntime

/// Saves a running method's adapted state (`AdaptedState`) to its state file (`StateFile`)
/// every N updates or S seconds, on the thread that owns the state: the learner thread in
/// learner mode (never the loop), the loop's thread in synchronous mode. A save happens before
/// an update and only while the collapse guard (if any) judges the predictions healthy, so the
/// file always holds a state the guard saw working.
///
/// The file image is made in a buffer planned at assembly and written atomically
/// (`AtomicFile`): nothing is allocated per save.
public final class StateSaver: @unchecked Sendable {
    public let path: String
    let temporary: String
    let state: AdaptedState
    let planText: String
    let modelHash: UInt64
    /// Save every this many updates (0: not by count) or nanoseconds (0: not by time).
    public let everyUpdates: Int
    public let everyNanoseconds: UInt64
    /// Whether saving is on (off after a refused state file that must not be overwritten).
    public internal(set) var enabled: Bool
    let image: UnsafeMutableRawBufferPointer

    private let cells: UnsafeMutableRawPointer
    static let savesCell = 0, failuresCell = 1, lastRealtimeCell = 2, lastDurationCell = 3, lastErrnoCell = 4
    static let cellCount = 5
    private var lastUpdates = 0
    private var lastTime: UInt64

    /// - Throws: `.budgetExceeded`.
    init(path: String, state: AdaptedState, planText: String, modelHash: UInt64, everyUpdates: Int, everySeconds: Double, enabled: Bool,
         arena: Arena) throws(LichenError) {
        self.path = path
        temporary = path + ".tmp"
        self.state = state
        self.planText = planText
        self.modelHash = modelHash
        self.everyUpdates = max(0, everyUpdates)
        everyNanoseconds = everySeconds > 0 ? UInt64(everySeconds * 1e9) : 0
        self.enabled = enabled
        let n = StateFile.byteCount(state: state, planText: planText)
        image = UnsafeMutableRawBufferPointer(start: try arena.allocatePersistent(byteCount: n, alignment: 16), count: n)
        let cell = lcr_atomic_cell_size()
        cells = try arena.allocatePersistent(byteCount: StateSaver.cellCount * cell, alignment: lcr_atomic_cell_alignment())
        for i in 0..<StateSaver.cellCount { lcr_atomic_u64_store(cells + i * cell, 0) }
        lastTime = lcr_os_monotonic_ns()
    }

    private func cell(_ i: Int) -> UnsafeMutableRawPointer { cells + i * lcr_atomic_cell_size() }

    /// Saves made, saves that failed (the previous file stays), and the last one's wall-clock
    /// time (Unix ns), duration (ns) and, when it failed, errno. Any thread.
    public var saveCount: UInt64 { lcr_atomic_u64_load(cell(StateSaver.savesCell)) }
    public var failureCount: UInt64 { lcr_atomic_u64_load(cell(StateSaver.failuresCell)) }
    public var lastSaveUnixNanoseconds: UInt64 { lcr_atomic_u64_load(cell(StateSaver.lastRealtimeCell)) }
    public var lastSaveNanoseconds: UInt64 { lcr_atomic_u64_load(cell(StateSaver.lastDurationCell)) }

    /// Before an update (the state's owner thread): saves when N updates or S seconds passed
    /// since the last save.
    /// - Note: Allocates nothing.
    func beforeUpdate(updates: Int, frames: Int) {
        guard enabled else { return }
        let t = lcr_os_monotonic_ns()
        let byCount = everyUpdates > 0 && updates - lastUpdates >= everyUpdates
        let byTime = everyNanoseconds > 0 && t &- lastTime >= everyNanoseconds
        guard byCount || byTime else { return }
        lastUpdates = updates
        lastTime = t
        _ = try? save(updates: updates, frames: frames)
    }

    /// Writes the state file now.
    /// - Throws: what `StateFile.write` and `AtomicFile.write` throw (the previous file stays).
    /// - Note: Allocates nothing.
    @discardableResult
    public func save(updates: Int, frames: Int) throws(LichenError) -> Int {
        let started = lcr_os_monotonic_ns()
        do throws(LichenError) {
            let n = try StateFile.write(state: state, planText: planText, modelHash: modelHash, updates: updates, frames: frames, into: image)
            try AtomicFile.write(path: path, temporary: temporary) { emit in emit(UnsafeRawBufferPointer(rebasing: image[0..<n])) }
            lcr_atomic_u64_store(cell(StateSaver.lastDurationCell), lcr_os_monotonic_ns() &- started)
            lcr_atomic_u64_store(cell(StateSaver.lastRealtimeCell), lcr_os_realtime_ns())
            _ = lcr_atomic_u64_fetch_add(cell(StateSaver.savesCell), 1)
            return n
        } catch {
            if case .fileError(_, _, let code) = error { lcr_atomic_u64_store(cell(StateSaver.lastErrnoCell), UInt64(UInt32(bitPattern: code))) }
            _ = lcr_atomic_u64_fetch_add(cell(StateSaver.failuresCell), 1)
            throw error
        }
    }
}
