import Lichen

let tensorChecks: [Check] = [
    Check("Tensor/TensorView", "strides, row sizes and byte counts for every type and rank") { c in
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 64)
        defer { buffer.deallocate() }
        let types: [ElementType] = [.f32, .f16, .q8_0, .q4_0]
        let unitBytes: [Int] = [4, 2, 34, 18]  // bytes per element or per 32-value block
        let dimensions: [[Int]] = [[], [64], [3, 32], [2, 3, 96], [2, 1, 3, 32], [5, 0, 64], [0], [1, 1, 1, 160]]
        for (t, type) in types.enumerated() {
            for dims in dimensions {
                let quantized = t >= 2
                if quantized && dims.isEmpty { continue }  // a scalar is not a whole block
                guard let shape = try? Shape(dimensions: dims) else { c.fail("shape threw"); continue }
                // Expected values, worked out here from the layout rules.
                let inner = dims.last ?? 1
                let rowBytes = quantized ? inner / 32 * unitBytes[t] : inner * unitBytes[t]
                var rows = 1
                for d in dims.dropLast() { rows *= d }
                var elements = 1
                for d in dims { elements *= d }
                let total = dims.isEmpty ? unitBytes[t] : rows * rowBytes
                var expectStrides = [0, 0, 0, 0]
                if !dims.isEmpty {
                    expectStrides[dims.count - 1] = quantized ? 0 : unitBytes[t]
                    var s = rowBytes
                    var i = dims.count - 2
                    while i >= 0 { expectStrides[i] = s; s *= dims[i]; i -= 1 }
                }
                let tag = type.name + " rank " + String(dims.count) + ": "
                guard let v = c.expectNoThrow(tag + "exact buffer", { () throws(LichenError) in
                    try TensorView(base: buffer, byteCount: total, type: type, shape: shape)
                }) else { continue }
                c.expect(v.byteCount == (elements == 0 ? 0 : total), tag + "byteCount " + String(v.byteCount) + " expected " + String(total))
                c.expect(v.rowByteCount == rowBytes, tag + "rowByteCount " + String(v.rowByteCount))
                c.expect(v.rowCount == rows, tag + "rowCount " + String(v.rowCount))
                c.expect(v.type == type && v.shape == shape, tag + "type and shape kept")
                var ok = true
                for i in 0..<4 where v.stride(i) != expectStrides[i] { ok = false }
                c.expect(ok, tag + "strides " + String(v.stride(0)) + "," + String(v.stride(1)) + "," + String(v.stride(2)) + "," + String(v.stride(3)))
                if total > 0 && elements > 0 {
                    c.expectThrows(.bufferTooSmall(operand: "tensor", needed: total, available: total - 1), tag + "one byte short") {
                        () throws(LichenError) in try TensorView(base: buffer, byteCount: total - 1, type: type, shape: shape)
                    }
                }
            }
        }
        // A few worked by hand.
        if let s = try? Shape(2, 3, 4), let v = try? TensorView(base: buffer, byteCount: 96, type: .f32, shape: s) {
            c.expect(v.strides.0 == 48 && v.strides.1 == 16 && v.strides.2 == 4 && v.byteCount == 96, "f32 [2,3,4]")
        } else { c.fail("f32 [2,3,4] threw") }
        if let s = try? Shape(3, 64), let v = try? TensorView(base: buffer, byteCount: 204, type: .q8_0, shape: s) {
            c.expect(v.strides.0 == 68 && v.strides.1 == 0 && v.rowByteCount == 68 && v.byteCount == 204, "q8_0 [3,64]")
        } else { c.fail("q8_0 [3,64] threw") }
        if let s = try? Shape(2, 2, 32), let v = try? TensorView(base: buffer, byteCount: 72, type: .q4_0, shape: s) {
            c.expect(v.strides.0 == 36 && v.strides.1 == 18 && v.strides.2 == 0 && v.byteCount == 72, "q4_0 [2,2,32]")
        } else { c.fail("q4_0 [2,2,32] threw") }
        if let s = try? Shape(5), let v = try? TensorView(base: buffer, byteCount: 10, type: .f16, shape: s) {
            c.expect(v.strides.0 == 2 && v.byteCount == 10 && v.rowCount == 1, "f16 [5]")
        } else { c.fail("f16 [5] threw") }
    },
    Check("Tensor/TensorView", "quantized rows must be whole blocks; short buffers and misaligned bases throw") { c in
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
        defer { buffer.deallocate() }
        for type in [ElementType.q8_0, .q4_0] {
            for (inner, next) in [(40, 64), (31, 32), (1, 32), (33, 64)] {
                guard let s = try? Shape(2, inner) else { c.fail("shape"); continue }
                c.expectThrows(.shapeMismatch(operand: "tensor", dimension: 1, expected: next, got: inner), type.name + " inner " + String(inner)) {
                    () throws(LichenError) in try TensorView(base: buffer, byteCount: 4096, type: type, shape: s)
                }
            }
        }
        if let s = try? Shape(4, 8) {
            c.expectThrows(.bufferTooSmall(operand: "tensor", needed: 128, available: 100), "f32 [4,8] in 100 bytes") {
                () throws(LichenError) in try TensorView(base: buffer, byteCount: 100, type: .f32, shape: s)
            }
            c.expectThrows(.misaligned(operand: "tensor", address: UInt(bitPattern: buffer + 2), alignment: 4), "f32 at +2") {
                () throws(LichenError) in try TensorView(base: buffer + 2, byteCount: 1000, type: .f32, shape: s)
            }
            c.expectThrows(.misaligned(operand: "tensor", address: UInt(bitPattern: buffer + 1), alignment: 2), "f16 at +1") {
                () throws(LichenError) in try TensorView(base: buffer + 1, byteCount: 1000, type: .f16, shape: s)
            }
            c.expectThrows(.invalidArgument(name: "byteCount", value: -1, reason: "must be >= 0"), "negative buffer size") {
                () throws(LichenError) in try TensorView(base: buffer, byteCount: -1, type: .f32, shape: s)
            }
            // f16 at +2 is fine.
            c.expect((try? TensorView(base: buffer + 2, byteCount: 64, type: .f16, shape: s)) != nil, "f16 at +2 accepted")
        } else { c.fail("shape") }
        if let s = try? Shape(1, 32) {
            c.expectThrows(.misaligned(operand: "tensor", address: UInt(bitPattern: buffer + 1), alignment: 2), "q8_0 at +1") {
                () throws(LichenError) in try TensorView(base: buffer + 1, byteCount: 1000, type: .q8_0, shape: s)
            }
        }
        if let s4 = try? Shape(4), let v = try? TensorView(base: buffer, byteCount: 64, type: .f32, shape: s4) {
            c.expectThrows(.unsupportedElementType(operand: "x", type: .f32), "require q8_0 of an f32 view") {
                () throws(LichenError) in try v.require(.q8_0, "x")
            }
            c.expect((try? v.require(.f32, "x")) != nil, "require f32 of an f32 view")
        } else { c.fail("f32 [4]") }
    },
    Check("Tensor/TensorView", "shapes whose sizes overflow throw instead of trapping; rank > 4 throws") { c in
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        defer { buffer.deallocate() }
        let big = 1 << 40
        let elements: StaticString = "element count overflows"
        let cases: [([Int], ElementType, LichenError)] = [
            ([Int.max / 2, 4], .f32, .invalidArgument(name: "shape", value: 2, reason: elements)),
            ([big, big, 0], .f32, .invalidArgument(name: "shape", value: 3, reason: elements)),  // overflows before the 0
            ([big, big, 32], .q8_0, .invalidArgument(name: "shape", value: 3, reason: elements)),
            ([1 << 58, 32], .q4_0, .invalidArgument(name: "shape", value: 2, reason: elements)),  // bytes would fit
            ([big, big, big, 4], .f16, .invalidArgument(name: "shape", value: 4, reason: elements)),
            ([Int.max], .f32, .invalidArgument(name: "shape", value: Int.max, reason: "row size overflows")),
            ([1 << 30, 1 << 30, 4], .f32, .invalidArgument(name: "shape", value: 1 << 30, reason: "tensor size overflows")),
            ([1 << 20, 1 << 20], .f32, .bufferTooSmall(operand: "tensor", needed: 1 << 42, available: 64)),
        ]
        for (dims, type, expected) in cases {
            guard let s = try? Shape(dimensions: dims) else { c.fail("shape"); continue }
            c.expectThrows(expected, type.name + " rank " + String(dims.count) + " overflow") {
                () throws(LichenError) in try TensorView(base: buffer, byteCount: 64, type: type, shape: s)
            }
        }
        // Zero-sized tensors are fine in an empty buffer.
        if let s = try? Shape(0, 5), let v = try? TensorView(base: buffer, byteCount: 0, type: .f32, shape: s) {
            c.expect(v.byteCount == 0 && v.rowCount == 0, "[0, 5] spans 0 bytes")
        } else { c.fail("[0, 5] in 0 bytes threw") }
        c.expectThrows(.invalidArgument(name: "shape.rank", value: 5, reason: "rank must be at most 4"), "rank 5") {
            () throws(LichenError) in try Shape(1, 2, 3, 4, 5)
        }
        c.expectThrows(.invalidArgument(name: "shape.dimension", value: -3, reason: "dimensions must be >= 0"), "negative dimension") {
            () throws(LichenError) in try Shape(2, -3)
        }
        if let s = try? Shape(2, 3, 4, 5) {
            c.expect(s.rank == 4 && s.elementCount == 120 && s.last == 5 && s[7] == 1, "rank-4 shape")
        } else { c.fail("rank 4 threw") }
    },
]
