import Foundation
import Testing
import TensorCore
@testable import Learn

/// Metrics against scikit-learn (`Tests/Fixtures/make_metrics_fixtures.py`) and by hand.
@Suite struct ClassificationMetricsTests {
    struct Case: Decodable {
        var name: String
        var classes: [Int]
        var truth: [Int]
        var predicted: [Int]
        var probabilities: [[Double]]
        var accuracy: Double
        var balanced_accuracy: Double
        var recall: [Double]
        var precision: [Double]
        var f1: [Double]
        var specificity: [Double]
        var roc_auc: Double
        var log_loss: Double
        var confusion: [[Int]]
    }

    struct Fixture: Decodable { var cases: [Case] }

    static let fixture: Fixture = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/Metrics/metrics.json")
        // The fixture is committed; a missing file is a broken checkout.
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()

    @Test(arguments: [0, 1, 2]) func matchesScikitLearn(index: Int) throws {
        let c = Self.fixture.cases[index]
        let k = c.classes.count
        let p = try Tensor(shape: [c.truth.count, k], scalars: c.probabilities.flatMap { $0.map(Float.init) })
        let m = ClassificationMetrics(truth: c.truth, predicted: c.predicted, probabilities: p, classes: c.classes)
        #expect(m.confusion == c.confusion, "\(c.name)")
        #expect(abs(m.accuracy - c.accuracy) < 1e-12)
        #expect(abs(m.balancedAccuracy - c.balanced_accuracy) < 1e-12)
        #expect(abs(m.rocAUC - c.roc_auc) < 1e-9, "\(c.name): \(m.rocAUC) vs \(c.roc_auc)")
        let logLoss = try #require(m.logLoss)
        #expect(abs(logLoss - c.log_loss) < 1e-5, "\(c.name): \(logLoss) vs \(c.log_loss)")
        for j in 0..<k {
            #expect(abs(m.perClass[j].sensitivity - c.recall[j]) < 1e-12)
            #expect(abs(m.perClass[j].specificity - c.specificity[j]) < 1e-12)
            #expect(abs(m.perClass[j].precision - c.precision[j]) < 1e-12)
            #expect(abs(m.perClass[j].f1 - c.f1[j]) < 1e-12)
        }
        if k == 2 {
            #expect(m.sensitivity == c.recall[1])
            #expect(m.specificity == c.recall[0])
        }
    }

    @Test func handComputedBinaryCase() {
        // truth 1 1 1 0 0, predicted 1 0 1 0 1 → TP 2, FN 1, TN 1, FP 1.
        let m = ClassificationMetrics(truth: [1, 1, 1, 0, 0], predicted: [1, 0, 1, 0, 1], probabilities: nil, classes: [0, 1])
        #expect(m.confusion == [[1, 1], [1, 2]])
        #expect(m.sensitivity == 2.0 / 3)
        #expect(m.specificity == 0.5)
        #expect(abs(m.balancedAccuracy - (2.0 / 3 + 0.5) / 2) < 1e-15)
        #expect(m.accuracy == 0.6)
        #expect(m.rocAUC.isNaN)
        #expect(m.logLoss == nil)
    }

    @Test func aClassNeverPredictedHasNaNPrecision() {
        let m = ClassificationMetrics(truth: [0, 1, 1], predicted: [0, 0, 0], probabilities: nil, classes: [0, 1])
        #expect(m.perClass[1].precision.isNaN)
        #expect(m.perClass[1].sensitivity == 0)
        #expect(m.balancedAccuracy == 0.5)
    }
}
