import Autoencoders
import Classification
import Cohort
import Extraction
import Foundation
import TensorCore

/// Version of the comparison's stage layout and results: part of every stage key, so a
/// change that alters results must bump it.
public let compareVersion = "adwb-compare-1"

/// What to run and where.
public struct CompareOptions: Sendable {
    public var config: ExperimentConfig
    /// Relative paths in `config` are resolved against this folder (the file's).
    public var baseDirectory: URL
    /// The experiment file's text, kept in the report's provenance.
    public var configText: String?
    /// Stage outputs (keyed by their inputs; a rerun reuses the finished ones).
    public var work: URL
    /// The report folder (created; must not hold an earlier report).
    public var report: URL
    /// Scans read or encoded at once by pretraining and extraction.
    public var workers = 2

    public init(config: ExperimentConfig, baseDirectory: URL, work: URL, report: URL) {
        (self.config, self.baseDirectory, self.work, self.report) = (config, baseDirectory, work, report)
    }
}

/// Progress and messages from a comparison: `progress(label, done, total)` for the work in
/// hand (batches of an epoch, scans of an extraction), `log` for one line per stage.
public struct CompareObserver: Sendable {
    public var progress: @Sendable (String, Int, Int) -> Void
    public var log: @Sendable (String) -> Void
    public var shouldStop: @Sendable () -> Bool

    public init(progress: @escaping @Sendable (String, Int, Int) -> Void = { _, _, _ in }, log: @escaping @Sendable (String) -> Void = { _ in },
                shouldStop: @escaping @Sendable () -> Bool = { false }) {
        (self.progress, self.log, self.shouldStop) = (progress, log, shouldStop)
    }
}

/// `adwb compare`: every back end on the same participant-level folds, each fold's encoders
/// pretrained on that fold's training participants (plus unlabelled scans) only, then the
/// per-fold metrics, their summaries and paired tests, and the report.
///
/// Stages, each in its own folder of `work` and keyed by its inputs (`Stage`):
/// ```
/// splits/split-<i>/{train,validation}.tsv      the folds (made from the seed, or copied)
/// fold-<i>/pretrain-<encoder>/run/             adwb pretrain      (shared/ when independent)
/// fold-<i>/features-<encoder>/                 adwb extract
/// fold-<i>/backend-<name>/                     adwb classify
/// ```
public struct CompareJob {
    public let options: CompareOptions
    let observer: CompareObserver

    public init(_ options: CompareOptions, observer: CompareObserver = CompareObserver()) {
        self.options = options
        self.observer = observer
    }

    var config: ExperimentConfig { options.config }

