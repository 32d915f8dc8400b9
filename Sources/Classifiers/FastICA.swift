import Learn
import TensorCore

// Shape letters: n samples (rows of X), d features (the observed mixtures), k components.

/// Independent component analysis by the FastICA fixed-point algorithm (scikit-learn's
/// `FastICA` with `whiten="unit-variance"`): Hyvärinen & Oja, "Independent component
/// analysis: algorithms and applications", Neural Networks 13(4–5), 2000, pp. 411–430.
///
/// The rows of `X` are samples and its columns mixtures of `k` independent non-Gaussian
/// sources. After centring and PCA whitening onto the top `k` principal directions, an
/// orthogonal `W` is sought that makes the projections maximally non-Gaussian, by the
/// fixed-point step of the contrast `G` (with `g = G′`):
/// ```
/// Xc = X − 1·meanᵀ,   Xcᵀ = Q Σ Pᵀ (thin SVD),   K = Σ_k⁻¹ Q_kᵀ  [k, d],   Z = √n K Xcᵀ  (Z Zᵀ / n = I)
/// w⁺ = E[z g(wᵀz)] − E[g′(wᵀz)] w,   then W ← (W Wᵀ)^(−1/2) W   (parallel)
///                                     or Gram–Schmidt against earlier rows (deflation)
/// sources S = Xc (W K)ᵀ,  each column rescaled to unit variance (unitVariance)
/// ```
public struct FastICA: Transformer, Codable, Equatable {
    /// How the rows of `W` are kept apart.
    public enum Algorithm: String, Codable, Sendable {
        /// All components at once, with symmetric decorrelation after each step.
        case parallel
        /// One component at a time, each orthogonalised against those found before.
        case deflation
    }

    /// The non-quadratic contrast `G` of the negentropy approximation (Hyvärinen & Oja 2000).
    public enum Contrast: Codable, Equatable, Sendable {
        /// `G(u) = log cosh(αu) / α`, `g(u) = tanh(αu)`: a good general-purpose choice; α in [1, 2].
        case logcosh(alpha: Double)
        /// `G(u) = −exp(−u²/2)`, `g(u) = u exp(−u²/2)`: robust for super-Gaussian sources.
        case exp
        /// `G(u) = u⁴/4`, `g(u) = u³`: kurtosis; fast but sensitive to outliers.
        case cube
    }

    /// How the PCA whitening is computed. scikit-learn defaults to `svd`; the default here is
    /// `eigen`, several times faster and as accurate for components above the noise floor.
    public enum Whitening: String, Codable, Sendable {
        /// Eigendecomposition of the smaller of `Xcᵀ Xc` `[d, d]` and `Xc Xcᵀ` `[n, n]` (fast).
        case eigen
        /// Singular value decomposition of `Xc` (no squaring of the condition number).
        case svd
    }

    /// Number of components `k`; nil means `min(n − 1, d)`, the rank centred data can have
    /// (scikit-learn's `min(n, d)` fails whenever there are no more samples than features).
    public var components: Int?
    public var algorithm: Algorithm
    public var contrast: Contrast
    public var whitening: Whitening
    /// Rescale each source to unit variance (scikit-learn's `whiten="unit-variance"`); when
    /// false the sources keep the variance `1/n` of scikit-learn's `"arbitrary-variance"`.
    public var unitVariance: Bool
    /// Stop when no row of `W` turns by more than this in a step: `max_i ||⟨w⁺_i, w_i⟩| − 1| < tolerance`.
    public var tolerance: Double
    /// Limit on fixed-point steps (per component for deflation).
    public var maxIterations: Int
    /// Seed of the standard normal initial `W`.
    public var seed: UInt64

    public init(
        components: Int? = nil, algorithm: Algorithm = .parallel, contrast: Contrast = .logcosh(alpha: 1),
        whitening: Whitening = .eigen, unitVariance: Bool = true, tolerance: Double = 1e-4,
        maxIterations: Int = 200, seed: UInt64 = 0
    ) {
        self.components = components
        self.algorithm = algorithm
        self.contrast = contrast
        self.whitening = whitening
        self.unitVariance = unitVariance
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        self.seed = seed
    }

