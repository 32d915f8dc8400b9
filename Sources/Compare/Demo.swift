import Cohort
import Foundation
import Preprocessing
import TensorCore
import Yams

/// `adwb demo`: the whole product on the built-in synthetic cohort, with no data needed.
///
/// ```
/// <folder>/cohort/          adwb synth            (skipped when the same recipe is there)
/// <folder>/preprocessed/    adwb preprocess       (RAS, affine registration to the cohort's
///                                                  template, skull strip, z-score; reuses scans)
/// <folder>/experiment.yaml  the comparison below, as a file `adwb compare --config` takes
/// <folder>/work/            the comparison's stages (a rerun resumes after the finished ones)
/// <reports>/demo-<time>/    the report
/// ```
public enum Demo {
    /// The synthetic cohort: 120 participants (20% unlabelled, a quarter with a second
    /// session) at 64³ × 3 mm (the 10-minute budget on two cores; `adwb synth` makes 2 mm
    /// cohorts); `quick`: 40 participants at 48³ × 4 mm. All cover the same 192 mm field of
    /// view.
    public static func cohort(quick: Bool, seed: UInt64) -> SyntheticCohortOptions {
        var options = SyntheticCohortOptions()
        options.seed = seed
        options.participants = quick ? 40 : 120
        options.shape = quick ? [48, 48, 48] : [64, 64, 64]
        options.voxelSize = quick ? 4 : 3
        return options
    }

    /// The experiment: SVM on SAE and on CAE features, ICA + SVM on voxels, and the CAE
    /// fine-tuned with a dense head, AD vs CN, participant-level folds, encoders pretrained
    /// inside every fold. `quick` trims epochs, folds and bootstrap replicates only.
    public static func experimentYAML(quick: Bool, seed: UInt64) -> String {
        let name = quick ? "demo-quick" : "demo"
        let folds = quick ? 3 : 5
        // Full: the published SAE (Payan & Montana 2015) with fewer patches per epoch, the CAE
        // (after Hosseini-Asl et al. 2016) for 2 epochs; quick: a fraction of both.
        // Both see only the brain: the z-scored background's level varies with global atrophy
        // and would otherwise be a shortcut that no anatomy explains.
        let sae = quick ? "{training: {epochs: 4}, patches: {patches_per_epoch: 20000, zero_outside_mask: true}}"
            : "{training: {epochs: 20}, patches: {patches_per_epoch: 50000, zero_outside_mask: true}}"
        let cae = quick ? "{training: {epochs: 1}, patches: {size: [16, 16, 16], patches_per_epoch: 256, zero_outside_mask: true}}"
            : "{training: {epochs: 2}, patches: {zero_outside_mask: true}}"
        let cnn = quick ? "{epochs: 4, patience: 4, hidden: [16]}" : "{epochs: 10, patience: 4}"
        return """
        # adwb demo\(quick ? " --quick" : ""): the comparison the demo runs (adwb compare --config this file).
        name: \(name)
        manifest: preprocessed/manifest.tsv
        task: ad-cn
        folds: \(folds)
        seed: \(seed)
        pretraining: per-fold
        bootstrap_replicates: \(quick ? 200 : 2000)
        explanations: {occlusion_cube: \(quick ? 12 : 16), max_scans_per_class: \(quick ? 2 : 4)}
        encoders:
          - {name: sae, preset: payan2015, settings: \(sae)}
          - {name: cae, preset: hosseini2016, settings: \(cae)}
        backends:
          - {name: svm-sae, kind: svm, encoder: sae}
          - {name: svm-cae, kind: svm, encoder: cae}
          - {name: ica-svm, kind: ica-svm, ica: {components: \(quick ? 8 : 20)}}
          - {name: cnn-cae, kind: cnn, encoder: cae, cnn: \(cnn)}

        """
    }

    /// What the demo did: the report's files and the comparison's results.
    public struct Outcome {
        public var report: URL
        public var results: CompareResults
        public var files: [URL]
    }

