import Classification
import Cohort
import Foundation
import Testing
import TestSupport
@testable import Compare

/// A tiny synthetic cohort (32³ at 6 mm, CN and AD only) and an experiment over it.
private func tinyCohort(_ scratch: ScratchFolder, participants: Int = 24) throws -> URL {
    var options = SyntheticCohortOptions()
    options.participants = participants
    options.shape = [32, 32, 32]
    options.voxelSize = 6
    options.proportions = [0.5, 0, 0.5]
    options.effect = 1.5
    options.seed = 3
    return try SyntheticCohort.generate(options, to: scratch.url("cohort"), generator: "test").manifestURL
}

private let tinyCAE = "{model: cae, settings: {cae: {channels: [4]}, patches: {size: [8, 8, 8], patches_per_epoch: 64}, training: {epochs: 1, batch_size: 16, validation_patches: 16}}}"

private func tinyExperiment(folds: Int = 2, extra: String = "", backends: String? = nil) -> String {
    """
    name: tiny
    manifest: cohort/manifest.tsv
    task: ad-cn
    folds: \(folds)
    seed: 1
    bootstrap_replicates: 200
    encoders:
      - {name: cae, \(tinyCAE.dropFirst())
    backends:
    \(backends ?? "  - {name: svm-cae, kind: svm, encoder: cae, svm: {c_values: [0.1, 1]}}\n  - {name: ica-svm, kind: ica-svm, ica: {components: 3}}")
    \(extra)
    """
}

/// Collects the job's log lines.
private final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}

private func runCompare(_ yaml: String, scratch: ScratchFolder, report: String, work: String = "work") throws -> (CompareResults, [String]) {
    let config = try Demo.parse(yaml, name: "experiment.yaml")
    var options = CompareOptions(config: config, baseDirectory: scratch.root, work: scratch.url(work), report: scratch.url(report))
    options.configText = yaml
    let lines = Lines()
    let (results, _) = try CompareJob(options, observer: CompareObserver(log: { lines.add($0) })).run()
    return (results, lines.all)
}

// MARK: configuration

@Test func experimentFileResolvesEveryLayer() throws {
    let config = try Demo.parse(Demo.experimentYAML(quick: false, seed: 4), name: "demo.yaml")
    #expect(config.name == "demo" && config.folds == 5 && config.seed == 4 && config.task == .adVsCN && config.pretraining == .perFold)
    #expect(config.encoders.map(\.name) == ["sae", "cae"])
    // Preset, then the file's settings.
    #expect(config.encoders[0].config.preset == "payan2015" && config.encoders[0].config.training.epochs == 20)
    #expect(config.encoders[0].config.patches.patchesPerEpoch == 50_000 && config.encoders[0].config.sae?.hidden == [150])
    #expect(config.encoders[1].config.cae?.channels == [8, 16, 32] && config.encoders[1].config.training.epochs == 2)
    #expect(config.backends.map(\.name) == ["svm-sae", "svm-cae", "ica-svm", "cnn-cae"])
    #expect(config.backends[2].input == .voxels && config.backends[2].ica.components == 20)
    #expect(config.backends[3].input == .volumes && config.backends[3].cnn.epochs == 10 && config.backends[3].cnn.dropout == CNNSettings().dropout)
    // An optional setting absent from the defaults (c_values) is accepted.
    let tiny = try Demo.parse(tinyExperiment(), name: "tiny.yaml")
    #expect(tiny.backends[0].svm.cValues == [0.1, 1])
    // ... and left nil when not set.
    let unset = try Demo.parse(tinyExperiment().replacingOccurrences(of: "svm: {c_values: [0.1, 1]}", with: "svm: {kernel: rbf}"), name: "t.yaml")
    #expect(unset.backends[0].svm.cValues == nil && unset.backends[0].svm.kernel == "rbf")
    #expect(config.explanations?.occlusionCube == 16 && config.explanations?.maxScansPerClass == 4 && config.explanations?.occlusionStride == nil)
    let off = try Demo.parse(tinyExperiment(extra: "explanations: off"), name: "t.yaml")
    #expect(off.explanations == nil)
}

