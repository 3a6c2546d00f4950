import ArgumentParser
import CRuntime
import Foundation
import Lichen

/// `lichen adapters list|load|unload|swap|scale|status --socket PATH [--json]`: a client of a
/// running runtime's control endpoint (protocol in Sources/Lichen/Runtime/README.md).
struct AdaptersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapters",
        abstract: "List, load, unload, swap and re-weight the LoRA adapters of a running runtime.",
        discussion: """
            Talks to the control endpoint a runtime serves on a Unix-domain socket (lichen serve, the \
            example controller, or any binary that created its runtime with a socket path). Changes take \
            effect at the runtime's next step: the new adapter set is built and validated by the runtime \
            off its control loop and handed over whole; a refused request (missing file, bad GGUF, another \
            base model, shape mismatch, over budget) leaves the active set as it was and exits with status 1. \
            Adapter paths are resolved on this machine before they are sent.
            """,
        subcommands: [List.self, Load.self, Unload.self, Swap.self, Scale.self, Status.self]
    )

    /// Options every adapters subcommand takes.
    struct Connection: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("The runtime's control socket.", valueName: "path"))
        var socket: String

        @Option(name: .long, help: ArgumentHelp("Give up after this many milliseconds.", valueName: "ms"))
        var timeoutMs: Int = 30_000

        func validate() throws {
            guard timeoutMs >= 1 && timeoutMs <= 3_600_000 else { throw ValidationError("--timeout-ms must be in 1...3600000") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the active adapters (name, file, rank, scale, bytes).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: Connection
        func run() throws { try AdaptersCommand.perform(.list, connection, global) }
    }

    struct Load: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load an adapter file and add it to the active set.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: Connection
        @Argument(help: ArgumentHelp("Adapter file (GGUF).", valueName: "path"))
        var path: String
        @Option(name: .long, help: ArgumentHelp("Its scale (0 turns it off).", valueName: "s"))
        var scale: Float = 1
        func validate() throws {
            guard scale.isFinite else { throw ValidationError("--scale must be finite") }
        }
        func run() throws { try AdaptersCommand.perform(.load(path: absolute(path), scale: scale), connection, global) }
    }

    struct Unload: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an adapter from the active set and free it.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: Connection
        @Argument(help: ArgumentHelp("The adapter's name (as list shows it).", valueName: "name"))
        var name: String
        func run() throws { try AdaptersCommand.perform(.unload(name: name), connection, global) }
    }

    struct Swap: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the whole active set in one go (no file: no adapter).",
            discussion: "Each file may carry its scale after a colon: skill.gguf:0.5 (default 1).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: Connection
        @Argument(help: ArgumentHelp("Adapter files, PATH[:SCALE].", valueName: "path"))
        var paths: [String] = []

        func specs() throws -> [ControlAdapterSpec] {
            try paths.map { item in
                if let colon = item.lastIndex(of: ":"), let s = Float(item[item.index(after: colon)...]) {
                    guard s.isFinite else { throw ValidationError("scale of '\(item)' is not finite") }
                    return ControlAdapterSpec(path: absolute(String(item[..<colon])), scale: s)
                }
                return ControlAdapterSpec(path: absolute(item), scale: 1)
            }
        }

        func validate() throws {
            guard paths.count <= ControlProtocol.maximumSwapCount else {
                throw ValidationError("at most \(ControlProtocol.maximumSwapCount) adapters per swap")
            }
            _ = try specs()
        }

        func run() throws { try AdaptersCommand.perform(.swap(try specs()), connection, global) }
    }

    struct Scale: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set the scale of an active adapter.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: Connection
        @Argument(help: ArgumentHelp("The adapter's name.", valueName: "name"))
        var name: String
        @Argument(help: ArgumentHelp("The new scale.", valueName: "s"))
        var scale: Float
        func validate() throws {
            guard scale.isFinite else { throw ValidationError("the scale must be finite") }
        }
        func run() throws { try AdaptersCommand.perform(.scale(name: name, scale: scale), connection, global) }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the runtime's budget, steps, resets, swaps, method and step times.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: Connection
        func run() throws { try AdaptersCommand.perform(.status, connection, global) }
    }

    // MARK: - Client

    /// Sends `request`, prints the answer (a table, or one JSON document), and fails with
    /// exit status 1 when the runtime refused it or could not be reached.
    static func perform(_ request: ControlRequest, _ connection: Connection, _ global: GlobalOptions) throws {
        let response: ControlResponse
        do {
            response = try call(connection.socket, request, timeoutMs: connection.timeoutMs)
        } catch let failure as CommandFailure {
            if global.json {
                print(JSON.object([("operation", .string(request.operation.name)), ("status", .string("unreachable")),
                                   ("message", .string(failure.description))]).rendered())
            }
            throw failure
        }
        if global.json {
            print(json(response, request.operation).rendered())
        } else if response.status == .ok {
            print(text(response, request.operation))
        }
        guard response.status == .ok else {
            throw CommandFailure("\(request.operation.name) refused (\(response.status.name)): \(response.message)")
        }
    }

    /// One round trip over the socket.
    static func call(_ socket: String, _ request: ControlRequest, timeoutMs: Int) throws -> ControlResponse {
        let body = request.encoded()
        var answer = [UInt8](repeating: 0, count: ControlProtocol.maximumResponseBytes)
        var length = 0
        let rc = body.withUnsafeBufferPointer { b in
            answer.withUnsafeMutableBufferPointer { a in
                lcr_control_call(socket, b.baseAddress, b.count, a.baseAddress, a.count, &length, Int32(timeoutMs))
            }
        }
        guard rc == 0 else {
            throw CommandFailure("\(socket): cannot talk to the runtime: \(String(cString: strerror(rc))) (errno \(rc))")
        }
        do {
            return try Array(answer[0..<length]).withUnsafeBytes { b throws(LichenError) in
                try ControlResponse.decode(b, operation: request.operation)
            }
        } catch {
            throw CommandFailure("\(socket): the runtime's answer does not parse: \(error)")
        }
    }

    static func json(_ r: ControlResponse, _ op: ControlProtocol.Operation) -> JSON {
        var pairs: [(String, JSON)] = [
            ("operation", .string(op.name)),
            ("status", .string(r.status == .ok ? "ok" : r.status.name)),
            ("message", .string(r.message)),
        ]
        guard r.status == .ok else { return .object(pairs) }
        if let s = r.state {
            pairs += [
                ("budget_bytes", .int(s.budgetBytes)), ("used_bytes", .int(s.usedBytes)),
                ("heap_in_use_bytes", .int(s.heapInUseBytes)), ("model_loaded", .bool(s.modelLoaded)),
                ("method", .string(s.method)), ("steps", .int(Int(s.steps))), ("resets", .int(Int(s.resets))),
                ("swaps", .int(Int(s.swaps))), ("active_adapters", .int(s.activeAdapters)), ("generation", .int(Int(s.generation))),
                ("step_p50_ms", .number(Double(s.stepP50Nanoseconds) / 1e6)),
                ("step_p99_ms", .number(Double(s.stepP99Nanoseconds) / 1e6)),
                ("step_max_ms", .number(Double(s.stepMaxNanoseconds) / 1e6)),
            ]
            if let f = s.figures {
                pairs += [
                    ("updates", .int(Int(f.updates))), ("guard_resets", .int(Int(f.guardResets))),
                    ("last_good_resets", .int(Int(f.lastGoodResets))), ("learner", .bool(f.learnerRunning)),
                    ("dropped_frames", .int(Int(f.droppedFrames))), ("learner_lag", .int(Int(f.learnerLag))),
                    ("max_learner_lag", .int(Int(f.maximumLearnerLag))), ("version", .int(Int(f.version))),
                    ("update_p50_ms", .number(Double(f.updateP50Nanoseconds) / 1e6)),
                    ("update_p99_ms", .number(Double(f.updateP99Nanoseconds) / 1e6)),
                    ("state_restore", .string(["none", "restored", "refused"][min(2, Int(f.stateRestore))])),
                    ("state_saves", .int(Int(f.stateSaves))), ("state_save_failures", .int(Int(f.stateSaveFailures))),
                    ("last_save_unix_ns", .int(Int(f.lastSaveUnixNanoseconds))), ("last_save_ms", .number(Double(f.lastSaveNanoseconds) / 1e6)),
                ]
            }
        } else {
            pairs.append(("generation", .int(Int(r.generation))))
            pairs.append(("adapters", .array(r.adapters.map { a in
                .object([("name", .string(a.name)), ("file", .string(a.file)), ("rank", .int(a.rank)),
                         ("scale", .number(Double(a.scale))), ("bytes", .int(a.byteCount))])
            })))
        }
        return .object(pairs)
    }

    static func text(_ r: ControlResponse, _ op: ControlProtocol.Operation) -> String {
        if let s = r.state {
            var t = Table(["status", "value"])
            t.add(["budget", "\(s.budgetBytes) bytes"])
            t.add(["used", "\(s.usedBytes) bytes"])
            t.add(["adapter heap in use", "\(s.heapInUseBytes) bytes"])
            t.add(["model loaded", s.modelLoaded ? "yes" : "no"])
            t.add(["method", s.method])
            t.add(["steps", "\(s.steps)"])
            t.add(["resets", "\(s.resets)"])
            t.add(["swaps picked up", "\(s.swaps)"])
            t.add(["active adapters", "\(s.activeAdapters) (generation \(s.generation))"])
            t.add(["step p50", fixed(Double(s.stepP50Nanoseconds) / 1e6, 3) + " ms"])
            t.add(["step p99", fixed(Double(s.stepP99Nanoseconds) / 1e6, 3) + " ms"])
            t.add(["step max", fixed(Double(s.stepMaxNanoseconds) / 1e6, 3) + " ms"])
            if let f = s.figures {
                t.add(["updates", "\(f.updates)" + (f.learnerRunning ? " on the learner thread" : " in the step")
                       + (f.updates > 0 ? " (p50 \(fixed(Double(f.updateP50Nanoseconds) / 1e6, 2)) ms, p99 \(fixed(Double(f.updateP99Nanoseconds) / 1e6, 2)) ms)" : "")])
                if f.learnerRunning {
                    t.add(["learner", "version \(f.version), lag \(f.learnerLag) frames (max \(f.maximumLearnerLag)), \(f.droppedFrames) frames dropped"])
                }
                t.add(["guard resets", "\(f.guardResets) (\(f.lastGoodResets) to the last good state)"])
                if f.stateSaves > 0 || f.stateSaveFailures > 0 || f.stateRestore != 0 {
                    let restore = ["no file", "restored", "refused"][min(2, Int(f.stateRestore))]
                    t.add(["state file", "\(restore) at the method change; \(f.stateSaves) saves (\(f.stateSaveFailures) failed), last took \(fixed(Double(f.lastSaveNanoseconds) / 1e6, 2)) ms"])
                }
            }
            return t.rendered()
        }
        var t = Table(["name", "file", "rank", "scale", "bytes"], rightAligned: [2, 3, 4])
        for a in r.adapters {
            t.add([a.name, a.file, "\(a.rank)", fixed(Double(a.scale), 3), "\(a.byteCount)"])
        }
        return r.message + " (generation \(r.generation))\n" + t.rendered()
    }
}

/// `path` made absolute against this process's working directory (the runtime may run elsewhere).
private func absolute(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path
}
