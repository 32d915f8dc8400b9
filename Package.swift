// swift-tools-version:6.0
import PackageDescription



let package = Package(
    name: "ADWorkbench",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "adwb", targets: ["adwb"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "NeuralNet", targets: ["NeuralNet"]),
    ],
    dependencies: [
        // Command-line parsing for the `adwb` tool (subcommands, options, validation).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // MARK: Native libraries (no stable API; only TensorCore imports it)
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev", "pkg-config"])]
        ),

        // MARK: Public API
        .target(name: "TensorCore", dependencies: ["COpenBLAS"]),
        .target(name: "NeuralNet", dependencies: ["TensorCore"]),
        .target(name: "Benchmarks", dependencies: ["TensorCore", "NeuralNet"]),
        .executableTarget(
            name: "adwb",
            dependencies: [
                "Benchmarks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["TensorCore", "NeuralNet"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"]),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "TestSupport"]),
        .testTarget(name: "AdwbTests", dependencies: ["adwb", "Benchmarks"]),
    ]
)
