import Learn
import TensorCore

// Shape letters: n samples, d features, k classes, m = 1 (two classes) or k score columns.

/// A linear support vector machine trained by dual coordinate descent (liblinear's
/// `L2R_L2LOSS_SVC_DUAL` / `L2R_L1LOSS_SVC_DUAL`, scikit-learn's `LinearSVC`):
/// Hsieh, Chang, Lin, Keerthi & Sundararajan, "A dual coordinate descent method for
/// large-scale linear SVM", ICML 2008, Algorithm 3 with shrinking.
///
/// For labels `y_i ∈ {−1, +1}` and the bias feature `s = interceptScaling` appended to each row:
/// ```
/// primal:  min_w  ½‖w‖² + Σ_i C_i ξ_i(w)          ξ = max(0, 1 − y_i wᵀx_i)   (hinge)
///                                                 ξ = max(0, 1 − y_i wᵀx_i)²  (squared hinge)
/// dual:    min_α  ½ αᵀ(Q + D)α − eᵀα,  0 ≤ α_i ≤ U_i,  Q_ij = y_i y_j x_iᵀx_j,  w = Σ_i α_i y_i x_i
///          hinge: D = 0, U_i = C_i;  squared hinge: D_ii = 1/(2C_i), U_i = ∞
/// ```
/// The intercept is `s · w_bias`; it is regularised like every other weight (as liblinear and
/// scikit-learn do), so a larger `interceptScaling` weakens that penalty. More than two
/// classes train one binary problem per class against the rest; two classes train a single
/// problem with `classes[1]` positive.
public struct LinearSVC: Classifier, Codable, Equatable {
    /// The loss on the margin violation `1 − y wᵀx`.
    public enum Loss: String, Codable, Sendable {
        /// `max(0, 1 − y wᵀx)²` (scikit-learn's default, differentiable).
        case squaredHinge
        /// `max(0, 1 − y wᵀx)`, the standard SVM loss.
        case hinge
    }

    /// Cost of margin violations (inverse regularisation strength), > 0.
    public var c: Double
    public var loss: Loss
    /// Stopping tolerance on the spread of the projected gradient, `max PG − min PG`.
    public var tolerance: Double
    /// Limit on the outer passes over the samples (per binary problem).
    public var maxIterations: Int
    /// Learn an intercept (through the bias feature).
    public var fitIntercept: Bool
    /// Value of the bias feature appended to every row, > 0.
    public var interceptScaling: Double
    public var classWeight: ClassWeight
    /// Seed of the random order in which each pass visits the samples.
    public var seed: UInt64

    public init(
        c: Double = 1, loss: Loss = .squaredHinge, tolerance: Double = 1e-4, maxIterations: Int = 1000,
        fitIntercept: Bool = true, interceptScaling: Double = 1, classWeight: ClassWeight = .none,
        seed: UInt64 = 0
    ) {
        self.c = c
        self.loss = loss
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        self.fitIntercept = fitIntercept
        self.interceptScaling = interceptScaling
        self.classWeight = classWeight
        self.seed = seed
    }

    /// Throws `.invalidOption` for a hyperparameter outside its domain.
    public func validate() throws(LearnError) {
        guard c.isFinite, c > 0 else { throw .invalidOption(name: "c", value: "\(c)", reason: "must be a positive finite number") }
        guard tolerance.isFinite, tolerance > 0 else {
            throw .invalidOption(name: "tolerance", value: "\(tolerance)", reason: "must be a positive finite number")
        }
        guard maxIterations >= 1 else {
            throw .invalidOption(name: "maxIterations", value: "\(maxIterations)", reason: "must be at least 1")
        }
        if fitIntercept, !(interceptScaling.isFinite && interceptScaling > 0) {
            throw .invalidOption(name: "interceptScaling", value: "\(interceptScaling)",
                                 reason: "must be a positive finite number; set fitIntercept to false to fit no intercept")
        }
        if case .custom(let weights) = classWeight {
            for (label, weight) in weights.sorted(by: { $0.key < $1.key }) where !(weight.isFinite && weight > 0) {
                throw .invalidOption(name: "classWeight[\(label)]", value: "\(weight)", reason: "must be a positive finite number")
            }
        }
    }

