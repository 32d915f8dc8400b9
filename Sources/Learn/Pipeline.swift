import TensorCore

/// Transformers applied in order, then a classifier, fitted as one on training rows only
/// (scikit-learn's `Pipeline`): cross-validating a pipeline keeps every fitted step inside
/// the fold.
public struct Pipeline<Final: Classifier>: Classifier {
    public var steps: [any Transformer]
    public var classifier: Final

    public init(_ steps: [any Transformer], _ classifier: Final) {
        self.steps = steps
        self.classifier = classifier
    }

    public func fit(_ x: Tensor, _ y: [Int]) throws(LearnError) -> Fitted {
        var current = x
        var fittedSteps: [any FittedTransformer] = []
        for step in steps {
            let fitted = try step.fit(current) as any FittedTransformer
            current = try fitted.transform(current)
            fittedSteps.append(fitted)
        }
        return Fitted(steps: fittedSteps, classifier: try classifier.fit(current, y))
    }

    public struct Fitted: FittedClassifier {
        public var steps: [any FittedTransformer]
        public var classifier: Final.Fitted

        public var classes: [Int] { classifier.classes }
        public var featureCount: Int { steps.first?.inputFeatureCount ?? classifier.featureCount }

        /// `x` through every fitted transformer.
        public func transform(_ x: Tensor) throws(LearnError) -> Tensor {
            var current = x
            for step in steps { current = try step.transform(current) }
            return current
        }

        public func decisionFunction(_ x: Tensor) throws(LearnError) -> Tensor {
            try classifier.decisionFunction(try transform(x))
        }

        public func predict(_ x: Tensor) throws(LearnError) -> [Int] {
            try classifier.predict(try transform(x))
        }

        public func predictProbability(_ x: Tensor) throws(LearnError) -> Tensor {
            try classifier.predictProbability(try transform(x))
        }
    }
}
