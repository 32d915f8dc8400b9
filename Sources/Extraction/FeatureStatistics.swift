import Cohort
import Foundation
import Reports
import TensorCore

/// A two-class comparison: `positive` against `negative` (e.g. AD against CN).
public struct Contrast: Sendable, Equatable, CustomStringConvertible {
    public var positive: Diagnosis
    public var negative: Diagnosis

    public init(positive: Diagnosis, negative: Diagnosis) { (self.positive, self.negative) = (positive, negative) }

    /// The comparisons reported, in order of interest: AD vs CN, MCI vs CN, AD vs MCI.
    public static let all = [Contrast(positive: .ad, negative: .cn), Contrast(positive: .mci, negative: .cn),
                             Contrast(positive: .ad, negative: .mci)]

    /// `AD_vs_CN`, as in column names.
    public var key: String { "\(positive.rawValue)_vs_\(negative.rawValue)" }
    public var description: String { "\(positive.rawValue) vs \(negative.rawValue)" }
}

/// Univariate statistics of every feature: per class, and per contrast between classes.
///
/// For a contrast, Cohen's d is `(mean₊ − mean₋) / pooled SD`, the ROC AUC is that of the
/// feature's raw value as a score for the positive class (0.5 is chance, below 0.5 means the
/// feature is lower in the positive class), the p-value is Welch's two-sided t-test, and q
/// the Benjamini–Hochberg adjusted p-value over all features of that contrast.
public struct FeatureStatistics: Sendable {
    public struct ClassSummary: Sendable {
        public var diagnosis: Diagnosis
        /// Participants in the class.
        public var count: Int
        /// Per feature.
        public var mean: [Double]
        public var standardDeviation: [Double]
    }

    public struct ContrastSummary: Sendable {
        public var contrast: Contrast
        /// Per feature.
        public var cohensD: [Double]
        public var auc: [Double]
        public var t: [Double]
        public var p: [Double]
        public var q: [Double]

        /// How far the AUC is from chance either way: `max(AUC, 1 − AUC)`.
        public func separation(_ feature: Int) -> Double { max(auc[feature], 1 - auc[feature]) }

        /// Features ranked by q (then by larger separation, then by index).
        public func ranking() -> [Int] {
            auc.indices.sorted { a, b in
                let (qa, qb) = (q[a].isNaN ? 2 : q[a], q[b].isNaN ? 2 : q[b])
                if qa != qb { return qa < qb }
                let (sa, sb) = (separation(a), separation(b))
                if sa != sb { return sa > sb }
                return a < b
            }
        }
    }

    /// Classes with at least one scan, in the order CN, MCI, AD.
    public var classes: [ClassSummary]
    /// Contrasts whose two classes have at least two participants each.
    public var contrasts: [ContrastSummary]
    public var featureCount: Int

    /// Statistics of `values [N, F]` whose row `r` is a scan of participant `participants[r]`
    /// with diagnosis `labels[r]` (unlabelled rows are left out).
    ///
    /// The unit is the participant, not the scan: a participant's sessions with the same
    /// diagnosis are averaged into one observation first, so repeated scans do not count as
    /// independent samples (a participant whose diagnosis changed counts once in each class).
    public init(values: Tensor, labels: [Diagnosis?], participants: [String]) {
        let (n, f) = (values.shape[0], values.shape.count > 1 ? values.shape[1] : 0)
        featureCount = f
        let scalars = values.scalars
        // Rows per (participant, diagnosis), in order of first appearance.
        var groups: [Diagnosis: [[Int]]] = [:]
        var slots: [String: (Diagnosis, Int)] = [:]
        for r in 0..<n {
            guard let diagnosis = labels[r] else { continue }
            let key = "\(participants[r])\t\(diagnosis.rawValue)"
            if let (group, slot) = slots[key] {
                groups[group]![slot].append(r)
            } else {
                slots[key] = (diagnosis, groups[diagnosis, default: []].count)
                groups[diagnosis, default: []].append([r])
            }
        }
        var columns: [Diagnosis: [[Double]]] = [:]
        for (diagnosis, members) in groups {
            columns[diagnosis] = (0..<f).map { feature in
                members.map { rows in rows.reduce(0.0) { $0 + Double(scalars[$1 * f + feature]) } / Double(rows.count) }
            }
        }
        classes = Diagnosis.allCases.compactMap { diagnosis in
            columns[diagnosis].map { data in
                ClassSummary(diagnosis: diagnosis, count: data.first?.count ?? 0, mean: data.map(Statistics.mean),
                             standardDeviation: data.map(Statistics.standardDeviation))
            }
        }
        contrasts = Contrast.all.compactMap { contrast in
            guard let positive = columns[contrast.positive], let negative = columns[contrast.negative],
                  positive.first?.count ?? 0 >= 2, negative.first?.count ?? 0 >= 2 else { return nil }
            var summary = ContrastSummary(contrast: contrast, cohensD: [], auc: [], t: [], p: [], q: [])
            for feature in 0..<f {
                let (a, b) = (positive[feature], negative[feature])
                summary.cohensD.append(Statistics.cohensD(a, b))
                summary.auc.append(Statistics.rocAUC(positives: a, negatives: b))
                let test = Statistics.welchTTest(a, b)
                summary.t.append(test.t)
                summary.p.append(test.p)
            }
            summary.q = Statistics.benjaminiHochberg(summary.p)
            return summary
        }
    }

    /// The contrast the report leads with: the first of AD vs CN, MCI vs CN, AD vs MCI present.
    public var primary: ContrastSummary? { contrasts.first }

    /// Mean of the `top` largest separations (`max(AUC, 1 − AUC)`) among the features of
    /// `contrast`: how well its best single features tell the two classes apart.
    public func meanTopSeparation(_ contrast: ContrastSummary, top: Int) -> Double {
        let best = contrast.auc.indices.map(contrast.separation).filter { !$0.isNaN }.sorted(by: >).prefix(top)
        return best.isEmpty ? .nan : best.reduce(0, +) / Double(best.count)
    }
}