    /// Fits one linear SVM (two classes) or one per class against the rest (more).
    /// - Parameters:
    ///   - x: training rows `[n, d]`.
    ///   - y: their labels, `n` integers with at least two distinct values.
    /// - Returns: the fitted weights; check `converged` (or `warning`).
    public func fit(_ x: Tensor, _ y: [Int]) throws(LearnError) -> Fitted {
        try validate()
        let (n, d, classes, encoded) = try Validation.trainingSet(x, y)
        let k = classes.count
        let costs = try classCosts(classes: classes, encoded: encoded)
        let bias = fitIntercept ? interceptScaling : 0
        // Two classes: one problem, classes[1] positive. More: class j against the rest, the
        // rest at the plain cost c (liblinear's one-vs-rest, which weights only the positives).
        let problems = k == 2 ? 1 : k
        var weights = [Double](repeating: 0, count: problems * (d + 1))
        var iterations = [Int](repeating: 0, count: problems)
        var converged = [Bool](repeating: false, count: problems)
        x.withUnsafeBufferPointer { xp in
            weights.withUnsafeMutableBufferPointer { wp in
                iterations.withUnsafeMutableBufferPointer { ip in
                    converged.withUnsafeMutableBufferPointer { cp in
                        guard let rows = xp.baseAddress, let w = wp.baseAddress, let it = ip.baseAddress,
                              let done = cp.baseAddress else { return }
                        // The problems are independent; each has its own generator, so the
                        // result does not depend on which worker solves it.
                        let workers = min(Engine.threads, problems)
                        Engine.parallelWorkers(workers) { worker in
                            for problem in stride(from: worker, to: problems, by: workers) {
                                let positive = k == 2 ? 1 : problem
                                let problemCosts = k == 2
                                    ? (positive: costs[1], negative: costs[0]) : (positive: costs[problem], negative: c)
                                var generator = Xoshiro256StarStar(seed: SplitMix64.derive(seed, UInt64(problem)))
                                let result = DualSolver.solve(
                                    rows: rows, n: n, d: d, positive: encoded.map { $0 == positive },
                                    costs: problemCosts, hinge: loss == .hinge, bias: bias,
                                    tolerance: tolerance, maxIterations: maxIterations, generator: &generator,
                                    weights: w + problem * (d + 1))
                                it[problem] = result.iterations
                                done[problem] = result.converged
                            }
                        }
                    }
                }
            }
        }
        var coefficients = [Float](repeating: 0, count: problems * d)
        var intercepts = [Float](repeating: 0, count: problems)
        for problem in 0..<problems {
            for j in 0..<d { coefficients[problem * d + j] = Float(weights[problem * (d + 1) + j]) }
            intercepts[problem] = Float(bias * weights[problem * (d + 1) + d])
        }
        let allConverged = !converged.contains(false)
        let mostIterations = iterations.max() ?? 0
        return Fitted(
            classes: classes,
            coefficients: Tensor(uninitializedShape: [problems, d]) { out in
                for (i, value) in coefficients.enumerated() { out[i] = value }
            },
            intercepts: intercepts, iterations: mostIterations, converged: allConverged,
            warning: allConverged ? nil
                : "LinearSVC did not converge in \(maxIterations) iterations (tolerance \(tolerance)); consider raising maxIterations or tolerance, or standardising the features")
    }

    /// `c` times each class's weight (`ClassWeight`, shared with the kernel SVM), in
    /// `classes` order.
    func classCosts(classes: [Int], encoded: [Int]) throws(LearnError) -> [Double] {
        var counts = [Int](repeating: 0, count: classes.count)
        for j in encoded { counts[j] += 1 }
        return try classWeight.multipliers(classes: classes, counts: counts).map { c * $0 }
    }

