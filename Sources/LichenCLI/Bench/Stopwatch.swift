import Glibc

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Times `body`: one warm-up call, then repeats until `minSeconds` have passed and at least
/// `minRepeats` calls were made; returns the median seconds per call and the call count.
func measure(minSeconds: Double, minRepeats: Int = 3, _ body: () -> Void) -> (seconds: Double, repeats: Int) {
    body()
    var samples: [Double] = []
    let start = now()
    while samples.count < minRepeats || now() - start < minSeconds {
        let t0 = now()
        body()
        samples.append(now() - t0)
        if samples.count >= 10_000 { break }
    }
    samples.sort()
    return (samples[samples.count / 2], samples.count)
}

/// Resident set size of this process now and at its peak, in bytes (from /proc/self/status).
func processRSS() -> (current: Int, peak: Int) {
    guard let f = fopen("/proc/self/status", "r") else { return (0, 0) }
    defer { fclose(f) }
    var current = 0, peak = 0
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), f) != nil {
        let text = String(cString: line)
        func kib(_ prefix: String) -> Int? {
            guard text.hasPrefix(prefix) else { return nil }
            let digits = text.dropFirst(prefix.count).filter(\.isNumber)
            return Int(digits).map { $0 * 1024 }
        }
        if let v = kib("VmRSS:") { current = v }
        if let v = kib("VmHWM:") { peak = v }
    }
    return (current, peak)
}

/// Times `a` and `b` alternately (a b a b ...) after one warm-up call each, until both have run
/// `minSeconds` and at least `minRepeats` times; returns each one's median seconds per call.
/// Interleaving puts both under the same machine conditions, so their ratio is fair even when
/// other load comes and goes.
func measureAlternating(minSeconds: Double, minRepeats: Int = 5, _ a: () -> Void, _ b: () -> Void)
    -> (a: Double, b: Double, repeats: Int)
{
    a()
    b()
    var sa: [Double] = [], sb: [Double] = []
    var spentA = 0.0, spentB = 0.0
    while sa.count < minRepeats || spentA < minSeconds || spentB < minSeconds {
        var t0 = now()
        a()
        let da = now() - t0
        t0 = now()
        b()
        let db = now() - t0
        sa.append(da)
        sb.append(db)
        spentA += da
        spentB += db
        if sa.count >= 10_000 { break }
    }
    sa.sort()
    sb.sort()
    return (sa[sa.count / 2], sb[sb.count / 2], sa.count)
}
