import Learn
import TensorCore

/// A fitted `SupportVectorClassifier`: support vectors and the `k(k−1)/2` one-vs-one decision
/// functions, laid out as libsvm and scikit-learn's `SVC` lay them out.
///
/// Sign convention (scikit-learn's): with more than two classes, pair `p = (i, j)` gives
/// `f_p(x) = Σ_s a_ps K(x_s, x) + b_p` with `f_p > 0` voting for `classes[i]` (libsvm's raw
/// value, `b_p = −ρ_p`). With two classes scikit-learn negates libsvm's coefficients,
/// intercept and decision value, so that a positive score means `classes[1]`; so do
/// `dualCoefficients`, `intercepts` and `decisionFunction` here (`b = +ρ`).
public struct FittedSVC: FittedClassifier, Codable, Equatable {
    /// The sorted training labels, `[k]`.
    public let classes: [Int]
    /// `d`.
    public let featureCount: Int
    /// The kernel as configured.
    public let kernel: SVMKernel
    /// The γ used (γ = "scale" and "auto" resolved on the training rows; 0 for linear).
    public let gamma: Double
    /// Training rows that are support vectors (scikit-learn's `support_`): grouped by class in
    /// `classes` order, ascending within a class, `[nSV]`.
    public let supportIndices: [Int]
    /// Support vectors of each class (`n_support_`), `[k]`.
    public let supportVectorCounts: [Int]
    /// The support vectors' features in `supportIndices` order, `[nSV · d]` row-major.
    public let supportVectorValues: [Float]
    /// libsvm's `sv_coef` (scikit-learn's `dual_coef_`), `[k − 1][nSV]`: for pair `(i, j)` the
    /// coefficients `y_s α_s` of class `i`'s support vectors are in row `j − 1`, class `j`'s in
    /// row `i` (negated for two classes, see the type's note).
    public let dualCoefficients: [[Double]]
    /// `b_p` per pair (scikit-learn's `intercept_`: `−ρ_p`, or `+ρ` for two classes), `[k(k−1)/2]`.
    public let intercepts: [Double]
    /// Each pair's dual objective `½ αᵀQα − eᵀα` at the solution (libsvm's `obj`).
    public let objectives: [Double]
    /// Each pair's solver iterations (scikit-learn's `n_iter_`).
    public let iterations: [Int]
    /// False when an iteration limit stopped any solve (including those of Platt scaling).
    public let converged: Bool
    /// Platt's `A` per pair (libsvm's `probA`, for decision values with libsvm's sign), when
    /// fitted with `probability`.
    public let probabilityA: [Double]?
    /// Platt's `B` per pair (libsvm's `probB`).
    public let probabilityB: [Double]?

    /// The support vectors as a tensor, `[nSV, d]`.
    public var supportVectors: Tensor {
        Tensor(uninitializedShape: [supportIndices.count, featureCount]) { out in
            for i in 0..<out.count { out[i] = supportVectorValues[i] }
        }
    }

    /// The one-vs-one pairs `(i, j)`, `i < j`, in libsvm's order.
    public static func pairs(_ k: Int) -> [(Int, Int)] {
        (0..<k).flatMap { i in ((i + 1)..<k).map { j in (i, j) } }
    }

