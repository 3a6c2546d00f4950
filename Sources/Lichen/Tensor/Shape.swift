/// A tensor shape of rank 0 to 4, outermost dimension first (row-major: `[rows, columns]`,
/// `[batch, channels, height, width]`). Stored inline: building one allocates nothing.
///
/// GGUF and ggml list dimensions innermost first (`ne`); `Shape(ggml:)` reverses them.
public struct Shape: Equatable, Sendable {
    public static let maximumRank = 4

    public let rank: Int
    private var d0 = 1, d1 = 1, d2 = 1, d3 = 1

    /// A shape from its dimensions, outermost first. Throws for rank > 4 or a negative dimension.
    public init(_ dims: Int...) throws(LichenError) {
        try self.init(dimensions: dims)
    }

    /// A shape from its dimensions, outermost first.
    public init(dimensions dims: [Int]) throws(LichenError) {
        guard dims.count <= Shape.maximumRank else {
            throw .invalidArgument(name: "shape.rank", value: dims.count, reason: "rank must be at most 4")
        }
        rank = dims.count
        for (i, d) in dims.enumerated() {
            guard d >= 0 else { throw .invalidArgument(name: "shape.dimension", value: d, reason: "dimensions must be >= 0") }
            self[i] = d
        }
    }

    /// Dimension `i` (0 = outermost). Dimensions past the rank read as 1.
    public subscript(i: Int) -> Int {
        get {
            switch i {
            case 0: return d0
            case 1: return d1
            case 2: return d2
            case 3: return d3
            default: return 1
            }
        }
        set {
            switch i {
            case 0: d0 = newValue
            case 1: d1 = newValue
            case 2: d2 = newValue
            case 3: d3 = newValue
            default: break
            }
        }
    }

    /// The innermost dimension (1 for rank 0).
    public var last: Int { rank == 0 ? 1 : self[rank - 1] }

    /// Product of all dimensions; nil on overflow.
    public var elementCount: Int? {
        var n = 1
        for i in 0..<rank {
            let (p, o) = n.multipliedReportingOverflow(by: self[i])
            if o { return nil }
            n = p
        }
        return n
    }

    /// The dimensions as an array (host code, printing).
    public var dimensions: [Int] { (0..<rank).map { self[$0] } }
}
