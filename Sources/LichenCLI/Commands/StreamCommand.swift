import ArgumentParser
import Foundation
import Lichen
import LichenStreams

/// `lichen stream make|show`: corrupted Fashion-MNIST test streams (the continual, gradual and
/// custom settings of the test-time adaptation benchmarks) and a look at them.
struct StreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Make and show corrupted Fashion-MNIST streams.",
        subcommands: [Make.self, Show.self]
    )
}

/// A domain as reported: one record, or for gradual streams the consecutive records of one
/// corruption (its severity segments).
struct StreamDomainGroup {
    let name: String
    let severities: [Int]
    let records: Range<Int>
    let firstFrame: Int
    let frameCount: Int

    /// The severity to report: the single one, or the largest of a gradual domain.
    var severity: Int { severities.max() ?? 0 }

    /// "5", or "5-1" / "1-5-1" for gradual domains.
    var severityText: String {
        guard severities.count > 1, let first = severities.first, let last = severities.last, let peak = severities.max() else {
            return String(severity)
        }
        if first == peak { return "\(first)-\(last)" }
        return first == last ? "\(first)-\(peak)-\(last)" : "\(first)-\(peak)"
    }
}

/// The domains of `stream` as reported: gradual streams group consecutive records of the same
/// name; other kinds report every record.
func domainGroups(_ stream: StreamFile) -> [StreamDomainGroup] {
    var groups: [StreamDomainGroup] = []
    var i = 0
    let d = stream.domains
    while i < d.count {
        var j = i + 1
        if stream.kind == .gradual {
            while j < d.count && d[j].name == d[i].name { j += 1 }
        }
        let frames = d[i..<j].reduce(0) { $0 + $1.frameCount }
        groups.append(StreamDomainGroup(name: d[i].name, severities: d[i..<j].map(\.severity), records: i..<j,
                                        firstFrame: d[i].firstFrame, frameCount: frames))
        i = j
    }
    return groups
}

/// Opens a stream file for a command (errors name the file).
func openStream(_ path: String) throws -> StreamFile {
    try naming(path) { () throws(LichenError) in try StreamFile(path: path) }
}

