// swift-tools-version: 6.2
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// scripts/package sets RST_DETECTIVE_COMMIT to the commit it builds, and `rst-detective --version` prints it; it
// becomes a define of the one-file C target CBuildInfo, so a new commit recompiles only that file. A development
// build, without the variable, says "unknown". Only hex digits and "-dirty" get through.
let commit = Context.environment["RST_DETECTIVE_COMMIT"].flatMap { value -> String? in
    value.allSatisfy { $0.isHexDigit || "-dirty".contains($0) } && !value.isEmpty ? value : nil
}

let package = Package(
    name: "rst-detective",
    products: [
        .executable(name: "rst-detective", targets: ["rst-detective"]),
        .library(name: "RSTDetective", targets: ["RSTDetective"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CPcap",
            pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]
        ),
        .target(
            name: "CGzip",
            linkerSettings: [.linkedLibrary("z"), .linkedLibrary("zstd")]
        ),
        .target(
            name: "CBuildInfo",
            cSettings: commit.map { [.define("RST_DETECTIVE_COMMIT", to: "\"\($0)\"")] } ?? []
        ),
        .target(
            name: "RSTDetective",
            dependencies: [
                "CPcap",
                "CGzip",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: upcoming + [.strictMemorySafety()]
        ),
        .executableTarget(
            name: "rst-detective",
            dependencies: [
                "RSTDetective",
                "CBuildInfo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "rst-detective-fuzz",
            dependencies: [
                "RSTDetective",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Fuzz",
            exclude: ["README.md", "regressions"],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RSTDetectiveTests",
            dependencies: ["RSTDetective", .product(name: "Histogram", package: "hdrhistogram-swift")],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RSTDetectiveCLITests",
            dependencies: ["rst-detective"],
            swiftSettings: upcoming
        ),
    ]
)
