import CRuntime
import Foundation
import Lichen
import LichenChecks
import Testing

/// A steady-state adaptation step allocates nothing: jemalloc's per-thread byte totals
/// (`thread.allocated`, `thread.deallocated`, read through `lcr_thread_allocation_totals`) do
/// not move across a step taken after warm-up steps, in batch mode and in frame mode (both
/// predictions between updates: the window's forward and the batch-1 saved-statistics one), for every
/// method on the shipped Q8_0 CNN (frugal) and for Tent in full mode on the F32 model. The
/// arena's accounting does not move either: everything the step uses was taken from the budget
/// at construction.
///
/// CoTTA runs with its gate always firing (threshold 1, 2 augmented passes); RMT with a small
/// warm-up and prototypes from seeded random source batches. Two allocations this test found
/// are fixed: `ParameterList.zeroGradients` iterated its array with for-in, which allocated
/// 192 bytes per call in a debug build (CoTTA and RMT); and BLIS sgemm mallocs and frees its
/// thread data on every call (its thread decorator, one thread or not, small-matrix path or
/// not: 696 bytes per RMT step through the projector, 5576 per full-mode Tent batch step), so
/// f32 products now run BLIS's micro-kernel under our own packing loops (gemm_blis.c,
/// `lcr_sgemm_packed`), whose pack buffers are allocated once per thread.
@Suite("Step allocation")
struct StepAllocationTests {
    static func modelPath(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../models/fmnist-cnn/\(name)").standardizedFileURL.path
    }

    static func totals() -> (allocated: UInt64, deallocated: UInt64) {
        var a: UInt64 = 0, d: UInt64 = 0
        let rc = lcr_thread_allocation_totals(&a, &d)
        precondition(rc == 0, "mallctl thread.allocated failed: \(rc)")
        return (a, d)
    }

    /// Bytes allocated and deallocated on this thread while `body` runs.
    static func counted(_ body: () throws -> Void) rethrows -> (allocated: UInt64, deallocated: UInt64) {
        let before = totals()
        try body()
        let after = totals()
        return (after.allocated &- before.allocated, after.deallocated &- before.deallocated)
    }

    @Test("the counter sees an allocation of this process's allocator")
    func counterSeesAllocations() {
        let delta = Self.counted {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
            buffer.storeBytes(of: 1, as: UInt8.self)
            buffer.deallocate()
        }
        #expect(delta.allocated >= 1 << 20 && delta.deallocated >= 1 << 20, "\(delta)")
    }

    /// (model file, method, mode, protocol: "batch", or the frame prediction "window" / "saved").
    static let cases: [(String, String, String, String)] = {
        var out: [(String, String, String, String)] = []
        for (file, method, mode) in [("fmnist-cnn-q8_0.gguf", "source", "frugal"), ("fmnist-cnn-q8_0.gguf", "bn", "frugal"),
                                     ("fmnist-cnn-q8_0.gguf", "tent", "frugal"), ("fmnist-cnn-q8_0.gguf", "cotta", "frugal"),
                                     ("fmnist-cnn-q8_0.gguf", "rmt", "frugal"), ("fmnist-cnn-f32.gguf", "tent", "full")] {
            for protocolName in ["batch", "window", "saved"] { out.append((file, method, mode, protocolName)) }
        }
        return out
    }()

    /// Seeded random source images in [0, 1] with random labels, for RMT's prototypes, warm-up
    /// and replay; filling the caller's tensors allocates nothing.
    final class RandomSource: SourceBatchProvider {
        var random = SplitMix64(seed: 11)
        let classes: Int
        init(classes: Int) { self.classes = classes }
        func nextSourceBatch(images: TensorView, labels: TensorView) throws(LichenError) {
            let x = try images.f32Elements("images"), y = try labels.f32Elements("labels")
            for i in 0..<x.count { x[i] = random.nextUnit() }
            for i in 0..<y.count { y[i] = Float(random.next() % UInt64(classes)) }
        }
    }

    /// Frugal mode with LoRA trainables (rank 4 on every conv and linear layer of the Q8_0 CNN):
    /// (method, protocol).
    static let loraCases: [(String, String)] = {
        var out: [(String, String)] = []
        for method in ["tent", "cotta", "rmt"] {
            for protocolName in ["batch", "window", "saved"] { out.append((method, protocolName)) }
        }
        return out
    }()

