import Foundation

/// The drone's camera pair: a pinhole camera of `columns` × `rows` pixels over a 60°
/// horizontal field of view, 1 m above the floor. Stereo is one disparity per column from a
/// ray cast; the monocular image is rendered by perspective projection of the surface textures.
public struct Camera: Sendable {
    public static let columns = 64
    public static let rows = 48
    public static let fieldOfView = Double.pi / 3
    public static let height = 1.0
    /// f·B in pixel metres: a surface 1 m away has disparity 16 px.
    public static let focalBaseline = 16.0
    /// Focal length in pixels.
    public static let focal = Double(columns) / 2 / tan(fieldOfView / 2)

    /// The angle of column `c`'s centre from the optical axis (positive to the left).
    public static func columnAngle(_ c: Int) -> Double {
        atan((Double(columns) / 2 - (Double(c) + 0.5)) / focal)
    }
}

/// One stereo frame: disparity per column, validity, and the trusted cue's target.
public struct StereoFrame: Sendable {
    /// Disparity in pixels (noisy), 0 where invalid.
    public var disparity: [Double]
    public var valid: [Bool]
    /// Perpendicular depth per column (noise-free; infinity where the ray met nothing).
    public var depth: [Double]
    /// Whether at least 10 % of the columns are valid.
    public var frameValid: Bool
    /// Mean disparity over the valid columns (the paper's target); 0 for a dropped frame.
    public var target: Double
}

public enum Sensors {
    /// Casts one ray per column from `position` with `heading` (radians).
    public static func castColumns(_ room: Room, position: Vec2, heading: Double) -> [RayHit?] {
        (0..<Camera.columns).map { c in room.cast(from: position, direction: .heading(heading + Camera.columnAngle(c))) }
    }

    /// Stereo: perpendicular depth Z per column, disparity f·B/Z plus Gaussian noise of
    /// `noise` px, invalid on textureless surfaces; the frame is dropped below 10 % valid.
    public static func stereo(_ room: Room, hits: [RayHit?], noise: Double, random: inout SimRandom) -> StereoFrame {
        var disparity = [Double](repeating: 0, count: Camera.columns)
        var valid = [Bool](repeating: false, count: Camera.columns)
        var depth = [Double](repeating: .infinity, count: Camera.columns)
        var sum = 0.0, count = 0
        for c in 0..<Camera.columns {
            guard let hit = hits[c] else { continue }
            let z = hit.distance * cos(Camera.columnAngle(c))
            depth[c] = z
            let n = random.gaussian() * noise
            if room.surfaces[hit.surface].texture.isTextureless { continue }
            disparity[c] = max(0, Camera.focalBaseline / z + n)
            valid[c] = true
            sum += disparity[c]
            count += 1
        }
        let ok = count * 10 >= Camera.columns
        return StereoFrame(disparity: disparity, valid: valid, depth: depth, frameValid: ok, target: ok ? sum / Double(count) : 0)
    }

    /// The grey image (row-major, `rows` × `columns`, 0...255) the left camera sees, with
    /// Gaussian pixel noise of `noise` grey levels.
    public static func mono(_ room: Room, position: Vec2, heading: Double, hits: [RayHit?], noise: Double,
                            random: inout SimRandom) -> [UInt8] {
        var image = [UInt8](repeating: 0, count: Camera.rows * Camera.columns)
        let f = Camera.focal
        for c in 0..<Camera.columns {
            let angle = Camera.columnAngle(c)
            let direction = Vec2.heading(heading + angle)
            let hit = hits[c]
            let z = hit.map { $0.distance * cos(angle) } ?? .infinity
            for r in 0..<Camera.rows {
                let y = Double(Camera.rows) / 2 - (Double(r) + 0.5)  // pixels above the axis
                let v = Camera.height + z * y / f
                var grey: Double
                if let hit, v >= 0, v <= Room.height {
                    let s = room.surfaces[hit.surface]
                    grey = s.texture.grey(hit.u, v, footprint: z / f)
                } else if y < 0 {
                    // Floor: the perpendicular depth where this row meets it.
                    let zf = Camera.height * f / -y
                    let p = position + direction * (zf / cos(angle))
                    grey = room.floor.grey(p.x, p.y, footprint: zf / f)
                } else {
                    grey = 210  // a plain ceiling
                }
                grey += random.gaussian() * noise
                image[r * Camera.columns + c] = UInt8(max(0, min(255, grey.rounded())))
            }
        }
        return image
    }
}
