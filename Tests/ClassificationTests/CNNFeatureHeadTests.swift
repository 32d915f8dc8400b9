@testable import Classification
import Cohort
import Extraction
import Learn
import Foundation
import NeuralNet
import TensorCore
import Testing
import TestSupport

/// The cnn back end on extracted features (`--features`): a dense head trained with early
/// stopping on held-out training participants.
@Suite struct CNNFeatureHeadTests {
    static let cohort = FeatureCohort.make(perClass: [25, 10, 25])

    static func prepared(_ name: String) throws -> ScratchFolder {
        let scratch = try ScratchFolder(name)
        try Fixture.writeSplit(scratch.url("split"), cohort)
        try Fixture.writeFeatures(scratch.url("features"), cohort.all)
        return scratch
    }

    @Test func aHeadOnFeaturesTrainsAndKeepsItsBestEpoch() throws {
        let scratch = try Self.prepared("classify-cnn-features")
        defer { scratch.remove() }
        let out = scratch.url("out")
        let request = Fixture.request(.cnn, split: scratch.url("split"), features: scratch.url("features"), out: out)
        let (report, files) = try ClassifyJob.run(request)
        #expect(files.map({ $0.lastPathComponent }) == [ClassifyJob.predictionsFile, ClassifyJob.metricsFile, "cnn_best.safetensors", "training_log.tsv"])
        try checkOutputs(out, cohort: Self.cohort, task: .adVsCN)

        let cnn = try #require(report.cnn)
        #expect(cnn.input == "features" && cnn.encoder == nil && cnn.initialisation == nil && cnn.frozenEncoderLayers == nil)
        #expect(!cnn.history.isEmpty && cnn.history.count <= request.cnn.epochs)
        #expect(cnn.history.map({ $0.epoch }) == Array(1...cnn.history.count))
        #expect(cnn.bestEpoch >= 1 && cnn.bestEpoch <= cnn.history.count && cnn.bestEpoch <= request.cnn.epochs)
        // The best epoch is the first with the lowest early-stopping loss.
        let losses = cnn.history.map { $0.stoppingLoss }
        let lowest = losses.min()!
        #expect(cnn.bestEpoch == losses.firstIndex(of: lowest)! + 1, "best epoch \(cnn.bestEpoch), losses \(losses)")
        #expect(cnn.stoppingParticipants > 0)
        // 6 inputs → 8 hidden → 2 classes.
        #expect(cnn.trainableParameters == 6 * 8 + 8 + 8 * 2 + 2)
        #expect(report.cnnSettings == request.cnn && report.svmSettings == nil)
        for set in report.sets {
            #expect(set.metrics.balancedAccuracy >= 0.8, "\(set.set): balanced accuracy \(set.metrics.balancedAccuracy)")
        }

        // The checkpoint: the head's state only, saved at the best epoch.
        let (tensors, metadata) = try SafeTensors.read(from: out.appendingPathComponent("cnn_best.safetensors"))
        let names = tensors.keys.sorted()
        #expect(!names.isEmpty && names.allSatisfy { $0.hasPrefix("head.") }, "\(names)")
        #expect(names.filter { $0.hasSuffix(".weight") }.count == 2, "\(names)")
        #expect(metadata["epoch"] == "\(cnn.bestEpoch)", "checkpoint metadata \(metadata)")

        // training_log.tsv: a header and one line per epoch, matching the history.
        let log = try String(contentsOf: out.appendingPathComponent("training_log.tsv"), encoding: .utf8)
        let lines = log.split(separator: "\n").map(String.init)
        #expect(lines.first == "epoch\ttrain_loss\tstopping_loss\tstopping_balanced_accuracy\tseconds")
        #expect(lines.count == cnn.history.count + 1, "\(lines.count) log lines for \(cnn.history.count) epochs")
        for (line, epoch) in zip(lines.dropFirst(), cnn.history) {
            let fields = line.split(separator: "\t").map(String.init)
            #expect(fields.count == 5 && Int(fields[0]) == epoch.epoch && Double(fields[2]) == epoch.stoppingLoss, "\(line)")
        }
    }

