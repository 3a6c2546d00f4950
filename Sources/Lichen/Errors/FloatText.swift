/// A float as text with six significant digits ("1.50000e-3", "-inf", "nan"), without
/// Foundation or reflection: Embedded Swift cannot print floats through `description`.
public func floatText(_ x: Float) -> String {
    doubleText(Double(x))
}

/// A double as text with six significant digits, as `floatText` (1e300 is "1.00000e300").
public func doubleText(_ x: Double) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    var v = x
    var s = v < 0 ? "-" : ""
    v = v < 0 ? -v : v
    var exponent = 0
    if v != 0 {
        while v >= 10 { v /= 10; exponent += 1 }
        while v < 1 { v *= 10; exponent -= 1 }
    }
    var digits = Int((v * 100_000).rounded())
    if digits >= 1_000_000 { digits /= 10; exponent += 1 }
    s += String(digits / 100_000) + "."
    let frac = String(digits % 100_000)
    s += String(repeating: "0", count: 5 - frac.count) + frac
    if exponent != 0 { s += "e" + String(exponent) }
    return s
}
