import Foundation
import Patches
import TensorCore
import VolumeIO

/// Bias-field flattening: fits a smooth multiplicative field to a scan's intensities within
/// a mask and divides it out.
///
/// The model, in log intensities (so the field is multiplicative and positive):
/// ```
/// log v(x) = log μ_class(x) + b(x) + noise,    b(x) = Σ_t c_t P_a(u) P_b(v) P_c(w),  a + b + c ≤ degree
/// ```
/// `P_n` are Legendre polynomials of the voxel indices scaled to [−1, 1] over the bounding box
/// of the fitted voxels (the polynomials of total degree ≤ d are the same space in voxel and
/// world coordinates, which differ by an affine map, so the choice only affects
/// conditioning); degree 3 gives 20 terms.
///
/// Starting from `b = 0`, each iteration
/// 1. sorts the samples into `tissueClasses` intensity classes by 1-D k-means on `log v − b`
///    (CSF, grey and white matter for a brain), each with a robust spread σ (1.4826 × MAD);
/// 2. keeps the samples that lie inside one tissue: within 2.5 σ of their class's centre, with
///    all six face neighbours in the fit and of the same class (partial volumes at tissue
///    boundaries fit no class, and where they gather, in thin gyri and the cortex, they
///    would pass for a smooth field);
/// 3. refits `b` to `log v − log μ_class` by least squares weighted by `1/σ²` of the class
///    (LAPACK `dgesdd` through `LinearAlgebra`, minimum-norm solution).
///
/// This is the segmentation-driven scheme of Wells et al. (IEEE TMI 15, 1996) and Van Leemput
/// et al. (IEEE TMI 18, 1999) with hard classes: a simple N3-like substitute, not N4
/// (Tustison et al., IEEE TMI 29, 2010), which fits a B-spline field by sharpening the
/// histogram and follows far less smooth fields. With one class it is a plain polynomial
/// fit of the log intensities, which the anatomy of a whole brain biases; it suits a mask of
/// one tissue (e.g. white matter).
///
/// The field is scaled to a geometric mean of 1 over the fitted samples, so the corrected
/// image keeps the input's overall level. Deterministic: samples are every n-th voxel.
public struct BiasFieldCorrection: Sendable, Equatable, Codable {
    /// Total degree of the log-field polynomial: 3 (20 terms) follows the slow variation of
    /// receive-coil and B1 fields at 1.5-3 T over a head; higher degrees start to model anatomy.
    public var degree: Int = 3
    /// Intensity classes of the masked tissue: 3 for a T1 brain (CSF, grey and white matter);
    /// 1 fits the log intensities directly.
    public var tissueClasses: Int = 3
    /// Alternations of classification and fit. The classes settle within a few; 5 leaves margin.
    public var iterations: Int = 5
    /// At most this many mask voxels (every n-th in memory order, so deterministic) enter the
    /// fit: 100,000 samples fix 20 coefficients to far below the noise, at a few ms per fit.
    public var maximumSamples: Int = 100_000
    /// Mask voxels below this fraction of the mask's 99th percentile are left out of the fit:
    /// their log is dominated by noise (air, dark CSF at low SNR).
    public var intensityFloor: Double = 0.05

    public init() {}

    /// What `correct` returns.
    public struct Result: Sendable {
        /// `image / field`, voxel by voxel (every voxel of the grid), with the input's affine and header.
        public var corrected: Volume
        /// The fitted multiplicative field on the image's grid (positive). Outside the mask it
        /// is the polynomial's extrapolation, with the log field clamped to the range it spans
        /// over the fitted voxels, so it cannot explode at the grid's corners.
        public var field: Volume
        /// The log field's Legendre coefficients `c_t`, terms ordered by total degree, then
        /// by the degree in i (descending), then in j (descending): 1, i, j, k, i², ij, ...
        public var coefficients: [Double]
    }

    /// Checks every field's range.
    /// - Throws: `.invalidOption` naming the field.
    public func validate() throws(PreprocessingError) {
        guard (0...8).contains(degree) else { throw .invalidOption(name: "bias degree", value: "\(degree)", reason: "must be in 0...8") }
        guard (1...8).contains(tissueClasses) else {
            throw .invalidOption(name: "tissue classes", value: "\(tissueClasses)", reason: "must be in 1...8")
        }
        guard (1...100).contains(iterations) else {
            throw .invalidOption(name: "bias iterations", value: "\(iterations)", reason: "must be in 1...100")
        }
        guard maximumSamples >= 1000 else {
            throw .invalidOption(name: "maximum samples", value: "\(maximumSamples)", reason: "must be at least 1000")
        }
        guard intensityFloor >= 0, intensityFloor < 1 else {
            throw .invalidOption(name: "intensity floor", value: "\(intensityFloor)", reason: "must be in [0, 1)")
        }
    }

