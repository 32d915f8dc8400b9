import Foundation
import Testing
@testable import Compare

/// `adwb compare`'s metrics against scikit-learn (Tests/Fixtures/make_metrics_fixtures.py).
struct MetricFixture: Decodable {
    struct Curve: Decodable {
        var positive: Int
        var fpr: [Double]
        var tpr: [Double]
    }

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
    var confusion: [[Int]]
    var macro_precision: Double
    var macro_f1: Double
    var macro_recall: Double
    var macro_specificity: Double
    var roc_curves: [Curve]

    static func load() throws -> [MetricFixture] {
        struct File: Decodable { var cases: [MetricFixture] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/Metrics/metrics.json")
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
    }

    /// The case as held-out predictions of one fold.
    var rows: [Prediction] {
        truth.indices.map { i in
            let scores = classes.count == 2 ? [probabilities[i][1]] : probabilities[i]
            return Prediction(participantID: "sub-\(i)", sessionID: "ses-1", fold: 0, truth: truth[i], predicted: predicted[i],
                              probabilities: probabilities[i], scores: scores)
        }
    }
}

@Test func metricSetMatchesScikitLearn() throws {
    for fixture in try MetricFixture.load() {
        let (metrics, confusion) = MetricSet.of(fixture.rows, classes: fixture.classes.count)
        let close = { (a: Double, b: Double) in abs(a - b) <= 1e-12 }
        #expect(confusion == fixture.confusion, "\(fixture.name)")
        #expect(close(metrics.accuracy, fixture.accuracy), "\(fixture.name)")
        #expect(close(metrics.balancedAccuracy, fixture.balanced_accuracy), "\(fixture.name)")
        #expect(abs(metrics.rocAUC - fixture.roc_auc) <= 1e-9, "\(fixture.name): AUC \(metrics.rocAUC) vs \(fixture.roc_auc)")
        if fixture.classes.count == 2 {
            #expect(close(metrics.sensitivity, fixture.recall[1]), "\(fixture.name)")
            #expect(close(metrics.specificity, fixture.recall[0]), "\(fixture.name)")
            #expect(close(metrics.precision, fixture.precision[1]), "\(fixture.name)")
            #expect(close(metrics.f1, fixture.f1[1]), "\(fixture.name)")
        } else {
            #expect(close(metrics.sensitivity, fixture.macro_recall), "\(fixture.name)")
            #expect(close(metrics.specificity, fixture.macro_specificity), "\(fixture.name)")
            #expect(close(metrics.precision, fixture.macro_precision), "\(fixture.name)")
            #expect(close(metrics.f1, fixture.macro_f1), "\(fixture.name)")
        }
    }
}

@Test func rocCurvesMatchScikitLearnWithTies() throws {
    for fixture in try MetricFixture.load() {
        let names = fixture.classes.map { "class\($0)" }
        let curves = ROC.curves(fixture.rows, classes: names)
        #expect(curves.count == fixture.roc_curves.count, "\(fixture.name)")
        for (curve, expected) in zip(curves, fixture.roc_curves) {
            #expect(curve.positive == names[expected.positive])
            let fpr = curve.points.map { $0[0] }, tpr = curve.points.map { $0[1] }
            #expect(fpr.count == expected.fpr.count, "\(fixture.name): \(fpr.count) points, scikit-learn \(expected.fpr.count)")
            #expect(zip(fpr, expected.fpr).allSatisfy { abs($0 - $1) <= 1e-12 } && zip(tpr, expected.tpr).allSatisfy { abs($0 - $1) <= 1e-12 },
                    "\(fixture.name)")
        }
        // The trapezoid under the curve is the AUC (ties count half).
        if fixture.classes.count == 2, let curve = curves.first {
            #expect(abs(curve.auc - fixture.roc_auc) <= 1e-12, "\(fixture.name)")
        }
    }
}

@Test func binaryCaseGivesHandComputedMetrics() {
    // 6 scans: truth CN CN CN AD AD AD; predicted CN AD CN AD AD CN.
    // TP 2, FN 1, TN 2, FP 1: sensitivity 2/3, specificity 2/3, precision 2/3, F1 2/3.
    let truth = [0, 0, 0, 1, 1, 1], predicted = [0, 1, 0, 1, 1, 0]
    // Scores with a tie between a CN and an AD scan: pairs won 3 + 2.5 + 2 of 9.
    let scores = [0.1, 0.6, 0.2, 0.9, 0.6, 0.3]
    let rows = truth.indices.map { Prediction(participantID: "p\($0)", sessionID: "s", fold: 0, truth: truth[$0], predicted: predicted[$0],
                                              probabilities: [1 - scores[$0], scores[$0]], scores: [scores[$0]]) }
    let (metrics, confusion) = MetricSet.of(rows, classes: 2)
    #expect(confusion == [[2, 1], [1, 2]])
    for value in [metrics.accuracy, metrics.balancedAccuracy, metrics.sensitivity, metrics.specificity, metrics.precision, metrics.f1] {
        #expect(abs(value - 2.0 / 3) < 1e-15)
    }
    #expect(abs(metrics.rocAUC - 7.5 / 9) < 1e-15)
}
