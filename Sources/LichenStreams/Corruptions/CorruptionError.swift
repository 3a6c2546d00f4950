/// Why a corruption could not be applied.
public struct CorruptionError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// Severity outside 1...5.
        case badSeverity
        /// Width or height outside `Corruption.supportedSides`, or a pixel count that is not
        /// width x height.
        case badSize
        /// A pixel that is not finite or lies outside [0, 1].
        case badPixel
        /// libjpeg failed to encode or decode (message from libjpeg or the codec).
        case codec
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