extension StreamCommand {
    struct Make: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "make",
            abstract: "Make a stream file from the Fashion-MNIST test images.",
            discussion: """
                continual: the 15 corruptions in the standard order, each at --severity (default 5). \
                gradual: the first corruption at severities 5,4,3,2,1, every later one at 1,2,3,4,5,4,3,2,1, \
                each segment --per-domain/9 images (--domains sets the order). custom: --domains in the order \
                given, each NAME or NAME:SEVERITY, "clean" for the unchanged images. Each domain takes \
                --per-domain images (default 10000, the whole test set), shuffled per domain from --seed \
                (--order original keeps test-set order); the same command writes the same bytes.
                """
        )

        enum Kind: String, ExpressibleByArgument, CaseIterable {
            case continual, gradual, custom
        }

        enum Order: String, ExpressibleByArgument, CaseIterable {
            case shuffled, original
        }

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Stream kind.", valueName: "kind"))
        var kind: Kind

        @Option(name: .long, help: ArgumentHelp("Domains, comma-separated (custom; order for gradual).", valueName: "a,b,.."))
        var domains: String?

        @Option(name: .long, help: ArgumentHelp("Severity 1...5 (continual, custom; default 5).", valueName: "n"))
        var severity: Int?

        @Option(name: .long, help: ArgumentHelp("Test images per domain, at most 10000.", valueName: "n"))
        var perDomain: Int = StreamBuilder.testImageCount

        @Option(name: .long, help: ArgumentHelp("Seed for the shuffles and the corruptions.", valueName: "n"))
        var seed: UInt64

        @Option(name: .long, help: ArgumentHelp("Order of the images in each domain (original: test-set order).", valueName: "order"))
        var order: Order = .shuffled

        @Option(name: .long, help: ArgumentHelp("Stream file to write.", valueName: "path"))
        var out: String

        @Option(name: .long, help: ArgumentHelp("Folder holding the Fashion-MNIST IDX .gz files.", valueName: "path"))
        var dataDirectory: String = FashionMNIST.defaultDirectory

        func plan() throws -> StreamPlan {
            let names = domains.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            do {
                switch kind {
                case .continual:
                    guard names == nil else { throw ValidationError("--domains is for custom and gradual streams") }
                    return try StreamPlan.continual(severity: severity ?? 5, perDomain: perDomain)
                case .gradual:
                    guard severity == nil else { throw ValidationError("--severity is not for gradual streams (they run 1...5)") }
                    var order = Corruption.continualOrder
                    if let names {
                        order = []
                        for n in names {
                            guard let c = Corruption(rawValue: n) else {
                                throw ValidationError("unknown corruption '\(n)'; known: "
                                                      + Corruption.continualOrder.map(\.rawValue).joined(separator: ", "))
                            }
                            order.append(c)
                        }
                    }
                    return try StreamPlan.gradual(order: order, perDomain: perDomain)
                case .custom:
                    guard let names else { throw ValidationError("--domains is required for custom streams") }
                    return try StreamPlan.custom(names, severity: severity ?? 5, perDomain: perDomain)
                }
            } catch let error as StreamBuildError {
                throw ValidationError(error.description)
            }
        }

        func validate() throws {
            _ = try plan()
        }

        func run() throws {
            let plan = try plan()
            let start = Date()
            let arena = try naming(dataDirectory) { () throws(LichenError) in try Arena(byteCount: 32 << 20) }
            let test = try naming(dataDirectory) { () throws(LichenError) in
                try FashionMNIST.load(.test, directory: dataDirectory, arena: arena)
            }
            // The images live in the arena: keep it until the stream is built.
            defer { withExtendedLifetime(arena) {} }
            let bar = ProgressBar("stream", total: plan.frameCount, enabled: stderrIsTerminal || global.verbose)
            let writer: StreamFileWriter
            do {
                writer = try StreamBuilder.build(plan, seed: seed, data: test, shuffle: order == .shuffled) { done, _ in
                    bar.update(done)
                }
            } catch let error as StreamBuildError {
                throw CommandFailure(error.description)
            } catch let error as LichenError {
                throw CommandFailure(dataDirectory + ": " + error.description)
            }
            bar.finish()
            try naming(out) { () throws(LichenError) in try writer.write(toPath: out) }
            let seconds = Date().timeIntervalSince(start)
            let stream = try openStream(out)
            if global.json {
                print(JSON.object([
                    ("stream", .string(out)),
                    ("kind", .string(stream.kind.name)),
                    ("seed", .string(String(seed))),
                    ("order", .string(order.rawValue)),
                    ("frames", .int(stream.frameCount)),
                    ("bytes", .int(stream.byteCount)),
                    ("domains", .array(domainGroups(stream).map(domainJSON))),
                    ("seconds", .number(seconds)),
                ]).rendered())
            } else {
                print("\(out): \(stream.kind.name) stream, \(stream.frameCount) frames in \(domainGroups(stream).count) domains, "
                      + "seed \(seed), \(byteText(stream.byteCount)), \(fixed(seconds, 1)) s")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Summarise a stream file; with --out, draw a contact sheet (PNG).",
            discussion: """
                Prints the kind, seed, domains (severity and frame range) and the label histogram. The \
                contact sheet has one row per domain, --samples frames spread evenly over it (a gradual \
                domain's row runs through its severities), scaled by --scale, named on the left.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Stream file.", valueName: "path"))
        var stream: String

        @Option(name: .long, help: ArgumentHelp("Contact sheet to write (PNG).", valueName: "path"))
        var out: String?

        @Option(name: .long, help: ArgumentHelp("Frames per row of the contact sheet.", valueName: "n"))
        var samples: Int = 10

        @Option(name: .long, help: ArgumentHelp("Scale of the frames in the contact sheet (1...8).", valueName: "n"))
        var scale: Int = 3

        func validate() throws {
            guard samples >= 1 && samples <= 64 else { throw ValidationError("--samples must be in 1...64") }
            guard scale >= 1 && scale <= 8 else { throw ValidationError("--scale must be in 1...8") }
        }

        func run() throws {
            let file = try openStream(stream)
            let groups = domainGroups(file)
            let histogram = file.labelHistogram()
            var sheet: (width: Int, height: Int)? = nil
            if let out {
                let image = try contactSheet(file, groups)
                let bytes = image.pngBytes()
                do {
                    try Data(bytes).write(to: URL(fileURLWithPath: out), options: .atomic)
                } catch {
                    throw CommandFailure("\(out): cannot write the contact sheet: \(error.localizedDescription)")
                }
                sheet = (image.width, image.height)
            }
            if global.json {
                var pairs: [(String, JSON)] = [
                    ("stream", .string(stream)),
                    ("kind", .string(file.kind.name)),
                    ("seed", .string(String(file.seed))),
                    ("frames", .int(file.frameCount)),
                    ("width", .int(file.width)),
                    ("height", .int(file.height)),
                    ("channels", .int(file.channels)),
                    ("class_count", .int(file.classCount)),
                    ("bytes", .int(file.byteCount)),
                    ("crc32", .string(String(file.checksum, radix: 16))),
                    ("domains", .array(groups.map(domainJSON))),
                    ("records", .array(file.domains.map { d in
                        .object([("name", .string(d.name)), ("severity", .int(d.severity)),
                                 ("first_frame", .int(d.firstFrame)), ("frames", .int(d.frameCount))])
                    })),
                    ("label_histogram", .array(histogram.map { .int($0) })),
                ]
                if let out, let sheet {
                    pairs.append(("sheet", .object([("path", .string(out)), ("width", .int(sheet.width)),
                                                    ("height", .int(sheet.height))])))
                }
                print(JSON.object(pairs).rendered())
                return
            }
            print("\(stream): \(file.kind.name) stream, seed \(file.seed), \(file.frameCount) frames of "
                  + "\(file.width)x\(file.height)x\(file.channels), \(file.classCount) classes, \(byteText(file.byteCount))")
            print("")
            var table = Table(["domain", "name", "severity", "frames", "first", "last"], rightAligned: [0, 3, 4, 5])
            for (i, g) in groups.enumerated() {
                table.add([String(i), g.name, g.severityText, String(g.frameCount), String(g.firstFrame),
                           String(g.firstFrame + g.frameCount - 1)])
            }
            print(table.rendered())
            print("")
            var labels = Table(["class", "name", "frames"], rightAligned: [0, 2])
            for (c, n) in histogram.enumerated() {
                let name = FashionMNIST.className(c).map { s in s.withUTF8Buffer { String(decoding: $0, as: UTF8.self) } } ?? "?"
                labels.add([String(c), name, String(n)])
            }
            print(labels.rendered())
            if let out, let sheet {
                print("")
                print("contact sheet: \(out) (\(sheet.width)x\(sheet.height) px, one row per domain above, "
                      + "\(samples) frames spread over each, scale \(scale))")
            }
        }

        /// One row per domain: its name and severity on the left, then `samples` frames taken
        /// evenly over its frames; a title row on top.
        func contactSheet(_ file: StreamFile, _ groups: [StreamDomainGroup]) throws -> GrayImage {
            let textScale = 2, gap = 4
            let tileW = file.width * scale, tileH = file.height * scale
            let labels = groups.map { "\($0.name) \($0.severityText)" }
            let labelChars = max(labels.map(\.count).max() ?? 0, 8)
            let labelWidth = labelChars * BitmapFont.advance * textScale + 4 * gap
            let rowHeight = max(tileH, BitmapFont.height * textScale) + gap
            let titleHeight = BitmapFont.height * textScale + 2 * gap
            let width = labelWidth + samples * (tileW + gap) + gap
            let height = titleHeight + groups.count * rowHeight + gap
            guard width <= 16384, height <= 16384 else {
                throw CommandFailure("\(stream): the contact sheet would be \(width)x\(height) px; use fewer --samples or a smaller --scale")
            }
            var image = GrayImage(width: width, height: height, background: 40)
            image.draw(text: "\(file.kind.name) seed \(file.seed)", at: gap, gap, scale: textScale, value: 200)
            for (row, g) in groups.enumerated() {
                let y = titleHeight + row * rowHeight
                image.draw(text: labels[row], at: gap, y + (tileH - BitmapFont.height * textScale) / 2, scale: textScale)
                let n = min(samples, g.frameCount)
                for k in 0..<n {
                    let frame = g.firstFrame + (k * g.frameCount) / n
                    let pixels = try naming(stream) { () throws(LichenError) in try file.framePixels(frame) }
                    image.draw(tile: pixels, side: file.width, rows: file.height, at: labelWidth + k * (tileW + gap), y, scale: scale)
                }
            }
            return image
        }
    }
}

/// A domain in JSON: name, severity (the largest for gradual domains, whose segments are listed
/// under severities), first frame and frame count.
func domainJSON(_ g: StreamDomainGroup) -> JSON {
    var pairs: [(String, JSON)] = [("name", .string(g.name)), ("severity", .int(g.severity))]
    if g.severities.count > 1 { pairs.append(("severities", .array(g.severities.map { .int($0) }))) }
    pairs.append(("first_frame", .int(g.firstFrame)))
    pairs.append(("frames", .int(g.frameCount)))
    return .object(pairs)
}
