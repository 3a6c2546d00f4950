import Foundation
import Lichen
import Testing

/// Adapter scales that are finite but huge (3.4e38, 1e30) were answered "ok" and the next
/// step gave NaN logits; they are refused at the call with the allowed range, through the API
/// and over the socket, and the runtime keeps predicting.
@Suite("Adapter scales")
struct AdapterScaleTests {
    typealias S = RuntimeTestSupport

    @Test("3.4e38, 1e30, -1e30 and NaN are refused by load, scale and swap with the range; steps stay finite")
    func hugeScalesAreRefused() throws {
        let dir = (S.socketPath() as NSString).deletingLastPathComponent
        let path = dir + "/skill.gguf"
        try RuntimeAdapterTests.writeAdapter(path, seed: 9, base: try RuntimeAdapterTests.base())
        let rt = try RuntimeTests.loaded()
        let frame = S.frames(1, count: 784, seed: 2)[0]
        for scale: Float in [3.4e38, 1e30, -1e30, .nan, 100.5] {
            let expected = LichenError.outOfRange(name: "scale of adapter 'skill'", value: floatText(scale), allowed: "-100...100")
            #expect(throws: expected) { try rt.loadAdapter(path: path, scale: scale) }
            #expect(throws: expected) { try rt.swapAdapters([ControlAdapterSpec(path: path, scale: scale)]) }
            #expect(rt.adapterList().adapters.isEmpty)
        }
        try rt.loadAdapter(path: path, scale: 100)
        for scale: Float in [3.4e38, 1e30] {
            #expect(throws: LichenError.outOfRange(name: "scale of adapter 'skill'", value: floatText(scale), allowed: "-100...100")) {
                try rt.scaleAdapter(name: "skill", scale: scale)
            }
        }
        #expect(rt.adapterList().adapters.first?.scale == 100)
        let logits = try RuntimeAdapterTests.step(rt, frame)
        let finite = logits.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test("over the socket a huge scale is answered failed with the range, and the set stays")
    func socketRefusesHugeScale() throws {
        let dir = (S.socketPath() as NSString).deletingLastPathComponent
        let path = dir + "/skill.gguf"
        try RuntimeAdapterTests.writeAdapter(path, seed: 9, base: try RuntimeAdapterTests.base())
        let socket = S.socketPath()
        let rt = try Runtime(budgetBytes: 48 << 20, configuration: RuntimeConfiguration(socketPath: socket))
        try rt.loadModel(path: S.model())
        let r = try S.call(socket, .load(path: path, scale: 3.4e38))
        #expect(r.status == .failed && r.message.contains("-100...100") && r.message.contains("skill"), "\(r.message)")
        #expect(rt.adapterList().adapters.isEmpty)
    }
}

/// What a control client is told when an adapter operation fails: which file of a swap was bad,
/// and that a model file is not an adapter (it answered "not found").
@Suite("Adapter errors over the socket")
struct AdapterSocketErrorTests {
    typealias S = RuntimeTestSupport

    @Test("a swap whose second file is bad names that file; a model file loaded as an adapter says so")
    func errorsNameTheFile() throws {
        let dir = (S.socketPath() as NSString).deletingLastPathComponent
        let good = dir + "/good.gguf", bad = dir + "/bad.gguf"
        try RuntimeAdapterTests.writeAdapter(good, seed: 1, base: try RuntimeAdapterTests.base())
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        bytes.removeLast(bytes.count / 3)
        try Data(bytes).write(to: URL(fileURLWithPath: bad))
        let socket = S.socketPath()
        let rt = try Runtime(budgetBytes: 48 << 20, configuration: RuntimeConfiguration(socketPath: socket))
        try rt.loadModel(path: S.model())
        let swap = try S.call(socket, .swap([ControlAdapterSpec(path: good, scale: 1), ControlAdapterSpec(path: bad, scale: 1)]))
        #expect(swap.status == .failed && swap.message.contains("bad.gguf") && !swap.message.contains("good.gguf"), "\(swap.message)")
        let model = try S.call(socket, .load(path: S.model(), scale: 1))
        #expect(model.status == .failed && model.message.contains("a model file") && model.message.contains("not an adapter"),
                "\(model.status) \(model.message)")
        #expect(throws: LichenError.invalidModel(key: "general.type", value: "(absent: a model file)",
                                                 reason: "not an adapter file (expected \"adapter\")")) {
            try rt.loadAdapter(path: S.model(), scale: 1)
        }
    }
}

/// Adapter sets published and replaced before the loop stepped are freed by the swap that
/// replaced them: a burst of swaps between two steps cannot fill the budget.
@Suite("Swap bursts")
struct SwapBurstTests {
    typealias S = RuntimeTestSupport

    @Test("40 swaps of a rank-128 adapter between two steps all succeed within a 20 MiB budget (they failed once the heap filled)")
    func burstBetweenSteps() throws {
        let dir = (S.socketPath() as NSString).deletingLastPathComponent
        let base = try RuntimeAdapterTests.base()
        let paths = [dir + "/big-a.gguf", dir + "/big-b.gguf"]
        try RuntimeAdapterTests.writeAdapter(paths[0], seed: 5, rank: 128, base: base)
        try RuntimeAdapterTests.writeAdapter(paths[1], seed: 6, rank: 128, base: base)
        let rt = try Runtime(budgetBytes: 20 << 20)
        try rt.loadModel(path: S.model())
        let frame = S.frames(1, count: 784, seed: 8)[0]
        _ = try RuntimeAdapterTests.step(rt, frame)
        let heapBefore = rt.arena.stats.heapInUseBytes
        var failures = 0
        for k in 0..<40 {
            do { try rt.swapAdapters([ControlAdapterSpec(path: paths[k % 2], scale: 1)]) } catch { failures += 1 }
        }
        #expect(failures == 0)
        _ = try RuntimeAdapterTests.step(rt, frame)
        try rt.swapAdapters([])
        _ = try RuntimeAdapterTests.step(rt, frame)
        rt.collectAdapters()
        #expect(rt.arena.stats.heapInUseBytes <= heapBefore)
    }
}
