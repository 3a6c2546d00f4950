import LichenChecks
import Testing

/// Runs every core check (Tests/LichenChecks) as its own Swift Testing case. The same checks
/// run on aarch64 under qemu through ports/linux-aarch64/runner.
@Suite("Core checks")
struct CoreChecksTests {
    @Test(arguments: LichenChecks.all.map(\.fullName))
    func check(_ name: String) throws {
        let check = try #require(LichenChecks.all.first { $0.fullName == name })
        let outcome = check.run()
        #expect(outcome.failures == 0, "\(outcome.failures) of \(outcome.assertions) assertions failed: \(outcome.messages)")
    }
}
