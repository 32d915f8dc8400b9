import Classifiers
import Autoencoders
import Cohort
import Extraction
import Foundation
import Learn
import Patches
import TensorCore

/// Where a run's inputs came from, with hashes, for `metrics.json`.
public struct ClassifyProvenance: Codable, Equatable, Sendable {
    public var adwbVersion: String
    public var split: String
    public var trainSha256: String
    public var features: String?
    public var featuresSha256: String?
    public var manifest: String?
    public var model: String?
    public var seed: UInt64
    public var threads: Int

    enum CodingKeys: String, CodingKey {
        case split, features, manifest, model, seed, threads
        case adwbVersion = "adwb_version", trainSha256 = "train_sha256", featuresSha256 = "features_sha256"
    }
}

/// The grid search's outcome, for `metrics.json`.
public struct ModelSelectionRecord: Codable, Equatable, Sendable {
    public var chosen: [String: String]
    public var innerFolds: Int
    public var candidates: [CandidateScore]

    enum CodingKeys: String, CodingKey { case chosen, candidates, innerFolds = "inner_folds" }
}

/// The voxel ICA's outcome, for `metrics.json`.
public struct ICARecord: Codable, Equatable, Sendable {
    public var input: String
    public var components: Int
    public var voxels: Int?
    public var grid: [Int]?
    public var iterations: Int?
    public var converged: Bool?

    enum CodingKeys: String, CodingKey { case input, components, voxels, grid, iterations, converged }
}

/// Everything `metrics.json` holds.
public struct ClassifyReport: Codable, Sendable {
    public struct Evaluated: Codable, Sendable {
        public var set: String
        public var scans: Int
        public var participants: Int
        public var metrics: ClassificationMetrics
    }

    public var backend: Backend
    public var task: ClassificationTask
    /// Diagnoses in label order; probability columns follow it.
    public var classes: [String]
    public var positiveClass: String?
    public var trainScans: Int
    public var trainParticipants: Int
    public var trainPerClass: [String: Int]
    public var sets: [Evaluated]
    public var modelSelection: ModelSelectionRecord?
    public var ica: ICARecord?
    public var cnn: CNNTrainingRecord?
    public var svmSettings: SVMSettings?
    public var icaSettings: ICASettings?
    public var cnnSettings: CNNSettings?
    /// The explanation maps written (nil when none were asked for).
    public var explanations: ExplanationRecord?
    public var notes: [String]
    public var seconds: [String: Double]
    public var provenance: ClassifyProvenance

    enum CodingKeys: String, CodingKey {
        case backend, task, classes, sets, ica, cnn, notes, seconds, provenance
        case positiveClass = "positive_class", trainScans = "train_scans", trainParticipants = "train_participants"
        case trainPerClass = "train_per_class", modelSelection = "model_selection", svmSettings = "svm_settings"
        case icaSettings = "ica_settings", cnnSettings = "cnn_settings", explanations
    }
}

/// `adwb classify`: fits a back end on a split's training rows and predicts its validation
/// (and test) rows, writing `predictions.tsv` and `metrics.json`.
public enum ClassifyJob {
    public static let predictionsFile = "predictions.tsv"
    public static let metricsFile = "metrics.json"
    public static let componentsFile = "ica_components.nii.gz"
    static let ownFiles = [predictionsFile, metricsFile, componentsFile, CNNBackend.checkpointFile, CNNBackend.logFile] + Explanations.fileNames

    /// Progress reports: a stage's name with (done, total) units.
    public typealias Progress = (_ stage: String, _ done: Int, _ total: Int) -> Void