@Test func badExperimentFilesNameTheProblem() {
    func error(_ yaml: String) -> String {
        do { _ = try Demo.parse(yaml, name: "x.yaml"); return "accepted" } catch { return error.description }
    }
    let base = tinyExperiment()
    #expect(error(base + "\nfolds_typo: 3").contains("unknown option 'folds_typo'"))
    #expect(error(base.replacingOccurrences(of: "task: ad-cn", with: "task: ad-nc")).contains("task 'ad-nc'"))
    #expect(error(base.replacingOccurrences(of: "c_values: [0.1, 1]", with: "c_value: 1")).contains("backends[0].svm"))
    #expect(error(base.replacingOccurrences(of: "encoder: cae, svm", with: "encoder: vae, svm")).contains("no encoder named 'vae'"))
    #expect(error(base.replacingOccurrences(of: "name: ica-svm", with: "name: svm-cae")).contains("must be unique"))
    #expect(error(base.replacingOccurrences(of: "folds: 2", with: "folds: two")).contains("'folds' should be an integer"))
    #expect(error(base + "\npretraining: independent").contains("unlabelled_manifest"))
    #expect(error(base.replacingOccurrences(of: "name: tiny", with: "name: ../up")).contains("name '../up'"))
    #expect(error(base.replacingOccurrences(of: "{name: cae, model: cae,", with: "{name: cae, run: old, model: cae,")).contains("reuses a run"))
    #expect(error(base.replacingOccurrences(of: "kind: ica-svm, ica", with: "kind: svm, ica")).contains("name the encoder"))
}

// MARK: leakage

@Test func foldsThatLeakAreRefused() throws {
    let scratch = try ScratchFolder("compare-leakage")
    defer { scratch.remove() }
    let manifestURL = try tinyCohort(scratch)
    let manifest = try Manifest(contentsOf: manifestURL)
    let participants = manifest.labeled.participants
    func leakage(_ yaml: String, report: String) -> String? {
        do { _ = try runCompare(yaml, scratch: scratch, report: report); return nil } catch let error as CompareError {
            guard case .leakage = error else { return "not leakage: \(error)" }
            return error.description
        } catch { return "\(error)" }
    }
    // A participant on both sides of fold 0.
    let splits = scratch.url("splits")
    for fold in 0..<2 {
        let validation = manifest.filter { participants.firstIndex(of: $0.participantID).map { $0 % 2 == fold } ?? false }
        var train = manifest.filter { row in !validation.rows.contains { $0.participantID == row.participantID } }
        if fold == 0 { train.rows.append(validation.rows[0]) }
        try train.write(to: splits.appendingPathComponent("split-\(fold)/train.tsv"))
        try validation.write(to: splits.appendingPathComponent("split-\(fold)/validation.tsv"))
    }
    let both = leakage(tinyExperiment(extra: "splits: splits"), report: "r1")
    #expect(both?.contains(validationParticipant(manifest, participants, fold: 0)) == true, "\(both ?? "accepted")")
    // A participant evaluated in two folds.
    let twice = scratch.url("twice")
    for fold in 0..<2 {
        let validation = manifest.filter { participants.firstIndex(of: $0.participantID).map { $0 % 2 == fold || $0 == 0 } ?? false }
        let train = manifest.filter { row in !validation.rows.contains { $0.participantID == row.participantID } }
        try train.write(to: twice.appendingPathComponent("split-\(fold)/train.tsv"))
        try validation.write(to: twice.appendingPathComponent("split-\(fold)/validation.tsv"))
    }
    let message = leakage(tinyExperiment(extra: "splits: twice"), report: "r2")
    #expect(message?.contains("\(participants[0]) is in the validation sets of folds 0 and 1") == true, "\(message ?? "accepted")")
    // An independent pretraining set that shares a participant with the experiment.
    try manifest.filter { $0.participantID == participants[3] }.write(to: scratch.url("unlabelled.tsv"))
    let shared = leakage(tinyExperiment(extra: "pretraining: independent\nunlabelled_manifest: unlabelled.tsv"), report: "r3")
    #expect(shared?.contains(participants[3]) == true, "\(shared ?? "accepted")")
    // Nothing was trained and no report written.
    #expect(!FileManager.default.fileExists(atPath: scratch.path("work/fold-0")))
    #expect(!FileManager.default.fileExists(atPath: scratch.path("r1")))
}

private func validationParticipant(_ manifest: Manifest, _ participants: [String], fold: Int) -> String {
    manifest.rows.first { participants.firstIndex(of: $0.participantID).map { $0 % 2 == fold } ?? false }?.participantID ?? "?"
}

// MARK: a whole comparison