    /// Throws `.invalidOption` for a hyperparameter outside its domain (the data-dependent
    /// bound `components ≤ min(n, d)` is checked by `fit`).
    public func validate() throws(LearnError) {
        if let components, components < 1 {
            throw .invalidOption(name: "components", value: "\(components)", reason: "must be at least 1")
        }
        guard tolerance.isFinite, tolerance > 0 else {
            throw .invalidOption(name: "tolerance", value: "\(tolerance)", reason: "must be a positive finite number")
        }
        guard maxIterations >= 1 else {
            throw .invalidOption(name: "maxIterations", value: "\(maxIterations)", reason: "must be at least 1")
        }
        if case .logcosh(let alpha) = contrast, !(1...2).contains(alpha) {
            throw .invalidOption(name: "contrast alpha", value: "\(alpha)", reason: "must be in [1, 2]")
        }
    }

    /// Fits the unmixing on `x`.
    /// - Parameter x: training rows `[n, d]`, n ≥ 2.
    /// - Returns: the fitted model; check `converged` (or `warning`).
    /// - Throws: `.nonFinite` for NaN/∞ in `x`, `.invalidOption` for `components > min(n, d)`,
    ///   `.numerical` when the centred data has rank below `k` or LAPACK fails.
    public func fit(_ x: Tensor) throws(LearnError) -> Fitted {
        try validate()
        let (n, d) = try Validation.matrix(x)
        guard n >= 2 else { throw .badShape(what: "X", shape: x.shape, reason: "FastICA needs at least two samples") }
        let k = components ?? max(1, min(n - 1, d))
        guard k <= min(n, d) else {
            throw .invalidOption(name: "components", value: "\(k)",
                                 reason: "must be at most min(samples, features) = \(min(n, d)) for X of shape [\(n), \(d)]")
        }
        let mean = Self.columnMeans(x, n: n, d: d)
        let centred = Self.centre(x, mean: mean)
        let (whiteningMatrix, whitened, singularValues) = try Self.whiten(centred, n: n, d: d, k: k, solver: whitening)

        var generator = Xoshiro256StarStar(seed: seed)
        let initial = (0..<(k * k)).map { _ in generator.nextStandardNormal() }
        let solution = algorithm == .parallel
            ? try Self.parallelIterations(whitened, k: k, n: n, initial: initial, contrast: contrast,
                                          tolerance: tolerance, maxIterations: maxIterations)
            : Self.deflationIterations(whitened, k: k, n: n, initial: initial, contrast: contrast,
                                       tolerance: tolerance, maxIterations: maxIterations)

        var unmixing = solution.w
        if unitVariance {
            // Rescale each source to unit sample variance, as scikit-learn does. The training
            // sources are Sᵀ = W K Xcᵀ = W Z / √n, so their spread comes from the k × n product.
            let projections = Self.multiply(unmixing, whitened, m: k, n: n, k: k)
            for c in 0..<k {
                var (sum, squares) = (0.0, 0.0)
                for i in 0..<n {
                    let value = Double(projections[c * n + i])
                    sum += value
                    squares += value * value
                }
                let variance = (squares / Double(n) - (sum / Double(n)) * (sum / Double(n))) / Double(n)
                guard variance > 0 else { throw .numerical("FastICA: component \(c) has zero variance on the training rows") }
                let scale = Float(1 / variance.squareRoot())
                for j in 0..<k { unmixing[c * k + j] *= scale }
            }
        }
        let unmixingTimesWhitening = Self.multiply(unmixing, whiteningMatrix, m: k, n: d, k: k)
        let mixing = try Self.mixingMatrix(whitening: whiteningMatrix, singularValues: singularValues, unmixing: unmixing, k: k, d: d)
        return Fitted(
            mean: Tensor(uninitializedShape: [d]) { out in for j in 0..<d { out[j] = Float(mean[j]) } },
            whitening: Self.tensor(whiteningMatrix, [k, d]), unmixing: Self.tensor(unmixing, [k, k]),
            components: Self.tensor(unmixingTimesWhitening, [k, d]), mixing: Self.tensor(mixing, [d, k]),
            iterations: solution.iterations, converged: solution.converged,
            warning: solution.converged ? nil
                : "FastICA did not converge in \(maxIterations) iterations (tolerance \(tolerance)); consider raising maxIterations or tolerance")
    }