    /// Runs `request`. Every setting is checked before anything is read; nothing in `out` is
    /// replaced or written until the back end has been fitted and has predicted every set
    /// (the CNN's best checkpoint waits under a staging name); each file is written atomically.
    /// - Returns: the report and the files written.
    public static func run(_ request: ClassifyRequest, progress: Progress = { _, _, _ in },
                           shouldStop: () -> Bool = { false }) throws(ClassificationError) -> (report: ClassifyReport, files: [URL]) {
        try checkInputs(request)
        let started = Date()
        let folder: SplitFolder
        do { folder = try SplitFolder(request.split) } catch { throw .cohort(error) }
        var split = try LabelledSplit(folder, task: request.task)
        if let manifest = request.manifest { split = try attachScans(split, manifest: manifest) }
        let table = try request.features.map { (url: URL) throws(ClassificationError) in try FeatureTable.readForClassification(url) }
        var volumes: (train: VolumeScans, evaluated: [VolumeScans])?
        if request.backend == .cnn, request.manifest != nil {
            // Every scan's header (readable, 3-D, on the training scans' grid) before training.
            let train = try VolumeScans(split.train, options: PatchSamplingOptions(), set: "train.tsv", shape: nil)
            volumes = (train, try split.evaluated.map { (name, scans) throws(ClassificationError) in
                try VolumeScans(scans, options: PatchSamplingOptions(), set: "\(name).tsv", shape: train.shape)
            })
        }
        try prepare(request.out, overwrite: request.overwrite)
        let staging = request.out.appendingPathComponent(stagingPrefix + CNNBackend.checkpointFile)
        defer { try? FileManager.default.removeItem(at: staging) }
        var pending: [(url: URL, write: () throws(ClassificationError) -> Void)] = []
        var explanations = request.explanations.map(Explanations.init)
        var report = ClassifyReport(
            backend: request.backend, task: request.task, classes: request.task.classes.map(\.rawValue),
            positiveClass: request.task.classes.count == 2 ? request.task.classes[1].rawValue : nil,
            trainScans: split.train.count, trainParticipants: Set(split.trainGroups).count,
            trainPerClass: Dictionary(grouping: split.train, by: { $0.diagnosis.rawValue }).mapValues(\.count), sets: [],
            modelSelection: nil, ica: nil, cnn: nil, svmSettings: nil, icaSettings: nil, cnnSettings: nil, explanations: nil, notes: [], seconds: [:],
            provenance: provenance(request, folder: folder, features: table))
        /// Per evaluated set; `scores` stand in for probabilities in ROC AUC when a model has
        /// none (decision values).
        var outcomes: [(predicted: [Int], probabilities: Tensor, scores: Tensor?)] = []
        switch request.backend {
        case .svm, .icaSVM:
            report.svmSettings = request.svm
            report.svmSettings?.cValues = request.svm.cGrid
            var preprocessing: [any Transformer] = []
            var train: Tensor
            var evaluate: (_ scans: [LabelledScan], _ set: String) throws(ClassificationError) -> Tensor
            var voxelICA: SpatialICA?
            if request.backend == .icaSVM { report.icaSettings = request.ica }
            if let table {
                train = try table.matrix(for: split.train, set: "train.tsv")
                evaluate = { scans, set throws(ClassificationError) in try table.matrix(for: scans, set: set) }
                if request.backend == .icaSVM {
                    try checkComponents(request, rows: split.train.count, features: train.shape[1], split: split)
                    preprocessing = [try FastICA.fromSettings(request.ica, seed: request.seed)]
                    report.ica = ICARecord(input: "features", components: request.ica.components, voxels: nil, grid: nil, iterations: nil, converged: nil)
                }
            } else {
                let (layout, voxels) = try VoxelLayout.fit(split.train, settings: request.ica) { progress("reading scans", $0, $1) }
                let ica = try SpatialICA.fit(voxels, layout: layout, settings: request.ica, seed: request.seed)
                voxelICA = ica
                if let warning = ica.warning { report.notes.append(warning) }
                train = try ica.loadings(voxels)
                evaluate = { scans, set throws(ClassificationError) in try ica.loadings(try layout.rows(scans, set: set)) }
                report.ica = ICARecord(input: "voxels", components: request.ica.components, voxels: layout.voxels.count, grid: layout.grid.array,
                                       iterations: ica.iterations, converged: ica.converged)
                let url = request.out.appendingPathComponent(componentsFile)
                pending.append((url, { () throws(ClassificationError) in try ica.writeMaps(to: url) }))
            }
            let model = try SVMFitting.fit(train, labels: split.trainLabels, groups: split.trainGroups, settings: request.svm,
                                           preprocessing: preprocessing, seed: request.seed) { progress("grid search", $0, $1) }
            report.modelSelection = ModelSelectionRecord(chosen: model.chosen, innerFolds: request.svm.innerFolds, candidates: model.candidates)
            report.notes += model.notes
            report.seconds["fit"] = Date().timeIntervalSince(started)
            // LinearSVC has no probabilities: its columns are NaN and ROC AUC comes from its
            // decision values (a rank statistic, the same for any monotone calibration).
            let svmWidth = request.backend == .icaSVM && request.features != nil ? request.ica.components : train.shape[1]
            if explanations != nil {
                let names = table?.names ?? (0..<train.shape[1]).map { "component_\($0)" }
                let svm = Explanations.FittedSVM(decision: model.predictor.decisionFunction, train: train, names: names,
                                                 classes: report.classes, linearKernel: request.svm.kernel == "linear",
                                                 liblinear: request.svm.usesLiblinear(features: svmWidth))
                if let voxelICA {
                    try explanations?.addVoxelWeights(svm, ica: voxelICA, out: request.out)
                } else if let table {
                    try explanations?.addFeatureWeights(svm, table: table, out: request.out)
                }
                report.seconds["explanations"] = Date().timeIntervalSince(started) - (report.seconds["fit"] ?? 0)
            }
            let calibrated = request.svm.probability && !request.svm.usesLiblinear(features: svmWidth)
            if request.svm.probability && !calibrated {
                report.notes.append("the liblinear solver gives no probabilities: prob_ columns are NaN; ROC AUC is computed from decision values")
            }
            for (name, scans) in split.evaluated {
                let x = try evaluate(scans, "\(name).tsv")
                do {
                    let probabilities = calibrated ? try model.predictor.predictProbability(x)
                        : Tensor(repeating: .nan, shape: [scans.count, request.task.classes.count])
                    // Decision values serve as class scores when they are per class: one
                    // column for two classes, or liblinear's one-vs-rest columns (not the
                    // SMO's one-vs-one pairs, whose AUC is left undefined).
                    let perClass = request.task.classes.count == 2 || request.svm.usesLiblinear(features: svmWidth)
                    outcomes.append((try model.predictor.predict(x), probabilities,
                                     calibrated || !perClass ? nil : try model.predictor.decisionFunction(x)))
                } catch { throw .learn(error) }
            }
        case .cnn:
            report.cnnSettings = request.cnn
            let (record, probabilities, occlusion) = try CNNBackend.run(request, split: split, table: table, volumes: volumes, checkpoint: staging, progress: { epoch, epochs, batch, batches in
                progress("epoch \(epoch)/\(epochs)", batch, batches)
            }, explainProgress: progress, shouldStop: shouldStop)
            report.cnn = record
            report.seconds["fit"] = Date().timeIntervalSince(started) - (occlusion?.seconds ?? 0)
            if let occlusion, let shape = volumes?.train.shape {
                explanations?.add(occlusion.maps, classes: report.classes, shape: shape, out: request.out)
                report.seconds["explanations"] = occlusion.seconds
            } else if explanations != nil {
                explanations?.record.notes.append("occlusion maps need the CNN head on whole volumes (--model with --manifest); a head on extracted features has no volume to occlude")
            }
            for p in probabilities { outcomes.append((argmax(p), p, nil)) }
            let checkpoint = request.out.appendingPathComponent(CNNBackend.checkpointFile)
            pending.append((checkpoint, { () throws(ClassificationError) in try install(staging, as: checkpoint) }))
            let log = request.out.appendingPathComponent(CNNBackend.logFile)
            pending.append((log, { () throws(ClassificationError) in try write(Data(CNNBackend.log(record.history).utf8), to: log) }))
        }
        let classes = Array(request.task.classes.indices)
        for ((name, scans), outcome) in zip(split.evaluated, outcomes) {
            let truth = scans.map(\.label)
            var metrics = ClassificationMetrics(truth: truth, predicted: outcome.predicted,
                                                probabilities: outcome.probabilities.scalars.allSatisfy(\.isFinite) ? outcome.probabilities : nil,
                                                classes: classes)
            if let scores = outcome.scores {
                metrics.rocAUC = ClassificationMetrics.rocAUC(truth: truth, scores: scores, classes: classes)
            }
            report.sets.append(ClassifyReport.Evaluated(set: name, scans: scans.count, participants: Set(scans.map(\.participantID)).count,
                                                        metrics: metrics))
        }
        if let explanations {
            report.explanations = explanations.record
            pending += explanations.pending
        }
        report.seconds["total"] = Date().timeIntervalSince(started)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let metricsData: Data
        do { metricsData = try encoder.encode(report) } catch { throw .io("encoding \(metricsFile): \(error)") }
        let predictions = request.out.appendingPathComponent(predictionsFile)
        let metrics = request.out.appendingPathComponent(metricsFile)
        // The back end's own files, then the predictions, and metrics.json last: its presence
        // marks a finished run. Outputs of an earlier run that this one does not make go.
        for (_, writeFile) in pending { try writeFile() }
        try write(Data(predictionTable(split, outcomes).utf8), to: predictions)
        try write(metricsData, to: metrics)
        let written = [predictions, metrics] + pending.map(\.url)
        for name in ownFiles where !written.contains(where: { $0.lastPathComponent == name }) {
            try? FileManager.default.removeItem(at: request.out.appendingPathComponent(name))
        }
        return (report, written)
    }