    /// A fitted linear SVM.
    public struct Fitted: FittedClassifier, Equatable {
        /// The distinct training labels, ascending.
        public let classes: [Int]
        /// Weights `[m, d]`: one row for two classes (positive = `classes[1]`), else one per class.
        public let coefficients: Tensor
        /// Intercepts `[m]` (zeros when none was fitted).
        public let intercepts: [Float]
        /// Outer passes of the slowest binary problem (scikit-learn's `n_iter_`).
        public let iterations: Int
        /// Whether every binary problem met the tolerance within `maxIterations`.
        public let converged: Bool
        /// Why the fit may be inaccurate (scikit-learn's `ConvergenceWarning`), nil when converged.
        public let warning: String?

        public var featureCount: Int { coefficients.shape[1] }

        /// Scores `[n, m]`:
        /// ```
        /// f(x) = x Wᵀ + b,   m = 1 for two classes (positive ⇒ classes[1]), else k
        /// ```
        /// - Parameter x: rows `[n, d]`.
        /// - Returns: the signed distances to each hyperplane, scaled by `‖w‖`.
        public func decisionFunction(_ x: Tensor) throws(LearnError) -> Tensor {
            let n = try Validation.matrix(x, features: featureCount)
            let (m, d) = (coefficients.shape[0], coefficients.shape[1])
            return Tensor(uninitializedShape: [n, m]) { out in
                guard let o = out.baseAddress else { return }
                for i in 0..<n { for j in 0..<m { o[i * m + j] = intercepts[j] } }
                x.withUnsafeBufferPointer { xp in
                    coefficients.withUnsafeBufferPointer { wp in
                        guard let a = xp.baseAddress, let b = wp.baseAddress else { return }
                        BLAS.parallelSgemm(transposeB: true, m: n, n: m, k: d, a: a, lda: d, b: b, ldb: d,
                                           beta: 1, c: o, ldc: m)
                    }
                }
            }
        }

        /// Labels `[n]`: the sign of the score for two classes, else the largest score
        /// (the first class among ties).
        public func predict(_ x: Tensor) throws(LearnError) -> [Int] {
            let scores = try decisionFunction(x)
            let (n, m) = (scores.shape[0], scores.shape[1])
            return scores.withUnsafeBufferPointer { s in
                (0..<n).map { i in
                    if m == 1 { return classes[s[i] > 0 ? 1 : 0] }
                    var best = 0
                    for j in 1..<m where s[i * m + j] > s[i * m + best] { best = j }
                    return classes[best]
                }
            }
        }

        /// Always throws: a linear SVM gives margins, not probabilities.
        public func predictProbability(_ x: Tensor) throws(LearnError) -> Tensor {
            throw .invalidOption(
                name: "probability", value: "LinearSVC",
                reason: "a linear SVM gives margins, not probabilities; use decisionFunction, or calibrate its scores (for example with Platt scaling) to get probabilities")
        }
    }
}

