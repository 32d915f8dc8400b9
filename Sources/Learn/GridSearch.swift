import TensorCore

/// Exhaustive search over candidate estimators, each scored by participant-level
/// cross-validation on the training rows, then the best refitted on all of them
/// (scikit-learn's `GridSearchCV` with `StratifiedGroupKFold`). No participant's sessions are
/// split across an inner fold's two sides.
public struct GridSearch<Candidate: Classifier>: Sendable {
    /// The candidates in order of preference: ties in score go to the earlier one, so list
    /// the simpler (more regularised) settings first.
    public var candidates: [(settings: [String: String], estimator: Candidate)]
    /// Inner folds (default 3).
    public var folds: Int
    /// Seed of the inner fold assignment.
    public var seed: UInt64

    public init(candidates: [(settings: [String: String], estimator: Candidate)], folds: Int = 3, seed: UInt64 = 0) {
        self.candidates = candidates
        self.folds = folds
        self.seed = seed
    }

    public struct Result: Sendable {
        public var best: Candidate.Fitted
        public var bestIndex: Int
        public var scores: [CandidateScore]
    }

    /// - Parameters:
    ///   - x: training rows `[n, d]`; `y` their labels; `groups` their participant ids.
    ///   - progress: called with (done, total) fits.
    /// - Throws: `.tooFewSamples` when a class has fewer participants than inner folds.
    ///   - refit: the estimator refitted on all rows from the chosen candidate (by default the
    ///     candidate itself; e.g. the same SVM with Platt scaling, which scoring by predicted
    ///     labels does not need).
    public func fit(_ x: Tensor, _ y: [Int], groups: [String], progress: (Int, Int) -> Void = { _, _ in },
                    refit: (Candidate) -> Candidate = { $0 }) throws(LearnError) -> Result {
        guard !candidates.isEmpty else { throw .invalidOption(name: "grid", value: "[]", reason: "no candidate settings to search") }
        let (n, _, classes, _) = try Validation.trainingSet(x, y)
        guard groups.count == n else { throw .shapeMismatch(what: "participant ids", expected: n, got: groups.count) }
        if candidates.count == 1 {
            return Result(best: try refit(candidates[0].estimator).fit(x, y), bestIndex: 0, scores: [])
        }
        var groupLabel: [String: Int] = [:]
        for (g, label) in zip(groups, y) where groupLabel[g] == nil { groupLabel[g] = label }
        for label in classes {
            let participants = groupLabel.values.filter { $0 == label }.count
            guard participants >= folds else {
                throw .tooFewSamples(label: label, count: participants, needed: folds,
                                     reason: "too few participants for inner cross-validation with \(folds) folds, which needs one per fold (lower the inner folds or give a single setting)")
            }
        }
        let splits = try GroupFolds.split(groups: groups, labels: y, folds: folds, seed: seed)
        var scores: [CandidateScore] = []
        let total = candidates.count * splits.count
        for (settings, estimator) in candidates {
            var foldScores: [Double] = []
            for (train, test) in splits {
                let fitted = try estimator.fit(try rows(x, train), train.map { y[$0] })
                let predicted = try fitted.predict(try rows(x, test))
                let truth = test.map { y[$0] }
                foldScores.append(ClassificationMetrics(truth: truth, predicted: predicted, probabilities: nil, classes: classes).balancedAccuracy)
                progress(scores.count * splits.count + foldScores.count, total)
            }
            scores.append(CandidateScore(settings: settings, foldScores: foldScores, mean: foldScores.reduce(0, +) / Double(foldScores.count)))
        }
        var bestIndex = 0
        for (i, score) in scores.enumerated() where score.mean > scores[bestIndex].mean { bestIndex = i }
        return Result(best: try refit(candidates[bestIndex].estimator).fit(x, y), bestIndex: bestIndex, scores: scores)
    }

    private func rows(_ x: Tensor, _ indices: [Int]) throws(LearnError) -> Tensor {
        do { return try x.gatheringBatch(indices) } catch {
            throw .numerical("gathering rows: \(error)")
        }
    }
}

/// One grid candidate's inner cross-validation result.
public struct CandidateScore: Codable, Equatable, Sendable {
    public var settings: [String: String]
    /// Balanced accuracy on each inner fold's held-out participants.
    public var foldScores: [Double]
    public var mean: Double

    enum CodingKeys: String, CodingKey { case settings, mean, foldScores = "fold_scores" }
}
