import Foundation

/// A point or direction on the floor plan, in metres.
public struct Vec2: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public init(_ x: Double, _ y: Double) { self.x = x; self.y = y }
    static func + (a: Vec2, b: Vec2) -> Vec2 { Vec2(a.x + b.x, a.y + b.y) }
    static func - (a: Vec2, b: Vec2) -> Vec2 { Vec2(a.x - b.x, a.y - b.y) }
    static func * (a: Vec2, s: Double) -> Vec2 { Vec2(a.x * s, a.y * s) }
    func dot(_ b: Vec2) -> Double { x * b.x + y * b.y }
    func cross(_ b: Vec2) -> Double { x * b.y - y * b.x }
    var length: Double { (x * x + y * y).squareRoot() }
    static func heading(_ angle: Double) -> Vec2 { Vec2(cos(angle), sin(angle)) }
}

/// One vertical surface of the room: a wall or box face (a segment) or a cylinder (a circle),
/// floor to ceiling, with its texture. `uOffset` continues a box's texture around its faces.
public struct Surface: Sendable {
    public enum Geometry: Sendable {
        case segment(Vec2, Vec2)
        case circle(Vec2, Double)
    }
    public var geometry: Geometry
    public var texture: SurfaceTexture
    /// Index of the obstacle it belongs to, or -1 for a wall.
    public var obstacle: Int
    public var uOffset: Double
}

/// The obstacles of a room, as drawn in the plot.
public enum Obstacle: Sendable {
    case box(min: Vec2, max: Vec2)
    case cylinder(centre: Vec2, radius: Double)
}

/// Where a ray first meets the room.
public struct RayHit: Sendable {
    /// Distance along the ray (metres).
    public var distance: Double
    public var surface: Int
    /// Texture coordinate along the surface (metres).
    public var u: Double
}

/// A `size` × `size` m room (walls at 0 and `size`) with box and cylinder obstacles, built
/// deterministically from a seed.
public struct Room: Sendable {
    public static let size = 5.0
    public static let height = 2.5
    public var surfaces: [Surface] = []
    public var obstacles: [Obstacle] = []
    public var floor: SurfaceTexture
    public var seed: UInt64

    /// An empty room with textured walls (for checks and as the base of `generate`).
    public init(seed: UInt64) {
        self.seed = seed
        var r = SimRandom(seed: seed ^ 0x5EED_0F_0000)
        floor = SurfaceTexture(base: 90, amplitude: 25, frequency: 3, twoDimensional: true, seed: r.next())
        let s = Room.size
        let corners = [Vec2(0, 0), Vec2(s, 0), Vec2(s, s), Vec2(0, s)]
        for i in 0..<4 {
            let t = SurfaceTexture(base: r.uniform(120, 170), amplitude: r.uniform(35, 60), frequency: r.uniform(2, 5),
                                   twoDimensional: r.unit() < 0.5, seed: r.next())
            surfaces.append(Surface(geometry: .segment(corners[i], corners[(i + 1) % 4]), texture: t, obstacle: -1, uOffset: 0))
        }
    }

    /// A room with 3–6 obstacles (boxes and cylinders, 0.3–0.9 m across, at least 0.6 m from each
    /// other and from the walls, none within 0.8 m of `keepClear`). One in five obstacles is
    /// textureless.
    public static func generate(seed: UInt64, keepClear: Vec2) -> Room {
        var room = Room(seed: seed)
        var r = SimRandom(seed: seed ^ 0x0B57_AC1E)
        let count = r.int(3, 6)
        var placed: [(Vec2, Double)] = []
        var attempts = 0
        while room.obstacles.count < count && attempts < 1000 {
            attempts += 1
            let half = r.uniform(0.15, 0.45)
            let c = Vec2(r.uniform(0.6 + half, Room.size - 0.6 - half), r.uniform(0.6 + half, Room.size - 0.6 - half))
            if (c - keepClear).length < 0.8 + half * 1.5 { continue }
            if placed.contains(where: { ($0.0 - c).length < $0.1 + half * 1.5 + 0.6 }) { continue }
            placed.append((c, half * 1.5))
            let textureless = r.unit() < 0.2
            let t = SurfaceTexture(base: r.uniform(60, 200), amplitude: textureless ? 0 : r.uniform(40, 70),
                                   frequency: r.uniform(3, 8), twoDimensional: r.unit() < 0.5, seed: r.next())
            room.add(r.unit() < 0.5 ? .box(min: Vec2(c.x - half, c.y - half), max: Vec2(c.x + half, c.y + half))
                                    : .cylinder(centre: c, radius: half), texture: t)
        }
        return room
    }