extension LinearSVC {
    /// Hsieh et al.'s dual coordinate descent for one binary problem on dense rows.
    enum DualSolver {
        /// Solves the dual above for labels `positive` (true ⇒ +1) and writes `w` (then the
        /// bias weight) into `weights[0...d]`.
        ///
        /// Each pass shuffles the active samples and, for each, takes the exact minimiser
        /// along `α_i` clipped to `[0, U_i]`:
        /// ```
        /// G = y_i wᵀx_i − 1 + D_ii α_i,   α_i ← min(max(α_i − G / (x_iᵀx_i + D_ii), 0), U_i),
        /// w += (α_i,new − α_i,old) y_i x_i
        /// ```
        /// Shrinking: a sample at a bound whose gradient points outward by more than last
        /// pass's extreme projected gradient is set aside; when the active set meets the
        /// tolerance, all samples come back for a final check (liblinear's scheme).
        ///
        /// `w` is kept and the gradients accumulated in double precision: in single precision
        /// the rounding of `wᵀx_i` (about 1e-7 · Σ|w_j x_ij|) is as large as a tight tolerance,
        /// and the stopping test could never pass. The rows stay float32.
        /// - Parameters:
        ///   - rows: `[n, d]` row-major samples.
        ///   - costs: `C` of the positive and of the negative samples.
        ///   - bias: value of the appended bias feature (0: no intercept).
        /// - Returns: outer passes made, and whether the tolerance was met.
        static func solve(
            rows: UnsafePointer<Float>, n: Int, d: Int, positive: [Bool],
            costs: (positive: Double, negative: Double), hinge: Bool, bias: Double,
            tolerance: Double, maxIterations: Int, generator: inout Xoshiro256StarStar,
            weights: UnsafeMutablePointer<Double>
        ) -> (iterations: Int, converged: Bool) {
            let sign = positive.map { $0 ? 1.0 : -1.0 }
            let cost = positive.map { $0 ? costs.positive : costs.negative }
            let diagonal = hinge ? [Double](repeating: 0, count: n) : cost.map { 0.5 / $0 }
            let upper = hinge ? cost : [Double](repeating: .infinity, count: n)
            var quadratic = [Double](repeating: 0, count: n)
            for i in 0..<n {
                quadratic[i] = diagonal[i] + bias * bias + BLAS.dsdot(count: d, x: rows + i * d, y: rows + i * d)
            }
            var alpha = [Double](repeating: 0, count: n)
            var index = Array(0..<n)
            let w = weights
            w.update(repeating: 0, count: d + 1)
            var activeSize = n
            var projectedMaxOld = Double.infinity, projectedMinOld = -Double.infinity
            var iteration = 0
            var converged = false
            while iteration < maxIterations {
                var projectedMax = -Double.infinity, projectedMin = Double.infinity
                for s in 0..<activeSize {
                    index.swapAt(s, s + generator.nextIndex(below: activeSize - s))
                }
                var s = 0
                while s < activeSize {
                    let i = index[s]
                    let x = rows + i * d
                    let yi = sign[i]
                    let gradient = yi * (MixedPrecision.dot(x, w, count: d) + w[d] * bias) - 1 + alpha[i] * diagonal[i]
                    var projected = 0.0
                    if alpha[i] == 0 {
                        if gradient > projectedMaxOld {
                            // At the lower bound and pushed further out: unlikely to move again.
                            activeSize -= 1
                            index.swapAt(s, activeSize)
                            continue
                        }
                        if gradient < 0 { projected = gradient }
                    } else if alpha[i] == upper[i] {
                        if gradient < projectedMinOld {
                            activeSize -= 1
                            index.swapAt(s, activeSize)
                            continue
                        }
                        if gradient > 0 { projected = gradient }
                    } else {
                        projected = gradient
                    }
                    projectedMax = max(projectedMax, projected)
                    projectedMin = min(projectedMin, projected)
                    if abs(projected) > 1e-12 {
                        let old = alpha[i]
                        alpha[i] = min(max(old - gradient / quadratic[i], 0), upper[i])
                        let step = (alpha[i] - old) * yi
                        MixedPrecision.axpy(step, x, w, count: d)
                        w[d] += step * bias
                    }
                    s += 1
                }
                iteration += 1
                if projectedMax - projectedMin <= tolerance {
                    if activeSize == n {
                        converged = true
                        break
                    }
                    // Converged on the shrunk set: check every sample once more.
                    activeSize = n
                    projectedMaxOld = .infinity
                    projectedMinOld = -.infinity
                    continue
                }
                projectedMaxOld = projectedMax > 0 ? projectedMax : .infinity
                projectedMinOld = projectedMin < 0 ? projectedMin : -.infinity
            }
            return (iteration, converged)
        }
    }
}
