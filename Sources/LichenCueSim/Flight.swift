import Foundation
import Lichen

/// The simulator's fixed settings (research/methods.md 3.4).
public struct SimSettings: Sendable {
    /// Seconds per tick (5 Hz, the authors' onboard rate).
    public var tickSeconds = 0.2
    /// Forward speed, m/s.
    public var speed = 0.5
    /// A collision is the drone's centre coming closer than this to a surface (m).
    public var droneRadius = 0.2
    /// Disparity noise, px (Gaussian σ), and pixel noise, grey levels.
    public var disparityNoise = 0.5
    public var pixelNoise = 3.0
    /// After the avoidance manoeuvre's extra 45° the drone adds a random extra heading, uniform
    /// in [0, this) radians (the flight plan's later versions, research/methods.md 3.2). Without
    /// it the deterministic unicycle settles into one closed loop through a few poses, and the
    /// stereo phase teaches the mono cue nothing about the rest of the room. 0 turns it off (and
    /// draws nothing: the runs are those of the simulator before it had this).
    public var randomExtraHeading = Double.pi / 4
    /// Yaw rate of the avoidance manoeuvre's 45° steps, rad/s (0: each step within one frame,
    /// 225°/s at 5 Hz). The decision is read again when a step ends. This rate is an assumption
    /// (methods.md gives none): 90°/s makes a step last 2.5 frames, so the width-5 moving average
    /// of the mono estimate no longer mixes five headings 45° apart when the drone turns.
    public var yawRate = Double.pi / 2
    /// The flight plan's step back (research/methods.md 3.2: "step back to the previous
    /// waypoint, then yaw in 45° steps until clear"). Our form: when the driving cue still reports
    /// an obstacle after this many 45° steps at one spot (8: a full turn), the drone flies
    /// backwards, heading unchanged, to the previous waypoint, and yaws on from there; a further
    /// full turn there steps back to the waypoint before. 0 turns it off: the drone yaws in place
    /// until the decision clears (the runs of the simulator before it had this, exactly).
    public var stepBackAfterSteps = 8
    /// Spacing of the waypoints along a straight leg, m: the flight plan places the goal 1–2 m
    /// ahead; a waypoint is where a leg starts and every this many metres along it.
    public var waypointSpacing = 1.5
    /// Frames of stereo flight whose images train the texton dictionary.
    public var warmupTicks = 100
    /// τ_gt and τ_safe on the mean-disparity scale (px): 14 px ≈ a frontal surface at 1.14 m,
    /// 24 px ≈ 0.67 m.
    public var decisionThreshold: Float = 14
    public var dangerThreshold: Float = 24
    /// Ticks the stereo cue may be invalid before it counts as lost (2 s).
    public var trustedTimeout = 10
    /// Seconds of each phase.
    public var learnSeconds = 300.0
    public var wheelsSeconds = 300.0
    public var testSeconds = 300.0
    public var failureSeconds = 300.0
    /// The complementary cue's regressor.
    public var regressor = CueRegressor.nearestNeighbours

    public init() {}

    func ticks(_ seconds: Double) -> Int { Int((seconds / tickSeconds).rounded()) }
}

/// One stretch of a run with one drive policy.
public struct PhaseSpec: Sendable {
    public enum Stereo: Sendable { case on, off }
    public var name: String
    public var seconds: Double
    public var policy: DrivePolicy
    public var learning: Bool
    /// `.off`: the learner never gets a stereo target (the stereo camera is off or failed);
    /// the simulator still computes stereo to score the mono estimate.
    public var stereo: Stereo
}

/// The protocols of research/methods.md 3.4 and issue 14.
public enum CueProtocol: String, CaseIterable, Sendable {
    /// A: learn during stereo flight, then mono only.
    case naive = "A"
    /// B: the same learning, then mono flight with stereo training wheels while still learning,
    /// then the same pure-mono test.
    case persistent = "B"
    /// C: B without learning in the training-wheel phase.
    case frozenWheels = "C"
    /// D with persistent SSL: gated switching while learning; stereo fails mid-flight.
    case failureWithSSL = "D-ssl"
    /// D without: stereo flight only; stereo fails mid-flight and the drone must stop.
    case failureWithoutSSL = "D-stereo"

