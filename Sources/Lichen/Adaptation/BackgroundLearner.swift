import CRuntime

/// Updates off the control thread: the frame adapter's loop side predicts every frame through a
/// published fused version and hands windows over; a learner thread the runtime owns runs the
/// method's update on them and publishes the result as a new version.
///
/// Versions. Two fused predictions (`FusedPrediction`) are the two buffers; version v lives in
/// buffer v % 2. Version 0 is the fused fold made at assembly (the model as loaded, normalised
/// with its running statistics). The learner publishes version v + 1 by refolding buffer
/// (v + 1) % 2 and storing v + 1 in the published cell (one atomic store); the loop picks it up
/// at the start of its next step (one atomic load) and then stores v + 1 in the acknowledged
/// cell, which says it has left buffer v % 2. The learner refolds a buffer only after the loop
/// has acknowledged the version before it, so it never writes what the loop reads; the loop
/// never waits on the learner and frees nothing the learner made (every buffer lives in the
/// budget from assembly to teardown). Each buffer carries a stamp the learner makes odd before a
/// refold and even after it; the loop reads it before and after a prediction, and a prediction
/// that saw an odd or changed stamp counts as torn (`tornPredictions`, 0 unless the protocol is
/// broken; the checks assert it).
///
/// Jobs. The loop hands over a job only while the learner is idle: a copy of the window (the
/// learner's own snapshot buffer), the frame count it ends at, and whether to reset the
/// trainables first (a collapse guard's verdict or `lichen_reset`). An update due while the
/// learner is busy waits for the first frame at which it is idle and then takes the window of
/// that frame; frames that no handed-over window contained are counted as dropped. Nothing queues
/// up without bound and nothing is allocated per job.
///
/// The loop's thread keeps the frame ring, the schedule, the guard and the published-version
/// counters; the learner's thread keeps the session (graph, trainables, optimizer, teacher and
/// anchor copies) and the snapshot. Calls that read or write the session from the loop's thread
/// (`quiesce` first) wait for the running job to end: setting a method, checkpointing, restoring.
///
/// - Note: Construction allocates (the second fused prediction, the snapshot, the cells, the
///   thread's storage, the update-time ring, all in the budget; the thread's stack outside it);
///   nothing else does.
public final class BackgroundLearner: @unchecked Sendable {
    /// Where and how the learner thread runs.
    public struct Settings: Sendable, Equatable {
        /// The CPU the thread is pinned to (nil: wherever the scheduler puts it).
        public var cpu: Int?
        /// The thread's nice value, -20...19 (0: the process's). Raising it is always allowed;
        /// lowering it below the process's needs CAP_SYS_NICE or RLIMIT_NICE on Linux.
        public var nice: Int

        public init(cpu: Int? = nil, nice: Int = 0) {
            self.cpu = cpu
            self.nice = nice
        }
    }

    let session: AdaptationSession
    /// The two version buffers: `versions[v % 2]` holds version v.
    let versions: [FusedPrediction]
    /// [window, input shape...]: the window of the job the learner works on.
    let snapshot: TensorView
    public let settings: Settings
    /// Durations of the learner's last jobs (update and refold), nanoseconds.
    public let updateTimes: StepTimes
    /// Bytes construction took from the budget: in all (the second version's step regions
    /// included), and of those the persistent ones (folded copies, snapshot, cells, times).
    public let reservedBytes: Int
    public let persistentBytes: Int
    public let plannedBytes: Int

    private let cells: UnsafeMutableRawPointer
    private let worker: UnsafeMutableRawPointer
    private var started = false

    // Cells shared by the two threads.
    static let stateCell = 0            // 0 idle, 1 job handed over, 2 working
    static let publishedCell = 1        // newest version published
    static let acknowledgedCell = 2     // version the loop predicts with
    static let jobRowsCell = 3
    static let jobFrameCell = 4
    static let jobFlagsCell = 5         // bit 0: update, bit 1: reset first
    static let updatesCell = 6
    static let failedCell = 7
    static let lossCell = 8
    static let resetsCell = 9
    static let refusedCell = 10
    static let stampCell = 11           // 11, 12: the buffers' stamps
    static let versionFrameCell = 13    // 13, 14: the frame count each buffer's window ended at
    static let allocatedCell = 15       // the thread's allocated-bytes total after its last job
    static let firstAllocatedCell = 16  // ... after its first job
    static let lastGoodResetsCell = 17
    static let cellCount = 18

