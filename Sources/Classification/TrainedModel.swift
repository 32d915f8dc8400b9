import Classifiers
import Learn
import TensorCore

/// A fitted back end and how it was chosen, as `metrics.json` records it.
public struct TrainedModel: Sendable {
    public var predictor: any FittedClassifier
    /// The setting the grid search chose (the only one when there was one candidate).
    public var chosen: [String: String]
    /// Every candidate's inner cross-validation scores.
    public var candidates: [CandidateScore]
    /// Warnings worth a reader's attention (solver did not converge, ...).
    public var notes: [String]
}

/// Fitting the SVM back end (optionally after other transformers) on a feature matrix.
enum SVMFitting {
    /// Grid search over `settings`' C (and gamma) values with participant-level inner folds,
    /// each candidate a pipeline `preprocessing → standardiser → SVM`.
    /// - Parameters:
    ///   - x: training rows `[n, d]`; `labels` and `groups` (participant ids) per row.
    ///   - preprocessing: transformers fitted before the standardiser (e.g. FastICA), refitted
    ///     inside every inner fold.
    static func fit(_ x: Tensor, labels: [Int], groups: [String], settings: SVMSettings, preprocessing: [any Transformer],
                    seed: UInt64, progress: (Int, Int) -> Void) throws(ClassificationError) -> TrainedModel {
        try settings.validate()
        let steps = [Standardiser()] + preprocessing + (preprocessing.isEmpty ? [] : [Standardiser()])
        // The SVM's input width: after ICA, its components.
        let features = preprocessing.compactMap { ($0 as? FastICA)?.components }.last ?? (x.shape.count == 2 ? x.shape[1] : 0)
        do {
            if settings.usesLiblinear(features: features) {
                let candidates = settings.cGrid.map { c in
                    (settings: ["C": "\(c)"], estimator: Pipeline(steps, LinearSVC(c: c, classWeight: settings.classWeight == "balanced" ? .balanced : .none, seed: seed)))
                }
                return try search(candidates, x, labels, groups, settings, seed, progress)
            }
            let kernels: [(SVMKernel, [String: String])]
            switch settings.kernel {
            case "linear": kernels = [(.linear, [:])]
            case "rbf": kernels = try settings.gammas().map { (.rbf(gamma: $0.gamma), ["gamma": $0.text]) }
            case "poly": kernels = try settings.gammas().map { (.polynomial(degree: settings.degree, gamma: $0.gamma, coef0: settings.coef0), ["gamma": $0.text]) }
            default: kernels = try settings.gammas().map { (.sigmoid(gamma: $0.gamma, coef0: settings.coef0), ["gamma": $0.text]) }
            }
            var candidates: [(settings: [String: String], estimator: Pipeline<SupportVectorClassifier>)] = []
            for c in settings.cGrid {
                for (kernel, described) in kernels {
                    var options = SVMOptions()
                    options.kernel = kernel
                    options.c = c
                    options.classWeight = settings.classWeight == "balanced" ? .balanced : .none
                    // Inner folds score predicted labels: Platt scaling only for the final refit.
                    options.probability = false
                    options.cacheMegabytes = settings.cacheMegabytes
                    options.seed = seed
                    candidates.append((described.merging(["C": "\(c)"]) { a, _ in a }, Pipeline(steps, SupportVectorClassifier(options: options))))
                }
            }
            return try search(candidates, x, labels, groups, settings, seed, progress) { candidate in
                var refitted = candidate
                refitted.classifier.options.probability = settings.probability
                return refitted
            }
        } catch let error as ClassificationError {
            throw error
        } catch let error as LearnError {
            throw .learn(error)
        } catch {
            throw .io("\(error)")
        }
    }

    private static func search<C: Classifier>(_ candidates: [(settings: [String: String], estimator: C)], _ x: Tensor, _ labels: [Int],
                                              _ groups: [String], _ settings: SVMSettings, _ seed: UInt64,
                                              _ progress: (Int, Int) -> Void, refit: (C) -> C = { $0 }) throws(LearnError) -> TrainedModel {
        let search = GridSearch(candidates: candidates, folds: settings.innerFolds, seed: seed)
        let result = try search.fit(x, labels, groups: groups, progress: progress, refit: refit)
        return TrainedModel(predictor: result.best, chosen: candidates[result.bestIndex].settings, candidates: result.scores,
                            notes: warnings(result.best))
    }

    /// The fitted model's convergence warnings: FastICA's, and an SVM stopped by its
    /// iteration limit.
    private static func warnings(_ fitted: some FittedClassifier) -> [String] {
        var notes: [String] = []
        var classifier: any FittedClassifier = fitted
        if let pipeline = fitted as? Pipeline<SupportVectorClassifier>.Fitted {
            notes += pipeline.steps.compactMap { ($0 as? FastICA.Fitted)?.warning }
            classifier = pipeline.classifier
        } else if let pipeline = fitted as? Pipeline<LinearSVC>.Fitted {
            notes += pipeline.steps.compactMap { ($0 as? FastICA.Fitted)?.warning }
            classifier = pipeline.classifier
        }
        if let svc = classifier as? FittedSVC, !svc.converged {
            notes.append("the SVM solver stopped at its iteration limit before converging")
        }
        if let linear = classifier as? LinearSVC.Fitted, let warning = linear.warning { notes.append(warning) }
        return notes
    }
}
