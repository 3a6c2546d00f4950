// swift-tools-version:6.2
import PackageDescription

// MARK: - Platform libraries
//
// BLIS comes from Debian's pthread build, linked statically so robot binaries carry
// no OpenMP runtime (the default libblis-dev alternative is the OpenMP build, whose
// blis.h includes <omp.h>). jemalloc is Debian's: linking it makes it the process
// allocator, and Lichen's heap region is one explicit jemalloc arena inside the budget.

#if arch(x86_64)
let multiarch = "x86_64-linux-gnu"
#elseif arch(arm64)
let multiarch = "aarch64-linux-gnu"
#else
let multiarch = "unknown"
#endif

let blisInclude = "/usr/include/\(multiarch)/blis-pthread"
let blisLibrary = "/usr/lib/\(multiarch)/blis-pthread/libblis.a"

let cRuntimeSettings: [CSetting] = [
    // Kernels are built optimised in every configuration: the tests run them on real sizes.
    .unsafeFlags(["-O2", "-I\(blisInclude)", "-fno-strict-aliasing"]),
    .define("_GNU_SOURCE"),
]

let cRuntimeLinkerSettings: [LinkerSetting] = [
    .unsafeFlags([blisLibrary]),
    .linkedLibrary("jemalloc"),
    .linkedLibrary("pthread"),
    .linkedLibrary("m"),
    .linkedLibrary("z"),  // zlib: gzip input (lcr_gzip.c)
]

/// The core must stay Embedded-Swift clean; the host build makes the Embedded
/// restrictions it can see errors (the Embedded compile in CI catches the rest).
let coreSwiftSettings: [SwiftSetting] = [
    .treatWarning("EmbeddedRestrictions", as: .error),
]

let package = Package(
    name: "Lichen",
    products: [
        .library(name: "Lichen", targets: ["Lichen"]),
        .executable(name: "lichen", targets: ["LichenCLI"]),
        // The peer benchmark's lean worker: the inference path over the core alone.
        .executable(name: "lichen-infer-worker", targets: ["LichenInferWorker"]),
        // The C ABI (CRuntime/include/lichen.h) as a static library for robot binaries.
        .library(name: "LichenC", type: .static, targets: ["LichenC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: - Core
        .target(
            name: "CRuntime",
            path: "CRuntime",
            sources: ["src"],
            publicHeadersPath: "include",
            cSettings: cRuntimeSettings,
            linkerSettings: cRuntimeLinkerSettings
        ),
        .target(
            name: "Lichen",
            dependencies: ["CRuntime"],
            path: "Sources/Lichen",
            exclude: ["Adapters/README.md", "Arena/README.md", "Tensor/README.md", "Kernels/README.md", "Format/README.md", "Train/README.md", "Data/README.md", "Graph/README.md", "Adaptation/README.md", "Inference/README.md", "Runtime/README.md", "Homeostasis/README.md", "Cues/README.md", "Skills/README.md"],
            swiftSettings: coreSwiftSettings
        ),

        // The C ABI's @_cdecl exports; Embedded-clean like the core (the aarch64 port builds it too).
        .target(
            name: "LichenC",
            dependencies: ["Lichen", "CRuntime"],
            path: "Sources/LichenC",
            swiftSettings: coreSwiftSettings
        ),

        // MARK: - Tools
        // Corrupted sensor streams (host tooling: links libjpeg for the JPEG corruption).
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG"),
        // In-memory grayscale JPEG encode/decode with setjmp-based libjpeg error handling.
        .target(
            name: "CJPEGCodec",
            path: "Sources/CJPEGCodec",
            publicHeadersPath: "include",
            linkerSettings: [.linkedLibrary("jpeg")]
        ),
        .target(
            name: "LichenStreams",
            dependencies: ["Lichen", "CJPEG", "CJPEGCodec"],
            path: "Sources/LichenStreams",
            exclude: ["Corruptions/README.md"]
        ),
        // The 2-D point-robot simulator for PSEC's skills (host tooling: datasets, evaluation, plots).
        .target(
            name: "LichenSim",
            dependencies: ["Lichen"],
            path: "Sources/LichenSim"
        ),
        .executableTarget(
            name: "LichenCLI",
            dependencies: [
                "Lichen",
                "LichenStreams",
                "LichenCueSim",
                "LichenSim",
                "CRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/LichenCLI",
            exclude: ["Import/README.md"]
        ),

        // The persistent-SSL simulator (host tooling): a room, a drone, stereo and mono cues.
        .target(
            name: "LichenCueSim",
            dependencies: ["Lichen"],
            path: "Sources/LichenCueSim",
            exclude: ["README.md"]
        ),

        // The inference path over the core alone (no Foundation, no argument parser), as a robot's
        // control binary links it: the peer benchmark's Lichen worker (ports/host/peer-bench).
        .executableTarget(
            name: "LichenInferWorker",
            dependencies: ["Lichen", "CRuntime"],
            path: "Sources/LichenInferWorker"
        ),

        // MARK: - Tests
        // The core's own checks: Embedded-clean, run by the host test suite and by the
        // aarch64 runner under qemu (ports/linux-aarch64).
        .target(
            name: "LichenChecks",
            dependencies: ["Lichen", "CRuntime"],
            path: "Tests/LichenChecks",
            swiftSettings: coreSwiftSettings
        ),
        .testTarget(
            name: "LichenTests",
            dependencies: ["Lichen", "LichenChecks", "CRuntime"],
            path: "Tests/LichenTests"
        ),
        .testTarget(
            name: "LichenStreamsTests",
            dependencies: ["LichenStreams", "Lichen"],
            path: "Tests/LichenStreamsTests"
        ),
        // The C ABI's exports pinned to lichen.h's prototypes (a mismatch does not compile).
        .testTarget(
            name: "LichenCTests",
            dependencies: ["LichenC", "Lichen", "CRuntime"],
            path: "Tests/LichenCTests"
        ),
        .testTarget(
            name: "LichenCueSimTests",
            dependencies: ["LichenCueSim", "Lichen"],
            path: "Tests/LichenCueSimTests"
        ),
        .testTarget(
            name: "LichenSimTests",
            dependencies: ["LichenSim"],
            path: "Tests/LichenSimTests"
        ),
        .testTarget(
            name: "LichenCLITests",
            dependencies: ["LichenCLI"],
            path: "Tests/LichenCLITests"
        ),
    ]
)