    static let idle: UInt64 = 0, handedOver: UInt64 = 1, working: UInt64 = 2

    // Loop side (the loop's thread only).
    /// The version the loop predicts with.
    public private(set) var currentVersion: UInt64 = 0
    /// Frames no handed-over window contained.
    public private(set) var droppedFrames = 0
    /// Frames between the newest prediction and the end of the window the version it used learned
    /// from (the frame count, before the first version).
    public private(set) var lag = 0
    public private(set) var maximumLag = 0
    /// Predictions that saw a buffer being written (0 unless the protocol is broken).
    public private(set) var tornPredictions = 0
    /// Jobs handed over.
    public private(set) var jobCount = 0
    /// Frames the handed-over windows brought to the learner (new frames only; with
    /// `droppedFrames` they make up every frame up to `lastUpdateFrame`, after the first window).
    public private(set) var learnedFrames = 0
    var updateDue = false
    var resetDue = false
    /// Loop side: whether the guard judged the predictions healthy when the update fell due
    /// (the learner then keeps the last good state and may save the file first).
    var healthy = true
    /// Loop side: whether the reset asked for returns to the last good state.
    var resetToLastGood = false
    /// Set at assembly, before the thread starts: the state, the guard's last good copy, the saver.
    var state: AdaptedState?
    var lastGood: AdaptedState.Copy?
    var saver: StateSaver?
    /// Resets to the last good state the learner made.
    public var lastGoodResetCount: Int { Int(load(BackgroundLearner.lastGoodResetsCell)) }
    /// The frame count at the last window handed over for an update.
    public private(set) var lastUpdateFrame = 0

    init(session: AdaptationSession, first: FusedPrediction, window: Int, inputShape: Shape, settings: Settings, arena: Arena,
         kernels: Kernels) throws(LichenError) {
        let before = arena.stats.lowUsedBytes, persistentBefore = arena.stats.persistentBytes
        let plannedBefore = arena.stats.plannedBytes
        self.session = session
        self.settings = settings
        guard let second = try session.policy.makeFused(spec: session.graph.spec, store: session.store, arena: arena, kernels: kernels) else {
            throw .invalidArgument(name: "learner", value: 1, reason: "the method's models have no fused form (an adapter is applied)")
        }
        versions = [first, second]
        var dims = [window]
        dims += inputShape.dimensions
        snapshot = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
        let cell = lcr_atomic_cell_size()
        cells = try arena.allocatePersistent(byteCount: BackgroundLearner.cellCount * cell, alignment: lcr_atomic_cell_alignment())
        for i in 0..<BackgroundLearner.cellCount { lcr_atomic_u64_store(cells + i * cell, 0) }
        worker = try arena.allocatePersistent(byteCount: lcr_worker_size(), alignment: max(16, lcr_worker_alignment()))
        updateTimes = try StepTimes(window: 1024, arena: arena)
        reservedBytes = arena.stats.lowUsedBytes - before
        persistentBytes = arena.stats.persistentBytes - persistentBefore
        plannedBytes = arena.stats.plannedBytes - plannedBefore
    }

    deinit { stop() }

    @inline(__always)
    private func cell(_ i: Int) -> UnsafeMutableRawPointer { cells + i * lcr_atomic_cell_size() }
    @inline(__always)
    private func load(_ i: Int) -> UInt64 { lcr_atomic_u64_load(cell(i)) }
    @inline(__always)
    private func store(_ i: Int, _ v: UInt64) { lcr_atomic_u64_store(cell(i), v) }

    /// Starts the thread.
    /// - Throws: `.systemError(call: "lcr_worker_start", errno:)` (EINVAL: a CPU the process
    ///   cannot run on; EPERM: a nice value it may not take).
    func start() throws(LichenError) {
        guard !started else { return }
        let code = lcr_worker_start(worker, { context in
            guard let context else { return }
            // safe: the learner stops (joins) the thread before it goes away.
            Unmanaged<BackgroundLearner>.fromOpaque(context).takeUnretainedValue().serve()
        }, Unmanaged.passUnretained(self).toOpaque(), Int32(settings.cpu ?? -1), Int32(settings.nice))
        guard code == 0 else { throw .systemError(call: "lcr_worker_start", errno: code) }
        started = true
    }

