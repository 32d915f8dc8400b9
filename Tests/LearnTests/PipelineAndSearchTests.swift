import Foundation
import Testing
import TensorCore
@testable import Learn

/// A one-feature threshold classifier: predicts 1 when x₀ ≥ threshold. Its "fit" only records
/// the classes and the mean of the rows it saw (to check what a pipeline passes on).
struct ThresholdClassifier: Classifier {
    var threshold: Float

    func fit(_ x: Tensor, _ y: [Int]) throws(LearnError) -> Fitted {
        let (_, d, classes, _) = try Validation.trainingSet(x, y)
        return Fitted(threshold: threshold, classes: classes, featureCount: d, trainingMean: x.mean())
    }

    struct Fitted: FittedClassifier {
        var threshold: Float
        var classes: [Int]
        var featureCount: Int
        var trainingMean: Float

        func decisionFunction(_ x: Tensor) throws(LearnError) -> Tensor {
            let n = try Validation.matrix(x, features: featureCount)
            return Tensor(uninitializedShape: [n, 1]) { out in for i in 0..<n { out[i] = x.scalars[i * featureCount] - threshold } }
        }

        func predict(_ x: Tensor) throws(LearnError) -> [Int] {
            try decisionFunction(x).scalars.map { $0 >= 0 ? classes[1] : classes[0] }
        }

        func predictProbability(_ x: Tensor) throws(LearnError) -> Tensor {
            let d = try decisionFunction(x)
            return Tensor(uninitializedShape: [d.count, 2]) { out in
                for i in 0..<d.count { let p = 1 / (1 + Foundation.exp(-d.scalars[i])); out[2 * i] = 1 - p; out[2 * i + 1] = p }
            }
        }
    }
}

@Suite struct PipelineAndSearchTests {
    @Test func pipelineFitsTheStandardiserOnTrainingRowsOnly() throws {
        let train = try Tensor(shape: [4, 1], scalars: [10, 12, 14, 16])
        let fitted = try Pipeline([Standardiser()], ThresholdClassifier(threshold: 0)).fit(train, [0, 0, 1, 1])
        #expect(abs(fitted.classifier.trainingMean) < 1e-6)  // the classifier saw standardised rows
        // 13 is the training mean: standardised to 0, so class 1; 12.9 is below it.
        #expect(try fitted.predict(try Tensor(shape: [2, 1], scalars: [13, 12.9])) == [1, 0])
        #expect(fitted.featureCount == 1)
    }

    @Test func gridSearchPicksTheBestCandidateByInnerFolds() throws {
        // x = participant's class + small jitter: threshold 0.5 separates, −5 and 5 do not.
        let groups = (0..<12).flatMap { ["p\($0)", "p\($0)"] }
        let labels = groups.map { Int($0.dropFirst())! % 2 }
        let x = try Tensor(shape: [labels.count, 1], scalars: labels.enumerated().map { Float($1) + Float($0 % 3) * 0.01 })
        let candidates = [Float(-5), 0.5, 5].map { (settings: ["threshold": "\($0)"], estimator: ThresholdClassifier(threshold: $0)) }
        let result = try GridSearch(candidates: candidates, folds: 3, seed: 0).fit(x, labels, groups: groups)
        #expect(result.bestIndex == 1)
        #expect(result.scores.map(\.mean) == [0.5, 1, 0.5])
        #expect(result.scores[1].foldScores.count == 3)
        #expect(result.best.threshold == 0.5)
    }

    @Test func gridSearchTiesGoToTheEarlierCandidate() throws {
        let groups = (0..<6).map { "p\($0)" }
        let labels = [0, 1, 0, 1, 0, 1]
        let x = try Tensor(shape: [6, 1], scalars: labels.map(Float.init))
        let candidates = [Float(0.4), 0.6].map { (settings: ["threshold": "\($0)"], estimator: ThresholdClassifier(threshold: $0)) }
        #expect(try GridSearch(candidates: candidates, folds: 3).fit(x, labels, groups: groups).bestIndex == 0)
    }

    @Test func gridSearchNeedsAParticipantPerFoldInEveryClass() throws {
        let x = try Tensor(shape: [4, 1], scalars: [0, 1, 0, 1])
        let candidates = [Float(0.4), 0.6].map { (settings: ["threshold": "\($0)"], estimator: ThresholdClassifier(threshold: $0)) }
        #expect(throws: LearnError.tooFewSamples(label: 0, count: 2, needed: 3, reason: "too few participants for inner cross-validation with 3 folds, which needs one per fold (lower the inner folds or give a single setting)")) {
            try GridSearch(candidates: candidates, folds: 3).fit(x, [0, 1, 0, 1], groups: ["a", "b", "c", "d"])
        }
    }

    @Test func badTrainingInputsGiveNamedErrors() throws {
        let nan = try Tensor(shape: [2, 2], scalars: [0, 1, .nan, 3])
        do {
            _ = try Validation.trainingSet(nan, [0, 1])
            Issue.record("a NaN was accepted")
        } catch {
            guard case .nonFinite(let what, let row, let column, let value) = error else { Issue.record("\(error)"); return }
            #expect(what == "X" && row == 1 && column == 0 && value.isNaN)
        }
        #expect(throws: LearnError.singleClass(label: 2)) { _ = try Validation.trainingSet(try Tensor(shape: [2, 1], scalars: [0, 1]), [2, 2]) }
        #expect(throws: LearnError.shapeMismatch(what: "label count", expected: 2, got: 3)) {
            _ = try Validation.trainingSet(try Tensor(shape: [2, 1], scalars: [0, 1]), [0, 1, 1])
        }
    }
}
