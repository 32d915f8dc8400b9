import Classification
import Foundation
import Learn
import Reports
import TensorCore

/// The metrics reported for every back end and fold. In a two-class task sensitivity,
/// precision and F1 are those of the positive (more severe) class and specificity is the
/// negative class's recall; with three classes they are unweighted means over the classes
/// (macro averages; macro sensitivity is the balanced accuracy). ROC AUC is one-vs-rest,
/// averaged over classes, for three.
public struct MetricSet: Codable, Equatable, Sendable {
    public var accuracy: Double
    public var balancedAccuracy: Double
    public var sensitivity: Double
    public var specificity: Double
    public var precision: Double
    public var f1: Double
    public var rocAUC: Double

    /// Names as in `metrics.json` and `metrics.tsv`, in the report's order.
    public static let names = ["accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc"]
    public static let titles = ["Accuracy", "Balanced accuracy", "Sensitivity", "Specificity", "Precision", "F1", "ROC AUC"]

    enum CodingKeys: String, CodingKey {
        case accuracy, sensitivity, specificity, precision, f1
        case balancedAccuracy = "balanced_accuracy", rocAUC = "roc_auc"
    }

    public subscript(name: String) -> Double {
        switch name {
        case "accuracy": return accuracy
        case "balanced_accuracy": return balancedAccuracy
        case "sensitivity": return sensitivity
        case "specificity": return specificity
        case "precision": return precision
        case "f1": return f1
        default: return rocAUC
        }
    }

    /// The metrics of `rows` for a task of `classes` classes, with the confusion matrix
    /// (rows: truth, columns: prediction).
    public static func of(_ rows: [Prediction], classes k: Int) -> (metrics: MetricSet, confusion: [[Int]]) {
        let labels = Array(0..<k)
        let truth = rows.map(\.truth)
        let metrics = ClassificationMetrics(truth: truth, predicted: rows.map(\.predicted), probabilities: nil, classes: labels)
        let width = rows.first?.scores.count ?? 0
        var auc = Double.nan
        if width > 0, rows.allSatisfy({ $0.scores.count == width }), let scores = try? Tensor(shape: [rows.count, width], scalars: rows.flatMap { $0.scores.map(Float.init) }) {
            auc = ClassificationMetrics.rocAUC(truth: truth, scores: scores, classes: labels)
        }
        let present = metrics.perClass.filter { $0.support > 0 }
        func macro(_ value: (ClassificationMetrics.PerClass) -> Double) -> Double {
            present.isEmpty ? .nan : present.map(value).reduce(0, +) / Double(present.count)
        }
        let set = k == 2
            ? MetricSet(accuracy: metrics.accuracy, balancedAccuracy: metrics.balancedAccuracy, sensitivity: metrics.perClass[1].sensitivity,
                        specificity: metrics.perClass[0].sensitivity, precision: metrics.perClass[1].precision, f1: metrics.perClass[1].f1, rocAUC: auc)
            : MetricSet(accuracy: metrics.accuracy, balancedAccuracy: metrics.balancedAccuracy, sensitivity: macro(\.sensitivity),
                        specificity: macro(\.specificity), precision: macro(\.precision), f1: macro(\.f1), rocAUC: auc)
        return (set, metrics.confusion)
    }
}

/// A metric over the folds: their mean and sample standard deviation, the value on all
/// held-out predictions pooled, and a bootstrap interval of the pooled value that resamples
/// participants (all sessions of a drawn participant come together).
public struct MetricSummary: Codable, Equatable, Sendable {
    public var mean: Double
    public var std: Double
    public var pooled: Double
    public var low: Double
    public var high: Double
}

/// One back end on one fold (or on all folds pooled: `fold` nil).
public struct FoldResult: Codable, Equatable, Sendable {
    public var fold: Int?
    public var scans: Int
    public var participants: Int
    public var metrics: MetricSet
    public var confusion: [[Int]]
}

/// A ROC curve: false-positive and true-positive rates from the highest threshold down.
public struct ROCCurve: Codable, Equatable, Sendable {
    /// The class scored against the rest.
    public var positive: String
    public var points: [[Double]]
    public var auc: Double
}

public struct BackendResult: Codable, Equatable, Sendable {
    public var name: String
    public var kind: String
    public var input: String
    public var encoder: String?
    public var folds: [FoldResult]
    public var pooled: FoldResult
    public var summary: [String: MetricSummary]
    public var roc: [ROCCurve]
}

