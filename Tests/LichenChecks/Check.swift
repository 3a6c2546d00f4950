import Lichen

/// One named correctness check of the core.
///
/// Checks are written once, Embedded-clean, and run by two harnesses: the host test suite
/// (`Tests/LichenTests/CoreChecksTests.swift`, one Swift Testing case per check) and the
/// aarch64 runner under qemu (`ports/linux-aarch64/runner`). A check that makes no assertion
/// fails, so a check cannot pass by doing nothing.
public struct Check: Sendable {
    /// The area, named after the file under test ("Kernels/Q8_0", "Arena/Planner").
    public let suite: StaticString
    /// What is checked, as a short sentence.
    public let name: StaticString
    /// The body: records expectations in the context.
    public let body: @Sendable (inout CheckContext) -> Void

    public init(_ suite: StaticString, _ name: StaticString, _ body: @escaping @Sendable (inout CheckContext) -> Void) {
        self.suite = suite
        self.name = name
        self.body = body
    }

    /// "suite: name".
    public var fullName: String {
        var s = ""
        suite.withUTF8Buffer { s += String(decoding: $0, as: UTF8.self) }
        s += ": "
        name.withUTF8Buffer { s += String(decoding: $0, as: UTF8.self) }
        return s
    }

    /// Runs the check and returns its context (failures, assertions, messages).
    public func run() -> CheckContext {
        var context = CheckContext()
        body(&context)
        if context.assertions == 0 {
            context.fail("the check made no assertion")
        }
        return context
    }
}

/// Collects the outcome of one check. Keeps the first few failure messages.
public struct CheckContext {
    public private(set) var assertions = 0
    public private(set) var failures = 0
    public private(set) var messages: [String] = []
    public static let maximumMessages = 8

    public init() {}

    /// Records one assertion: `condition` must hold.
    public mutating func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        assertions += 1
        if !condition { fail(message()) }
    }

    /// Records a failure.
    public mutating func fail(_ message: String) {
        failures += 1
        if messages.count < Self.maximumMessages { messages.append(message) }
    }

    /// |actual - expected| <= absolute + relative * |expected|.
    public mutating func expectClose(
        _ actual: Float, _ expected: Float, absolute: Float, relative: Float = 0, _ what: @autoclosure () -> String
    ) {
        let bound = absolute + relative * abs(expected)
        let ok = abs(actual - expected) <= bound && !actual.isNaN
        expect(ok, what() + ": got " + show(actual) + ", expected " + show(expected) + " +/- " + show(bound))
    }

    /// The body must throw exactly `expected`.
    public mutating func expectThrows<T>(
        _ expected: LichenError, _ what: @autoclosure () -> String, _ body: () throws(LichenError) -> T
    ) {
        do {
            _ = try body()
            expect(false, what() + ": did not throw, expected " + expected.description)
        } catch {
            expect(error == expected, what() + ": threw " + error.description + ", expected " + expected.description)
        }
    }

    /// The body must not throw.
    public mutating func expectNoThrow<T>(_ what: @autoclosure () -> String, _ body: () throws(LichenError) -> T) -> T? {
        do {
            let value = try body()
            expect(true, "")
            return value
        } catch {
            expect(false, what() + ": threw " + error.description)
            return nil
        }
    }
}

/// A float as text with six significant digits (the core's `floatText`).
public func show(_ x: Float) -> String { floatText(x) }

/// SplitMix64: a small seeded generator, the same sequence on every platform.
public struct SplitMix64 {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Float {
        Float(next() >> 40) * (1.0 / Float(1 << 24))
    }

    /// Uniform in [lower, upper).
    public mutating func nextFloat(_ lower: Float, _ upper: Float) -> Float {
        lower + (upper - lower) * nextUnit()
    }

    /// Uniform integer in lower...upper.
    public mutating func nextInt(_ lower: Int, _ upper: Int) -> Int {
        lower + Int(next() % UInt64(upper - lower + 1))
    }
}
