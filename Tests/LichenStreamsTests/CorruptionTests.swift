import Foundation
import LichenStreams
import Testing

@Suite("Corruptions on Fashion-MNIST")
struct CorruptionTests {
    static let side = CorruptionFixtures.side

    /// Corruptions that draw random numbers (the others are functions of the image alone).
    static let random: Set<Corruption> = [
        .gaussianNoise, .shotNoise, .impulseNoise, .glassBlur, .motionBlur, .snow, .frost, .fog, .elasticTransform,
    ]

    /// Severity-5 band of the mean absolute pixel change over the fixture subset: the measured
    /// value (README.md) ± 15 %.
    static let severity5Band: [Corruption: ClosedRange<Double>] = [
        .gaussianNoise: 0.048...0.065, .shotNoise: 0.030...0.041, .impulseNoise: 0.030...0.041,
        .defocusBlur: 0.055...0.074, .glassBlur: 0.080...0.108, .motionBlur: 0.071...0.096,
        .zoomBlur: 0.078...0.105, .snow: 0.147...0.199, .frost: 0.125...0.170, .fog: 0.194...0.262,
        .brightness: 0.235...0.318, .contrast: 0.201...0.271, .elasticTransform: 0.093...0.125,
        .pixelate: 0.042...0.057, .jpegCompression: 0.023...0.031,
    ]

    @Test("same seed gives the same bits; another seed changes the random corruptions only", arguments: Corruption.allCases)
    func determinism(_ corruption: Corruption) throws {
        let image = try CorruptionFixtures.subset()[3]
        for severity in 1...5 {
            let a = try corruption.apply(to: image, width: Self.side, height: Self.side, severity: severity, seed: 42)
            let b = try corruption.apply(to: image, width: Self.side, height: Self.side, severity: severity, seed: 42)
            let c = try corruption.apply(to: image, width: Self.side, height: Self.side, severity: severity, seed: 43)
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(corruption) severity \(severity)")
            if Self.random.contains(corruption) {
                #expect(a != c, "\(corruption) severity \(severity): seeds 42 and 43 gave the same image")
            } else {
                #expect(a.map(\.bitPattern) == c.map(\.bitPattern), "\(corruption) severity \(severity)")
            }
        }
    }

    @Test("outputs are width*height finite values in [0, 1] at every severity", arguments: Corruption.allCases)
    func outputRange(_ corruption: Corruption) throws {
        let images = try CorruptionFixtures.subset()
        // Include the extremes: an all-black and an all-white image.
        let extremes = [[Float](repeating: 0, count: Self.side * Self.side), [Float](repeating: 1, count: Self.side * Self.side)]
        for severity in 1...5 {
            for (k, image) in (images.prefix(8) + extremes).enumerated() {
                let out = try corruption.apply(to: image, width: Self.side, height: Self.side, severity: severity, seed: UInt64(k))
                #expect(out.count == Self.side * Self.side)
                #expect(out.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 }, "\(corruption) severity \(severity) image \(k)")
            }
        }
    }

    @Test("non-square images work and keep their size", arguments: Corruption.allCases)
    func nonSquare(_ corruption: Corruption) throws {
        let (w, h) = (20, 12)
        let image = (0..<(w * h)).map { Float(($0 * 37) % 101) / 100 }
        let out = try corruption.apply(to: image, width: w, height: h, severity: 5, seed: 9)
        #expect(out.count == w * h)
        #expect(out.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 })
        #expect(out != image)
    }

    @Test("mean absolute change grows strictly with severity and lies in its band at severity 5", arguments: Corruption.allCases)
    func severityLadder(_ corruption: Corruption) throws {
        let changes = try (1...5).map { try CorruptionFixtures.meanAbsoluteChange(corruption, severity: $0) }
        #expect(changes[0] > 0.004, "\(corruption): severity 1 barely changes images (\(changes[0]))")
        for s in 1..<5 {
            #expect(changes[s] > changes[s - 1], "\(corruption): severity \(s + 1) changes \(changes[s]) <= severity \(s)'s \(changes[s - 1])")
        }
        let band = try #require(Self.severity5Band[corruption])
        #expect(band.contains(changes[4]), "\(corruption): severity 5 changes \(changes[4]), outside \(band)")
    }