/// Two back ends compared on the same held-out scans.
public struct PairedTest: Codable, Equatable, Sendable {
    public var first: String
    public var second: String
    /// McNemar's test on the pooled predictions: `b` scans only the first got right, `c`
    /// only the second; exact binomial below 25 discordant scans.
    public var mcNemarB: Int
    public var mcNemarC: Int
    public var mcNemarStatistic: Double
    public var mcNemarP: Double
    public var mcNemarExact: Bool
    /// Nadeau & Bengio's corrected resampled t-test on the per-fold balanced-accuracy
    /// differences (first − second).
    public var meanDifference: Double
    public var t: Double
    public var degreesOfFreedom: Double
    public var p: Double

    enum CodingKeys: String, CodingKey {
        case first, second, t, p
        case mcNemarB = "mcnemar_b", mcNemarC = "mcnemar_c", mcNemarStatistic = "mcnemar_statistic", mcNemarP = "mcnemar_p"
        case mcNemarExact = "mcnemar_exact", meanDifference = "mean_balanced_accuracy_difference", degreesOfFreedom = "degrees_of_freedom"
    }
}

/// Everything `metrics.json` holds, with the predictions behind it.
public struct CompareResults: Codable, Sendable {
    public var experiment: String
    public var task: ClassificationTask
    public var classes: [String]
    public var folds: Int
    public var pretraining: String
    /// Validation share of each fold's task scans, averaged (the Nadeau-Bengio n₂/(n₁+n₂)).
    public var testFraction: Double
    public var backends: [BackendResult]
    public var paired: [PairedTest]
    public var confidence: Double
    public var bootstrapReplicates: Int
    public var notes: [String]
    /// Explanation maps averaged over folds (files in the report's `explanations/`).
    public var explanations: [ExplanationSummary] = []
    /// Every back end's held-out predictions, fold by fold (in `predictions.tsv`).
    public var predictions: [String: [Prediction]] = [:]

    enum CodingKeys: String, CodingKey {
        case experiment, task, classes, folds, pretraining, backends, paired, confidence, notes, explanations
        case testFraction = "test_fraction", bootstrapReplicates = "bootstrap_replicates"
    }

    /// The back end with the highest mean balanced accuracy over the folds.
    public var best: BackendResult? {
        backends.max { ($0.summary["balanced_accuracy"]?.mean ?? -1) < ($1.summary["balanced_accuracy"]?.mean ?? -1) }
    }

    static func make(config: ExperimentConfig, folds: [Fold], outcomes: [String: [FoldPredictions]], notes: [String]) throws(CompareError) -> CompareResults {
        let k = config.task.classes.count
        let classes = config.task.classes.map(\.rawValue)
        var results = CompareResults(experiment: config.name, task: config.task, classes: classes, folds: folds.count,
                                     pretraining: config.pretraining.rawValue, testFraction: testFraction(folds, task: config.task),
                                     backends: [], paired: [], confidence: config.confidence, bootstrapReplicates: config.bootstrapReplicates,
                                     notes: notes)
        for (index, backend) in config.backends.enumerated() {
            let perFold = outcomes[backend.name] ?? []
            let pooledRows = perFold.flatMap(\.rows)
            let foldResults = perFold.map { fold -> FoldResult in
                let (metrics, confusion) = MetricSet.of(fold.rows, classes: k)
                return FoldResult(fold: fold.fold, scans: fold.rows.count, participants: Set(fold.rows.map(\.participantID)).count,
                                  metrics: metrics, confusion: confusion)
            }
            let (pooledMetrics, pooledConfusion) = MetricSet.of(pooledRows, classes: k)
            var summary: [String: MetricSummary] = [:]
            let participants = Array(Set(pooledRows.map(\.participantID))).sorted()
            let rowsOf = Dictionary(grouping: pooledRows.indices, by: { pooledRows[$0].participantID })
            for name in MetricSet.names {
                let values = foldResults.map { $0.metrics[name] }
                // The same participant draws for every metric of a back end.
                var random = Xoshiro256StarStar(seed: SplitMix64.derive(config.seed, 0xB007, UInt64(index)))
                let interval = Statistics.bootstrapInterval(count: participants.count, replicates: config.bootstrapReplicates,
                                                            confidence: config.confidence, using: &random) { drawn in
                    let rows = drawn.flatMap { rowsOf[participants[$0]] ?? [] }.map { pooledRows[$0] }
                    return MetricSet.of(rows, classes: k).metrics[name]
                }
                summary[name] = MetricSummary(mean: Statistics.mean(values), std: Statistics.standardDeviation(values), pooled: pooledMetrics[name],
                                              low: interval.low, high: interval.high)
            }
            results.backends.append(BackendResult(
                name: backend.name, kind: backend.kind.rawValue, input: backend.input.rawValue, encoder: backend.encoder, folds: foldResults,
                pooled: FoldResult(fold: nil, scans: pooledRows.count, participants: participants.count, metrics: pooledMetrics, confusion: pooledConfusion),
                summary: summary, roc: ROC.curves(pooledRows, classes: classes)))
            results.predictions[backend.name] = pooledRows
        }
        results.paired = try pairedTests(config.backends.map(\.name), results: results)
        return results
    }