    public func phases(_ s: SimSettings) -> [PhaseSpec] {
        let learn = PhaseSpec(name: "learn", seconds: s.learnSeconds, policy: .trustedOnly, learning: true, stereo: .on)
        let test = PhaseSpec(name: "test", seconds: s.testSeconds, policy: .complementaryOnly, learning: false, stereo: .off)
        switch self {
        case .naive: return [learn, test]
        case .persistent:
            return [learn, PhaseSpec(name: "wheels", seconds: s.wheelsSeconds, policy: .trainingWheels, learning: true, stereo: .on), test]
        case .frozenWheels:
            return [learn, PhaseSpec(name: "wheels", seconds: s.wheelsSeconds, policy: .trainingWheels, learning: false, stereo: .on), test]
        case .failureWithSSL:
            return [PhaseSpec(name: "learn", seconds: s.learnSeconds, policy: .gated, learning: true, stereo: .on),
                    PhaseSpec(name: "failure", seconds: s.failureSeconds, policy: .gated, learning: true, stereo: .off)]
        case .failureWithoutSSL:
            return [learn, PhaseSpec(name: "failure", seconds: s.failureSeconds, policy: .trustedOnly, learning: true, stereo: .off)]
        }
    }
}

/// One tick of the flight, for the plot.
public struct TrajectoryPoint: Sendable {
    public var position: Vec2
    public var driver: Cue
    public var intervention: Bool
    public var phase: Int
}

/// What one phase measured.
public struct PhaseResult: Sendable {
    public var name: String
    public var ticks = 0
    public var seconds = 0.0
    public var collisions = 0
    /// Seconds the drone moved or turned (not stopped for want of a cue).
    public var secondsFlown = 0.0
    public var interventions = 0
    public var interventionsFirstMinute = 0
    public var interventionsLastMinute = 0
    public var ticksByDriver = [0, 0, 0]
    /// (mono estimate, stereo target) on ticks with a valid stereo frame and a mono estimate.
    public var pairs: [(estimate: Float, target: Float)] = []
    /// Metres flown forward (turning in place moves nothing).
    public var metresForward = 0.0
    /// Ticks spent turning (yawing in place on an obstacle decision).
    public var ticksTurning = 0
    /// Step backs to a previous waypoint begun, and metres flown backwards.
    public var stepBacks = 0
    public var metresBack = 0.0
    /// Seconds from the phase start to the drone's first stop (nil: it never stopped).
    public var secondsToStop: Double? = nil
    /// Mono decision threshold at the end of the phase.
    public var estimateThreshold: Float = .nan

    public var collisionsPerMinute: Double { seconds > 0 ? Double(collisions) / (seconds / 60) : .nan }
    /// Metres flown forward per minute (0.5 m/s straight flight is 30).
    public var metresPerMinute: Double { seconds > 0 ? metresForward / (seconds / 60) : .nan }
    /// Mean length of the collision-free stretches (phase length / (collisions + 1)).
    public var meanFreeFlightSeconds: Double { seconds / Double(collisions + 1) }
}

/// The drone's motion: a unicycle at constant forward speed with the authors' avoidance
/// behaviour (research/methods.md 3.2, `IC_AutoExperiment`). On an obstacle decision it stops
/// and yaws in 45° steps (at `SimSettings.yawRate`) while the decision holds, then one extra 45°
/// plus a random extra heading (`SimSettings.randomExtraHeading`), and flies on. After a full
/// turn at one spot with the decision still on it steps back to the previous waypoint
/// (`SimSettings.stepBackAfterSteps`). A collision (centre within `droneRadius` of a surface)
/// puts it back where it was and turns it around.
public struct Drone: Sendable {
    public var position: Vec2
    public var heading: Double
    /// In an avoidance manoeuvre (an obstacle decision seen since the last forward move).
    public var turning = false
    /// Yaw still to turn in the current step.
    public var yawLeft = 0.0
    /// 45° steps begun at this spot since the drone last moved.
    public var stepsHere = 0
    /// Waypoints passed, newest last (at most `maxWaypoints`).
    public var waypoints: [Vec2] = []
    /// Where a step back is going (nil: none under way).
    public var backTarget: Vec2? = nil
    /// On a straight leg (flew forward since the last manoeuvre), and metres along it since its
    /// last waypoint.
    var onLeg = false
    var legMetres = 0.0
    static let maxWaypoints = 16