    /// Output fingerprints (FNV-1a of the Float bits) of fixture image 3, severity 3, seed 1:
    /// pins the bits so a change of algorithm, table or platform arithmetic shows up here.
    static let fingerprints: [Corruption: UInt64] = [
        .gaussianNoise: 0x33fa70f914565b50,
        .shotNoise: 0xdc32a09455ef3129,
        .impulseNoise: 0x8e4b184c3da2af39,
        .defocusBlur: 0xf0430634ee94291,
        .glassBlur: 0x1b8e80fe76699350,
        .motionBlur: 0x386306f4503cfb89,
        .zoomBlur: 0xf3af7721e817a42a,
        .snow: 0x31716ed2b4723dff,
        .frost: 0x5a5b951e35b143f5,
        .fog: 0x17a2d71b6284ef86,
        .brightness: 0xfdf26e2422aadc44,
        .contrast: 0x84346b653457634f,
        .elasticTransform: 0xc15aeab3f8fce1da,
        .pixelate: 0xbe24477a614650da,
        .jpegCompression: 0xfcb32f722a5afcd3,
    ]

    @Test("outputs are bit-identical to the recorded fingerprints", arguments: Corruption.allCases)
    func pinnedBits(_ corruption: Corruption) throws {
        let image = try CorruptionFixtures.subset()[3]
        let out = try corruption.apply(to: image, width: Self.side, height: Self.side, severity: 3, seed: 1)
        let got = CorruptionFixtures.fingerprint(out)
        #expect(Self.fingerprints[corruption] == got, "\(corruption): fingerprint 0x\(String(got, radix: 16))")
    }

    @Test("bad severity, size or pixel throws with the right kind")
    func badArguments() throws {
        let image = [Float](repeating: 0.5, count: 28 * 28)
        for corruption in Corruption.allCases {
            for severity in [0, 6, -1] {
                #expect(throws: CorruptionError.self) {
                    try corruption.apply(to: image, width: 28, height: 28, severity: severity, seed: 0)
                }
                do {
                    _ = try corruption.apply(to: image, width: 28, height: 28, severity: severity, seed: 0)
                } catch let error as CorruptionError {
                    #expect(error.kind == .badSeverity)
                    #expect(error.description.contains(corruption.rawValue))
                }
            }
            func kind(_ pixels: [Float], _ w: Int, _ h: Int) -> CorruptionError.Kind? {
                do {
                    _ = try corruption.apply(to: pixels, width: w, height: h, severity: 1, seed: 0)
                    return nil
                } catch let error as CorruptionError {
                    return error.kind
                } catch {
                    return nil
                }
            }
            #expect(kind(image, 28, 27) == .badSize)
            #expect(kind(image, 0, 0) == .badSize)
            #expect(kind([0, 0, 0, 0], 2, 2) == .badSize)
            #expect(kind([Float](repeating: 0, count: 5000 * 4), 5000, 4) == .badSize)
            var bad = image
            bad[17] = .nan
            #expect(kind(bad, 28, 28) == .badPixel)
            bad[17] = 1.5
            #expect(kind(bad, 28, 28) == .badPixel)
            bad[17] = -0.01
            #expect(kind(bad, 28, 28) == .badPixel)
        }
    }

    @Test("parameter descriptions exist for severities 1...5 and differ between severities", arguments: Corruption.allCases)
    func descriptions(_ corruption: Corruption) {
        let texts = (1...5).map { corruption.parameterDescription(severity: $0) }
        #expect(Set(texts).count == 5, "\(corruption): \(texts)")
        #expect(corruption.parameterDescription(severity: 0).hasPrefix("invalid"))
    }

    @Test("brightness and contrast match their closed forms")
    func closedForms() throws {
        let image = try CorruptionFixtures.subset()[5]
        let bright = try Corruption.brightness.apply(to: image, width: 28, height: 28, severity: 5, seed: 0)
        #expect(zip(image, bright).allSatisfy { abs(min($0 + 0.3, 1) - $1) < 1e-6 })
        let mean = image.map(Double.init).reduce(0, +) / Double(image.count)
        let low = try Corruption.contrast.apply(to: image, width: 28, height: 28, severity: 5, seed: 0)
        #expect(zip(image, low).allSatisfy { abs(Float((Double($0) - mean) * 0.15 + mean) - $1) < 1e-6 })
    }
}
