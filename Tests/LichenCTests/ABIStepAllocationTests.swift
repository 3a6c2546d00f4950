import CRuntime
import Foundation
import Lichen
import LichenC
import Testing

/// `lichen_step` (and so `Runtime.step`) allocates nothing in steady state, for every method the
/// C ABI offers, on frames between updates and on update frames: jemalloc's per-thread byte
/// totals do not move across steps taken after warm-up, and the budget's accounting does not
/// move either. CoTTA runs with its gate always open (threshold 1, 2 augmented passes); RMT and
/// CoTTA's derived threshold read a small source pack of seeded random frames.
@Suite("C ABI step allocation")
struct ABIStepAllocationTests {
    static let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../models/fmnist-cnn/fmnist-cnn-q8_0.gguf").standardizedFileURL.path

    static func totals() -> (allocated: UInt64, deallocated: UInt64) {
        var a: UInt64 = 0, d: UInt64 = 0
        _ = lcr_thread_allocation_totals(&a, &d)
        return (a, d)
    }

    /// A source pack of `count` seeded random 28x28 frames with labels 0..<10, in a temporary file.
    static func pack(count: Int, tag: Int) throws -> String {
        var writer = try StreamFileWriter(kind: .custom, width: 28, height: 28, classCount: 10, seed: 3)
        try writer.beginDomain(name: "clean", severity: 0)
        var state: UInt64 = 99
        for i in 0..<count {
            var frame = [UInt8](repeating: 0, count: 784)
            for k in 0..<784 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                frame[k] = UInt8(truncatingIfNeeded: state >> 56)
            }
            try writer.append(frame: frame, label: i % 10)
        }
        let path = NSTemporaryDirectory() + "lichen-abi-pack-\(getpid())-\(tag)-\(count).stream"
        try writer.write(toPath: path)
        return path
    }

    static let methods: [(String, lichen_method)] = [
        ("source", LICHEN_METHOD_SOURCE), ("bn", LICHEN_METHOD_BN), ("tent", LICHEN_METHOD_TENT), ("tent+lora", LICHEN_METHOD_TENT),
        ("cotta", LICHEN_METHOD_COTTA), ("cotta, threshold from the pack", LICHEN_METHOD_COTTA), ("rmt", LICHEN_METHOD_RMT),
    ]

    @Test("lichen_step allocates nothing in steady state", arguments: 0..<methods.count)
    func steadyState(_ index: Int) throws {
        let (name, method) = Self.methods[index]
        let packPath = try Self.pack(count: 32, tag: index)
        defer { unlink(packPath) }
        var rp = lichenRuntimeDefaultParams()
        rp.budget_bytes = 64 << 20
        var handle: OpaquePointer? = nil
        #expect(lichenRuntimeCreate(&rp, &handle) == LICHEN_STATUS_OK)
        let rt = try #require(handle)
        defer { lichenRuntimeDestroy(rt) }
        #expect(Self.model.withCString { lichenModelLoad(rt, $0) } == LICHEN_STATUS_OK)
        var mp = lichenMethodDefaultParams(method)
        mp.window = 8
        mp.every = 2
        mp.cotta_augmentations = 2
        mp.rmt_warmup_samples = 16
        mp.guard_min_classes = 1.2
        mp.guard_window = 64
        if name == "cotta" { mp.cotta_threshold = 1 }
        if name == "tent+lora" { mp.lora_rank = 2 }
        let status = packPath.withCString { p -> lichen_status in
            mp.source_pack = p
            return lichenMethodSet(rt, &mp)
        }
        var message = [CChar](repeating: 0, count: 512)
        _ = lichenLastError(rt, &message, 512, nil)
        #expect(status == LICHEN_STATUS_OK, "\(name): \(String(cString: message))")
        var frame = [Float](repeating: 0, count: 784)
        var logits = [Float](repeating: 0, count: 10)
        var state: UInt64 = 5
        func nextFrame() {
            for k in 0..<784 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                frame[k] = Float(state >> 40) / Float(1 << 24)
            }
        }
        var predicted: Int32 = -1
        for _ in 0..<12 {
            nextFrame()
            #expect(lichenStep(rt, frame, 784, &logits, 10, &predicted) == LICHEN_STATUS_OK)
        }
        var before = lichen_metrics()
        #expect(lichenMetricsGet(rt, &before) == LICHEN_STATUS_OK)
        // Every 2: the 4 timed frames are 2 update frames and 2 frames between updates.
        for k in 0..<4 {
            nextFrame()
            let t0 = Self.totals()
            let s = frame.withUnsafeBufferPointer { f in
                logits.withUnsafeMutableBufferPointer { z in lichenStep(rt, f.baseAddress, 784, z.baseAddress, 10, &predicted) }
            }
            let t1 = Self.totals()
            #expect(s == LICHEN_STATUS_OK)
            #expect(t1.allocated == t0.allocated && t1.deallocated == t0.deallocated,
                    "\(name) step \(k): \(t1.allocated &- t0.allocated) bytes allocated, \(t1.deallocated &- t0.deallocated) freed")
        }
        var after = lichen_metrics()
        #expect(lichenMetricsGet(rt, &after) == LICHEN_STATUS_OK)
        #expect(after.used_bytes == before.used_bytes, "\(name): the budget's use moved")
        if method != LICHEN_METHOD_SOURCE && method != LICHEN_METHOD_BN {
            #expect(after.updates == before.updates + 2, "\(name): \(after.updates - before.updates) updates in the timed frames")
        }
    }
}
