import Learn

/// Per-class multipliers of `C` (scikit-learn's `class_weight`): class `c`'s samples get the
/// box constraint `C · w_c`.
///
/// ```
/// none       w_c = 1
/// balanced   w_c = n / (k · n_c)          n samples, k classes, n_c samples of class c
/// custom     w_c = weights[label_c]       (1 for labels not listed)
/// ```
public enum ClassWeight: Sendable, Codable, Equatable {
    case none
    case balanced
    case custom([Int: Double])

    /// The multiplier of each class.
    /// - Parameters:
    ///   - classes: the sorted training labels, `[k]`.
    ///   - counts: samples of each, `[k]`.
    /// - Returns: `w_c`, `[k]`.
    /// - Throws: `.invalidOption` when a custom weight names a label absent from the training
    ///   labels (scikit-learn refuses it too: it is most likely a typo).
    public func multipliers(classes: [Int], counts: [Int]) throws(LearnError) -> [Double] {
        switch self {
        case .none:
            return Array(repeating: 1, count: classes.count)
        case .balanced:
            let n = Double(counts.reduce(0, +))
            return counts.map { n / (Double(classes.count) * Double($0)) }
        case .custom(let weights):
            for label in weights.keys.sorted() where !classes.contains(label) {
                throw .invalidOption(
                    name: "classWeight", value: "[\(label): \(weights[label] ?? 1)]",
                    reason: "label \(label) is not among the training labels \(classes)")
            }
            return classes.map { weights[$0] ?? 1 }
        }
    }
}

/// Settings of `SupportVectorClassifier`, with scikit-learn's `SVC` defaults.
public struct SVMOptions: Sendable, Codable, Equatable {
    /// The kernel (default RBF with γ = "scale").
    public var kernel: SVMKernel
    /// The penalty `C > 0` on margin violations (default 1).
    public var c: Double
    /// Stopping tolerance on the maximal KKT violation (libsvm's `eps`, default 1e-3).
    public var tolerance: Double
    /// Whether the solver shrinks its active set (default true).
    public var shrinking: Bool
    /// Memory for kernel values, in MiB (default 200, as scikit-learn's `cache_size`). When a
    /// pair's whole `Q` matrix (`l² · 4` bytes) fits, it is computed once up front; with more
    /// than two classes or Platt scaling, the kernel matrix of all `n` rows is computed once
    /// and shared when it fits beside the largest pair's. Otherwise columns are computed on
    /// demand and the least recently used dropped (0: two columns held at a time).
    public var cacheMegabytes: Double
    /// Iteration limit per binary problem; nil for none (default). A problem stopped by it
    /// is reported through `FittedSVC.converged`.
    public var maxIterations: Int?
    /// Per-class multipliers of `C` (default none).
    public var classWeight: ClassWeight
    /// Fit Platt's sigmoids for `predictProbability` (default false; five extra fits per
    /// pair, by internal cross-validation).
    public var probability: Bool
    /// Seed of the cross-validation shuffle of Platt scaling.
    public var seed: UInt64

    public init(
        kernel: SVMKernel = .rbf(gamma: .scale), c: Double = 1, tolerance: Double = 1e-3,
        shrinking: Bool = true, cacheMegabytes: Double = 200, maxIterations: Int? = nil,
        classWeight: ClassWeight = .none, probability: Bool = false, seed: UInt64 = 0
    ) {
        self.kernel = kernel
        self.c = c
        self.tolerance = tolerance
        self.shrinking = shrinking
        self.cacheMegabytes = cacheMegabytes
        self.maxIterations = maxIterations
        self.classWeight = classWeight
        self.probability = probability
        self.seed = seed
    }

    /// The cache budget in bytes (capped far beyond any machine's memory, so the conversion
    /// cannot overflow).
    var cacheBytes: Int { Int(min(cacheMegabytes, 1_073_741_824) * 1_048_576) }

    /// Checks every setting against its domain.
    /// - Throws: `.invalidOption` naming the first setting out of range.
    public func validate() throws(LearnError) {
        func positive(_ name: String, _ value: Double) throws(LearnError) {
            guard value.isFinite, value > 0 else {
                throw .invalidOption(name: name, value: "\(value)", reason: "must be a positive finite number")
            }
        }
        try positive("c", c)
        try positive("tolerance", tolerance)
        guard cacheMegabytes.isFinite, cacheMegabytes >= 0 else {
            throw .invalidOption(name: "cacheMegabytes", value: "\(cacheMegabytes)", reason: "must be a finite number of MiB, 0 or more")
        }
        if let maxIterations, maxIterations < 1 {
            throw .invalidOption(name: "maxIterations", value: "\(maxIterations)", reason: "must be at least 1 (nil for no limit)")
        }
        if case .value(let gamma) = kernel.gamma {
            try positive("gamma", gamma)
        }
        if case .scaled(let factor) = kernel.gamma {
            try positive("gamma scale factor", factor)
        }
        switch kernel {
        case .linear, .rbf:
            break
        case .polynomial(let degree, _, let coef0):
            guard degree >= 1 else {
                throw .invalidOption(name: "degree", value: "\(degree)", reason: "a polynomial kernel needs degree 1 or more")
            }
            guard coef0.isFinite else { throw .invalidOption(name: "coef0", value: "\(coef0)", reason: "must be finite") }
        case .sigmoid(_, let coef0):
            guard coef0.isFinite else { throw .invalidOption(name: "coef0", value: "\(coef0)", reason: "must be finite") }
        }
        if case .custom(let weights) = classWeight {
            for label in weights.keys.sorted() {
                let weight = weights[label] ?? 1
                guard weight.isFinite, weight > 0 else {
                    throw .invalidOption(name: "classWeight", value: "[\(label): \(weight)]", reason: "class weights must be positive finite numbers")
                }
            }
        }
    }
}
