import Autoencoders
import Cohort
import Foundation
import NeuralNet
import Patches
import TensorCore
import Testing

/// The unsupervised stage's acceptance checks on the synthetic cohort.
@Suite struct ReconstructionQualityTests {
    @Test func saeValidationErrorFallsWellBelowThePatchMeanPredictor() throws {
        let folder = temporaryRunFolder("sae-quality")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = smallSAEConfig()
        config.patches.patchesPerEpoch = 20_000
        config.training.epochs = 6
        let (trainer, outcome, _) = try train(config, into: folder)
        #expect(outcome == .finished)
        let log = trainer.state.log
        let last = try #require(log.last)
        // The bar: predicting each patch's own mean value.
        #expect(last.validationMSE < 0.5 * last.validationMeanPatchMSE, "val \(last.validationMSE) vs patch mean \(last.validationMeanPatchMSE)")
        #expect(last.validationMSE < log[0].validationMSE)
        #expect(log.count == 6)
        #expect(log.map(\.step) == [200, 400, 600, 800, 1000, 1200])
    }

    @Test func sparseSAEMeanActivationEndsNearTheTarget() throws {
        let folder = temporaryRunFolder("sae-sparse")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = smallSAEConfig(seed: 5)
        // The UFLDL setting: [0, 1] inputs, sigmoid units and output.
        config.patches.normalization = .minmax
        config.sae!.outputActivation = .sigmoid
        config.sae!.sparsityTarget = 0.05
        config.sae!.sparsityWeight = 3
        config.patches.patchesPerEpoch = 20_000
        config.training.learningRate = 0.01
        config.training.epochs = 8
        let (trainer, _, _) = try train(config, into: folder)
        let last = try #require(trainer.state.log.last)
        // Unpenalised sigmoid units sit near 0.5; the penalty pulls the mean to rho.
        #expect(abs(last.validationMeanActivation - 0.05) < 0.02, "mean activation \(last.validationMeanActivation)")
        #expect(last.validationMSE < last.validationMeanPatchMSE)

        // Without the penalty the same model's units are far from rho.
        let free = temporaryRunFolder("sae-free")
        defer { try? FileManager.default.removeItem(at: free) }
        config.sae!.sparsityTarget = 0
        let (unpenalised, _, _) = try train(config, into: free)
        #expect(try #require(unpenalised.state.log.last).validationMeanActivation > 0.15)
    }

    @Test func denoisingSAEReconstructsCleanPatchesBetterThanItsNoisyInput() throws {
        let folder = temporaryRunFolder("sae-denoise")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = smallSAEConfig(seed: 9)
        config.sae!.corruption = .masking
        config.sae!.corruptionLevel = 0.3
        config.sae!.hidden = [32]
        config.patches.patchesPerEpoch = 20_000
        config.training.epochs = 6
        let (trainer, _, provenance) = try train(config, into: folder)
        let sae = try #require(trainer.model as? StackedAutoencoder)
        let clean = try validationPatches(of: trainer, provenance: provenance, count: 500)
        var generator = Xoshiro256StarStar(seed: 123)
        var noisy = clean
        noisy.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count where generator.nextUnitFloat() < 0.3 { p[i] = 0 }
        }
        let output = try sae.reconstruct(noisy)
        let flatClean = try clean.reshaped(output.shape)
        let flatNoisy = try noisy.reshaped(output.shape)
        let toClean = try output.subtracting(flatClean).sumOfSquares()
        let toNoisy = try output.subtracting(flatNoisy).sumOfSquares()
        #expect(toClean < 0.8 * toNoisy, "distance to clean \(toClean), to noisy input \(toNoisy)")
        // It actually repairs: the output is closer to the clean patch than the noisy input is.
        let noiseEnergy = try flatNoisy.subtracting(flatClean).sumOfSquares()
        #expect(toClean < noiseEnergy)
    }

    @Test func caeValidationErrorFallsBelowThePatchMeanPredictor() throws {
        let folder = temporaryRunFolder("cae-quality")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = smallCAEConfig()
        config.training.epochs = 4
        config.training.learningRate = 3e-3
        config.patches.patchesPerEpoch = 2048
        let (trainer, _, _) = try train(config, into: folder)
        let last = try #require(trainer.state.log.last)
        #expect(last.validationMSE < 0.5 * last.validationMeanPatchMSE, "val \(last.validationMSE) vs patch mean \(last.validationMeanPatchMSE)")
        #expect(last.validationMSE < trainer.state.log[0].validationMSE)
    }

    @Test func greedyLayersThenFineTuningAllTrainAndLogTheirPhases() throws {
        let folder = temporaryRunFolder("sae-stack")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = smallSAEConfig(seed: 3)
        config.sae!.hidden = [24, 8]
        config.sae!.fineTuneEpochs = 2
        config.training.epochs = 3
        let (trainer, _, _) = try train(config, into: folder)
        let phases = trainer.state.log.map(\.phase)
        #expect(phases == ["layer1", "layer1", "layer1", "layer2", "layer2", "layer2", "fine-tune", "fine-tune"])
        // Fine-tuning improves the whole stack's reconstruction of patches over greedy training alone.
        let greedy = trainer.state.log[5].validationPatchMSE
        let tuned = try #require(trainer.state.log.last).validationPatchMSE
        #expect(tuned < greedy, "fine-tuned \(tuned) vs greedy \(greedy)")
        let csv = try String(contentsOf: RunDirectory(folder).log, encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 9)
        #expect(csv[0].hasPrefix("phase,epoch,step,learning_rate,train_loss,train_mse,val_mse"))
    }
}

