/// Errors raised by tensor operations on shapes or arguments that do not fit together.
/// Each names the operation and the offending shapes or values so a user can act on it.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    /// Two operands whose shapes must agree do not.
    case shapeMismatch(operation: String, expected: [Int], got: [Int])
    /// A shape that cannot exist (negative extent, product overflowing `Int`).
    case invalidShape(operation: String, shape: [Int], reason: String)
    /// An argument outside its allowed range (axis, stride, probability, ...).
    case invalidArgument(operation: String, reason: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(operation, expected, got):
            return "\(operation): shape mismatch, expected \(expected) but got \(got)"
        case let .invalidShape(operation, shape, reason):
            return "\(operation): invalid shape \(shape): \(reason)"
        case let .invalidArgument(operation, reason):
            return "\(operation): \(reason)"
        }
    }
}