    /// A fitted FastICA model: `transform` gives the sources, `inverseTransform` the mixtures.
    public struct Fitted: FittedTransformer, Equatable {
        /// Feature means of the training rows, `[d]`.
        public let mean: Tensor
        /// PCA whitening `K` `[k, d]` (scikit-learn's `whitening_`): `K Xcᵀ Xc Kᵀ = I` on the
        /// centred training rows, each row's first feature loading non-negative.
        public let whitening: Tensor
        /// `W` `[k, k]` acting on whitened data (rescaled to unit-variance sources).
        public let unmixing: Tensor
        /// `W K` `[k, d]` (scikit-learn's `components_`): sources = `(x − mean) · componentsᵀ`.
        public let components: Tensor
        /// Pseudo-inverse of `components`, `[d, k]` (scikit-learn's `mixing_`).
        public let mixing: Tensor
        /// Fixed-point steps taken (the largest over components for deflation).
        public let iterations: Int
        public let converged: Bool
        /// Why the fit may be inaccurate (scikit-learn's `ConvergenceWarning`), nil when converged.
        public let warning: String?

        public var inputFeatureCount: Int { mean.count }
        /// Number of components `k`.
        public var componentCount: Int { components.shape[0] }

        /// The sources of rows `x`:
        /// ```
        /// S = (X − 1·meanᵀ) componentsᵀ
        /// ```
        /// - Parameter x: rows `[n, d]`.
        /// - Returns: `[n, k]`.
        public func transform(_ x: Tensor) throws(LearnError) -> Tensor {
            let n = try Validation.matrix(x, features: inputFeatureCount)
            let (k, d) = (componentCount, inputFeatureCount)
            let centred = FastICA.centre(x, mean: mean.scalars.map(Double.init))
            return FastICA.tensor(FastICA.multiply(centred, components.scalars, m: n, n: k, k: d, transposeB: true), [n, k])
        }

        /// Mixtures from sources:
        /// ```
        /// X = S mixingᵀ + 1·meanᵀ
        /// ```
        /// - Parameter sources: `[n, k]`.
        /// - Returns: `[n, d]`, the projection of the original rows onto the components' span.
        public func inverseTransform(_ sources: Tensor) throws(LearnError) -> Tensor {
            let n = try Validation.matrix(sources, features: componentCount, "sources")
            let (k, d) = (componentCount, inputFeatureCount)
            var out = FastICA.multiply(sources.scalars, mixing.scalars, m: n, n: d, k: k, transposeB: true)
            mean.withUnsafeBufferPointer { mu in
                for i in 0..<n { for j in 0..<d { out[i * d + j] += mu[j] } }
            }
            return FastICA.tensor(out, [n, d])
        }
    }
}

// MARK: - Steps of the fit

extension FastICA {
    /// Column means of `x` `[n, d]`, accumulated in double, columns split across workers.
    static func columnMeans(_ x: Tensor, n: Int, d: Int) -> [Double] {
        var sums = [Double](repeating: 0, count: d)
        x.withUnsafeBufferPointer { xp in
            sums.withUnsafeMutableBufferPointer { sp in
                guard let rows = xp.baseAddress, let s = sp.baseAddress else { return }
                Engine.parallelRanges(d, minimumPerWorker: 512) { columns in
                    for i in 0..<n {
                        let row = rows + i * d
                        for j in columns { s[j] += Double(row[j]) }
                    }
                }
            }
        }
        return sums.map { $0 / Double(n) }
    }

    /// `x − 1·meanᵀ` as a row-major `[n, d]` array.
    static func centre(_ x: Tensor, mean: [Double]) -> [Float] {
        let d = mean.count
        let offsets = mean.map { Float($0) }
        return x.withUnsafeBufferPointer { xp in
            [Float](unsafeUninitializedCapacity: xp.count) { out, initialized in
                guard let source = xp.baseAddress, let target = out.baseAddress else { initialized = 0; return }
                Engine.parallelRanges(xp.count / max(1, d), minimumPerWorker: max(1, (1 << 16) / max(1, d))) { rows in
                    for i in rows { for j in 0..<d { target[i * d + j] = source[i * d + j] - offsets[j] } }
                }
                initialized = xp.count
            }
        }
    }