/// Checkpoints, resumption, and what happens when things go wrong.
@Suite struct CheckpointTests {
    @Test(arguments: [false, true])
    func resumedRunEndsWithTheSameBytesAsAnUninterruptedOne(cae: Bool) throws {
        var config = cae ? smallCAEConfig(seed: 4) : smallSAEConfig(seed: 4)
        config.training.epochs = 2
        let straight = temporaryRunFolder("straight")
        let interrupted = temporaryRunFolder("interrupted")
        defer {
            try? FileManager.default.removeItem(at: straight)
            try? FileManager.default.removeItem(at: interrupted)
        }
        try train(config, into: straight)
        let (_, outcome, _) = try train(config, into: interrupted, stopAfterEpochs: 1)
        #expect(outcome == .stopped(checkpoint: RunDirectory(interrupted).lastCheckpoint))
        #expect(!FileManager.default.fileExists(atPath: RunDirectory(interrupted).model.path))
        let resumed = try Pretraining.resume(output: interrupted)
        #expect(resumed.trainer.state.epoch == 1 && resumed.trainer.state.log.count == 1)
        #expect(try resumed.trainer.run() == .finished)
        #expect(try bytes(RunDirectory(straight).model) == bytes(RunDirectory(interrupted).model))
        let rows = { (folder: URL) in try String(contentsOf: RunDirectory(folder).log, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").dropLast().joined(separator: ",") } }
        #expect(try rows(straight) == rows(interrupted))
    }

    @Test func resumingMidEpochAndAcrossPhasesGivesTheSameWeights() throws {
        var config = smallSAEConfig(seed: 8)
        config.sae!.hidden = [12, 6]
        config.sae!.fineTuneEpochs = 1
        config.sae!.corruption = .gaussian
        config.sae!.corruptionLevel = 0.2
        config.training.epochs = 2
        config.training.checkpointEvery = 4
        let straight = temporaryRunFolder("straight-mid")
        let stopped = temporaryRunFolder("stopped-mid")
        defer {
            try? FileManager.default.removeItem(at: straight)
            try? FileManager.default.removeItem(at: stopped)
        }
        try train(config, into: straight)
        // Stop after 13, 47 and 75 minibatches (mid-epoch, in each phase), resuming each time.
        var setup = try Pretraining.start(config: config, manifest: TinyCohort.manifest, output: stopped)
        for stopAt in [13, 47, 75] {
            let trainer = setup.trainer
            trainer.shouldStop = { trainer.state.step >= stopAt }
            #expect(try trainer.run() == .stopped(checkpoint: RunDirectory(stopped).lastCheckpoint))
            #expect(trainer.state.step == stopAt)
            setup = try Pretraining.resume(output: stopped)
            #expect(setup.trainer.state.step == stopAt)
        }
        #expect(try setup.trainer.run() == .finished)
        #expect(try bytes(RunDirectory(straight).model) == bytes(RunDirectory(stopped).model))
    }

    @Test func sameSeedSameWeightsOtherSeedOtherWeights() throws {
        let folders = (0..<3).map { temporaryRunFolder("seed-\($0)") }
        defer { for folder in folders { try? FileManager.default.removeItem(at: folder) } }
        var config = smallSAEConfig(seed: 11)
        config.training.epochs = 1
        try train(config, into: folders[0])
        try train(config, into: folders[1])
        config.seed = 12
        try train(config, into: folders[2])
        let models = try folders.map { try bytes(RunDirectory($0).model) }
        #expect(models[0] == models[1])
        #expect(models[0] != models[2])
    }

    /// A checkpoint write cut short by the process dying leaves the previous checkpoint whole;
    /// the run then resumes from it and ends as an uninterrupted run does.
    @Test func checkpointWriteKilledMidwayLeavesThePreviousOneIntact() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-killed-checkpoint-\(getpid())")
        try? FileManager.default.removeItem(at: folder)
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = TinyCohort.manifest
        await #expect(processExitsWith: .exitCode(9)) {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-killed-checkpoint-\(getppid())")
            var config = smallSAEConfig(seed: 21)
            config.training.epochs = 2
            let setup = try Pretraining.start(config: config, manifest: TinyCohort.parentManifest(), output: folder)
            setup.trainer.stopAfterEpochs = 1
            _ = try setup.trainer.run()
            let checkpoint = RunDirectory(folder).lastCheckpoint
            try FileManager.default.copyItem(at: checkpoint, to: folder.appendingPathComponent("before.safetensors"))
            // Rewrite the checkpoint and die halfway through its bytes.
            let data = try Data(contentsOf: checkpoint)
            try AtomicFile.write(to: checkpoint) { sink in
                try data.prefix(data.count / 2).withUnsafeBytes { try sink.write($0) }
                _exit(9)
            }
        }
        let directory = RunDirectory(folder)
        #expect(try bytes(directory.lastCheckpoint) == bytes(folder.appendingPathComponent("before.safetensors")))
        _ = try SafeTensors.read(from: directory.lastCheckpoint)
        let resumed = try Pretraining.resume(output: folder)
        #expect(try resumed.trainer.run() == .finished)

        let straight = temporaryRunFolder("straight-killed")
        defer { try? FileManager.default.removeItem(at: straight) }
        var config = smallSAEConfig(seed: 21)
        config.training.epochs = 2
        try train(config, into: straight)
        #expect(try bytes(RunDirectory(straight).model) == bytes(directory.model))
    }

