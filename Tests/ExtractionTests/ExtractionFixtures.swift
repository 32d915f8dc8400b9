import Autoencoders
import Cohort
import Foundation
import Testing

/// A small labelled synthetic cohort shared by the extraction tests (12 participants, 40³
/// voxels at 4.8 mm, CN and AD only, one unlabelled), generated once per process and removed
/// when it exits.
enum ExtractionCohort {
    static let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-extract-cohort-\(getpid())")

    static let manifest: URL = {
        atexit { try? FileManager.default.removeItem(at: ExtractionCohort.folder) }
        var options = SyntheticCohortOptions()
        options.participants = 12
        options.shape = [40, 40, 40]
        options.voxelSize = 4.8
        options.proportions = [0.5, 0, 0.5]
        options.unlabeledFraction = 0.1
        options.secondSessionFraction = 0
        do {
            return try SyntheticCohort.generate(options, to: folder.appendingPathComponent("cohort"), generator: "ExtractionTests").manifestURL
        } catch {
            fatalError("cannot generate the extraction test cohort: \(error)")
        }
    }()

    /// A one-layer SAE (5³ min-max patches, 12 sigmoid units), trained briefly, once.
    static let saeRun: URL = trainOnce("sae") {
        var config = PretrainConfig(model: .sae)
        config.seed = 3
        config.patches.normalization = .minmax
        config.patches.patchesPerEpoch = 2000
        config.sae!.hidden = [12, 6]
        config.training.batchSize = 100
        config.training.epochs = 2
        config.training.validationFraction = 0.2
        config.training.validationPatches = 200
        return config
    }

    /// A two-level CAE (4 and 8 channels, 8³ z-scored patches), trained briefly, once.
    static let caeRun: URL = trainOnce("cae") {
        var config = PretrainConfig(model: .cae)
        config.seed = 4
        config.patches.size = [8, 8, 8]
        config.patches.patchesPerEpoch = 128
        config.cae!.channels = [4, 8]
        config.training.batchSize = 16
        config.training.epochs = 2
        config.training.validationFraction = 0.2
        config.training.validationPatches = 32
        return config
    }

    private static func trainOnce(_ name: String, _ make: () -> PretrainConfig) -> URL {
        let output = folder.appendingPathComponent("run-\(name)")
        do {
            let setup = try Pretraining.start(config: make(), manifest: manifest, output: output)
            _ = try setup.trainer.run()
        } catch {
            fatalError("cannot train the \(name) test run: \(error)")
        }
        return output
    }
}

/// A fresh temporary folder (removed by the caller with `defer`).
func temporaryFolder(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("adwb-\(name)-\(UUID().uuidString)")
}
