/// Bad data or options given to an estimator. Each case names the offending value so that a
/// user can find it (row and column of a NaN, the lone class, the option and why).
public enum LearnError: Error, Equatable, CustomStringConvertible {
    /// A matrix that is not `[n, d]`, or has no rows or no columns.
    case badShape(what: String, shape: [Int], reason: String)
    /// Two inputs whose lengths must agree do not (labels vs rows, features vs the fit).
    case shapeMismatch(what: String, expected: Int, got: Int)
    /// A NaN or infinity in the data, at `row`, `column` (0-based).
    case nonFinite(what: String, row: Int, column: Int, value: Float)
    /// Training labels with fewer than two distinct classes.
    case singleClass(label: Int?)
    /// A class requested (or needed, e.g. by cross-validation) that has too few samples.
    case tooFewSamples(label: Int, count: Int, needed: Int, reason: String)
    /// A hyperparameter outside its domain.
    case invalidOption(name: String, value: String, reason: String)
    /// A numerical routine failed (LAPACK, a diverging loss).
    case numerical(String)

    public var description: String {
        switch self {
        case .badShape(let what, let shape, let reason):
            return "\(what) has shape \(shape): \(reason)"
        case .shapeMismatch(let what, let expected, let got):
            return "\(what): expected \(expected), got \(got)"
        case .nonFinite(let what, let row, let column, let value):
            return "\(what) holds \(value) at row \(row), column \(column); clean or impute the data first"
        case .singleClass(let label):
            if let label { return "training labels hold a single class (\(label)); a classifier needs at least two" }
            return "training labels are empty; a classifier needs at least two classes"
        case .tooFewSamples(let label, let count, let needed, let reason):
            return "class \(label): \(reason) (it has \(count), \(needed) are needed)"
        case .invalidOption(let name, let value, let reason):
            return "invalid \(name) \(value): \(reason)"
        case .numerical(let message):
            return message
        }
    }
}
