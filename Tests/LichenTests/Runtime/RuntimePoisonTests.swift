import Foundation
import Lichen
import Testing

/// Frames that are finite but extreme: the step that meets them may fail (and is counted),
/// but the runtime keeps predicting ordinary frames afterwards, with finite logits, in both
/// update modes.
@Suite("Runtime poison frames")
struct RuntimePoisonTests {
    typealias S = RuntimeTestSupport

    @Test("a frame of FLT_MAX does not leave the runtime unable to predict", arguments: [AdaptationMethod.bnAdapt, .tent], [false, true])
    func extremeFrame(_ method: AdaptationMethod, learner: Bool) throws {
        var plan = AdaptationPlan(method, window: 8, every: 8)
        if learner { plan.learner = BackgroundLearner.Settings() }
        let rt = try RuntimeTests.loaded(plan)
        let frames = S.frames(16, count: 784, seed: 21)
        for i in 0..<16 { _ = try RuntimeTests.step(rt, frames[i]) }
        let poison = [Float](repeating: .greatestFiniteMagnitude, count: 784)
        _ = try? RuntimeTests.step(rt, poison)
        var failures = 0
        var lastLogits: [Float] = []
        for i in 0..<64 {
            do {
                lastLogits = try RuntimeTests.step(rt, frames[i % 16]).1
            } catch {
                failures += 1
            }
        }
        rt.running?.quiesceLearner()
        for i in 0..<8 { lastLogits = try RuntimeTests.step(rt, frames[i]).1 }
        #expect(lastLogits.allSatisfy { $0.isFinite }, "\(method.name), learner \(learner): \(lastLogits)")
        // The window forgets the frame after 8 frames; nothing may stay broken beyond it.
        #expect(failures <= 8, "\(method.name), learner \(learner): \(failures) failed steps after the frame")
    }
}
