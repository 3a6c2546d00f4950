import CRuntime
import Foundation
import Lichen
import Testing

/// Adapters in a running runtime: each operation through the API and over the socket, the
/// refusals that leave the active set as it was, and the hot-swap under a stepping loop.
@Suite("Runtime adapters")
struct RuntimeAdapterTests {
    typealias S = RuntimeTestSupport

    /// The base identity of the shipped CNN (f32 and quantized files share it).
    static func base() throws -> AdapterBase {
        let arena = try Arena(byteCount: 16 << 20)
        let file = try GGUFFile(path: S.model())
        let spec = try ModelFile.readSpec(file)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
        return try AdapterBase(name: (try? file.string("general.name")) ?? spec.architecture, store: store)
    }

    /// Writes an adapter on fc1 and fc2 (rank `rank`, seeded values) to `path`.
    static func writeAdapter(_ path: String, seed: UInt64, rank: Int = 4, base: AdapterBase,
                             fc1Inputs: Int = 3136, alpha: Float = 8) throws {
        let arena = try Arena(byteCount: 32 << 20)
        let shapes = [LoRATargetShape(weightName: "fc1.weight", rank: rank, inputCount: fc1Inputs, outputCount: 128),
                      LoRATargetShape(weightName: "fc2.weight", rank: min(rank, 10), inputCount: 128, outputCount: 10)]
        let adapter = try LoRAAdapter(name: "a", base: base, alpha: alpha, shapes: shapes, arena: arena)
        var k: UInt64 = 0
        for t in adapter.targets {
            k += 1
            try t.a.copy(from: S.frames(1, count: t.a.elementCount, seed: seed &* 31 &+ k)[0].map { ($0 - 0.5) * 0.05 })
            try t.b.copy(from: S.frames(1, count: t.b.elementCount, seed: seed &* 37 &+ k)[0].map { ($0 - 0.5) * 0.5 })
        }
        try AdapterFile.write(adapter, toPath: path)
    }

    static func directory() -> String {
        let d = (S.socketPath() as NSString).deletingLastPathComponent
        return d
    }

    static func step(_ rt: Runtime, _ frame: [Float]) throws -> [Float] {
        try RuntimeTests.step(rt, frame).1
    }

    /// The logits the graph gives with `files` (scales) applied, built without the runtime.
    static func reference(_ frame: [Float], _ files: [(String, Float)]) throws -> [Float] {
        let arena = try Arena(byteCount: 48 << 20)
        let file = try GGUFFile(path: S.model())
        let spec = try ModelFile.readSpec(file)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
        let graph = try Graph(spec: spec, store: store, batchSize: 1, arena: arena, options: GraphOptions())
        let base = try AdapterBase(name: (try? file.string("general.name")) ?? spec.architecture, store: store)
        var members: [AdapterSet.Member] = []
        for (path, scale) in files {
            members.append(AdapterSet.Member(try AdapterFile.read(path: path, arena: arena), scale: scale))
        }
        let set = try AdapterSet(members: members, graph: graph, base: base, arena: arena)
        let input = try arena.persistentTensor(.f32, try Shape(1, 1, 28, 28))
        try input.copy(from: frame)
        return try graph.forward(input: input, adapters: set).toArray()
    }

