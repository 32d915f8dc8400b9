import Autoencoders
@testable import Classification
import Classifiers
import Cohort
import Foundation
import Testing
import TestSupport

/// Behaviour settled after review: leakage through pretraining, the early-stopping hold-out,
/// AUC of one-vs-one decision values, and convergence warnings in the report.
@Suite struct ReviewFindingsTests {
    @Test func aRunPretrainedOnEvaluatedParticipantsIsRefused() throws {
        let scratch = try ScratchFolder("classify-pretrain-leak")
        defer { scratch.remove() }
        var config = PretrainConfig(model: .cae)
        config.patches.size = [8, 8, 8]
        config.patches.patchesPerEpoch = 32
        config.cae!.channels = [4, 8]
        config.training.batchSize = 16
        config.training.epochs = 1
        // On the whole manifest: validation and test participants included.
        _ = try Pretraining.start(config: config, manifest: VolumeCohort.manifest, output: scratch.url("run")).trainer.run()
        var request = CNNVolumeTests.request(out: scratch.url("out"))
        request.model = scratch.url("run")
        guard case .invalidOption(let message)? = Fixture.failure(request) else {
            Issue.record("a leaking pretraining run was accepted")
            return
        }
        #expect(message.contains("pretrained on") && message.contains("validation.tsv") && message.contains("train.tsv"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/predictions.tsv")))
    }

    @Test func theEarlyStoppingHoldOutHasEveryClass() throws {
        // 6 participants of class 0 (two with a second session), 3 of class 1.
        let groups = ["a", "a", "b", "c", "c", "d", "e", "f", "x", "y", "z"]
        let labels = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
        for seed in 0..<20 as Range<UInt64> {
            let (train, test) = try HeadTrainer.holdOut(groups: groups, labels: labels, classes: 2, fraction: 0.2, seed: seed)
            #expect(Set(test.map { labels[$0] }) == [0, 1])
            #expect(Set(train.map { labels[$0] }) == [0, 1])
            #expect(Set(train.map { groups[$0] }).isDisjoint(with: test.map { groups[$0] }))
            #expect(Set(train + test) == Set(groups.indices))
        }
        #expect(throws: ClassificationError.self) {
            try HeadTrainer.holdOut(groups: ["a", "b", "c"], labels: [0, 0, 1], classes: 2, fraction: 0.2, seed: 0)
        }
    }

    @Test func threeClassDecisionValuesOfPairsGiveNoAUC() throws {
        let scratch = try ScratchFolder("classify-ovo-auc")
        defer { scratch.remove() }
        let cohort = FeatureCohort.make(perClass: [15, 15, 15], shift: 4)
        try Fixture.writeSplit(scratch.url("split"), cohort)
        try Fixture.writeFeatures(scratch.url("features"), cohort.all)
        var request = Fixture.request(.svm, task: .threeClass, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.svm.probability = false
        let report = try ClassifyJob.run(request).report
        for set in report.sets {
            #expect(set.metrics.rocAUC.isNaN, "one-vs-one columns are not per-class scores")
            #expect(set.metrics.accuracy > 0.9)
        }
    }

    @Test func fastICANonConvergenceReachesTheReport() throws {
        let scratch = try ScratchFolder("classify-ica-warning")
        defer { scratch.remove() }
        let cohort = FeatureCohort.make()
        try Fixture.writeSplit(scratch.url("split"), cohort)
        try Fixture.writeFeatures(scratch.url("features"), cohort.all)
        var request = Fixture.request(.icaSVM, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.ica.maxIterations = 1
        request.ica.tolerance = 1e-12
        let report = try ClassifyJob.run(request).report
        #expect(report.notes.contains { $0.contains("did not converge") }, "\(report.notes)")
    }
}