    @Test("a steady-state step allocates nothing and stays inside the budget", arguments: 0..<cases.count)
    func steadyStateStep(_ index: Int) throws {
        let (file, methodName, modeName, protocolName) = Self.cases[index]
        try Self.checkSteadyState(file: file, methodName: methodName, modeName: modeName, protocolName: protocolName, lora: nil)
    }

    @Test("a steady-state step with LoRA trainables allocates nothing and stays inside the budget", arguments: 0..<loraCases.count)
    func steadyStateStepWithLoRA(_ index: Int) throws {
        let (methodName, protocolName) = Self.loraCases[index]
        try Self.checkSteadyState(file: "fmnist-cnn-q8_0.gguf", methodName: methodName, modeName: "frugal", protocolName: protocolName,
                                  lora: AdaptationLoRA(rank: 4, targets: ["conv", "linear"]))
    }

    static func checkSteadyState(file: String, methodName: String, modeName: String, protocolName: String, lora: AdaptationLoRA?) throws {
        let prediction = FrameAdapter.Prediction(name: protocolName)
        let frameMode = prediction != nil
        let method = try #require(AdaptationMethod(name: methodName))
        let mode = try #require(AdaptationMode(name: modeName))
        let gguf = try GGUFFile(path: Self.modelPath(file))
        let spec = try ModelFile.readSpec(gguf)
        let arena = try Arena(byteCount: 64 << 20)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(gguf, spec: spec, into: store, trainable: false)
        let rows = 8
        // CoTTA's gate always fires (every confidence is below 1), with few augmented passes;
        // RMT with a small warm-up and prototypes from random source batches.
        let cotta = CoTTA.Configuration(threshold: 1, augmentations: 2)
        let rmt = RMT.Configuration(projectionDimension: 16, warmUpSamples: 2 * rows, prototypeSamples: 2 * rows)
        let session = try AdaptationSession(method: method, spec: spec, store: store, batchSize: rows, arena: arena, mode: mode,
                                            cotta: cotta, rmt: rmt, source: RandomSource(classes: spec.classCount), lora: lora)
        if lora != nil { #expect(session.loraAdapter != nil, "the session trains a LoRA adapter") }
        let adapter = try prediction.map { try FrameAdapter(session: session, window: rows, every: 2, prediction: $0, arena: arena) }
        var dims = [rows]
        dims += spec.inputShape.dimensions
        let input = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
        var rng = SplitMix64(seed: 7)
        try input.copy(from: (0..<input.elementCount).map { _ in rng.nextUnit() })
        let frame = try input.leadingRows(0, count: 1)
        func step() throws {
            if let adapter {
                _ = try adapter.step(frame: frame)
            } else {
                _ = try session.step(batch: input)
            }
        }
        // Warm-up: fill the window and pass through at least one adaptation step.
        for _ in 0..<(rows + 4) { try step() }
        let statsBefore = arena.stats
        let stepsBefore = session.stepCount
        // Frame mode alternates predicting frames and adapting frames (every 2): count both.
        for k in 0..<4 {
            let delta = try Self.counted { try step() }
            let what = "\(methodName) \(modeName)\(lora == nil ? "" : "+lora") \(protocolName) step \(k): \(delta.allocated) bytes allocated, \(delta.deallocated) freed"
            #expect(delta.allocated == 0 && delta.deallocated == 0, "\(what)")
        }
        if let policy = session.cotta {
            #expect(policy.lastStepAugmented, "the timed CoTTA steps run the augmented teacher passes")
        }
        if let adapter, adapter.prediction == .saved && method != .source {
            #expect(adapter.savedPredictionCount >= 2, "the timed frames include predictions with saved statistics")
        }
        if method == .tent || method == .cotta || method == .rmt {
            #expect(session.stepCount == stepsBefore + (frameMode ? 2 : 4), "the timed steps include adaptation steps")
        }
        let statsAfter = arena.stats
        #expect(statsAfter == statsBefore, "arena accounting moved during the steps")
        #expect(statsAfter.bytesLeft >= 0 && statsAfter.heapFailureCount == 0)
    }
}
