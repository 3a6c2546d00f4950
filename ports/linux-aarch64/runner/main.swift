// The aarch64 check runner: runs every core check (Tests/LichenChecks) in Embedded Swift,
// prints one line per check and a final "N passed, N failed" line, and returns a non-zero
// exit status when any check fails or no check ran.
//
// Usage: lichen-checks [FILTER]
//        lichen-checks --list [FILTER]
//   FILTER  run only the checks whose full name ("Suite: name") contains this text.
//   --list  print the names of the checks, one a line, in run order, without running them.
//
// Built by ports/linux-aarch64/build.sh with -parse-as-library: `main` below is the C entry
// point, so its return value is the process exit status and no exit() call is needed.

import LichenChecks

#if LICHEN_RUNNER_OS_WRITE
import CRuntime
#endif

/// Writes one line to stdout. With the OS shim every line goes straight to the file
/// descriptor, so the lines printed before a trapping check are never lost in a stdio buffer.
func emit(_ line: String) {
    #if LICHEN_RUNNER_OS_WRITE
    var text = line
    text += "\n"
    text.withUTF8 { bytes in
        bytes.withMemoryRebound(to: CChar.self) { chars in
            _ = lcr_os_write_stdout(chars.baseAddress, chars.count)
        }
    }
    #else
    print(line)
    #endif
}

/// The text of a C string argument, or nil.
func argument(_ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ index: Int) -> String? {
    guard let argv, let pointer = argv[index] else { return nil }
    return String(cString: pointer)
}

/// Whether `text` contains `part` (byte-wise; no Foundation).
func contains(_ text: String, _ part: String) -> Bool {
    if part.isEmpty { return true }
    let haystack = Array(text.utf8)
    let needle = Array(part.utf8)
    if needle.count > haystack.count { return false }
    for start in 0...(haystack.count - needle.count) {
        var match = true
        for offset in 0..<needle.count where haystack[start + offset] != needle[offset] {
            match = false
            break
        }
        if match { return true }
    }
    return false
}

@_cdecl("main")
func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var first = 1
    var listOnly = false
    if argc > 1, argument(argv, 1) == "--list" {
        listOnly = true
        first = 2
    }
    let filter = argc > first ? argument(argv, first) : nil

    if listOnly {
        for check in LichenChecks.all {
            let name = check.fullName
            if let filter, !contains(name, filter) { continue }
            emit(name)
        }
        return 0
    }

    var passed = 0
    var failed = 0
    var skipped = 0

    for check in LichenChecks.all {
        let name = check.fullName
        if let filter, !contains(name, filter) {
            skipped += 1
            continue
        }
        let outcome = check.run()
        if outcome.failures == 0 {
            passed += 1
            emit("PASS " + name + " (" + String(outcome.assertions) + " assertions)")
        } else {
            failed += 1
            emit("FAIL " + name + " (" + String(outcome.failures) + " failures, " + String(outcome.assertions)
                + " assertions)")
            for message in outcome.messages.prefix(3) {
                emit("     " + message)
            }
        }
    }

    if skipped > 0 {
        emit(String(skipped) + " checks skipped by the filter")
    }
    emit(String(passed) + " passed, " + String(failed) + " failed")
    if passed + failed == 0 {
        emit("error: no check ran")
        return 1
    }
    return failed == 0 ? 0 : 1
}
