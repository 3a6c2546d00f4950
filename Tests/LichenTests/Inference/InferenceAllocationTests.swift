import CRuntime
import Foundation
import Lichen
import Testing

/// `InferenceModel.forward` allocates nothing once built: jemalloc's per-thread byte totals
/// (`lcr_thread_allocation_totals`) and the arena's accounting do not move across forwards of
/// the shipped CNN, F32, Q8_0 and Q4_0, at batch 1 and at a partial batch, on the best table
/// (the direct convolutions, fused pools and packed GEMV where they are native).
@Suite("Inference allocation")
struct InferenceAllocationTests {
    static func totals() -> (allocated: UInt64, deallocated: UInt64) {
        var a: UInt64 = 0, d: UInt64 = 0
        let rc = lcr_thread_allocation_totals(&a, &d)
        precondition(rc == 0, "mallctl thread.allocated failed: \(rc)")
        return (a, d)
    }

    @Test("a forward allocates nothing and stays inside the budget", arguments: ["fmnist-cnn-f32.gguf", "fmnist-cnn-q8_0.gguf", "fmnist-cnn-q4_0.gguf"])
    func forwardAllocatesNothing(_ file: String) throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../models/fmnist-cnn/\(file)").standardizedFileURL.path
        let gguf = try GGUFFile(path: path)
        let spec = try ModelFile.readSpec(gguf)
        let arena = try Arena(byteCount: 64 << 20)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(gguf, spec: spec, into: store, trainable: false)
        let model = try InferenceModel(spec: spec, store: store, batchSize: 4, arena: arena)
        var dims = [4]
        dims += spec.inputShape.dimensions
        let input = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
        var state: UInt64 = 11
        try input.copy(from: (0..<input.elementCount).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        })
        let one = try input.leadingRows(0, count: 1), three = try input.leadingRows(0, count: 3)
        _ = try model.forward(input: one)
        _ = try model.forward(input: three)
        let statsBefore = arena.stats
        for (name, x) in [("batch 1", one), ("batch 3 of 4", three), ("batch 1 again", one)] {
            let before = Self.totals()
            _ = try model.forward(input: x)
            let after = Self.totals()
            let allocated = after.allocated &- before.allocated, freed = after.deallocated &- before.deallocated
            #expect(allocated == 0 && freed == 0, "\(file) \(name): \(allocated) bytes allocated, \(freed) freed")
        }
        let statsAfter = arena.stats
        #expect(statsAfter.lowUsedBytes == statsBefore.lowUsedBytes, "\(file): the arena's low end moved")
    }
}
