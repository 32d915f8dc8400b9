import Foundation

/// Why a cohort operation (manifest reading, splitting, importing, synthesis) failed. Each
/// case names the file, line or value a person has to act on.
public enum CohortError: Error, Equatable, CustomStringConvertible {
    /// A file could not be read.
    case cannotRead(path: String, reason: String)
    /// A file or folder could not be written.
    case cannotWrite(path: String, reason: String)
    /// A manifest failed validation; `issues` holds every error found (with line numbers).
    case invalidManifest(path: String, issues: [ManifestIssue])
    /// A participant appears on both sides of a split.
    case dataLeakage(participant: String, first: String, second: String)
    /// The requested split cannot be made (e.g. more folds than a class has participants).
    case impossibleSplit(reason: String)
    /// An importer found a layout it cannot use.
    case invalidLayout(path: String, reason: String)
    /// A parameter is outside what the operation accepts.
    case invalidParameter(name: String, value: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "cannot read \(path): \(reason)"
        case let .cannotWrite(path, reason): return "cannot write \(path): \(reason)"
        case let .invalidManifest(path, issues):
            let errors = issues.filter { $0.severity == .error }
            let shown = errors.prefix(10).map { "  " + $0.description }.joined(separator: "\n")
            let more = errors.count > 10 ? "\n  ... and \(errors.count - 10) more (run `adwb manifest validate \(path)`)" : ""
            return "invalid manifest \(path): \(errors.count) error\(errors.count == 1 ? "" : "s")\n\(shown)\(more)"
        case let .dataLeakage(participant, first, second):
            return "data leakage: participant \(participant) is in \(first) and \(second)"
        case let .impossibleSplit(reason): return "cannot split: \(reason)"
        case let .invalidLayout(path, reason): return "\(path): \(reason)"
        case let .invalidParameter(name, value, reason): return "\(name) = \(value): \(reason)"
        }
    }
}