    /// Runs every step; finished steps of an earlier run in `folder` are reused.
    /// - Parameters:
    ///   - folder: the demo's data (cohort, preprocessed scans, stage outputs).
    ///   - report: the report folder (new or empty).
    public static func run(quick: Bool, seed: UInt64 = 0, folder: URL, report: URL, workers: Int = 2,
                           observer: CompareObserver) throws(CompareError) -> Outcome {
        let options = cohort(quick: quick, seed: seed)
        let cohortFolder = folder.appendingPathComponent("cohort")
        let synthStage = Stage(name: "synth", folder: folder.appendingPathComponent("work/synth"), inputs: StageInputs(
            kind: "synth", version: compareVersion, settings: try StageInputs.canonical(options), inputs: [:]))
        let manifest = cohortFolder.appendingPathComponent("manifest.tsv")
        if synthStage.isFinished && FileManager.default.fileExists(atPath: manifest.path) {
            observer.log("synth: reusing \(cohortFolder.path)")
        } else {
            observer.log("synth: \(options.participants) participants, \(options.shape.map(String.init).joined(separator: "x")) voxels of \(options.voxelSize) mm")
            try synthStage.begin()
            do {
                _ = try SyntheticCohort.generate(options, to: cohortFolder, generator: "adwb demo") { done, total in
                    observer.progress("synth", done, total)
                }
            } catch { throw .cohort(error) }
            try synthStage.finish()
        }
        try observerStop(observer)

        // Preprocessing: every scan registered to the cohort's own template, masked, z-scored.
        let preprocessed = folder.appendingPathComponent("preprocessed")
        observer.log("preprocess: registration to the synthetic template, skull strip, z-score")
        do {
            let template = try SyntheticCohort.template(options)
            let preprocessor = try ScanPreprocessor(options: PreprocessingOptions(),
                                                    template: try Template(image: template.t1, mask: template.mask, name: "built-in synthetic template"))
            var job = PreprocessJob(manifest: manifest, output: preprocessed, preprocessor: preprocessor)
            job.workers = workers
            let summary = try job.run(progress: { done, total in observer.progress("preprocess", done, total) },
                                      shouldStop: observer.shouldStop, log: { observer.log("preprocess: " + $0) })
            observer.log("preprocess: \(summary.records.count) scans (\(summary.reused) reused); QC page \(summary.qcPage?.path ?? "-")")
        } catch let error as PreprocessJobError {
            if case .interrupted = error { throw .interrupted }
            throw .stage(name: "preprocess", reason: error.description)
        } catch let error as CohortError {
            throw .cohort(error)
        } catch {
            throw .stage(name: "preprocess", reason: "\(error)")
        }
        try observerStop(observer)

        let text = experimentYAML(quick: quick, seed: seed)
        let configURL = folder.appendingPathComponent("experiment\(quick ? "-quick" : "").yaml")
        do { try AtomicFile.write(Data(text.utf8), to: configURL) } catch { throw .io("\(configURL.path): \(error)") }
        let config = try parse(text, name: configURL.path)
        var compare = CompareOptions(config: config, baseDirectory: folder, work: folder.appendingPathComponent("work/\(config.name)"), report: report)
        compare.configText = text
        compare.workers = workers
        let (results, files) = try CompareJob(compare, observer: observer).run()
        return Outcome(report: report, results: results, files: files)
    }

    /// An experiment from YAML text.
    public static func parse(_ text: String, name: String) throws(CompareError) -> ExperimentConfig {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw .config("\(name) is not valid YAML: \(error)") }
        guard let mapping = node?.mapping else { throw .config("\(name): expected a mapping of options") }
        let config = try ExperimentConfig.parse(mapping, name: name)
        try config.validate()
        return config
    }

    private static func observerStop(_ observer: CompareObserver) throws(CompareError) {
        if observer.shouldStop() { throw .interrupted }
    }

    /// The report folder's default name: `<experiment>-<UTC date>-<time>`.
    public static func reportName(_ experiment: String, date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "\(experiment)-\(formatter.string(from: date))"
    }
}
