import ArgumentParser
import Glibc

@main
struct LichenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lichen",
        abstract: "On-device continual learning: quantized models, LoRA adapters, test-time adaptation.",
        discussion: "Exit status: 0 success, 1 runtime failure, 2 usage error.",
        version: "0.1.0",
        subcommands: [TrainCommand.self, QuantizeCommand.self, InspectCommand.self, EvalCommand.self, ImportCommand.self, BenchCommand.self, StreamCommand.self, AdaptCommand.self, AdaptersCommand.self, ServeCommand.self, SourcePackCommand.self, HomeostasisCommand.self, StateCommand.self, CuesCommand.self, SkillsCommand.self]
    )

    /// Runs the command line with Lichen's exit statuses: ArgumentParser reports usage errors
    /// as 64 (EX_USAGE); the CLI contract says 2.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)  // --help, --version
            }
            let message = fullMessage(for: error)
            if !message.isEmpty { log(message) }
            Glibc.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}
