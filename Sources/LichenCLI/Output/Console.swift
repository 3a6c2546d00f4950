import Glibc

/// Writes a line to stderr (progress, logs, errors); stdout is kept for results.
func log(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}