@Test func comparisonIsConsistentReproducibleAndResumes() throws {
    let scratch = try ScratchFolder("compare-run")
    defer { scratch.remove() }
    let manifestURL = try tinyCohort(scratch)
    let manifest = try Manifest(contentsOf: manifestURL)
    let (results, firstLog) = try runCompare(tinyExperiment(), scratch: scratch, report: "report-1")

    // Every labelled AD/CN scan is held out exactly once, by every back end.
    let labelled = Set(manifest.rows.filter { $0.diagnosis == .ad || $0.diagnosis == .cn }.map { "\($0.participantID)/\($0.sessionID)" })
    for backend in results.backends {
        let rows = results.predictions[backend.name] ?? []
        #expect(rows.count == labelled.count && Set(rows.map { "\($0.participantID)/\($0.sessionID)" }) == labelled, "\(backend.name)")
        // Fold metrics are those of the fold's rows; the summary is their mean.
        for fold in backend.folds {
            let (metrics, _) = MetricSet.of(rows.filter { $0.fold == fold.fold }, classes: 2)
            #expect(metrics == fold.metrics)
        }
        let mean = backend.folds.map(\.metrics.balancedAccuracy).reduce(0, +) / Double(backend.folds.count)
        #expect(abs((backend.summary["balanced_accuracy"]?.mean ?? .nan) - mean) < 1e-12)
        let summary = try #require(backend.summary["accuracy"])
        #expect(summary.low <= summary.pooled && summary.pooled <= summary.high)
    }
    // McNemar's discordant counts, counted here from the predictions.
    let test = try #require(results.paired.first)
    let first = results.predictions["svm-cae"] ?? [], second = results.predictions["ica-svm"] ?? []
    var b = 0, c = 0
    for row in first {
        guard let other = second.first(where: { $0.participantID == row.participantID && $0.sessionID == row.sessionID }) else { continue }
        if row.predicted == row.truth && other.predicted != other.truth { b += 1 }
        if row.predicted != row.truth && other.predicted == other.truth { c += 1 }
    }
    #expect(test.mcNemarB == b && test.mcNemarC == c)
    #expect(firstLog.contains { $0.contains("fold 1/2 pretrain cae") })

    // The report folder.
    for name in ["index.html", "metrics.json", "metrics.tsv", "predictions.tsv", "experiment.yaml"] {
        #expect(FileManager.default.fileExists(atPath: scratch.path("report-1/\(name)")), "\(name)")
    }
    let html = try String(contentsOf: scratch.url("report-1/index.html"), encoding: .utf8)
    _ = try XMLTree(html.replacingOccurrences(of: "<!DOCTYPE html>", with: ""))

    // A rerun reuses every stage and gives the same bytes.
    let (_, rerunLog) = try runCompare(tinyExperiment(), scratch: scratch, report: "report-2")
    #expect(!rerunLog.contains { $0.contains("training (") || $0.contains("encoding") })
    #expect(try Data(contentsOf: scratch.url("report-1/metrics.tsv")) == Data(contentsOf: scratch.url("report-2/metrics.tsv")))

    // A changed SVM setting redoes the SVM only.
    let changed = tinyExperiment().replacingOccurrences(of: "c_values: [0.1, 1]", with: "c_values: [1]")
    let (_, changedLog) = try runCompare(changed, scratch: scratch, report: "report-3")
    #expect(changedLog.filter { $0.contains("training (") }.count == 2 && changedLog.allSatisfy { !$0.contains("ica-svm: training") })
    #expect(!changedLog.contains { $0.contains("encoding") })

    // The same experiment in a fresh work folder: the same numbers.
    _ = try runCompare(tinyExperiment(), scratch: scratch, report: "report-4", work: "work-fresh")
    #expect(try Data(contentsOf: scratch.url("report-1/metrics.tsv")) == Data(contentsOf: scratch.url("report-4/metrics.tsv")))

    // A report folder is never overwritten.
    #expect(throws: CompareError.self) { _ = try runCompare(tinyExperiment(), scratch: scratch, report: "report-1") }
}

@Test func interruptedPretrainingResumes() throws {
    let scratch = try ScratchFolder("compare-resume")
    defer { scratch.remove() }
    _ = try tinyCohort(scratch)
    let config = try Demo.parse(tinyExperiment(), name: "tiny.yaml")
    var options = CompareOptions(config: config, baseDirectory: scratch.root, work: scratch.url("work"), report: scratch.url("r"))
    options.workers = 1
    // Stop at the first progress report of the first pretraining.
    let stop = Lines()
    let observer = CompareObserver(progress: { label, _, _ in if label.contains("pretrain") && label.contains("epoch") { stop.add(label) } },
                                   shouldStop: { !stop.all.isEmpty })
    #expect(throws: CompareError.self) { _ = try CompareJob(options, observer: observer).run() }
    #expect(!FileManager.default.fileExists(atPath: scratch.path("work/fold-0/pretrain-cae/stage.json")))
    #expect(FileManager.default.fileExists(atPath: scratch.path("work/fold-0/pretrain-cae/stage-pending.json")))
    // The rerun goes on from there and finishes.
    options.report = scratch.url("r2")
    let lines = Lines()
    let (results, _) = try CompareJob(options, observer: CompareObserver(log: { lines.add($0) })).run()
    #expect(results.backends.count == 2)
    #expect(lines.all.contains { $0.contains("resuming the interrupted pretraining") })
    #expect(FileManager.default.fileExists(atPath: scratch.path("work/fold-0/pretrain-cae/stage.json")))
}