    /// The mean over folds of validation scans / (training + validation scans) of the task.
    static func testFraction(_ folds: [Fold], task: ClassificationTask) -> Double {
        let fractions = folds.map { fold -> Double in
            let train = fold.split.train.rows.filter { task.label($0.diagnosis) != nil }.count
            let validation = fold.split.validation.rows.filter { task.label($0.diagnosis) != nil }.count
            return Double(validation) / Double(max(1, train + validation))
        }
        return Statistics.mean(fractions)
    }

    static func pairedTests(_ names: [String], results: CompareResults) throws(CompareError) -> [PairedTest] {
        var tests: [PairedTest] = []
        for i in names.indices {
            for j in names.indices where j > i {
                let (a, b) = (results.backends[i], results.backends[j])
                let firstRows = results.predictions[a.name] ?? [], secondRows = results.predictions[b.name] ?? []
                struct Key: Hashable { var fold: Int; var participant: String; var session: String }
                let second = Dictionary(secondRows.map { (Key(fold: $0.fold, participant: $0.participantID, session: $0.sessionID), $0) }) { x, _ in x }
                var firstCorrect: [Bool] = [], secondCorrect: [Bool] = []
                for row in firstRows {
                    guard let other = second[Key(fold: row.fold, participant: row.participantID, session: row.sessionID)] else {
                        throw .badOutput(path: "\(a.name) and \(b.name)", reason: "fold \(row.fold): \(row.participantID) \(row.sessionID) was predicted by one back end only; paired tests need the same scans")
                    }
                    firstCorrect.append(row.predicted == row.truth)
                    secondCorrect.append(other.predicted == other.truth)
                }
                let mcNemar = Statistics.mcNemar(firstCorrect: firstCorrect, secondCorrect: secondCorrect)
                let differences = zip(a.folds, b.folds).map { $0.metrics.balancedAccuracy - $1.metrics.balancedAccuracy }
                let nb = Statistics.correctedResampledTTest(differences: differences, testFraction: results.testFraction)
                tests.append(PairedTest(first: a.name, second: b.name, mcNemarB: mcNemar.b, mcNemarC: mcNemar.c, mcNemarStatistic: mcNemar.statistic,
                                        mcNemarP: mcNemar.p, mcNemarExact: mcNemar.exact, meanDifference: Statistics.mean(differences),
                                        t: nb.t, degreesOfFreedom: nb.degreesOfFreedom, p: nb.p))
            }
        }
        return tests
    }
}

/// ROC curves from scores, with tied scores taken as one threshold step (a diagonal segment).
enum ROC {
    /// One curve for a two-class task (the positive class's score), one per class against
    /// the rest for more; none when the scores are missing.
    static func curves(_ rows: [Prediction], classes: [String]) -> [ROCCurve] {
        guard let width = rows.first?.scores.count, width > 0, rows.allSatisfy({ $0.scores.count == width && $0.scores.allSatisfy(\.isFinite) }) else {
            return []
        }
        let columns: [(Int, Int)] = classes.count == 2 ? [(1, width - 1)] : width == classes.count ? classes.indices.map { ($0, $0) } : []
        return columns.map { label, column in
            let points = curve(scores: rows.map { $0.scores[column] }, positive: rows.map { $0.truth == label })
            return ROCCurve(positive: classes[label], points: points, auc: area(points))
        }
    }

    /// `[fpr, tpr]` points from (0, 0) to (1, 1), thresholds from the highest score down.
    static func curve(scores: [Double], positive: [Bool]) -> [[Double]] {
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        let positives = Double(positive.filter { $0 }.count), negatives = Double(positive.filter { !$0 }.count)
        guard positives > 0, negatives > 0 else { return [] }
        var points: [[Double]] = [[0, 0]]
        var (tp, fp) = (0.0, 0.0)
        var index = 0
        while index < order.count {
            let threshold = scores[order[index]]
            while index < order.count && scores[order[index]] == threshold {
                if positive[order[index]] { tp += 1 } else { fp += 1 }
                index += 1
            }
            points.append([fp / negatives, tp / positives])
        }
        return points
    }

    /// Trapezoidal area under the points (equal to the Mann-Whitney AUC, ties counting half).
    static func area(_ points: [[Double]]) -> Double {
        guard points.count >= 2 else { return .nan }
        return zip(points, points.dropFirst()).reduce(0) { $0 + ($1.1[0] - $1.0[0]) * ($1.1[1] + $1.0[1]) / 2 }
    }
}
