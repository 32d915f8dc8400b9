import TensorCore

/// The training rows as the kernel sees them, in libsvm's class-grouped order: a copy of
/// `X` (centred on its column means for the RBF kernel, which only depends on differences of
/// rows, so that single-precision norms stay small), with squared norms and `K(x_i, x_i)`.
final class KernelRows {
    /// Rows `n`.
    let count: Int
    /// Features `d`.
    let features: Int
    let function: KernelFunction
    /// `[n, d]`, row-major.
    let data: UnsafeMutablePointer<Float>
    /// `|x_i|²` (zeros when the kernel does not use them), `[n]`.
    let norms: [Float]
    /// `K(x_i, x_i)`, `[n]`.
    let selfValues: [Double]

    /// - Parameters:
    ///   - x: the training matrix's elements, `[N, d]` row-major.
    ///   - order: the rows of `x` to keep, in the order wanted (`n` of them).
    init(_ x: [Float], features d: Int, order: [Int], function: KernelFunction) {
        count = order.count
        features = d
        self.function = function
        data = .allocate(capacity: max(1, order.count * d))
        var centre = [Float](repeating: 0, count: d)
        if function.isTranslationInvariant {
            // Column means in Double, each column summed in row order by one worker.
            x.withUnsafeBufferPointer { source in
                guard let base = source.baseAddress else { return }
                centre.withUnsafeMutableBufferPointer { mean in
                    Engine.parallelRanges(d, minimumPerWorker: max(1, (1 << 16) / order.count)) { columns in
                        var sums = [Double](repeating: 0, count: columns.count)
                        for row in order {
                            let from = base + row * d + columns.lowerBound
                            for f in 0..<columns.count { sums[f] += Double(from[f]) }
                        }
                        for f in 0..<columns.count { mean[columns.lowerBound + f] = Float(sums[f] / Double(order.count)) }
                    }
                }
            }
        }
        let rows = data
        var norms = [Float](repeating: 0, count: order.count)
        var selfValues = [Double](repeating: 0, count: order.count)
        x.withUnsafeBufferPointer { source in
            guard let base = source.baseAddress else { return }
            norms.withUnsafeMutableBufferPointer { norm in
                selfValues.withUnsafeMutableBufferPointer { selfValue in
                    Engine.parallelRanges(order.count, minimumPerWorker: max(1, (1 << 16) / d)) { range in
                        for position in range {
                            let row = rows + position * d
                            let from = base + order[position] * d
                            for f in 0..<d { row[f] = from[f] - centre[f] }
                            // x·x: the RBF norm, and K(x, x) of the other kernels.
                            let dot = BLAS.sdot(count: d, x: row, y: row)
                            norm[position] = function.needsNorms ? dot : 0
                            selfValue[position] = function.selfValue(squaredNorm: dot)
                        }
                    }
                }
            }
        }
        self.norms = norms
        self.selfValues = selfValues
    }

    deinit { data.deallocate() }
}

/// The kernel matrix of all the training rows, `K_ij = K(x_i, x_j)` `[n, n]`, computed once
/// and shared by the one-vs-one pairs and the cross-validation folds of Platt scaling when it
/// fits the cache budget: each of their `Q` matrices is then a gather from it, not a GEMM.
final class GramMatrix {
    let count: Int
    /// `[n, n]`, row-major, symmetric.
    let values: UnsafeMutablePointer<Float>

    init(_ rows: KernelRows) {
        count = rows.count
        values = .allocate(capacity: max(1, count * count))
        rows.function.symmetricMatrix(
            rows: rows.data, norms: rows.norms, count: count, features: rows.features, signs: nil, out: values)
    }

    deinit { values.deallocate() }
}

/// The matrix of the C-SVC dual for one binary problem (libsvm's `SVC_Q`):
///
/// ```
/// Q_ij = y_i y_j K(x_i, x_j),   y ∈ {+1, −1}^l
/// ```
///
/// read by the solver one column at a time through a `KernelCache`, and reordered with the
/// solver's variables (shrinking moves the active ones to the front). All of `Q` is built up
/// front when it fits the budget: gathered from the shared `GramMatrix` when there is one
/// (the training code only shares one when every problem's `Q` fits beside it), else by
/// GEMMs of the problem's rows. Otherwise columns are computed on demand (GEMV), several at
/// once (GEMM) when the solver announces them with `prefetch`.
final class QMatrix {
    /// Variables `l`.
    let count: Int
    /// `Q_ii`, `[l]`, in the problem's order (the solver keeps its own reordered copy).
    let diagonal: [Double]
    private let cache: KernelCache
    private let source: KernelRows
    // Column-on-demand state, in the solver's current order of the variables.
    /// The problem's rows `[l, d]` (nil when all of Q is cached).
    private let rows: UnsafeMutablePointer<Float>?
    private var norms: [Float]
    private var signs: [Float]

