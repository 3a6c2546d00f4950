import ArgumentParser
import Foundation
import Lichen

/// `lichen homeostasis run --learner lrh|lrr|constant --swaps N [--schedule ...] --epochs E --seeds S [--json] [--plot out.svg]`.
struct HomeostasisCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "homeostasis",
        abstract: "Homeostatic learners under concept shift (learning rate as a regulated internal state).",
        subcommands: [Run.self]
    )

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run the homeostatic-learner protocol on Fashion-MNIST: LRH, LRR or a constant learning rate.",
            discussion: """
                The paper's network and protocol (Man, Damasio, Neven 2022; the authors' lrh.py): an MLP \
                784-80-60-10 with ELU, softmax cross-entropy, weights N(0, 2/fan_in) and biases N(0, 1) drawn \
                from the seed, inputs pixel/255, plain SGD w <- w - (eta/m) sum of the minibatch's gradients, \
                minibatch m, the training set reshuffled every epoch. LRH: every --interval samples after \
                --memory samples, two trial updates with the partial minibatch gradient, "leave it" (eta) and \
                "take it" (eta moved by the effect of the predicted class), are scored on the last --memory \
                samples; if "take it" scores strictly better, eta moves by the effect of the true label \
                (+step for --excitatory classes, -step for the others, floored at 1e-8). LRR: every \
                --interval samples, with probability 1/2, the true label's effect. constant: eta stays --lr.

                Concept shift: --swaps times per epoch, evenly spaced (checked after each minibatch, as in \
                lrh.py), two random classes swap labels in the training and test sets alike (and in what \
                the learner remembers). --schedule gives a rate per block of --block-epochs epochs (second-order \
                shift; the schedule repeats when --epochs is longer).

                Per epoch: online training accuracy (each sample predicted before its update), test accuracy \
                under the current labels, eta (end, min, max, mean over minibatches), decisions taken, and the \
                seconds of the training pass and of the test pass. The summary is the mean of the last 5 \
                epochs (fewer if the run is shorter) per seed, then the mean and spread over seeds. Progress \
                goes to stderr.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Learning-rate policy: lrh, lrr or constant; a comma-separated list (e.g. lrh,lrr,constant) runs each in turn in one process (one JSON document with a \"learners\" array; plots get a -NAME suffix).", valueName: "name"))
        var learner: String

        @Option(name: .long, help: ArgumentHelp("Initial (for constant: the) learning rate eta0.", valueName: "rate"))
        var lr: Double = 1e-3

        @Option(name: .long, help: ArgumentHelp("Label swaps per epoch (ignored with --schedule).", valueName: "n"))
        var swaps: Int = 0

        @Option(name: .long, help: ArgumentHelp("Swaps per epoch for successive blocks of epochs, comma-separated (e.g. 0,100,1,100).", valueName: "list"))
        var schedule: String?

        @Option(name: .customLong("block-epochs"), help: ArgumentHelp("Epochs per --schedule block (default 5).", valueName: "n"))
        var blockEpochs: Int = 5

        @Option(name: .customLong("epochs"), help: ArgumentHelp("Epochs per seed (default 20; with --schedule: one pass over the schedule).", valueName: "n"))
        var epochsOption: Int?

        @Option(name: .long, help: ArgumentHelp("Number of seeds (runs), from --seed up.", valueName: "n"))
        var seeds: Int = 1

        @Option(name: .long, help: ArgumentHelp("First seed (initialisation, shuffles, swaps, LRR's coin).", valueName: "seed"))
        var seed: UInt64 = 1

        @Option(name: .long, help: ArgumentHelp("Effect size Delta (eta moves by +-Delta).", valueName: "delta"))
        var step: Double = 1e-4

        @Option(name: .long, help: ArgumentHelp("Samples per minibatch update.", valueName: "m"))
        var minibatch: Int = 10

        @Option(name: .long, help: ArgumentHelp("Samples between decisions.", valueName: "n"))
        var interval: Int = 10

        @Option(name: .long, help: ArgumentHelp("Recent samples LRH scores its trials on.", valueName: "n"))
        var memory: Int = 20

        @Option(name: .long, help: ArgumentHelp("Excitatory classes (+Delta), comma-separated; the others are inhibitory (-Delta). \"none\" for none.", valueName: "list"))
        var excitatory: String = "5,6,7,8,9"

        @Option(name: .customLong("data-directory"), help: ArgumentHelp("Folder holding the Fashion-MNIST IDX .gz files.", valueName: "path"))
        var dataDirectory: String = FashionMNIST.defaultDirectory

        @Option(name: .long, help: ArgumentHelp("Training examples per epoch (a shuffled subset; default: all 60,000).", valueName: "n"))
        var limit: Int?

        @Option(name: .customLong("test-limit"), help: ArgumentHelp("Test images evaluated after each epoch (the first n; default: all 10,000).", valueName: "n"))
        var testLimit: Int?

        @Option(name: .long, help: ArgumentHelp("Write an SVG plot of accuracy and eta over time, with the label swaps marked.", valueName: "path"))
        var plot: String?

        @Option(name: .long, help: ArgumentHelp("Memory budget, in MiB.", valueName: "MiB"))
        var budget: Int = 256

        var epochs: Int { epochsOption ?? (scheduleRates.map { $0.count * blockEpochs } ?? 20) }

        var scheduleRates: [Int]? {
            guard let schedule else { return nil }
            return schedule.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        }

        var excitatoryClasses: [Int]? {
            if excitatory == "none" || excitatory.isEmpty { return [] }
            var out: [Int] = []
            for part in excitatory.split(separator: ",") {
                guard let c = Int(part.trimmingCharacters(in: .whitespaces)), c >= 0, c < 10 else { return nil }
                out.append(c)
            }
            return out
        }

        func validate() throws {
            guard policies != nil else {
                throw ValidationError("--learner must be lrh, lrr or constant, or a comma-separated list of them without repeats (got '\(learner)')")
            }
            guard lr.isFinite && lr >= 0 else { throw ValidationError("--lr must be finite and >= 0") }
            guard step.isFinite && step >= 0 else { throw ValidationError("--step must be finite and >= 0") }
            guard epochs >= 1 && epochs <= 10_000 else { throw ValidationError("--epochs must be in 1...10000") }
            guard seeds >= 1 && seeds <= 1000 else { throw ValidationError("--seeds must be in 1...1000") }
            guard minibatch >= 1 && minibatch <= 10_000 else { throw ValidationError("--minibatch must be in 1...10000") }
            guard interval >= 1 else { throw ValidationError("--interval must be >= 1") }
            guard memory >= 1 && memory <= 10_000 else { throw ValidationError("--memory must be in 1...10000") }
            guard blockEpochs >= 1 else { throw ValidationError("--block-epochs must be >= 1") }
            guard budget >= 16 else { throw ValidationError("--budget must be >= 16 MiB") }
            guard excitatoryClasses != nil else { throw ValidationError("--excitatory must list classes in 0...9, comma-separated, or none") }
            let n = limit ?? 60_000
            guard n >= minibatch && n <= 60_000 else { throw ValidationError("--limit must be in \(minibatch)...60000 (at least one minibatch)") }
            if let testLimit { guard testLimit >= 1 && testLimit <= 10_000 else { throw ValidationError("--test-limit must be in 1...10000") } }
            if let schedule {
                let parts = schedule.split(separator: ",", omittingEmptySubsequences: false)
                guard let rates = scheduleRates, !parts.isEmpty, rates.count == parts.count else {
                    throw ValidationError("--schedule must be swaps per epoch, comma-separated integers (e.g. 0,100,1,100)")
                }
                for r in rates where r < 0 || r > n { throw ValidationError("--schedule rates must be in 0...\(n) (the examples per epoch)") }
            } else {
                guard swaps >= 0 && swaps <= n else { throw ValidationError("--swaps must be in 0...\(n) (the examples per epoch)") }
            }
        }

        var canonicalCommand: String {
            var parts = ["lichen homeostasis run --learner \(learner) --lr \(lr)"]
            if let schedule { parts.append("--schedule \(schedule) --block-epochs \(blockEpochs)") } else { parts.append("--swaps \(swaps)") }
            parts.append("--epochs \(epochs) --seeds \(seeds) --seed \(seed) --step \(step) --minibatch \(minibatch) --interval \(interval) --memory \(memory) --excitatory \(excitatory)")
            if let limit { parts.append("--limit \(limit)") }
            if let testLimit { parts.append("--test-limit \(testLimit)") }
            return parts.joined(separator: " ")
        }

        /// The policies of `--learner` (one, or a comma-separated list run one after the other).
        var policies: [LearningRatePolicy]? {
            var out: [LearningRatePolicy] = []
            for part in learner.split(separator: ",", omittingEmptySubsequences: false) {
                guard let p = LearningRatePolicy(name: part.trimmingCharacters(in: .whitespaces)), !out.contains(p) else { return nil }
                out.append(p)
            }
            return out.isEmpty ? nil : out
        }

        mutating func run() throws {
            let policies = self.policies ?? [.constant]
            let excite = Set(excitatoryClasses ?? [])
            let effects = (0..<10).map { excite.contains($0) ? ClassEffect.excitatory : ClassEffect.inhibitory }
            var rates: [Int] = []
            for e in 0..<epochs {
                if let s = scheduleRates { rates.append(s[(e / blockEpochs) % s.count]) } else { rates.append(swaps) }
            }
            let arena = try naming("arena") { () throws(LichenError) in try Arena(byteCount: budget << 20) }
            log("homeostasis: loading Fashion-MNIST from \(dataDirectory)")
            let train = try naming(dataDirectory) { () throws(LichenError) in try FashionMNIST.load(.train, directory: dataDirectory, arena: arena) }
            let test = try naming(dataDirectory) { () throws(LichenError) in try FashionMNIST.load(.test, directory: dataDirectory, arena: arena) }
            let trainExamples = limit ?? train.count
            let batches = trainExamples / minibatch
            var documents: [JSON] = []
            var speeds: [(String, Summary)] = []
            for policy in policies {
                let configuration = HomeostasisConfiguration(policy: policy, initialLearningRate: lr, step: step, minibatch: minibatch,
                                                             interval: interval, memory: memory, effects: effects)
                try naming("configuration") { () throws(LichenError) in try configuration.validate() }
                let settings = HomeostasisExperiment.Settings(
                    configuration: configuration, swapsPerEpoch: rates, trainExamples: trainExamples,
                    testExamples: testLimit ?? test.count, traceEvery: max(1, batches / 200))
                let experiment = HomeostasisExperiment(settings: settings, train: train, test: test, arena: arena)
                log("homeostasis: \(policy.name), eta0 \(lr), step \(step), minibatch \(minibatch), interval \(interval), memory \(memory), "
                    + "swaps per epoch \(schedule.map { "schedule \($0) x \(blockEpochs) epochs" } ?? String(swaps)), \(epochs) epochs x \(seeds) seeds, "
                    + "\(batches * minibatch) training examples per epoch")
                var runs: [HomeostasisExperiment.Run] = []
                for s in 0..<seeds {
                    runs.append(try experiment.run(seed: seed + UInt64(s), progress: stderrIsTerminal || global.verbose, log: { log($0) }))
                }
                let summary = Summary(runs: runs)
                speeds.append((policy.name, summary))
                if let plot { try writePlot(runs, to: policies.count == 1 ? plot : Self.suffixed(plot, policy.name), policy: policy) }
                if global.json {
                    documents.append(document(runs, summary: summary, settings: settings, policy: policy))
                } else {
                    if policies.count > 1 { print("== \(policy.name) ==") }
                    printTable(runs, summary: summary)
                }
            }
            if global.json {
                if documents.count == 1 {
                    print(documents[0].rendered())
                } else {
                    print(JSON.object([
                        ("command", .string(canonicalCommand)),
                        ("learners", .array(documents)),
                        ("train_seconds_per_epoch", .object(speeds.map { ($0.0, .number($0.1.trainSeconds.mean)) })),
                    ]).rendered())
                }
            } else if policies.count > 1 {
                print("training pass, seconds per epoch (mean over epochs and seeds, \(buildConfiguration) build, 1 thread): "
                    + speeds.map { "\($0.0) \(fixed($0.1.trainSeconds.mean, 2))" }.joined(separator: ", "))
            }
        }

        /// "out.svg" -> "out-lrh.svg".
        static func suffixed(_ path: String, _ name: String) -> String {
            if path.hasSuffix(".svg") { return String(path.dropLast(4)) + "-" + name + ".svg" }
            return path + "-" + name
        }

        // MARK: - Summary

        struct Summary {
            /// Epochs averaged per seed (the last 5, or all of a shorter run).
            var lastEpochs: Int
            var train: Spread
            var test: Spread
            var rateEnd: Spread
            /// Training-pass seconds per epoch over every epoch of every seed, and per 60,000 samples.
            var trainSeconds: Spread
            var testSeconds: Spread

            init(runs: [HomeostasisExperiment.Run]) {
                let count = runs.first?.epochs.count ?? 0
                let last = min(5, count)
                lastEpochs = last
                func tail(_ r: HomeostasisExperiment.Run, _ f: (HomeostasisExperiment.Epoch) -> Double) -> Double {
                    let t = r.epochs.suffix(last)
                    return t.map(f).reduce(0, +) / Double(max(t.count, 1))
                }
                train = Spread(runs.map { tail($0, \.trainAccuracy) })
                test = Spread(runs.map { tail($0, \.testAccuracy) })
                rateEnd = Spread(runs.map { $0.epochs.last?.rateEnd ?? 0 })
                trainSeconds = Spread(runs.flatMap { $0.epochs.map(\.trainSeconds) })
                testSeconds = Spread(runs.flatMap { $0.epochs.map(\.testSeconds) })
            }
        }

        /// Mean, sample standard deviation (0 for one value), min and max.
        struct Spread {
            var mean = 0.0, std = 0.0, min = 0.0, max = 0.0, count = 0
            init(_ v: [Double]) {
                count = v.count
                guard !v.isEmpty else { return }
                mean = v.reduce(0, +) / Double(v.count)
                std = v.count > 1 ? (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : 0
                min = v.min() ?? 0
                max = v.max() ?? 0
            }
            var json: JSON { .object([("mean", .number(mean)), ("std", .number(std)), ("min", .number(min)), ("max", .number(max)), ("n", .int(count))]) }
        }

        // MARK: - Output

        func document(_ runs: [HomeostasisExperiment.Run], summary: Summary, settings: HomeostasisExperiment.Settings,
                      policy: LearningRatePolicy) -> JSON {
            let c = settings.configuration
            return .object([
                ("command", .string(canonicalCommand)),
                ("learner", .string(policy.name)),
                ("initial_learning_rate", .number(c.initialLearningRate)),
                ("step", .number(c.step)),
                ("floor", .number(c.floor)),
                ("minibatch", .int(c.minibatch)),
                ("interval", .int(c.interval)),
                ("memory", .int(c.memory)),
                ("effects", .array(c.effects.map { .int(Int($0.rawValue)) })),
                ("swaps_per_epoch", .array(settings.swapsPerEpoch.map { .int($0) })),
                ("schedule", schedule.map { .string($0) } ?? .null),
                ("block_epochs", schedule == nil ? .null : .int(blockEpochs)),
                ("epochs", .int(settings.swapsPerEpoch.count)),
                ("data_directory", .string(dataDirectory)),
                ("train_examples_per_epoch", .int((settings.trainExamples / c.minibatch) * c.minibatch)),
                ("test_examples", .int(settings.testExamples)),
                ("threads", .int(1)),
                ("build", .string(buildConfiguration)),
                ("runs", .array(runs.map { run in
                    .object([
                        ("seed", .int(Int(truncatingIfNeeded: run.seed))),
                        ("learner_arena_bytes", .int(run.arenaBytes)),
                        ("epochs", .array(run.epochs.map { e in
                            .object([("epoch", .int(e.epoch)), ("swaps_per_epoch", .int(e.swapRate)), ("swaps", .int(e.swaps)),
                                     ("train_accuracy", .number(e.trainAccuracy)), ("test_accuracy", .number(e.testAccuracy)),
                                     ("rate_end", .number(e.rateEnd)), ("rate_min", .number(e.rateMin)), ("rate_max", .number(e.rateMax)),
                                     ("rate_mean", .number(e.rateMean)), ("decisions", .int(e.decisions)), ("taken", .int(e.taken)),
                                     ("train_seconds", .number(e.trainSeconds)), ("test_seconds", .number(e.testSeconds))])
                        })),
                        ("swap_events", .array(run.swapEvents.map { .array([.int($0.epoch), .int($0.sample), .int($0.a), .int($0.b)]) })),
                        ("swap_event_fields", .array([.string("epoch"), .string("sample"), .string("a"), .string("b")])),
                        ("rate_trace", .array(run.rateTrace.map { .array([.number($0.0), .number($0.1)]) })),
                        ("rate_trace_fields", .array([.string("epochs"), .string("rate")])),
                    ])
                })),
                ("summary", .object([
                    ("last_epochs", .int(summary.lastEpochs)),
                    ("train_accuracy", summary.train.json),
                    ("test_accuracy", summary.test.json),
                    ("rate_end", summary.rateEnd.json),
                    ("train_seconds_per_epoch", summary.trainSeconds.json),
                    ("test_seconds_per_epoch", summary.testSeconds.json),
                ])),
            ])
        }

        func printTable(_ runs: [HomeostasisExperiment.Run], summary: Summary) {
            var table = Table(["epoch", "swaps", "online train acc (%)", "test acc (%)", "eta end", "eta min", "eta max", "taken/decisions", "train (s)", "test (s)"],
                              rightAligned: Set(0..<10))
            let count = runs.first?.epochs.count ?? 0
            for e in 0..<count {
                let rows = runs.map { $0.epochs[e] }
                func mean(_ f: (HomeostasisExperiment.Epoch) -> Double) -> Double { rows.map(f).reduce(0, +) / Double(rows.count) }
                table.add([String(e + 1), String(rows[0].swaps), fixed(100 * mean(\.trainAccuracy), 2), fixed(100 * mean(\.testAccuracy), 2),
                           String(format: "%.3e", mean(\.rateEnd)), String(format: "%.2e", rows.map(\.rateMin).min() ?? 0),
                           String(format: "%.2e", rows.map(\.rateMax).max() ?? 0),
                           "\(rows.map(\.taken).reduce(0, +))/\(rows.map(\.decisions).reduce(0, +))",
                           fixed(mean(\.trainSeconds), 2), fixed(mean(\.testSeconds), 2)])
            }
            if runs.count > 1 { print("(means over \(runs.count) seeds; taken/decisions summed)") }
            print(table.rendered())
            print("last \(summary.lastEpochs) epochs, over \(runs.count) seed(s): online train accuracy \(fixed(100 * summary.train.mean, 2)) "
                + "± \(fixed(100 * summary.train.std, 2)) %, test accuracy \(fixed(100 * summary.test.mean, 2)) ± \(fixed(100 * summary.test.std, 2)) %; "
                + "training pass \(fixed(summary.trainSeconds.mean, 2)) s per epoch (\(buildConfiguration) build, 1 thread)")
        }

        var buildConfiguration: String {
            #if DEBUG
            return "debug"
            #else
            return "release"
            #endif
        }

        func writePlot(_ runs: [HomeostasisExperiment.Run], to path: String, policy: LearningRatePolicy) throws {
            let count = runs.first?.epochs.count ?? 0
            func meanSeries(_ f: (HomeostasisExperiment.Epoch) -> Double) -> [(Double, Double)] {
                var out: [(Double, Double)] = []
                for e in 0..<count {
                    var sum = 0.0
                    for r in runs { sum += f(r.epochs[e]) }
                    out.append((Double(e + 1), 100 * sum / Double(runs.count)))
                }
                return out
            }
            let seedNote = runs.count > 1 ? " (mean of \(runs.count) seeds)" : ""
            let perEpoch = Double(max(1, limit ?? 60_000))
            var events: [Double] = []
            for event in runs.first?.swapEvents ?? [] { events.append(Double(event.epoch - 1) + Double(event.sample) / perEpoch) }
            let chart = TimeSeriesPlot(
                title: "\(policy.name), eta0 \(lr), \(schedule.map { "schedule \($0) x \(blockEpochs) epochs" } ?? "\(swaps) swaps per epoch")",
                xLabel: "epoch", upperLabel: "accuracy (%)", lowerLabel: "learning rate eta",
                upper: [("online train accuracy" + seedNote, meanSeries(\.trainAccuracy)), ("test accuracy" + seedNote, meanSeries(\.testAccuracy))],
                lower: runs.map { ("eta, seed \($0.seed)", $0.rateTrace) },
                events: events, xMax: Double(count))
            do {
                try chart.svg().write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw CommandFailure("\(path): cannot write the plot: \(error.localizedDescription)")
            }
            log("homeostasis: wrote \(path)")
        }
    }
}
