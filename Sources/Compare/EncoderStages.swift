import Autoencoders
import Classification
import Cohort
import Extraction
import Foundation
import TensorCore

/// A pretrained encoder and the key of the stage (or reused run) it came from.
struct PretrainedEncoder {
    let run: URL
    let key: String
}

/// An extraction's output folder and its stage key.
struct ExtractedFeatures {
    let folder: URL
    let key: String
}

/// Where an encoder of the report came from: for the report's pretraining and feature
/// sections and its provenance.
struct EncoderRecord: Codable, Equatable {
    var name: String
    /// nil for an encoder shared by all folds.
    var fold: Int?
    var run: String
    var features: String?
    /// `adwb pretrain` (per fold or on the independent set) or a reused run.
    var origin: String
}

/// Pretraining and extraction stages, each run once per fold (per-fold pretraining) or once
/// for all folds (independent set, reused run), and reused when already finished.
struct EncoderStages {
    let job: CompareJob
    let cohort: CohortFingerprint
    let unlabelled: Manifest?
    private var pretrainedCache: [String: PretrainedEncoder] = [:]
    private var featuresCache: [String: ExtractedFeatures] = [:]
    private(set) var records: [EncoderRecord] = []

    init(job: CompareJob, cohort: CohortFingerprint, unlabelled: Manifest?) {
        (self.job, self.cohort, self.unlabelled) = (job, cohort, unlabelled)
    }

    /// Every pretraining run used, for provenance.
    var runs: [String] { records.map(\.run) }

    private var config: ExperimentConfig { job.config }
    private var work: URL { job.options.work }

    /// The folder of a stage shared by all folds, or of one fold.
    private func scope(_ encoder: EncoderSpec, fold: Int) -> (folder: URL, fold: Int?) {
        encoder.run != nil || config.pretraining == .independent ? (work.appendingPathComponent("shared"), nil)
            : (work.appendingPathComponent("fold-\(fold)"), fold)
    }

    /// The encoder for `fold`: pretrained on the fold's training participants (plus the
    /// unlabelled scans), on the independent set, or a finished run reused after checking that
    /// it never saw an evaluated participant.
    mutating func pretrained(_ encoder: EncoderSpec, fold: Int, folds: [Fold], timings: inout StageTimings) throws(CompareError) -> PretrainedEncoder {
        let (folder, foldIndex) = scope(encoder, fold: fold)
        let cacheKey = "\(folder.lastPathComponent)/\(encoder.name)"
        if let done = pretrainedCache[cacheKey] { return done }
        let result: PretrainedEncoder
        if let path = encoder.run {
            let url = job.resolve(path)
            try LeakageGuard.checkRun(url, folds: folds, task: config.task)
            let model = RunDirectory(url).model
            let attributes = try? FileManager.default.attributesOfItem(atPath: model.path)
            let stamp = "\((attributes?[.size] as? NSNumber)?.intValue ?? -1)-\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
            let configData = (try? Data(contentsOf: RunDirectory(url).config)) ?? Data()
            result = PretrainedEncoder(run: url, key: SHA256.hex(Data((SHA256.hex(configData) + stamp).utf8)))
            records.append(EncoderRecord(name: encoder.name, fold: nil, run: url.path, features: nil, origin: "reused run"))
        } else {
            let manifest = try pretrainingManifest(foldIndex.map { folds[$0] }, folder: folder)
            let label = foldIndex.map { "fold \($0 + 1)/\(folds.count) pretrain \(encoder.name)" } ?? "pretrain \(encoder.name) (independent set)"
            let stage = Stage(name: label, folder: folder.appendingPathComponent("pretrain-\(encoder.name)"), inputs: StageInputs(
                kind: "pretrain", version: compareVersion + "/" + Pretraining.version, settings: try StageInputs.canonical(encoder.config),
                inputs: ["manifest": manifest.hash, "cohort": cohort.hash, "threads": "\(Engine.threads)"]))
            let runFolder = stage.folder.appendingPathComponent("run")
            if stage.isFinished {
                job.observer.log("\(label): reusing \(runFolder.path)")
            } else {
                let started = Date()
                try pretrain(encoder, stage: stage, run: runFolder, manifest: manifest.url, label: label)
                timings.add("pretrain \(encoder.name)", Date().timeIntervalSince(started))
            }
            result = PretrainedEncoder(run: runFolder, key: stage.key)
            records.append(EncoderRecord(name: encoder.name, fold: foldIndex, run: runFolder.path, features: nil,
                                         origin: foldIndex == nil ? "pretrained on the independent set" : "pretrained on fold \(fold)'s training participants"))
        }
        pretrainedCache[cacheKey] = result
        return result
    }