    /// The predictions are those of the checkpointed best epoch (not of the last one): the
    /// head rebuilt from cnn_best.safetensors, on the features standardised with the
    /// training rows' statistics, gives predictions.tsv's probabilities.
    @Test func thePredictionsComeFromTheCheckpointedBestEpoch() throws {
        let scratch = try Self.prepared("classify-cnn-best")
        defer { scratch.remove() }
        let out = scratch.url("out")
        var request = Fixture.request(.cnn, split: scratch.url("split"), features: scratch.url("features"), out: out)
        request.cnn.epochs = 30
        request.cnn.patience = 30
        request.cnn.learningRate = 0.05
        let cnn = try #require(try ClassifyJob.run(request).report.cnn)
        #expect(cnn.bestEpoch < cnn.history.count, "best epoch \(cnn.bestEpoch) is the last: the test cannot tell best from last")

        let table = try FeatureTable.read(scratch.url("features"))
        let split = try LabelledSplit(try SplitFolder(scratch.url("split")), task: .adVsCN)
        let standardiser = try Standardiser().fit(try table.matrix(for: split.train, set: "train.tsv"))
        let network = HeadNetwork(encoder: [], head: try HeadNetwork.denseHead(inputs: 6, hidden: [8], classes: 2, dropout: 0.1, seed: 5), frozenLayers: 0)
        try Checkpoint.load(network, from: out.appendingPathComponent("cnn_best.safetensors"))
        var expected: [Double] = []
        for (name, scans) in split.evaluated {
            let x = try standardiser.transform(try table.matrix(for: scans, set: name))
            expected += try Softmax.probabilities(try network.forward(x, mode: .inference)).scalars.map { Double($0) }
        }
        let got = try Predictions.read(out).lines.flatMap { $0.probabilities }
        #expect(got.count == expected.count)
        let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-6, "predictions.tsv differs from the checkpointed head by up to \(worst)")
    }

    @Test func theSameSeedGivesTheSameHead() throws {
        let scratch = try Self.prepared("classify-cnn-repeat")
        defer { scratch.remove() }
        var request = Fixture.request(.cnn, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("a"))
        request.cnn.dropout = 0.3
        _ = try ClassifyJob.run(request)
        request.out = scratch.url("b")
        _ = try ClassifyJob.run(request)
        for name in [ClassifyJob.predictionsFile, "cnn_best.safetensors"] {
            let a = try Data(contentsOf: scratch.url("a/\(name)")), b = try Data(contentsOf: scratch.url("b/\(name)"))
            #expect(a == b, "\(name) differs between two runs with the same seed")
        }
        let metrics = try ["a", "b"].map { try Fixture.metricsWithoutTimings(scratch.url($0)) }
        #expect(metrics[0] == metrics[1], "metrics.json differs (timings aside) between two runs with the same seed")
        // Another seed gives another head.
        request.out = scratch.url("c")
        request.seed = 6
        _ = try ClassifyJob.run(request)
        let c = try Data(contentsOf: scratch.url("c/cnn_best.safetensors")), a = try Data(contentsOf: scratch.url("a/cnn_best.safetensors"))
        #expect(a != c, "seeds 5 and 6 gave the same checkpoint")
    }

    @Test func aRerunWithOverwriteReplacesTheCheckpoint() throws {
        let scratch = try Self.prepared("classify-cnn-overwrite")
        defer { scratch.remove() }
        var request = Fixture.request(.cnn, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        _ = try ClassifyJob.run(request)
        let first = try Data(contentsOf: scratch.url("out/cnn_best.safetensors"))
        request.overwrite = true
        request.seed = 6
        _ = try ClassifyJob.run(request)
        let second = try Data(contentsOf: scratch.url("out/cnn_best.safetensors"))
        #expect(first != second, "the checkpoint of the second run did not replace the first")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/.staging-cnn_best.safetensors")))
    }

    @Test func earlyStoppingEndsTrainingAfterPatienceEpochsWithoutImprovement() throws {
        let scratch = try Self.prepared("classify-cnn-patience")
        defer { scratch.remove() }
        var request = Fixture.request(.cnn, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.cnn.epochs = 200
        request.cnn.patience = 2
        request.cnn.learningRate = 0.05
        request.cnn.hidden = [32]
        let cnn = try #require(try ClassifyJob.run(request).report.cnn)
        #expect(cnn.history.count < 200, "no early stop in 200 epochs")
        #expect(cnn.history.count - cnn.bestEpoch == 2, "stopped at epoch \(cnn.history.count), best \(cnn.bestEpoch), patience 2")
    }

    @Test(arguments: ["oversample", "class-weights", "none"])
    func everyBalancingRunsOnAThreeClassTask(balance: String) throws {
        let scratch = try Self.prepared("classify-cnn-3-\(balance)")
        defer { scratch.remove() }
        var request = Fixture.request(.cnn, task: .threeClass, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.cnn.balance = balance
        let (report, _) = try ClassifyJob.run(request)
        try checkOutputs(scratch.url("out"), cohort: Self.cohort, task: .threeClass)
        #expect(report.sets.allSatisfy { $0.metrics.confusion.count == 3 })
        #expect(report.sets[0].metrics.balancedAccuracy > 0.45, "\(balance): \(report.sets[0].metrics.balancedAccuracy)")
    }

    @Test func aStopRequestEndsTrainingWithoutPredictions() throws {
        let scratch = try Self.prepared("classify-cnn-stop")
        defer { scratch.remove() }
        let request = Fixture.request(.cnn, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        var polls = 0
        do {
            _ = try ClassifyJob.run(request, shouldStop: { polls += 1; return polls > 10 })
            Issue.record("a stop request did not stop training")
        } catch {
            guard case .interrupted = error else { Issue.record("expected interrupted, got \(error)"); return }
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/\(ClassifyJob.predictionsFile)")))
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/\(ClassifyJob.metricsFile)")))
    }

    @Test func invalidCNNOptionsAreRefused() throws {
        let scratch = try Self.prepared("classify-cnn-options")
        defer { scratch.remove() }
        let changes: [(String, (inout CNNSettings) -> Void)] = [
            ("hidden 0", { $0.hidden = [4, 0] }), ("dropout 1", { $0.dropout = 1 }), ("dropout < 0", { $0.dropout = -0.1 }),
            ("grid 2", { $0.grid = [2, 2] }), ("grid 0", { $0.grid = [0, 1, 1] }), ("freeze", { $0.freeze = "some" }),
            ("freeze -1", { $0.freeze = "-1" }), ("initialisation", { $0.initialisation = "imagenet" }), ("epochs 0", { $0.epochs = 0 }),
            ("batch 0", { $0.batchSize = 0 }), ("lr 0", { $0.learningRate = 0 }), ("lr nan", { $0.learningRate = .nan }),
            ("weight decay", { $0.weightDecay = -1 }), ("balance", { $0.balance = "smote" }), ("patience 0", { $0.patience = 0 }),
            ("stopping 0", { $0.stoppingFraction = 0 }), ("stopping 1", { $0.stoppingFraction = 1 }), ("flip", { $0.flipProbability = 2 }),
            ("shift", { $0.maxShift = -1 }), ("intensity", { $0.intensityScale = 1 }),
        ]
        for (name, change) in changes {
            var request = Fixture.request(.cnn, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out-\(name)"))
            change(&request.cnn)
            let error = Fixture.failure(request)
            guard case .invalidOption? = error else {
                Issue.record("\(name): expected invalidOption, got \(String(describing: error))")
                continue
            }
            let written = (try? FileManager.default.contentsOfDirectory(atPath: scratch.path("out-\(name)"))) ?? []
            #expect(written.isEmpty, "\(name): wrote \(written)")
        }
    }

    /// Oversampling: every training row once, minority classes drawn again until each class
    /// has the majority's count; nothing dropped.
    @Test func oversamplingDrawsMinorityRowsUntilTheClassesAreEven() {
        // Rows 3…22 of a larger set: 11 of class 0, 6 of class 1, 3 of class 2.
        var labels = [Int](repeating: 0, count: 30)
        let rows = Array(3..<23)
        for (i, row) in rows.enumerated() { labels[row] = i < 11 ? 0 : i < 17 ? 1 : 2 }
        var generator = Xoshiro256StarStar(seed: 9)
        for _ in 0..<5 {
            let order = HeadTrainer.epochOrder(rows, labels: labels, classes: 3, oversample: true, using: &generator)
            #expect(order.count == 33)
            #expect(Set(order) == Set(rows), "rows dropped or added: \(Set(rows).symmetricDifference(order))")
            #expect(Array(order.prefix(rows.count)) == rows, "every row first, once, in order")
            let counts = (0..<3).map { c in order.filter { labels[$0] == c }.count }
            #expect(counts == [11, 11, 11], "class counts \(counts)")
        }
        // Without oversampling the rows are used as given; a class with no row adds nothing.
        #expect(HeadTrainer.epochOrder(rows, labels: labels, classes: 3, oversample: false, using: &generator) == rows)
        let order = HeadTrainer.epochOrder(Array(3..<14), labels: labels, classes: 3, oversample: true, using: &generator)
        #expect(order == Array(3..<14))
    }
}
