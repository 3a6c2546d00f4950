import Foundation
import Lichen
import Testing

/// A NaN or infinite fp16 block scale in a q8_0/q4_0 tensor is refused at load, naming the
/// tensor and the block (it was accepted, and one NaN scale in fc2 took the CNN's error from
/// 32 % to 90 %).
@Suite("Quantized block scales")
struct QuantizedScaleTests {
    typealias S = RuntimeTestSupport

    /// The shipped model of `type` with the fp16 scale of block `block` of `tensor` set to `bits`.
    static func patched(_ type: String, tensor: String, block: Int, bits: UInt16) throws -> [UInt8] {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: S.model("cnn", type))))
        let info = try GGUFFile(path: S.model("cnn", type)).tensorInfo(tensor)
        let stride = info.type == .q8_0 ? 34 : 18
        let at = info.fileOffset + block * stride
        bytes[at] = UInt8(bits & 0xFF)
        bytes[at + 1] = UInt8(bits >> 8)
        return bytes
    }

    @Test("NaN and infinite scales in q8_0 and q4_0 weights are refused with the tensor and block", arguments: [
        ("q8_0", "fc2.weight", 7, UInt16(0x7E00)), ("q8_0", "fc1.weight", 1000, UInt16(0x7C00)),
        ("q4_0", "fc2.weight", 0, UInt16(0xFE00)), ("q4_0", "conv2.weight", 3, UInt16(0xFC00)),
    ])
    func nonFiniteScaleIsRefused(_ type: String, _ tensor: String, _ block: Int, _ bits: UInt16) throws {
        let bytes = try Self.patched(type, tensor: tensor, block: block, bits: bits)
        let expected = LichenError.nonFiniteTensor(tensor: tensor, unit: type == "q8_0" ? "q8_0 block (fp16 scale)" : "q4_0 block (fp16 scale)",
                                                   index: block)
        try bytes.withUnsafeBytes { raw in
            let file = try GGUFFile(copying: raw)
            let spec = try ModelFile.readSpec(file)
            #expect(throws: expected) { try ModelFile.checkParameters(file, spec: spec) }
            let arena = try Arena(byteCount: 16 << 20)
            #expect(throws: expected) {
                try ModelFile.loadParameters(file, spec: spec, into: ParameterStore(arena: arena), trainable: false)
            }
        }
        // Through the runtime, from a file.
        let path = (S.socketPath() as NSString).deletingLastPathComponent + "/bad-\(type).gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let rt = try Runtime(budgetBytes: 48 << 20)
        #expect(throws: expected) { try rt.loadModel(path: path) }
    }

    @Test("finite scales, the largest fp16 included, still load")
    func finiteScalesLoad() throws {
        let bytes = try Self.patched("q8_0", tensor: "fc2.weight", block: 2, bits: 0x7BFF)
        try bytes.withUnsafeBytes { raw in
            let file = try GGUFFile(copying: raw)
            try ModelFile.checkParameters(file, spec: try ModelFile.readSpec(file))
        }
    }
}
