/// The one way Lichen and its tools convert a number that came from outside — a file, a
/// socket frame, a config, a command-line flag — to a narrower type. Swift's `Int(_:)`,
/// `Int32(_:)`, `UInt32(_:)` trap on a value that does not fit (and on NaN); these throw
/// `LichenError.outOfRange(name:value:allowed:)` naming the number, its value and what is
/// allowed instead, so no input can crash the process.
///
/// - Note: Allocates only the error's text when it throws.
public enum Checked {
    /// `x` as a `T` inside `range`. Without `rounding`, `x` must be a whole number; with it,
    /// `x` is rounded first (`.up`, `.toNearestOrEven`, ...).
    ///
    /// - Throws: `.outOfRange` for NaN, an infinity, a fraction (without `rounding`), or a
    ///   value outside `range` (or outside `T`).
    public static func integer<T: FixedWidthInteger>(
        _ x: Double, as type: T.Type = T.self, name: String, in range: ClosedRange<T>,
        rounding: FloatingPointRoundingRule? = nil
    ) throws(LichenError) -> T {
        let allowed = "an integer in " + String(range.lowerBound) + "..." + String(range.upperBound)
        guard x.isFinite else { throw .outOfRange(name: name, value: doubleText(x), allowed: allowed) }
        let r = rounding.map { x.rounded($0) } ?? x
        // `T(exactly:)` is nil for a fraction and for anything outside T: it never traps.
        guard let v = T(exactly: r), range.contains(v) else {
            throw .outOfRange(name: name, value: doubleText(x), allowed: allowed)
        }
        return v
    }

    /// `x` as a `T` inside `range` (Float input; see the Double form).
    public static func integer<T: FixedWidthInteger>(
        _ x: Float, as type: T.Type = T.self, name: String, in range: ClosedRange<T>,
        rounding: FloatingPointRoundingRule? = nil
    ) throws(LichenError) -> T {
        try integer(Double(x), as: type, name: name, in: range, rounding: rounding)
    }

    /// `x` (any integer type) as a `T` inside `range`.
    /// - Throws: `.outOfRange` when `x` does not fit `T` or lies outside `range`.
    public static func integer<T: FixedWidthInteger, S: BinaryInteger>(
        _ x: S, as type: T.Type = T.self, name: String, in range: ClosedRange<T>
    ) throws(LichenError) -> T {
        guard let v = T(exactly: x), range.contains(v) else {
            throw .outOfRange(name: name, value: String(x),
                              allowed: "an integer in " + String(range.lowerBound) + "..." + String(range.upperBound))
        }
        return v
    }

    /// `x` if it is finite and inside `range`.
    /// - Throws: `.outOfRange` naming the range (`allowed` overrides its text).
    public static func finite(_ x: Float, name: String, in range: ClosedRange<Float>, allowed: String? = nil) throws(LichenError) -> Float {
        guard x.isFinite, range.contains(x) else {
            throw .outOfRange(name: name, value: floatText(x),
                              allowed: allowed ?? (numberText(Double(range.lowerBound)) + "..." + numberText(Double(range.upperBound))))
        }
        return x
    }

    /// `x` if it is finite and inside `range` (Double).
    public static func finite(_ x: Double, name: String, in range: ClosedRange<Double>, allowed: String? = nil) throws(LichenError) -> Double {
        guard x.isFinite, range.contains(x) else {
            throw .outOfRange(name: name, value: doubleText(x),
                              allowed: allowed ?? (numberText(range.lowerBound) + "..." + numberText(range.upperBound)))
        }
        return x
    }
}

/// A whole number below 2^53 as digits ("65536"), anything else as `doubleText`.
func numberText(_ x: Double) -> String {
    if x.isFinite && x == x.rounded() && x.magnitude < 9.0e15, let i = Int(exactly: x) { return String(i) }
    return doubleText(x)
}