    /// Which inputs each back end takes, checked before anything is read.
    static func checkInputs(_ request: ClassifyRequest) throws(ClassificationError) {
        switch (request.backend, request.features != nil, request.manifest != nil) {
        case (_, true, true): throw .invalidOption("give --features or --manifest, not both")
        case (.svm, false, _): throw .invalidOption("the svm back end classifies extracted features: give --features (an `adwb extract` output folder)")
        case (.icaSVM, false, false): throw .invalidOption("the ica-svm back end needs --features (ICA on deep features) or --manifest (ICA on voxels)")
        case (.cnn, false, false):
            throw .invalidOption("the cnn back end needs --model (a pretraining run) with --manifest for whole volumes, or --features")
        case (.cnn, false, true) where request.model == nil:
            throw .invalidOption("the cnn back end needs --model (a pretraining run) with --manifest for whole volumes, or --features")
        case (.cnn, true, _) where request.model != nil:
            throw .invalidOption("--model applies to whole volumes (--manifest); a head on --features needs no model")
        default: break
        }
        if request.backend != .cnn, request.model != nil { throw .invalidOption("--model applies to the cnn back end only") }
        try request.validateSettings()
    }

    /// FastICA on features is refitted in every inner fold of the grid search (when there is
    /// more than one candidate): `k` must stay below the smallest set of rows it is fitted on
    /// (centring leaves rank rows − 1) and at most the feature count.
    static func checkComponents(_ request: ClassifyRequest, rows: Int, features: Int, split: LabelledSplit) throws(ClassificationError) {
        var smallest = rows
        let candidates = request.svm.cGrid.count * (request.svm.kernel == "linear" ? 1 : request.svm.gammaValues.count)
        if candidates > 1,
           let folds = try? GroupFolds.split(groups: split.trainGroups, labels: split.trainLabels, folds: request.svm.innerFolds, seed: request.seed) {
            smallest = folds.map(\.train.count).min() ?? rows
        }
        let k = request.ica.components
        guard k >= 1, k <= features else {
            throw .invalidOption("--ica-components \(k): the features have \(features) columns; use 1 to \(features)")
        }
        guard k < smallest else {
            throw .invalidOption("--ica-components \(k): FastICA is fitted on as few as \(smallest) training rows\(smallest < rows ? " (an inner fold of the grid search)" : ""); use 1 to \(smallest - 1)")
        }
    }

