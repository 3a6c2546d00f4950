/// The reasons `StreamFile` gives in `LichenError.corruptFile(path:offset:reason:)`, one per
/// rule of the format it checks (Format/README.md, "Stream files"). Public so that callers and
/// tests can tell them apart.
public enum StreamFileReason {
    public static let truncated: StaticString = "truncated: the field or section runs past the end of the file"
    public static let badMagic: StaticString = "bad magic: a stream file starts with the bytes 'LCHS'"
    public static let unknownKind: StaticString = "unknown stream kind (0 continual, 1 gradual, 2 custom)"
    public static let badWidth: StaticString = "frame width is not in 1...4096"
    public static let badHeight: StaticString = "frame height is not in 1...4096"
    public static let badChannels: StaticString = "channel count is not 1 (version 1 holds grayscale frames)"
    public static let badClassCount: StaticString = "class count is not in 1...256"
    public static let noDomains: StaticString = "domain count is zero"
    public static let domainCountTooLarge: StaticString = "domain count needs more bytes than the file has (truncated, or a bad count)"
    public static let noFrames: StaticString = "frame count is zero"
    public static let frameCountTooLarge: StaticString = "frame count needs more bytes than the file has (truncated, or a bad count)"
    public static let domainOverlaps: StaticString = "domain starts before the previous domain ends"
    public static let domainGap: StaticString = "domain starts after the previous domain ends (frames left out)"
    public static let emptyDomain: StaticString = "domain has zero frames"
    public static let domainPastEnd: StaticString = "domain runs past the last frame"
    public static let badSeverity: StaticString = "severity is not in 0...5"
    public static let badNameLength: StaticString = "domain name length is not in 1...64"
    public static let nameNotUTF8: StaticString = "domain name is not valid UTF-8"
    public static let framesNotCovered: StaticString = "the domains end before the last frame"
    public static let trailingBytes: StaticString = "bytes follow the checksum"
    public static let checksumMismatch: StaticString = "CRC-32 of the file does not match its trailer"
    public static let labelOutOfRange: StaticString = "label is not below the class count"
}
