import Cohort
import Extraction
import Learn

/// Why `adwb classify` could not run; each case names the file, row, class or value at fault.
public enum ClassificationError: Error, CustomStringConvertible {
    case invalidOption(String)
    /// A row of a split with no features (or no scan) to go with it.
    case missingRow(set: String, line: Int?, participant: String, session: String, source: String)
    /// A set with no row of the task's classes.
    case emptySet(set: String, task: ClassificationTask)
    /// A class of the task that the training rows do not have.
    case missingClass(set: String, diagnosis: Diagnosis, task: ClassificationTask)
    /// The same (participant, session) twice in a feature folder or manifest.
    case duplicateRow(participant: String, session: String, source: String)
    case learn(LearnError)
    case cohort(CohortError)
    case extraction(ExtractionError)
    /// A scan that could not be read or used, with its manifest line.
    case badScan(String)
    /// A training loss that became NaN or infinite.
    case diverged(epoch: Int, loss: Double)
    case interrupted
    case io(String)

    public var description: String {
        switch self {
        case let .invalidOption(message): return message
        case let .missingRow(set, line, participant, session, source):
            return "\(set)\(line.map { " line \($0)" } ?? ""): \(participant) \(session) has no row in \(source)"
        case let .emptySet(set, task):
            return "\(set) has no \(task.classes.map(\.rawValue).joined(separator: " or ")) row for the task \(task.title)"
        case let .missingClass(set, diagnosis, task):
            return "\(set) has no \(diagnosis.rawValue) row, but the task \(task.title) needs every one of its classes to train on"
        case let .duplicateRow(participant, session, source):
            return "\(participant) \(session) appears twice in \(source)"
        case let .learn(error): return error.description
        case let .cohort(error): return error.description
        case let .extraction(error): return error.description
        case let .badScan(message): return message
        case let .diverged(epoch, loss):
            return "training diverged in epoch \(epoch) (loss \(loss)); lower the learning rate"
        case .interrupted: return "stopped on request before training finished; nothing was written"
        case let .io(message): return message
        }
    }
}