    public init(position: Vec2, heading: Double) {
        self.position = position
        self.heading = heading
    }

    /// One tick of flight on the driving cue's decision; returns the collision point, if any.
    /// Draws from `random` only for the random extra heading.
    public mutating func tick(obstacle: Bool, room: Room, settings s: SimSettings, random: inout SimRandom,
                              result: inout PhaseResult) -> Vec2? {
        // The most one tick turns (a whole step when the rate is 0: the simulator's original
        // instantaneous 45° per frame) and the distance it flies.
        let perTick = s.yawRate > 0 ? s.yawRate * s.tickSeconds : Double.infinity
        let step = s.speed * s.tickSeconds
        var collision: Vec2? = nil
        defer { heading = remainder(heading, 2 * Double.pi) }
        if let target = backTarget {
            // Backwards towards the waypoint, heading unchanged.
            let offset = target - position
            let distance = offset.length
            let previous = position
            // Arrives this tick if within one step (up to rounding of the steps flown out).
            let arrives = distance <= step + 1e-9
            position = arrives ? target : position + offset * (step / distance)
            if room.clearance(position) < s.droneRadius || room.isInside(position) {
                result.collisions += 1
                collision = position
                position = previous
                heading += Double.pi
                backTarget = nil
                stepsHere = 0
            } else {
                result.metresBack += min(step, distance)
                if arrives {
                    backTarget = nil
                    stepsHere = 0
                }
            }
            return collision
        }
        if yawLeft > 0 {
            // A yaw step turns at most `perTick` a tick; the decision is read again when it ends.
            let d = min(yawLeft, perTick)
            heading -= d
            yawLeft -= d
            result.ticksTurning += 1
        } else if obstacle {
            turning = true
            onLeg = false
            if s.stepBackAfterSteps > 0 && stepsHere >= s.stepBackAfterSteps {
                while let last = waypoints.last, (last - position).length < 1e-6 { waypoints.removeLast() }
                if let last = waypoints.popLast() {
                    result.stepBacks += 1
                    backTarget = last
                    stepsHere = 0
                    return tick(obstacle: obstacle, room: room, settings: s, random: &random, result: &result)
                }
            }
            stepsHere += 1
            let d = min(Double.pi / 4, perTick)
            heading -= d
            yawLeft = Double.pi / 4 - d
            result.ticksTurning += 1
        } else if turning {
            turning = false
            var total = Double.pi / 4
            if s.randomExtraHeading > 0 { total += random.uniform(0, s.randomExtraHeading) }
            let d = min(total, perTick)
            heading -= d
            yawLeft = total - d
            result.ticksTurning += 1
        } else {
            let previous = position
            position = position + Vec2.heading(heading) * step
            if room.clearance(position) < s.droneRadius || room.isInside(position) {
                result.collisions += 1
                collision = position
                position = previous
                heading += Double.pi
                onLeg = false
            } else {
                result.metresForward += step
                stepsHere = 0
                if !onLeg {
                    // A new leg: its start is the first waypoint.
                    onLeg = true
                    legMetres = 0
                    addWaypoint(previous)
                }
                legMetres += step
                if legMetres >= s.waypointSpacing - 1e-9 {
                    legMetres = 0
                    addWaypoint(position)
                }
            }
        }
        return collision
    }

    mutating func addWaypoint(_ p: Vec2) {
        if waypoints.count == Self.maxWaypoints { waypoints.removeFirst() }
        waypoints.append(p)
    }
}

/// One run of a protocol in one room from one seed.
public struct FlightRun: Sendable {
    public var cueProtocol: CueProtocol
    public var roomSeed: UInt64
    public var seed: UInt64
    public var room: Room
    public var phases: [PhaseResult]
    public var trajectory: [TrajectoryPoint]
    public var collisionPoints: [Vec2]
    /// The learner's per-tick wall time is not measured here (see `lichen cues bench`).
    public var retrains: Int
}

