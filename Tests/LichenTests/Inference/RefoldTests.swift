import CRuntime
import Foundation
import Lichen
import LichenChecks
import Testing

/// `InferenceModel.refold` on the shipped CNN (models/fmnist-cnn, F32, Q8_0, Q4_0): the core
/// refold checks' scenario on the real weights (BN-adapt and Tent updates, arbitrary values,
/// refused values, stand-ins), and a refold allocates nothing: jemalloc's per-thread byte
/// totals (`lcr_thread_allocation_totals`) and the arena's low end do not move across refolds
/// and the fused forwards after them.
@Suite("Inference refold")
struct RefoldTests {
    static let files = ["fmnist-cnn-f32.gguf", "fmnist-cnn-q8_0.gguf", "fmnist-cnn-q4_0.gguf"]

    /// The file stays mapped while the returned `GGUFFile` lives (the store views its weights).
    static func load(_ file: String, arena: Arena) throws -> (ModelSpec, ParameterStore, GGUFFile) {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../models/fmnist-cnn/\(file)").standardizedFileURL.path
        let gguf = try GGUFFile(path: path)
        let spec = try ModelFile.readSpec(gguf)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(gguf, spec: spec, into: store, trainable: false)
        return (spec, store, gguf)
    }

    static func totals() -> (allocated: UInt64, deallocated: UInt64) {
        var a: UInt64 = 0, d: UInt64 = 0
        let rc = lcr_thread_allocation_totals(&a, &d)
        precondition(rc == 0, "mallctl thread.allocated failed: \(rc)")
        return (a, d)
    }

    @Test("the core refold checks pass", arguments: LichenChecks.all.filter { $0.fullName.contains("Refold") }.map(\.fullName))
    func coreCheck(_ name: String) throws {
        let check = try #require(LichenChecks.all.first { $0.fullName == name })
        let outcome = check.run()
        #expect(outcome.failures == 0, "\(outcome.failures) of \(outcome.assertions) assertions failed: \(outcome.messages)")
    }

    @Test("the refolded shipped CNN equals the graph's saved-statistics forward", arguments: files)
    func shippedParity(_ file: String) throws {
        // The best table, and the portable one forced onto the direct methods (packed weights).
        let forced = UnsafeMutablePointer<lcr_kernel_table>.allocate(capacity: 1)
        defer { forced.deallocate() }
        let direct = Kernels._forcingDirectMethods(try #require(Kernels(isa: .portable)), storage: forced)
        for (kernels, tableName) in [(Kernels.best, "best"), (direct, "portable-direct")] {
            for method in [AdaptationMethod.bnAdapt, .tent] {
                let arena = try Arena(byteCount: 64 << 20)
                let (spec, store, gguf) = try Self.load(file, arena: arena)
                defer { withExtendedLifetime(gguf) {} }
                var context = CheckContext()
                do {
                    try refoldScenario(&context, spec: spec, store: store, arena: arena, method: method, seed: 500,
                                       label: "\(file) \(method.name) \(tableName)", kernels: kernels)
                } catch {
                    context.fail("\(file) \(method.name) \(tableName): threw \(error.description)")
                }
                #expect(context.failures == 0, "\(context.failures) of \(context.assertions) failed: \(context.messages)")
            }
        }
    }

    @Test("after full-mode Tent updates (weights and biases trained) the refolded F32 CNN equals the graph's saved-statistics forward")
    func shippedParityFullMode() throws {
        let arena = try Arena(byteCount: 64 << 20)
        let (spec, store, gguf) = try Self.load("fmnist-cnn-f32.gguf", arena: arena)
        defer { withExtendedLifetime(gguf) {} }
        let conv1 = try store.parameter(named: spec.layers[0].name + ".weight").value.toArray()
        var context = CheckContext()
        do {
            try refoldScenario(&context, spec: spec, store: store, arena: arena, method: .tent, seed: 501, label: "f32 tent full",
                               mode: .full)
        } catch {
            context.fail("f32 tent full: threw \(error.description)")
        }
        #expect(context.failures == 0, "\(context.failures) of \(context.assertions) failed: \(context.messages)")
        #expect(try store.parameter(named: spec.layers[0].name + ".weight").value.toArray() != conv1, "full mode trained the first weights")
    }

    @Test("a refold allocates nothing and stays inside the budget", arguments: files)
    func refoldAllocatesNothing(_ file: String) throws {
        let forced = UnsafeMutablePointer<lcr_kernel_table>.allocate(capacity: 1)
        defer { forced.deallocate() }
        let direct = Kernels._forcingDirectMethods(try #require(Kernels(isa: .portable)), storage: forced)
        for (kernels, tableName) in [(Kernels.best, "best"), (direct, "portable-direct")] {
            try Self.checkRefoldAllocation(file: file, kernels: kernels, label: "\(file) \(tableName)")
        }
    }

    static func checkRefoldAllocation(file: String, kernels: Kernels, label: String) throws {
        let arena = try Arena(byteCount: 64 << 20)
        let (spec, store, gguf) = try Self.load(file, arena: arena)
        defer { withExtendedLifetime(gguf) {} }
        let rows = 8
        let session = try AdaptationSession(method: .tent, spec: spec, store: store, batchSize: rows, arena: arena, kernels: kernels)
        try session.graph.reserveSavedStatistics(arena: arena)
        let fused = try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena, kernels: kernels, refoldable: true)
        var dims = [rows]
        dims += spec.inputShape.dimensions
        let batch = try arena.persistentTensor(.f32, try Shape(dimensions: dims))
        var rng = SplitMix64(seed: 3)
        try batch.copy(from: (0..<batch.elementCount).map { _ in rng.nextUnit() })
        let frame = try batch.leadingRows(0, count: 1)
        let running = try fused.refoldSource(runningStatisticsOf: store)
        _ = try session.step(batch: batch)
        // Warm-up: the first saved-statistics refold builds and keeps its source.
        try fused.refold(savedStatisticsOf: session.graph)
        _ = try fused.forward(input: frame)
        let statsBefore = arena.stats
        for k in 0..<3 {
            _ = try session.step(batch: batch)
            let before = Self.totals()
            try fused.refold(savedStatisticsOf: session.graph)
            _ = try fused.forward(input: frame)
            try fused.refold(running)
            _ = try fused.forward(input: frame)
            let after = Self.totals()
            let allocated = after.allocated &- before.allocated, freed = after.deallocated &- before.deallocated
            #expect(allocated == 0 && freed == 0, "\(label) round \(k): \(allocated) bytes allocated, \(freed) freed")
        }
        #expect(arena.stats.lowUsedBytes == statsBefore.lowUsedBytes, "\(label): the arena's low end moved")
        #expect(fused.refoldBytes > 0 && fused.refoldBytes % 8 == 0, "\(label): refold reserved \(fused.refoldBytes) bytes")
    }
}
