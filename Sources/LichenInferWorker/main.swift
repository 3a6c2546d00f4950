// lichen-infer-worker: the peer benchmark's lean Lichen side. A small executable over the core
// alone (Lichen + CRuntime: no Foundation, no argument parser), as a robot's control binary links
// it, so its peak RSS is the core's and not the CLI's.
//
//     lichen-infer-worker MODEL.gguf FRAMES.f32 OUTPUTS.f32 [BUDGET_MIB]
//
// Loads MODEL (mapped) into an arena of BUDGET_MIB (default 64) and builds the InferenceModel at
// batch 1; reads FRAMES (raw little-endian f32, whole frames of the model's input shape) through
// the core's file helpers; writes the logits of every frame (raw f32) to OUTPUTS; prints "ready";
// then answers each stdin line "run START COUNT" with COUNT per-frame latencies in nanoseconds
// (frames START, START+1, ... modulo the frame count, each timed around `forward` alone) and stops
// at "quit" or end of input. The same protocol as `lichen bench infer --serve`. Errors go to
// stderr with exit status 1.
import CRuntime
import Lichen

func fail(_ message: String) -> Never {
    var text = "lichen-infer-worker: " + message + "\n"
    text.withUTF8 { bytes in
        bytes.withMemoryRebound(to: CChar.self) { _ = lcr_os_write_stderr($0.baseAddress, $0.count) }
    }
    lcr_os_exit(1)
    fatalError()
}

func check<T>(_ what: String, _ body: () throws(LichenError) -> T) -> T {
    do {
        return try body()
    } catch {
        fail(what + ": " + error.description)
    }
}

/// Reads the whole file at `path` into one 64-byte aligned allocation (no intermediate copies).
func readWholeFile(_ path: String) -> (memory: UnsafeMutableRawPointer, bytes: Int) {
    var fd: Int32 = -1
    guard lcr_file_open_read(path, &fd) == 0 else { fail(path + ": cannot open") }
    defer { _ = lcr_file_close(fd) }
    var size: UInt64 = 0
    guard lcr_file_size(fd, &size) == 0 else { fail(path + ": cannot size") }
    let bytes = Int(size)
    let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
    guard lcr_file_read_all(fd, memory, bytes) == 0 else { fail(path + ": short read") }
    return (memory, bytes)
}

func writeWholeFile(_ path: String, _ floats: [Float]) {
    var fd: Int32 = -1
    guard lcr_file_create(path, &fd) == 0 else { fail(path + ": cannot create") }
    let status = floats.withUnsafeBytes { lcr_file_write_all(fd, $0.baseAddress, $0.count) }
    _ = lcr_file_close(fd)
    guard status == 0 else { fail(path + ": short write") }
}

let args = CommandLine.arguments
guard args.count == 4 || args.count == 5 else {
    fail("usage: lichen-infer-worker MODEL.gguf FRAMES.f32 OUTPUTS.f32 [BUDGET_MIB]")
}
let (modelPath, framesPath, outputsPath) = (args[1], args[2], args[3])
var budgetMiB = 64
if args.count == 5 {
    guard let b = Int(args[4]), b >= 4, b <= 1 << 16 else { fail("BUDGET_MIB must be in 4...65536") }
    budgetMiB = b
}

let file = check(modelPath) { () throws(LichenError) in try GGUFFile(path: modelPath, mode: .map) }
let spec = check(modelPath) { () throws(LichenError) in try ModelFile.readSpec(file) }
let arena = check(modelPath) { () throws(LichenError) in try Arena(byteCount: budgetMiB << 20) }
let store = ParameterStore(arena: arena)
check(modelPath) { () throws(LichenError) in try ModelFile.loadParameters(file, spec: spec, into: store, trainable: false) }
let model = check(modelPath) { () throws(LichenError) in try InferenceModel(spec: spec, store: store, batchSize: 1, arena: arena) }

let perFrame = spec.inputShape.elementCount ?? 0
let (frameMemory, frameBytes) = readWholeFile(framesPath)
guard perFrame > 0, frameBytes > 0, frameBytes % (perFrame * 4) == 0 else {
    fail(framesPath + ": \(frameBytes) bytes is not a whole number of \(perFrame)-value f32 frames")
}
let frameCount = frameBytes / (perFrame * 4)
var dims = [1]
dims.append(contentsOf: spec.inputShape.dimensions)
let frameShape = check("frames") { () throws(LichenError) in try Shape(dimensions: dims) }
var views: [TensorView] = []
views.reserveCapacity(frameCount)
for i in 0..<frameCount {
    views.append(check("frames") { () throws(LichenError) in
        try TensorView(base: frameMemory + i * perFrame * 4, byteCount: perFrame * 4, type: .f32, shape: frameShape)
    })
}

var logits: [Float] = []
for (i, f) in views.enumerated() {
    logits.append(contentsOf: check("frame \(i)") { () throws(LichenError) in try model.forward(input: f).toArray() })
}
writeWholeFile(outputsPath, logits)
logits = []

func reply(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in
        bytes.withMemoryRebound(to: CChar.self) { _ = lcr_os_write_stdout($0.baseAddress, $0.count) }
    }
}

reply("ready")
var samples = [Int](repeating: 0, count: 0)
while let line = readLine() {
    let words = line.split(separator: " ")
    if words.isEmpty || words[0] == "quit" { break }
    guard words[0] == "run", words.count == 3, let first = Int(words[1]), let n = Int(words[2]), first >= 0, n >= 0 else {
        fail("expected 'run START COUNT' or 'quit', got '\(line)'")
    }
    samples.removeAll(keepingCapacity: true)
    for j in 0..<n {
        let f = views[(first + j) % frameCount]
        let t0 = lcr_os_monotonic_ns()
        _ = check("forward") { () throws(LichenError) in try model.forward(input: f) }
        samples.append(Int(lcr_os_monotonic_ns() - t0))
    }
    var text = ""
    for (j, s) in samples.enumerated() { text += (j == 0 ? "" : " ") + String(s) }
    reply(text)
}
