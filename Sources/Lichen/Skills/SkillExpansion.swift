/// PSEC's skill expansion (methods.md §1.3, issue item 5): when the composed policy's loss on
/// a new task stays above a bound after its budget, a new LoRA skill over every Dense layer of
/// the policy (B = 0 at start, so it begins as the base exactly) is trained on the task's own
/// denoising loss, base and old skills frozen, and added to the library under a new name.
public enum SkillExpansion {
    /// Whether the composition failed: its loss after the budget is above `bound`.
    public static func isNeeded(compositionLoss: Float, bound: Float) -> Bool {
        !(compositionLoss <= bound)  // NaN counts as failed
    }

    /// A new trainable skill over every Dense layer of `policy`: rank min(r, d_in, d_out) per
    /// layer, `alpha`, A PEFT-initialised from `seed`, B = 0.
    /// - Throws: as `LoRAAdapter.init`.
    public static func newSkill(name: String, policy: DiffusionPolicy, base: AdapterBase, rank: Int, alpha: Float, seed: UInt64,
                                arena: Arena) throws(LichenError) -> LoRAAdapter {
        var shapes: [LoRATargetShape] = []
        for layer in DiffusionPolicy.denseLayerNames(policy.shape) {
            let w = try policy.store.parameter(named: layer + ".weight").value
            shapes.append(LoRATargetShape(weightName: layer + ".weight", rank: max(1, min(rank, w.shape[0], w.shape[1])),
                                          inputCount: w.shape[1], outputCount: w.shape[0]))
        }
        let skill = try LoRAAdapter(name: name, base: base, alpha: alpha, shapes: shapes, trainable: true, arena: arena)
        try skill.initializeForTraining(seed: seed)
        return skill
    }

    /// One training step of `skill` alone over the frozen policy (the plain denoising loss);
    /// returns the loss before the update. The caller's `optimizer` holds the skill's parameters.
    /// - Throws: as `DiffusionPolicy.denoisingLoss`, `Adam.step`.
    /// - Note: Allocates nothing.
    public static func trainStep(_ set: AdapterSet, skill: LoRAAdapter, policy: DiffusionPolicy, optimizer: Adam, actions: TensorView,
                                 states: TensorView, epsilon: TensorView, steps: [Int]) throws(LichenError) -> Float {
        try skill.zeroGradients()
        try policy.graph.setAdapters(set)
        let loss = try policy.denoisingLoss(actions: actions, states: states, epsilon: epsilon, steps: steps, backward: true)
        try optimizer.step()
        return loss
    }
}
