import Foundation
import LichenSim
import Testing

/// The point-robot simulator (Sources/LichenSim): one step by hand, costs and observations,
/// determinism from the seed, what the scripted experts achieve, and the SVG plot.
@Suite("Point world")
struct PointWorldTests {
    @Test("one step by hand: damping, acceleration, clipped action, progress reward")
    func stepByHand() {
        var w = PointWorld(configuration: PointWorldConfiguration(), x: 0, y: 0, goalX: 3, goalY: 4, hazards: [])
        let (r, c) = w.step(5, 0.5)  // the action is clipped to (1, 0.5)
        // v = (1 - 0.5 * 0.1) * 0 + 4 * a * 0.1 = (0.4, 0.2); p = v * 0.1 = (0.04, 0.02).
        #expect(abs(w.vx - 0.4) < 1e-12 && abs(w.vy - 0.2) < 1e-12)
        #expect(abs(w.x - 0.04) < 1e-12 && abs(w.y - 0.02) < 1e-12)
        let want = 5 - ((3 - 0.04) * (3 - 0.04) + (4 - 0.02) * (4 - 0.02)).squareRoot()
        #expect(abs(r - want) < 1e-12 && c == 0 && w.steps == 1 && !w.isDone)
        // Second step: v = 0.95 * (0.4, 0.2) + (0.4, 0.2) = (0.78, 0.39).
        _ = w.step(1, 0.5)
        #expect(abs(w.vx - 0.78) < 1e-12 && abs(w.vy - 0.39) < 1e-12)
    }

    @Test("speed cap, walls, cost inside a hazard, arrival bonus and the end of the episode")
    func limits() {
        var config = PointWorldConfiguration()
        config.maximumSteps = 1000
        var w = PointWorld(configuration: config, x: 4.9, y: 0, goalX: -4, goalY: -4, hazards: [])
        for _ in 0..<100 { _ = w.step(1, 0) }
        #expect(abs((w.vx * w.vx + w.vy * w.vy).squareRoot() - config.maximumSpeed) < 1e-9 && w.x == config.halfSize)
        var h = PointWorld(configuration: config, x: 0, y: 0, goalX: 4, goalY: 4, hazards: [Hazard(x: 0.1, y: 0, radius: 0.2)])
        #expect(h.step(0, 0).cost == 1)
        var g = PointWorld(configuration: config, x: 0, y: 0, goalX: 0.05, goalY: 0, hazards: [])
        let (r, _) = g.step(0, 0)
        #expect(g.reachedGoal && g.isDone && abs(r - config.goalBonus) < 1e-12)
    }

    @Test("observation: position, velocity, goal offset, nearest hazards first, zeros for missing ones")
    func observation() {
        let w = PointWorld(configuration: PointWorldConfiguration(), x: 1, y: 2, goalX: -1, goalY: 3,
                           hazards: [Hazard(x: 4, y: 2, radius: 0.5), Hazard(x: 1, y: 1, radius: 0.5)])
        #expect(w.observation == [1, 2, 0, 0, -2, 1, 0, -1, 3, 0])
        let one = PointWorld(configuration: PointWorldConfiguration(), x: 0, y: 0, goalX: 1, goalY: 1, hazards: [Hazard(x: 2, y: 0, radius: 1)])
        #expect(one.observation == [0, 0, 0, 0, 1, 1, 2, 0, 0, 0])
    }

    @Test("datasets are deterministic from the seed and differ between seeds; worlds keep start and goal out of hazards")
    func determinism() {
        let a = PointDatasets.dataset(.reach, count: 600, seed: 3), b = PointDatasets.dataset(.reach, count: 600, seed: 3)
        let c = PointDatasets.dataset(.reach, count: 600, seed: 4)
        #expect(a.transitions == b.transitions && a.transitions.count >= 600)
        #expect(a.transitions != c.transitions)
        for e in a.episodes + c.episodes {
            #expect(!e.world.insideHazard(e.path[0].0, e.path[0].1) && !e.world.insideHazard(e.world.goalX, e.world.goalY))
            #expect(e.world.hazards.count == 3)
        }
        // Transitions chain: each next state is the following state within an episode.
        for i in 0..<(a.transitions.count - 1) where !a.transitions[i].done {
            #expect(a.transitions[i].next == a.transitions[i + 1].state)
        }
    }

    @Test("the experts do what they are for (20 episodes each, noise 0.1)")
    func experts() {
        var config = PointWorldConfiguration()
        func run(_ e: Expert, _ config: PointWorldConfiguration) -> (reached: Int, cost: Double, steps: Int) {
            var random = SimRandom(seed: 11)
            var t: [Transition] = []
            var reached = 0, cost = 0.0
            for _ in 0..<20 {
                let ep = PointDatasets.episode(e, configuration: config, noise: 0.1, random: &random, into: &t)
                if ep.reached { reached += 1 }
                cost += ep.totalCost
            }
            return (reached, cost, t.count)
        }
        let reach = run(.reach, config), both = run(.reachAvoid, config), avoid = run(.avoid, config)
        #expect(reach.reached >= 18, "reach: \(reach)")
        #expect(reach.cost > 0, "reach walks through hazards somewhere: \(reach)")
        #expect(both.cost < reach.cost / 2 && both.reached >= 14, "reach-avoid: \(both) vs reach \(reach)")
        #expect(avoid.cost < reach.cost / 2 && avoid.reached <= 2, "avoid: \(avoid)")
        config.hazardCount = 0
        #expect(run(.reach, config).reached == 20)
        // Hold heading: at cruise velocity along the heading the expert (no noise) does nothing.
        var random = SimRandom(seed: 1)
        var w = PointWorld(configuration: PointWorldConfiguration(), x: 0, y: 0, goalX: 4, goalY: 4, hazards: [])
        for _ in 0..<200 { let a = Expert.heading.action(w, heading: 0.5, noise: 0, random: &random); _ = w.step(a.0, a.1) }
        let angle = Foundation.atan2(w.vy, w.vx), speed = (w.vx * w.vx + w.vy * w.vy).squareRoot()
        #expect(abs(angle - 0.5) < 0.01 && abs(speed - Expert.cruiseSpeed) < 0.01, "heading \(angle), speed \(speed)")
    }

    @Test("SVG: one polyline per episode, one disc per hazard, goals and starts")
    func plot() throws {
        let d = PointDatasets.dataset(.reachAvoid, count: 300, seed: 5)
        let svg = PointPlot.svg(d.episodes)
        func count(_ s: String) -> Int { svg.components(separatedBy: s).count - 1 }
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.hasSuffix("</svg>\n"))
        #expect(count("class=\"path\"") == d.episodes.count)
        #expect(count("class=\"hazard\"") == d.episodes.reduce(0) { $0 + $1.world.hazards.count })
        #expect(count("class=\"goal\"") == d.episodes.count && count("class=\"start\"") == d.episodes.count)
        // Well-formed XML, as Python's parser reads it.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-sim-\(UUID().uuidString).svg").path
        try svg.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(len(r))", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) == 1 + count("<circle") + count("<polyline"))
    }
}
