/// Two stacked time panels as plain SVG text, sharing an x axis (epochs): the upper one in
/// percent (accuracy series drawn as lines with a dot per point), the lower one a free scale
/// (the learning rate η), with event times drawn as short red ticks under both panels and faint
/// lines through them. Every point is a `<circle class="point">` carrying `data-series`, `data-x`
/// and `data-value`; every η line a `<polyline class="trace">` with `data-series`; every event a
/// `<line class="event">` with `data-x`, so the picture can be checked against the data.
struct TimeSeriesPlot {
    var title: String
    var xLabel: String
    var upperLabel: String
    var lowerLabel: String
    /// (name, (x, value in percent) points).
    var upper: [(name: String, points: [(Double, Double)])]
    /// (name, (x, value) points).
    var lower: [(name: String, points: [(Double, Double)])]
    /// Event times (x).
    var events: [Double]
    var xMax: Double

    static let palette = GroupedBarChart.palette

    func svg() -> String {
        let left = 80.0, right = 24.0, top = 40.0, panel = 220.0, gap = 50.0, bottom = 60.0
        let plotWidth = 760.0
        let legendRows = Double(upper.count + lower.count)
        let width = left + plotWidth + right
        let height = top + 2 * panel + gap + bottom + 18 * (legendRows + 1) + 8
        let upperTop = top, lowerTop = top + panel + gap
        func x(_ v: Double) -> Double { left + plotWidth * min(max(v / max(xMax, 1e-12), 0), 1) }
        let upperValues = upper.flatMap { $0.points.map(\.1) }.filter(\.isFinite)
        let uMin = max(0, ((upperValues.min() ?? 0) / 10).rounded(.down) * 10)
        let uMax = min(100, max(uMin + 10, ((upperValues.max() ?? 100) / 10).rounded(.up) * 10))
        func yu(_ v: Double) -> Double { upperTop + panel * (1 - (min(max(v, uMin), uMax) - uMin) / (uMax - uMin)) }
        let lowerValues = lower.flatMap { $0.points.map(\.1) }.filter(\.isFinite)
        let lMin = 0.0
        let lMax = max(lowerValues.max() ?? 1, 1e-12) * 1.05
        func yl(_ v: Double) -> Double { lowerTop + panel * (1 - (min(max(v, lMin), lMax) - lMin) / (lMax - lMin)) }
        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" \
            viewBox="0 0 \(n(width)) \(n(height))" font-family="sans-serif" font-size="11">
            <title>\(escape(title))</title>
            <rect x="0" y="0" width="\(n(width))" height="\(n(height))" fill="white"/>
            <text x="\(n(width / 2))" y="20" text-anchor="middle" font-size="13">\(escape(title))</text>

            """
        // Events: faint lines through both panels, red ticks under each.
        for t in events {
            let ex = x(t)
            out += "<line class=\"event\" data-x=\"\(fixed(t, 4))\" x1=\"\(n(ex))\" y1=\"\(n(upperTop))\" x2=\"\(n(ex))\" "
                + "y2=\"\(n(lowerTop + panel))\" stroke=\"#e15759\" stroke-opacity=\"0.15\"/>\n"
            for base in [upperTop + panel, lowerTop + panel] {
                out += "<line x1=\"\(n(ex))\" y1=\"\(n(base))\" x2=\"\(n(ex))\" y2=\"\(n(base + 6))\" stroke=\"#e15759\"/>\n"
            }
        }
        // Grids and ticks.
        var tick = uMin
        while tick <= uMax + 1e-9 {
            out += "<line class=\"grid\" x1=\"\(n(left))\" y1=\"\(n(yu(tick)))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(yu(tick)))\" stroke=\"#dddddd\"/>\n"
            out += "<text class=\"tick\" x=\"\(n(left - 6))\" y=\"\(n(yu(tick) + 4))\" text-anchor=\"end\">\(Int(tick))</text>\n"
            tick += uMax - uMin > 40 ? 20 : 10
        }
        for k in 0...4 {
            let v = lMin + (lMax - lMin) * Double(k) / 4
            out += "<line class=\"grid\" x1=\"\(n(left))\" y1=\"\(n(yl(v)))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(yl(v)))\" stroke=\"#dddddd\"/>\n"
            out += "<text class=\"tick\" x=\"\(n(left - 6))\" y=\"\(n(yl(v) + 4))\" text-anchor=\"end\">\(scientific(v))</text>\n"
        }
        let xStep = max(1.0, (xMax / 10).rounded(.up))
        var xt = 0.0
        while xt <= xMax + 1e-9 {
            for base in [upperTop + panel, lowerTop + panel] {
                out += "<text class=\"tick\" x=\"\(n(x(xt)))\" y=\"\(n(base + 18))\" text-anchor=\"middle\">\(Int(xt))</text>\n"
            }
            xt += xStep
        }
        // Axes.
        for (ptop, label) in [(upperTop, upperLabel), (lowerTop, lowerLabel)] {
            out += "<line class=\"axis\" x1=\"\(n(left))\" y1=\"\(n(ptop))\" x2=\"\(n(left))\" y2=\"\(n(ptop + panel))\" stroke=\"black\"/>\n"
            out += "<line class=\"axis\" x1=\"\(n(left))\" y1=\"\(n(ptop + panel))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(ptop + panel))\" stroke=\"black\"/>\n"
            out += "<text class=\"axis-label\" x=\"18\" y=\"\(n(ptop + panel / 2))\" text-anchor=\"middle\" "
                + "transform=\"rotate(-90 18 \(n(ptop + panel / 2)))\">\(escape(label))</text>\n"
        }
        out += "<text class=\"axis-label\" x=\"\(n(left + plotWidth / 2))\" y=\"\(n(lowerTop + panel + 36))\" "
            + "text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        // Series.
        for (s, entry) in upper.enumerated() {
            let color = Self.palette[s % Self.palette.count]
            let pts = entry.points.filter { $0.1.isFinite }
            out += "<polyline class=\"line\" data-series=\"\(escape(entry.name))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\""
                + pts.map { "\(n(x($0.0))),\(n(yu($0.1)))" }.joined(separator: " ") + "\"/>\n"
            for p in pts {
                out += "<circle class=\"point\" data-series=\"\(escape(entry.name))\" data-x=\"\(fixed(p.0, 4))\" "
                    + "data-value=\"\(fixed(p.1, 2))\" cx=\"\(n(x(p.0)))\" cy=\"\(n(yu(p.1)))\" r=\"2.5\" fill=\"\(color)\"/>\n"
            }
        }
        for (s, entry) in lower.enumerated() {
            let color = lowerColor(s)
            let pts = entry.points.filter { $0.1.isFinite }
            out += "<polyline class=\"trace\" data-series=\"\(escape(entry.name))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1\" points=\""
                + pts.map { "\(n(x($0.0))),\(n(yl($0.1)))" }.joined(separator: " ") + "\"/>\n"
        }
        // Legend.
        let names = upper.map(\.name) + lower.map(\.name)
        for (s, name) in names.enumerated() {
            let ly = lowerTop + panel + bottom + 18 * Double(s) - 8
            let color = s < upper.count ? Self.palette[s % Self.palette.count] : lowerColor(s - upper.count)
            out += "<g class=\"legend\"><rect x=\"\(n(left))\" y=\"\(n(ly))\" width=\"12\" height=\"12\" "
                + "fill=\"\(color)\"/><text x=\"\(n(left + 18))\" y=\"\(n(ly + 10))\">"
                + "\(escape(name))</text></g>\n"
        }
        if !events.isEmpty {
            let ly = lowerTop + panel + bottom + 18 * legendRows - 8
            out += "<g class=\"legend\"><line x1=\"\(n(left))\" y1=\"\(n(ly + 6))\" x2=\"\(n(left + 12))\" y2=\"\(n(ly + 6))\" stroke=\"#e15759\"/>"
                + "<text x=\"\(n(left + 18))\" y=\"\(n(ly + 10))\">label swap (\(events.count))</text></g>\n"
        }
        out += "</svg>\n"
        return out
    }

    private func n(_ x: Double) -> String { fixed(x, 1) }

    /// Colours of the lower panel's series: the palette after the upper ones, skipping its red
    /// (the events' colour).
    private func lowerColor(_ s: Int) -> String {
        let choices = Self.palette.filter { $0 != "#e15759" }
        return choices[(upper.count + s) % choices.count]
    }

    private func scientific(_ v: Double) -> String {
        if v == 0 { return "0" }
        var e = 0
        var m = v
        while abs(m) >= 10 { m /= 10; e += 1 }
        while abs(m) < 1 { m *= 10; e -= 1 }
        return fixed(m, 2) + "e" + String(e)
    }

    private func escape(_ s: String) -> String { svgEscape(s) }
}
