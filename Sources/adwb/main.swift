import ArgumentParser
import Autoencoders
import Benchmarks
import Foundation
import TensorCore

/// `adwb`: the ADWorkbench command line. Logic lives in the library targets; each
/// subcommand parses its options, validates them and calls one library entry point.
struct ADWorkbench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adwb",
        abstract: "Autoencoder feature learning and classical ML for Alzheimer's disease research on 3-D brain scans.",
        version: ADWorkbenchVersion.string,
        subcommands: [DemoCommand.self, CompareCommand.self, SynthCommand.self, ManifestCommand.self, InfoCommand.self, ConvertCommand.self, PretrainCommand.self, ExtractCommand.self, ClassifyCommand.self, PreprocessCommand.self,
                      BenchCommand.self, VersionCommand.self]
    )
}

enum ADWorkbenchVersion {
    static let string = Pretraining.version
}

/// Prints `value` as one line of JSON with sorted keys (stable for scripts and diffs).
func printJSONLine<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Options every compute command shares.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Worker threads for our kernels and OpenBLAS (default: the cores available).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func apply() { Engine.setThreads(threads ?? Engine.availableCores) }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the engine's kernels on the peer benchmark's shapes (../shared/peers/bench_peers.py)."
    )

    @Flag(help: "Print one JSON object: {threads, peak_rss_mb, kernels: {name: {ms, gflops, runs}}}.")
    var json = false

    @OptionGroup var compute: ComputeOptions

    @Option(name: .customLong("filter"), help: "Run only kernels whose name contains this text (repeatable).")
    var filters: [String] = []

    @Flag(help: "List the kernel names and exit.")
    var list = false

    @Option(help: "A peer figures JSON from bench_peers.py (e.g. ../shared/peers/baseline-2026-11-30.json) or reports/bench_nibabel_io.py: show its figures for the same thread count beside ours (repeatable).")
    var peers: [String] = []

    @Option(name: .customLong("dump-data"), help: "Write the classifier kernels' input matrices as .npy into this folder and exit (for reports/bench_sklearn_same_data.py).")
    var dumpData: String?

    func run() throws {
        if list {
            for kernel in Bench.kernels() { print(kernel.name) }
            return
        }
        if let dumpData {
            for url in try Bench.dumpClassifierData(to: URL(fileURLWithPath: dumpData)) { print(url.path) }
            return
        }
        compute.apply()
        let baseline = try peers.map { try PeerBaseline(contentsOf: URL(fileURLWithPath: $0), threads: Engine.threads) }
            .reduce(nil as PeerBaseline?) { merged, next in
                guard var merged else { return next }
                merged.merge(next)
                return merged
            }
        let showProgress = isatty(STDERR_FILENO) == 1
        let report = try Bench.run(filters: filters) { name in
            if showProgress { FileHandle.standardError.write(Data("bench: \(name)...\n".utf8)) }
        }
        if report.kernels.isEmpty && report.skipped == nil { throw ValidationError("no kernel matches \(filters); see `adwb bench --list`") }
        if json {
            try printJSONLine(report)
        } else {
            print("threads: \(report.threads)   peak RSS: \(report.peak_rss_mb) MiB")
            let width = max(22, (report.kernels.keys.map(\.count).max() ?? 0) + 2)
            print("kernel".padding(toLength: width, withPad: " ", startingAt: 0) + "      ms            rate  runs"
                  + (baseline == nil ? "" : "   peers (ms, peer/ours)"))
            for (name, timing) in report.kernels.sorted(by: { $0.key < $1.key }) {
                let rate = timing.gflops.map { String(format: "%7.1f GFLOP/s", $0) }
                    ?? timing.mb_per_s.map { String(format: "%10.1f MB/s", $0) }
                    ?? timing.patches_per_s.map { String(format: "%6.0f patches/s", $0) } ?? "               -"
                let peerColumns = (baseline?.figures[name] ?? [:]).sorted(by: { $0.key > $1.key }).map {
                    String(format: "%@ %.1f (%.2fx)", $0.key, $0.value, $0.value / timing.ms)
                }.joined(separator: ", ")
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + String(format: "%8.1f", timing.ms)
                      + " \(rate)  \(timing.runs)   " + peerColumns)
            }
            for (name, reason) in (report.skipped ?? [:]).sorted(by: { $0.key < $1.key }) {
                print("skipped \(name): \(reason)")
            }
        }
    }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version and the linear-algebra backend.")

    func run() {
        print("adwb \(ADWorkbenchVersion.string)")
        print("BLAS: \(Engine.blasDescription)")
        print("threads: \(Engine.threads) (cores available: \(Engine.availableCores))")
    }
}

Engine.relaunchWithSingleThreadedBLASIfNeeded()
Engine.tuneAllocatorForLargeTensors()
ADWorkbench.main()