    /// The scans of `manifest` for every row of the split (matched by participant and session).
    static func attachScans(_ split: LabelledSplit, manifest url: URL) throws(ClassificationError) -> LabelledSplit {
        let manifest: Manifest
        do { manifest = try Manifest(contentsOf: url) } catch { throw .cohort(error) }
        var rows: [ScanKey: ManifestRow] = [:]
        for row in manifest.rows {
            guard rows.updateValue(row, forKey: ScanKey(participantID: row.participantID, sessionID: row.sessionID)) == nil else {
                throw .duplicateRow(participant: row.participantID, session: row.sessionID, source: url.path)
            }
        }
        func attach(_ scans: [LabelledScan], _ set: String) throws(ClassificationError) -> [LabelledScan] {
            try scans.map { (scan: LabelledScan) throws(ClassificationError) -> LabelledScan in
                guard let row = rows[scan.key] else {
                    throw .missingRow(set: set, line: scan.line, participant: scan.participantID, session: scan.sessionID, source: url.path)
                }
                var attached = scan
                attached.image = manifest.url(for: row.path)
                attached.mask = row.maskPath.map { manifest.url(for: $0) }
                attached.manifestLine = row.line
                return attached
            }
        }
        var result = split
        result.train = try attach(split.train, "train.tsv")
        result.evaluated = try split.evaluated.map { (name, scans) throws(ClassificationError) in (name, try attach(scans, "\(name).tsv")) }
        return result
    }

