import Foundation
import TensorCore

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

extension CohortError {
    /// `cannotWrite` for `url` from a lower layer's error, without repeating the path.
    static func writing(_ url: URL, _ error: Error) -> CohortError {
        if case let FileWriteError.cannotWrite(_, reason) = error { return .cannotWrite(path: url.path, reason: reason) }
        if let error = error as? CohortError { return error }
        let domain = (error as NSError).domain
        let isSystemError = domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain
        return .cannotWrite(path: url.path, reason: isSystemError ? TSVTable.reason(error) : String(describing: error))
    }
}

/// Writes a whole file atomically (temporary file, fsync, rename), creating its folder.
func writeAtomically(_ data: Data, to url: URL) throws(CohortError) {
    do {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFile.write(data, to: url)
    } catch {
        throw .writing(url, error)
    }
}

/// Writes `value` as indented JSON with sorted keys (stable bytes), atomically.
func writeJSON<T: Encodable>(_ value: T, to url: URL) throws(CohortError) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data: Data
    do { data = try encoder.encode(value) } catch { throw .writing(url, error) }
    try writeAtomically(data, to: url)
}
