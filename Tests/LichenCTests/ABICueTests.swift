import CRuntime
import LichenC
import Testing

/// The cue learners' C ABI: each export pinned to its lichen.h prototype (a mismatch does not
/// compile), and the calls a robot makes, through the header's symbols.
@Suite("The C ABI's cue learners")
struct ABICueTests {
    @Test("every cue export has the type of its lichen.h prototype")
    func pinned() {
        var pinned: [String] = []
        do { var f = CRuntime.lichen_cue_default_params; f = LichenC.lichenCueDefaultParams; pinned.append("default_params"); _ = f }
        do { var f = CRuntime.lichen_cue_create; f = LichenC.lichenCueCreate; pinned.append("create"); _ = f }
        do { var f = CRuntime.lichen_cue_destroy; f = LichenC.lichenCueDestroy; pinned.append("destroy"); _ = f }
        do { var f = CRuntime.lichen_cue_tick; f = LichenC.lichenCueTick; pinned.append("tick"); _ = f }
        do { var f = CRuntime.lichen_cue_set_policy; f = LichenC.lichenCueSetPolicy; pinned.append("set_policy"); _ = f }
        do { var f = CRuntime.lichen_cue_state_size; f = LichenC.lichenCueStateSize; pinned.append("state_size"); _ = f }
        do { var f = CRuntime.lichen_cue_save; f = LichenC.lichenCueSave; pinned.append("save"); _ = f }
        do { var f = CRuntime.lichen_cue_restore; f = LichenC.lichenCueRestore; pinned.append("restore"); _ = f }
        #expect(pinned.count == 8)
        let p = CRuntime.lichen_cue_default_params()
        #expect(p.feature_count == 21 && p.neighbours == 5 && p.capacity == 2435 && p.retrain_interval == 200 && p.smoothing == 5)
    }

