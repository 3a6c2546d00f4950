import Lichen

/// Checks of the concat and slice layers (Graph/Layers/ShapeOps.swift): forward against a
/// naive reference, backward (input and parameter gradients, two overlapping slices adding into
/// one input gradient) against finite differences, the model-file round trip of slice's
/// attributes, and bad descriptions.
let concatSliceChecks: [Check] = [
    Check("Graph/ShapeOps", "concat and slice: forward equals a naive reference; input and parameter gradients match finite differences (overlapping slices, concat of the model input)") { c in
        checking(&c) { c throws(LichenError) in
            var rng = SplitMix64(seed: 23)
            // x [7] -> a = x[0..<3], b = x[2..<7] -> fc (5 -> 4) -> silu -> cat(a, silu) [7] -> cat(x, ·) [14] -> out (14 -> 3)
            let spec = graphSpec([7], [
                graphLayer(.slice, "a", [-1]) { $0.start = 0; $0.outputs = 3 },
                graphLayer(.slice, "b", [-1]) { $0.start = 2; $0.outputs = 5 },
                graphLayer(.linear, "fc", [1]) { $0.outputs = 4 },
                graphLayer(.silu, "act", [2]),
                graphLayer(.concat, "cat", [0, 3]),
                graphLayer(.concat, "cat2", [-1, 4]),
                graphLayer(.linear, "out", [5]) { $0.outputs = 3 },
            ])
            let w1 = rng.floats(20), b1 = rng.floats(4), w2 = rng.floats(42), b2 = rng.floats(3)
            let g = try graphMakeGraph(spec, [
                GraphParamInit(name: "fc.weight", role: .weight, dims: [4, 5], values: w1),
                GraphParamInit(name: "fc.bias", role: .bias, dims: [4], values: b1),
                GraphParamInit(name: "out.weight", role: .weight, dims: [3, 14], values: w2),
                GraphParamInit(name: "out.bias", role: .bias, dims: [3], values: b2),
            ], batch: 3, options: GraphOptions(training: true, inputGradient: true))
            c.expect(g.outputShape.dimensions == [3], "output [3]")
            let x = rng.floats(3 * 7, -2, 2)
            var want: [Double] = []
            for n in 0..<3 {
                let xs = (0..<7).map { Double(x[n * 7 + $0]) }
                let b = Array(xs[2..<7])
                var h: [Double] = []
                for o in 0..<4 {
                    var acc = Double(b1[o])
                    for i in 0..<5 { acc += Double(w1[o * 5 + i]) * b[i] }
                    h.append(acc / (1 + graphRefExp(-acc)))
                }
                let cat2 = xs + Array(xs[0..<3]) + h
                for o in 0..<3 {
                    var acc = Double(b2[o])
                    for i in 0..<14 { acc += Double(w2[o * 14 + i]) * cat2[i] }
                    want.append(acc)
                }
            }
            graphExpectAllClose(&c, try graphRun(g, x, [3, 7]), want, atol: 1e-5, rtol: 1e-5, "concat/slice forward")
            try graphGradientCheck(&c, g, x, [3, 7], "concat/slice", limit: 21)
            // A smaller batch than built.
            graphExpectAllClose(&c, try graphRun(g, Array(x[0..<7]), [1, 7]), Array(want[0..<3]), atol: 1e-5, rtol: 1e-5, "batch of 1")
        }
    },

    Check("Graph/ShapeOps", "slice's start and outputs survive a model-file round trip; bad concat and slice descriptions name the key") { c in
        checking(&c) { c throws(LichenError) in
            var spec = graphSpec([6], [
                graphLayer(.slice, "s", [-1]) { $0.start = 2; $0.outputs = 3 },
                graphLayer(.concat, "c", [-1, 0]),
                graphLayer(.linear, "fc", [1]) { $0.outputs = 2 },
            ])
            spec.classCount = 2
            func f32(_ values: [Float]) -> [UInt8] {
                var out: [UInt8] = []
                for v in values { for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt32(k)))) } }
                return out
            }
            let w = try ModelFile.writer(spec: spec, name: "slice round trip", tensors: [
                ModelTensor(name: "fc.weight", type: .f32, shape: try Shape(2, 9), bytes: f32([Float](repeating: 0.5, count: 18))),
                ModelTensor(name: "fc.bias", type: .f32, shape: try Shape(2), bytes: f32([0, 0])),
            ])
            let bytes = try w.serialized()
            var opened: Result<GGUFFile, LichenError> = .failure(.malformedFile(offset: -1, reason: "not run"))
            bytes.withUnsafeBytes { raw in
                do throws(LichenError) { opened = .success(try GGUFFile(copying: raw)) } catch { opened = .failure(error) }
            }
            let file = try opened.get()
            let back = try ModelFile.readSpec(file)
            c.expect(back.layers[0].kind == .slice && back.layers[0].start == 2 && back.layers[0].outputs == 3, "slice attributes read back")
            c.expect(back.layers[1].kind == .concat && back.layers[1].inputs == [-1, 0], "concat inputs read back")
            c.expect(file.contains("lichen.layer.0.start") && !file.contains("lichen.layer.1.start"), "start is written for slice only")
            var bad = spec
            bad.layers[0].start = 4
            c.expectThrows(.invalidModel(key: "lichen.layer.0.start", value: "4", reason: "start + outputs must be at most the input's features"),
                           "slice past the end") { () throws(LichenError) in _ = try bad.inferShapes() }
            var three = spec
            three.layers[1].inputs = [-1, 0, 0]
            c.expectThrows(.invalidModel(key: "lichen.layer.1.inputs", value: "[-1, 0, 0]", reason: "add and concat take exactly two inputs"),
                           "concat of three") { () throws(LichenError) in _ = try three.inferShapes() }
            let image = graphSpec([2, 3, 3], [graphLayer(.concat, "c", [-1, -1])])
            c.expectThrows(.invalidModel(key: "lichen.layer.0.inputs", value: "[2, 3, 3] + [2, 3, 3]", reason: "concat takes two [features] inputs"),
                           "concat of images") { () throws(LichenError) in _ = try image.inferShapes() }
        }
    },
]