/// A protocol's flight: the learner decides every tick and `Drone` flies on its decision.
public enum Flight {
    public static func run(_ cueProtocol: CueProtocol, roomSeed: UInt64, seed: UInt64, settings s: SimSettings = SimSettings(),
                           record: Bool = false) throws(LichenError) -> FlightRun {
        let start = Vec2(Room.size / 2, Room.size / 2)
        let room = Room.generate(seed: roomSeed, keepClear: start)
        var random = SimRandom(seed: seed &* 0x2545_F491_4F6C_DD1D ^ roomSeed)
        var drone = Drone(position: start, heading: random.uniform(-Double.pi, Double.pi))

        let arena = try Arena(byteCount: 8 << 20)
        let config = CueConfiguration(decisionThreshold: s.decisionThreshold, dangerThreshold: s.dangerThreshold,
                                      trustedTimeout: s.trustedTimeout, policy: .trustedOnly, regressor: s.regressor)
        let learner = try CueLearner(configuration: config, arena: arena)
        let featureView = try arena.persistentTensor(.f32, try Shape(TextonDictionary.featureCount))
        var dictionary: TextonDictionary? = nil
        var warmupFrames: [[UInt8]] = []
        var lastObstacle = false

        var trajectory: [TrajectoryPoint] = [], collisionPoints: [Vec2] = []
        var results: [PhaseResult] = []
        for (phaseIndex, spec) in cueProtocol.phases(s).enumerated() {
            learner.setPolicy(spec.policy, learning: spec.learning)
            var result = PhaseResult(name: spec.name)
            let ticks = s.ticks(spec.seconds)
            let minute = s.ticks(60)
            for t in 0..<ticks {
                let hits = Sensors.castColumns(room, position: drone.position, heading: drone.heading)
                let stereo = Sensors.stereo(room, hits: hits, noise: s.disparityNoise, random: &random)
                let image = Sensors.mono(room, position: drone.position, heading: drone.heading, hits: hits, noise: s.pixelNoise, random: &random)
                let stereoOn = spec.stereo == .on
                var driver = Cue.trusted, obstacle: Bool, intervention = false
                if let dictionary {
                    let f = dictionary.features(image, columns: Camera.columns, rows: Camera.rows)
                    let x = try featureView.f32Elements("features")
                    for i in 0..<f.count { x[i] = f[i] }
                    let out = try learner.tick(features: featureView, target: Float(stereo.target),
                                               trustedValid: stereoOn && stereo.frameValid)
                    driver = out.driver
                    obstacle = out.obstacle
                    intervention = out.intervention
                    if stereo.frameValid && !out.complementaryEstimate.isNaN {
                        result.pairs.append((out.complementaryEstimate, Float(stereo.target)))
                    }
                } else {
                    // Warm-up: stereo flight while the texton dictionary's frames are gathered.
                    if stereo.frameValid { lastObstacle = Float(stereo.target) > s.decisionThreshold }
                    obstacle = lastObstacle
                    warmupFrames.append(image)
                    if warmupFrames.count >= s.warmupTicks {
                        dictionary = TextonDictionary.learn(frames: warmupFrames, columns: Camera.columns, rows: Camera.rows,
                                                            seed: seed ^ roomSeed ^ 0x7E47)
                        warmupFrames = []
                    }
                }
                result.ticksByDriver[Int(driver.rawValue)] += 1
                if intervention {
                    result.interventions += 1
                    if t < minute { result.interventionsFirstMinute += 1 }
                    if t >= ticks - minute { result.interventionsLastMinute += 1 }
                }
                // Behaviour.
                if driver == .none {
                    if result.secondsToStop == nil { result.secondsToStop = Double(t) * s.tickSeconds }
                } else {
                    result.secondsFlown += s.tickSeconds
                    if let hit = drone.tick(obstacle: obstacle, room: room, settings: s, random: &random, result: &result) {
                        collisionPoints.append(hit)
                    }
                }
                if record {
                    trajectory.append(TrajectoryPoint(position: drone.position, driver: driver, intervention: intervention, phase: phaseIndex))
                }
            }
            result.ticks = ticks
            result.seconds = Double(ticks) * s.tickSeconds
            result.estimateThreshold = learner.estimateThreshold
            results.append(result)
        }
        return FlightRun(cueProtocol: cueProtocol, roomSeed: roomSeed, seed: seed, room: room, phases: results,
                         trajectory: trajectory, collisionPoints: collisionPoints, retrains: learner.retrainCount)
    }
}