    @Test("create in a runtime's budget, tick, bad input with the status and the last error, save and restore, destroy frees the block")
    func lifecycle() throws {
        var rp = lichen_runtime_default_params()
        rp.budget_bytes = 16 << 20
        var rt: OpaquePointer? = nil
        #expect(lichen_runtime_create(&rp, &rt) == LICHEN_STATUS_OK)
        defer { lichen_runtime_destroy(rt) }
        var before = lichen_metrics()
        #expect(lichen_metrics_get(rt, &before) == LICHEN_STATUS_OK)

        var p = lichen_cue_default_params()
        p.feature_count = 2; p.neighbours = 1; p.capacity = 64; p.retrain_interval = 8; p.smoothing = 1
        p.decision_threshold = 10; p.danger_threshold = 20; p.trusted_timeout = 3
        var bad = p
        bad.policy = 9
        var cue: OpaquePointer? = OpaquePointer(bitPattern: 1)
        #expect(lichen_cue_create(rt, &bad, &cue) == LICHEN_STATUS_INVALID_ARGUMENT && cue == nil)
        bad = p
        bad.decision_threshold = .nan
        #expect(lichen_cue_create(rt, &bad, &cue) == LICHEN_STATUS_NON_FINITE)
        #expect(lichen_cue_create(rt, &p, &cue) == LICHEN_STATUS_OK && cue != nil)
        var during = lichen_metrics()
        #expect(lichen_metrics_get(rt, &during) == LICHEN_STATUS_OK)
        #expect(during.heap_in_use_bytes > before.heap_in_use_bytes, "the learner's block is in the budget")

        // The script of the core checks: the gate opens on the third retrain.
        let cycle: [Float] = [5, 12, 8, 15, 6, 14, 9, 13]
        var out = lichen_cue_output()
        func tick(_ target: Float, _ valid: Bool) -> lichen_status {
            let x: [Float] = [target / 10, 1]
            return lichen_cue_tick(cue, x, 2, target, valid ? 1 : 0, &out)
        }
        for t in 0..<24 { #expect(tick(cycle[t % 8], true) == LICHEN_STATUS_OK) }
        #expect(out.qualified == 1 && out.estimate_threshold == 10.5)
        #expect(tick(5, true) == LICHEN_STATUS_OK && out.driver == UInt32(LICHEN_CUE_COMPLEMENTARY.rawValue) && out.obstacle == 0)
        #expect(tick(25, true) == LICHEN_STATUS_OK && out.driver == UInt32(LICHEN_CUE_TRUSTED.rawValue) && out.intervention == 1)

        // Bad input: statuses, the runtime's last error, nothing changed.
        let nan: [Float] = [.nan, 1]
        #expect(lichen_cue_tick(cue, nan, 2, 5, 1, &out) == LICHEN_STATUS_NON_FINITE)
        var text = [CChar](repeating: 0, count: 256)
        #expect(lichen_last_error(rt, &text, 256, nil) == LICHEN_STATUS_OK)
        #expect(String(cString: text).contains("features"))
        let three: [Float] = [1, 2, 3]
        #expect(lichen_cue_tick(cue, three, 3, 5, 1, &out) == LICHEN_STATUS_SHAPE_MISMATCH)
        #expect(lichen_cue_tick(cue, nil, 2, 5, 1, &out) == LICHEN_STATUS_INVALID_ARGUMENT)
        #expect(lichen_cue_tick(nil, three, 2, 5, 1, &out) == LICHEN_STATUS_INVALID_ARGUMENT)
        #expect(lichen_cue_set_policy(cue, 7, 1) == LICHEN_STATUS_INVALID_ARGUMENT)

        // Save, restore into a second learner: the same estimates.
        var size = 0
        #expect(lichen_cue_state_size(cue, &size) == LICHEN_STATUS_OK && size == 4 * (10 + 64 * 4))
        var state = [Float](repeating: 0, count: size / 4)
        var written = 0
        #expect(state.withUnsafeMutableBytes { lichen_cue_save(cue, $0.baseAddress, size - 4, &written) } == LICHEN_STATUS_BUFFER_TOO_SMALL)
        #expect(state.withUnsafeMutableBytes { lichen_cue_save(cue, $0.baseAddress, size, &written) } == LICHEN_STATUS_OK && written == size)
        var twin: OpaquePointer? = nil
        #expect(lichen_cue_create(rt, &p, &twin) == LICHEN_STATUS_OK)
        var corrupt = state
        corrupt[0] = 1
        #expect(corrupt.withUnsafeBytes { lichen_cue_restore(twin, $0.baseAddress, size) } == LICHEN_STATUS_MALFORMED)
        #expect(state.withUnsafeBytes { lichen_cue_restore(twin, $0.baseAddress, size - 4) } == LICHEN_STATUS_SHAPE_MISMATCH)
        #expect(state.withUnsafeBytes { lichen_cue_restore(twin, $0.baseAddress, size) } == LICHEN_STATUS_OK)
        #expect(lichen_cue_set_policy(cue, UInt32(LICHEN_CUE_POLICY_COMPLEMENTARY_ONLY.rawValue), 0) == LICHEN_STATUS_OK)
        #expect(lichen_cue_set_policy(twin, UInt32(LICHEN_CUE_POLICY_COMPLEMENTARY_ONLY.rawValue), 0) == LICHEN_STATUS_OK)
        for q: Float in [4, 9, 12, 15] {
            var a = lichen_cue_output(), b = lichen_cue_output()
            let x: [Float] = [q / 10, 1]
            #expect(lichen_cue_tick(cue, x, 2, 0, 0, &a) == LICHEN_STATUS_OK && lichen_cue_tick(twin, x, 2, 0, 0, &b) == LICHEN_STATUS_OK)
            #expect(a.complementary_estimate == b.complementary_estimate && a.driver == b.driver, "estimate at \(q)")
        }
        lichen_cue_destroy(twin)
        lichen_cue_destroy(cue)
        lichen_cue_destroy(nil)
        var after = lichen_metrics()
        #expect(lichen_metrics_get(rt, &after) == LICHEN_STATUS_OK)
        #expect(after.heap_in_use_bytes == before.heap_in_use_bytes, "destroy gave the blocks back")
    }
}
