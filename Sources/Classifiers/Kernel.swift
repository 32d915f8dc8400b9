import Foundation
import TensorCore

/// The kernel of a support vector machine, with scikit-learn's names and parameters.
///
/// ```
/// linear       K(x, z) = x·z
/// rbf          K(x, z) = exp(−γ |x − z|²)
/// polynomial   K(x, z) = (γ x·z + coef0)^degree
/// sigmoid      K(x, z) = tanh(γ x·z + coef0)
/// ```
public enum SVMKernel: Sendable, Equatable, Codable {
    case linear
    case rbf(gamma: Gamma)
    case polynomial(degree: Int, gamma: Gamma, coef0: Double)
    case sigmoid(gamma: Gamma, coef0: Double)

    /// The kernel's γ setting (`nil` for the linear kernel, which has none).
    public var gamma: Gamma? {
        switch self {
        case .linear: return nil
        case .rbf(let gamma), .polynomial(_, let gamma, _), .sigmoid(let gamma, _): return gamma
        }
    }
}

/// The γ of a kernel: a value, or one of scikit-learn's data-dependent rules.
///
/// ```
/// scale      γ = 1 / (d · Var(X))   Var over all n·d entries of the training X (γ = 1 when it is 0)
/// auto       γ = 1 / d
/// scaled(f)  γ = f · scale           (a grid around scikit-learn's default)
/// ```
public enum Gamma: Sendable, Equatable, Codable {
    case value(Double)
    case scale
    case auto
    case scaled(Double)

    /// The γ used for training rows `x` `[n, d]` (values in row-major order).
    /// - Parameters:
    ///   - x: the training matrix's elements, `n·d` of them.
    ///   - features: `d`.
    /// - Returns: the value itself, or `scale`'s / `auto`'s rule applied to `x`.
    public func resolved(for x: [Float], features: Int) -> Double {
        switch self {
        case .value(let value):
            return value
        case .auto:
            return 1 / Double(features)
        case .scaled(let factor):
            return factor * Gamma.scale.resolved(for: x, features: features)
        case .scale:
            // numpy's var: the mean first, then the mean squared deviation, in Double, with
            // one partial sum per worker added in worker order (reproducible for a thread
            // count).
            let count = x.count
            let workers = max(1, min(Engine.threads, count / (1 << 16)))
            let mean = Self.sum(x, workers: workers, squaredDeviationsFrom: nil) / Double(count)
            let variance = Self.sum(x, workers: workers, squaredDeviationsFrom: mean) / Double(count)
            return variance != 0 ? 1 / (Double(features) * variance) : 1
        }
    }

    /// `Σ x_i`, or `Σ (x_i − centre)²` when `centre` is given, split into `workers` contiguous
    /// parts summed in parallel.
    private static func sum(_ x: [Float], workers: Int, squaredDeviationsFrom centre: Double?) -> Double {
        var partial = [Double](repeating: 0, count: workers)
        x.withUnsafeBufferPointer { values in
            partial.withUnsafeMutableBufferPointer { sums in
                Engine.parallelWorkers(workers) { worker in
                    let range = (values.count * worker / workers)..<(values.count * (worker + 1) / workers)
                    var total = 0.0
                    if let centre {
                        for i in range { let e = Double(values[i]) - centre; total += e * e }
                    } else {
                        for i in range { total += Double(values[i]) }
                    }
                    sums[worker] = total
                }
            }
        }
        return partial.reduce(0, +)
    }
}

/// A kernel with its γ resolved, evaluated in blocks: one GEMM of rows against rows gives the
/// dot products, then an elementwise map turns them into kernel values.
///
/// ```
/// D = A·Bᵀ                                   (sgemm, [m, d]·[d, n])
/// K_rc = map(D_rc)                           linear: D, polynomial: (γD + c)^p, sigmoid: tanh(γD + c)
/// K_rc = exp(−γ · max(0, |a_r|² + |b_c|² − 2 D_rc))                         rbf
/// ```
/// The RBF form needs the squared row norms; the clamp at 0 removes the small negative
/// distances that rounding leaves between (nearly) equal rows. Because the RBF kernel only
/// depends on differences, callers centre the rows first (`KernelRows` on the training mean,
/// `FittedSVC` on the support vectors' mean), which keeps the norms, and so the cancellation
/// in `|a|² + |b|² − 2a·b`, small in single precision. Values are single precision, as
/// libsvm's cached `Qfloat` columns.
struct KernelFunction: Sendable {
    enum Kind: Sendable, Equatable {
        case linear
        case rbf
        case polynomial(degree: Int)
        case sigmoid
    }

    let kind: Kind
    let gamma: Float
    let coef0: Float

    /// `kernel` with its γ already resolved to `gamma` (ignored by the linear kernel).
    init(_ kernel: SVMKernel, gamma: Double) {
        switch kernel {
        case .linear:
            kind = .linear
            coef0 = 0
        case .rbf:
            kind = .rbf
            coef0 = 0
        case .polynomial(let degree, _, let coef0):
            kind = .polynomial(degree: degree)
            self.coef0 = Float(coef0)
        case .sigmoid(_, let coef0):
            kind = .sigmoid
            self.coef0 = Float(coef0)
        }
        self.gamma = Float(gamma)
    }

    /// Whether kernel values depend only on differences of rows, so rows may be centred.
    var isTranslationInvariant: Bool { kind == .rbf }

    /// Whether `block` needs the squared row norms.
    var needsNorms: Bool { kind == .rbf }

    /// Squared Euclidean norms of the first `count` rows of `d` features in `rows` (zeros
    /// when the kernel does not use them).
    func squaredNorms(_ rows: UnsafeBufferPointer<Float>, count: Int, features d: Int) -> [Float] {
        guard needsNorms, let base = rows.baseAddress else { return [Float](repeating: 0, count: count) }
        return (0..<count).map { r in BLAS.sdot(count: d, x: base + r * d, y: base + r * d) }
    }

