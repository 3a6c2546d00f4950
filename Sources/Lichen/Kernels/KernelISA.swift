import CRuntime

/// An instruction set a kernel table is built for. Raw values are `lcr_isa`'s.
public enum KernelISA: UInt32, Sendable, CaseIterable {
    case portable = 0
    case avx2 = 1
    case neon = 2
    case neonDotprod = 3
    case avx512vnni = 4

    /// "portable", "avx2", "neon", "neon-dotprod", "avx512vnni".
    public var name: String {
        switch self {
        case .portable: return "portable"
        case .avx2: return "avx2"
        case .neon: return "neon"
        case .neonDotprod: return "neon-dotprod"
        case .avx512vnni: return "avx512vnni"
        }
    }

    /// Whether the running CPU and this build support the instruction set.
    /// The corresponding C function is `lcr_isa_supported`.
    public var isSupported: Bool { lcr_isa_supported(lcr_isa(rawValue: rawValue)) != 0 }

    /// Every instruction set the running CPU supports, portable first.
    public static var supported: [KernelISA] { allCases.filter { $0.isSupported } }
}