    /// The exponents `(a, b, c)` of the log field's terms (see `Result.coefficients`).
    var terms: [(Int, Int, Int)] {
        (0...degree).flatMap { total in
            (0...total).reversed().flatMap { a in (0...(total - a)).reversed().map { b in (a, b, total - a - b) } }
        }
    }

    /// Fits the field within `mask` and divides it out of `image`.
    /// - Parameters:
    ///   - image: intensities `[X, Y, Z]`, finite (a T1 magnitude image: non-negative).
    ///   - mask: on the image's grid, nonzero inside (typically the brain mask).
    ///   - label: names the image in errors.
    /// - Throws: `.invalidOption`, `.gridMismatch`, `.nonFiniteVoxels`, `.noForeground` for
    ///   an empty mask or fewer than 10 usable voxels per term, `.unsupportedVolume` if the
    ///   least-squares solver fails.
    public func correct(_ image: Volume, mask: Volume, label: String = "image") throws(PreprocessingError) -> Result {
        try validate()
        try InputValidation.requireFinite(image, label: label)
        let inside = try InputValidation.mask(mask, on: image, label: "mask of \(label)").voxels
        let values = image.data.scalars
        let shape = image.shape
        let terms = terms

        // Samples: mask voxels above the floor, every `step`-th in memory order.
        var masked = zip(values, inside).compactMap { $1 ? $0 : nil }
        let floor = max(Double(Float.leastNormalMagnitude), intensityFloor * Percentiles.of(&masked, [99])[0])
        let usableMap = values.indices.map { inside[$0] && Double(values[$0]) > floor }
        let usable = values.indices.filter { usableMap[$0] }
        guard usable.count >= 10 * terms.count else {
            throw .noForeground(path: label, reason: "\(usable.count) mask voxels above \(String(format: "%.4g", floor)); the bias field's \(terms.count) terms need at least \(10 * terms.count)")
        }
        let step = (usable.count + maximumSamples - 1) / maximumSamples
        let samples = stride(from: 0, to: usable.count, by: step).map { usable[$0] }
        let logs = samples.map { log(Double(values[$0])) }

        // Legendre values per axis over the usable voxels' bounding box.
        let strides = [shape[1] * shape[2], shape[2], 1]
        var (lower, upper) = (shape, [0, 0, 0])
        for index in usable {
            for axis in 0..<3 {
                let position = (index / strides[axis]) % shape[axis]
                (lower[axis], upper[axis]) = (min(lower[axis], position), max(upper[axis], position))
            }
        }
        let tables = (0..<3).map { axis -> [[Double]] in
            let (low, high) = (lower[axis], upper[axis])
            return (0..<shape[axis]).map { index in
                let u = high > low ? 2 * Double(index - low) / Double(high - low) - 1 : 0
                return Self.legendre(u, upTo: degree)
            }
        }
        let columns = terms.count
        var design = [Double](repeating: 0, count: samples.count * columns)
        for (row, index) in samples.enumerated() {
            let (pi, pj, pk) = (tables[0][(index / strides[0]) % shape[0]], tables[1][(index / strides[1]) % shape[1]], tables[2][index % shape[2]])
            for (t, (a, b, c)) in terms.enumerated() { design[row * columns + t] = pi[a] * pj[b] * pk[c] }
        }
        let fit = LeastSquares(design: design, rows: samples.count, columns: columns)

        /// `b` at any voxel, for the samples' neighbours.
        func logField(_ index: Int, _ coefficients: [Double]) -> Double {
            let (pi, pj, pk) = (tables[0][(index / strides[0]) % shape[0]], tables[1][(index / strides[1]) % shape[1]], tables[2][index % shape[2]])
            var sum = 0.0
            for (t, (a, b, c)) in terms.enumerated() { sum += coefficients[t] * pi[a] * pj[b] * pk[c] }
            return sum
        }

        var coefficients = [Double](repeating: 0, count: columns)
        for _ in 0..<iterations {
            let residual = zip(logs, fit.apply(coefficients)).map { $0 - $1 }
            let classes = Self.classes(residual, count: tissueClasses)
            var weights = [Double](repeating: 0, count: samples.count)
            var targets = [Double](repeating: 0, count: samples.count)
            for (row, index) in samples.enumerated() {
                let c = classes.nearest(residual[row])
                targets[row] = logs[row] - classes.centres[c]
                // Step 2 of the type's documentation: only samples inside one tissue count.
                guard abs(residual[row] - classes.centres[c]) <= 2.5 * classes.spreads[c] else { continue }
                var interior = true
                Self.forEachFaceNeighbour(index, shape, strides) { neighbour in
                    guard interior else { return }
                    interior = neighbour.map { usableMap[$0] && classes.nearest(log(Double(values[$0])) - logField($0, coefficients)) == c } ?? false
                }
                if interior { weights[row] = 1 / (classes.spreads[c] * classes.spreads[c]) }
            }
            coefficients = try fit.solve(targets, weights: weights, label: label)
        }
        // Geometric mean 1 over the samples: P_0 = 1, so the constant is the first coefficient.
        let fitted = fit.apply(coefficients)
        let mean = fitted.reduce(0, +) / Double(fitted.count)
        coefficients[0] -= mean
        let logRange = ((fitted.min() ?? mean) - mean, (fitted.max() ?? mean) - mean)
        return evaluate(image, coefficients: coefficients, terms: terms, tables: tables, logRange: logRange)
    }

