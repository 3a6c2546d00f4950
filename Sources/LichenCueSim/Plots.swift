import Foundation
import Lichen

/// SVG plots of the simulator: a top-down view of one run and ROC curves.
public enum CuePlots {
    static func n(_ x: Double) -> String { String(format: "%.1f", x) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// The room from above: walls, obstacles (textureless ones hatched grey), the trajectory
    /// coloured by who drove (stereo blue, mono green, training-wheel intervention orange,
    /// nobody red), collisions as black crosses. Needs a run made with `record: true`.
    public static func topDown(_ run: FlightRun, title: String) -> String {
        let scale = 100.0, margin = 40.0, side = Room.size * scale
        func px(_ p: Vec2) -> (Double, Double) { (margin + p.x * scale, margin + (Room.size - p.y) * scale) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(side + 2 * margin + 160))\" height=\"\(n(side + 2 * margin))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(n(margin))\" y=\"24\">\(escape(title))</text>\n"
        s += "<rect x=\"\(n(margin))\" y=\"\(n(margin))\" width=\"\(n(side))\" height=\"\(n(side))\" fill=\"none\" stroke=\"black\" stroke-width=\"3\"/>\n"
        for (i, o) in run.room.obstacles.enumerated() {
            let textureless = run.room.surfaces.first { $0.obstacle == i }?.texture.isTextureless ?? false
            let fill = textureless ? "#cccccc" : "#8d6e63"
            switch o {
            case .box(let lo, let hi):
                let (x, y) = px(Vec2(lo.x, hi.y))
                s += "<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n((hi.x - lo.x) * scale))\" height=\"\(n((hi.y - lo.y) * scale))\" fill=\"\(fill)\"/>\n"
            case .cylinder(let c, let r):
                let (x, y) = px(c)
                s += "<circle cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(n(r * scale))\" fill=\"\(fill)\"/>\n"
            }
        }
        func colour(_ p: TrajectoryPoint) -> String {
            if p.intervention { return "#ff9800" }
            switch p.driver {
            case .trusted: return "#1e88e5"
            case .complementary: return "#43a047"
            case .none: return "#e53935"
            }
        }
        let t = run.trajectory
        var i = 1
        while i < t.count {
            // One polyline per stretch of one colour.
            let c = colour(t[i])
            var points = [px(t[i - 1].position)]
            while i < t.count && colour(t[i]) == c {
                points.append(px(t[i].position))
                i += 1
            }
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.2\" stroke-opacity=\"0.7\" points=\"" + points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ") + "\"/>\n"
        }
        for p in run.collisionPoints {
            let (x, y) = px(p)
            s += "<path d=\"M\(n(x - 5)),\(n(y - 5)) L\(n(x + 5)),\(n(y + 5)) M\(n(x - 5)),\(n(y + 5)) L\(n(x + 5)),\(n(y - 5))\" stroke=\"black\" stroke-width=\"2\"/>\n"
        }
        let legend: [(String, String)] = [("#1e88e5", "stereo drives"), ("#43a047", "mono drives"), ("#ff9800", "training wheels"),
                                          ("#e53935", "no cue (stopped)"), ("#8d6e63", "obstacle"), ("#cccccc", "textureless obstacle")]
        for (k, (c, label)) in legend.enumerated() {
            let y = margin + 10 + Double(k) * 20
            s += "<rect x=\"\(n(side + 2 * margin))\" y=\"\(n(y - 9))\" width=\"12\" height=\"12\" fill=\"\(c)\"/><text x=\"\(n(side + 2 * margin + 18))\" y=\"\(n(y + 1))\">\(label)</text>\n"
        }
        let y = margin + 10 + Double(legend.count) * 20
        s += "<text x=\"\(n(side + 2 * margin))\" y=\"\(n(y + 1))\">x collision (\(run.collisionPoints.count))</text>\n"
        return s + "</svg>\n"
    }

    /// ROC curves (FPR on x, TPR on y), one per named curve, with the diagonal.
    public static func roc(_ curves: [(String, [(Double, Double)])], title: String) -> String {
        let size = 360.0, margin = 50.0
        let colours = ["#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#e53935", "#00897b"]
        func px(_ p: (Double, Double)) -> (Double, Double) { (margin + p.0 * size, margin + (1 - p.1) * size) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(size + 2 * margin + 200))\" height=\"\(n(size + 2 * margin))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(n(margin))\" y=\"24\">\(escape(title))</text>\n"
        s += "<rect x=\"\(n(margin))\" y=\"\(n(margin))\" width=\"\(n(size))\" height=\"\(n(size))\" fill=\"none\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(n(margin))\" y1=\"\(n(margin + size))\" x2=\"\(n(margin + size))\" y2=\"\(n(margin))\" stroke=\"#bbbbbb\" stroke-dasharray=\"4 4\"/>\n"
        s += "<text x=\"\(n(margin + size / 2 - 10))\" y=\"\(n(margin + size + 32))\">FPR</text><text x=\"10\" y=\"\(n(margin + size / 2))\">TPR</text>\n"
        for (k, (name, curve)) in curves.enumerated() {
            let c = colours[k % colours.count]
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.5\" points=\"" + curve.map { let p = px($0); return "\(n(p.0)),\(n(p.1))" }.joined(separator: " ") + "\"/>\n"
            let y = margin + 10 + Double(k) * 20
            let auc = HostROC.area(curve)
            s += "<rect x=\"\(n(size + margin + 20))\" y=\"\(n(y - 9))\" width=\"12\" height=\"12\" fill=\"\(c)\"/><text x=\"\(n(size + margin + 38))\" y=\"\(n(y + 1))\">\(escape(name)) AUC \(auc.isFinite ? String(format: "%.3f", auc) : "n/a")</text>\n"
        }
        return s + "</svg>\n"
    }
}
