import ArgumentParser
import Foundation
import Lichen
import LichenCueSim

/// `lichen cues sim|bench|show`: persistent self-supervised cue switching (stereo teaches mono)
/// in the simulator, the cue learner's speed, and plots of one run.
struct CuesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cues",
        abstract: "Persistent self-supervised cue learning (a trusted cue teaches a complementary one; a switch picks who drives).",
        subcommands: [Sim.self, Bench.self, Show.self]
    )

    static var buildConfiguration: String {
        #if DEBUG
        return "debug"
        #else
        return "release"
        #endif
    }

    /// Phase lengths and seeds shared by `sim` and `show`.
    struct SimOptions: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("Seconds of stereo flight while learning (phase 1).", valueName: "s"))
        var learnSeconds = 300.0
        @Option(name: .long, help: ArgumentHelp("Seconds of mono flight with stereo training wheels (B, C).", valueName: "s"))
        var wheelsSeconds = 300.0
        @Option(name: .long, help: ArgumentHelp("Seconds of the pure-mono test (A, B, C).", valueName: "s"))
        var testSeconds = 300.0
        @Option(name: .long, help: ArgumentHelp("Seconds flown after the stereo failure (D).", valueName: "s"))
        var failureSeconds = 300.0
        @Option(name: .long, help: ArgumentHelp("The mono regressor: knn (k 5) or network (21-16-1, ELU, SGD 0.05 per sample).", valueName: "name"))
        var regressor = "knn"
        @Option(name: .long, help: ArgumentHelp("Largest random extra heading after an avoidance manoeuvre, degrees (0: none; the drone then settles into one closed loop).", valueName: "deg"))
        var extraHeading = 45.0
        @Option(name: .long, help: ArgumentHelp("Yaw rate of the 45° avoidance steps, degrees per second (0: a whole step within one 0.2 s frame).", valueName: "deg/s"))
        var yawRate = 90.0
        @Option(name: .long, help: ArgumentHelp("Step back to the previous waypoint after this many 45° steps at one spot with the decision still on (8: a full turn; 0: never, the drone yaws in place).", valueName: "steps"))
        var stepBackSteps = 8

        func settings() throws -> SimSettings {
            for (name, v) in [("--learn-seconds", learnSeconds), ("--wheels-seconds", wheelsSeconds), ("--test-seconds", testSeconds),
                              ("--failure-seconds", failureSeconds)] where !(v.isFinite && v >= 60 && v <= 86_400) {
                throw ValidationError("\(name) must be in 60...86400 (the metrics read a first and a last minute)")
            }
            guard extraHeading.isFinite && extraHeading >= 0 && extraHeading <= 360 else {
                throw ValidationError("--extra-heading must be in 0...360")
            }
            var s = SimSettings()
            s.randomExtraHeading = extraHeading * Double.pi / 180
            guard yawRate.isFinite && yawRate >= 0 && yawRate <= 3600 else { throw ValidationError("--yaw-rate must be in 0...3600") }
            s.yawRate = yawRate * Double.pi / 180
            guard (0...64).contains(stepBackSteps) else { throw ValidationError("--step-back-steps must be in 0...64") }
            s.stepBackAfterSteps = stepBackSteps
            switch regressor {
            case "knn": s.regressor = .nearestNeighbours
            case "network": s.regressor = .network(hidden: 16, learningRate: 0.05, seed: 1)
            default: throw ValidationError("--regressor must be knn or network")
            }
            s.learnSeconds = learnSeconds
            s.wheelsSeconds = wheelsSeconds
            s.testSeconds = testSeconds
            s.failureSeconds = failureSeconds
            return s
        }
    }

    static func parseProtocols(_ text: String) throws -> [CueProtocol] {
        if text == "all" { return CueProtocol.allCases }
        return try text.split(separator: ",").map { name in
            guard let p = CueProtocol(rawValue: String(name)) else {
                throw ValidationError("unknown protocol '\(name)' (A, B, C, D-ssl, D-stereo, or all)")
            }
            return p
        }
    }

    // MARK: - sim

    struct Sim: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sim",
            abstract: "Fly the persistent-SSL protocols over seeds x rooms and print one table row per protocol.",
            discussion: """
                The simulator (research/methods.md 3.4): a 5 x 5 m room with 3-6 box and cylinder obstacles (one in five \
                textureless), a drone at 0.5 m/s (unicycle, 5 Hz) that stops and yaws in 45-degree steps (90 deg/s, \
                --yaw-rate) while its driving cue reports an obstacle, then one more 45 degrees plus a random extra heading \
                (0-45 degrees, --extra-heading); after a full turn at one spot with the obstacle decision still on it flies \
                backwards to the previous waypoint (leg starts and every 1.5 m along a leg; --step-back-steps, 0: never) \
                and yaws on from there. Stereo: mean disparity of 64 ray-cast columns \
                (16 px at 1 m, noise 0.5 px, textureless columns invalid, frames under 10 % valid dropped). Mono: a 64x48 \
                rendered image, the 21-D texton feature (dictionary learned on the first 100 frames). The cue learner: kNN \
                k = 5, buffer 2435, retrain every 200 samples, smoothing 5; tau_gt 14 px, tau_safe 24 px.

                Protocols: A learn on stereo, then pure mono; B learn, then mono with stereo training wheels while \
                learning, then pure mono; C as B without learning in the middle; D-ssl gated switching while learning, \
                stereo fails; D-stereo stereo flight, stereo fails (the drone must stop). Each (protocol, seed, room) is \
                one run; room r uses room seed r + 1, run seed s uses --seed + s.

                Columns (mean +/- sample std over runs): collisions per minute, mean free-flight time and metres flown \
                forward per minute in the pure-mono test (D: after the failure; a drone that only turns in place has \
                no collisions and no distance), training-wheel interventions in the first and last minute of phase 2, the \
                mono estimate's AUC and MSE against stereo on the test phase's frames (mono-policy data), and for D the \
                seconds flown after the failure. Progress goes to stderr.
                """
        )

        @OptionGroup var global: GlobalOptions
        @OptionGroup var sim: SimOptions

        @Option(name: .long, help: ArgumentHelp("Protocols to fly: A,B,C,D-ssl,D-stereo or all.", valueName: "list"))
        var protocols = "all"
        @Option(name: .long, help: ArgumentHelp("Run seeds per room.", valueName: "n"))
        var seeds = 10
        @Option(name: .long, help: ArgumentHelp("Rooms.", valueName: "n"))
        var rooms = 3
        @Option(name: .long, help: ArgumentHelp("First run seed.", valueName: "n"))
        var seed: UInt64 = 1

        func validate() throws {
            guard (1...100).contains(seeds) else { throw ValidationError("--seeds must be in 1...100") }
            guard (1...100).contains(rooms) else { throw ValidationError("--rooms must be in 1...100") }
        }

        mutating func run() throws {
            let settings = try sim.settings()
            let list = try CuesCommand.parseProtocols(protocols)
            var summaries: [ProtocolSummary] = []
            let started = Date()
            for p in list {
                var runs: [FlightRun] = []
                for r in 0..<rooms {
                    for s in 0..<seeds {
                        let run = try naming("protocol \(p.rawValue)") { () throws(LichenError) in
                            try Flight.run(p, roomSeed: UInt64(r + 1), seed: seed + UInt64(s), settings: settings)
                        }
                        runs.append(run)
                        if global.verbose {
                            let last = run.phases[run.phases.count - 1]
                            log("cues sim: \(p.rawValue) room \(r + 1) seed \(seed + UInt64(s)): \(last.name) collisions \(last.collisions), "
                                + "flown \(fixed(last.secondsFlown, 1)) s, retrains \(run.retrains)")
                        }
                    }
                }
                summaries.append(ProtocolSummary(p, runs: runs, decisionThreshold: settings.decisionThreshold))
                log("cues sim: protocol \(p.rawValue) done (\(runs.count) runs, \(fixed(Date().timeIntervalSince(started), 1)) s so far)")
            }
            if global.json {
                print(JSON.object([
                    ("command", .string("cues sim")), ("regressor", .string(sim.regressor)),
                    ("seeds", .int(seeds)), ("rooms", .int(rooms)), ("first_seed", .int(Int(seed))),
                    ("learn_seconds", .number(settings.learnSeconds)), ("wheels_seconds", .number(settings.wheelsSeconds)),
                    ("test_seconds", .number(settings.testSeconds)), ("failure_seconds", .number(settings.failureSeconds)),
                    ("extra_heading_degrees", .number(sim.extraHeading)), ("yaw_rate_degrees_per_second", .number(sim.yawRate)),
                    ("step_back_steps", .int(sim.stepBackSteps)),
                    ("protocols", .array(summaries.map(Self.json))),
                ]).rendered())
            } else {
                print("runs per protocol: \(seeds) seeds x \(rooms) rooms; mean +/- std over runs")
                print(pad("protocol", 9) + pad("coll/min", 14) + pad("free s", 16) + pad("m/min", 14) + pad("interv 1st min", 16)
                      + pad("interv last min", 16) + pad("mono AUC", 16) + pad("mono MSE", 16) + "flown after failure s")
                for s in summaries {
                    print(pad(s.cueProtocol.rawValue, 9) + pad(show(s.collisionsPerMinute, 2), 14) + pad(show(s.meanFreeFlightSeconds, 1), 16)
                          + pad(show(s.metresPerMinute, 1), 14)
                          + pad(show(s.interventionsFirstMinute, 1), 16) + pad(show(s.interventionsLastMinute, 1), 16)
                          + pad(show(s.monoArea, 3), 16) + pad(show(s.monoMeanSquaredError, 1), 16) + show(s.secondsFlownAfterFailure, 1))
                }
            }
        }

        func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }

        func show(_ s: Spread, _ digits: Int) -> String {
            s.count == 0 ? "-" : fixed(s.mean, digits) + " +/- " + fixed(s.std, digits)
        }

        static func json(_ s: ProtocolSummary) -> JSON {
            func spread(_ x: Spread) -> JSON {
                x.count == 0 ? .null : .object([("mean", .number(x.mean)), ("std", .number(x.std)), ("min", .number(x.min)),
                                                ("max", .number(x.max)), ("n", .int(x.count))])
            }
            return .object([
                ("protocol", .string(s.cueProtocol.rawValue)), ("runs", .int(s.runs)),
                ("collisions_per_minute", spread(s.collisionsPerMinute)), ("mean_free_flight_seconds", spread(s.meanFreeFlightSeconds)),
                ("metres_per_minute", spread(s.metresPerMinute)), ("step_backs_per_minute", spread(s.stepBacksPerMinute)),
                ("interventions_first_minute", spread(s.interventionsFirstMinute)),
                ("interventions_last_minute", spread(s.interventionsLastMinute)),
                ("mono_auc", spread(s.monoArea)), ("mono_mse", spread(s.monoMeanSquaredError)),
                ("seconds_flown_after_failure", spread(s.secondsFlownAfterFailure)),
            ])
        }
    }

    // MARK: - show

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Fly one run and write its top-down plot (trajectory, obstacles, collisions, who drove) and its ROC curves as SVG.",
            discussion: """
                The ROC curves are the mono estimate against stereo (positive = mean disparity > tau_gt) on each phase's \
                frames with a valid stereo frame and a mono estimate.
                """
        )

        @OptionGroup var global: GlobalOptions
        @OptionGroup var sim: SimOptions
        @Option(name: .long, help: ArgumentHelp("Protocol: A, B, C, D-ssl or D-stereo.", valueName: "name"))
        var `protocol` = "B"
        @Option(name: .long, help: ArgumentHelp("Room seed.", valueName: "n"))
        var room: UInt64 = 1
        @Option(name: .long, help: ArgumentHelp("Run seed.", valueName: "n"))
        var seed: UInt64 = 1
        @Option(name: .long, help: ArgumentHelp("Top-down plot to write.", valueName: "path"))
        var plot = "cues-run.svg"
        @Option(name: .long, help: ArgumentHelp("ROC plot to write.", valueName: "path"))
        var roc = "cues-roc.svg"

        mutating func run() throws {
            let settings = try sim.settings()
            guard let p = CueProtocol(rawValue: `protocol`) else { throw ValidationError("unknown protocol '\(`protocol`)'") }
            let run = try naming("protocol \(p.rawValue)") { () throws(LichenError) in
                try Flight.run(p, roomSeed: room, seed: seed, settings: settings, record: true)
            }
            let title = "protocol \(p.rawValue), room \(room), seed \(seed): " + run.phases.map { "\($0.name) \($0.collisions) collisions" }.joined(separator: ", ")
            let curves = run.phases.map { ($0.name, HostROC.curve($0.pairs, decisionThreshold: settings.decisionThreshold)) }
            do {
                try CuePlots.topDown(run, title: title).write(toFile: plot, atomically: true, encoding: .utf8)
                try CuePlots.roc(curves, title: "mono estimate vs stereo, protocol \(p.rawValue)").write(toFile: roc, atomically: true, encoding: .utf8)
            } catch {
                throw CommandFailure("cannot write the plots: \(error.localizedDescription)")
            }
            let phases: [JSON] = run.phases.map { ph in
                .object([
                    ("phase", .string(ph.name)), ("seconds", .number(ph.seconds)), ("collisions", .int(ph.collisions)),
                    ("seconds_flown", .number(ph.secondsFlown)), ("interventions", .int(ph.interventions)),
                    ("metres_forward", .number(ph.metresForward)), ("ticks_turning", .int(ph.ticksTurning)),
                    ("step_backs", .int(ph.stepBacks)), ("metres_back", .number(ph.metresBack)),
                    ("ticks_stereo", .int(ph.ticksByDriver[1])), ("ticks_mono", .int(ph.ticksByDriver[2])), ("ticks_none", .int(ph.ticksByDriver[0])),
                    ("mono_auc", .number(HostROC.area(HostROC.curve(ph.pairs, decisionThreshold: settings.decisionThreshold)))),
                    ("mono_mse", .number(HostROC.meanSquaredError(ph.pairs))), ("tau_est", .number(Double(ph.estimateThreshold))),
                ])
            }
            if global.json {
                print(JSON.object([("command", .string("cues show")), ("protocol", .string(p.rawValue)), ("room", .int(Int(room))),
                                   ("seed", .int(Int(seed))), ("plot", .string(plot)), ("roc", .string(roc)),
                                   ("retrains", .int(run.retrains)), ("phases", .array(phases))]).rendered())
            } else {
                for ph in run.phases {
                    print("\(ph.name): \(fixed(ph.seconds, 0)) s, collisions \(ph.collisions), flown \(fixed(ph.secondsFlown, 1)) s, "
                          + "forward \(fixed(ph.metresForward, 1)) m, turning \(ph.ticksTurning) ticks, "
                          + "step backs \(ph.stepBacks) (\(fixed(ph.metresBack, 1)) m), "
                          + "interventions \(ph.interventions), ticks stereo/mono/none \(ph.ticksByDriver[1])/\(ph.ticksByDriver[2])/\(ph.ticksByDriver[0]), "
                          + "mono AUC \(fixed(HostROC.area(HostROC.curve(ph.pairs, decisionThreshold: settings.decisionThreshold)), 3)), "
                          + "MSE \(fixed(HostROC.meanSquaredError(ph.pairs), 2)), tau_est \(fixed(Double(ph.estimateThreshold), 2))")
                }
                print("wrote \(plot) and \(roc)")
            }
        }
    }
}