    /// Stops the thread: a running job finishes its current update (or its wait for the loop
    /// ends at once), then the thread is joined. Idempotent.
    func stop() {
        guard started else { return }
        lcr_worker_stop(worker)
        started = false
        store(BackgroundLearner.stateCell, BackgroundLearner.idle)
    }

    public var isRunning: Bool { started }
    /// Whether the learner has no job (handed over or running).
    public var isIdle: Bool { load(BackgroundLearner.stateCell) == BackgroundLearner.idle }
    /// Updates the learner made, failed (non-finite loss or gradients: nothing changed), resets.
    public var updateCount: Int { Int(load(BackgroundLearner.updatesCell)) }
    public var failedUpdateCount: Int { Int(load(BackgroundLearner.failedCell)) }
    public var resetCount: Int { Int(load(BackgroundLearner.resetsCell)) }
    /// Refolds refused (the version was not published).
    public var refusedRefoldCount: Int { Int(load(BackgroundLearner.refusedCell)) }
    /// Bytes the learner thread allocated between the end of its first job and the end of its
    /// last (jemalloc's per-thread counter; the first job's kernels set up their per-thread
    /// packing buffers). Nil before the first job.
    public var allocatedBytesAfterFirstJob: Int? {
        let first = load(BackgroundLearner.firstAllocatedCell)
        guard first != 0 else { return nil }
        return Int(load(BackgroundLearner.allocatedCell) &- (first & ~(1 << 63)))
    }
    /// The newest version published.
    public var publishedVersion: UInt64 { load(BackgroundLearner.publishedCell) }
    /// The loss of the learner's last update.
    public var lastLoss: Float { Float(bitPattern: UInt32(truncatingIfNeeded: load(BackgroundLearner.lossCell))) }

    // MARK: - Loop side

    /// Moves to the newest published version (one atomic load, and one store when it changed).
    /// - Note: Allocates nothing. Loop thread.
    public func pickUp() {
        let p = load(BackgroundLearner.publishedCell)
        if p != currentVersion {
            currentVersion = p
            store(BackgroundLearner.acknowledgedCell, p)
        }
    }

    /// Hands the window over when a job is due and the learner is idle.
    /// - Parameters:
    ///   - window: the frames the job learns from (rows of the frame ring).
    ///   - frameCount: the loop's frame count at the window's end.
    /// - Note: Allocates nothing. Loop thread.
    func handOver(window: TensorView, frameCount: Int) throws(LichenError) {
        guard updateDue || resetDue, started, isIdle else { return }
        let rows = window.shape[0]
        try snapshot.leadingRows(0, count: rows).copy(from: window)
        store(BackgroundLearner.jobRowsCell, UInt64(rows))
        store(BackgroundLearner.jobFrameCell, UInt64(frameCount))
        store(BackgroundLearner.jobFlagsCell, (updateDue ? 1 : 0) | (resetDue ? 2 : 0) | (healthy && updateDue ? 4 : 0)
                  | (resetDue && resetToLastGood ? 8 : 0))
        if updateDue {
            let fresh = frameCount - lastUpdateFrame
            if fresh > rows { droppedFrames += fresh - rows }
            learnedFrames += min(fresh, rows)
            lastUpdateFrame = frameCount
        }
        updateDue = false
        resetDue = false
        resetToLastGood = false
        jobCount += 1
        store(BackgroundLearner.stateCell, BackgroundLearner.handedOver)
        lcr_worker_signal(worker)
    }

    /// The logits `[1, classes]` of `frame` through the current version; counts a torn read.
    /// - Note: Allocates nothing. Loop thread.
    public func predict(_ frame: TensorView, frameCount: Int) throws(LichenError) -> TensorView {
        let b = Int(currentVersion % 2)
        let stamp = load(BackgroundLearner.stampCell + b)
        let z = try versions[b].predict(frame)
        let after = load(BackgroundLearner.stampCell + b)
        if stamp != after || stamp & 1 == 1 { tornPredictions += 1 }
        let made = currentVersion == 0 ? 0 : Int(load(BackgroundLearner.versionFrameCell + b))
        lag = frameCount - made
        if lag > maximumLag { maximumLag = lag }
        return z
    }

    /// Waits until the learner has no job (the loop's thread, outside `step`: a method change,
    /// a checkpoint, a restore). Jobs are only handed over by the loop, so none starts after.
    func quiesce() {
        guard started else { return }
        while !isIdle { lcr_worker_sleep_us(100) }
    }

