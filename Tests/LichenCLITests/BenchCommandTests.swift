import Foundation
import Testing

/// The CLI contract of `lichen bench kernels`: flags, exit codes, and `--json` printing one document.
/// (Figures are not asserted here: timing belongs to the benchmark itself.)
@Suite("lichen bench kernels")
struct BenchCommandTests {
    @Test func helpNamesTheSubcommandsAndFlags() throws {
        let outcome = try CLIRunner.run(["bench", "kernels", "--help"])
        #expect(outcome.status == 0)
        for flag in ["--json", "--seconds", "--quick", "--isa", "--only"] {
            #expect(outcome.stdout.contains(flag), "help lacks \(flag): \(outcome.stdout)")
        }
    }

    @Test func badSecondsIsAUsageError() throws {
        let outcome = try CLIRunner.run(["bench", "kernels", "--seconds", "0"])
        #expect(outcome.status == 2, "status \(outcome.status)")
        #expect(outcome.stderr.contains("--seconds must be in (0, 60]"), "stderr: \(outcome.stderr)")
    }

    @Test func unknownInstructionSetIsAUsageError() throws {
        let outcome = try CLIRunner.run(["bench", "kernels", "--isa", "sse9"])
        #expect(outcome.status == 2)
        #expect(outcome.stderr.contains("unknown instruction set 'sse9'"), "stderr: \(outcome.stderr)")
    }

    @Test func unknownFamilyIsAUsageError() throws {
        let outcome = try CLIRunner.run(["bench", "kernels", "--only", "gemv2"])
        #expect(outcome.status == 2)
        #expect(outcome.stderr.contains("unknown kernel family 'gemv2' (gemm, gemv, row, im2col)"), "stderr: \(outcome.stderr)")
    }

    @Test func everyInstructionSetNameIsAccepted() throws {
        // avx512vnni is a name CRuntime knows: never a usage error, whether or not this CPU has it.
        let outcome = try CLIRunner.run(["bench", "kernels", "--quick", "--seconds", "0.001", "--isa", "avx512vnni", "--only", "im2col", "--json"])
        #expect(outcome.status == 0 || outcome.status == 1, "status \(outcome.status), stderr: \(outcome.stderr)")
        #expect(!outcome.stderr.contains("unknown instruction set"), "stderr: \(outcome.stderr)")
    }

    @Test func onlyRunsTheNamedFamiliesAndTheProbe() throws {
        let outcome = try CLIRunner.run(["bench", "kernels", "--quick", "--seconds", "0.001", "--isa", "portable", "--only", "row", "im2col", "--json"])
        #expect(outcome.status == 0, "stderr: \(outcome.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        let results = try #require(object["results"] as? [[String: Any]])
        let kernels = Set(results.compactMap { $0["kernel"] as? String })
        for family in ["read bandwidth probe", "quantize q8_0", "softmax rows of 10", "im2col 3x3 s1 p1"] {
            #expect(kernels.contains(family), "missing \(family)")
        }
        for family in ["sgemm (BLIS)", "gemm q8_0 x q8_0", "gemv q8_0", "sgemv f32"] {
            #expect(!kernels.contains(family), "\(family) ran without being asked for")
        }
    }

    @Test func jsonIsOneDocumentWithEveryKernelFamily() throws {
        let outcome = try CLIRunner.run(["bench", "kernels", "--quick", "--seconds", "0.001", "--isa", "portable", "--json"])
        #expect(outcome.status == 0, "stderr: \(outcome.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        #expect(object["benchmark"] as? String == "kernels")
        let results = try #require(object["results"] as? [[String: Any]])
        let kernels = Set(results.compactMap { $0["kernel"] as? String })
        for family in ["read bandwidth probe", "sgemm (BLIS)", "gemm q8_0 x q8_0", "gemm q4_0 x q8_0",
                       "gemm_t q8_0 (backprop dx)", "gemv q8_0", "gemv q4_0", "sgemv f32", "quantize q8_0",
                       "dequantize q4_0", "softmax rows of 10", "im2col 3x3 s1 p1"] {
            #expect(kernels.contains(family), "missing \(family)")
        }
        for r in results {
            let rate = try #require(r["rate"] as? Double)
            #expect(rate > 0 && rate.isFinite, "\(r)")
        }
    }
}
