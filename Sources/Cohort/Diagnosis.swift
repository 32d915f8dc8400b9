/// The clinical groups the workbench classifies. A manifest row with no diagnosis is
/// *unlabelled*: it is used for unsupervised pretraining only.
public enum Diagnosis: String, CaseIterable, Sendable, Codable {
    /// Cognitively normal (also written NC).
    case cn = "CN"
    /// Mild cognitive impairment.
    case mci = "MCI"
    /// Alzheimer's disease.
    case ad = "AD"

    /// Reads a manifest's `diagnosis` field: `nil` means the field says "no label"; an unknown
    /// word throws.
    ///
    /// Accepted (case-insensitive): `CN`, `NC` (alias of CN), `MCI`, `AD`; empty, `unlabeled`,
    /// `unlabelled`, `n/a`, `NA` and `NaN` (as pandas writes a missing value) mean unlabelled.
    public static func parse(_ text: String) throws(DiagnosisParseError) -> Diagnosis? {
        let word = text.trimmingCharacters(in: .whitespaces).uppercased()
        switch word {
        case "CN", "NC": return .cn
        case "MCI": return .mci
        case "AD": return .ad
        case "", "UNLABELED", "UNLABELLED", "N/A", "NA", "NAN": return nil
        default: throw DiagnosisParseError(text: text)
        }
    }

    /// Position in the disease order CN < MCI < AD.
    public var severity: Int {
        switch self {
        case .cn: return 0
        case .mci: return 1
        case .ad: return 2
        }
    }
}

/// A `diagnosis` field that is none of the accepted words.
public struct DiagnosisParseError: Error, Equatable, CustomStringConvertible {
    public var text: String
    public var description: String {
        "unknown diagnosis \"\(text)\" (expected CN, NC, MCI, AD, or empty/unlabeled)"
    }
}