    /// PCA whitening of the centred rows.
    ///
    /// With `Xcᵀ = Q Σ Pᵀ`, `K = Σ_k⁻¹ Q_kᵀ` and `Z = √n K Xcᵀ = √n P_kᵀ`. The eigen solver
    /// decomposes the smaller Gram matrix: `Xcᵀ Xc = Q Σ² Qᵀ` when d ≤ n, else
    /// `Xc Xcᵀ = P Σ² Pᵀ` with `Q_k = Xcᵀ P_k Σ_k⁻¹`, so that `K = Σ_k⁻² P_kᵀ Xc` (an `[n, n]`
    /// problem instead of `[d, d]` when there are fewer samples than features). Signs follow
    /// scikit-learn: each row of `K` has a non-negative first entry. A direction counts as
    /// zero (rank deficiency) when its eigenvalue is below `λ_max · m · ε` (`m` the order of
    /// the decomposed matrix, its backward-error scale) or its singular value below
    /// `σ_max · max(n, d) · ε` (numpy's `matrix_rank`), `ε` the float32 machine epsilon.
    /// - Returns: `K` `[k, d]` and `Z` `[k, n]`, row-major, and the top singular values `Σ_k`.
    /// - Throws: `.numerical` when fewer than `k` singular values are above rounding level.
    static func whiten(_ centred: [Float], n: Int, d: Int, k: Int, solver: Whitening) throws(LearnError)
        -> (whitening: [Float], whitened: [Float], singularValues: [Double])
    {
        var whitening = [Float](repeating: 0, count: k * d)
        var whitened = [Float](repeating: 0, count: k * n)
        var singularValues = [Double](repeating: 0, count: k)
        let rootN = Float(Double(n).squareRoot())
        switch solver {
        case .svd:
            // sgesdd is about twice as fast on a tall matrix as on the same wide one, so
            // decompose Xcᵀ when there are fewer samples than features: Xcᵀ = Q Σ Pᵀ.
            let tall = n < d
            let (u, s, vt) = try decompose("singular value decomposition of the centred data") {
                try LinearAlgebra.svd(tall ? tensor(transposed(centred, rows: n, columns: d), [d, n]) : tensor(centred, [n, d]))
            }
            let r = min(n, d)
            try checkRank(s.scalars.map(Double.init), threshold: Double(s.scalars[0]) * Double(max(n, d)) * Double(Float.ulpOfOne),
                          k: k, n: n, d: d)
            // Q[j, c] and P[i, c] wherever each sits in the two layouts.
            let q = { (j: Int, c: Int) -> Float in tall ? u.scalars[j * r + c] : vt.scalars[c * d + j] }
            let p = { (i: Int, c: Int) -> Float in tall ? vt.scalars[c * n + i] : u.scalars[i * r + c] }
            for c in 0..<k {
                singularValues[c] = Double(s.scalars[c])
                let sign: Float = q(0, c) < 0 ? -1 : 1
                let scale = sign / s.scalars[c]
                for j in 0..<d { whitening[c * d + j] = q(j, c) * scale }
                for i in 0..<n { whitened[c * n + i] = p(i, c) * sign * rootN }
            }
        case .eigen where d <= n:
            let covariance = multiply(centred, centred, m: d, n: d, k: n, transposeA: true)
            let (values, vectors) = try decompose("eigendecomposition of Xcᵀ Xc") {
                try LinearAlgebra.symmetricEigen(tensor(covariance, [d, d]))
            }
            let spectrum = values.scalars.reversed().map(Double.init)
            try checkRank(spectrum, threshold: spectrum[0] * Double(d) * Double(Float.ulpOfOne), k: k, n: n, d: d)
            for c in 0..<k {
                singularValues[c] = spectrum[c].squareRoot()
                let column = d - 1 - c
                let sign: Float = vectors.scalars[column] < 0 ? -1 : 1
                let scale = sign / Float(spectrum[c].squareRoot())
                for j in 0..<d { whitening[c * d + j] = vectors.scalars[j * d + column] * scale }
            }
            whitened = multiply(whitening, centred, m: k, n: n, k: d, transposeB: true, alpha: rootN)
        case .eigen:
            let gram = multiply(centred, centred, m: n, n: n, k: d, transposeB: true)
            let (values, vectors) = try decompose("eigendecomposition of Xc Xcᵀ") {
                try LinearAlgebra.symmetricEigen(tensor(gram, [n, n]))
            }
            let spectrum = values.scalars.reversed().map(Double.init)
            try checkRank(spectrum, threshold: spectrum[0] * Double(n) * Double(Float.ulpOfOne), k: k, n: n, d: d)
            var top = [Float](repeating: 0, count: k * n)  // P_kᵀ
            for c in 0..<k { for i in 0..<n { top[c * n + i] = vectors.scalars[i * n + n - 1 - c] } }
            whitening = multiply(top, centred, m: k, n: d, k: n)
            for c in 0..<k {
                singularValues[c] = spectrum[c].squareRoot()
                let sign: Float = whitening[c * d] < 0 ? -1 : 1
                let scale = sign / Float(spectrum[c])
                for j in 0..<d { whitening[c * d + j] *= scale }
                for i in 0..<n { whitened[c * n + i] = top[c * n + i] * sign * rootN }
            }
        }
        return (whitening, whitened, singularValues)
    }

