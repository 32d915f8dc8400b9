import Autoencoders
import Cohort
import Foundation
import NeuralNet
import Patches
import TensorCore
import Testing

/// A tiny synthetic cohort shared by the tests (8 participants, 48³ voxels at 4 mm, 2 unlabelled),
/// generated once per process.
enum TinyCohort {
    static let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-pretrain-cohort-\(getpid())")

    static let manifest: URL = {
        // Removed when the test process exits.
        atexit { try? FileManager.default.removeItem(at: TinyCohort.folder) }
        var options = SyntheticCohortOptions()
        options.participants = 8
        options.shape = [48, 48, 48]
        options.voxelSize = 4
        options.secondSessionFraction = 0.25
        options.unlabeledFraction = 0.25
        do {
            return try SyntheticCohort.generate(options, to: folder, generator: "PretrainingTests").manifestURL
        } catch {
            fatalError("cannot generate the test cohort: \(error)")
        }
    }()

    /// The parent test process's cohort, seen from an exit test's child process (the child
    /// must not generate its own: a child that dies never runs its `atexit` clean-up). The
    /// parent must have made it first (`_ = TinyCohort.manifest`).
    static func parentManifest() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("adwb-pretrain-cohort-\(getppid())/manifest.tsv")
    }

    /// A copy of the cohort's manifest in `folder` with `edit` applied to its text.
    static func editedManifest(in folder: URL, _ edit: (String) -> String) throws -> URL {
        let text = try String(contentsOf: manifest, encoding: .utf8)
        let url = manifest.deletingLastPathComponent().appendingPathComponent("edited-\(UUID().uuidString).tsv")
        try edit(text).write(to: url, atomically: true, encoding: .utf8)
        _ = folder
        return url
    }
}

/// Small, fast settings: 5³ z-scored patches, one SAE layer of 16 with a linear output.
func smallSAEConfig(seed: UInt64 = 1) -> PretrainConfig {
    var config = PretrainConfig(model: .sae)
    config.patches.normalization = .zscore
    config.sae!.outputActivation = .linear
    config.seed = seed
    config.patches.patchesPerEpoch = 3000
    config.sae!.hidden = [16]
    config.training.batchSize = 100
    config.training.epochs = 4
    config.training.validationPatches = 600
    config.training.validationFraction = 0.25
    config.training.learningRate = 3e-3
    config.training.checkpointEvery = 7
    return config
}

/// A CAE with two levels of 4 and 8 channels on 8³ patches.
func smallCAEConfig(seed: UInt64 = 1) -> PretrainConfig {
    var config = PretrainConfig(model: .cae)
    config.seed = seed
    config.patches.size = [8, 8, 8]
    config.patches.patchesPerEpoch = 256
    config.cae!.channels = [4, 8]
    config.training.batchSize = 16
    config.training.epochs = 3
    config.training.validationPatches = 64
    config.training.validationFraction = 0.25
    config.training.checkpointEvery = 5
    return config
}

func temporaryRunFolder(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("adwb-\(name)-\(UUID().uuidString)")
}

/// Starts a run on the tiny cohort and trains it; returns the trainer.
@discardableResult
func train(_ config: PretrainConfig, into folder: URL, manifest: URL = TinyCohort.manifest, stopAfterEpochs: Int? = nil,
           skipBad: Bool = false) throws -> (trainer: Trainer, outcome: TrainingOutcome, provenance: PretrainProvenance) {
    var resources = PretrainResources()
    resources.workers = 2
    let setup = try Pretraining.start(config: config, manifest: manifest, output: folder, resources: resources, skipBad: skipBad)
    setup.trainer.stopAfterEpochs = stopAfterEpochs
    let outcome = try setup.trainer.run()
    return (setup.trainer, outcome, setup.provenance)
}

/// The validation patches of a finished run, read through the same sampler settings.
func validationPatches(of trainer: Trainer, provenance: PretrainProvenance, count: Int) throws -> Tensor {
    let manifest = try Manifest(contentsOf: URL(fileURLWithPath: provenance.manifest))
    let held = Set(provenance.validationParticipants)
    let sources = manifest.rows.map { row in
        ScanSource(name: row.participantID, image: manifest.url(for: row.path), mask: row.maskPath.map { manifest.url(for: $0) }, line: row.line)
    }
    let indices = manifest.rows.indices.filter { held.contains(manifest.rows[$0].participantID) }
    var options = trainer.config.patches
    options.patchesPerEpoch = count
    let cache = ScanCache(sources: sources, options: options, megabytes: 64)
    let sampler = try PatchSampler(scans: indices, options: options, seed: 77)
    let stream = PatchStream(sampler: sampler, cache: cache, epoch: 0, batchSize: count)
    guard let batch = try stream.next() else { throw PretrainError.io("no validation patches") }
    return batch.patches
}

func bytes(_ url: URL) throws -> Data { try Data(contentsOf: url) }
