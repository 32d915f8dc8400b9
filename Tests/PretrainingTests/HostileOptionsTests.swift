import Autoencoders
import Cohort
import Foundation
import NeuralNet
import Patches
import TensorCore
import TestSupport
import Testing


/// In an exit test's child: starts and trains a tiny SAE run on the parent's cohort with
/// `edit` applied; a thrown (typed) error is a fine outcome, only a trap is not.
private func pretrainIgnoringErrors(_ tag: String, _ edit: (inout PretrainConfig) -> Void) {
    var config = smallSAEConfig()
    config.training.epochs = 1
    config.patches.patchesPerEpoch = 200
    config.training.validationPatches = 50
    edit(&config)
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-review-\(tag)-\(getppid())")
    do {
        let setup = try Pretraining.start(config: config, manifest: TinyCohort.parentManifest(), output: folder)
        _ = try setup.trainer.run()
    } catch {}
}

private func reviewFolder(_ tag: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("adwb-review-\(tag)-\(getpid())")
}

/// Runs the built `adwb`; returns its exit status.
private func adwb(_ arguments: [String]) throws -> Int32 {
    let process = Process()
    process.executableURL = try builtExecutable("adwb")
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

private let tinySAEOptions = ["--model", "sae", "--patches-per-epoch", "200", "--validation-patches", "50", "--epochs", "2",
                              "--batch-size", "50", "--hidden", "8", "--patch-size", "3x3x3"]

/// Options and inputs that once crashed or misled a run (found in review), each now a clear
/// error or handled.
@Suite struct HostileOptionsTests {
    // MARK: Huge values: refused by validate(), never an overflow trap (run in a child process)

    /// `training.batch_size` near Int.max would overflow `patches_per_epoch + batch_size - 1`.
    @Test func hugeBatchSizeDoesNotTrap() async {
        _ = TinyCohort.manifest
        defer { try? FileManager.default.removeItem(at: reviewFolder("batch")) }
        await #expect(processExitsWith: .success) {
            pretrainIgnoringErrors("batch") { $0.training.batchSize = .max }
        }
    }

    /// `patches.patches_per_epoch` near Int.max: the same sum.
    @Test func hugePatchesPerEpochDoesNotTrap() async {
        _ = TinyCohort.manifest
        defer { try? FileManager.default.removeItem(at: reviewFolder("ppe")) }
        await #expect(processExitsWith: .success) {
            pretrainIgnoringErrors("ppe") { $0.patches.patchesPerEpoch = .max }
        }
    }

    /// `training.validation_patches` near Int.max would overflow only at the first validation,
    /// after a whole epoch of training (and again on every --resume).
    @Test func hugeValidationPatchesDoesNotTrap() async {
        _ = TinyCohort.manifest
        defer { try? FileManager.default.removeItem(at: reviewFolder("val")) }
        await #expect(processExitsWith: .success) {
            pretrainIgnoringErrors("val") { $0.training.validationPatches = .max }
        }
    }

    /// `patches.block_megabytes` huge would overflow `blockMegabytes * 1_000_000`.
    @Test func hugeBlockMegabytesDoesNotTrap() async {
        _ = TinyCohort.manifest
        defer { try? FileManager.default.removeItem(at: reviewFolder("block")) }
        await #expect(processExitsWith: .success) {
            pretrainIgnoringErrors("block") { $0.patches.blockMegabytes = .max / 1000 }
        }
    }

    // MARK: Typed errors

    /// An infinite gamma (like min_delta, minimum_learning_rate, sparsity_weight, an unused
    /// corruption_level) is a PretrainError before any scan is read, not an EncodingError
    /// when config.json is written.
    @Test func infiniteOptionIsAnInvalidConfigBeforeScansAreRead() throws {
        let folder = temporaryRunFolder("review-inf")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = smallSAEConfig()
        config.training.gamma = .infinity
        #expect(throws: PretrainError.self) { try config.validate() }
        #expect(throws: PretrainError.self) { try Pretraining.start(config: config, manifest: TinyCohort.manifest, output: folder) }
    }

    // MARK: --skip-bad and malformed manifest rows

    /// A malformed manifest row (here: too few fields) is skipped with skipBad and listed with
    /// its line, as an unreadable scan is.
    @Test func skipBadSkipsAMalformedManifestRowAndListsIt() throws {
        let folder = temporaryRunFolder("review-badrow")
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try TinyCohort.editedManifest(in: folder) { text in
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            lines[2] = lines[2].split(separator: "\t", omittingEmptySubsequences: false).prefix(3).joined(separator: "\t")
            return lines.joined(separator: "\n")
        }
        defer { try? FileManager.default.removeItem(at: manifest) }
        var config = smallSAEConfig()
        config.training.epochs = 1
        let (_, outcome, provenance) = try train(config, into: folder, manifest: manifest, skipBad: true)
        #expect(outcome == .finished)
        #expect(provenance.skippedScans.contains { $0.line == 3 })
    }

    // MARK: CLI

    /// `--overwrite` removes the earlier run only once the new one has passed its checks: a
    /// mistyped --manifest leaves the previous run's weights, config and log in place.
    @Test func overwriteWithAnUnreadableManifestKeepsThePreviousRun() throws {
        let folder = temporaryRunFolder("review-overwrite")
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = TinyCohort.manifest.path
        #expect(try adwb(["pretrain"] + tinySAEOptions + ["--manifest", manifest, "--out", folder.path]) == 0)
        #expect(FileManager.default.fileExists(atPath: RunDirectory(folder).model.path))
        let typo = TinyCohort.manifest.deletingLastPathComponent().appendingPathComponent("no-such-manifest.tsv").path
        #expect(try adwb(["pretrain"] + tinySAEOptions + ["--manifest", typo, "--out", folder.path, "--overwrite"]) != 0)
        #expect(FileManager.default.fileExists(atPath: RunDirectory(folder).model.path))
        #expect(FileManager.default.fileExists(atPath: RunDirectory(folder).config.path))
    }

    /// `--resume` refuses every hyper-parameter option, including those a SAE shares with a
    /// CAE (`--activation`, `--corruption`, `--corruption-level`).
    @Test func resumeRefusesActivationAndCorruptionOptions() throws {
        let folder = temporaryRunFolder("review-resume-options")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try adwb(["pretrain"] + tinySAEOptions + ["--manifest", TinyCohort.manifest.path, "--out", folder.path,
                                                           "--stop-after-epochs", "1"]) == 0)
        for option in [["--activation", "tanh"], ["--corruption", "gaussian"], ["--corruption-level", "0.5"]] {
            #expect(try adwb(["pretrain", "--resume", "--out", folder.path] + option) != 0, "\(option) was accepted with --resume")
        }
    }

    // MARK: Checkpoints and files from elsewhere

    /// A checkpoint whose training state does not fit the run (hand-edited or from another
    /// configuration) is refused on resume instead of indexing out of range.
    @Test func foreignTrainerStateIsRefusedOnResume() throws {
        let folder = temporaryRunFolder("foreign-state")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = smallSAEConfig()
        config.training.epochs = 2
        try train(config, into: folder, stopAfterEpochs: 1)
        let checkpoint = RunDirectory(folder).lastCheckpoint
        let (tensors, metadata) = try SafeTensors.read(from: checkpoint)
        var state = try TrainerState.decoder.decode(TrainerState.self, from: Data(try #require(metadata["adwb_trainer_state"]).utf8))
        state.phase = 7
        var edited = metadata
        edited["adwb_trainer_state"] = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, metadata: edited, to: checkpoint)
        do {
            _ = try Pretraining.resume(output: folder)
            Issue.record("a state in phase 7 of a one-phase run was accepted")
        } catch {
            #expect("\(error)".contains("does not fit"))
        }
    }

    /// A file's `model:` that contradicts its `preset:` is an error, not silently overridden.
    @Test func presetOfAnotherModelThanTheFilesIsRefused() throws {
        try withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("c.yaml")
            try "model: cae\npreset: payan2015\n".write(to: file, atomically: true, encoding: .utf8)
            #expect(throws: PretrainError.self) { try ConfigFile.resolve(model: nil, preset: nil, file: file) }
        }
    }

    @Test func resumeRefusesSkipBad() throws {
        let folder = temporaryRunFolder("resume-skip-bad")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try adwb(["pretrain"] + tinySAEOptions + ["--manifest", TinyCohort.manifest.path, "--out", folder.path,
                                                           "--stop-after-epochs", "1"]) == 0)
        #expect(try adwb(["pretrain", "--resume", "--skip-bad", "--out", folder.path]) != 0)
        #expect(try adwb(["pretrain", "--resume", "--out", folder.path]) == 0)
        #expect(FileManager.default.fileExists(atPath: RunDirectory(folder).model.path))
    }
}
