import Foundation
import Testing
@testable import LichenCueSim

/// The 21-D texton feature against a direct computation, and its closed-form cases.
@Suite("Cue simulator textons")
struct TextonTests {
    /// The feature computed directly from its definition: every grid patch, every texton's squared
    /// distance, the first minimum, counts / 98, entropy in bits.
    static func direct(_ image: [UInt8], _ d: TextonDictionary, columns: Int, rows: Int) -> [Double] {
        var counts = [Double](repeating: 0, count: 20)
        let gx = (columns - 5) / 7, gy = (rows - 5) / 7
        for nx in 0..<7 {
            for ny in 0..<7 {
                let x0 = gx * nx + gx / 2, y0 = gy * ny + gy / 2
                var intensity = [Double](), gradient = [Double]()
                for yy in 0..<5 {
                    for xx in 0..<5 {
                        func px(_ x: Int) -> Double { Double(image[(y0 + yy) * columns + x]) }
                        let x = x0 + xx
                        intensity.append(px(x))
                        switch xx {
                        case 0: gradient.append(2 * (px(x + 1) - px(x)))
                        case 4: gradient.append(2 * (px(x) - px(x - 1)))
                        default: gradient.append(px(x + 1) - px(x - 1))
                        }
                    }
                }
                func argmin(_ textons: [[Double]], _ p: [Double]) -> Int {
                    let ds = textons.map { t in zip(t, p).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
                    return ds.firstIndex(of: ds.min()!)!
                }
                counts[argmin(d.intensity, intensity)] += 1
                counts[10 + argmin(d.gradient, gradient)] += 1
            }
        }
        let f = counts.map { $0 / 98 }
        let entropy = -f.filter { $0 > 0 }.reduce(0.0) { $0 + $1 * log2($1) }
        return f + [entropy]
    }

    @Test("random images and dictionaries: the feature equals the direct computation; each half sums to 0.5")
    func againstDirect() {
        var random = SimRandom(seed: 11)
        for trial in 0..<5 {
            let image = (0..<(Camera.rows * Camera.columns)).map { _ in UInt8(random.int(0, 255)) }
            let d = TextonDictionary(
                intensity: (0..<10).map { _ in (0..<25).map { _ in random.uniform(0, 255) } },
                gradient: (0..<10).map { _ in (0..<25).map { _ in random.uniform(-200, 200) } })
            let got = d.features(image, columns: Camera.columns, rows: Camera.rows)
            let expected = Self.direct(image, d, columns: Camera.columns, rows: Camera.rows)
            #expect(got.count == 21)
            for i in 0..<21 { #expect(abs(Double(got[i]) - expected[i]) < 1e-6, "trial \(trial) value \(i)") }
            #expect(abs(got[0..<10].reduce(0, +) - 0.5) < 1e-6 && abs(got[10..<20].reduce(0, +) - 0.5) < 1e-6)
        }
    }

    @Test("a flat image: every patch to the nearest-mean intensity texton and the zero-gradient texton; entropy 1 bit")
    func flatImage() {
        let image = [UInt8](repeating: 100, count: Camera.rows * Camera.columns)
        var intensity = (0..<10).map { i in [Double](repeating: Double(i * 25 + 10), count: 25) }  // 10, 35, ..., 110 (4), ...
        intensity[3] = [Double](repeating: 101, count: 25)
        var gradient = (0..<10).map { i in [Double](repeating: Double(i + 1) * 10, count: 25) }
        gradient[7] = [Double](repeating: 0, count: 25)
        let f = TextonDictionary(intensity: intensity, gradient: gradient).features(image, columns: Camera.columns, rows: Camera.rows)
        #expect(f[3] == 0.5 && f[17] == 0.5)
        #expect(f.enumerated().filter { $0.offset != 3 && $0.offset != 17 && $0.offset != 20 }.allSatisfy { $0.element == 0 })
        #expect(abs(f[20] - 1) < 1e-6, "entropy of two bins of 0.5: 1 bit")
    }

    @Test("the grid: 49 corners, the authors' step and offset, every patch inside the image")
    func grid() {
        let corners = TextonDictionary.gridCorners(columns: 64, rows: 48)
        #expect(corners.count == 49)
        #expect(corners[0] == (4, 3) && corners[48] == (8 * 6 + 4, 6 * 6 + 3))
        #expect(corners.allSatisfy { $0.0 + 5 <= 64 && $0.1 + 5 <= 48 })
    }

    @Test("competitive learning is deterministic from its seed and moves the textons towards the data")
    func learning() {
        var random = SimRandom(seed: 12)
        // Two kinds of frame: dark and bright halves.
        let frames: [[UInt8]] = (0..<20).map { k in
            (0..<(48 * 64)).map { i in UInt8(k % 2 == 0 ? 40 + random.int(0, 10) : 200 + random.int(0, 10)) }
        }
        let a = TextonDictionary.learn(frames: frames, columns: 64, rows: 48, seed: 5)
        let b = TextonDictionary.learn(frames: frames, columns: 64, rows: 48, seed: 5)
        #expect(a.intensity == b.intensity && a.gradient == b.gradient)
        let means = a.intensity.map { $0.reduce(0, +) / 25 }
        #expect(means.allSatisfy { ($0 > 35 && $0 < 55) || ($0 > 195 && $0 < 215) }, "\(means)")
    }
}
