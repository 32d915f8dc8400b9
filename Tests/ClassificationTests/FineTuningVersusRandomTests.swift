import Autoencoders
@testable import Classification
import Cohort
import Foundation
import Testing
import TestSupport

/// The requirement: fine-tuning from the pretrained encoder reaches a lower
/// validation loss in the same number of epochs than the same head trained from a random
/// initialisation of the same architecture, on a small synthetic cohort.
///
/// Protocol (fixed before measuring; not tuned afterwards):
/// - cohort: `SyntheticCohortOptions` seed 0 (`ADWB_FINETUNE_COHORT` picks another), 40
///   participants (20 CN, 20 AD, default effect size 1), 48³ voxels at 4 mm, one session
///   each, none unlabelled;
/// - split: `CohortSplitter` with 4 folds, no test set, seed 0; `split-0` (30 training, 10
///   validation participants);
/// - pretraining: on `split-0/train.tsv` only (classify refuses a run that saw evaluated
///   participants): CAE with 8 and 16 channels, 12³ z-scored patches, 20 epochs of 1,024
///   patches, batch 32, seed 1 (no early stop);
/// - classification: the cnn back end's defaults (head 64 → 2, dropout 0.5, 3×3×3 pooling,
///   Adam 3e-4 for the head, a pretrained encoder at a tenth of that and a random one at the
///   head's rate, batch 4, freeze none, oversampling) except 15 epochs with patience 15, so
///   both arms run exactly 15 epochs, and a third of each class's training participants held
///   out for early stopping, so the loss is measured on 10 rather than 6;
/// - arms: `initialisation` "pretrained" vs "random" (`PretrainedRun.untrained(seed:)`),
///   each with head seeds 0, 1 and 2 (the seed also draws the random encoder);
/// - measure: the best (lowest) early-stopping loss of each run, i.e. the loss of the model
///   the back end keeps, averaged over the three seeds. The lowest loss rather than the last
///   epochs' mean: the stopping loss of these short, small-batch runs swings by a factor of
///   several from epoch to epoch, so a mean of the last epochs mostly measures where in a
///   swing the run ended; the best epoch is what early stopping selects and reports.
///
/// Measured (best stopping loss for seeds 0, 1, 2; mean):
/// - cohort seed 0 (this test): pretrained 0.488, 0.358, 0.305 (0.384); random 0.830, 0.606, 1.070 (0.836);
/// - cohort seed 1: pretrained 0.279, 0.202, 0.091 (0.190); random 0.220, 0.265, 0.260 (0.248);
/// - cohort seed 2: pretrained 0.483, 0.670, 0.373 (0.509); random 0.469, 0.571, 0.597 (0.546);
/// - cohort seed 3: pretrained 0.289, 0.628, 0.252 (0.390); random 0.317, 0.501, 0.388 (0.402).
/// Pretrained is lower on the mean of every cohort but wins 8 of the 12 paired runs: the
/// advantage is real and modest on these small cohorts, clearest on cohort 0.
@Suite struct FineTuningVersusRandomTests {
    @Test func fineTuningThePretrainedEncoderReachesALowerStoppingLossThanRandomInitialisation() throws {
        let scratch = try ScratchFolder("classify-finetune-vs-random")
        defer { scratch.remove() }
        var cohort = SyntheticCohortOptions()
        // ADWB_FINETUNE_COHORT reruns the protocol on another cohort (the figures above).
        cohort.seed = ProcessInfo.processInfo.environment["ADWB_FINETUNE_COHORT"].flatMap(UInt64.init) ?? 0
        cohort.participants = 40
        cohort.shape = [48, 48, 48]
        cohort.voxelSize = 4
        cohort.proportions = [0.5, 0, 0.5]
        cohort.unlabeledFraction = 0
        cohort.secondSessionFraction = 0
        let manifest = try SyntheticCohort.generate(cohort, to: scratch.url("cohort"), generator: "FineTuningVersusRandomTests").manifestURL
        let source = try Manifest(contentsOf: manifest)
        try CohortSplitter.split(source, options: SplitOptions(folds: 4, testFraction: 0, seed: 0)).write(to: scratch.url("split"), source: source)

        var config = PretrainConfig(model: .cae)
        config.seed = 1
        config.patches.size = [12, 12, 12]
        config.patches.patchesPerEpoch = 1024
        config.cae!.channels = [8, 16]
        config.training.batchSize = 32
        config.training.epochs = 20
        config.training.patience = 1000
        _ = try Pretraining.start(config: config, manifest: scratch.url("split/split-0/train.tsv"), output: scratch.url("cae")).trainer.run()

        var best: [String: [Double]] = [:]
        for initialisation in ["pretrained", "random"] {
            for seed in UInt64(0)...2 {
                var request = ClassifyRequest(backend: .cnn, task: .adVsCN, split: scratch.url("split/split-0"), out: scratch.url("out-\(initialisation)-\(seed)"))
                request.manifest = manifest
                request.model = scratch.url("cae")
                request.seed = seed
                request.cnn.initialisation = initialisation
                request.cnn.epochs = 15
                request.cnn.patience = 15
                request.cnn.stoppingFraction = 1.0 / 3
                let cnn = try #require(try ClassifyJob.run(request).report.cnn)
                #expect(cnn.history.count == 15 && cnn.initialisation == initialisation)
                #expect(cnn.stoppingParticipants == 10)
                let losses = cnn.history.map { $0.stoppingLoss }
                best[initialisation, default: []].append(losses.min()!)
            }
        }
        let pretrained = best["pretrained"]!, random = best["random"]!
        let (pretrainedMean, randomMean) = (pretrained.reduce(0, +) / 3, random.reduce(0, +) / 3)
        print("best early-stopping loss, seeds 0-2: pretrained \(pretrained) (mean \(pretrainedMean)), random \(random) (mean \(randomMean))")
        #expect(pretrainedMean < randomMean, "pretrained \(pretrained) (mean \(pretrainedMean)) vs random \(random) (mean \(randomMean))")
    }
}