    /// Assembles the model from the pairs' solutions, as libsvm's `svm_train` does: a
    /// training row is a support vector when its `α` is non-zero in any pair.
    /// - Parameters:
    ///   - x: training elements `[N, d]`; `order`: its rows grouped by class, `[n]`;
    ///     `counts`: samples per class.
    ///   - solutions: one per pair, over the pair's rows in grouped order.
    ///   - sigmoids: Platt's `(A, B)` per pair, or nil.
    init(
        classes: [Int], x: [Float], features d: Int, order: [Int], counts: [Int], solutions: [SolutionInfo],
        kernel: SVMKernel, gamma: Double, sigmoids: [(a: Double, b: Double)]?, converged: Bool
    ) {
        let k = classes.count
        let n = order.count
        var starts = [Int](repeating: 0, count: k)
        for c in 1..<k { starts[c] = starts[c - 1] + counts[c - 1] }
        let pairs = Self.pairs(k)
        var nonzero = [Bool](repeating: false, count: n)
        for ((i, j), solution) in zip(pairs, solutions) {
            for t in 0..<counts[i] where solution.alpha[t] > 0 { nonzero[starts[i] + t] = true }
            for t in 0..<counts[j] where solution.alpha[counts[i] + t] > 0 { nonzero[starts[j] + t] = true }
        }
        let svCounts = (0..<k).map { c in (starts[c]..<(starts[c] + counts[c])).filter { nonzero[$0] }.count }
        var svStarts = [Int](repeating: 0, count: k)
        for c in 1..<k { svStarts[c] = svStarts[c - 1] + svCounts[c - 1] }
        let positions = (0..<n).filter { nonzero[$0] }

        var coefficients = [[Double]](repeating: [Double](repeating: 0, count: positions.count), count: k - 1)
        for ((i, j), solution) in zip(pairs, solutions) {
            var q = svStarts[i]
            for t in 0..<counts[i] where nonzero[starts[i] + t] {
                coefficients[j - 1][q] = solution.alpha[t]
                q += 1
            }
            q = svStarts[j]
            for t in 0..<counts[j] where nonzero[starts[j] + t] {
                coefficients[i][q] = -solution.alpha[counts[i] + t]
                q += 1
            }
        }
        let binary = k == 2
        self.classes = classes
        featureCount = d
        self.kernel = kernel
        self.gamma = gamma
        supportIndices = positions.map { order[$0] }
        supportVectorCounts = svCounts
        var values = [Float](repeating: 0, count: positions.count * d)
        for (s, position) in positions.enumerated() {
            let row = order[position]
            for f in 0..<d { values[s * d + f] = x[row * d + f] }
        }
        supportVectorValues = values
        dualCoefficients = binary ? coefficients.map { $0.map { -$0 } } : coefficients
        intercepts = solutions.map { binary ? $0.rho : -$0.rho }
        objectives = solutions.map(\.objective)
        iterations = solutions.map(\.iterations)
        self.converged = converged
        probabilityA = sigmoids?.map(\.a)
        probabilityB = sigmoids?.map(\.b)
    }

    /// One-vs-one scores, `[n, k(k−1)/2]` (`[n, 1]` for two classes, positive meaning
    /// `classes[1]`; see the type's note on signs):
    ///
    /// ```
    /// f_p(x) = Σ_s a_ps K(x_s, x) + b_p
    /// ```
    /// computed as one GEMM of the rows against the support vectors (kernel block), then one
    /// GEMM of that block with the coefficients `A` `[nSV, k(k−1)/2]`.
    /// - Parameter x: rows `[n, d]`.
    /// - Returns: `[n, k(k−1)/2]`, pairs in `pairs(k)` order.
    /// - Throws: `.nonFinite`, `.badShape`, or `.shapeMismatch` when `x` has another feature count.
    public func decisionFunction(_ x: Tensor) throws(LearnError) -> Tensor {
        let n = try Validation.matrix(x, features: featureCount)
        let values = scores(x.scalars, rows: n)
        return Tensor(uninitializedShape: [n, intercepts.count]) { out in
            for i in 0..<out.count { out[i] = values[i] }
        }
    }

    /// Labels by one-vs-one voting (libsvm's `svm_predict`): pair `(i, j)` votes `i` when
    /// libsvm's value is positive, else `j`; the most votes win, ties to the lowest index.
    /// - Parameter x: rows `[n, d]`.
    /// - Returns: `[n]` labels from `classes`.
    /// - Throws: as `decisionFunction`.
    public func predict(_ x: Tensor) throws(LearnError) -> [Int] {
        let n = try Validation.matrix(x, features: featureCount)
        let values = scores(x.scalars, rows: n)
        let pairs = Self.pairs(classes.count)
        let sign: Float = classes.count == 2 ? -1 : 1
        return (0..<n).map { r in
            var votes = [Int](repeating: 0, count: classes.count)
            for (p, (i, j)) in pairs.enumerated() {
                if sign * values[r * pairs.count + p] > 0 { votes[i] += 1 } else { votes[j] += 1 }
            }
            var best = 0
            for c in 1..<classes.count where votes[c] > votes[best] { best = c }
            return classes[best]
        }
    }

