import Cohort

/// Which diagnoses a classifier separates. Labels are positions in `classes`, which run in
/// disease order, so in a two-class task the positive class (label 1) is the more severe.
public enum ClassificationTask: String, CaseIterable, Codable, Sendable {
    case adVsCN = "ad-cn"
    case mciVsCN = "mci-cn"
    case adVsMCI = "ad-mci"
    case threeClass = "cn-mci-ad"

    /// The diagnoses, mildest first.
    public var classes: [Diagnosis] {
        switch self {
        case .adVsCN: return [.cn, .ad]
        case .mciVsCN: return [.cn, .mci]
        case .adVsMCI: return [.mci, .ad]
        case .threeClass: return [.cn, .mci, .ad]
        }
    }

    /// "AD vs CN", "CN / MCI / AD".
    public var title: String {
        classes.count == 2 ? "\(classes[1].rawValue) vs \(classes[0].rawValue)" : classes.map(\.rawValue).joined(separator: " / ")
    }

    /// The label of `diagnosis` (its position in `classes`), nil when the task leaves it out.
    public func label(_ diagnosis: Diagnosis?) -> Int? {
        diagnosis.flatMap { classes.firstIndex(of: $0) }
    }
}