    static func close(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }
    }

    @Test("two slots: a hot-swap never detaches the method's trainable LoRA, and both apply")
    func trainableLoRAStaysAttached() throws {
        let dir = Self.directory()
        let base = try Self.base()
        let a = dir + "/slot-a.gguf"
        try Self.writeAdapter(a, seed: 5, base: base)
        var plan = AdaptationPlan(.tent, window: 4, every: 2)
        plan.lora = AdaptationLoRA(rank: 2, targets: ["linear"])
        let rt = try RuntimeTests.loaded(plan)
        let twin = try RuntimeTests.loaded(plan)
        let graph = try #require(rt.session?.graph)
        let trainable = try #require(graph.adapters)
        let frames = S.frames(10, count: 784, seed: 6)
        for f in frames[0..<6] { _ = try Self.step(rt, f); _ = try Self.step(twin, f) }
        _ = try rt.loadAdapter(path: a, scale: 1)
        let swapped = try Self.step(rt, frames[6])
        let without = try Self.step(twin, frames[6])
        #expect(graph.adapters === trainable, "the trainable LoRA is still the first slot's set")
        #expect(graph.skillAdapters != nil, "the swapped set is in the skill slot")
        #expect(swapped != without, "the swapped adapter changes the prediction")
        // Updates go on training the trainable adapter with the skill applied.
        for f in frames[7...] { _ = try Self.step(rt, f) }
        #expect(rt.methodFigures().updates == 4)
        _ = try rt.unloadAdapter(name: "slot-a")
        _ = try Self.step(rt, frames[0])
        #expect(graph.adapters === trainable && (graph.skillAdapters?.members.count ?? 0) == 0)
    }

    @Test("a method's teacher sees the swapped skills: CoTTA's teacher and anchor graph applies the set's companion")
    func teacherSeesSkills() throws {
        let dir = Self.directory()
        let base = try Self.base()
        let a = dir + "/teacher-a.gguf"
        try Self.writeAdapter(a, seed: 8, base: base)
        var plan = AdaptationPlan(.cotta, window: 4, every: 2)
        plan.cottaThreshold = .given(0.5)
        plan.cotta = CoTTA.Configuration(threshold: 0, augmentations: 2)
        let rt = try RuntimeTests.loaded(plan)
        let frames = S.frames(6, count: 784, seed: 9)
        for f in frames[0..<5] { _ = try Self.step(rt, f) }
        _ = try rt.loadAdapter(path: a, scale: 1)
        _ = try Self.step(rt, frames[5])
        let session = try #require(rt.session)
        let set = try #require(session.graph.skillAdapters)
        let teacher = try #require(session.policy.teacherGraph)
        #expect(set.companion != nil && teacher.skillAdapters === set.companion, "the teacher graph applies the companion set")
        #expect(set.companion?.graph === teacher && set.companion?.members.count == 1)
    }

    @Test("load, scale, swap and unload change what the steps compute, as the graph with that set does")
    func operations() throws {
        let dir = Self.directory()
        let base = try Self.base()
        let a = dir + "/skill-a.gguf", b = dir + "/skill-b.gguf"
        try Self.writeAdapter(a, seed: 1, base: base)
        try Self.writeAdapter(b, seed: 2, base: base)
        // The graph's path (the reference is a graph); the fused path is checked in RuntimeTests.
        let rt = try RuntimeTests.loaded(AdaptationPlan(fusedPrediction: false))
        let frame = S.frames(1, count: 784, seed: 4)[0]
        let plain = try Self.step(rt, frame)
        #expect(Self.close(plain, try Self.reference(frame, [])))

        let g1 = try rt.loadAdapter(path: a, scale: 1)
        #expect(g1 == 1)
        var list = rt.adapterList()
        #expect(list.adapters.map(\.name) == ["skill-a"])
        #expect(list.adapters[0].file == a && list.adapters[0].rank == 4 && list.adapters[0].scale == 1)
        #expect(list.adapters[0].byteCount >= 4 * (4 * 3136 + 128 * 4 + 4 * 128 + 10 * 4))
        let withA = try Self.step(rt, frame)
        #expect(Self.close(withA, try Self.reference(frame, [(a, 1)])))
        #expect(!Self.close(withA, plain))
        #expect(rt.swapCount == 1)

        try rt.scaleAdapter(name: "skill-a", scale: 0.5)
        #expect(Self.close(try Self.step(rt, frame), try Self.reference(frame, [(a, 0.5)])))
        try rt.loadAdapter(path: b, scale: 2)
        #expect(Self.close(try Self.step(rt, frame), try Self.reference(frame, [(a, 0.5), (b, 2)])))
        try rt.swapAdapters([ControlAdapterSpec(path: b, scale: -1)])
        list = rt.adapterList()
        #expect(list.adapters.map(\.name) == ["skill-b"] && list.adapters[0].scale == -1)
        #expect(Self.close(try Self.step(rt, frame), try Self.reference(frame, [(b, -1)])))
        try rt.unloadAdapter(name: "skill-b")
        #expect(rt.adapterList().adapters.isEmpty)
        #expect(try Self.step(rt, frame) == plain)
        #expect(rt.swapCount == 5)
        #expect(rt.status().activeAdapters == 0 && rt.status().generation == 5)
    }

    @Test("refused: missing file, bad GGUF, another base, shape mismatch, duplicate, unknown name, over budget")
    func refusals() throws {
        let dir = Self.directory()
        let base = try Self.base()
        let good = dir + "/good.gguf"
        try Self.writeAdapter(good, seed: 3, base: base)
        let other = dir + "/other-base.gguf"
        try Self.writeAdapter(other, seed: 3, base: AdapterBase(name: base.name, parameterCount: base.parameterCount, hash: base.hash ^ 1))
        let shape = dir + "/shape.gguf"
        try Self.writeAdapter(shape, seed: 3, base: base, fc1Inputs: 3000)
        let garbage = dir + "/garbage.gguf"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        bytes.count = bytes.count / 2
        try bytes.write(to: URL(fileURLWithPath: garbage))
        let big = dir + "/big.gguf"
        try Self.writeAdapter(big, seed: 5, rank: 128, base: base)

        let rt = try Runtime(budgetBytes: 20 << 20)
        try rt.loadModel(path: S.model())
        try rt.loadAdapter(path: good, scale: 1)
        let frame = S.frames(1, count: 784, seed: 8)[0]
        let before = try Self.step(rt, frame)
        let listed = rt.adapterList()

        func refused(_ body: () throws -> Void, _ check: (LichenError) -> Bool) {
            do {
                try body()
                Issue.record("accepted")
            } catch let e as LichenError {
                #expect(check(e), "\(e)")
                #expect(rt.lastError == e)
            } catch {
                Issue.record("\(error)")
            }
        }
        refused({ try rt.loadAdapter(path: dir + "/missing.gguf", scale: 1) }) { if case .fileError = $0 { true } else { false } }
        refused({ try rt.loadAdapter(path: garbage, scale: 1) }) { if case .malformedFile = $0 { true } else { false } }
        refused({ try rt.loadAdapter(path: other, scale: 1) }) { if case .invalidModel(key: "lichen.adapter.base", _, _) = $0 { true } else { false } }
        refused({ try rt.loadAdapter(path: shape, scale: 1) }) { if case .parameterShapeMismatch = $0 { true } else { false } }
        refused({ try rt.loadAdapter(path: good, scale: 1) }) { if case .duplicateName = $0 { true } else { false } }
        refused({ try rt.unloadAdapter(name: "nope") }) { $0 == .notFound(kind: "adapter", name: "nope") }
        refused({ try rt.scaleAdapter(name: "good", scale: .nan) }) { $0 == .outOfRange(name: "scale of adapter 'good'", value: "nan", allowed: "-100...100") }
        refused({ try rt.swapAdapters([ControlAdapterSpec(path: good, scale: 1), ControlAdapterSpec(path: other, scale: 1)]) }) {
            if case .invalidModel = $0 { true } else { false }
        }
        // Enough copies of a rank-128 adapter (each a distinct name) to exceed the budget.
        var many: [ControlAdapterSpec] = []
        for i in 0..<16 {
            let link = dir + "/big-\(i).gguf"
            // A hard link: adapter paths are opened without following symbolic links.
            try FileManager.default.linkItem(atPath: big, toPath: link)
            many.append(ControlAdapterSpec(path: link, scale: 1))
        }
        refused({ try rt.swapAdapters(many) }) { if case .budgetExceeded = $0 { true } else { false } }

        #expect(rt.adapterList() == listed)
        #expect(try Self.step(rt, frame) == before)
        // What the refused attempts allocated went back to the heap.
        let heapWithGood = rt.arena.stats.heapInUseBytes
        try rt.unloadAdapter(name: "good")
        _ = try Self.step(rt, frame)
        rt.collectAdapters()
        #expect(rt.arena.stats.heapInUseBytes < heapWithGood)
    }

    @Test("every operation over the socket, answers and refusals")
    func overTheSocket() throws {
        let dir = Self.directory()
        let base = try Self.base()
        let a = dir + "/sock-a.gguf"
        try Self.writeAdapter(a, seed: 6, base: base)
        let path = dir + "/s.sock"
        let rt = try Runtime(budgetBytes: 32 << 20, configuration: RuntimeConfiguration(socketPath: path))
        // Before a model: adapter operations are refused.
        let early = try S.call(path, .load(path: a, scale: 1))
        #expect(early.status == .failed && early.message.contains("load a model"))
        try rt.loadModel(path: S.model())
        let load = try S.call(path, .load(path: a, scale: 0.25))
        #expect(load.status == .ok, "\(load.message)")
        #expect(load.adapters.map(\.name) == ["sock-a"] && load.adapters[0].scale == 0.25 && load.generation == 1)
        let list = try S.call(path, .list)
        #expect(list.adapters == load.adapters)
        let scale = try S.call(path, .scale(name: "sock-a", scale: 3))
        #expect(scale.status == .ok && scale.adapters[0].scale == 3)
        let swap = try S.call(path, .swap([]))
        #expect(swap.status == .ok && swap.adapters.isEmpty && swap.generation == 3)
        let missing = try S.call(path, .unload(name: "sock-a"))
        #expect(missing.status == .notFound && missing.message.contains("sock-a"))
        let bad = try S.call(path, .load(path: dir + "/none.gguf", scale: 1))
        #expect(bad.status == .failed && bad.message.contains("none.gguf"))
        let status = try #require(try S.call(path, .status).state)
        #expect(status.modelLoaded && status.generation == 3 && status.activeAdapters == 0)
        _ = try Self.step(rt, S.frames(1, count: 784, seed: 1)[0])
        #expect(try S.call(path, .status).state?.swaps == 1)  // the loop took generation 3 (it never saw 1 and 2)
    }

    @Test("1,000 swaps while the loop steps: each step sees the old set or the new one, memory comes back")
    func hotSwap() throws {
        let dir = Self.directory()
        let base = try Self.base()
        let a = dir + "/hot-a.gguf", b = dir + "/hot-b.gguf"
        try Self.writeAdapter(a, seed: 11, base: base)
        try Self.writeAdapter(b, seed: 12, base: base)
        let path = dir + "/h.sock"
        let rt = try Runtime(budgetBytes: 32 << 20, configuration: RuntimeConfiguration(socketPath: path))
        try rt.loadModel(path: S.model())
        let frames = S.frames(4, count: 784, seed: 13)
        // References: the same runtime code with each set held fixed.
        func fixed(_ files: [String]) throws -> [[Float]] {
            let r = try RuntimeTests.loaded()
            try r.swapAdapters(files.map { ControlAdapterSpec(path: $0, scale: 1) })
            return try frames.map { try Self.step(r, $0) }
        }
        let refPlain = try fixed([]), refA = try fixed([a]), refB = try fixed([b])
        // A step that mixed the sets (one layer's adapter from each) would differ from all three
        // by about as much as they differ from each other: far above the matching tolerance.
        func distance(_ x: [Float], _ y: [Float]) -> Float { zip(x, y).map { abs($0 - $1) }.max() ?? 0 }
        for i in 0..<4 {
            #expect(distance(refA[i], refB[i]) > 0.05 && distance(refA[i], refPlain[i]) > 0.05 && distance(refB[i], refPlain[i]) > 0.05)
        }
        let heapBefore = rt.arena.stats.heapInUseBytes

        final class Loop: @unchecked Sendable {
            let lock = NSLock()
            var stop = false, done = false
            var steps = 0, mixed = 0, sawA = 0, sawB = 0
            var error: String?
            var firstMixed: String?
        }
        let loop = Loop()
        let thread = Thread {
            var logits = [Float](repeating: 0, count: 10)
            var n = 0
            while true {
                loop.lock.lock()
                let stop = loop.stop
                loop.lock.unlock()
                if stop { break }
                let i = n % 4
                do {
                    _ = try frames[i].withUnsafeBufferPointer { f in
                        try logits.withUnsafeMutableBufferPointer { try rt.step(frame: f, logits: $0) }
                    }
                } catch {
                    loop.lock.lock(); loop.error = "\(error)"; loop.lock.unlock()
                    break
                }
                loop.lock.lock()
                // Sets sit at different heap addresses, so kernels may round differently: match
                // within 1e-4 (the sets differ by far more, checked above).
                if Self.close(logits, refA[i]) {
                    loop.sawA += 1
                } else if Self.close(logits, refB[i]) {
                    loop.sawB += 1
                } else if !Self.close(logits, refPlain[i]) {
                    loop.mixed += 1
                    if loop.firstMixed == nil { loop.firstMixed = "step \(loop.steps) frame \(i): \(logits) vs A \(refA[i]) B \(refB[i]) plain \(refPlain[i])" }
                }
                loop.steps += 1
                loop.lock.unlock()
                n += 1
            }
            loop.lock.lock(); loop.done = true; loop.lock.unlock()
        }
        thread.start()
        var extentsAt100 = 0
        // Waits (bounded) until the loop has taken generation g.
        func taken(_ g: UInt64) {
            let deadline = Date().addingTimeInterval(10)
            while rt.adapters.loopGeneration < g && Date() < deadline { usleep(200) }
        }
        for k in 0..<1000 {
            let r = try S.call(path, .swap([ControlAdapterSpec(path: k % 2 == 0 ? a : b, scale: 1)]))
            if r.status != .ok { Issue.record("swap \(k): \(r.message)"); break }
            // Every tenth swap waits for the loop, so sets cannot pile up without bound when
            // the loop is slower than the client; the others land while it steps.
            if k % 10 == 9 { taken(r.generation) }
            if k == 99 { extentsAt100 = rt.arena.stats.heapExtentBytes }
        }
        let last = try S.call(path, .swap([]))
        #expect(last.status == .ok)
        taken(last.generation)
        loop.lock.lock(); loop.stop = true; loop.lock.unlock()
        while true {
            loop.lock.lock(); let d = loop.done; loop.lock.unlock()
            if d { break }
            usleep(1000)
        }
        #expect(loop.error == nil)
        #expect(loop.mixed == 0, "\(loop.firstMixed ?? "")")
        #expect(loop.steps > 0 && loop.sawA + loop.sawB > 0)
        #expect(rt.swapCount >= 2)
        // Memory: back to where it was once the loop has left the last set; the heap end did
        // not grow after the first 100 swaps.
        rt.collectAdapters()
        #expect(rt.arena.stats.heapInUseBytes == heapBefore)
        #expect(rt.arena.stats.heapExtentBytes == extentsAt100)
        #expect(rt.adapters.heldCount == 1)
    }
}