    /// Refolds the buffer after the current version from the session's state and publishes it,
    /// on the loop's thread (after `quiesce`, when the loop changed the trainables itself: a
    /// restore, or updates made synchronously while an adapter was applied).
    func republish(frameCount: Int) {
        pickUp()
        publish(after: currentVersion, frameCount: frameCount)
        pickUp()
    }

    /// Forgets the loop-side counts (a new stream): the next update starts a fresh window.
    func clearSchedule(frameCount: Int) {
        updateDue = false
        lastUpdateFrame = frameCount
    }

    // MARK: - Learner side

    /// The thread's body: waits for jobs until stopped.
    private func serve() {
        while lcr_worker_wait(worker) == 0 {
            guard load(BackgroundLearner.stateCell) == BackgroundLearner.handedOver else { continue }
            store(BackgroundLearner.stateCell, BackgroundLearner.working)
            let started = lcr_os_monotonic_ns()
            work()
            updateTimes.record(nanoseconds: lcr_os_monotonic_ns() &- started)
            var allocated: UInt64 = 0, freed: UInt64 = 0
            if lcr_thread_allocation_totals(&allocated, &freed) == 0 {
                if load(BackgroundLearner.firstAllocatedCell) == 0 { store(BackgroundLearner.firstAllocatedCell, allocated | 1 << 63) }
                store(BackgroundLearner.allocatedCell, allocated)
            }
            store(BackgroundLearner.stateCell, BackgroundLearner.idle)
        }
    }

    /// One job: reset (when asked), update on the snapshot, then refold and publish.
    private func work() {
        let rows = Int(load(BackgroundLearner.jobRowsCell))
        let frame = Int(load(BackgroundLearner.jobFrameCell))
        let flags = load(BackgroundLearner.jobFlagsCell)
        guard rows >= 1, let batch = try? snapshot.leadingRows(0, count: rows) else { return }
        if flags & 2 != 0 {
            if flags & 8 != 0, let state, let lastGood, lastGood.isSet, (try? state.load(from: lastGood)) != nil {
                lastGood.isSet = false
                _ = lcr_atomic_u64_fetch_add(cell(BackgroundLearner.lastGoodResetsCell), 1)
            } else if (try? session.reset()) != nil {
                _ = lcr_atomic_u64_fetch_add(cell(BackgroundLearner.resetsCell), 1)
            }
        }
        if flags & 4 != 0, let state {
            // The guard judged the predictions of the current state healthy.
            if let lastGood { try? state.save(into: lastGood) }
            saver?.beforeUpdate(updates: updateCount, frames: frame)
        }
        if flags & 1 != 0 {
            do {
                _ = try session.step(batch: batch)
                _ = lcr_atomic_u64_fetch_add(cell(BackgroundLearner.updatesCell), 1)
                store(BackgroundLearner.lossCell, UInt64(session.lastLoss.bitPattern))
            } catch {
                _ = lcr_atomic_u64_fetch_add(cell(BackgroundLearner.failedCell), 1)
                return
            }
        } else {
            // A reset alone: statistics of the reset trainables over the window, for the refold.
            guard (try? session.policy.predict(input: batch, statistics: .computedAndSaved, row: 0)) != nil else { return }
        }
        // Wait until the loop has left the buffer this version goes into.
        let published = load(BackgroundLearner.publishedCell)
        while load(BackgroundLearner.acknowledgedCell) != published {
            if lcr_worker_stopping(worker) != 0 { return }
            lcr_worker_sleep_us(100)
        }
        publish(after: published, frameCount: frame)
    }

    /// Refolds the buffer of version `after + 1` and publishes it (the loop has acknowledged
    /// `after`, so nothing reads that buffer).
    private func publish(after: UInt64, frameCount: Int) {
        let next = after + 1
        let b = Int(next % 2)
        let stamp = cell(BackgroundLearner.stampCell + b)
        _ = lcr_atomic_u64_fetch_add(stamp, 1)  // odd: being written
        let folded = versions[b].refold(session.policy)
        _ = lcr_atomic_u64_fetch_add(stamp, 1)  // even: complete
        guard folded else {
            _ = lcr_atomic_u64_fetch_add(cell(BackgroundLearner.refusedCell), 1)
            return
        }
        store(BackgroundLearner.versionFrameCell + b, UInt64(frameCount))
        store(BackgroundLearner.publishedCell, next)
    }
}
