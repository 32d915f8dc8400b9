import Learn
import TensorCore

/// The C-support vector classifier (scikit-learn's `SVC`, libsvm's C-SVC), trained by SMO
/// with second-order working set selection (Fan, Chen & Lin, JMLR 2005) on each
/// one-vs-one pair of classes:
///
/// ```
/// min_α  ½ αᵀQα − eᵀα   s.t. 0 ≤ α_i ≤ C · w_class(i),  yᵀα = 0,   Q_ij = y_i y_j K(x_i, x_j)
/// f(x) = Σ_i y_i α_i K(x_i, x) − ρ
/// ```
///
/// Multi-class is one-vs-one exactly as libsvm and scikit-learn: the classes sorted
/// ascending, the pairs `(i, j)`, `i < j`, in order, `y = +1` for class `i`, each side's `C`
/// scaled by its class weight; prediction by votes, ties to the lowest class index. Kernel
/// values are single-precision GEMMs (the whole `Q` of a pair at once when it fits the cache
/// budget); the solver's gradient is double precision, as libsvm's.
public struct SupportVectorClassifier: Classifier, Codable, Equatable {
    public var options: SVMOptions

    /// - Parameter options: the settings (scikit-learn's `SVC()` defaults if omitted).
    public init(options: SVMOptions = SVMOptions()) {
        self.options = options
    }

    /// Fits one binary C-SVC per pair of classes (with Platt's sigmoids when
    /// `options.probability`).
    /// - Parameters:
    ///   - x: training rows `[n, d]`, finite.
    ///   - y: their labels `[n]` (any integers, at least two distinct).
    /// - Returns: the support vectors and the `k(k−1)/2` pairwise decision functions.
    /// - Throws: `.invalidOption` for settings out of range (before any work),
    ///   `.nonFinite`, `.badShape`, `.shapeMismatch` or `.singleClass` for bad data.
    public func fit(_ x: Tensor, _ y: [Int]) throws(LearnError) -> FittedSVC {
        try options.validate()
        let (n, d, classes, encoded) = try Validation.trainingSet(x, y)
        let k = classes.count

        // libsvm groups the samples by class (stable within a class): every pair's problem
        // is then two runs of consecutive rows, and the support vectors come out grouped.
        var counts = [Int](repeating: 0, count: k)
        for c in encoded { counts[c] += 1 }
        var starts = [Int](repeating: 0, count: k)
        for c in 1..<k { starts[c] = starts[c - 1] + counts[c - 1] }
        var order = [Int](repeating: 0, count: n)
        var next = starts
        for (row, c) in encoded.enumerated() {
            order[next[c]] = row
            next[c] += 1
        }

        let classBounds = try options.classWeight.multipliers(classes: classes, counts: counts).map { options.c * $0 }
        let gamma = options.kernel.gamma?.resolved(for: x.scalars, features: d) ?? 0
        // Kernel values are single precision (as libsvm's cache): γ must survive the rounding.
        if options.kernel.gamma != nil, !(Float(gamma).isFinite && Float(gamma) > 0) {
            throw .invalidOption(name: "gamma", value: "\(gamma)", reason: "outside the single-precision range the kernel is computed in")
        }
        let rows = KernelRows(x.scalars, features: d, order: order, function: KernelFunction(options.kernel, gamma: gamma))
        let context = TrainingContext(
            rows: rows, classCount: k, largestPair: counts.sorted(by: >).prefix(2).reduce(0, +), options: options)

        var generator = Xoshiro256StarStar(seed: options.seed)
        var solutions: [SolutionInfo] = []
        var sigmoids: [(a: Double, b: Double)] = []
        var converged = true
        for (i, j) in FittedSVC.pairs(k) {
            let indices = Array(starts[i]..<(starts[i] + counts[i])) + Array(starts[j]..<(starts[j] + counts[j]))
            let labels = [Int8](repeating: 1, count: counts[i]) + [Int8](repeating: -1, count: counts[j])
            let bounds = [Double](repeating: classBounds[i], count: counts[i]) + [Double](repeating: classBounds[j], count: counts[j])
            if options.probability {
                sigmoids.append(PlattScaling.crossValidatedSigmoid(labels: labels, generator: &generator) { train, test in
                    let solution = context.solve(
                        train.map { indices[$0] }, labels: train.map { labels[$0] }, bounds: train.map { bounds[$0] })
                    converged = converged && solution.converged
                    let supports = train.indices.filter { solution.alpha[$0] > 0 }
                    return context.decisionValues(
                        rows: test.map { indices[$0] }, supports: supports.map { indices[train[$0]] },
                        coefficients: supports.map { Float(Double(labels[train[$0]]) * solution.alpha[$0]) },
                        rho: solution.rho)
                })
            }
            let solution = context.solve(indices, labels: labels, bounds: bounds)
            // Kernel values that overflow (a polynomial of large raw features, say) leave NaNs,
            // as scikit-learn reports: refuse the model rather than predict from it.
            guard solution.rho.isFinite, solution.objective.isFinite, solution.alpha.allSatisfy(\.isFinite) else {
                throw .numerical("the SVM of classes \(classes[i]) and \(classes[j]) has non-finite dual coefficients or intercept: the kernel values overflow single precision; standardise the features or lower gamma, degree or coef0")
            }
            converged = converged && solution.converged
            solutions.append(solution)
        }
        return FittedSVC(
            classes: classes, x: x.scalars, features: d, order: order, counts: counts, solutions: solutions,
            kernel: options.kernel, gamma: gamma, sigmoids: options.probability ? sigmoids : nil, converged: converged)
    }
}

