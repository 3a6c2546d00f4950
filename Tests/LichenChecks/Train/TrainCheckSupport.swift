import Lichen

// Double-precision references for the Train checks, independent of CRuntime and of the
// Train sources (Embedded Swift has no libm import, so exp and log are written out here).

let ln2 = 0.693_147_180_559_945_3

/// e^x to about 1e-15 relative: x = k ln 2 + r, |r| <= ln 2 / 2, Taylor series in r.
func refExp(_ x: Double) -> Double {
    if x < -745 { return 0 }
    let k = (x / ln2).rounded()
    let r = x - k * ln2
    var term = 1.0, sum = 1.0
    for n in 1...25 {
        term *= r / Double(n)
        sum += term
    }
    return sum * Double(sign: .plus, exponent: Int(k), significand: 1)
}

/// ln x for x > 0: x = m 2^e, m in [1, 2), ln m = 2 atanh((m − 1)/(m + 1)).
func refLog(_ x: Double) -> Double {
    precondition(x > 0)
    let e = x.exponent
    let m = x.significand
    let s = (m - 1) / (m + 1), s2 = s * s
    var term = s, sum = 0.0
    var n = 1.0
    while n < 80 {
        sum += term / n
        term *= s2
        n += 2
    }
    return Double(e) * ln2 + 2 * sum
}

/// Row-wise log-softmax of `rows × classes` values, max-subtracted.
func refLogSoftmax(_ z: [Double], classes: Int) -> [Double] {
    var out = z
    for b in 0..<(z.count / classes) {
        let row = Array(z[(b * classes)..<(b * classes + classes)])
        let m = row.max() ?? 0
        var s = 0.0
        for v in row { s += refExp(v - m) }
        let l = refLog(s)
        for j in 0..<classes { out[b * classes + j] = row[j] - m - l }
    }
    return out
}

func doubles(_ memory: CheckMemory, _ count: Int) -> [Double] { (0..<count).map { Double(memory.floats[$0]) } }

/// Central differences of `f` at `x` in Double, step `h`.
func centralDifferences(_ x: [Double], h: Double, _ f: ([Double]) -> Double) -> [Double] {
    var g = [Double](repeating: 0, count: x.count)
    for i in 0..<x.count {
        var xp = x, xm = x
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    }
    return g
}

/// A fresh arena for a check (room for jemalloc's metadata plus the check's buffers).
func checkArena(_ c: inout CheckContext) -> Arena? {
    do {
        return try Arena(byteCount: 16 << 20)
    } catch {
        c.fail("arena: " + error.description)
        return nil
    }
}
