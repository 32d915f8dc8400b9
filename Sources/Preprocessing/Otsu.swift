/// Otsu's histogram thresholds (N. Otsu, "A threshold selection method from gray-level
/// histograms", IEEE Trans. SMC 9, 1979): the split of a histogram into classes of
/// consecutive bins that maximises the between-class variance, equivalently
/// ```
/// Σ_c S_c² / W_c      (W_c: voxels in class c, S_c: their sum of bin centres)
/// ```
/// The multi-level form (Liao, Chen & Chung, J. Inf. Sci. Eng. 17, 2001) searches every pair
/// of cut points for three classes.
struct Otsu {
    /// Lower edge of the first bin and the bin width.
    let low: Double
    let width: Double
    /// Voxel counts per bin.
    let counts: [Double]

    /// The histogram of `values` in `bins` equal bins over `[low, high]`; values outside are
    /// counted in the first or last bin.
    /// - Precondition: `bins ≥ 3`, `high > low`.
    init<C: Collection<Float>>(_ values: C, low: Double, high: Double, bins: Int) {
        precondition(bins >= 3 && high > low, "Otsu: \(bins) bins over [\(low), \(high)]")
        let width = (high - low) / Double(bins)
        var counts = [Double](repeating: 0, count: bins)
        for v in values {
            let bin = Int(((Double(v) - low) / width).rounded(.down))
            counts[min(max(bin, 0), bins - 1)] += 1
        }
        (self.low, self.width, self.counts) = (low, width, counts)
    }

    /// Lower edge of bin `b`: a voxel above it belongs to bin `b` or later.
    func edge(_ b: Int) -> Double { low + Double(b) * width }

    /// Running totals `(W, S)` before each bin: `W[b]` voxels and `S[b]` bin-centre sum in bins `0..<b`.
    private var cumulative: (weights: [Double], sums: [Double]) {
        var weights = [0.0], sums = [0.0]
        for (b, n) in counts.enumerated() {
            weights.append(weights[b] + n)
            sums.append(sums[b] + n * (low + (Double(b) + 0.5) * width))
        }
        return (weights, sums)
    }

    /// The two-class threshold: the lower edge of the first bin of the upper class.
    var twoClassThreshold: Double {
        let (w, s) = cumulative
        let bins = counts.count
        var best = (score: -Double.infinity, cut: 1)
        for cut in 1..<bins {
            let score = separation(w, s, [0, cut, bins])
            if score > best.score { best = (score, cut) }
        }
        return edge(best.cut)
    }

    /// The two three-class thresholds, lower first (lower edges of the middle and the upper
    /// class's first bins).
    var threeClassThresholds: (lower: Double, upper: Double) {
        let (w, s) = cumulative
        let bins = counts.count
        var best = (score: -Double.infinity, first: 1, second: 2)
        for first in 1..<(bins - 1) {
            for second in (first + 1)..<bins {
                let score = separation(w, s, [0, first, second, bins])
                if score > best.score { best = (score, first, second) }
            }
        }
        return (edge(best.first), edge(best.second))
    }

    /// `Σ S_c² / W_c` over the classes between consecutive `cuts` (empty classes add 0).
    private func separation(_ w: [Double], _ s: [Double], _ cuts: [Int]) -> Double {
        var total = 0.0
        for c in 0..<(cuts.count - 1) {
            let weight = w[cuts[c + 1]] - w[cuts[c]]
            let sum = s[cuts[c + 1]] - s[cuts[c]]
            if weight > 0 { total += sum * sum / weight }
        }
        return total
    }
}
