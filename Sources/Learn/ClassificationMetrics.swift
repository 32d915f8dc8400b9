import Foundation
import Reports
import TensorCore

/// How well predictions match the truth on one evaluated set.
///
/// For two classes the positive class is `classes[1]` (the more severe diagnosis when labels
/// are ordered by severity): sensitivity is its recall, specificity the negative class's.
/// ROC AUC is the Mann–Whitney AUC of the positive probability (ties count one half); for
/// more classes, the unweighted mean of one-vs-rest AUCs (scikit-learn's `ovr`, `macro`).
public struct ClassificationMetrics: Codable, Equatable, Sendable {
    public struct PerClass: Codable, Equatable, Sendable {
        public var label: Int
        /// Rows whose true label is `label`.
        public var support: Int
        /// Recall of the class: TP / (TP + FN).
        public var sensitivity: Double
        /// TN / (TN + FP), treating the class as positive.
        public var specificity: Double
        /// TP / (TP + FP); NaN when the class is never predicted.
        public var precision: Double
        public var f1: Double
    }

    public var classes: [Int]
    public var count: Int
    public var accuracy: Double
    /// Mean recall over the classes present in the truth.
    public var balancedAccuracy: Double
    /// Binary only: recall of `classes[1]` and of `classes[0]`.
    public var sensitivity: Double?
    public var specificity: Double?
    /// NaN when a class is absent from the truth or no probabilities were given.
    public var rocAUC: Double
    /// Mean −log p(true class), probabilities clipped to [1e-15, 1]; nil without probabilities.
    public var logLoss: Double?
    /// `confusion[t][p]`: rows with true class `classes[t]` predicted as `classes[p]`.
    public var confusion: [[Int]]
    public var perClass: [PerClass]

    enum CodingKeys: String, CodingKey {
        case classes, count, accuracy, sensitivity, specificity, confusion
        case balancedAccuracy = "balanced_accuracy", rocAUC = "roc_auc", logLoss = "log_loss", perClass = "per_class"
    }

    /// - Parameters:
    ///   - truth, predicted: labels from `classes`, one per row.
    ///   - probabilities: `[n, k]` in `classes` order, or nil.
    public init(truth: [Int], predicted: [Int], probabilities: Tensor?, classes: [Int]) {
        precondition(truth.count == predicted.count, "metrics: \(truth.count) labels, \(predicted.count) predictions")
        let k = classes.count
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        var confusion = Array(repeating: Array(repeating: 0, count: k), count: k)
        for (t, p) in zip(truth, predicted) {
            guard let ti = index[t], let pi = index[p] else { preconditionFailure("metrics: label outside \(classes)") }
            confusion[ti][pi] += 1
        }
        let n = truth.count
        let perClass = (0..<k).map { c -> PerClass in
            let tp = confusion[c][c]
            let support = confusion[c].reduce(0, +)
            let predictedAs = confusion.map { $0[c] }.reduce(0, +)
            let tn = n - support - predictedAs + tp
            let precision = predictedAs > 0 ? Double(tp) / Double(predictedAs) : .nan
            let recall = support > 0 ? Double(tp) / Double(support) : .nan
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            return PerClass(label: classes[c], support: support, sensitivity: recall,
                            specificity: n - support > 0 ? Double(tn) / Double(n - support) : .nan,
                            precision: precision, f1: precision.isNaN || recall.isNaN ? .nan : f1)
        }
        let recalls = perClass.filter { $0.support > 0 }.map(\.sensitivity)
        self.classes = classes
        self.count = n
        self.accuracy = n > 0 ? Double((0..<k).map { confusion[$0][$0] }.reduce(0, +)) / Double(n) : .nan
        self.balancedAccuracy = recalls.isEmpty ? .nan : recalls.reduce(0, +) / Double(recalls.count)
        self.sensitivity = k == 2 ? perClass[1].sensitivity : nil
        self.specificity = k == 2 ? perClass[0].sensitivity : nil
        self.confusion = confusion
        self.perClass = perClass
        guard let probabilities, probabilities.shape == [n, k] else {
            rocAUC = .nan
            logLoss = nil
            return
        }
        rocAUC = Self.rocAUC(truth: truth, scores: probabilities, classes: classes)
        let p = probabilities.scalars
        var loss = 0.0
        for i in 0..<n {
            // Every truth label was checked against `classes` for the confusion matrix.
            let c = index[truth[i]] ?? 0
            loss -= Foundation.log(min(1, max(1e-15, Double(p[i * k + c]))))
        }
        logLoss = n > 0 ? loss / Double(n) : nil
    }

    /// ROC AUC of scores `[n, k]` (one column per class, higher meaning more likely), or
    /// `[n, 1]` for two classes (a score for `classes[1]`, such as a decision value): the
    /// Mann–Whitney AUC of the positive column for two classes, the mean of one-vs-rest AUCs
    /// for more. NaN when a class is absent from `truth`, or when `scores` has another shape
    /// (one-vs-one decision values, say, which are not per-class scores).
    public static func rocAUC(truth: [Int], scores: Tensor, classes: [Int]) -> Double {
        let (n, k) = (truth.count, classes.count)
        guard scores.shape == [n, k] || (k == 2 && scores.shape == [n, 1]) else { return .nan }
        let width = scores.shape[1]
        func auc(_ c: Int, column: Int) -> Double {
            var positives: [Double] = [], negatives: [Double] = []
            for i in 0..<n {
                let value = Double(scores.scalars[i * width + column])
                if truth[i] == classes[c] { positives.append(value) } else { negatives.append(value) }
            }
            return positives.isEmpty || negatives.isEmpty ? .nan : Statistics.rocAUC(positives: positives, negatives: negatives)
        }
        if k == 2 { return auc(1, column: width - 1) }
        return (0..<k).map { auc($0, column: $0) }.reduce(0, +) / Double(k)
    }
}
