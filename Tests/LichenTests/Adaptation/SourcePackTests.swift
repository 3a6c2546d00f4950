import Foundation
import Lichen
import Testing

/// The source pack a board reads: its bytes come from the budget (the file's size, checked
/// before anything is read), it must fit the model, and its batches walk a seeded shuffled
/// order that covers every frame once before it starts over.
@Suite("Source pack")
struct SourcePackTests {
    static let spec = ModelSpec(architecture: "t", inputShape: try! Shape(1, 4, 4), classCount: 3, layers: [])

    /// A pack of `count` 4x4 frames whose first pixel is the frame's index and whose label is index % classes.
    static func write(count: Int, classes: Int = 3, width: Int = 4) throws -> String {
        var w = try StreamFileWriter(kind: .custom, width: width, height: 4, classCount: classes, seed: 1)
        try w.beginDomain(name: "clean", severity: 0)
        for i in 0..<count {
            var frame = [UInt8](repeating: 0, count: width * 4)
            frame[0] = UInt8(i)
            try w.append(frame: frame, label: i % classes)
        }
        let path = NSTemporaryDirectory() + "lichen-pack-test-\(getpid())-\(count)-\(classes)-\(width).stream"
        try w.write(toPath: path)
        return path
    }

    @Test("batches cover every frame once per round, in a seeded order, with their labels")
    func batches() throws {
        let path = try Self.write(count: 12)
        defer { unlink(path) }
        let arena = try Arena(byteCount: 4 << 20)
        let before = arena.stats.lowUsedBytes
        let pack = try SourcePack(path: path, spec: Self.spec, arena: arena, seed: 7)
        #expect(pack.frameCount == 12)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(arena.stats.lowUsedBytes - before >= size, "the file's bytes are in the budget")
        let images = try arena.persistentTensor(.f32, try Shape(4, 1, 4, 4)), labels = try arena.persistentTensor(.f32, try Shape(4))
        var seen: [Int] = []
        for _ in 0..<3 {
            try pack.nextSourceBatch(images: images, labels: labels)
            let x = images.floats, y = labels.floats
            for b in 0..<4 {
                let index = Int((x[b * 16] * 255).rounded())
                #expect(Int(y[b]) == index % 3, "the label travels with its frame")
                seen.append(index)
            }
        }
        #expect(Set(seen) == Set(0..<12), "one round covers every frame once: \(seen)")
        #expect(seen != Array(0..<12), "the order is shuffled")
        let again = try SourcePack(path: path, spec: Self.spec, arena: arena, seed: 7)
        var second: [Int] = []
        for _ in 0..<3 {
            try again.nextSourceBatch(images: images, labels: labels)
            for b in 0..<4 { second.append(Int((images.floats[b * 16] * 255).rounded())) }
        }
        #expect(second == seen, "the same seed gives the same order")
    }

    @Test("a pack that does not fit the model, or the budget, is refused before it is used")
    func refusals() throws {
        let classes = try Self.write(count: 4, classes: 5)
        let width = try Self.write(count: 4, width: 5)
        let fits = try Self.write(count: 4)
        defer { unlink(classes); unlink(width); unlink(fits) }
        let arena = try Arena(byteCount: 4 << 20)
        #expect(throws: LichenError.invalidModel(key: "lichen.source_pack", value: classes, reason: "the pack's class count is not the model's")) {
            _ = try SourcePack(path: classes, spec: Self.spec, arena: arena, seed: 1)
        }
        #expect(throws: LichenError.invalidModel(key: "lichen.source_pack", value: width,
                                                 reason: "the pack's frames do not have as many values as the model's input")) {
            try SourcePack.check(path: width, spec: Self.spec)
        }
        #expect(throws: LichenError.fileError(path: "/nonexistent/p.stream", call: "open", errno: 2)) {
            _ = try SourcePack(path: "/nonexistent/p.stream", spec: Self.spec, arena: arena, seed: 1)
        }
        let small = try Arena(byteCount: Arena.minimumByteCount)
        let left = small.stats.bytesLeft
        _ = try small.allocatePersistent(byteCount: left - 64)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: fits)[.size] as? Int)
        #expect(throws: LichenError.budgetExceeded(asked: size, left: small.stats.bytesLeft)) {
            _ = try SourcePack(path: fits, spec: Self.spec, arena: small, seed: 1)
        }
    }
}
