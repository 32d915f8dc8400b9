import ArgumentParser
import Compare
import Foundation
import TensorCore

/// `adwb compare`: every back end of an experiment file on the same folds, and the report.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare back ends head to head on the same participant-level folds and write the report.",
        discussion: """
        The experiment file (YAML) names the manifest, the task, the encoders to pretrain (per fold, on the fold's \
        training participants and unlabelled scans; or once on an independent set) and the back ends; see \
        docs/compare.md. Stage outputs go to --work keyed by their inputs, so an interrupted or repeated run \
        reuses what it finished. The report (index.html, metrics.json, metrics.tsv, predictions.tsv) goes to \
        --out, by default reports/<name>-<UTC time>/.
        """
    )

    @Option(help: "The experiment file (YAML or JSON).")
    var config: String

    @Option(help: "The report folder (new or empty; default: <reports>/<name>-<UTC time>).")
    var out: String?

    @Option(help: "Where reports go when --out is not given.")
    var reports = "reports"

    @Option(help: "Stage outputs (default: work/<name> beside the experiment file).")
    var work: String?

    @Option(help: "Scans read or encoded at once.")
    var workers = 2

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        let url = URL(fileURLWithPath: config)
        let experiment = try ExperimentConfig.load(url)
        let base = url.deletingLastPathComponent()
        let report = URL(fileURLWithPath: out ?? "\(reports)/\(Demo.reportName(experiment.name))")
        var options = CompareOptions(config: experiment, baseDirectory: base,
                                     work: work.map { URL(fileURLWithPath: $0) } ?? base.appendingPathComponent("work/\(experiment.name)"), report: report)
        options.configText = try? String(contentsOf: url, encoding: .utf8)
        options.workers = workers
        let observer = CommandObserver(prefix: "compare")
        let (results, _) = try observer.running { try CompareJob(options, observer: observer.observer).run() }
        printSummary(results, report: report)
    }
}

/// `adwb demo`: the built-in cohort, end to end.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Synthesise the built-in cohort, preprocess it, pretrain an SAE and a CAE per fold, extract, compare four back ends, write the report.",
        discussion: """
        Everything the demo makes goes to --dir (default demo/): the cohort, the preprocessed scans, the \
        experiment file it runs (experiment.yaml, which `adwb compare --config` takes) and the stage outputs; \
        a rerun reuses the finished steps. The report goes to reports/demo-<UTC time>/. --quick runs a reduced \
        version (40 participants at 4 mm, 3 folds, short training) in about a minute.
        """
    )

    @Flag(help: "A reduced run (about a minute): for checking an installation, not for figures.")
    var quick = false

    @Option(help: "Folder for the demo's data and stage outputs.")
    var dir = "demo"

    @Option(help: "The report folder (new or empty; default: <reports>/<name>-<UTC time>).")
    var out: String?

    @Option(help: "Where reports go when --out is not given.")
    var reports = "reports"

    @Option(help: "Seed of the cohort, folds and training.")
    var seed: UInt64 = 0

    @Option(help: "Scans read or encoded at once.")
    var workers = 2

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        let report = URL(fileURLWithPath: out ?? "\(reports)/\(Demo.reportName(quick ? "demo-quick" : "demo"))")
        let observer = CommandObserver(prefix: "demo")
        let outcome = try observer.running {
            try Demo.run(quick: quick, seed: seed, folder: URL(fileURLWithPath: dir), report: report, workers: workers, observer: observer.observer)
        }
        printSummary(outcome.results, report: outcome.report)
    }
}

/// Prints the headline figures and where the report is.
private func printSummary(_ results: CompareResults, report: URL) {
    for backend in results.backends {
        guard let ba = backend.summary["balanced_accuracy"], let auc = backend.summary["roc_auc"] else { continue }
        print(String(format: "%@  balanced accuracy %.3f ± %.3f [%.3f, %.3f]   ROC AUC %.3f", backend.name.padding(toLength: 12, withPad: " ", startingAt: 0),
                     ba.mean, ba.std, ba.low, ba.high, auc.mean))
    }
    print("report: \(report.appendingPathComponent("index.html").path)")
}

/// Progress bars and log lines on stderr, and Ctrl-C as a clean stop.
final class CommandObserver: @unchecked Sendable {
    private let prefix: String
    private let lock = NSLock()
    private var label = ""
    private var bar: ProgressBar?
    private let interrupt: InterruptFlag

    init(prefix: String) {
        self.prefix = prefix
        interrupt = InterruptFlag(notice: "\(prefix): stopping after the current step (finished stages are kept; rerun to resume)...")
    }

    var observer: CompareObserver {
        CompareObserver(progress: { [self] label, done, total in update(label, done, total) },
                        log: { [self] text in write(text) },
                        shouldStop: { [interrupt] in interrupt.isSet })
    }

    private func update(_ newLabel: String, _ done: Int, _ total: Int) {
        lock.lock()
        defer { lock.unlock() }
        if newLabel != label || bar == nil {
            label = newLabel
            bar = ProgressBar(newLabel, total: total)
        }
        bar?.update(done)
    }

    private func write(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        // A bar in progress has no line end yet.
        let open = bar != nil && isatty(STDERR_FILENO) == 1
        bar = nil
        label = ""
        FileHandle.standardError.write(Data("\(open ? "\n" : "")\(prefix): \(text)\n".utf8))
    }

    /// Runs `body`, turning an interruption into the signal's exit code.
    func running<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch CompareError.interrupted {
            write(CompareError.interrupted.description)
            throw ExitCode(128 + (interrupt.signalNumber ?? SIGINT))
        }
    }
}
