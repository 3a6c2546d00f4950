import CRuntime
import Foundation
import Lichen
import Testing

/// The runtime object: steps against the graph and the frame adapter used directly, bad input,
/// methods, reset, checkpoints, metrics.
@Suite("Runtime")
struct RuntimeTests {
    typealias S = RuntimeTestSupport

    static func loaded(_ method: AdaptationPlan = AdaptationPlan(), type: String = "q8_0") throws -> Runtime {
        let rt = try Runtime(budgetBytes: 48 << 20)
        try rt.loadModel(path: S.model("cnn", type))
        if method != AdaptationPlan() { try rt.setMethod(method) }
        return rt
    }

    static func step(_ rt: Runtime, _ frame: [Float]) throws -> (Int, [Float]) {
        var logits = [Float](repeating: .nan, count: rt.classCount)
        let k = try frame.withUnsafeBufferPointer { f in
            try logits.withUnsafeMutableBufferPointer { l in try rt.step(frame: f, logits: l) }
        }
        return (k, logits)
    }

    /// A reference built without the runtime: the same file, its own arena, store and graph.
    static func referenceGraph() throws -> (Graph, Arena, GGUFFile) {
        let arena = try Arena(byteCount: 48 << 20)
        let file = try GGUFFile(path: S.model())
        let spec = try ModelFile.readSpec(file)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
        return (try Graph(spec: spec, store: store, batchSize: 1, arena: arena, options: GraphOptions()), arena, file)
    }

