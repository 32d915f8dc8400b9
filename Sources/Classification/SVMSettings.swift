import Foundation
import Classifiers
import Learn

/// The SVM back end's settings: the kernel and the grid its hyperparameters are chosen from
/// by participant-level inner cross-validation on the training rows.
public struct SVMSettings: Codable, Equatable, Sendable {
    /// `linear` (the default: with far more features than training scans, as deep features
    /// and voxels have, a linear SVM is the field's standard and an RBF kernel rarely helps),
    /// `rbf`, `poly` or `sigmoid`.
    public var kernel = "linear"
    /// `smo` (libsvm's solver, any kernel), `liblinear` (dual coordinate descent, linear
    /// kernel only, for many features) or `auto` (liblinear for a linear kernel when there
    /// are more than 20,000 features, else smo).
    public var solver = "auto"
    /// Values of C tried; nil for the kernel's default grid (`defaultCValues`).
    public var cValues: [Double]?
    /// Values of gamma tried (RBF, polynomial, sigmoid): a number, `scale` (1 / (d·Var X),
    /// scikit-learn's default), `auto` (1 / d), or `scale*f` for a multiple of scale.
    public var gammaValues: [String] = ["scale*0.1", "scale", "scale*10"]
    public var degree = 3
    public var coef0 = 0.0
    /// `balanced` (C per class inversely proportional to its frequency) or `none`.
    public var classWeight = "balanced"
    /// Inner folds of the grid search (participant-level).
    public var innerFolds = 3
    /// Platt-scaled probabilities (libsvm's internal 5-fold cross-validation).
    public var probability = true
    public var cacheMegabytes = 200.0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case kernel, solver, degree, coef0, probability
        case cValues = "c_values", gammaValues = "gamma_values", classWeight = "class_weight"
        case innerFolds = "inner_folds", cacheMegabytes = "cache_megabytes"
    }

    /// C grids by kernel: decades from 10⁻³ to 10 for a linear kernel on standardised
    /// features (Clinica's linear SVMs search a similar range); 1 to 1000 for the others, whose
    /// smaller C values leave every multiplier at its bound on small training sets and the
    /// decision to the intercept alone.
    public static func defaultCValues(kernel: String) -> [Double] {
        kernel == "linear" ? [0.001, 0.01, 0.1, 1, 10] : [1, 10, 100, 1000]
    }

    /// The C values searched.
    var cGrid: [Double] { cValues ?? Self.defaultCValues(kernel: kernel) }

    /// Whether the liblinear solver serves `features` features.
    func usesLiblinear(features: Int) -> Bool {
        solver == "liblinear" || (solver == "auto" && kernel == "linear" && features > 20_000)
    }

    /// Checks every value before any fitting starts.
    func validate() throws(ClassificationError) {
        guard ["linear", "rbf", "poly", "sigmoid"].contains(kernel) else {
            throw .invalidOption("unknown SVM kernel '\(kernel)' (use linear, rbf, poly or sigmoid)")
        }
        guard ["auto", "smo", "liblinear"].contains(solver) else { throw .invalidOption("unknown SVM solver '\(solver)' (use auto, smo or liblinear)") }
        guard solver != "liblinear" || kernel == "linear" else { throw .invalidOption("the liblinear solver takes the linear kernel only") }
        guard !cGrid.isEmpty, cGrid.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw .invalidOption("C values \(cGrid): each must be a positive number") }
        guard ["balanced", "none"].contains(classWeight) else { throw .invalidOption("unknown class weight '\(classWeight)' (use balanced or none)") }
        guard innerFolds >= 2 else { throw .invalidOption("inner folds \(innerFolds): at least 2") }
        guard degree >= 1, coef0.isFinite, cacheMegabytes >= 0 else { throw .invalidOption("degree \(degree), coef0 \(coef0), cache \(cacheMegabytes) MB") }
        _ = try gammas()  // checked for every kernel: a typo should not wait for a kernel change
    }

    /// The gamma grid as the SVM takes it, each with its text.
    func gammas() throws(ClassificationError) -> [(gamma: Gamma, text: String)] {
        guard !gammaValues.isEmpty else { throw .invalidOption("no gamma values to try") }
        return try gammaValues.map { (text: String) throws(ClassificationError) -> (gamma: Gamma, text: String) in
            let word = text.trimmingCharacters(in: .whitespaces).lowercased()
            if word == "scale" { return (.scale, word) }
            if word == "auto" { return (.auto, word) }
            if word.hasPrefix("scale*"), let factor = Double(word.dropFirst(6)), factor.isFinite, factor > 0 {
                return (.scaled(factor), word)
            }
            if let value = Double(word), value.isFinite, value > 0 { return (.value(value), word) }
            throw .invalidOption("gamma '\(text)': use a positive number, scale, auto or scale*<factor>")
        }
    }
}
