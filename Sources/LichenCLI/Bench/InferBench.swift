import ArgumentParser
import Foundation
import Lichen

/// Monotonic nanoseconds.
func nowNanoseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int(ts.tv_sec) * 1_000_000_000 + Int(ts.tv_nsec)
}

/// The value at quantile `q` (0...1) of sorted samples: the smallest sample with at least
/// q * count samples at or below it.
func quantile(_ sorted: [Int], _ q: Double) -> Int {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((q * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

/// One model variant loaded for `lichen bench infer`: its own arena, the inference path at
/// batch 1 (and optionally at a larger batch) and, for comparison, the unfolded `Graph`.
final class InferVariant {
    let path: String
    let label: String
    let loaded: LoadedModel
    let single: InferenceModel
    let batched: InferenceModel?
    let graph: Graph?
    /// Persistent bytes (parameter copies) before the inference models were built.
    let parameterBytes: Int

    init(path: String, budgetBytes: Int, batch: Int?, withGraph: Bool) throws {
        self.path = path
        loaded = try LoadedModel(path: path, budgetBytes: budgetBytes, trainable: false)
        label = InferVariant.weightLabel(loaded.store)
        parameterBytes = loaded.arena.stats.persistentBytes
        let (spec, store, arena) = (loaded.spec, loaded.store, loaded.arena)
        single = try naming(path) { () throws(LichenError) in try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena) }
        batched = try batch.map { b in
            try naming(path) { () throws(LichenError) in try InferenceModel(spec: spec, store: store, batchSize: b, arena: arena) }
        }
        graph = withGraph ? try naming(path) { () throws(LichenError) in try Graph(spec: spec, store: store, batchSize: 1, arena: arena) } : nil
    }

    /// "F32", "Q8_0" or "Q4_0": the most compact weight type the model's layers use.
    static func weightLabel(_ store: ParameterStore) -> String {
        var label = "F32"
        for i in 0..<store.count {
            switch store[i].value.type {
            case .q4_0: return "Q4_0"
            case .q8_0: label = "Q8_0"
            default: break
            }
        }
        return label
    }
}

/// The variants of `path` found by name: `<stem>-f32.gguf`, `-q8_0.gguf`, `-q4_0.gguf` beside it
/// (the path itself when it does not follow that pattern).
func siblingVariants(of path: String) -> [String] {
    let tags = ["-f32.gguf", "-q8_0.gguf", "-q4_0.gguf"]
    guard let tag = tags.first(where: { path.hasSuffix($0) }) else { return [path] }
    let stem = String(path.dropLast(tag.count))
    return tags.map { stem + $0 }.filter { FileManager.default.fileExists(atPath: $0) }
}

/// f32 frames from a raw little-endian file of whole frames of `frameFloats` values, read straight
/// into one 64-byte aligned allocation (no intermediate copies: the serving process's peak RSS is
/// measured). The caller deallocates.
func readFrames(_ path: String, frameFloats: Int) throws -> (memory: UnsafeMutableRawPointer, count: Int) {
    guard let f = fopen(path, "rb") else { throw CommandFailure(path + ": cannot open") }
    defer { fclose(f) }
    fseek(f, 0, SEEK_END)
    let bytes = ftell(f)
    fseek(f, 0, SEEK_SET)
    guard bytes > 0, bytes % (frameFloats * 4) == 0 else {
        throw CommandFailure(path + ": \(bytes) bytes is not a whole number of \(frameFloats)-value f32 frames")
    }
    let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    guard fread(memory, 1, bytes, f) == bytes else {
        memory.deallocate()
        throw CommandFailure(path + ": short read")
    }
    let floats = memory.assumingMemoryBound(to: Float.self)
    for i in 0..<(bytes / 4) where !floats[i].isFinite {
        memory.deallocate()
        throw CommandFailure(path + ": value \(i) is not finite")
    }
    return (memory, bytes / (frameFloats * 4))
}

extension BenchCommand {
    /// `lichen bench infer`: the inference path's batch-1 latency, batched throughput and memory
    /// per weight variant, next to the unfolded `Graph` in the same run; `--serve` keeps one
    /// variant loaded and times frames on request (the peer benchmark's Lichen side).
    struct Infer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inference latency (batch 1, p50 / p99), throughput and memory of a model's F32, Q8_0 and Q4_0 variants.",
            discussion: """
                With one --model, its variants are found by name (<stem>-f32.gguf, -q8_0.gguf, -q4_0.gguf beside it); \
                several --model options give the variants explicitly. Each variant is loaded into its own budget and \
                built as an InferenceModel (batch norm folded) at batch 1 and at --batch, and as the unfolded Graph \
                at batch 1. Batch-1 frames are timed one by one, the inference path and the Graph alternately on the \
                same frames, until --seconds have passed; p50 / p99 are per frame. Throughput is --batch frames per \
                call, median over calls. Frames are uniform random values from --seed. Single-threaded. \
                RSS is the whole process's (all variants so far).

                --refold: per variant, also builds a refoldable batch-1 model and a batch-statistics Graph at --batch, \
                saves the batch statistics of the --batch frames, and times alternately: InferenceModel.refold of those \
                statistics with the store's gamma, beta (microseconds per call), the refolded model's batch-1 forward, \
                the plain fused model's, and the Graph's saved-statistics batch-1 forward (frame-mode prediction \
                without refolding); with the max |refolded - graph saved| over the frames.

                --serve (one --model, with --frames): loads the variant at batch 1, writes its logits for every frame \
                of --frames (raw little-endian f32) to --outputs, prints "ready", then answers each stdin line \
                "run START COUNT" with COUNT per-frame latencies in nanoseconds (frames START, START+1, ... modulo \
                the frame count, each timed around forward alone) and stops at "quit" or end of input.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("A model file (repeat for several variants).", valueName: "M.gguf"))
        var model: [String] = []

        @Option(name: .long, help: ArgumentHelp("Minimum seconds spent on each measurement.", valueName: "seconds"))
        var seconds: Double = 1.0

        @Option(name: .long, help: ArgumentHelp("Batch of the throughput measurement.", valueName: "N"))
        var batch: Int = 32

        @Option(name: .long, help: ArgumentHelp("Memory budget of each variant, in MiB.", valueName: "MiB"))
        var budget: Int = 64

        @Option(name: .long, help: ArgumentHelp("Seed of the random frames.", valueName: "S"))
        var seed: UInt64 = 1

        @Flag(name: .long, help: "Also time refolding saved batch statistics into the fused model (see the discussion).")
        var refold = false

        @Flag(name: .long, help: "Serve timing requests on stdin for one variant (see the discussion).")
        var serve = false

        @Option(name: .long, help: ArgumentHelp("Frames for --serve: raw little-endian f32, whole frames.", valueName: "FILE"))
        var frames: String?

        @Option(name: .long, help: ArgumentHelp("Where --serve writes its logits for every frame (raw f32).", valueName: "FILE"))
        var outputs: String?

        func validate() throws {
            guard !model.isEmpty else { throw ValidationError("--model is required") }
            guard seconds > 0, seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600]") }
            guard batch >= 1, batch <= 4096 else { throw ValidationError("--batch must be in 1...4096") }
            guard budget >= 4, budget <= 1 << 16 else { throw ValidationError("--budget must be in 4...65536 MiB") }
            if serve {
                guard model.count == 1 else { throw ValidationError("--serve takes exactly one --model") }
                guard frames != nil else { throw ValidationError("--serve needs --frames") }
            } else if frames != nil || outputs != nil {
                throw ValidationError("--frames and --outputs go with --serve")
            }
        }

        func run() throws {
            #if DEBUG
            log("warning: this is a debug build; benchmark figures need `swift build -c release`")
            #endif
            if serve { return try runServe() }
            let paths = model.count == 1 ? siblingVariants(of: model[0]) : model
            var rows: [JSON] = []
            var refoldTable = Table(["weights", "refold p50 (us)", "refold p99 (us)", "refolded p50 (ms)", "plain p50 (ms)",
                                     "refolded / plain", "graph saved p50 (ms)", "refold bytes", "max |diff| vs graph saved",
                                     "logit range"], rightAligned: Set(1...9))
            var table = Table(["weights", "p50 (ms)", "p99 (ms)", "graph p50 (ms)", "vs graph", "batch \(batch) (frames/s)",
                               "step bytes (1 / \(batch))", "folded bytes", "params in budget", "max |diff| vs graph",
                               "peak RSS (MiB)"], rightAligned: Set(1...10))
            for path in paths {
                log("bench: " + path)
                let v = try InferVariant(path: path, budgetBytes: budget << 20, batch: batch, withGraph: true)
                let r = try measure(v)
                let rr = refold ? try measureRefold(v) : nil
                let rss = processRSS()
                let stats = v.loaded.arena.stats
                let stepBatched = v.batched?.plannedBytes ?? 0
                let inUse = v.parameterBytes + v.single.persistentBytes + v.single.plannedBytes
                rows.append(.object([
                    ("path", .string(path)),
                    ("weights", .string(v.label)),
                    ("p50_ms", .number(Double(r.p50) / 1e6)),
                    ("p99_ms", .number(Double(r.p99) / 1e6)),
                    ("graph_p50_ms", .number(Double(r.graphP50) / 1e6)),
                    ("graph_p99_ms", .number(Double(r.graphP99) / 1e6)),
                    ("frames_timed", .int(r.count)),
                    ("throughput_batch", .int(batch)),
                    ("throughput_frames_per_s", .number(r.throughput)),
                    ("step_bytes_batch1", .int(v.single.plannedBytes)),
                    ("step_bytes_batch", .int(stepBatched)),
                    ("graph_step_bytes_batch1", .int(v.graph?.plannedBytes ?? 0)),
                    ("folded_parameter_bytes", .int(v.single.persistentBytes)),
                    ("parameter_bytes_in_budget", .int(v.parameterBytes)),
                    ("budget_in_use_bytes_batch1", .int(inUse)),
                    ("arena_planned_bytes", .int(stats.plannedBytes)),
                    ("arena_persistent_bytes", .int(stats.persistentBytes)),
                    ("heap_in_use_bytes", .int(stats.heapInUseBytes)),
                    ("max_abs_diff_vs_graph", .number(Double(r.maxDiff))),
                    ("logit_range", .number(Double(r.range))),
                    ("process_rss_bytes", .int(rss.current)),
                    ("process_peak_rss_bytes", .int(rss.peak)),
                ] + (rr.map { x -> [(String, JSON)] in [
                    ("refold_p50_us", .number(Double(x.refoldP50) / 1e3)),
                    ("refold_p99_us", .number(Double(x.refoldP99) / 1e3)),
                    ("refolded_p50_ms", .number(Double(x.refoldedP50) / 1e6)),
                    ("refolded_p99_ms", .number(Double(x.refoldedP99) / 1e6)),
                    ("refold_plain_p50_ms", .number(Double(x.plainP50) / 1e6)),
                    ("graph_saved_p50_ms", .number(Double(x.savedGraphP50) / 1e6)),
                    ("graph_saved_p99_ms", .number(Double(x.savedGraphP99) / 1e6)),
                    ("refold_rounds_timed", .int(x.count)),
                    ("refold_bytes", .int(x.refoldBytes)),
                    ("refold_max_abs_diff_vs_graph_saved", .number(Double(x.maxDiff))),
                    ("refold_logit_range", .number(Double(x.range))),
                ] } ?? [])))
                if let x = rr {
                    refoldTable.add([v.label, fixed(Double(x.refoldP50) / 1e3, 1), fixed(Double(x.refoldP99) / 1e3, 1),
                                     fixed(Double(x.refoldedP50) / 1e6, 4), fixed(Double(x.plainP50) / 1e6, 4),
                                     fixed(Double(x.refoldedP50) / Double(max(x.plainP50, 1)), 2) + "x",
                                     fixed(Double(x.savedGraphP50) / 1e6, 4), "\(x.refoldBytes)", String(x.maxDiff), String(x.range)])
                }
                table.add([v.label, fixed(Double(r.p50) / 1e6, 4), fixed(Double(r.p99) / 1e6, 4), fixed(Double(r.graphP50) / 1e6, 4),
                           fixed(Double(r.graphP50) / Double(max(r.p50, 1)), 2) + "x", fixed(r.throughput, 0),
                           "\(v.single.plannedBytes) / \(stepBatched)", "\(v.single.persistentBytes)", "\(v.parameterBytes)",
                           String(r.maxDiff), fixed(Double(rss.peak) / 1048576, 1)])
            }
            let isa = Lichen.Kernels.best.isaName
            if global.json {
                let doc: JSON = .object([
                    ("benchmark", .string("infer")),
                    ("isa", .string(isa)),
                    ("threads", .int(1)),
                    ("min_seconds", .number(seconds)),
                    ("seed", .int(Int(seed))),
                    ("results", .array(rows)),
                ])
                print(doc.rendered())
            } else {
                print(table.rendered())
                print("")
                print("isa \(isa); 1 thread; batch-1 latency per frame, inference path and Graph timed alternately; "
                      + "step bytes = planned step region; folded bytes = folded weights and biases copied into the budget; "
                      + "peak RSS is the process's, cumulative over the variants")
                if refold {
                    print("")
                    print(refoldTable.rendered())
                    print("")
                    print("refold = InferenceModel.refold of batch statistics saved from --batch frames; refolded, plain and "
                          + "graph saved = batch-1 forwards timed alternately with the refold")
                }
            }
        }

        struct Result {
            var p50 = 0, p99 = 0, graphP50 = 0, graphP99 = 0, count = 0
            var throughput = 0.0
            var maxDiff: Float = 0
            var range: Float = 0
        }

        func measure(_ v: InferVariant) throws -> Result {
            let seeded = try SeededFrames(spec: v.loaded.spec, count: batch, seed: seed)
            defer { withExtendedLifetime(seeded) {} }
            let all = seeded.all, frames = seeded.frames
            var result = Result()
            // Agreement with the Graph on every frame, and warm-up.
            var lo = Float.infinity, hi = -Float.infinity
            for f in frames {
                let a = try naming("forward") { () throws(LichenError) in try v.single.forward(input: f).toArray() }
                if let graph = v.graph {
                    let b = try naming("graph") { () throws(LichenError) in try graph.forward(input: f).toArray() }
                    for k in 0..<a.count {
                        result.maxDiff = max(result.maxDiff, abs(a[k] - b[k]))
                        lo = min(lo, b[k])
                        hi = max(hi, b[k])
                    }
                }
            }
            result.range = hi - lo
            var fast: [Int] = [], slow: [Int] = []
            let start = nowNanoseconds()
            var i = 0
            while fast.count < 200 || nowNanoseconds() - start < Int(seconds * 1e9) {
                let f = frames[i % batch]
                let t0 = nowNanoseconds()
                _ = try naming("forward") { () throws(LichenError) in try v.single.forward(input: f) }
                let t1 = nowNanoseconds()
                fast.append(t1 - t0)
                if let graph = v.graph {
                    let t2 = nowNanoseconds()
                    _ = try naming("graph") { () throws(LichenError) in try graph.forward(input: f) }
                    slow.append(nowNanoseconds() - t2)
                }
                i += 1
                if fast.count >= 1_000_000 { break }
            }
            fast.sort()
            slow.sort()
            result.p50 = quantile(fast, 0.5)
            result.p99 = quantile(fast, 0.99)
            result.graphP50 = quantile(slow, 0.5)
            result.graphP99 = quantile(slow, 0.99)
            result.count = fast.count
            if let batched = v.batched {
                var calls: [Int] = []
                _ = try naming("forward") { () throws(LichenError) in try batched.forward(input: all) }
                let s = nowNanoseconds()
                while calls.count < 5 || nowNanoseconds() - s < Int(seconds * 1e9) {
                    let t0 = nowNanoseconds()
                    _ = try naming("forward") { () throws(LichenError) in try batched.forward(input: all) }
                    calls.append(nowNanoseconds() - t0)
                    if calls.count >= 100_000 { break }
                }
                calls.sort()
                result.throughput = Double(batch) / (Double(quantile(calls, 0.5)) / 1e9)
            }
            return result
        }

        func runServe() throws {
            let v = try InferVariant(path: model[0], budgetBytes: budget << 20, batch: nil, withGraph: false)
            let perFrame = v.loaded.spec.inputShape.elementCount ?? 0
            let (memory, count) = try readFrames(frames ?? "", frameFloats: perFrame)
            defer { memory.deallocate() }
            var dims = [1]
            dims.append(contentsOf: v.loaded.spec.inputShape.dimensions)
            let shape = try naming("frames") { () throws(LichenError) in try Shape(dimensions: dims) }
            var views: [TensorView] = []
            for i in 0..<count {
                views.append(try naming("frames") { () throws(LichenError) in
                    try TensorView(base: memory + i * perFrame * 4, byteCount: perFrame * 4, type: .f32, shape: shape)
                })
            }
            var logits: [Float] = []
            for f in views {
                logits.append(contentsOf: try naming("forward") { () throws(LichenError) in try v.single.forward(input: f).toArray() })
            }
            if let outputs {
                guard let f = fopen(outputs, "wb") else { throw CommandFailure(outputs + ": cannot write") }
                let written = logits.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
                fclose(f)
                guard written == logits.count * 4 else { throw CommandFailure(outputs + ": short write") }
            }
            print("ready")
            fflush(nil)  // all streams: stdout is a pipe here
            var samples = [Int](repeating: 0, count: 0)
            while let line = readLine() {
                let words = line.split(separator: " ")
                if words.isEmpty || words[0] == "quit" { break }
                guard words[0] == "run", words.count == 3, let first = Int(words[1]), let n = Int(words[2]), first >= 0, n >= 0 else {
                    throw CommandFailure("serve: expected 'run START COUNT' or 'quit', got '\(line)'")
                }
                samples.removeAll(keepingCapacity: true)
                for j in 0..<n {
                    let f = views[(first + j) % count]
                    let t0 = nowNanoseconds()
                    _ = try naming("forward") { () throws(LichenError) in try v.single.forward(input: f) }
                    samples.append(nowNanoseconds() - t0)
                }
                print(samples.map(String.init).joined(separator: " "))
                fflush(nil)  // all streams: stdout is a pipe here
            }
        }
    }
}

/// `count` frames of `spec`'s input, uniform in [0, 1) from a seeded LCG (the same frames for
/// the same seed), in memory freed with this object: the bench's inputs.
final class SeededFrames {
    private let memory: UnsafeMutableRawPointer
    /// [count, input shape...], and each row as its own [1, input shape...] view.
    let all: TensorView
    let frames: [TensorView]

    init(spec: ModelSpec, count: Int, seed: UInt64) throws {
        let perFrame = spec.inputShape.elementCount ?? 0
        var dims = [count]
        dims.append(contentsOf: spec.inputShape.dimensions)
        memory = UnsafeMutableRawPointer.allocate(byteCount: count * perFrame * 4, alignment: 64)
        var rng = seed &+ 0x9E37_79B9_7F4A_7C15
        let floats = memory.bindMemory(to: Float.self, capacity: count * perFrame)
        for i in 0..<(count * perFrame) {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            floats[i] = Float(rng >> 40) / Float(1 << 24)
        }
        let base = memory
        let all = try naming("frames") { () throws(LichenError) in
            try TensorView(base: base, byteCount: count * perFrame * 4, type: .f32, shape: try Shape(dimensions: dims))
        }
        self.all = all
        var frames: [TensorView] = []
        for i in 0..<count { frames.append(try naming("frames") { () throws(LichenError) in try all.leadingRows(i, count: 1) }) }
        self.frames = frames
    }

    deinit { memory.deallocate() }
}
