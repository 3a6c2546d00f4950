import Lichen
import LichenStreams
import Testing

/// StreamPlan's rules (continual, gradual, custom) and StreamBuilder's output over the real
/// Fashion-MNIST test set: the frames and labels are the test images in the documented order,
/// clean frames are the images' bytes, and the same seed gives the same bytes.
@Suite("Stream builder")
struct StreamBuilderTests {
    /// The test split and the arena holding its bytes (keep the arena alive while using the data).
    static func testSet() throws -> (FashionMNIST, Arena) {
        let arena = try Arena(byteCount: 16 << 20)
        return (try FashionMNIST.load(.test, arena: arena), arena)
    }

    @Test func continualPlanIsTheStandardOrderAtOneSeverity() throws {
        let plan = try StreamPlan.continual(severity: 3, perDomain: 100)
        #expect(plan.kind == .continual)
        #expect(plan.domains.map(\.name) == Corruption.continualOrder.map(\.rawValue))
        #expect(plan.domains.allSatisfy { $0.segments == [StreamPlan.Segment(severity: 3, count: 100)] })
        #expect(plan.frameCount == 1500)
        #expect(try StreamPlan.continual().frameCount == 150_000)
    }

    @Test func gradualPlanFollowsCoTTA() throws {
        let plan = try StreamPlan.gradual(perDomain: 10_000)
        #expect(plan.domains.count == 15)
        #expect(plan.domains[0].segments.map(\.severity) == [5, 4, 3, 2, 1])
        for d in plan.domains.dropFirst() { #expect(d.segments.map(\.severity) == [1, 2, 3, 4, 5, 4, 3, 2, 1]) }
        #expect(plan.domains.allSatisfy { $0.segments.allSatisfy { $0.count == 1111 } })
        #expect(plan.frameCount == 5 * 1111 + 14 * 9 * 1111)
        let small = try StreamPlan.gradual(order: [.fog, .snow], perDomain: 20)
        #expect(small.domains.map(\.name) == ["fog", "snow"])
        #expect(small.frameCount == 5 * 2 + 9 * 2)
    }

    @Test func customPlanTakesNamesSeveritiesAndClean() throws {
        let plan = try StreamPlan.custom(["clean", "fog:2", "snow", "fog:5"], severity: 4, perDomain: 7)
        #expect(plan.kind == .custom)
        #expect(plan.domains.map(\.name) == ["clean", "fog", "snow", "fog"])
        #expect(plan.domains.map { $0.segments[0].severity } == [0, 2, 4, 5])
        #expect(plan.domains[0].corruption == nil && plan.domains[1].corruption == .fog)
        #expect(plan.frameCount == 28)
    }

    @Test func badRequestsAreRefused() {
        #expect(throws: StreamBuildError.self) { try StreamPlan.continual(severity: 0) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.continual(severity: 6) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.continual(perDomain: 0) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.continual(perDomain: 10_001) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.gradual(perDomain: 8) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.gradual(order: [.fog, .fog]) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.gradual(order: []) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.custom([]) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.custom(["rain"]) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.custom(["fog:9"]) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.custom(["fog:x"]) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.custom(["clean:3"]) }
        #expect(throws: StreamBuildError.self) { try StreamPlan.custom(["fog:1:2"]) }
    }

    @Test func seedsFollowTheDocumentedRule() {
        func h(_ x: UInt64) -> UInt64 { var r = SplitMix64Random(seed: x); return r.next() }
        #expect(StreamBuilder.mix(42) == h(42))
        #expect(StreamBuilder.domainSeed(7, domain: 3) == h(h(7) ^ 3))
        #expect(StreamBuilder.frameSeed(7, domain: 3, frame: 11) == h(h(h(7) ^ 3) ^ h(11)))
        var seen: Set<UInt64> = []
        for d in 0..<15 { for j in 0..<100 { seen.insert(StreamBuilder.frameSeed(1, domain: d, frame: j)) } }
        #expect(seen.count == 1500)
    }

    @Test func framesAndLabelsAreTheTestImagesInTheSeededOrder() throws {
        let (data, arena) = try Self.testSet()
        defer { withExtendedLifetime(arena) {} }
        let plan = try StreamPlan.custom(["clean", "gaussian_noise:2"], perDomain: 20)
        let bytes = try StreamBuilder.build(plan, seed: 9, data: data).serialized()
        let stream = try StreamFile(bytes: bytes, name: "built")
        #expect(stream.kind == .custom && stream.seed == 9 && stream.frameCount == 40)
        #expect(stream.domains == [
            StreamFile.Domain(name: "clean", severity: 0, firstFrame: 0, frameCount: 20),
            StreamFile.Domain(name: "gaussian_noise", severity: 2, firstFrame: 20, frameCount: 20),
        ])
        let order = try SeededPermutation(count: data.count, arena: arena)
        var noisyDiffers = 0
        for d in 0..<2 {
            order.shuffle(seed: StreamBuilder.domainSeed(9, domain: d))
            for j in 0..<20 {
                let image = order[j]
                let frame = 20 * d + j
                #expect(try stream.label(frame) == data.label(image), "frame \(frame)")
                let original = try data.images.pixels(ofImage: image)
                let pixels = try stream.framePixels(frame)
                let same = (0..<784).allSatisfy { pixels[$0] == original[$0] }
                if d == 0 { #expect(same, "clean frame \(frame) is the test image's bytes") }
                if d == 1 && !same { noisyDiffers += 1 }
                // The corrupted frame is Corruption.apply with the frame's seed, rounded to bytes.
                if d == 1 {
                    let input = (0..<784).map { Float(original[$0]) / 255 }
                    let out = try Corruption.gaussianNoise.apply(to: input, width: 28, height: 28, severity: 2,
                                                                 seed: StreamBuilder.frameSeed(9, domain: 1, frame: j))
                    #expect(out.map { UInt8(($0 * 255).rounded()) } == pixels, "frame \(frame)")
                }
            }
        }
        #expect(noisyDiffers == 20)
        // Unshuffled: test-set order.
        let plain = try StreamFile(bytes: try StreamBuilder.build(plan, seed: 9, data: data, shuffle: false).serialized())
        for j in 0..<20 { #expect(try plain.label(j) == data.label(j) && plain.label(20 + j) == data.label(j)) }
    }

    @Test func sameSeedSameBytesOtherSeedOtherBytes() throws {
        let (data, arena) = try Self.testSet()
        defer { withExtendedLifetime(arena) {} }
        let plan = try StreamPlan.gradual(order: [.motionBlur, .contrast], perDomain: 18)
        let a = try StreamBuilder.build(plan, seed: 1, data: data).serialized()
        let b = try StreamBuilder.build(plan, seed: 1, data: data).serialized()
        let c = try StreamBuilder.build(plan, seed: 2, data: data).serialized()
        #expect(a == b)
        #expect(a != c)
        let stream = try StreamFile(bytes: a)
        #expect(stream.kind == .gradual)
        #expect(stream.domains.map(\.severity) == [5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 4, 3, 2, 1])
        #expect(stream.domains.allSatisfy { $0.frameCount == 2 })
        #expect(stream.frameCount == 28)
    }
}