    /// Class probabilities (libsvm's `svm_predict_probability`): each pair's Platt sigmoid,
    /// clipped to `[1e-7, 1 − 1e-7]`, coupled by Wu, Lin & Weng's method 2:
    ///
    /// ```
    /// r_ij = min(max(1 / (1 + exp(A_p f_p + B_p)), 1e-7), 1 − 1e-7),   r_ji = 1 − r_ij
    /// ```
    /// (`f_p` with libsvm's sign). For two classes the probabilities are `r_01`, `r_10`
    /// themselves, as in libsvm 3; scikit-learn's copy couples them too, which moves them by
    /// less than its coupling tolerance 0.0025.
    /// - Parameter x: rows `[n, d]`.
    /// - Returns: `[n, k]`, rows summing to one, columns in `classes` order.
    /// - Throws: `.invalidOption(name: "probability")` when fitted without probabilities, and
    ///   as `decisionFunction`.
    public func predictProbability(_ x: Tensor) throws(LearnError) -> Tensor {
        guard let probabilityA, let probabilityB else {
            throw .invalidOption(
                name: "probability", value: "false",
                reason: "the classifier was fitted without probability estimates; refit with SVMOptions(probability: true) (Platt scaling by internal 5-fold cross-validation)")
        }
        let n = try Validation.matrix(x, features: featureCount)
        let values = scores(x.scalars, rows: n)
        let k = classes.count
        let pairs = Self.pairs(k)
        let sign = k == 2 ? -1.0 : 1.0
        let minimum = 1e-7
        var probabilities = [Float](repeating: 0, count: n * k)
        for r in 0..<n {
            var pairwise = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
            for (p, (i, j)) in pairs.enumerated() {
                let raw = sign * Double(values[r * pairs.count + p])
                let probability = PlattScaling.probability(raw, a: probabilityA[p], b: probabilityB[p])
                pairwise[i][j] = min(max(probability, minimum), 1 - minimum)
                pairwise[j][i] = 1 - pairwise[i][j]
            }
            let row = k == 2 ? [pairwise[0][1], pairwise[1][0]] : PlattScaling.coupling(pairwise)
            for c in 0..<k { probabilities[r * k + c] = Float(row[c]) }
        }
        return Tensor(uninitializedShape: [n, k]) { out in
            for i in 0..<out.count { out[i] = probabilities[i] }
        }
    }

    /// `f_p(x_r)` for rows `x` `[n, d]` (already validated), `[n · k(k−1)/2]`, by chunks of rows
    /// (at most 2^22 kernel values at a time).
    private func scores(_ x: [Float], rows n: Int) -> [Float] {
        let d = featureCount
        let s = supportIndices.count
        let pairCount = intercepts.count
        let function = KernelFunction(kernel, gamma: gamma)
        // Any common shift leaves RBF values unchanged: the support vectors' mean keeps the
        // single-precision norms small (as the training rows' mean did in training).
        var centre = [Float](repeating: 0, count: d)
        if function.isTranslationInvariant, s > 0 {
            var sums = [Double](repeating: 0, count: d)
            for t in 0..<s { for f in 0..<d { sums[f] += Double(supportVectorValues[t * d + f]) } }
            centre = sums.map { Float($0 / Double(s)) }
        }
        var supports = supportVectorValues
        for t in 0..<s { for f in 0..<d { supports[t * d + f] -= centre[f] } }
        let supportNorms = supports.withUnsafeBufferPointer { function.squaredNorms($0, count: s, features: d) }

        // A[s, p]: pair (i, j) takes class i's coefficients from row j − 1, class j's from row i.
        var weights = [Float](repeating: 0, count: max(1, s * pairCount))
        var svStarts = [Int](repeating: 0, count: classes.count)
        for c in 1..<classes.count { svStarts[c] = svStarts[c - 1] + supportVectorCounts[c - 1] }
        for (p, (i, j)) in Self.pairs(classes.count).enumerated() {
            for t in svStarts[i]..<(svStarts[i] + supportVectorCounts[i]) { weights[t * pairCount + p] = Float(dualCoefficients[j - 1][t]) }
            for t in svStarts[j]..<(svStarts[j] + supportVectorCounts[j]) { weights[t * pairCount + p] = Float(dualCoefficients[i][t]) }
        }

        var out = [Float](repeating: 0, count: n * pairCount)
        // Without support vectors (every α zero) each pair's value is its intercept.
        let chunk = max(1, min(n, (1 << 22) / max(1, s)))
        var rows = [Float](repeating: 0, count: chunk * d)
        var kernelBlock = [Float](repeating: 0, count: chunk * max(1, s))
        var start = s > 0 ? 0 : n
        while start < n {
            let count = min(chunk, n - start)
            for r in 0..<count { for f in 0..<d { rows[r * d + f] = x[(start + r) * d + f] - centre[f] } }
            let rowNorms = rows.withUnsafeBufferPointer { function.squaredNorms($0, count: count, features: d) }
            function.block(
                a: rows, aNorms: rowNorms, m: count, b: supports, bNorms: supportNorms, n: s,
                features: d, out: &kernelBlock, ldc: max(1, s))
            out.withUnsafeMutableBufferPointer { result in
                BLAS.parallelSgemm(
                    m: count, n: pairCount, k: s, a: kernelBlock, lda: max(1, s), b: weights, ldb: pairCount,
                    c: result.baseAddress! + start * pairCount, ldc: pairCount)
            }
            start += count
        }
        for r in 0..<n { for p in 0..<pairCount { out[r * pairCount + p] += Float(intercepts[p]) } }
        return out
    }
}