    /// Throws unless the `k` largest values of `spectrum` (descending) are above `threshold`.
    static func checkRank(_ spectrum: [Double], threshold: Double, k: Int, n: Int, d: Int) throws(LearnError) {
        let rank = spectrum.prefix { $0 > threshold }.count
        guard k <= rank else {
            throw .numerical(
                "FastICA: \(k) components requested but the centred data (\(n) samples × \(d) features) has numerical rank \(rank)"
                    + " (centring removes one dimension, so at most min(n − 1, d)); ask for at most \(rank) components")
        }
    }

    /// Parallel FastICA: all rows of `W` updated together, then symmetrically decorrelated.
    /// - Parameters:
    ///   - z: whitened data `[k, n]`.
    ///   - initial: `[k, k]` starting matrix (decorrelated first).
    static func parallelIterations(
        _ z: [Float], k: Int, n: Int, initial: [Float], contrast: Contrast, tolerance: Double, maxIterations: Int
    ) throws(LearnError) -> (w: [Float], iterations: Int, converged: Bool) {
        var w = try symmetricDecorrelation(initial, k: k)
        for iteration in 1...maxIterations {
            var projections = multiply(w, z, m: k, n: n, k: k)
            let derivativeMeans = applyContrast(contrast, to: &projections, rows: k, columns: n)
            // E[z g(wᵀz)] for every row at once: g(WZ) Zᵀ / n.
            var next = multiply(projections, z, m: k, n: k, k: n, transposeB: true, alpha: 1 / Float(n))
            for i in 0..<k { for j in 0..<k { next[i * k + j] -= derivativeMeans[i] * w[i * k + j] } }
            next = try symmetricDecorrelation(next, k: k)
            var change = 0.0
            for i in 0..<k {
                var cosine = 0.0
                for j in 0..<k { cosine += Double(next[i * k + j]) * Double(w[i * k + j]) }
                change = max(change, abs(abs(cosine) - 1))
            }
            w = next
            if change < tolerance { return (w, iteration, true) }
        }
        return (w, maxIterations, false)
    }

    /// Deflationary FastICA: one row of `W` at a time, each kept orthogonal to the earlier
    /// rows by Gram–Schmidt. Steps are counted per component; the largest is reported.
    static func deflationIterations(
        _ z: [Float], k: Int, n: Int, initial: [Float], contrast: Contrast, tolerance: Double, maxIterations: Int
    ) -> (w: [Float], iterations: Int, converged: Bool) {
        var w = [Float](repeating: 0, count: k * k)
        var mostIterations = 0
        var allConverged = true
        var projection = [Float](repeating: 0, count: n)
        var earlier = [Float](repeating: 0, count: k)
        z.withUnsafeBufferPointer { zb in
            guard let zp = zb.baseAddress else { return }
            for component in 0..<k {
                var row = normalised(Array(initial[(component * k)..<((component + 1) * k)]))
                var steps = maxIterations
                var converged = false
                for iteration in 1...maxIterations {
                    // wᵀZ, then g and the mean of g′ over the samples.
                    BLAS.sgemv(transposeA: true, rows: k, columns: n, a: zp, lda: n, x: row, y: &projection)
                    let derivativeMean = applyContrast(contrast, to: &projection, rows: 1, columns: n)[0]
                    var next = [Float](repeating: 0, count: k)
                    BLAS.sgemv(rows: k, columns: n, alpha: 1 / Float(n), a: zp, lda: n, x: projection, y: &next)
                    for j in 0..<k { next[j] -= derivativeMean * row[j] }
                    if component > 0 {
                        // Remove the parts along the components already found.
                        BLAS.sgemv(rows: component, columns: k, a: w, lda: k, x: next, y: &earlier)
                        BLAS.sgemv(transposeA: true, rows: component, columns: k, alpha: -1, a: w, lda: k,
                                   x: earlier, beta: 1, y: &next)
                    }
                    next = normalised(next)
                    var cosine = 0.0
                    for j in 0..<k { cosine += Double(next[j]) * Double(row[j]) }
                    row = next
                    if abs(abs(cosine) - 1) < tolerance {
                        (steps, converged) = (iteration, true)
                        break
                    }
                }
                for j in 0..<k { w[component * k + j] = row[j] }
                mostIterations = max(mostIterations, steps)
                allConverged = allConverged && converged
            }
        }
        return (w, mostIterations, allConverged)
    }