    /// Calls `body` with the index of each of the six face neighbours of `index`, or nil
    /// where the neighbour would be beyond the grid.
    private static func forEachFaceNeighbour(_ index: Int, _ shape: [Int], _ strides: [Int], _ body: (Int?) -> Void) {
        for axis in 0..<3 {
            let position = (index / strides[axis]) % shape[axis]
            body(position > 0 ? index - strides[axis] : nil)
            body(position < shape[axis] - 1 ? index + strides[axis] : nil)
        }
    }

    /// `P_0(u) ... P_n(u)` by Bonnet's recurrence `(m + 1) P_{m+1} = (2m + 1) u P_m − m P_{m−1}`.
    static func legendre(_ u: Double, upTo n: Int) -> [Double] {
        var values = [1.0]
        if n >= 1 { values.append(u) }
        if n >= 2 {
            for m in 1..<n { values.append((Double(2 * m + 1) * u * values[m] - Double(m) * values[m - 1]) / Double(m + 1)) }
        }
        return values
    }

    /// The field and the corrected image on the whole grid.
    private func evaluate(_ image: Volume, coefficients: [Double], terms: [(Int, Int, Int)], tables: [[[Double]]],
                          logRange: (low: Double, high: Double)) -> Result {
        let shape = image.shape
        let (nx, ny, nz) = (shape[0], shape[1], shape[2])
        let degree = degree
        var field = Tensor(zeros: shape)
        var corrected = image.data
        field.withUnsafeMutableBufferPointer { fieldBuffer in
            corrected.withUnsafeMutableBufferPointer { correctedBuffer in
                let (fieldOut, correctedOut) = (fieldBuffer, correctedBuffer)
                Engine.parallelRanges(nx) { range in
                    // The log field along a row (i, j, ·) is a polynomial in P_c(w): its coefficients.
                    var row = [Double](repeating: 0, count: degree + 1)
                    for i in range {
                        for j in 0..<ny {
                            for c in row.indices { row[c] = 0 }
                            for (t, (a, b, c)) in terms.enumerated() { row[c] += coefficients[t] * tables[0][i][a] * tables[1][j][b] }
                            for k in 0..<nz {
                                var logField = 0.0
                                for c in row.indices { logField += row[c] * tables[2][k][c] }
                                let gain = exp(min(max(logField, logRange.low), logRange.high))
                                let index = (i * ny + j) * nz + k
                                fieldOut[index] = Float(gain)
                                correctedOut[index] = Float(Double(correctedOut[index]) / gain)
                            }
                        }
                    }
                }
            }
        }
        var result = image
        result.data = corrected
        // The shape is the image's, 3-D.
        let fieldVolume = try! Volume(data: field, affine: image.affine)
        return Result(corrected: result, field: fieldVolume, coefficients: coefficients)
    }

