import ArgumentParser
import Foundation
import Lichen
import LichenSim

/// `lichen skills list|add|remove --library DIR --base M.gguf`: the PSEC skill library
/// (Sources/Lichen/Skills/README.md): a folder of LoRA skills over one frozen base model.
struct SkillsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skills",
        abstract: "List, add and remove the LoRA skills of a skill library; show how composing them runs per layer.",
        discussion: """
            A library is a folder holding, per skill, NAME.lora.gguf (a LoRA adapter file) and NAME.skill.gguf \
            (its metadata: purpose, training data, rank, alpha, base identity, adapter hash, evaluation). Every \
            skill is validated against the base model when the library is opened; a skill's adapter file is \
            written once, by add, and never rewritten.
            """,
        subcommands: [List.self, Add.self, Remove.self, Compose.self, Simulate.self, Bench.self]
    )

    /// Options every skills subcommand takes.
    struct Library: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("The skill library folder.", valueName: "dir"))
        var library: String

        @Option(name: .long, help: ArgumentHelp("The base model every skill belongs to.", valueName: "model.gguf"))
        var base: String

        /// Opens the library (creating the folder when asked) over the base model.
        func open(create: Bool) throws -> SkillLibrary {
            let loaded = try LoadedModel(path: base, budgetBytes: 64 << 20 + 4 * SkillsCommand.fileSize(base), trainable: false)
            let baseName = try naming(base) { () throws(LichenError) in try loaded.file.string("general.name") }
            let identity = try naming(base) { () throws(LichenError) in try AdapterBase(name: baseName, store: loaded.store) }
            let graph = try naming(base) { () throws(LichenError) in
                try Graph(spec: loaded.spec, store: loaded.store, batchSize: 1, arena: loaded.arena)
            }
            return try naming(library) { () throws(LichenError) in
                try SkillLibrary(directory: library, graph: graph, base: identity, arena: loaded.arena, create: create)
            }
        }
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int) ?? 0
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the skills (name, rank, alpha, bytes, evaluation, purpose).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var library: Library
        func run() throws {
            let lib = try library.open(create: false)
            if global.json {
                print(JSON.object([("library", .string(library.library)), ("skills", .array(lib.skills.map(SkillsCommand.json)))]).rendered())
                return
            }
            var rows = [["name", "rank", "alpha", "bytes", "evaluation", "purpose"]]
            for s in lib.skills {
                let eval = s.evaluation.map { "\($0.metric) \($0.score)" } ?? "-"
                rows.append([s.name, String(s.rank), String(s.alpha), String(s.adapterByteCount), eval, s.purpose])
            }
            print(SkillsCommand.table(rows))
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a LoRA adapter file as a new skill (the file is copied into the library, validated against the base).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var library: Library
        @Argument(help: ArgumentHelp("The LoRA adapter file (GGUF) to add.", valueName: "adapter.gguf"))
        var adapter: String
        @Option(name: .long, help: ArgumentHelp("The skill's name: a-z, 0-9, '_', '-', at most 40 bytes.", valueName: "name"))
        var name: String
        @Option(name: .long, help: ArgumentHelp("What the skill does.", valueName: "text"))
        var purpose: String = ""
        @Option(name: .long, help: ArgumentHelp("What it was trained on.", valueName: "text"))
        var trainingData: String = ""
        @Option(name: .long, help: ArgumentHelp("A measured score, METRIC=VALUE (e.g. return=412.5).", valueName: "metric=value"))
        var evaluation: String?
        @Flag(name: .long, help: "Create the library folder if it does not exist.")
        var create = false

        func parsedEvaluation() throws -> SkillEvaluation? {
            guard let evaluation else { return nil }
            guard let eq = evaluation.lastIndex(of: "="), let v = Float(evaluation[evaluation.index(after: eq)...]), v.isFinite,
                  eq != evaluation.startIndex else {
                throw ValidationError("--evaluation must be METRIC=VALUE with a finite value, got '\(evaluation)'")
            }
            return SkillEvaluation(metric: String(evaluation[..<eq]), score: v)
        }

        func validate() throws { _ = try parsedEvaluation() }

        func run() throws {
            let lib = try library.open(create: create)
            let lora = try naming(adapter) { () throws(LichenError) in try AdapterFile.read(path: adapter, arena: lib.arena) }
            let m = try naming(adapter) { () throws(LichenError) in
                try lib.add(lora, name: name, purpose: purpose, trainingData: trainingData, evaluation: try? parsedEvaluation())
            }
            if global.json {
                print(SkillsCommand.json(m).rendered())
            } else {
                print("added skill \(m.name): rank \(m.rank), alpha \(m.alpha), \(m.adapterByteCount) bytes -> \(lib.adapterPath(m.name))")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a skill (its metadata and adapter files).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var library: Library
        @Argument(help: ArgumentHelp("The skill's name.", valueName: "name"))
        var name: String
        func run() throws {
            let lib = try library.open(create: false)
            try naming(library.library) { () throws(LichenError) in try lib.remove(name) }
            if global.json {
                print(JSON.object([("removed", .string(name)), ("skills", .int(lib.skills.count))]).rendered())
            } else {
                print("removed skill \(name); \(lib.skills.count) left")
            }
        }
    }

    struct Compose: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show, per adapted linear layer, how composing the skills runs: factored or merged, with the costs.",
            discussion: """
                W(s) = W0 + sum_i alpha_i(s) s_i B_i A_i in every adapted layer. Merging costs R * d_in * d_out \
                multiply-adds once per control step (R = sum of the skills' ranks on the layer); the factored path \
                costs R * (d_in + d_out) on every pass. With P passes sharing one state's alpha (N candidates x T \
                denoising steps), the layer merges when that is strictly cheaper.
                """)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var library: Library
        @Option(name: .long, help: ArgumentHelp("Passes that share one alpha (N candidates x T steps; 1 = a state per sample).", valueName: "P"))
        var passes: Int = 5

        func validate() throws {
            guard passes >= 1 && passes <= 1_000_000 else { throw ValidationError("--passes must be in 1...1000000") }
        }

        func run() throws {
            let lib = try library.open(create: false)
            let skills = try naming(library.library) { () throws(LichenError) in try lib.loadAll() }
            var rows = [["layer", "d_in", "d_out", "skills", "rank_sum", "merge", "factored", "path"]]
            var items: [JSON] = []
            for i in 0..<lib.graph.store.count {
                let p = lib.graph.store[i]
                guard p.role == .weight, p.value.shape.rank == 2 else { continue }
                var rankSum = 0, count = 0
                for s in skills { if let t = s.targetIndex(of: p.name) { rankSum += s.targets[t].rank; count += 1 } }
                guard count > 0 else { continue }
                let dOut = p.value.shape[0], dIn = p.value.shape[1]
                let cost = CompositionPath.skillCosts(rankSum: rankSum, inputCount: dIn, outputCount: dOut, passesPerMerge: passes)
                let path = CompositionPath.cheaper(rankSum: rankSum, inputCount: dIn, outputCount: dOut, passesPerMerge: passes)
                rows.append([p.name, String(dIn), String(dOut), String(count), String(rankSum), String(cost.merge), String(cost.factored), path.name])
                items.append(.object([("layer", .string(p.name)), ("d_in", .int(dIn)), ("d_out", .int(dOut)), ("skills", .int(count)),
                                      ("rank_sum", .int(rankSum)), ("merge_cost", .int(cost.merge)), ("factored_cost", .int(cost.factored)),
                                      ("path", .string(path.name))]))
            }
            if global.json {
                print(JSON.object([("passes", .int(passes)), ("layers", .array(items))]).rendered())
            } else {
                print(SkillsCommand.table(rows))
            }
        }
    }

    struct Simulate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a scripted expert in the 2-D point-robot simulator: episodes, return, cost, arrivals; an SVG plot.",
            discussion: """
                The point robot (LichenSim): state = position, velocity, goal offset and the two nearest hazard \
                offsets; action in [-1, 1]^2; reward = progress towards the goal (+1 on arrival); cost = 1 per step \
                inside a hazard disc. Experts: reach, avoid, heading (hold a heading), reach-avoid. Deterministic \
                from --seed.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: ArgumentHelp("reach, avoid, heading or reach-avoid.", valueName: "name"))
        var expert: String
        @Option(name: .long, help: ArgumentHelp("Transitions to record (whole episodes, at least this many).", valueName: "n"))
        var transitions: Int = 4000
        @Option(name: .long, help: ArgumentHelp("Standard deviation of the expert's action noise.", valueName: "sigma"))
        var noise: Double = 0.1
        @Option(name: .long, help: ArgumentHelp("Seed of worlds and noise.", valueName: "n"))
        var seed: UInt64 = 1
        @Option(name: .long, help: ArgumentHelp("Write a top-down SVG of the first 20 episodes here.", valueName: "path"))
        var svg: String?

        func validate() throws {
            guard Expert(rawValue: expert) != nil else {
                throw ValidationError("--expert must be one of \(Expert.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard transitions >= 1 && transitions <= 10_000_000 else { throw ValidationError("--transitions must be in 1...10000000") }
            guard noise.isFinite && noise >= 0 && noise <= 10 else { throw ValidationError("--noise must be in 0...10") }
        }

        func run() throws {
            guard let e = Expert(rawValue: expert) else { return }
            let d = PointDatasets.dataset(e, count: transitions, noise: noise, seed: seed)
            let episodes = d.episodes.count
            let meanReturn = d.episodes.reduce(0) { $0 + $1.totalReward } / Double(episodes)
            let meanCost = d.episodes.reduce(0) { $0 + $1.totalCost } / Double(episodes)
            let reached = d.episodes.filter(\.reached).count
            if let svg {
                do { try PointPlot.svg(Array(d.episodes.prefix(20))).write(toFile: svg, atomically: true, encoding: .utf8) } catch {
                    throw CommandFailure("\(svg): \(error)")
                }
            }
            if global.json {
                print(JSON.object([("expert", .string(e.rawValue)), ("seed", .int(Int(seed))), ("transitions", .int(d.transitions.count)),
                                   ("episodes", .int(episodes)), ("reached", .int(reached)), ("mean_return", .number(meanReturn)),
                                   ("mean_cost", .number(meanCost))]).rendered())
            } else {
                print("\(e.rawValue), seed \(seed): \(d.transitions.count) transitions in \(episodes) episodes; reached the goal in \(reached); "
                      + "mean return \(fixed(meanReturn, 3)), mean cost \(fixed(meanCost, 2)) steps in hazards")
            }
        }
    }

    static func json(_ s: SkillMetadata) -> JSON {
        var fields: [(String, JSON)] = [
            ("name", .string(s.name)), ("purpose", .string(s.purpose)), ("training_data", .string(s.trainingData)),
            ("rank", .int(s.rank)), ("alpha", floatJSON(s.alpha)), ("base", .string(s.base.name)),
            ("base_hash", .string(String(s.base.hash, radix: 16))), ("adapter_bytes", .int(s.adapterByteCount)),
            ("adapter_hash", .string(String(s.adapterHash, radix: 16))),
        ]
        if let e = s.evaluation { fields.append(("evaluation", .object([("metric", .string(e.metric)), ("score", floatJSON(e.score))]))) }
        return .object(fields)
    }

    /// Left-aligned columns separated by two spaces.
    static func table(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows.first?.count ?? 0)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