    /// `(W Wᵀ)^(−1/2) W` `[k, k]` through the eigendecomposition `W Wᵀ = U diag(s) Uᵀ`, the
    /// nearest orthogonal matrix to `W`.
    static func symmetricDecorrelation(_ w: [Float], k: Int) throws(LearnError) -> [Float] {
        let gram = multiply(w, w, m: k, n: k, k: k, transposeB: true)
        let (values, vectors) = try decompose("symmetric decorrelation (eigendecomposition of W Wᵀ)") {
            try LinearAlgebra.symmetricEigen(tensor(gram, [k, k]))
        }
        // Clipping at the smallest normal float keeps rounding-negative eigenvalues from
        // giving NaN square roots (and a division by zero).
        let inverseRoots = values.scalars.map { 1 / max($0, Float.leastNormalMagnitude).squareRoot() }
        var scaled = vectors.scalars
        for i in 0..<k { for j in 0..<k { scaled[i * k + j] *= inverseRoots[j] } }
        let inverseRoot = multiply(scaled, vectors.scalars, m: k, n: k, k: k, transposeB: true)
        return multiply(inverseRoot, w, m: k, n: k, k: k)
    }

    /// Replaces each value `u` of the `[rows, columns]` array by `g(u)`; returns each row's
    /// mean of `g′(u)`. Rows are split across workers.
    static func applyContrast(_ contrast: Contrast, to values: inout [Float], rows: Int, columns: Int) -> [Float] {
        var means = [Float](repeating: 0, count: rows)
        values.withUnsafeMutableBufferPointer { vb in
            means.withUnsafeMutableBufferPointer { mb in
                guard let v = vb.baseAddress, let m = mb.baseAddress else { return }
                Engine.parallelRanges(rows, minimumPerWorker: max(1, (1 << 15) / max(1, columns))) { range in
                    var derivative = [Float](repeating: 0, count: columns)
                    derivative.withUnsafeMutableBufferPointer { db in
                        guard let g1 = db.baseAddress else { return }
                        for row in range {
                            let u = v + row * columns
                            switch contrast {
                            case .logcosh(let alpha):
                                let a = Float(alpha)
                                for i in 0..<columns {
                                    // tanh(t) = (1 − e^(−2|t|)) / (1 + e^(−2|t|)) with the sign of t:
                                    // branch-free, so the loop vectorises (libm's tanhf does not).
                                    let t = a * u[i]
                                    let e = FastMath.exp(-2 * abs(t))
                                    let magnitude = (1 - e) / (1 + e)
                                    let g = t < 0 ? -magnitude : magnitude
                                    u[i] = g
                                    g1[i] = a * (1 - g * g)
                                }
                            case .exp:
                                for i in 0..<columns {
                                    let t = u[i]
                                    let e = FastMath.exp(-0.5 * t * t)
                                    u[i] = t * e
                                    g1[i] = (1 - t * t) * e
                                }
                            case .cube:
                                for i in 0..<columns {
                                    let t = u[i]
                                    u[i] = t * t * t
                                    g1[i] = 3 * t * t
                                }
                            }
                            m[row] = Float(sum(g1, columns) / Double(columns))
                        }
                    }
                }
            }
        }
        return means
    }

