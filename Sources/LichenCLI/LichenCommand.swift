import ArgumentParser

@main
struct LichenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lichen",
        abstract: "On-device continual learning: quantized models, LoRA adapters, test-time adaptation.",
        version: "0.1.0",
        subcommands: []
    )
}
