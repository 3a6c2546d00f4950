import ArgumentParser
import Foundation
import Lichen

/// `lichen state show|verify FILE`: a runtime's adapted-state file (`lichen serve --state`,
/// lichen_runtime_params.state_path).
struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Show or verify an adapted-state file.",
        discussion: """
            A runtime with a state path (lichen_runtime_params.state_path, `lichen serve --state`) saves what \
            its method has learned there (trainables, teacher and projector copies, optimizer state, \
            counters) and restores it at the next lichen_method_set when the model and the method's \
            settings match. show prints the header, the plan, the counters and every tensor's figures; \
            verify checks the file (magic, version, lengths, CRC-32, finite values) and, with --model, that \
            it belongs to that model file, and exits 1 naming what is wrong.
            """,
        subcommands: [Show.self, Verify.self]
    )

    /// The file read and checked, or a failure naming it.
    static func read(_ path: String) throws -> (bytes: [UInt8], contents: StateFile.Contents) {
        try naming(path) { () throws(LichenError) in try StateFile.read(path: path) }
    }

    static func savedAt(_ c: StateFile.Contents) -> String {
        let date = Date(timeIntervalSince1970: Double(c.savedAtNanoseconds) / 1e9)
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Print a state file's header, plan, counters and tensors.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("State file.", valueName: "file"))
        var file: String

        func run() throws {
            let (bytes, c) = try StateCommand.read(file)
            struct Figures { var name: String; var count: Int; var minimum: Float; var maximum: Float; var meanAbs: Double }
            var figures: [Figures] = []
            for t in c.tensors {
                var lo = Float.infinity, hi = -Float.infinity, sum = 0.0
                for j in 0..<t.count {
                    let o = t.offset + 4 * j
                    let bits = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
                    let v = Float(bitPattern: bits)
                    lo = min(lo, v)
                    hi = max(hi, v)
                    sum += Double(abs(v))
                }
                figures.append(Figures(name: t.name, count: t.count, minimum: t.count > 0 ? lo : 0, maximum: t.count > 0 ? hi : 0,
                                       meanAbs: t.count > 0 ? sum / Double(t.count) : 0))
            }
            if global.json {
                print(JSON.object([
                    ("file", .string(file)), ("bytes", .int(c.byteCount)), ("version", .int(Int(StateFile.version))),
                    ("model_hash", .string(StateFile.hexText(c.modelHash))), ("plan", .string(c.planText)),
                    ("plan_hash", .int(Int(c.planHash))), ("updates", .int(Int(c.updates))), ("frames", .int(Int(c.frames))),
                    ("saved_at", .string(StateCommand.savedAt(c))), ("saved_at_unix_ns", .int(Int(c.savedAtNanoseconds))),
                    ("crc32", .int(Int(c.crc))),
                    ("counters", .array(c.counters.map { .int(Int(truncatingIfNeeded: $0)) })),
                    ("tensors", .array(figures.map { f in
                        .object([("name", .string(f.name)), ("values", .int(f.count)), ("min", .number(Double(f.minimum))),
                                 ("max", .number(Double(f.maximum))), ("mean_abs", .number(f.meanAbs))])
                    })),
                ]).rendered())
                return
            }
            print("\(file): adapted state, version \(StateFile.version), \(c.byteCount) bytes, CRC-32 \(String(c.crc, radix: 16)) (checked)")
            print("model:    content hash \(StateFile.hexText(c.modelHash))")
            print("plan:     \(c.planText)")
            print("saved:    \(StateCommand.savedAt(c)), after \(c.updates) updates and \(c.frames) frames")
            print("counters: \(c.counters.map { String($0) }.joined(separator: " "))")
            print("")
            var t = Table(["tensor", "values", "min", "max", "mean |x|"], rightAligned: [1, 2, 3, 4])
            for f in figures {
                t.add([f.name, String(f.count), fixed(Double(f.minimum), 5), fixed(Double(f.maximum), 5), fixed(f.meanAbs, 5)])
            }
            print(t.rendered())
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify", abstract: "Check a state file (and, with --model, that it belongs to that model); exit 1 naming what is wrong.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("State file.", valueName: "file"))
        var file: String

        @Option(name: .long, help: ArgumentHelp("Model file (GGUF) the state must belong to.", valueName: "path"))
        var model: String?

        func run() throws {
            let (_, c) = try StateCommand.read(file)
            if let model {
                let hash = try naming(model) { () throws(LichenError) in try GGUFFile(path: model).contentHash() }
                guard hash == c.modelHash else {
                    throw CommandFailure("\(file): saved for another model (content hash \(StateFile.hexText(c.modelHash)); "
                                         + "\(model) hashes to \(StateFile.hexText(hash)))")
                }
            }
            if global.json {
                print(JSON.object([("file", .string(file)), ("ok", .bool(true)), ("bytes", .int(c.byteCount)),
                                   ("model_hash", .string(StateFile.hexText(c.modelHash))), ("plan", .string(c.planText)),
                                   ("updates", .int(Int(c.updates))), ("model_checked", .bool(model != nil))]).rendered())
            } else {
                print("\(file): ok (\(c.byteCount) bytes, \(c.updates) updates, plan \(c.planText)\(model.map { ", model \($0)" } ?? ""))")
            }
        }
    }
}
