import TensorCore

/// Input checks shared by every estimator.
public enum Validation {
    /// Checks that `x` is a non-empty `[n, d]` matrix of finite values; returns `(n, d)`.
    public static func matrix(_ x: Tensor, _ what: String = "X") throws(LearnError) -> (rows: Int, columns: Int) {
        guard x.rank == 2 else { throw .badShape(what: what, shape: x.shape, reason: "expected [samples, features]") }
        let (n, d) = (x.shape[0], x.shape[1])
        guard n > 0, d > 0 else { throw .badShape(what: what, shape: x.shape, reason: "no samples or no features") }
        if let index = x.scalars.firstIndex(where: { !$0.isFinite }) {
            throw .nonFinite(what: what, row: index / d, column: index % d, value: x.scalars[index])
        }
        return (n, d)
    }

    /// Checks `x` against a fitted estimator's feature count; returns `n`.
    public static func matrix(_ x: Tensor, features: Int, _ what: String = "X") throws(LearnError) -> Int {
        let (n, d) = try matrix(x, what)
        guard d == features else { throw .shapeMismatch(what: "\(what) feature count", expected: features, got: d) }
        return n
    }

    /// Checks a training set: finite `[n, d]`, `n` labels, at least two classes.
    /// - Returns: the sorted distinct labels and each sample's index into them.
    public static func trainingSet(_ x: Tensor, _ y: [Int]) throws(LearnError)
        -> (rows: Int, columns: Int, classes: [Int], encoded: [Int])
    {
        let (n, d) = try matrix(x)
        guard y.count == n else { throw .shapeMismatch(what: "label count", expected: n, got: y.count) }
        let classes = Array(Set(y)).sorted()
        guard classes.count >= 2 else { throw .singleClass(label: classes.first) }
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        return (n, d, classes, y.map { index[$0]! })
    }
}
