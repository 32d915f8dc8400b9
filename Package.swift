// swift-tools-version:6.0
import PackageDescription



let package = Package(
    name: "ADWorkbench",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "adwb", targets: ["adwb"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "NeuralNet", targets: ["NeuralNet"]),
        .library(name: "VolumeIO", targets: ["VolumeIO"]),
        .library(name: "Cohort", targets: ["Cohort"]),
        .library(name: "Patches", targets: ["Patches"]),
        .library(name: "Autoencoders", targets: ["Autoencoders"]),
        .library(name: "Reports", targets: ["Reports"]),
        .library(name: "Extraction", targets: ["Extraction"]),
        .library(name: "Learn", targets: ["Learn"]),
        .library(name: "Classifiers", targets: ["Classifiers"]),
        .library(name: "Classification", targets: ["Classification"]),
        .library(name: "Preprocessing", targets: ["Preprocessing"]),
        .library(name: "Compare", targets: ["Compare"]),
    ],
    dependencies: [
        // Command-line parsing for the `adwb` tool (subcommands, options, validation).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // SHA-256 for provenance (manifest hashes recorded by every run); BoringSSL-backed on Linux.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // YAML for `adwb pretrain --config` (JSON needs nothing extra).
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // MARK: Native libraries (no stable API; only TensorCore imports it)
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev", "pkg-config"])]
        ),
        // zlib for streamed gzip (.nii.gz, VolumeIO) and PNG figures (Reports).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // MARK: Public API
        .target(name: "TensorCore", dependencies: ["COpenBLAS"]),
        .target(name: "NeuralNet", dependencies: ["TensorCore"]),
        .target(name: "VolumeIO", dependencies: ["TensorCore", "CZlib"]),
        .target(name: "Cohort", dependencies: ["TensorCore", "VolumeIO", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Patches", dependencies: ["TensorCore", "VolumeIO"]),
        .target(name: "Autoencoders", dependencies: ["TensorCore", "NeuralNet", "Patches", "Cohort", "Yams"]),
        .target(name: "Reports", dependencies: ["CZlib"]),
        .target(name: "Extraction", dependencies: ["TensorCore", "NeuralNet", "VolumeIO", "Cohort", "Patches", "Autoencoders", "Reports"]),
        .target(name: "Learn", dependencies: ["TensorCore", "Reports"]),
        .target(name: "Classifiers", dependencies: ["TensorCore", "Learn"]),
        .target(name: "Classification", dependencies: ["TensorCore", "NeuralNet", "VolumeIO", "Cohort", "Patches", "Autoencoders", "Extraction", "Learn", "Classifiers"]),
        .target(name: "Preprocessing", dependencies: ["TensorCore", "VolumeIO", "Cohort", "Patches", "Reports"]),
        .target(name: "Compare", dependencies: ["TensorCore", "VolumeIO", "Cohort", "Autoencoders", "Extraction", "Learn", "Classification", "Reports", "Preprocessing", "Yams"]),
        .target(name: "Benchmarks", dependencies: ["TensorCore", "NeuralNet", "VolumeIO", "Cohort", "Patches", "Autoencoders", "Extraction", "Learn", "Classifiers", "Preprocessing"]),
        .executableTarget(
            name: "adwb",
            dependencies: [
                "Autoencoders",
                "Benchmarks",
                "Extraction",
                "Classification",
                "Preprocessing",
                "Compare",
                "Cohort",
                "VolumeIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["TensorCore", "NeuralNet"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"]),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "TestSupport"]),
        .testTarget(name: "VolumeIOTests", dependencies: ["VolumeIO", "TestSupport"]),
        .testTarget(name: "CohortTests", dependencies: ["Cohort", "VolumeIO", "TestSupport"]),
        .testTarget(name: "PatchesTests", dependencies: ["Patches", "Cohort", "VolumeIO", "TestSupport"]),
        .testTarget(name: "AutoencodersTests", dependencies: ["Autoencoders", "Patches", "Cohort", "NeuralNet", "TestSupport"]),
        .testTarget(name: "PretrainingTests", dependencies: ["Autoencoders", "Patches", "Cohort", "NeuralNet", "VolumeIO", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "CZlib", "TestSupport"]),
        .testTarget(name: "CompareTests", dependencies: ["Compare", "Cohort", "Classification", "TestSupport"]),
        .testTarget(name: "ExtractionTests", dependencies: ["Extraction", "Autoencoders", "Patches", "Cohort", "NeuralNet", "VolumeIO", "TestSupport"]),
        .testTarget(name: "LearnTests", dependencies: ["Learn", "TestSupport"]),
        .testTarget(name: "ClassifiersTests", dependencies: ["Classifiers", "Learn", "TestSupport"]),
        .testTarget(name: "ClassificationTests", dependencies: ["Classification", "Classifiers", "Learn", "Extraction", "Autoencoders", "Cohort", "NeuralNet", "VolumeIO", "TestSupport"]),
        .testTarget(name: "PreprocessingTests", dependencies: ["Preprocessing", "Cohort", "VolumeIO", "TestSupport"]),
        .testTarget(name: "AdwbTests", dependencies: ["adwb", "Benchmarks", "TestSupport"]),
    ]
)
