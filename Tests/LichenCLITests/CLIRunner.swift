import Foundation

/// Runs the built `lichen` executable (it sits beside the test bundle in the products folder).
struct CLIRunner {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var executable: URL {
        let products = Bundle.main.bundleURL.deletingLastPathComponent()
        let candidates = [products.appendingPathComponent("lichen"), Bundle.main.bundleURL.appendingPathComponent("lichen")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }

    static func run(_ arguments: [String]) throws -> Outcome {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus,
                       stdout: String(decoding: outData, as: UTF8.self),
                       stderr: String(decoding: errData, as: UTF8.self))
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A fresh folder `lichen-NAME-PID` in the temporary directory (the caller removes it).
    static func temporaryFolder(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lichen-\(name)-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `lichen stream make ARGUMENTS --out DIR/NAME.stream`; returns the stream's path.
    static func makeStream(_ arguments: [String], in dir: URL, name: String = "s") throws -> String {
        let path = dir.appendingPathComponent(name + ".stream").path
        let make = try run(["stream", "make"] + arguments + ["--out", path])
        guard make.status == 0 else { throw Failure(description: "lichen stream make \(arguments): \(make.stderr)") }
        return path
    }
}