    func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path).standardizedFileURL
            : options.baseDirectory.appendingPathComponent(path).standardizedFileURL
    }

    /// Runs every stage not already finished, then writes the report.
    /// - Returns: the results and the report's files.
    public func run() throws(CompareError) -> (results: CompareResults, files: [URL]) {
        let started = Date()
        try config.validate()
        var timings = StageTimings()
        try prepareReportFolder()
        let manifestURL = resolve(config.manifest)
        let manifest: Manifest
        do { manifest = try Manifest(contentsOf: manifestURL) } catch { throw .cohort(error) }
        let cohort = try CohortFingerprint(manifest)
        let folds = try timings.time("folds") { () throws(CompareError) in try makeFolds(manifest) }
        try LeakageGuard.checkFolds(folds, task: config.task)
        observer.log("\(folds.count) folds, \(config.task.title): " + folds.enumerated().map { index, fold in
            "fold \(index) trains on \(fold.trainParticipants(task: config.task)) and validates on \(fold.validationParticipants(task: config.task)) participants"
        }.joined(separator: "; "))
        var unlabelled: Manifest?
        if let path = config.unlabelledManifest {
            do { unlabelled = try Manifest(contentsOf: resolve(path)) } catch { throw .cohort(error) }
        }
        if let unlabelled { try LeakageGuard.checkUnlabelled(unlabelled, manifest: manifest, folds: folds, mode: config.pretraining) }

        // The task's scans: what extraction encodes (the same rows for every fold).
        let scansURL = options.work.appendingPathComponent("scans-\(config.task.rawValue).tsv")
        let taskScans = manifest.filter { config.task.label($0.diagnosis) != nil }
        do { try taskScans.write(to: scansURL) } catch { throw .cohort(error) }

        var encoders = EncoderStages(job: self, cohort: cohort, unlabelled: unlabelled)
        var outcomes: [String: [FoldPredictions]] = [:]
        var explanations: [String: [FoldExplanations]] = [:]
        var notes: [String] = []
        for (index, fold) in folds.enumerated() {
            try checkStop()
            for backend in config.backends {
                let label = "fold \(index + 1)/\(folds.count) \(backend.name)"
                var upstream: [String: String] = [:]
                var request = ClassifyRequest(backend: backend.kind, task: config.task, split: fold.folder,
                                              out: options.work.appendingPathComponent("fold-\(index)/backend-\(backend.name)"))
                (request.svm, request.ica, request.cnn, request.seed, request.overwrite) = (backend.svm, backend.ica, backend.cnn, config.seed, true)
                request.explanations = config.explanations
                if let name = backend.encoder, let encoder = config.encoders.first(where: { $0.name == name }) {
                    let pretrained = try encoders.pretrained(encoder, fold: index, folds: folds, timings: &timings)
                    switch backend.input {
                    case .features:
                        let features = try encoders.features(encoder, pretrained: pretrained, fold: index, scans: scansURL, timings: &timings)
                        request.features = features.folder
                        upstream["features"] = features.key
                    case .volumes, .voxels:
                        request.model = pretrained.run
                        request.manifest = manifestURL
                        upstream["pretraining"] = pretrained.key
                    }
                } else {
                    request.manifest = manifestURL
                }
                upstream["cohort"] = cohort.hash
                upstream["train"] = fold.trainHash
                upstream["validation"] = fold.validationHash
                upstream["threads"] = "\(Engine.threads)"
                let stage = Stage(name: label, folder: request.out, inputs: StageInputs(
                    kind: "classify", version: compareVersion, settings: try StageInputs.canonical(backend) + (try StageInputs.canonical(config.explanations)),
                    inputs: upstream.merging(["seed": "\(config.seed)", "task": config.task.rawValue]) { a, _ in a }))
                if !stage.isFinished {
                    observer.log("\(label): training (\(backend.kind.rawValue) on \(backend.input.rawValue))")
                    try stage.begin()
                    let begun = Date()
                    do {
                        let bar = observer.progress
                        _ = try ClassifyJob.run(request, progress: { step, done, total in bar("\(label): \(step)", done, total) },
                                                shouldStop: observer.shouldStop)
                    } catch {
                        if case .interrupted = error { throw .interrupted }
                        throw .stage(name: label, reason: error.description)
                    }
                    timings.add("classify \(backend.name)", Date().timeIntervalSince(begun))
                    try stage.finish()
                } else {
                    observer.log("\(label): reusing \(request.out.path)")
                }
                let predictions = try FoldPredictions.read(request.out.appendingPathComponent(ClassifyJob.predictionsFile),
                                                           fold: index, task: config.task)
                outcomes[backend.name, default: []].append(predictions)
                if let found = FoldExplanations.read(request.out, fold: index) { explanations[backend.name, default: []].append(found) }
                if index == 0, let extra = try? ClassifyNotes.read(request.out), !extra.isEmpty {
                    notes += extra.map { "\(backend.name): \($0)" }
                }
            }
        }
        observer.log("summarising")
        var results = try timings.time("summary") { () throws(CompareError) in
            try CompareResults.make(config: config, folds: folds, outcomes: outcomes, notes: notes)
        }
        let averaged = try timings.time("explanation maps") { () throws(CompareError) in
            try ExplanationMaps.average(explanations, backends: config.backends.map(\.name), report: options.report)
        }
        results.explanations = averaged.summaries
        results.notes += averaged.notes
        let anatomy = averaged.maps.first.flatMap { ExplanationMaps.meanAnatomy(taskScans, shape: $0.shape) }
        var provenance = Provenance.collect(options: options, manifest: manifest, manifestURL: manifestURL, cohort: cohort,
                                            folds: folds, encoderRuns: encoders.runs, started: started)
        timings.add("total", Date().timeIntervalSince(started))
        provenance.seconds = timings.entries
        var report = CompareReport(results: results, provenance: provenance, options: options, folds: folds, encoders: encoders.records,
                                   maps: averaged.maps, anatomy: anatomy)
        let files = try report.write()
        return (results, files)
    }

    func checkStop() throws(CompareError) {
        if observer.shouldStop() { throw .interrupted }
    }

    /// The report folder must be new or empty: a report is never overwritten in part. It is
    /// created when the report is written, so a refused or failed run leaves none.
    func prepareReportFolder() throws(CompareError) {
        let path = options.report.path
        if let contents = try? FileManager.default.contentsOfDirectory(atPath: path), !contents.isEmpty {
            throw .config("\(path) already holds files: a report goes into a new folder (choose another --out)")
        }
    }

    /// The experiment's folds: generated from the seed (written to `work/splits`), or read
    /// from `splits`.
    func makeFolds(_ manifest: Manifest) throws(CompareError) -> [Fold] {
        let folder: URL
        if let splits = config.splits {
            folder = resolve(splits)
        } else {
            folder = options.work.appendingPathComponent("splits")
            do {
                let split = try CohortSplitter.split(manifest, options: SplitOptions(folds: config.folds, seed: config.seed))
                try split.write(to: folder, source: manifest)
            } catch { throw .cohort(error) }
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter(CohortSplit.isFoldFolder) } catch {
            throw .config("\(folder.path): cannot list the split folders (\(error.localizedDescription))")
        }
        let ordered = names.compactMap { name in Int(name.dropFirst(6)).map { ($0, name) } }.sorted { $0.0 < $1.0 }
        guard ordered.count >= 2 else { throw .config("\(folder.path) holds \(ordered.count) split-<i> folder(s); a cross-validation needs at least 2") }
        return try ordered.map { (_, name) throws(CompareError) in try Fold(folder: folder.appendingPathComponent(name)) }
    }
}