    /// 1-D k-means (Lloyd's algorithm) on `values`, started from the quantiles
    /// `(2m + 1) / 2k` so the result is deterministic, with each class's robust spread.
    static func classes(_ values: [Double], count: Int) -> IntensityClasses {
        let sorted = values.sorted()
        let n = sorted.count
        var prefix = [0.0]
        for v in sorted { prefix.append(prefix[prefix.count - 1] + v) }
        var centres = (0..<count).map { sorted[min(n - 1, (2 * $0 + 1) * n / (2 * count))] }
        var bounds: [Int] = []
        for _ in 0..<100 {
            // Class m holds the sorted values between the midpoints to its neighbours' centres.
            bounds = [0]
            for m in 1..<count {
                bounds.append(partition(sorted, below: (centres[m - 1] + centres[m]) / 2, from: bounds[m - 1]))
            }
            bounds.append(n)
            var next = centres
            for m in 0..<count where bounds[m + 1] > bounds[m] {
                next[m] = (prefix[bounds[m + 1]] - prefix[bounds[m]]) / Double(bounds[m + 1] - bounds[m])
            }
            next.sort()
            if next == centres { break }
            centres = next
        }
        // Robust spread: 1.4826 × the median absolute deviation from the centre (the SD for
        // Gaussian noise), floored so that a class of identical values keeps a finite weight.
        let spreads = (0..<count).map { m -> Double in
            let members = sorted[bounds[m]..<bounds[m + 1]].map { abs($0 - centres[m]) }.sorted()
            let mad = members.isEmpty ? 0 : members[members.count / 2]
            return max(1.4826 * mad, 1e-6)
        }
        return IntensityClasses(centres: centres, spreads: spreads)
    }

    /// The first index at or after `start` whose value is ≥ `limit` (binary search in sorted values).
    private static func partition(_ sorted: [Double], below limit: Double, from start: Int) -> Int {
        var (low, high) = (start, sorted.count)
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < limit { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Intensity classes of log residuals: centres in ascending order and their robust spreads.
    struct IntensityClasses {
        let centres: [Double]
        let spreads: [Double]

        /// The index of the centre nearest to `value`.
        func nearest(_ value: Double) -> Int {
            centres.indices.min { abs(centres[$0] - value) < abs(centres[$1] - value) } ?? 0
        }
    }
}

/// Weighted linear least squares for one design matrix `A` (`rows × columns`, row-major):
/// ```
/// min_x Σ_r w_r (A_r · x − b_r)²
/// ```
/// by the thin SVD of `diag(√w) A` (LAPACK `dgesdd` through `LinearAlgebra`), singular values
/// below 1e-10 of the largest dropped: the minimum-norm solution, as `numpy.linalg.lstsq`.
private struct LeastSquares {
    let design: [Double]
    let rows: Int
    let columns: Int

    /// `x` for right-hand side `b` and weights `w ≥ 0` (rows of weight 0 are left out).
    /// - Throws: `.unsupportedVolume` naming `label` if too few rows remain or LAPACK fails.
    func solve(_ b: [Double], weights: [Double], label: String) throws(PreprocessingError) -> [Double] {
        let kept = (0..<rows).filter { weights[$0] > 0 }
        guard kept.count >= columns else {
            throw .unsupportedVolume(path: label, reason: "the bias-field fit kept \(kept.count) voxels for \(columns) terms")
        }
        var matrix = [Double](repeating: 0, count: kept.count * columns)
        var rhs = [Double](repeating: 0, count: kept.count)
        for (row, source) in kept.enumerated() {
            let scale = weights[source].squareRoot()
            for c in 0..<columns { matrix[row * columns + c] = scale * design[source * columns + c] }
            rhs[row] = scale * b[source]
        }
        let svd: (u: [Double], s: [Double], vt: [Double])
        do {
            svd = try LinearAlgebra.svd(doublePrecision: matrix, rows: kept.count, columns: columns)
        } catch {
            throw .unsupportedVolume(path: label, reason: "the bias-field least-squares fit failed: \(error)")
        }
        // x = V S⁺ Uᵀ b
        let rank = svd.s.count
        let cutoff = (svd.s.max() ?? 0) * 1e-10
        var projected = [Double](repeating: 0, count: rank)
        for row in 0..<kept.count {
            for c in 0..<rank { projected[c] += svd.u[row * rank + c] * rhs[row] }
        }
        for c in 0..<rank { projected[c] = svd.s[c] > cutoff ? projected[c] / svd.s[c] : 0 }
        return (0..<columns).map { column in (0..<rank).reduce(0) { $0 + svd.vt[$1 * columns + column] * projected[$1] } }
    }

    /// `A x`.
    func apply(_ x: [Double]) -> [Double] {
        (0..<rows).map { row in (0..<columns).reduce(0) { $0 + design[row * columns + $1] * x[$1] } }
    }
}
