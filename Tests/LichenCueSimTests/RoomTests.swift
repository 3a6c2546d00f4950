import Foundation
import Testing
@testable import LichenCueSim

/// The ray caster and clearance against distances worked out by hand.
@Suite("Cue simulator room")
struct RoomTests {
    @Test("empty room: every column's perpendicular depth to the facing wall is the same, ray length is depth / cos(angle)")
    func frontalWall() {
        let room = Room(seed: 1)
        let p = Vec2(1.5, 2.5)
        let hits = Sensors.castColumns(room, position: p, heading: 0)
        for c in 0..<Camera.columns {
            let a = Camera.columnAngle(c)
            let hit = try! #require(hits[c])
            // Wall x = 5, 3.5 m ahead; the widest column is 30° off axis, so the ray stays on that wall.
            #expect(abs(hit.distance - 3.5 / cos(a)) < 1e-9, "column \(c)")
            #expect(abs(hit.distance * cos(a) - 3.5) < 1e-9)
            #expect(abs(hit.u - (2.5 + 3.5 * tan(a))) < 1e-9, "texture coordinate along the wall, column \(c)")
        }
    }

    @Test("a cylinder ahead: distance p·cos a − sqrt(r² − (p·sin a)²) for rays that meet it, the wall behind for those that miss")
    func cylinder() {
        var room = Room(seed: 2)
        let texture = SurfaceTexture(base: 100, amplitude: 50, frequency: 4, twoDimensional: false, seed: 3)
        room.add(.cylinder(centre: Vec2(3.5, 2.5), radius: 0.4), texture: texture)
        let p = Vec2(1.0, 2.5), centreDistance = 2.5, r = 0.4
        var met = 0, missed = 0
        for c in 0..<Camera.columns {
            let a = Camera.columnAngle(c)
            let hit = try! #require(room.cast(from: p, direction: .heading(a)))
            let off = centreDistance * sin(a)
            if abs(off) < r {
                #expect(abs(hit.distance - (centreDistance * cos(a) - (r * r - off * off).squareRoot())) < 1e-9, "column \(c)")
                #expect(room.surfaces[hit.surface].obstacle == 0)
                met += 1
            } else {
                #expect(abs(hit.distance - 4.0 / cos(a)) < 1e-9, "column \(c) passes the cylinder")
                missed += 1
            }
        }
        #expect(met > 0 && missed > 0)
    }

    @Test("a box: the near face at depth 1, rays past its corners reach the wall; clearance and inside by hand")
    func box() {
        var room = Room(seed: 4)
        let texture = SurfaceTexture(base: 100, amplitude: 50, frequency: 4, twoDimensional: true, seed: 5)
        room.add(.box(min: Vec2(3.0, 2.0), max: Vec2(3.6, 3.0)), texture: texture)
        let p = Vec2(2.0, 2.5)
        for c in 0..<Camera.columns {
            let a = Camera.columnAngle(c)
            let hit = try! #require(room.cast(from: p, direction: .heading(a)))
            let y = 2.5 + tan(a)  // where the ray crosses x = 3
            if y > 2.0 && y < 3.0 {
                #expect(abs(hit.distance - 1.0 / cos(a)) < 1e-9, "column \(c) meets the near face")
                #expect(abs(hit.u - (2.2 + 3.0 - y)) < 1e-9, "the near face is the 4th edge: u = 0.6 + 1.0 + 0.6 before it, then from its top")
            } else if abs(y - 2.0) > 1e-6 && abs(y - 3.0) > 1e-6 {
                #expect(abs(hit.distance - 3.0 / cos(a)) < 1e-9, "column \(c) passes the box")
            }
        }
        #expect(abs(room.clearance(Vec2(2.0, 2.5)) - 1.0) < 1e-12)
        #expect(abs(room.clearance(Vec2(2.7, 1.7)) - (0.3 * 0.3 * 2).squareRoot()) < 1e-12, "to the corner (3, 2)")
        #expect(abs(room.clearance(Vec2(0.1, 4.0)) - 0.1) < 1e-12, "to the wall x = 0")
        #expect(room.isInside(Vec2(3.3, 2.5)) && !room.isInside(Vec2(2.9, 2.5)) && room.isInside(Vec2(-0.1, 1)))
    }

    @Test("stereo: disparity 16 / depth without noise, invalid on a textureless obstacle, the frame dropped below 10 % valid")
    func stereo() {
        var room = Room(seed: 6)
        var random = SimRandom(seed: 7)
        let frame = Sensors.stereo(room, hits: Sensors.castColumns(room, position: Vec2(3, 2.5), heading: 0), noise: 0, random: &random)
        #expect(frame.frameValid && frame.valid.allSatisfy { $0 })
        #expect(frame.disparity.allSatisfy { abs($0 - 8) < 1e-9 }, "wall 2 m ahead: 8 px everywhere")
        #expect(abs(frame.target - 8) < 1e-9)
        // A textureless box filling the view 0.5 m ahead: no valid column, frame dropped.
        room.add(.box(min: Vec2(3.5, 0.5), max: Vec2(4.0, 4.5)),
                 texture: SurfaceTexture(base: 100, amplitude: 0, frequency: 4, twoDimensional: false, seed: 8))
        let blind = Sensors.stereo(room, hits: Sensors.castColumns(room, position: Vec2(3, 2.5), heading: 0), noise: 0, random: &random)
        #expect(!blind.frameValid && blind.valid.allSatisfy { !$0 } && blind.target == 0)
        #expect(blind.depth.allSatisfy { abs($0 - 0.5) < 1e-9 }, "depth is still known to the simulator")
    }

    @Test("generated rooms: 3-6 obstacles, the start kept clear, the same room from the same seed")
    func generate() {
        for seed in UInt64(1)...20 {
            let a = Room.generate(seed: seed, keepClear: Vec2(2.5, 2.5))
            let b = Room.generate(seed: seed, keepClear: Vec2(2.5, 2.5))
            #expect((3...6).contains(a.obstacles.count), "seed \(seed): \(a.obstacles.count) obstacles")
            #expect(a.clearance(Vec2(2.5, 2.5)) > 0.5 && !a.isInside(Vec2(2.5, 2.5)))
            #expect(a.surfaces.count == b.surfaces.count && a.surfaces.map(\.texture.seed) == b.surfaces.map(\.texture.seed))
        }
    }
}