    /// Writes the pretraining manifest: the fold's training rows (labelled or not) and the
    /// unlabelled manifest's rows, or the unlabelled manifest alone (independent).
    private func pretrainingManifest(_ fold: Fold?, folder: URL) throws(CompareError) -> (url: URL, hash: String) {
        var rows: [ManifestRow] = []
        func absolute(_ manifest: Manifest) -> [ManifestRow] {
            manifest.rows.map { row in
                var copy = row
                copy.path = manifest.url(for: row.path).path
                copy.maskPath = row.maskPath.map { manifest.url(for: $0).path }
                copy.labelPath = row.labelPath.map { manifest.url(for: $0).path }
                return copy
            }
        }
        if let fold { rows += absolute(fold.split.train) }
        if let unlabelled { rows += absolute(unlabelled) }
        let combined = Manifest(directory: folder, rows: rows)
        let url = folder.appendingPathComponent("pretraining-manifest.tsv")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try combined.write(to: url)
        } catch let error as CohortError { throw .cohort(error) } catch { throw .io("\(folder.path): \(error.localizedDescription)") }
        return (url, combined.contentHash)
    }

    /// Pretrains into `run`, resuming an interrupted attempt with the same inputs.
    private func pretrain(_ encoder: EncoderSpec, stage: Stage, run: URL, manifest: URL, label: String) throws(CompareError) {
        var resources = PretrainResources()
        resources.workers = job.options.workers
        let observer = job.observer
        do {
            var setup: Pretraining.Setup?
            if stage.wasStarted, FileManager.default.fileExists(atPath: RunDirectory(run).lastCheckpoint.path) {
                setup = try? Pretraining.resume(output: run, manifest: manifest, resources: resources)
                if setup != nil { observer.log("\(label): resuming the interrupted pretraining in \(run.path)") }
            }
            if setup == nil {
                try stage.begin()
                observer.log("\(label): \(encoder.config.model.rawValue.uppercased())\(encoder.config.preset.map { " (\($0))" } ?? "")")
                setup = try Pretraining.start(config: encoder.config, manifest: manifest, output: run, resources: resources, skipBad: false,
                                              overwrite: true) { done, total in observer.progress("\(label): checking scans", done, total) }
            }
            guard let trainer = setup?.trainer else { throw CompareError.stage(name: label, reason: "no trainer") }
            trainer.shouldStop = observer.shouldStop
            trainer.observer = { event in
                switch event {
                case let .batchFinished(phase, epoch, batch, batches, _):
                    observer.progress("\(label): \(phase) epoch \(epoch)", batch, batches)
                case let .epochFinished(row):
                    if row.epoch % 10 == 0 || row.epoch == 1 {
                        observer.log(String(format: "%@: %@ epoch %d, train mse %.4g, validation mse %.4g", label, row.phase, row.epoch, row.trainMSE, row.validationMSE))
                    }
                default: break
                }
            }
            switch try trainer.run() {
            case .finished: try stage.finish()
            case .stopped: throw CompareError.interrupted
            }
        } catch let error as CompareError {
            throw error
        } catch {
            throw .stage(name: label, reason: "\(error)")
        }
    }

    /// Every task scan encoded with `pretrained`, once per fold (or once when shared).
    mutating func features(_ encoder: EncoderSpec, pretrained: PretrainedEncoder, fold: Int, scans: URL,
                           timings: inout StageTimings) throws(CompareError) -> ExtractedFeatures {
        let (folder, foldIndex) = scope(encoder, fold: fold)
        let cacheKey = "\(folder.lastPathComponent)/\(encoder.name)"
        if let done = featuresCache[cacheKey] { return done }
        let label = foldIndex.map { "fold \($0 + 1) extract \(encoder.name)" } ?? "extract \(encoder.name)"
        let scansHash: String
        do { scansHash = try Manifest(contentsOf: scans).contentHash } catch { throw .cohort(error) }
        let stage = Stage(name: label, folder: folder.appendingPathComponent("features-\(encoder.name)"), inputs: StageInputs(
            kind: "extract", version: compareVersion, settings: try StageInputs.canonical(config.extraction),
            inputs: ["pretraining": pretrained.key, "scans": scansHash, "cohort": cohort.hash]))
        if stage.isFinished {
            job.observer.log("\(label): reusing \(stage.folder.path)")
        } else {
            let started = Date()
            try stage.begin()
            job.observer.log("\(label): encoding the task's scans")
            var resources = ExtractionResources()
            resources.workers = job.options.workers
            let observer = job.observer
            do {
                let run = try PretrainedRun.load(pretrained.run)
                try ExtractionOutput.prepare(stage.folder, overwrite: true)
                let set = try Extraction.run(run, manifest: scans, options: config.extraction, resources: resources,
                                             progress: { done, total in observer.progress("\(label)", done, total) },
                                             shouldStop: observer.shouldStop)
                _ = try ExtractionOutput.write(set, run: run, to: stage.folder)
                try ReportSections.write(FeatureReport(set: set, run: run).keySections(), to: stage.folder)
            } catch ExtractionError.interrupted {
                throw .interrupted
            } catch let error as CompareError {
                throw error
            } catch {
                throw .stage(name: label, reason: "\(error)")
            }
            try stage.finish()
            timings.add("extract \(encoder.name)", Date().timeIntervalSince(started))
        }
        if let index = records.lastIndex(where: { $0.name == encoder.name && $0.fold == foldIndex }) { records[index].features = stage.folder.path }
        let result = ExtractedFeatures(folder: stage.folder, key: stage.key)
        featuresCache[cacheKey] = result
        return result
    }
}

/// The feature report's key sections saved beside the features, so the comparison's report
/// can show them without re-reading the features.
enum ReportSections {
    static let file = "report-sections.json"

    struct Section: Codable {
        var id: String
        var title: String
        var body: String
    }

    static func write(_ sections: [(id: String, title: String, body: String)], to folder: URL) throws {
        let data = try JSONEncoder().encode(sections.map { Section(id: $0.id, title: $0.title, body: $0.body) })
        try AtomicFile.write(data, to: folder.appendingPathComponent(file))
    }

    static func read(_ folder: URL) -> [Section] {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent(file)) else { return [] }
        return (try? JSONDecoder().decode([Section].self, from: data)) ?? []
    }
}
