import Classification
import Cohort

/// Why `adwb compare` (or `adwb demo`) stopped; each case names the file, fold, stage or
/// value at fault.
public enum CompareError: Error, CustomStringConvertible {
    /// A bad experiment file or option.
    case config(String)
    /// Folds that would let test information reach training.
    case leakage(String)
    /// A stage that failed, with what it was doing.
    case stage(name: String, reason: String)
    case cohort(CohortError)
    /// A stage output that cannot be read back (a predictions file with an unknown class, say).
    case badOutput(path: String, reason: String)
    case interrupted
    case io(String)

    public var description: String {
        switch self {
        case let .config(message): return message
        case let .leakage(message): return "refused, test information would reach training: \(message)"
        case let .stage(name, reason): return "\(name): \(reason)"
        case let .cohort(error): return error.description
        case let .badOutput(path, reason): return "\(path): \(reason)"
        case .interrupted: return "stopped on request; finished stages are kept and a rerun resumes after them"
        case let .io(message): return message
        }
    }
}
