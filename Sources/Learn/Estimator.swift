import TensorCore

// Shape letters: n samples (rows), d features (columns), k classes.
// Every data matrix is a row-major `Tensor` of shape `[n, d]`; labels are `[Int]` of length n.

/// An unfitted classifier: its hyperparameters. `fit` returns a separate fitted value, so a
/// prediction before fitting does not compile (scikit-learn's `fit` / `predict`, as types).
public protocol Classifier: Sendable {
    associatedtype Fitted: FittedClassifier
    /// Fits on `x` `[n, d]` with labels `y` (any integers; the sorted distinct values become
    /// `classes`). Throws for non-finite values, mismatched lengths or fewer than two classes.
    func fit(_ x: Tensor, _ y: [Int]) throws(LearnError) -> Fitted
}

/// A fitted classifier.
public protocol FittedClassifier: Sendable {
    /// The distinct training labels in ascending order; probability columns follow it.
    var classes: [Int] { get }
    /// Number of features the classifier was fitted on.
    var featureCount: Int { get }
    /// Scores `[n, m]`: for two classes `m = 1` and a positive score means `classes[1]`;
    /// otherwise as the back end documents (one-vs-one pairs, one-vs-rest columns, logits).
    func decisionFunction(_ x: Tensor) throws(LearnError) -> Tensor
    /// Predicted labels, `[n]`, values from `classes`.
    func predict(_ x: Tensor) throws(LearnError) -> [Int]
    /// Class probabilities `[n, k]`, rows summing to one, columns in `classes` order.
    func predictProbability(_ x: Tensor) throws(LearnError) -> Tensor
}

/// An unfitted feature transformer (standardiser, FastICA, ...).
public protocol Transformer: Sendable {
    associatedtype Fitted: FittedTransformer
    /// Fits on the training rows `x` `[n, d]` (labels are never needed by a transformer).
    func fit(_ x: Tensor) throws(LearnError) -> Fitted
}

/// A fitted transformer: `[n, d] → [n, d′]`.
public protocol FittedTransformer: Sendable {
    var inputFeatureCount: Int { get }
    func transform(_ x: Tensor) throws(LearnError) -> Tensor
}

extension Transformer {
    /// `fit(x)` then `transform(x)`.
    public func fitTransform(_ x: Tensor) throws(LearnError) -> (fitted: Fitted, transformed: Tensor) {
        let fitted = try fit(x)
        return (fitted, try fitted.transform(x))
    }
}

extension FittedClassifier {
    /// Fraction of rows whose prediction equals `y`.
    public func score(_ x: Tensor, _ y: [Int]) throws(LearnError) -> Double {
        let predicted = try predict(x)
        guard predicted.count == y.count, !y.isEmpty else {
            throw .shapeMismatch(what: "labels", expected: predicted.count, got: y.count)
        }
        return Double(zip(predicted, y).filter { $0 == $1 }.count) / Double(y.count)
    }
}
