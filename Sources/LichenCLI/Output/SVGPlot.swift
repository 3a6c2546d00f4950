/// A grouped bar chart as plain SVG text: one group of bars per category (a domain), one bar
/// per series (a method) in each group, a y axis in percent with grid lines, axis labels and
/// a legend. Every bar is a `<rect class="bar">` carrying `data-series`, `data-category` and
/// `data-value` (the value in percent, as drawn), so the picture can be checked against the data.
struct GroupedBarChart {
    var title: String
    var xLabel: String
    var yLabel: String
    var categories: [String]
    /// (name, one value per category, in percent).
    var series: [(name: String, values: [Double])]

    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    /// The document.
    func svg() -> String {
        let groupWidth = max(24.0, Double(series.count) * 10 + 8)
        let left = 64.0, right = 16.0, top = 40.0, bottom = 110.0
        let legendHeight = 18.0 * Double(series.count) + 8
        let plotWidth = groupWidth * Double(categories.count)
        let plotHeight = 260.0
        let width = left + plotWidth + right
        let height = top + plotHeight + bottom + legendHeight
        let top100 = max(100.0, (series.flatMap(\.values).filter(\.isFinite).max() ?? 0).rounded(.up))
        func y(_ v: Double) -> Double { top + plotHeight * (1 - min(max(v, 0), top100) / top100) }
        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" \
            viewBox="0 0 \(n(width)) \(n(height))" font-family="sans-serif" font-size="11">
            <title>\(escape(title))</title>
            <rect x="0" y="0" width="\(n(width))" height="\(n(height))" fill="white"/>
            <text x="\(n(width / 2))" y="20" text-anchor="middle" font-size="13">\(escape(title))</text>

            """
        var tick = 0.0
        while tick <= top100 + 1e-9 {
            out += "<line class=\"grid\" x1=\"\(n(left))\" y1=\"\(n(y(tick)))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(y(tick)))\" stroke=\"#dddddd\"/>\n"
            out += "<text class=\"tick\" x=\"\(n(left - 6))\" y=\"\(n(y(tick) + 4))\" text-anchor=\"end\">\(Int(tick))</text>\n"
            tick += 20
        }
        for (c, category) in categories.enumerated() {
            let x0 = left + Double(c) * groupWidth + 4
            for (s, entry) in series.enumerated() {
                let v = c < entry.values.count ? entry.values[c] : .nan
                guard v.isFinite else { continue }
                let color = Self.palette[s % Self.palette.count]
                out += "<rect class=\"bar\" data-series=\"\(escape(entry.name))\" data-category=\"\(escape(category))\" "
                    + "data-value=\"\(fixed(v, 2))\" x=\"\(n(x0 + Double(s) * 10))\" y=\"\(n(y(v)))\" width=\"9\" "
                    + "height=\"\(n(top + plotHeight - y(v)))\" fill=\"\(color)\"/>\n"
            }
            let cx = left + Double(c) * groupWidth + groupWidth / 2
            let ly = top + plotHeight + 10
            out += "<text class=\"category\" x=\"\(n(cx))\" y=\"\(n(ly))\" text-anchor=\"end\" "
                + "transform=\"rotate(-45 \(n(cx)) \(n(ly)))\">\(escape(category))</text>\n"
        }
        out += "<line class=\"axis\" x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(top + plotHeight))\" stroke=\"black\"/>\n"
        out += "<line class=\"axis\" x1=\"\(n(left))\" y1=\"\(n(top + plotHeight))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(top + plotHeight))\" stroke=\"black\"/>\n"
        out += "<text class=\"axis-label\" x=\"16\" y=\"\(n(top + plotHeight / 2))\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 16 \(n(top + plotHeight / 2)))\">\(escape(yLabel))</text>\n"
        out += "<text class=\"axis-label\" x=\"\(n(left + plotWidth / 2))\" y=\"\(n(top + plotHeight + bottom - 10))\" "
            + "text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        for (s, entry) in series.enumerated() {
            let ly = top + plotHeight + bottom + 18 * Double(s) + 4
            out += "<g class=\"legend\"><rect x=\"\(n(left))\" y=\"\(n(ly))\" width=\"12\" height=\"12\" "
                + "fill=\"\(Self.palette[s % Self.palette.count])\"/><text x=\"\(n(left + 18))\" y=\"\(n(ly + 10))\">"
                + "\(escape(entry.name))</text></g>\n"
        }
        out += "</svg>\n"
        return out
    }

    private func n(_ x: Double) -> String { fixed(x, 1) }

    private func escape(_ s: String) -> String { svgEscape(s) }
}

/// `s` with the characters XML gives meaning to (&, <, >, ") as entities, for SVG text and attributes.
func svgEscape(_ s: String) -> String {
    var out = ""
    for ch in s {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(ch)
        }
    }
    return out
}
