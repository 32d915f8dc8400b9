import TensorCore

/// Columns of a symmetric `l × l` matrix of single-precision values (libsvm's `Qfloat`
/// cache, Chang & Lin 2011, §4.2), within a byte budget.
///
/// Two layouts:
/// - **whole matrix**, when `l² · 4` bytes fit the budget: every column is computed once, up
///   front (by the caller, with blocked parallel GEMMs) and stored as the rows of one `[l, l]`
///   buffer (the matrix is symmetric, so row `i` is column `i`). This is where a dense
///   solver gains most over libsvm, which evaluates each column with scalar dot products on
///   one core as the solver first asks for it.
/// - **least recently used columns**, otherwise: each column is held as a prefix `[0, len)` of
///   its values (the solver only asks for the active prefix while shrinking) and the columns
///   used longest ago are dropped to make room, as libsvm's `Cache`. At least two full columns
///   always fit, whatever the budget (the solver holds two at once).
///
/// Both follow the solver's reordering of the variables (`swapIndices`), which libsvm uses to
/// keep the active set a prefix `[0, active)`. libsvm exchanges two entries of every cached
/// column at each exchange of variables; here a batch of exchanges is recorded as one
/// permutation, columns are renamed at once, and the entries of a column are brought into the
/// current order when it is next read (`O(moved)` per recorded permutation, and only for the
/// columns read again: most are not, once their variables are shrunk away).
final class KernelCache {
    /// Side of the matrix, `l`.
    let count: Int
    /// The `[l, l]` buffer of the whole-matrix layout, else nil.
    private let whole: UnsafeMutablePointer<Float>?

    // Per variable, in the solver's current order: its column's storage, how many leading
    // values are cached, and how many of the recorded permutations those values follow.
    private var storage: [UnsafeMutablePointer<Float>?]
    private var cachedLength: [Int]
    private var version: [Int]
    /// Every recorded permutation: the positions it changes (ascending) and where their
    /// values come from.
    private var reorderings: [(positions: [Int], sources: [Int])] = []
    private let scratch: UnsafeMutablePointer<Float>

    // Least recently used layout: a circular doubly linked list of the cached columns in
    // order of use (the sentinel is index `l`; its `next` is the column used longest ago).
    private var previous: [Int]
    private var next: [Int]
    /// Values that can still be cached before a column must be dropped.
    private var available: Int

    /// Whether an `l × l` Float matrix fits `budgetBytes`.
    static func holdsWholeMatrix(count: Int, budgetBytes: Int) -> Bool {
        let (values, overflow) = count.multipliedReportingOverflow(by: count)
        return !overflow && values <= budgetBytes / MemoryLayout<Float>.stride
    }