    /// The pseudo-inverse of the components `M K` `[k, d]` (scikit-learn's `mixing_`), `[d, k]`.
    ///
    /// `K = Σ_k⁻¹ Q_kᵀ` has orthonormal `Q_k` and `M` (the unmixing) is invertible, so
    /// ```
    /// (M K)⁺ = K⁺ M⁻¹ = Q_k Σ_k M⁻¹ = (Σ_k² K)ᵀ M⁻¹
    /// ```
    /// which needs only a `[k, k]` solve; an SVD of the `[k, d]` components (what
    /// `scipy.linalg.pinv` does) cost as much as the whole whitening for wide data.
    static func mixingMatrix(whitening: [Float], singularValues: [Double], unmixing: [Float], k: Int, d: Int)
        throws(LearnError) -> [Float]
    {
        var loadings = whitening  // rows become σ_c q_cᵀ
        for c in 0..<k {
            let scale = Float(singularValues[c] * singularValues[c])
            for j in 0..<d { loadings[c * d + j] *= scale }
        }
        var identity = [Float](repeating: 0, count: k * k)
        for c in 0..<k { identity[c * k + c] = 1 }
        let inverse = try decompose("inversion of the unmixing matrix (for the mixing matrix)") {
            try LinearAlgebra.solve(tensor(unmixing, [k, k]), tensor(identity, [k, k]))
        }
        return multiply(loadings, inverse.scalars, m: d, n: k, k: k, transposeA: true)
    }
}

// MARK: - Small helpers

extension FastICA {
    /// `alpha · op(A) op(B)` for row-major arrays, `op(A)` `[m, k]`, `op(B)` `[k, n]`, via
    /// `parallelSgemm`.
    static func multiply(
        _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int,
        transposeA: Bool = false, transposeB: Bool = false, alpha: Float = 1
    ) -> [Float] {
        [Float](unsafeUninitializedCapacity: m * n) { out, initialized in
            initialized = m * n
            guard let c = out.baseAddress else { return }
            guard k > 0 else {
                out.update(repeating: 0)
                return
            }
            a.withUnsafeBufferPointer { ab in
                b.withUnsafeBufferPointer { bb in
                    guard let ap = ab.baseAddress, let bp = bb.baseAddress else { return }
                    BLAS.parallelSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                                       a: ap, lda: transposeA ? m : k, b: bp, ldb: transposeB ? k : n, c: c, ldc: n)
                }
            }
        }
    }

    /// The `[columns, rows]` transpose of a row-major `[rows, columns]` array, by 32 × 32 tiles
    /// (so that both sides stay in cache), bands of rows split across workers.
    static func transposed(_ a: [Float], rows: Int, columns: Int) -> [Float] {
        let tile = 32
        return [Float](unsafeUninitializedCapacity: rows * columns) { out, initialized in
            initialized = rows * columns
            guard let target = out.baseAddress else { return }
            a.withUnsafeBufferPointer { ab in
                guard let source = ab.baseAddress else { return }
                let bands = (rows + tile - 1) / tile
                Engine.parallelRanges(bands, minimumPerWorker: max(1, (1 << 14) / max(1, tile * columns))) { range in
                    for band in range {
                        let top = band * tile, bottom = min(rows, top + tile)
                        for left in stride(from: 0, to: columns, by: tile) {
                            let right = min(columns, left + tile)
                            for i in top..<bottom { for j in left..<right { target[j * rows + i] = source[i * columns + j] } }
                        }
                    }
                }
            }
        }
    }

    /// Wraps a row-major array whose size matches `shape` (both computed here).
    static func tensor(_ values: [Float], _ shape: [Int]) -> Tensor {
        Tensor(uninitializedShape: shape) { out in
            for i in 0..<values.count { out[i] = values[i] }
        }
    }

    /// Runs a LAPACK-backed decomposition, reporting its failure as `.numerical`.
    static func decompose<R>(_ what: String, _ body: () throws -> R) throws(LearnError) -> R {
        do {
            return try body()
        } catch {
            throw .numerical("FastICA: \(what) failed: \(error)")
        }
    }

    /// `v / ‖v‖`.
    static func normalised(_ v: [Float]) -> [Float] {
        var squares = 0.0
        for value in v { squares += Double(value) * Double(value) }
        let scale = Float(1 / squares.squareRoot())
        return v.map { $0 * scale }
    }

    /// Sum of `count` floats, accumulated in double eight lanes at a time.
    static func sum(_ values: UnsafePointer<Float>, _ count: Int) -> Double {
        var lanes = SIMD8<Double>()
        var i = 0
        while i + 8 <= count {
            lanes += SIMD8<Double>(UnsafeRawPointer(values + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var total = lanes.sum()
        while i < count {
            total += Double(values[i])
            i += 1
        }
        return total
    }
}
