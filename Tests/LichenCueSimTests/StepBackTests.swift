import Foundation
import Testing
@testable import LichenCueSim

/// The avoidance behaviour's step back to the previous waypoint, on a scripted decision sequence.
@Suite("Cue simulator avoidance step back")
struct StepBackTests {
    /// Flies `forward` clear ticks along +x from (1, 2.5), then holds the obstacle decision for `held` ticks.
    func fly(stepBackAfterSteps: Int, forward: Int, held: Int) -> (Drone, PhaseResult, [Vec2]) {
        var s = SimSettings()
        s.randomExtraHeading = 0
        s.stepBackAfterSteps = stepBackAfterSteps
        let room = Room(seed: 1)
        var drone = Drone(position: Vec2(1, 2.5), heading: 0)
        var random = SimRandom(seed: 1)
        var result = PhaseResult(name: "scripted")
        var path: [Vec2] = []
        for _ in 0..<forward { _ = drone.tick(obstacle: false, room: room, settings: s, random: &random, result: &result); path.append(drone.position) }
        for _ in 0..<held { _ = drone.tick(obstacle: true, room: room, settings: s, random: &random, result: &result); path.append(drone.position) }
        return (drone, result, path)
    }

    @Test("a full turn of 45° steps at one spot with the decision on, then backwards to the previous waypoint, heading unchanged")
    func fullTurnThenBack() {
        // 20 ticks at 0.1 m: 2 m along x; waypoints at the leg start (1, 2.5) and at 1.5 m (2.5, 2.5).
        // 90°/s at 5 Hz: a 45° step takes 3 ticks (18°, 18°, 9°); 8 steps = 24 ticks, 360°.
        let (drone, result, path) = fly(stepBackAfterSteps: 8, forward: 20, held: 24 + 5)
        #expect(abs(path[19].x - 3.0) < 1e-9 && abs(path[19].y - 2.5) < 1e-9)
        for i in 20..<44 { #expect(path[i] == path[19], "yawing in place, tick \(i)") }
        #expect(result.ticksTurning == 24)
        #expect(abs(remainder(drone.heading, 2 * Double.pi)) < 1e-9, "a full turn brings the heading back to 0")
        // Then 0.5 m back to (2.5, 2.5) in 5 ticks of 0.1 m.
        #expect(result.stepBacks == 1)
        for k in 0..<5 { #expect(abs(path[44 + k].x - (2.9 - 0.1 * Double(k))) < 1e-9, "backing, tick \(44 + k)") }
        #expect(abs(drone.position.x - 2.5) < 1e-9 && abs(drone.position.y - 2.5) < 1e-9)
        #expect(abs(result.metresBack - 0.5) < 1e-9)
        #expect(abs(result.metresForward - 2.0) < 1e-9)
        #expect(drone.backTarget == nil)
    }

    @Test("a further full turn at the waypoint steps back to the waypoint before it")
    func secondStepBack() {
        let (drone, result, _) = fly(stepBackAfterSteps: 8, forward: 20, held: 29 + 24 + 15)
        #expect(result.stepBacks == 2)
        #expect(abs(drone.position.x - 1.0) < 1e-9 && abs(drone.position.y - 2.5) < 1e-9, "back at the leg start")
        #expect(abs(result.metresBack - 2.0) < 1e-9)
    }

    @Test("switched off (0), the drone yaws in place for as long as the decision holds")
    func off() {
        let (drone, result, _) = fly(stepBackAfterSteps: 0, forward: 20, held: 100)
        #expect(result.stepBacks == 0 && result.metresBack == 0)
        #expect(abs(drone.position.x - 3.0) < 1e-9)
        #expect(result.ticksTurning == 100)
    }

    @Test("once the decision clears the drone adds one extra 45° and flies on")
    func clearsAfterStepBack() {
        var s = SimSettings()
        s.randomExtraHeading = 0
        let room = Room(seed: 1)
        var (drone, result, _) = fly(stepBackAfterSteps: 8, forward: 20, held: 29)
        var random = SimRandom(seed: 1)
        // The extra 45° takes 3 ticks, then forward along -45°.
        for _ in 0..<4 { _ = drone.tick(obstacle: false, room: room, settings: s, random: &random, result: &result) }
        #expect(abs(drone.heading + Double.pi / 4) < 1e-9)
        #expect(abs(drone.position.x - (2.5 + 0.1 * cos(Double.pi / 4))) < 1e-9)
        #expect(abs(drone.position.y - (2.5 - 0.1 * sin(Double.pi / 4))) < 1e-9)
    }
}
