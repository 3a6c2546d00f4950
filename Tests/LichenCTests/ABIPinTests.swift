import CRuntime
import LichenC
import Testing

/// Pins every `@_cdecl` export of Sources/LichenC to the function type of its prototype in
/// CRuntime/include/lichen.h: each block assigns the Swift export to a variable of the C
/// declaration's own type (`@convention(c)`, as Swift imports the header), which compiles only
/// when parameter and result types match exactly. At run time each export must also be the
/// header's symbol answering as the export does (the pure calls are compared).
@Suite("The C ABI's exports")
struct ABIPinTests {
    @Test("every @_cdecl export has the type of its lichen.h prototype, and the header's symbols are the exports")
    func exportsMatchTheHeader() {
        var pinned: [String] = []
        do {
            var f = CRuntime.lichen_status_string
            f = LichenC.lichenStatusString
            pinned.append("lichen_status_string")
            _ = f
        }
        do {
            var f = CRuntime.lichen_abi_version
            f = LichenC.lichenABIVersion
            pinned.append("lichen_abi_version")
            _ = f
        }
        do {
            var f = CRuntime.lichen_runtime_default_params
            f = LichenC.lichenRuntimeDefaultParams
            pinned.append("lichen_runtime_default_params")
            _ = f
        }
        do {
            var f = CRuntime.lichen_runtime_create
            f = LichenC.lichenRuntimeCreate
            pinned.append("lichen_runtime_create")
            _ = f
        }
        do {
            var f = CRuntime.lichen_runtime_destroy
            f = LichenC.lichenRuntimeDestroy
            pinned.append("lichen_runtime_destroy")
            _ = f
        }
        do {
            var f = CRuntime.lichen_model_load
            f = LichenC.lichenModelLoad
            pinned.append("lichen_model_load")
            _ = f
        }
        do {
            var f = CRuntime.lichen_model_info
            f = LichenC.lichenModelInfo
            pinned.append("lichen_model_info")
            _ = f
        }
        do {
            var f = CRuntime.lichen_method_default_params
            f = LichenC.lichenMethodDefaultParams
            pinned.append("lichen_method_default_params")
            _ = f
        }
        do {
            var f = CRuntime.lichen_method_set
            f = LichenC.lichenMethodSet
            pinned.append("lichen_method_set")
            _ = f
        }
        do {
            var f = CRuntime.lichen_method_setup_ns
            f = LichenC.lichenMethodSetupNs
            pinned.append("lichen_method_setup_ns")
            _ = f
        }
        do {
            var f = CRuntime.lichen_plan_budget
            f = LichenC.lichenPlanBudget
            pinned.append("lichen_plan_budget")
            _ = f
        }
        do {
            var f = CRuntime.lichen_step
            f = LichenC.lichenStep
            pinned.append("lichen_step")
            _ = f
        }
        do {
            var f = CRuntime.lichen_reset
            f = LichenC.lichenReset
            pinned.append("lichen_reset")
            _ = f
        }
        do {
            var f = CRuntime.lichen_adapter_load
            f = LichenC.lichenAdapterLoad
            pinned.append("lichen_adapter_load")
            _ = f
        }
        do {
            var f = CRuntime.lichen_adapter_unload
            f = LichenC.lichenAdapterUnload
            pinned.append("lichen_adapter_unload")
            _ = f
        }
        do {
            var f = CRuntime.lichen_adapter_swap
            f = LichenC.lichenAdapterSwap
            pinned.append("lichen_adapter_swap")
            _ = f
        }
        do {
            var f = CRuntime.lichen_adapter_scale
            f = LichenC.lichenAdapterScale
            pinned.append("lichen_adapter_scale")
            _ = f
        }
        do {
            var f = CRuntime.lichen_checkpoint_size
            f = LichenC.lichenCheckpointSize
            pinned.append("lichen_checkpoint_size")
            _ = f
        }
        do {
            var f = CRuntime.lichen_checkpoint_save
            f = LichenC.lichenCheckpointSave
            pinned.append("lichen_checkpoint_save")
            _ = f
        }
        do {
            var f = CRuntime.lichen_checkpoint_restore
            f = LichenC.lichenCheckpointRestore
            pinned.append("lichen_checkpoint_restore")
            _ = f
        }
        do {
            var f = CRuntime.lichen_metrics_get
            f = LichenC.lichenMetricsGet
            pinned.append("lichen_metrics_get")
            _ = f
        }
        do {
            var f = CRuntime.lichen_last_error
            f = LichenC.lichenLastError
            pinned.append("lichen_last_error")
            _ = f
        }
        do {
            var f = CRuntime.lichen_adapter_list
            f = LichenC.lichenAdapterList
            pinned.append("lichen_adapter_list")
            _ = f
        }
        #expect(pinned.count == 23 && Set(pinned).count == 23)
        // Through the header's declarations (the linker resolves them to the exports).
        #expect(CRuntime.lichen_abi_version() == LichenC.lichenABIVersion())
        #expect(CRuntime.lichen_abi_version() == UInt32(LICHEN_ABI_VERSION))
        #expect(String(cString: CRuntime.lichen_status_string(LICHEN_STATUS_BUDGET_EXCEEDED)) == "budget exceeded")
        let a = CRuntime.lichen_method_default_params(LICHEN_METHOD_RMT), b = LichenC.lichenMethodDefaultParams(LICHEN_METHOD_RMT)
        #expect(a.method == b.method && a.window == b.window && a.rmt_warmup_samples == b.rmt_warmup_samples && a.cotta_threshold.isNaN)
    }
}
