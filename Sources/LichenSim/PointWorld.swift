import Foundation
import Lichen

/// A seeded 2-D point robot among hazard discs (research/methods.md §1.6): host tooling for
/// PSEC's skills, never linked into the core.
///
/// State (`observation`, 6 + 2·K values): position (2), velocity (2), goal offset (goal −
/// position, 2), and the offsets (centre − position) of the K nearest hazard discs, nearest
/// first (K = `sensedHazards`; missing hazards read as (0, 0)). Action: a point in [−1, 1]²,
/// clipped, scaled to an acceleration. Fixed dt. Per step: reward = progress towards the
/// goal (distance before − after) plus `goalBonus` on arrival; cost = 1 when the robot ends the
/// step inside any hazard disc. The episode ends on arrival or after `maximumSteps`.
public struct PointWorldConfiguration: Equatable, Sendable {
    public var halfSize: Double = 5
    public var dt: Double = 0.1
    public var acceleration: Double = 4
    public var damping: Double = 0.5
    public var maximumSpeed: Double = 2
    public var goalRadius: Double = 0.3
    public var goalBonus: Double = 1
    public var hazardCount: Int = 3
    public var hazardRadius: ClosedRange<Double> = 0.5...1.0
    public var sensedHazards: Int = 2
    public var maximumSteps: Int = 200

    public init() {}

    /// Values per observation.
    public var observationCount: Int { 6 + 2 * sensedHazards }
}

/// A disc the robot should keep out of.
public struct Hazard: Equatable, Sendable {
    public var x: Double, y: Double, radius: Double
    public init(x: Double, y: Double, radius: Double) { self.x = x; self.y = y; self.radius = radius }
}

/// One episode's world and the robot in it.
public struct PointWorld: Sendable {
    public let configuration: PointWorldConfiguration
    public private(set) var x: Double, y: Double, vx: Double = 0, vy: Double = 0
    public let goalX: Double, goalY: Double
    public let hazards: [Hazard]
    public private(set) var steps = 0
    public private(set) var reachedGoal = false

    /// A world with start, goal and hazards drawn from `random`: start and goal at least 4 apart,
    /// hazards placed so that neither start nor goal lies inside one.
    public init(configuration: PointWorldConfiguration, random: inout SimRandom) {
        self.configuration = configuration
        let h = configuration.halfSize - 0.5
        var sx = 0.0, sy = 0.0, gx = 0.0, gy = 0.0
        repeat {
            sx = random.uniform(-h, h); sy = random.uniform(-h, h)
            gx = random.uniform(-h, h); gy = random.uniform(-h, h)
        } while (sx - gx) * (sx - gx) + (sy - gy) * (sy - gy) < 16
        var hz: [Hazard] = []
        var attempts = 0
        while hz.count < configuration.hazardCount && attempts < 1000 {
            attempts += 1
            // Hazards tend to lie between start and goal, where they matter.
            let t = random.uniform(0.2, 0.8)
            let cx = sx + t * (gx - sx) + random.uniform(-1.5, 1.5), cy = sy + t * (gy - sy) + random.uniform(-1.5, 1.5)
            let r = random.uniform(configuration.hazardRadius.lowerBound, configuration.hazardRadius.upperBound)
            let clearStart = (cx - sx) * (cx - sx) + (cy - sy) * (cy - sy) > (r + 0.5) * (r + 0.5)
            let clearGoal = (cx - gx) * (cx - gx) + (cy - gy) * (cy - gy) > (r + configuration.goalRadius + 0.3) * (r + configuration.goalRadius + 0.3)
            if clearStart && clearGoal { hz.append(Hazard(x: cx, y: cy, radius: r)) }
        }
        x = sx; y = sy; goalX = gx; goalY = gy
        hazards = hz
    }

    /// A world with everything given (for tests and replays).
    public init(configuration: PointWorldConfiguration, x: Double, y: Double, goalX: Double, goalY: Double, hazards: [Hazard]) {
        self.configuration = configuration
        self.x = x; self.y = y; self.goalX = goalX; self.goalY = goalY
        self.hazards = hazards
    }

    public var isDone: Bool { reachedGoal || steps >= configuration.maximumSteps }

    public var goalDistance: Double { ((goalX - x) * (goalX - x) + (goalY - y) * (goalY - y)).squareRoot() }

    /// Whether (px, py) lies inside a hazard disc.
    public func insideHazard(_ px: Double, _ py: Double) -> Bool {
        hazards.contains { (px - $0.x) * (px - $0.x) + (py - $0.y) * (py - $0.y) < $0.radius * $0.radius }
    }

    /// The observation (see the type), as Float.
    public var observation: [Float] {
        var o: [Float] = [Float(x), Float(y), Float(vx), Float(vy), Float(goalX - x), Float(goalY - y)]
        let sorted = hazards.sorted {
            ($0.x - x) * ($0.x - x) + ($0.y - y) * ($0.y - y) < ($1.x - x) * ($1.x - x) + ($1.y - y) * ($1.y - y)
        }
        for k in 0..<configuration.sensedHazards {
            if k < sorted.count { o += [Float(sorted[k].x - x), Float(sorted[k].y - y)] } else { o += [0, 0] }
        }
        return o
    }

    /// Applies `action` (clipped to [−1, 1]²) for one dt: v ← (1 − damping·dt) v + acceleration·a·dt,
    /// speed capped at `maximumSpeed`, position += v dt, clamped to the square. Returns (reward, cost).
    public mutating func step(_ ax: Double, _ ay: Double) -> (reward: Double, cost: Double) {
        let c = configuration
        let before = goalDistance
        let a = (min(1, max(-1, ax)), min(1, max(-1, ay)))
        vx = (1 - c.damping * c.dt) * vx + c.acceleration * a.0 * c.dt
        vy = (1 - c.damping * c.dt) * vy + c.acceleration * a.1 * c.dt
        let speed = (vx * vx + vy * vy).squareRoot()
        if speed > c.maximumSpeed { vx *= c.maximumSpeed / speed; vy *= c.maximumSpeed / speed }
        x = min(c.halfSize, max(-c.halfSize, x + vx * c.dt))
        y = min(c.halfSize, max(-c.halfSize, y + vy * c.dt))
        steps += 1
        var reward = before - goalDistance
        if goalDistance < c.goalRadius {
            reachedGoal = true
            reward += c.goalBonus
        }
        return (reward, insideHazard(x, y) ? 1 : 0)
    }
}

/// SplitMix64 with uniform and normal draws (Box–Muller), the same sequence on every platform.
public struct SimRandom: Sendable {
    /// The core's SplitMix64 (`SplitMix64Random`): the same sequence as the runtime's seeded draws.
    private var generator: SplitMix64Random
    public var state: UInt64 { generator.state }
    public init(seed: UInt64) { generator = SplitMix64Random(seed: seed) }

    public mutating func next() -> UInt64 { generator.next() }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) * (1.0 / Double(1 << 53)) }

    public mutating func uniform(_ lower: Double, _ upper: Double) -> Double { lower + (upper - lower) * unit() }

    /// Standard normal.
    public mutating func normal() -> Double {
        let u1 = max(unit(), 1e-300), u2 = unit()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}