    @Test func divergingLossStopsNamingTheStepAndKeepsTheLastGoodCheckpoint() throws {
        let folder = temporaryRunFolder("diverge")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = smallCAEConfig(seed: 2)
        config.training.optimizer = .sgd
        config.training.learningRate = 1e6
        config.training.momentum = 0.9
        config.training.checkpointEvery = 1
        var caught: PretrainError?
        do { try train(config, into: folder) } catch let error as PretrainError { caught = error }
        guard case let .nonFiniteLoss(step, phase, epoch, value, checkpoint) = try #require(caught) else {
            Issue.record("expected a non-finite loss, got \(String(describing: caught))")
            return
        }
        #expect(step >= 2 && phase == "cae" && epoch == 1)
        #expect(value.contains("nan") || value.contains("inf"))
        #expect(caught!.description.contains("step \(step)"))
        // The checkpoint on disk is the one written after step `step - 1`, with finite weights.
        let path = try #require(checkpoint)
        let (tensors, metadata) = try SafeTensors.read(from: URL(fileURLWithPath: path))
        let state = try TrainerState.decoder.decode(TrainerState.self, from: Data(try #require(metadata["adwb_trainer_state"]).utf8))
        #expect(state.step == step - 1)
        for case let .float32(tensor) in tensors.values { #expect(tensor.scalars.allSatisfy { $0.isFinite }) }
        #expect(!FileManager.default.fileExists(atPath: RunDirectory(folder).model.path))
    }

    @Test func earlyStoppingKeepsTheBestEpochsWeights() throws {
        let folder = temporaryRunFolder("early")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = smallSAEConfig(seed: 6)
        config.training.epochs = 10
        config.training.patience = 2
        config.training.minDelta = 1e9 // nothing after the first epoch counts as an improvement
        let (trainer, _, _) = try train(config, into: folder)
        #expect(trainer.state.log.count == 3)
        let directory = RunDirectory(folder)
        let (best, _) = try SafeTensors.read(from: directory.bestCheckpoint)
        let (final, _) = try SafeTensors.read(from: directory.model)
        #expect(best == final)
    }
}

/// What pretraining reads: every manifest row, clear errors for bad ones.
@Suite struct PretrainingInputTests {
    @Test func everyRowIsUsedLabelledOrNotAndParticipantsAreSplitNotScans() throws {
        let folder = temporaryRunFolder("rows")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = smallSAEConfig()
        config.training.epochs = 1
        let (_, _, provenance) = try train(config, into: folder)
        let manifest = try Manifest(contentsOf: TinyCohort.manifest)
        #expect(manifest.rows.contains { $0.diagnosis == nil })
        #expect(provenance.scans == manifest.rows.count)
        let all = Set(manifest.rows.map(\.participantID))
        #expect(Set(provenance.trainingParticipants).isDisjoint(with: provenance.validationParticipants))
        #expect(Set(provenance.trainingParticipants).union(provenance.validationParticipants) == all)
        #expect(provenance.validationParticipants.count == 2)
        #expect(provenance.threads == Engine.threads)
    }

    @Test func aMissingScanStopsBeforeTrainingNamingItsLine() throws {
        let folder = temporaryRunFolder("missing")
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try TinyCohort.editedManifest(in: folder) { text in
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            lines[3] = lines[3].replacingOccurrences(of: "_T1w.nii.gz", with: "_missing.nii.gz")
            return lines.joined(separator: "\n")
        }
        defer { try? FileManager.default.removeItem(at: manifest) }
        var config = smallSAEConfig()
        config.training.epochs = 1
        var caught: PretrainError?
        do { try train(config, into: folder, manifest: manifest) } catch let error as PretrainError { caught = error }
        guard case let .badScans(problems) = try #require(caught) else { Issue.record("got \(String(describing: caught))"); return }
        #expect(problems.count == 1)
        #expect(problems[0].contains("manifest line 4") && problems[0].contains("_missing.nii.gz"))
        #expect(!FileManager.default.fileExists(atPath: RunDirectory(folder).model.path))

        // With skipBad the run goes on without it and records it.
        let skipping = temporaryRunFolder("skipping")
        defer { try? FileManager.default.removeItem(at: skipping) }
        let (_, outcome, provenance) = try train(config, into: skipping, manifest: manifest, skipBad: true)
        #expect(outcome == .finished)
        #expect(provenance.skippedScans.map(\.line) == [4])
        #expect(provenance.scans == (try Manifest(contentsOf: manifest)).rows.count - 1)
        // Resuming keeps the same scans out.
        let resumed = try Pretraining.resume(output: skipping)
        #expect(resumed.provenance.skippedScans == provenance.skippedScans)
    }

    @Test func resumeRefusesAChangedManifest() throws {
        let folder = temporaryRunFolder("changed")
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try TinyCohort.editedManifest(in: folder) { $0 }
        defer { try? FileManager.default.removeItem(at: manifest) }
        var config = smallSAEConfig()
        config.training.epochs = 2
        try train(config, into: folder, manifest: manifest, stopAfterEpochs: 1)
        try (String(contentsOf: manifest, encoding: .utf8) + "\n").write(to: manifest, atomically: true, encoding: .utf8)
        #expect(throws: PretrainError.self) { try Pretraining.resume(output: folder) }
        do { _ = try Pretraining.resume(output: folder) } catch { #expect("\(error)".contains("has changed")) }
    }
}