/// One outer fold: its split folder, read and checked.
struct Fold {
    let folder: URL
    let split: SplitFolder
    var trainHash: String { split.train.contentHash }
    var validationHash: String { split.validation.contentHash }

    /// Reads `train.tsv` and `validation.tsv` (and refuses a participant on both sides).
    init(folder: URL) throws(CompareError) {
        self.folder = folder
        do { split = try SplitFolder(folder) } catch {
            if case .dataLeakage = error { throw .leakage("\(folder.path): \(error)") }
            throw .cohort(error)
        }
    }

    func trainParticipants(task: ClassificationTask) -> Int {
        Set(split.train.rows.filter { task.label($0.diagnosis) != nil }.map(\.participantID)).count
    }

    func validationParticipants(task: ClassificationTask) -> Int {
        Set(split.validation.rows.filter { task.label($0.diagnosis) != nil }.map(\.participantID)).count
    }
}

/// The cohort's identity for stage keys: the manifest's content and every scan file's size
/// and modification time (a scan rewritten in place invalidates the stages that read it).
struct CohortFingerprint {
    let hash: String

    init(_ manifest: Manifest) throws(CompareError) {
        var text = manifest.contentHash + "\n"
        for row in manifest.rows {
            for path in [row.path] + [row.maskPath].compactMap({ $0 }) {
                let url = manifest.url(for: path)
                let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
                guard let size = attributes?[.size] as? NSNumber, let modified = attributes?[.modificationDate] as? Date else {
                    throw .badOutput(path: url.path, reason: "manifest line \(row.line.map(String.init) ?? "?"): the scan does not exist or cannot be read")
                }
                text += "\(path)\t\(size)\t\(modified.timeIntervalSince1970)\n"
            }
        }
        hash = SHA256.hex(Data(text.utf8))
    }
}

/// Wall-clock seconds per stage kind (summed over folds).
struct StageTimings {
    private(set) var entries: [String: Double] = [:]

    mutating func add(_ name: String, _ seconds: Double) { entries[name, default: 0] += seconds }

    mutating func time<T>(_ name: String, _ body: () throws(CompareError) -> T) throws(CompareError) -> T {
        let started = Date()
        let value = try body()
        add(name, Date().timeIntervalSince(started))
        return value
    }
}