    /// The whole-matrix layout: `fill` writes all `l²` values (row-major, symmetric).
    init(wholeMatrix count: Int, fill: (UnsafeMutablePointer<Float>) -> Void) {
        self.count = count
        let matrix = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count * count))
        fill(matrix)
        whole = matrix
        storage = (0..<count).map { matrix + $0 * count }
        cachedLength = Array(repeating: count, count: count)
        version = Array(repeating: 0, count: count)
        scratch = .allocate(capacity: max(1, count))
        previous = []
        next = []
        available = 0
    }

    /// The least-recently-used layout with `budgetBytes` of storage (the bookkeeping is
    /// charged to the budget too, as libsvm does; two columns always fit).
    init(count: Int, budgetBytes: Int) {
        self.count = count
        whole = nil
        storage = Array(repeating: nil, count: count)
        cachedLength = Array(repeating: 0, count: count)
        version = Array(repeating: 0, count: count)
        scratch = .allocate(capacity: max(1, count))
        previous = Array(repeating: count, count: count + 1)
        next = Array(repeating: count, count: count + 1)
        let bookkeeping = count * (MemoryLayout<Int>.stride * 4 + MemoryLayout<UnsafeMutablePointer<Float>?>.stride)
        available = max(budgetBytes / MemoryLayout<Float>.stride - bookkeeping / MemoryLayout<Float>.stride, 2 * count)
    }

    deinit {
        scratch.deallocate()
        if let whole {
            whole.deallocate()
        } else {
            for column in storage { column?.deallocate() }
        }
    }

    /// How many columns of `length` values can be held at once, beyond the two the solver is
    /// using (at least 1).
    func columnsAtOnce(length: Int) -> Int {
        whole != nil ? count : max(1, available / max(1, length) - 2)
    }

    /// Length of the prefix of column `i` cached in the current order.
    func cachedPrefix(_ i: Int) -> Int {
        bringUpToDate(i)
        return cachedLength[i]
    }

    /// Storage for values `[0, length)` of column `i` (`length ≥ 1`), and the position from
    /// which the caller must fill them (`>= length` when all are cached). Marks the column
    /// most recently used; may drop the columns used longest ago. The pointer stays valid
    /// until the column is dropped, so the two columns of a solver step can be held together.
    func column(_ i: Int, length: Int) -> (data: UnsafeMutablePointer<Float>, fillFrom: Int) {
        bringUpToDate(i)
        // Every column of the whole matrix has storage.
        if whole != nil { return (storage[i].unsafelyUnwrapped, count) }
        precondition(length > 0, "KernelCache: empty column requested")
        let cached = cachedLength[i]
        if cached > 0 { unlink(i) }
        var fillFrom = length
        if length > cached {
            while available < length - cached { drop(next[count]) }
            let grown = UnsafeMutablePointer<Float>.allocate(capacity: length)
            if let old = storage[i] {
                grown.update(from: old, count: cached)
                old.deallocate()
            }
            storage[i] = grown
            available -= length - cached
            cachedLength[i] = length
            fillFrom = cached
        }
        link(i)
        // `storage[i]` was set above or already held `cached >= length >= 1` values.
        return (storage[i].unsafelyUnwrapped, fillFrom)
    }

    /// Follows the solver's exchanges of variables, in order: after them, column (and row)
    /// `i` holds what `j` held and vice versa, for every `(i, j)`.
    func swapIndices(_ swaps: [(Int, Int)]) {
        // source[p]: the position whose variable ends at position p.
        var source = Array(0..<count)
        for (i, j) in swaps { source.swapAt(i, j) }
        let positions = (0..<count).filter { source[$0] != $0 }
        guard !positions.isEmpty else { return }
        storage = source.map { storage[$0] }
        cachedLength = source.map { cachedLength[$0] }
        version = source.map { version[$0] }
        if whole == nil {
            // The use order is kept; only the names in the list change.
            var position = Array(0...count)
            for p in positions { position[source[p]] = p }
            previous = (0...count).map { p in position[previous[p == count ? count : source[p]]] }
            next = (0...count).map { p in position[next[p == count ? count : source[p]]] }
        }
        reorderings.append((positions, positions.map { source[$0] }))
    }

    /// Brings the cached values of column `i` through the permutations recorded since they
    /// were stored. A column cached up to `len` whose new prefix would need a value from
    /// beyond it is dropped (libsvm's "give up" in `swap_index`).
    private func bringUpToDate(_ i: Int) {
        guard version[i] < reorderings.count else { return }
        defer { version[i] = reorderings.count }
        guard let data = storage[i] else { return }
        let length = cachedLength[i]
        for (positions, sources) in reorderings[version[i]...] {
            var moved = 0
            while moved < positions.count && positions[moved] < length {
                if sources[moved] >= length {
                    drop(i)
                    return
                }
                moved += 1
            }
            for t in 0..<moved { scratch[t] = data[sources[t]] }
            for t in 0..<moved { data[positions[t]] = scratch[t] }
        }
    }

    // MARK: Least recently used columns

    /// Frees column `i` (least-recently-used layout).
    private func drop(_ i: Int) {
        unlink(i)
        storage[i]?.deallocate()
        storage[i] = nil
        available += cachedLength[i]
        cachedLength[i] = 0
    }

    private func unlink(_ i: Int) {
        next[previous[i]] = next[i]
        previous[next[i]] = previous[i]
    }

    /// Inserts `i` as the most recently used column.
    private func link(_ i: Int) {
        next[i] = count
        previous[i] = previous[count]
        next[previous[i]] = i
        previous[count] = i
    }
}
