import ArgumentParser
import Foundation
import Lichen
import LichenSim

extension SkillsCommand {
    /// `lichen skills bench`: PSEC against noise- and action-level composition, a fixed α, a new
    /// LoRA and a network from scratch, on a new task learned from a few demonstrations (issue 13 item 7).
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench",
            abstract: "The PSEC benchmark on the point robot: a skill library, a new task from a few demonstrations, six ways to learn it.",
            discussion: """
                Library (once per run, from --seed): the small diffusion policy (hidden 64, 2 blocks, T = 5) trained \
                by behaviour cloning (the denoising loss) on the mixed data of the reach, avoid and heading experts \
                (--transitions each); then one LoRA skill per behaviour (rank --rank, alpha 2 x rank) trained on its \
                expert's data over the frozen base.

                New task, per replicate (--seeds of them): "reach the goal while keeping clear of hazards", from \
                --demos demonstration episodes of the reach-avoid expert. Methods: psec (the context-aware alpha(s), \
                MLP 64-64, trained with the composed policy's denoising loss; skills mixed inside every layer), nsec \
                (the same module, trained and used on the mixed predicted noise), asec (the same module, trained on \
                and mixing the actions each skill samples), fixed-alpha (one alpha for every state from the grid \
                {0, 0.5, 1}^3, picked by the composed policy's denoising loss on the demonstrations), new-lora (a \
                new rank-r LoRA over the frozen base, trained on the demonstrations), scratch (the whole network \
                trained on the demonstrations from a fresh initialisation); with base (the library's pi0 alone) and \
                expert (the demonstrator itself) for reference. Each method drives --episodes worlds, the same \
                worlds and the same sampler noise for every method; one action sample per state (N = 1).

                Return = progress towards the goal (+1 on arrival); cost = steps inside a hazard. Mean and \
                standard deviation over replicates x episodes; seed std = the standard deviation of the \
                replicates' means. Training losses are the mean of the last tenth of the steps (fixed-alpha: the \
                grid's best loss; base: its loss on the demonstrations). Deterministic from --seed; \
                progress goes to stderr. Use the release build for the default sizes.
                """
        )

        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: ArgumentHelp("Seed of everything (data, weights, worlds, noise).", valueName: "n"))
        var seed: UInt64 = 1
        @Option(name: .long, help: ArgumentHelp("Replicates of the new task (demonstrations, training, evaluation worlds).", valueName: "n"))
        var seeds = 5
        @Option(name: .long, help: ArgumentHelp("Evaluation episodes per method and replicate.", valueName: "n"))
        var episodes = 20
        @Option(name: .long, help: ArgumentHelp("Demonstration episodes of the new task.", valueName: "n"))
        var demos = 10
        @Option(name: .long, help: ArgumentHelp("Transitions of each behaviour's dataset.", valueName: "n"))
        var transitions = 3000
        @Option(name: .long, help: ArgumentHelp("Training steps of the base policy.", valueName: "n"))
        var baseSteps = 3000
        @Option(name: .long, help: ArgumentHelp("Training steps of each skill.", valueName: "n"))
        var skillSteps = 1000
        @Option(name: .long, help: ArgumentHelp("Training steps of each alpha(s) module (psec, nsec, asec).", valueName: "n"))
        var alphaSteps = 1000
        @Option(name: .long, help: ArgumentHelp("Training steps of the new LoRA and of the network from scratch.", valueName: "n"))
        var taskSteps = 1000
        @Option(name: .long, help: ArgumentHelp("Minibatch size of every training.", valueName: "n"))
        var batch = 64
        @Option(name: .long, help: ArgumentHelp("LoRA rank of the skills and the new LoRA.", valueName: "r"))
        var rank = 8
        @Option(name: .long, help: ArgumentHelp("Adam learning rate (cosine decay) of every training.", valueName: "lr"))
        var learningRate: Float = 1e-3
        @Option(name: .long, help: ArgumentHelp("Steps of an evaluation episode at most.", valueName: "n"))
        var maxSteps = 200
        @Option(name: .long, help: ArgumentHelp("Write a top-down SVG of psec's episodes of the first replicate here.", valueName: "path"))
        var svg: String?

        func validate() throws {
            for (name, v, range) in [("--seeds", seeds, 1...1000), ("--episodes", episodes, 1...1000), ("--demos", demos, 1...10_000),
                                     ("--transitions", transitions, 1...1_000_000), ("--base-steps", baseSteps, 0...10_000_000),
                                     ("--skill-steps", skillSteps, 0...10_000_000), ("--alpha-steps", alphaSteps, 0...10_000_000),
                                     ("--task-steps", taskSteps, 0...10_000_000), ("--batch", batch, 1...4096), ("--rank", rank, 1...64),
                                     ("--max-steps", maxSteps, 1...100_000)] as [(String, Int, ClosedRange<Int>)] {
                guard range.contains(v) else { throw ValidationError("\(name) must be in \(range.lowerBound)...\(range.upperBound)") }
            }
            guard learningRate.isFinite && learningRate > 0 && learningRate <= 1 else { throw ValidationError("--learning-rate must be in (0, 1]") }
        }

        func run() throws {
            let settings = SkillsBenchmark.Settings(seed: seed, replicates: seeds, episodes: episodes, demos: demos, transitions: transitions,
                                                    baseSteps: baseSteps, skillSteps: skillSteps, alphaSteps: alphaSteps, taskSteps: taskSteps,
                                                    batch: batch, rank: rank, learningRate: learningRate, maximumSteps: maxSteps)
            let started = now()
            let bench = try SkillsBenchmark(settings: settings, progress: { log("skills bench: " + $0) })
            let out = try bench.run()
            log("skills bench: \(fixed(now() - started, 1)) s (\(CuesCommand.buildConfiguration) build)")
            if let svg {
                do { try PointPlot.svg(out.psecEpisodes).write(toFile: svg, atomically: true, encoding: .utf8) } catch {
                    throw CommandFailure("\(svg): \(error)")
                }
            }
            func stats(_ values: [[Double]]) -> (mean: Double, std: Double, seedStd: Double) {
                let all = values.flatMap { $0 }
                let mean = all.reduce(0, +) / Double(max(all.count, 1))
                let std = (all.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(all.count - 1, 1))).squareRoot()
                let means = values.map { $0.reduce(0, +) / Double(max($0.count, 1)) }
                let m = means.reduce(0, +) / Double(max(means.count, 1))
                let seedStd = means.count > 1 ? (means.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(means.count - 1)).squareRoot() : 0
                return (mean, std, seedStd)
            }
            func fraction(_ values: [[Bool]]) -> Double {
                let all = values.flatMap { $0 }
                return Double(all.filter { $0 }.count) / Double(max(all.count, 1))
            }
            if global.json {
                var methods: [JSON] = []
                for m in out.methods {
                    let r = stats(m.returns), c = stats(m.costs)
                    let finite = m.trainLosses.filter(\.isFinite)
                    let perSeed: [JSON] = (0..<m.returns.count).map { i in
                        .object([("return_mean", .number(stats([m.returns[i]]).mean)), ("cost_mean", .number(stats([m.costs[i]]).mean)),
                                 ("reached_fraction", .number(fraction([m.reached[i]]))),
                                 ("train_loss", m.trainLosses[i].isFinite ? JSON.number(m.trainLosses[i]) : JSON.null)])
                    }
                    methods.append(.object([
                        ("name", .string(m.name)), ("mix_level", .string(m.level)),
                        ("return_mean", .number(r.mean)), ("return_std", .number(r.std)), ("return_seed_std", .number(r.seedStd)),
                        ("cost_mean", .number(c.mean)), ("cost_std", .number(c.std)), ("cost_seed_std", .number(c.seedStd)),
                        ("reached_fraction", .number(fraction(m.reached))),
                        ("train_loss_mean", finite.isEmpty ? JSON.null : JSON.number(finite.reduce(0, +) / Double(finite.count))),
                        ("per_seed", .array(perSeed)),
                    ]))
                }
                let doc: JSON = .object([
                    ("command", .string("skills bench")), ("build", .string(CuesCommand.buildConfiguration)),
                    ("seed", .int(Int(seed))), ("seeds", .int(seeds)), ("episodes", .int(episodes)), ("demos", .int(demos)),
                    ("settings", .object([("transitions", .int(transitions)), ("base_steps", .int(baseSteps)), ("skill_steps", .int(skillSteps)),
                                          ("alpha_steps", .int(alphaSteps)), ("task_steps", .int(taskSteps)), ("batch", .int(batch)),
                                          ("rank", .int(rank)), ("lora_alpha", .int(2 * rank)), ("learning_rate", floatJSON(learningRate)),
                                          ("max_steps", .int(maxSteps)), ("demo_noise", .number(settings.demoNoise)), ("candidates", .int(1))])),
                    ("policy", .object([("size", .string("small")), ("state", .int(bench.shape.stateCount)), ("action", .int(bench.shape.actionCount)),
                                        ("hidden", .int(bench.shape.hidden)), ("blocks", .int(bench.shape.blockCount)),
                                        ("diffusion_steps", .int(bench.shape.stepCount)), ("alpha_hidden", .array([.int(64), .int(64)]))])),
                    ("library", .object([("base_loss", floatJSON(out.baseLoss)),
                                         ("skills", .array(out.skillLosses.map { JSON.object([("name", JSON.string($0.0)), ("train_loss", floatJSON($0.1))]) }))])),
                    ("fixed_alpha", .array(out.fixedAlphas.map { JSON.array($0.map(floatJSON)) })),
                    ("methods", .array(methods)),
                ])
                print(doc.rendered())
            } else {
                var table = Table(["method", "mix", "return", "± std", "seed std", "cost (steps)", "± std", "reached", "train loss"],
                                  rightAligned: Set(2...8))
                for m in out.methods {
                    let r = stats(m.returns), c = stats(m.costs)
                    let finite = m.trainLosses.filter(\.isFinite)
                    table.add([m.name, m.level, fixed(r.mean, 3), fixed(r.std, 3), fixed(r.seedStd, 3), fixed(c.mean, 2), fixed(c.std, 2),
                               fixed(100 * fraction(m.reached), 0) + "%",
                               finite.isEmpty ? "-" : fixed(finite.reduce(0, +) / Double(finite.count), 4)])
                }
                print(table.rendered())
                print("")
                print("\(seeds) replicate(s) x \(episodes) episode(s), \(demos) demonstration(s) each; library: base loss \(out.baseLoss), "
                      + out.skillLosses.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + "; fixed alpha per replicate: "
                      + out.fixedAlphas.map { "(" + $0.map { String($0) }.joined(separator: ", ") + ")" }.joined(separator: " ")
                      + "; \(CuesCommand.buildConfiguration) build")
            }
        }
    }
}
