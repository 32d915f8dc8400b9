/// Tissue classes of the synthetic anatomy: the values of its label maps (`*_dseg.nii.gz`,
/// listed in the cohort's `dseg.tsv`).
public enum Tissue: UInt8, CaseIterable, Sendable {
    case background = 0
    /// Extra-cerebral and sulcal cerebrospinal fluid (and space left by atrophy).
    case csf = 1
    /// The cortical grey-matter ribbon.
    case corticalGreyMatter = 2
    case whiteMatter = 3
    /// Thalamus, caudate and putamen.
    case deepGreyMatter = 4
    case hippocampus = 5
    /// Lateral and third ventricles.
    case ventricles = 6
    case skull = 7
    case scalp = 8

    /// The BIDS-style name written to `dseg.tsv`.
    public var name: String {
        switch self {
        case .background: return "background"
        case .csf: return "CSF"
        case .corticalGreyMatter: return "cortical_GM"
        case .whiteMatter: return "WM"
        case .deepGreyMatter: return "deep_GM"
        case .hippocampus: return "hippocampus"
        case .ventricles: return "ventricles"
        case .skull: return "skull"
        case .scalp: return "scalp"
        }
    }

    /// Mean T1-weighted intensity relative to white matter (before per-scan jitter).
    var relativeT1: Float {
        switch self {
        case .background: return 0
        case .csf, .ventricles: return 0.22
        case .corticalGreyMatter, .hippocampus: return 0.62
        case .whiteMatter: return 1
        case .deepGreyMatter: return 0.74
        case .skull: return 0.12
        case .scalp: return 0.85
        }
    }
}
