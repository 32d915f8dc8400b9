/// Order statistics without a full sort (shared with `Preprocessing`).
public enum Percentiles {
    /// The `p`-th percentiles (0-100) of `values`, with linear interpolation between
    /// neighbouring order statistics as numpy's default (`rank = p/100 · (n − 1)`).
    /// Reorders `values`; `values` must be non-empty and NaN-free.
    public static func of(_ values: inout [Float], _ percentiles: [Double]) -> [Double] {
        let n = values.count
        precondition(n > 0, "percentiles of an empty set")
        return percentiles.map { p in
            let rank = min(max(p, 0), 100) / 100 * Double(n - 1)
            let lower = Int(rank.rounded(.down))
            let low = Double(select(&values, lower))
            guard lower + 1 < n, rank > Double(lower) else { return low }
            // After selecting `lower`, the next order statistic is the smallest value above it.
            var next = Float.infinity
            values.withUnsafeBufferPointer { v in for i in (lower + 1)..<n where v[i] < next { next = v[i] } }
            return low + (rank - Double(lower)) * (Double(next) - low)
        }
    }

    /// Hoare's quickselect with median-of-three pivots: afterwards `values[k]` is the k-th
    /// smallest, smaller values before it, larger after. Deterministic (no random pivots).
    static func select(_ values: inout [Float], _ k: Int) -> Float {
        values.withUnsafeMutableBufferPointer { v in
            var (low, high) = (0, v.count - 1)
            while high > low {
                let middle = low + (high - low) / 2
                if v[middle] < v[low] { v.swapAt(middle, low) }
                if v[high] < v[low] { v.swapAt(high, low) }
                if v[high] < v[middle] { v.swapAt(high, middle) }
                let pivot = v[middle]
                var (i, j) = (low, high)
                while i <= j {
                    while v[i] < pivot { i += 1 }
                    while v[j] > pivot { j -= 1 }
                    if i <= j {
                        v.swapAt(i, j)
                        i += 1
                        j -= 1
                    }
                }
                if k <= j { high = j } else if k >= i { low = i } else { break }
            }
            return v[k]
        }
    }
}