    /// Adds an obstacle with one texture for all its faces.
    public mutating func add(_ obstacle: Obstacle, texture: SurfaceTexture) {
        let index = obstacles.count
        obstacles.append(obstacle)
        switch obstacle {
        case .cylinder(let c, let radius):
            surfaces.append(Surface(geometry: .circle(c, radius), texture: texture, obstacle: index, uOffset: 0))
        case .box(let lo, let hi):
            let corners = [lo, Vec2(hi.x, lo.y), hi, Vec2(lo.x, hi.y)]
            var u = 0.0
            for i in 0..<4 {
                let a = corners[i], b = corners[(i + 1) % 4]
                surfaces.append(Surface(geometry: .segment(a, b), texture: texture, obstacle: index, uOffset: u))
                u += (b - a).length
            }
        }
    }

    /// The first surface a ray from `origin` along unit `direction` meets, or nil.
    public func cast(from origin: Vec2, direction: Vec2) -> RayHit? {
        var best: RayHit? = nil
        for (index, s) in surfaces.enumerated() {
            switch s.geometry {
            case .segment(let a, let b):
                let e = b - a
                let denom = direction.cross(e)
                if abs(denom) < 1e-12 { continue }
                let w = a - origin
                let t = w.cross(e) / denom
                let sParam = w.cross(direction) / denom
                if t > 1e-9 && sParam >= 0 && sParam <= 1 && t < (best?.distance ?? .infinity) {
                    best = RayHit(distance: t, surface: index, u: s.uOffset + sParam * e.length)
                }
            case .circle(let c, let radius):
                let m = origin - c
                let b = m.dot(direction), cc = m.dot(m) - radius * radius
                let disc = b * b - cc
                if disc < 0 { continue }
                let root = disc.squareRoot()
                var t = -b - root
                if t <= 1e-9 { t = -b + root }
                if t > 1e-9 && t < (best?.distance ?? .infinity) {
                    let p = origin + direction * t - c
                    best = RayHit(distance: t, surface: index, u: (atan2(p.y, p.x) + Double.pi) * radius)
                }
            }
        }
        return best
    }

    /// The distance from `point` to the nearest surface.
    public func clearance(_ point: Vec2) -> Double {
        var d = Double.infinity
        for s in surfaces {
            switch s.geometry {
            case .segment(let a, let b):
                let e = b - a
                let t = max(0, min(1, (point - a).dot(e) / e.dot(e)))
                d = min(d, (point - (a + e * t)).length)
            case .circle(let c, let radius):
                d = min(d, abs((point - c).length - radius))
            }
        }
        return d
    }

    /// Whether `point` lies inside an obstacle or outside the room.
    public func isInside(_ point: Vec2) -> Bool {
        if point.x <= 0 || point.y <= 0 || point.x >= Room.size || point.y >= Room.size { return true }
        for o in obstacles {
            switch o {
            case .box(let lo, let hi): if point.x > lo.x && point.x < hi.x && point.y > lo.y && point.y < hi.y { return true }
            case .cylinder(let c, let radius): if (point - c).length < radius { return true }
            }
        }
        return false
    }
}