    /// - Parameters:
    ///   - indices: the problem's rows of `source`, `[l]`.
    ///   - labels: `y_i` ∈ {+1, −1}, `[l]`.
    ///   - gram: the kernel matrix of all of `source`'s rows, if computed; `Q` is then
    ///     gathered from it whatever the budget.
    ///   - budgetBytes: storage allowed for cached columns of `Q`.
    init(indices: [Int], labels: [Int8], source: KernelRows, gram: GramMatrix?, budgetBytes: Int) {
        let l = indices.count
        let signValues = labels.map { Float($0) }
        let normValues = indices.map { source.norms[$0] }
        count = l
        self.source = source
        signs = signValues
        norms = normValues
        diagonal = indices.map { source.selfValues[$0] }
        let d = source.features
        if gram != nil || KernelCache.holdsWholeMatrix(count: l, budgetBytes: budgetBytes) {
            rows = nil
            cache = KernelCache(wholeMatrix: l) { out in
                if let gram {
                    Self.gather(gram, indices: indices, signs: signValues, out: out)
                    return
                }
                // Consecutive rows of the source need no copy (a whole binary problem, or a
                // pair of neighbouring classes).
                let contiguous = zip(indices, indices.dropFirst()).allSatisfy { $1 == $0 + 1 }
                let gathered = contiguous ? nil : Self.gatherRows(source, indices)
                defer { gathered?.deallocate() }
                let a = UnsafePointer(gathered ?? source.data + (indices.first ?? 0) * d)
                source.function.symmetricMatrix(
                    rows: a, norms: normValues, count: l, features: d, signs: signValues, out: out)
            }
        } else {
            rows = Self.gatherRows(source, indices)
            cache = KernelCache(count: l, budgetBytes: budgetBytes)
        }
    }

    deinit { rows?.deallocate() }

    /// How many columns of `length` values `prefetch` can hold at once.
    func columnsAtOnce(length: Int) -> Int {
        // What the cache can keep, and at most a 16 MB block of rows and results for the GEMM
        // (the block lives beside the cache, so it must not grow with the budget).
        min(cache.columnsAtOnce(length: length), max(1, (1 << 22) / max(1, source.features + length)))
    }

    /// Values `[0, length)` of column `i` (in the solver's current order). Valid until the
    /// next call that computes columns, except that the two most recently returned columns
    /// stay valid together.
    @inline(__always)
    func column(_ i: Int, length: Int) -> UnsafePointer<Float> {
        let (data, fillFrom) = cache.column(i, length: length)
        if fillFrom < length { fill(data, column: i, from: fillFrom, to: length) }
        return UnsafePointer(data)
    }

    /// Computes the missing parts of columns `columns` up to `length` with one GEMM of their
    /// rows against the problem's (no-op when all of Q is cached, or when a single column is
    /// missing: `column`'s GEMV does as well). At most `columnsAtOnce(length:)` columns.
    func prefetch(_ columns: [Int], length: Int) {
        guard let rows else { return }
        let missing = columns.filter { cache.cachedPrefix($0) < length }
        guard missing.count > 1 else { return }
        let d = source.features
        let block = UnsafeMutablePointer<Float>.allocate(capacity: missing.count * (d + length))
        defer { block.deallocate() }
        let values = block + missing.count * d
        for (t, i) in missing.enumerated() { (block + t * d).update(from: rows + i * d, count: d) }
        source.function.block(
            a: block, aNorms: missing.map { norms[$0] }, m: missing.count, b: rows, bNorms: norms, n: length,
            features: d, out: values, ldc: length)
        for (t, i) in missing.enumerated() {
            let (data, fillFrom) = cache.column(i, length: length)
            let sign = signs[i]
            for j in fillFrom..<length { data[j] = values[t * length + j] * sign * signs[j] }
        }
    }

    /// Follows the solver's exchanges of variables `(i, j)`, in order.
    func swapIndices(_ swaps: [(Int, Int)]) {
        cache.swapIndices(swaps)
        guard let rows else { return }
        let d = source.features
        for (i, j) in swaps where i != j {
            signs.swapAt(i, j)
            norms.swapAt(i, j)
            for f in 0..<d { (rows[i * d + f], rows[j * d + f]) = (rows[j * d + f], rows[i * d + f]) }
        }
    }

    /// Values `[start, end)` of column `i`, by GEMV.
    private func fill(_ data: UnsafeMutablePointer<Float>, column i: Int, from start: Int, to end: Int) {
        guard let rows else { return }
        let sign = signs[i]
        let d = source.features
        norms.withUnsafeBufferPointer { norm in
            source.function.column(
                x: rows + i * d, xNorm: norm[i], b: rows + start * d, bNorms: norm.baseAddress! + start,
                n: end - start, features: d, out: data + start)
        }
        for j in start..<end { data[j] *= sign * signs[j] }
    }

    /// `out[r·l + c] = s_r s_c G[index_r, index_c]`, in parallel over rows.
    private static func gather(_ gram: GramMatrix, indices: [Int], signs: [Float], out: UnsafeMutablePointer<Float>) {
        let l = indices.count
        Engine.parallelRanges(l, minimumPerWorker: max(1, (1 << 15) / max(1, l))) { range in
            for r in range {
                let source = gram.values + indices[r] * gram.count
                let row = out + r * l
                let sign = signs[r]
                for c in 0..<l { row[c] = source[indices[c]] * sign * signs[c] }
            }
        }
    }

    /// A copy of the rows `indices` of `source`, `[l, d]`.
    private static func gatherRows(_ source: KernelRows, _ indices: [Int]) -> UnsafeMutablePointer<Float> {
        let d = source.features
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: max(1, indices.count * d))
        for (position, row) in indices.enumerated() {
            (rows + position * d).update(from: source.data + row * d, count: d)
        }
        return rows
    }
}
