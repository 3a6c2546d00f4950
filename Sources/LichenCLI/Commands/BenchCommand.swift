import ArgumentParser
import CRuntime

/// `lichen bench ...`: speed and memory, measured side by side in one run (release builds).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure kernels, inference, adaptation, cue learning and skill composition (use a release build).",
        subcommands: [Kernels.self, Infer.self, AdaptBench.self, CuesBenchAlias.self, SkillsSpeedBench.self]
    )

    struct Kernels: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every kernel family, portable vs SIMD, against BLIS sgemm and a read-bandwidth probe.",
            discussion: """
                Shapes are batch x inputs x outputs (n x k x m): y[n, m] = x[n, k] . W[m, k]^T, the product a \
                linear layer computes. GFLOP/s counts 2nkm operations; GB/s counts weight (or data) bytes read. \
                Quantized kernels quantize their f32 input to Q8_0 on the fly, inside the timed call. \
                Single-threaded; each figure is the median over repeated calls after one warm-up call.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Minimum seconds spent timing each kernel.", valueName: "seconds"))
        var seconds: Double = 0.3

        @Flag(name: .long, help: "Smaller shapes and buffers (a quick look, not the reference figures).")
        var quick = false

        @Option(name: .long, parsing: .upToNextOption,
                help: ArgumentHelp("Instruction sets to run (\(KernelBench.isaNames.joined(separator: ", "))); default: all supported.",
                                   valueName: "isa"))
        var isa: [String] = []

        @Option(name: .long, parsing: .upToNextOption,
                help: ArgumentHelp("Kernel families to run (\(KernelBench.Family.allCases.map(\.rawValue).joined(separator: ", "))); "
                                   + "default: all. The read-bandwidth probe always runs.", valueName: "family"))
        var only: [String] = []

        func validate() throws {
            guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60]") }
            for name in isa where !KernelBench.isaNames.contains(name) {
                throw ValidationError("unknown instruction set '\(name)' (\(KernelBench.isaNames.joined(separator: ", ")))")
            }
            for name in only where KernelBench.Family(rawValue: name) == nil {
                throw ValidationError("unknown kernel family '\(name)' (\(KernelBench.Family.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }

        func run() throws {
            #if DEBUG
            log("warning: this is a debug build; benchmark figures need `swift build -c release`")
            #endif
            let bench = try KernelBench(minSeconds: seconds, quick: quick, isaNames: isa.isEmpty ? nil : isa,
                                        families: only.isEmpty ? Set(KernelBench.Family.allCases) : Set(only.compactMap(KernelBench.Family.init)),
                                        progress: { log("bench: " + $0) })
            if bench.tables.isEmpty {
                log("error: none of the requested instruction sets is supported on this CPU")
                throw ExitCode(1)
            }
            let results = bench.run()
            let rss = processRSS()
            if global.json {
                let doc: JSON = .object([
                    ("benchmark", .string("kernels")),
                    ("best_isa", .string(String(cString: lcr_isa_name(lcr_isa_best())))),
                    ("threads", .int(1)),
                    ("min_seconds_per_kernel", .number(seconds)),
                    ("process_rss_bytes", .int(rss.current)),
                    ("process_peak_rss_bytes", .int(rss.peak)),
                    ("results", .array(results.map(\.json))),
                ])
                print(doc.rendered())
            } else {
                var table = Table(["kernel", "shape (n x k x m)", "isa", "time (ms)", "rate", "unit", "vs baseline"],
                                  rightAligned: [3, 4, 6])
                for r in results {
                    let ratio = r.ratio.map { fixed($0, 2) + "x " + (r.baseline ?? "") } ?? ""
                    table.add([r.kernel, r.shape, r.isa, fixed(r.seconds * 1000, 3), fixed(r.rate, 2), r.unit, ratio])
                }
                print(table.rendered())
                print("")
                print("best instruction set: \(String(cString: lcr_isa_name(lcr_isa_best()))); 1 thread; "
                      + "process RSS \(rss.current >> 20) MiB, peak \(rss.peak >> 20) MiB")
            }
        }
    }
}
