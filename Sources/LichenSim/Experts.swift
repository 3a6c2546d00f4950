import Foundation

/// Scripted experts for the point world, one per skill (research/methods.md §1.6), each with
/// Gaussian action noise of standard deviation `noise` (clipped to [−1, 1] afterwards).
public enum Expert: String, CaseIterable, Sendable {
    /// Reach the goal: a PD law on the goal offset.
    case reach
    /// Keep clear of hazards: push away from every disc within a margin of its edge, brake otherwise.
    case avoid
    /// Hold a heading: drive at `cruiseSpeed` along a fixed direction (per episode, from the seed).
    case heading
    /// Reach the goal while keeping clear of hazards: the new task's demonstrator (reach + avoid,
    /// sliding around discs).
    case reachAvoid = "reach-avoid"

    public static let margin = 0.8
    public static let cruiseSpeed = 1.2

    /// The expert's action in `world`; `heading` is the direction (radians) for `.heading`.
    public func action(_ w: PointWorld, heading: Double, noise: Double, random: inout SimRandom) -> (Double, Double) {
        var ax = 0.0, ay = 0.0
        func reachTerm() -> (Double, Double) { (1.2 * (w.goalX - w.x) - 1.5 * w.vx, 1.2 * (w.goalY - w.y) - 1.5 * w.vy) }
        /// Away from every disc within `margin` of its edge; with `slide`, also along the disc's edge
        /// on the side facing the goal (so reach + avoid goes around a disc instead of stopping).
        func avoidTerm(slide: Bool = false) -> (Double, Double) {
            var px = 0.0, py = 0.0
            for h in w.hazards {
                let dx = w.x - h.x, dy = w.y - h.y
                let d = max((dx * dx + dy * dy).squareRoot(), 1e-6)
                let gap = d - h.radius
                if gap < Expert.margin {
                    let push = 3 * (Expert.margin - gap) / Expert.margin
                    px += push * dx / d
                    py += push * dy / d
                    if slide {
                        var tx = -dy / d, ty = dx / d
                        if tx * (w.goalX - w.x) + ty * (w.goalY - w.y) < 0 { tx = -tx; ty = -ty }
                        px += push * tx
                        py += push * ty
                    }
                }
            }
            return (px, py)
        }
        switch self {
        case .reach:
            (ax, ay) = reachTerm()
        case .avoid:
            let p = avoidTerm()
            ax = p.0 - 1.0 * w.vx
            ay = p.1 - 1.0 * w.vy
        case .heading:
            // P law plus the damping's steady pull, so the speed settles at cruiseSpeed.
            let c = w.configuration, hold = c.damping / c.acceleration
            ax = 2 * (Expert.cruiseSpeed * Foundation.cos(heading) - w.vx) + hold * Expert.cruiseSpeed * Foundation.cos(heading)
            ay = 2 * (Expert.cruiseSpeed * Foundation.sin(heading) - w.vy) + hold * Expert.cruiseSpeed * Foundation.sin(heading)
        case .reachAvoid:
            let r = reachTerm(), p = avoidTerm(slide: true)
            ax = r.0 + 2 * p.0
            ay = r.1 + 2 * p.1
        }
        ax += noise * random.normal()
        ay += noise * random.normal()
        return (min(1, max(-1, ax)), min(1, max(-1, ay)))
    }
}

/// One transition (s, a, r, cost, s', done).
public struct Transition: Equatable, Sendable {
    public var state: [Float]
    public var action: [Float]
    public var reward: Float
    public var cost: Float
    public var next: [Float]
    public var done: Bool
}

/// An episode's path and totals, for datasets, evaluation and plots.
public struct Episode: Sendable {
    public var world: PointWorld
    public var path: [(Double, Double)]
    public var totalReward: Double
    public var totalCost: Double
    public var reached: Bool

    public init(world: PointWorld, path: [(Double, Double)], totalReward: Double, totalCost: Double, reached: Bool) {
        self.world = world
        self.path = path
        self.totalReward = totalReward
        self.totalCost = totalCost
        self.reached = reached
    }
}

public enum PointDatasets {
    /// Runs one episode of `expert` in a world drawn from `random`, recording transitions.
    public static func episode(_ expert: Expert, configuration: PointWorldConfiguration, noise: Double, random: inout SimRandom,
                               into transitions: inout [Transition]) -> Episode {
        var w = PointWorld(configuration: configuration, random: &random)
        let heading = random.uniform(-Double.pi, Double.pi)
        var path = [(w.x, w.y)]
        var reward = 0.0, cost = 0.0
        while !w.isDone {
            let s = w.observation
            let (ax, ay) = expert.action(w, heading: heading, noise: noise, random: &random)
            let (r, c) = w.step(ax, ay)
            reward += r
            cost += c
            path.append((w.x, w.y))
            transitions.append(Transition(state: s, action: [Float(ax), Float(ay)], reward: Float(r), cost: Float(c),
                                          next: w.observation, done: w.isDone))
        }
        return Episode(world: w, path: path, totalReward: reward, totalCost: cost, reached: w.reachedGoal)
    }

    /// At least `count` transitions of `expert` (whole episodes), deterministic from `seed`.
    public static func dataset(_ expert: Expert, count: Int, noise: Double = 0.1, seed: UInt64,
                               configuration: PointWorldConfiguration = PointWorldConfiguration()) -> (transitions: [Transition], episodes: [Episode]) {
        var random = SimRandom(seed: seed)
        var transitions: [Transition] = []
        var episodes: [Episode] = []
        while transitions.count < count {
            episodes.append(episode(expert, configuration: configuration, noise: noise, random: &random, into: &transitions))
        }
        return (transitions, episodes)
    }
}

/// A top-down SVG of episodes: the square, hazard discs (red), goals (green), paths (one colour
/// per episode), start points (black).
public enum PointPlot {
    public static func svg(_ episodes: [Episode], pixels: Int = 480) -> String {
        guard let c = episodes.first?.world.configuration else { return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n" }
        let scale = Double(pixels) / (2 * c.halfSize)
        func px(_ v: Double) -> String { String(format: "%.2f", (v + c.halfSize) * scale) }
        func py(_ v: Double) -> String { String(format: "%.2f", (c.halfSize - v) * scale) }
        let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(pixels)\" height=\"\(pixels)\" viewBox=\"0 0 \(pixels) \(pixels)\">\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(pixels)\" height=\"\(pixels)\" fill=\"white\" stroke=\"black\"/>\n"
        for (i, e) in episodes.enumerated() {
            let w = e.world
            for h in w.hazards {
                out += "<circle class=\"hazard\" cx=\"\(px(h.x))\" cy=\"\(py(h.y))\" r=\"\(String(format: "%.2f", h.radius * scale))\" fill=\"#d62728\" fill-opacity=\"0.25\"/>\n"
            }
            out += "<circle class=\"goal\" cx=\"\(px(w.goalX))\" cy=\"\(py(w.goalY))\" r=\"\(String(format: "%.2f", c.goalRadius * scale))\" fill=\"#2ca02c\"/>\n"
            let points = e.path.map { px($0.0) + "," + py($0.1) }.joined(separator: " ")
            out += "<polyline class=\"path\" points=\"\(points)\" fill=\"none\" stroke=\"\(colours[i % colours.count])\" stroke-width=\"1.5\"/>\n"
            if let s = e.path.first { out += "<circle class=\"start\" cx=\"\(px(s.0))\" cy=\"\(py(s.1))\" r=\"3\" fill=\"black\"/>\n" }
        }
        return out + "</svg>\n"
    }
}
