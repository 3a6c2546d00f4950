/// Every check of the core, in the order the runners print them.
public enum LichenChecks {
    public static var all: [Check] {
        kernelChecks + arenaChecks + tensorChecks + formatChecks + graphChecks + trainChecks + dataChecks + modelFileChecks + streamFileChecks + adaptationChecks + frameAdapterChecks + collapseGuardChecks
            + adapterChecks + adapterFileChecks + inferenceChecks + refoldChecks + directKernelChecks + cottaChecks + rmtChecks + adaptationLoRAChecks
            + homeostasisChecks + cueChecks + cueStateChecks + cueNetworkChecks + skillChecks + concatSliceChecks + diffusionPolicyChecks + perSampleWeightChecks + skillCompositionChecks + skillExpansionChecks + compositionLevelChecks + mergedSkillPolicyChecks
    }
}