/// What the binary problems of one fit share: the kernel rows, the Gram matrix of all of
/// them when it fits the budget next to the largest pair's `Q`, and the solver settings.
private struct TrainingContext {
    let rows: KernelRows
    let gram: GramMatrix?
    /// Budget left for each problem's `Q` (after the Gram matrix).
    let budgetBytes: Int
    let solver: SMOSolver

    /// - Parameters:
    ///   - classCount: `k`; the Gram matrix pays off when rows take part in several problems
    ///     (more than two classes, or the cross-validation of Platt scaling).
    ///   - largestPair: samples of the two largest classes.
    init(rows: KernelRows, classCount: Int, largestPair: Int, options: SVMOptions) {
        self.rows = rows
        let budget = options.cacheBytes
        let gramBytes = rows.count * rows.count * MemoryLayout<Float>.stride
        let shared = (classCount > 2 || options.probability)
            && KernelCache.holdsWholeMatrix(count: largestPair, budgetBytes: budget - gramBytes)
        gram = shared ? GramMatrix(rows) : nil
        budgetBytes = shared ? budget - gramBytes : budget
        solver = SMOSolver(tolerance: options.tolerance, shrinking: options.shrinking, maxIterations: options.maxIterations)
    }

    /// Solves the binary problem on rows `indices` of `rows`.
    func solve(_ indices: [Int], labels: [Int8], bounds: [Double]) -> SolutionInfo {
        let q = QMatrix(indices: indices, labels: labels, source: rows, gram: gram, budgetBytes: budgetBytes)
        return solver.solve(q, labels: labels, bounds: bounds)
    }

    /// `f(x_r) = Σ_s c_s K(x_s, x_r) − ρ` for training rows `test`, with support rows
    /// `supports` and coefficients `c_s = y_s α_s` (kernel block, then one GEMV).
    func decisionValues(rows test: [Int], supports: [Int], coefficients: [Float], rho: Double) -> [Double] {
        let (m, s, d) = (test.count, supports.count, rows.features)
        guard m > 0 else { return [] }
        var kernel = [Float](repeating: 0, count: m * max(1, s))
        if let gram {
            for (r, row) in test.enumerated() {
                let source = gram.values + row * gram.count
                for (c, column) in supports.enumerated() { kernel[r * s + c] = source[column] }
            }
        } else {
            rows.function.block(
                a: gatherRows(test), aNorms: test.map { rows.norms[$0] }, m: m,
                b: gatherRows(supports), bNorms: supports.map { rows.norms[$0] }, n: s,
                features: d, out: &kernel, ldc: max(1, s))
        }
        var values = [Float](repeating: 0, count: m)
        BLAS.sgemv(rows: m, columns: s, a: kernel, lda: max(1, s), x: coefficients, y: &values)
        return values.map { Double($0) - rho }
    }

    /// A copy of rows `indices` of the kernel rows, `[count, d]`.
    private func gatherRows(_ indices: [Int]) -> [Float] {
        let d = rows.features
        var out = [Float](repeating: 0, count: indices.count * d)
        for (position, row) in indices.enumerated() {
            for f in 0..<d { out[position * d + f] = rows.data[row * d + f] }
        }
        return out
    }
}
