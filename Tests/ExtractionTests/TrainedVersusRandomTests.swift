import Autoencoders
import Cohort
import Extraction
import Foundation
import Testing

/// The point of pretraining: a trained encoder's features tell AD from CN apart better than
/// those of the same encoder with random weights.
///
/// Protocol (fixed before measuring): a 32-participant synthetic cohort (CN and AD, 64³ at
/// 3 mm, seed 0); the `hosseini2016` CAE on 16³ patches, 15 epochs of 1,024 patches; default
/// extraction (mean pooling over 3×3×3 regions); the measure is the mean separation
/// `max(AUC, 1 − AUC)` of the ten best features for AD vs CN, compared with its mean over
/// three random initialisations of the same architecture.
@Suite struct TrainedVersusRandomTests {
    @Test func trainedCAEFeaturesSeparateADFromCNBetterThanRandomOnes() throws {
        let folder = temporaryFolder("trained-vs-random")
        defer { try? FileManager.default.removeItem(at: folder) }
        var cohort = SyntheticCohortOptions()
        cohort.participants = 32
        cohort.shape = [64, 64, 64]
        cohort.voxelSize = 3
        cohort.proportions = [0.5, 0, 0.5]
        cohort.unlabeledFraction = 0
        cohort.secondSessionFraction = 0
        let manifest = try SyntheticCohort.generate(cohort, to: folder.appendingPathComponent("cohort"), generator: "TrainedVersusRandomTests").manifestURL

        var config = try PretrainConfig.preset("hosseini2016")
        config.patches.size = [16, 16, 16]
        config.patches.patchesPerEpoch = 1024
        config.training.epochs = 15
        config.training.batchSize = 16
        let output = folder.appendingPathComponent("cae")
        _ = try Pretraining.start(config: config, manifest: manifest, output: output).trainer.run()

        let trained = try PretrainedRun.load(output)
        func separation(_ run: PretrainedRun) throws -> Double {
            let set = try Extraction.run(run, manifest: manifest, options: ExtractionOptions())
            let statistics = FeatureStatistics(values: set.values, labels: set.record.rows.map(\.diagnosis),
                                               participants: set.record.rows.map(\.participantID))
            let contrast = try #require(statistics.primary)
            #expect(contrast.contrast == Contrast(positive: .ad, negative: .cn))
            return statistics.meanTopSeparation(contrast, top: 10)
        }
        let trainedSeparation = try separation(trained)
        let randomSeparations = try (1...3).map { try separation(try trained.untrained(seed: UInt64($0))) }
        let randomMean = randomSeparations.reduce(0, +) / Double(randomSeparations.count)
        print("top-10 AD/CN separation: trained \(trainedSeparation), random \(randomSeparations) (mean \(randomMean))")
        #expect(trainedSeparation > randomMean)
        // Both are far from chance: the cohort's effect is strong, the comparison is about the margin.
        #expect(randomMean > 0.7)
    }
}