    @Test("source steps through the fused path give the fused model's logits, bit for bit")
    func sourceFusedMatchesInferenceModel() throws {
        let rt = try Self.loaded()
        #expect(rt.plan.fusedPrediction, "the runtime's default predicts through the fused path")
        let arena = try Arena(byteCount: 48 << 20)
        let file = try GGUFFile(path: S.model())
        let spec = try ModelFile.readSpec(file)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
        let fused = try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena)
        let input = try arena.persistentTensor(.f32, try Shape(1, 1, 28, 28))
        var compared = 0
        for frame in S.frames(20, count: 784, seed: 7) {
            let (k, logits) = try Self.step(rt, frame)
            guard rt.frames?.lastFrameAdapted == false else { continue }
            try input.copy(from: frame)
            let expected = try fused.forward(input: input).toArray()
            #expect(logits == expected)
            #expect(k == expected.indices.max { expected[$0] < expected[$1] })
            compared += 1
        }
        #expect(compared == 20 && rt.frames?.fusedPredictionCount == 20, "source runs no window forward: every frame is fused")
        withExtendedLifetime(file) {}
    }

    @Test("source steps give the graph's logits and argmax, frame by frame")
    func sourceMatchesGraph() throws {
        let rt = try Self.loaded(AdaptationPlan(fusedPrediction: false))
        #expect(rt.frameElementCount == 784)
        #expect(rt.classCount == 10)
        let (graph, arena, file) = try Self.referenceGraph()
        let input = try arena.persistentTensor(.f32, try Shape(1, 1, 28, 28))
        for frame in S.frames(20, count: 784, seed: 7) {
            let (k, logits) = try Self.step(rt, frame)
            try input.copy(from: frame)
            let expected = try graph.forward(input: input).toArray()
            // The runtime's graph is planned for its window (16 frames) and the reference's for
            // one: the kernels may sum in another order, so agree to float rounding.
            for i in 0..<10 { #expect(abs(logits[i] - expected[i]) <= 1e-5 * max(1, abs(expected[i])), "class \(i)") }
            #expect(k == expected.indices.max { expected[$0] < expected[$1] })
        }
        #expect(rt.stepCount == 20)
        let s = rt.stepTimes.summary()
        #expect(s.count == 20)
        #expect(s.p50 > 0 && s.p50 <= s.p99 && s.p99 <= s.max)
        withExtendedLifetime(file) {}
    }

    @Test("Tent through the runtime equals a frame adapter driven directly")
    func tentMatchesFrameAdapter() throws {
        let settings = AdaptationPlan(.tent, window: 4, every: 4)
        let rt = try Self.loaded(settings)
        #expect(rt.methodName == "tent")
        let arena = try Arena(byteCount: 48 << 20)
        let file = try GGUFFile(path: S.model())
        let spec = try ModelFile.readSpec(file)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
        let session = try AdaptationSession(method: .tent, spec: spec, store: store, batchSize: 4, arena: arena)
        let direct = try FrameAdapter(session: session, window: 4, every: 4, arena: arena, fused: true)
        let input = try arena.persistentTensor(.f32, try Shape(1, 1, 28, 28))
        for frame in S.frames(24, count: 784, seed: 11) {
            let (_, logits) = try Self.step(rt, frame)
            try input.copy(from: frame)
            #expect(logits == (try direct.step(frame: input).toArray()))
        }
        #expect(direct.adaptationCount == 6)
        #expect(rt.frames?.adaptationCount == 6)
    }

    @Test("bad frames and buffers are refused, counted nowhere, and recorded as the last error")
    func badInput() throws {
        let rt = try Self.loaded()
        var frame = S.frames(1, count: 784, seed: 3)[0]
        _ = try Self.step(rt, frame)
        #expect(throws: LichenError.shapeMismatch(operand: "frame", dimension: 0, expected: 784, got: 783)) {
            _ = try Self.step(rt, Array(frame.dropLast()))
        }
        #expect(rt.lastError == .shapeMismatch(operand: "frame", dimension: 0, expected: 784, got: 783))
        frame[100] = .nan
        #expect(throws: LichenError.nonFiniteValue(operand: "frame", index: 100)) { _ = try Self.step(rt, frame) }
        var small = [Float](repeating: 0, count: 9)
        #expect(throws: LichenError.bufferTooSmall(operand: "logits", needed: 40, available: 36)) {
            _ = try S.frames(1, count: 784, seed: 3)[0].withUnsafeBufferPointer { f in
                try small.withUnsafeMutableBufferPointer { try rt.step(frame: f, logits: $0) }
            }
        }
        #expect(rt.stepCount == 1)
        #expect(rt.stepTimes.recordedCount == 1)
        // The runtime still steps, and as before.
        let again = try Self.step(rt, S.frames(1, count: 784, seed: 3)[0])
        let first = try Self.step(try Self.loaded(), S.frames(1, count: 784, seed: 3)[0])
        #expect(again.1 == first.1)
    }

    @Test("a step before a model is loaded, and a second model, are refused")
    func lifecycleErrors() throws {
        let rt = try Runtime(budgetBytes: 48 << 20)
        #expect(throws: LichenError.invalidArgument(name: "model", value: 0, reason: "load a model before stepping")) {
            _ = try Self.step(rt, [0])
        }
        #expect(!rt.isModelLoaded)
        try rt.loadModel(path: S.model())
        #expect(rt.isModelLoaded)
        #expect(throws: LichenError.self) { try rt.loadModel(path: S.model()) }
        let missing = try Runtime(budgetBytes: 48 << 20)
        let before = missing.arena.stats.lowUsedBytes
        #expect(throws: LichenError.self) { try missing.loadModel(path: "/nonexistent/model.gguf") }
        #expect(missing.arena.stats.lowUsedBytes == before)
        #expect(missing.lastError != nil)
    }

    @Test("a method that cannot be built changes nothing: the running method carries on as if never asked")
    func setMethodFailure() throws {
        let plan = AdaptationPlan(.tent, window: 4, every: 2)
        let rt = try Self.loaded(plan)
        let twin = try Self.loaded(plan)
        let frames = S.frames(12, count: 784, seed: 5)
        for f in frames[0..<6] { #expect(try Self.step(rt, f).1 == (try Self.step(twin, f).1)) }
        let low = rt.arena.stats.lowUsedBytes
        // Full mode trains every parameter: refused on a quantized model.
        do {
            try rt.setMethod(AdaptationPlan(.tent, mode: .full))
            Issue.record("full mode on a quantized model was accepted")
        } catch {
            guard case .invalidArgument(let name, _, _) = error else { Issue.record("\(error)"); return }
            #expect("\(name)" == "mode")
        }
        #expect(throws: LichenError.invalidArgument(name: "window", value: 0, reason: "must be in 1...4096")) {
            try rt.setMethod(AdaptationPlan(.bnAdapt, window: 0, every: 1))
        }
        #expect(rt.methodName == "tent")
        #expect(rt.plan == plan)
        #expect(rt.arena.stats.lowUsedBytes == low)
        // The window, the trained values and the optimizer state are the twin's.
        for f in frames[6...] { #expect(try Self.step(rt, f).1 == (try Self.step(twin, f).1)) }
    }

    @Test("reset returns Tent's parameters to the model's and counts")
    func reset() throws {
        let rt = try Self.loaded(AdaptationPlan(.tent, window: 4, every: 2))
        let session = try #require(rt.session)
        let initial = try session.trainedParameters.map { try session.store[$0].value.toArray() }
        for f in S.frames(12, count: 784, seed: 9) { _ = try Self.step(rt, f) }
        let moved = try session.trainedParameters.map { try session.store[$0].value.toArray() }
        #expect(moved != initial)
        try rt.reset()
        #expect(try session.trainedParameters.map { try session.store[$0].value.toArray() } == initial)
        #expect(rt.resetCount == 1)
    }

    @Test("checkpoint and restore the trained state; corrupt checkpoints change nothing")
    func checkpoints() throws {
        let rt = try Self.loaded(AdaptationPlan(.tent, window: 4, every: 2))
        let session = try #require(rt.session)
        func values() throws -> [[Float]] { try session.trainedParameters.map { try session.store[$0].value.toArray() } }
        let frames = S.frames(16, count: 784, seed: 21)
        for f in frames[0..<8] { _ = try Self.step(rt, f) }
        let saved = try values()
        var bytes = [UInt8](repeating: 0, count: rt.checkpointByteCount)
        let n = try bytes.withUnsafeMutableBytes { try rt.checkpoint(into: $0) }
        #expect(n == bytes.count)
        // Parameter count times (2 + name + 8) + values, plus 16 bytes of header and checksum.
        var expected = 16
        for i in session.trainedParameters { expected += 10 + session.store[i].name.utf8.count + 4 * session.store[i].value.elementCount }
        #expect(n == expected)
        for f in frames[8...] { _ = try Self.step(rt, f) }
        let later = try values()
        #expect(later != saved)
        // Every single-byte corruption and every truncation is refused, and changes nothing.
        for i in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 97)) {
            var bad = bytes
            bad[i] ^= 0x40
            #expect(throws: LichenError.self) { try bad.withUnsafeBytes { try rt.restore(from: $0) } }
        }
        for cut in [0, 3, 15, bytes.count / 2, bytes.count - 1] {
            #expect(throws: LichenError.self) { try Array(bytes[0..<cut]).withUnsafeBytes { try rt.restore(from: $0) } }
        }
        #expect(try values() == later)
        try bytes.withUnsafeBytes { try rt.restore(from: $0) }
        #expect(try values() == saved)
        // A checkpoint of another method does not fit this one.
        let source = try Self.loaded()
        #expect(source.checkpointByteCount == 16)
        #expect(throws: LichenError.self) { try bytes.withUnsafeBytes { try source.restore(from: $0) } }
    }

    @Test("step time percentiles are nearest-rank over the window")
    func percentiles() throws {
        let arena = try Arena(byteCount: 4 << 20)
        let t = try StepTimes(window: 100, arena: arena)
        #expect(t.summary().count == 0)
        var values = Array(UInt64(1)...100)
        var g = SystemRandomNumberGenerator()
        values.shuffle(using: &g)
        for v in values { t.record(nanoseconds: v) }
        let s = t.summary()
        #expect(s.p50 == 50 && s.p99 == 99 && s.max == 100 && s.count == 100)
        // The window keeps the last 10 of 25.
        let w = try StepTimes(window: 10, arena: arena)
        for v in UInt64(1)...25 { w.record(nanoseconds: v * 1000) }
        let sw = w.summary()
        #expect(sw.count == 10 && sw.p50 == 20_000 && sw.p99 == 25_000 && sw.max == 25_000)
        w.clear()
        w.record(nanoseconds: 7)
        #expect(w.summary().p99 == 7 && w.summary().count == 1)
    }
}