    /// Refuses a folder with an earlier run's outputs unless `overwrite` (they are replaced
    /// only when the new run has finished), and creates it.
    static func prepare(_ directory: URL, overwrite: Bool) throws(ClassificationError) {
        let existing = ownFiles.filter { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
        if !existing.isEmpty && !overwrite {
            throw .io("\(directory.path) already holds classification outputs (\(existing.joined(separator: ", "))): replace them with --overwrite or choose another --out")
        }
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw .io("cannot create \(directory.path): \(error.localizedDescription)")
        }
    }

    /// A staged file of a run in progress (removed when the run ends, however it ends).
    static let stagingPrefix = ".staging-"

    /// Moves a staged file into place, replacing an earlier one atomically (`rename(2)`;
    /// Foundation's `replaceItemAt` fails on Linux when the target exists).
    static func install(_ staged: URL, as url: URL) throws(ClassificationError) {
        guard rename(staged.path, url.path) == 0 else {
            throw .io("\(url.path): cannot move \(staged.lastPathComponent) into place (\(String(cString: strerror(errno))))")
        }
    }


    static func provenance(_ request: ClassifyRequest, folder: SplitFolder, features: FeatureTable?) -> ClassifyProvenance {
        ClassifyProvenance(adwbVersion: Pretraining.version, split: request.split.standardizedFileURL.path, trainSha256: folder.train.contentHash,
                                  features: request.features?.standardizedFileURL.path, featuresSha256: features?.sha256,
                                  manifest: request.manifest?.standardizedFileURL.path, model: request.model?.standardizedFileURL.path,
                                  seed: request.seed, threads: Engine.threads)
    }

    /// `predictions.tsv`: participant_id, session_id, diagnosis, predicted, one `prob_<class>`
    /// column per class, and the set (validation or test) of the row.
    static func predictionTable(_ split: LabelledSplit, _ outcomes: [(predicted: [Int], probabilities: Tensor, scores: Tensor?)]) -> String {
        let classes = split.task.classes
        // Decision values (when the model has no probabilities): one column for the positive
        // class of two, or one per class (one-vs-rest).
        let scoreWidth = outcomes.first?.scores?.shape[1] ?? 0
        let scoreColumns = scoreWidth == 1 ? ["decision_\(classes[1].rawValue)"] : scoreWidth == classes.count ? classes.map { "decision_\($0.rawValue)" } : []
        var text = (["participant_id", "session_id", "diagnosis", "predicted"] + classes.map { "prob_\($0.rawValue)" } + scoreColumns + ["set"])
            .joined(separator: "\t") + "\n"
        for ((name, scans), outcome) in zip(split.evaluated, outcomes) {
            for (i, scan) in scans.enumerated() {
                let probabilities = (0..<classes.count).map { "\(outcome.probabilities.scalars[i * classes.count + $0])" }
                let scores = (0..<scoreColumns.count).map { column in
                    outcome.scores.map { "\($0.scalars[i * scoreColumns.count + column])" } ?? "NaN"
                }
                text += ([scan.participantID, scan.sessionID, scan.diagnosis.rawValue, classes[outcome.predicted[i]].rawValue]
                    + probabilities + scores + [name]).joined(separator: "\t") + "\n"
            }
        }
        return text
    }

    static func argmax(_ probabilities: Tensor) -> [Int] {
        let (n, k) = (probabilities.shape[0], probabilities.shape[1])
        return (0..<n).map { i in
            var best = 0
            for c in 1..<k where probabilities.scalars[i * k + c] > probabilities.scalars[i * k + best] { best = c }
            return best
        }
    }

    static func write(_ data: Data, to url: URL) throws(ClassificationError) {
        do { try AtomicFile.write(data, to: url) } catch { throw .io("\(url.path): \(error)") }
    }
}