    /// `K(x, x)` for a row with `x·x = norm` (1 for RBF).
    func selfValue(squaredNorm norm: Float) -> Double {
        var value = norm
        map(&value, count: 1, rowNorm: norm, columnNorms: kind == .rbf ? [norm] : nil)
        return Double(value)
    }

    /// Kernel values of rows `a` `[m, d]` against rows `b` `[n, d]` into `out` (row stride
    /// `ldc`): `out[r·ldc + c] = K(a_r, b_c)`, the GEMM and the map split across the engine's
    /// workers.
    /// - Parameters:
    ///   - aNorms, bNorms: squared norms of the rows (read for RBF only), `[m]` and `[n]`.
    func block(
        a: UnsafePointer<Float>, aNorms: UnsafePointer<Float>, m: Int,
        b: UnsafePointer<Float>, bNorms: UnsafePointer<Float>, n: Int,
        features d: Int, out: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        BLAS.parallelSgemm(transposeB: true, m: m, n: n, k: d, a: a, lda: d, b: b, ldb: d, c: out, ldc: ldc)
        guard kind != .linear else { return }
        Engine.parallelRanges(m, minimumPerWorker: max(1, (1 << 15) / n)) { rows in
            for r in rows { map(out + r * ldc, count: n, rowNorm: aNorms[r], columnNorms: bNorms) }
        }
    }

    /// The symmetric matrix `out[r·m + c] = s_r · s_c · K(a_r, a_c)` of rows `a` `[m, d]`, with
    /// signs `s` (all +1 when nil), computed blockwise in parallel.
    ///
    /// Only the lower triangle is multiplied out (blocks of rows against the rows up to the
    /// block's end, each one parallel GEMM followed by the map while the block is still in
    /// cache), then mirrored tile by tile: half the flops of one `[m, m]` GEMM, and a result
    /// that is exactly symmetric, as the double-precision kernel of libsvm is.
    func symmetricMatrix(
        rows a: UnsafePointer<Float>, norms: UnsafePointer<Float>, count m: Int, features d: Int,
        signs: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>
    ) {
        let blockRows = 256
        var start = 0
        while start < m {
            let end = min(m, start + blockRows)
            BLAS.parallelSgemm(
                transposeB: true, m: end - start, n: end, k: d,
                a: a + start * d, lda: d, b: a, ldb: d, c: out + start * m, ldc: m)
            Engine.parallelRanges(end - start, minimumPerWorker: max(1, (1 << 15) / end)) { block in
                for r in (start + block.lowerBound)..<(start + block.upperBound) {
                    let row = out + r * m
                    map(row, count: end, rowNorm: norms[r], columnNorms: norms)
                    if let signs {
                        let sign = signs[r]
                        for c in 0..<end { row[c] *= sign * signs[c] }
                    }
                }
            }
            start = end
        }
        // Upper triangle from the lower one, in 64 × 64 tiles so that both the reads and the
        // writes run along rows; tile rows are dealt out round-robin to balance the triangle.
        let tile = 64
        let tiles = (m + tile - 1) / tile
        let workers = min(Engine.threads, tiles)
        Engine.parallelWorkers(workers) { worker in
            for rowTile in stride(from: worker, to: tiles, by: workers) {
                let r0 = rowTile * tile, r1 = min(m, r0 + tile)
                for columnTile in rowTile..<tiles {
                    let c0 = columnTile * tile, c1 = min(m, c0 + tile)
                    for r in r0..<r1 {
                        let row = out + r * m
                        for c in max(c0, r + 1)..<max(c1, r + 1) { row[c] = out[c * m + r] }
                    }
                }
            }
        }
    }

    /// Kernel values of the rows `b` `[n, d]` against one row `x`, into `out[0..<n]`
    /// (one column of the kernel matrix, by GEMV).
    func column(
        x: UnsafePointer<Float>, xNorm: Float,
        b: UnsafePointer<Float>, bNorms: UnsafePointer<Float>, n: Int,
        features d: Int, out: UnsafeMutablePointer<Float>
    ) {
        guard n > 0 else { return }
        BLAS.sgemv(rows: n, columns: d, a: b, lda: d, x: x, y: out)
        map(out, count: n, rowNorm: xNorm, columnNorms: bNorms)
    }

    /// Turns `count` dot products of one row (squared norm `rowNorm`) with rows of squared
    /// norms `columnNorms` into kernel values, in place.
    func map(_ values: UnsafeMutablePointer<Float>, count: Int, rowNorm: Float, columnNorms: UnsafePointer<Float>?) {
        switch kind {
        case .linear:
            return
        case .rbf:
            guard let norms = columnNorms else { return }
            let (g, base) = (gamma, rowNorm)
            for c in 0..<count {
                let distance = base + norms[c] - 2 * values[c]
                values[c] = FastMath.exp(-g * (distance > 0 ? distance : 0))
            }
        case .polynomial(let degree):
            for c in 0..<count { values[c] = Self.power(gamma * values[c] + coef0, degree) }
        case .sigmoid:
            for c in 0..<count { values[c] = tanhf(gamma * values[c] + coef0) }
        }
    }

    /// `base^exponent` by repeated squaring (libsvm's `powi`): exact for small integer powers
    /// and defined for negative bases, where `pow` on Float would be slower.
    @inline(__always)
    static func power(_ base: Float, _ exponent: Int) -> Float {
        var (result, square, remaining) = (Float(1), base, exponent)
        while remaining > 0 {
            if remaining & 1 == 1 { result *= square }
            square *= square
            remaining >>= 1
        }
        return result
    }
}
