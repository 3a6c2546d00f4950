import ArgumentParser

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Flag(name: .long, help: "Print exactly one JSON document on stdout (progress and logs go to stderr).")
    var json = false

    @Flag(name: .long, help: "Print progress and details to stderr.")
    var verbose = false
}
