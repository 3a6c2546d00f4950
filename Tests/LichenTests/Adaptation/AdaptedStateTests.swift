import CRuntime
import Foundation
import Lichen
import Testing

/// The adapted state: a saved and restored method continues exactly where the original would
/// (values, optimizer moments and counts, random streams); damaged, foreign and mismatched
/// files are refused with the reason and change nothing; the guard's last good state.
@Suite("Adapted state")
struct AdaptedStateTests {
    typealias S = RuntimeTestSupport

    struct Loaded {
        let arena: Arena
        let spec: ModelSpec
        let store: ParameterStore
        let hash: UInt64
        /// Keeps the mapping the quantized weights live in.
        let file: GGUFFile
    }

    static func load(_ type: String = "q8_0") throws -> Loaded {
        let arena = try Arena(byteCount: 64 << 20)
        let file = try GGUFFile(path: S.model("cnn", type))
        let spec = try ModelFile.readSpec(file)
        let store = ParameterStore(arena: arena)
        try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false)
        return Loaded(arena: arena, spec: spec, store: store, hash: file.contentHash(), file: file)
    }

    static func plan(_ method: AdaptationMethod) -> AdaptationPlan {
        var p = AdaptationPlan(method, framing: .batch(size: 8), cottaThreshold: .given(1))
        p.cotta.augmentations = 2
        // No source data: RMT's self-training alone (no replay, no prototypes, no warm-up).
        p.rmt = RMT.Configuration(lambdaContrast: 0, lambdaSource: 0, warmUpSamples: 0)
        return p
    }

    static func path(_ name: String) -> String { NSTemporaryDirectory() + "lichen-state-\(getpid())-\(name).lcst" }

    static func batch(_ arena: Arena, seed: UInt64) throws -> TensorView {
        let t = try arena.persistentTensor(.f32, try Shape(8, 1, 28, 28))
        try t.copy(from: S.frames(8, count: 784, seed: seed).flatMap { $0 })
        return t
    }

    static func trained(_ r: RunningMethod) throws -> [[Float]] {
        try r.session.trainedParameters.map { try r.session.store[$0].value.toArray() }
    }

    @Test("a restored method continues exactly where the saved one would", arguments: [AdaptationMethod.tent, .cotta, .rmt])
    func resumes(_ method: AdaptationMethod) throws {
        let a = try Self.load(), b = try Self.load()
        let ra = try Self.plan(method).assemble(spec: a.spec, store: a.store, arena: a.arena)
        let rb = try Self.plan(method).assemble(spec: b.spec, store: b.store, arena: b.arena)
        for k in 0..<3 { _ = try ra.step(batch: try Self.batch(a.arena, seed: UInt64(k))) }
        let path = Self.path("resume-\(method.name)")
        defer { unlink(path) }
        try ra.saveState(to: path, modelHash: a.hash)
        #expect(try Self.trained(rb) != (try Self.trained(ra)))
        let contents = try rb.restoreState(from: path, modelHash: b.hash)
        #expect(contents.updates == 3)
        #expect(contents.planText == Self.plan(method).stateIdentity)
        #expect(try Self.trained(rb) == (try Self.trained(ra)))
        #expect(rb.session.stepCount == ra.session.stepCount)
        // The next updates agree bit for bit: moments, step counts, β powers and random streams came along.
        for k in 3..<5 {
            let za = try ra.step(batch: try Self.batch(a.arena, seed: UInt64(k))).toArray()
            let zb = try rb.step(batch: try Self.batch(b.arena, seed: UInt64(k))).toArray()
            #expect(za == zb, "\(method.name), batch \(k)")
        }
        #expect(try Self.trained(rb) == (try Self.trained(ra)))
    }

    @Test("the file reads back with an independent parse: header, counters and every value")
    func layout() throws {
        let a = try Self.load()
        let r = try Self.plan(.tent).assemble(spec: a.spec, store: a.store, arena: a.arena)
        _ = try r.step(batch: try Self.batch(a.arena, seed: 1))
        let path = Self.path("layout")
        defer { unlink(path) }
        try r.saveState(to: path, modelHash: a.hash)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // Read by hand from the documented layout.
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[o + $1]) << (8 * UInt32($1)) } }
        func u64(_ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[o + $1]) << (8 * UInt64($1)) } }
        #expect(Array(bytes[0..<4]) == Array("LCST".utf8))
        #expect(u32(4) == 1)
        #expect(u64(8) == a.hash)
        #expect(u64(20) == 1, "one update")
        var o = 44
        let planLength = Int(bytes[o]) | Int(bytes[o + 1]) << 8
        #expect(String(decoding: bytes[(o + 2)..<(o + 2 + planLength)], as: UTF8.self) == Self.plan(.tent).stateIdentity)
        o += 2 + planLength
        let counters = Int(u32(o))
        o += 4 + 8 * counters
        let tensors = Int(u32(o))
        o += 4
        let trained = try Self.trained(r)
        for t in 0..<tensors {
            let n = Int(bytes[o]) | Int(bytes[o + 1]) << 8
            let name = String(decoding: bytes[(o + 2)..<(o + 2 + n)], as: UTF8.self)
            o += 2 + n
            let count = Int(u64(o))
            o += 8
            if t < trained.count {
                #expect(name == r.session.store[r.session.trainedParameters[t]].name)
                let values = (0..<count).map { Float(bitPattern: u32(o + 4 * $0)) }
                #expect(values == trained[t])
            }
            o += 4 * count
        }
        var crc = CRC32()
        bytes[0..<o].withUnsafeBytes { crc.update($0) }
        #expect(u32(o) == crc.value)
        #expect(o + 4 == bytes.count)
    }

    @Test("truncated, damaged, foreign and mismatched files are refused with the reason, and nothing changes")
    func refusals() throws {
        let a = try Self.load()
        let r = try Self.plan(.tent).assemble(spec: a.spec, store: a.store, arena: a.arena)
        _ = try r.step(batch: try Self.batch(a.arena, seed: 1))
        let path = Self.path("refusals")
        defer { unlink(path) }
        try r.saveState(to: path, modelHash: a.hash)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let b = try Self.load()
        let rb = try Self.plan(.tent).assemble(spec: b.spec, store: b.store, arena: b.arena)
        let before = try Self.trained(rb)
        let damaged = Self.path("damaged")
        defer { unlink(damaged) }

        // Truncated: the checksum no longer matches what is there.
        try good.prefix(good.count - 9).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: LichenError.malformedFile(offset: good.count - 13, reason: "checksum does not match: the file is damaged or truncated")) {
            try rb.restoreState(from: damaged, modelHash: b.hash)
        }
        try good.prefix(10).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: LichenError.malformedFile(offset: 10, reason: "state file truncated: shorter than its header and checksum")) {
            try rb.restoreState(from: damaged, modelHash: b.hash)
        }
        // One flipped byte in the values.
        var flipped = good
        flipped[good.count - 20] ^= 0x10
        try flipped.write(to: URL(fileURLWithPath: damaged))
        #expect(throws: LichenError.malformedFile(offset: good.count - 4, reason: "checksum does not match: the file is damaged or truncated")) {
            try rb.restoreState(from: damaged, modelHash: b.hash)
        }
        // Not a state file.
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: LichenError.malformedFile(offset: 0, reason: "not a state file (magic is not LCST)")) {
            try rb.restoreState(from: damaged, modelHash: b.hash)
        }
        // Another model: the f32 model the Q8_0 one was quantized from.
        let f32 = try Self.load("f32")
        #expect(f32.hash != a.hash)
        let rf = try Self.plan(.tent).assemble(spec: f32.spec, store: f32.store, arena: f32.arena)
        let modelError = try #require(throws: LichenError.self) { try rf.restoreState(from: path, modelHash: f32.hash) }
        guard case .invalidModel(let key, _, _) = modelError else { Issue.record("\(modelError)"); return }
        #expect(key == "state.model")
        // Another plan (a different learning rate).
        var other = Self.plan(.tent)
        other.optimizer = .adam(learningRate: 5e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        let c = try Self.load()
        let ro = try other.assemble(spec: c.spec, store: c.store, arena: c.arena)
        let planError = try #require(throws: LichenError.self) { try ro.restoreState(from: path, modelHash: c.hash) }
        guard case .invalidModel(let planKey, _, _) = planError else { Issue.record("\(planError)"); return }
        #expect(planKey == "state.plan")
        // A path that is not a regular file.
        #expect(throws: LichenError.fileRefused(path: "/dev/null", reason: "not a regular file (a FIFO, socket, device or directory)",
                                                byteCount: 0, limit: 0)) {
            try rb.restoreState(from: "/dev/null", modelHash: b.hash)
        }
        #expect(try Self.trained(rb) == before, "no refused file changed anything")
    }

    @Test("the guard's last good state: kept before each update it saw healthy, used once, then the source state")
    func lastGood() throws {
        let a = try Self.load()
        var p = AdaptationPlan(.tent, window: 8, every: 8)
        // A bound every stream meets: the guard judges every full history healthy.
        p.collapseGuard = AdaptationPlan.Guard(minimumEffectiveClasses: 0.5, window: 8, resetTo: .lastGood)
        let r = try p.assemble(spec: a.spec, store: a.store, arena: a.arena)
        let source = try Self.trained(r)
        let input = try a.arena.persistentTensor(.f32, try Shape(1, 1, 28, 28))
        let frames = S.frames(40, count: 784, seed: 3)
        var beforeLastUpdate: [[Float]] = []
        for (i, f) in frames.enumerated() {
            // Frame 40 is the fifth update: the state before it is the last good one.
            if i == 39 { beforeLastUpdate = try Self.trained(r) }
            try input.copy(from: f)
            _ = try r.step(frame: input)
        }
        #expect(r.updateCount == 5)
        #expect(try Self.trained(r) != beforeLastUpdate)
        try r.resetTrainables(toLastGood: true)
        #expect(try Self.trained(r) == beforeLastUpdate)
        #expect(r.lastGoodResetCount == 1)
        try r.resetTrainables(toLastGood: true)
        #expect(try Self.trained(r) == source, "used once: the second reset returns to the model")
        #expect(r.lastGoodResetCount == 1)
    }
}
