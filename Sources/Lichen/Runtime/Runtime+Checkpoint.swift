/// Checkpoints of the trainable state: the values of every parameter the current method
/// trains (Tent: the norm layers' γ and β in frugal mode), in the caller's buffer.
///
/// Layout, version 1, little-endian, no padding:
///
/// | field | type |
/// | --- | --- |
/// | magic `LCKP` | 4 bytes |
/// | version, 1 | u32 |
/// | parameter count | u32 |
/// | per parameter: name length, name (UTF-8), value count, values | u16, bytes, u64, f32 × count |
/// | CRC-32 of every byte before it | u32 |
///
/// The optimizer's moments are not part of it: `restore` clears them (as `reset` does), which
/// is what a robot restarting from a known-good state wants. Source and BN-adapt train nothing,
/// so their checkpoints hold no parameter.
extension Runtime {
    static let checkpointMagic: (UInt8, UInt8, UInt8, UInt8) = (0x4C, 0x43, 0x4B, 0x50)  // "LCKP"
    public static let checkpointVersion: UInt32 = 1

    /// Bytes `checkpoint(into:)` writes for the current method (0 before a model is loaded).
    public var checkpointByteCount: Int {
        guard let session else { return 0 }
        var n = 12 + 4
        for i in session.trainedParameters {
            let p = session.store[i]
            n += 2 + p.name.utf8.count + 8 + 4 * p.value.elementCount
        }
        return n
    }

    /// Writes a checkpoint of the trained parameters into `buffer`; returns the bytes written.
    ///
    /// - Throws: `.invalidArgument(name: "model", ...)` before a model is loaded;
    ///   `.bufferTooSmall(operand: "checkpoint", needed:available:)`.
    /// - Note: Allocates nothing. Loop thread.
    public func checkpoint(into buffer: UnsafeMutableRawBufferPointer) throws(LichenError) -> Int {
        try recording { () throws(LichenError) in
            guard let session else { throw .invalidArgument(name: "model", value: 0, reason: "load a model before checkpointing") }
            // The learner thread's job ends first: the values are read whole.
            running?.quiesceLearner()
            let needed = checkpointByteCount
            guard buffer.count >= needed, let base = buffer.baseAddress else {
                throw .bufferTooSmall(operand: "checkpoint", needed: needed, available: buffer.count)
            }
            var w = ControlWriter(base: base, capacity: needed)
            w.u8(Runtime.checkpointMagic.0)
            w.u8(Runtime.checkpointMagic.1)
            w.u8(Runtime.checkpointMagic.2)
            w.u8(Runtime.checkpointMagic.3)
            w.u32(Runtime.checkpointVersion)
            w.u32(UInt32(session.trainedParameters.count))
            for i in session.trainedParameters {
                let p = session.store[i]
                w.string(p.name)
                let count = p.value.elementCount
                w.u64(UInt64(count))
                let values = p.value.floats
                for k in 0..<count { w.f32(values[k]) }
            }
            var crc = CRC32()
            crc.update(UnsafeRawBufferPointer(start: base, count: w.count))
            w.u32(crc.value)
            guard !w.overflowed, w.count == needed else {
                throw .bufferTooSmall(operand: "checkpoint", needed: needed, available: w.count)
            }
            return w.count
        }
    }

    /// Restores the trained parameters from a checkpoint `checkpoint(into:)` wrote under the
    /// same model and method, and clears the optimizer's state.
    ///
    /// The whole checkpoint is checked before anything changes: magic, version, parameter
    /// count, every name and value count against the current method's parameters, finite
    /// values, the exact length and the CRC.
    ///
    /// - Throws: `.malformedFile(offset:reason:)` (offset into the checkpoint);
    ///   `.unsupportedVersion(format: "checkpoint", ...)`; `.invalidModel(key:value:reason:)`
    ///   when it belongs to another model or method; `.nonFiniteValue(operand: "checkpoint", ...)`;
    ///   `.invalidArgument(name: "model", ...)` before a model is loaded.
    /// - Note: Allocates only the names it compares. Loop thread.
    public func restore(from bytes: UnsafeRawBufferPointer) throws(LichenError) {
        try recording { () throws(LichenError) in
            guard let session else { throw .invalidArgument(name: "model", value: 0, reason: "load a model before restoring") }
            guard bytes.count >= 16 else { throw .malformedFile(offset: bytes.count, reason: "checkpoint shorter than its header and checksum") }
            var r = ControlReader(bytes)
            let m = (r.u8(), r.u8(), r.u8(), r.u8())
            guard m.0 == Runtime.checkpointMagic.0, m.1 == Runtime.checkpointMagic.1, m.2 == Runtime.checkpointMagic.2,
                  m.3 == Runtime.checkpointMagic.3
            else { throw .malformedFile(offset: 0, reason: "not a checkpoint (magic is not LCKP)") }
            guard let version = r.u32() else { throw .malformedFile(offset: 4, reason: "checkpoint truncated") }
            guard version == Runtime.checkpointVersion else {
                throw .unsupportedVersion(format: "checkpoint", version: Int(version))
            }
            guard let count = r.u32() else { throw .malformedFile(offset: 8, reason: "checkpoint truncated") }
            let trained = session.trainedParameters
            guard Int(count) == trained.count else {
                throw .invalidModel(key: "checkpoint.parameters", value: "\(count)",
                                    reason: "the checkpoint holds another number of parameters than the current method trains")
            }
            for i in trained {
                let p = session.store[i]
                let at = r.offset
                guard let name = r.string() else { throw .malformedFile(offset: at, reason: "parameter name truncated") }
                guard name == p.name else {
                    throw .invalidModel(key: "checkpoint.parameter", value: name, reason: "the checkpoint names another parameter here")
                }
                let countAt = r.offset
                guard let n = r.u64() else { throw .malformedFile(offset: countAt, reason: "value count truncated") }
                guard n == UInt64(p.value.elementCount) else {
                    throw .invalidModel(key: "checkpoint.\(name)", value: "\(n)", reason: "value count differs from the parameter's")
                }
                let start = r.offset
                guard r.remaining >= 4 * Int(n) + 4 else { throw .malformedFile(offset: start, reason: "values truncated") }
                for k in 0..<Int(n) {
                    guard let v = r.f32(), v.isFinite else { throw .nonFiniteValue(operand: "checkpoint", index: k) }
                }
            }
            let crcAt = r.offset
            guard let stored = r.u32() else { throw .malformedFile(offset: crcAt, reason: "checksum truncated") }
            guard r.remaining == 0 else { throw .malformedFile(offset: r.offset, reason: "bytes after the checksum") }
            var crc = CRC32()
            crc.update(UnsafeRawBufferPointer(rebasing: bytes[0..<crcAt]))
            guard crc.value == stored else { throw .malformedFile(offset: crcAt, reason: "checksum does not match") }
            // Everything checked: now change the state (the learner thread's job ends first).
            running?.quiesceLearner()
            try session.reset()
            var v = ControlReader(UnsafeRawBufferPointer(rebasing: bytes[12..<crcAt]))
            for i in trained {
                let p = session.store[i]
                _ = v.string()
                _ = v.u64()
                let values = p.value.floats
                for j in 0..<p.value.elementCount { values[j] = v.f32() ?? 0 }
            }
            // The loop predicts through fused versions in learner mode: publish the restored values.
            if let frames = running?.frames, let learner = frames.learner, learner.isRunning {
                learner.republish(frameCount: frames.frameCount)
            }
        }
    }
}
