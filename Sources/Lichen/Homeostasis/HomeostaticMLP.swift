extension ModelSpec {
    /// The homeostatic learners' network (research/methods.md 2.1, the authors' `lrh.py`):
    /// input [784] (a 28x28 image, pixel / 255), fc1 (784→80) · elu1 · fc2 (80→60) · elu2 ·
    /// fc3 (60→10), ELU with alpha 1, logits out (softmax cross-entropy is the learner's loss).
    public static var homeostaticMLP: ModelSpec {
        func layer(_ kind: LayerKind, _ name: String, _ from: Int, outputs: Int = 0) -> LayerSpec {
            var l = LayerSpec(kind: kind, name: name, inputs: [from])
            l.outputs = outputs
            return l
        }
        let layers = [layer(.linear, "fc1", -1, outputs: 80), layer(.elu, "elu1", 0), layer(.linear, "fc2", 1, outputs: 60),
                      layer(.elu, "elu2", 2), layer(.linear, "fc3", 3, outputs: 10)]
        // A rank-1 shape of one positive dimension cannot fail.
        let input = (try? Shape(dimensions: [784])) ?? Shape.scalarPlaceholder
        return ModelSpec(architecture: "homeostatic-mlp", inputShape: input, classCount: 10, layers: layers)
    }
}
