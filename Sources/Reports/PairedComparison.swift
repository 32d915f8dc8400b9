import Foundation

/// Paired comparisons of two classifiers evaluated on the same subjects or the same
/// cross-validation folds: McNemar's test on paired predictions, the corrected resampled t-test
/// on fold-wise score differences, and percentile bootstrap confidence intervals.
///
/// As the rest of `Statistics`, these functions never trap on data: too short inputs, NaN and
/// out-of-range parameters give NaN. The one exception is `mcNemar` given two arrays of
/// different lengths, which cannot be paired predictions and is a programmer error.
///
/// Sources cited below:
/// - Edwards, A. L. (1948). Note on the "correction for continuity" in testing the significance
///   of the difference between correlated proportions. *Psychometrika* 13, 185–187.
/// - Efron, B. & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*, ch. 13
///   (percentile intervals).
/// - Hyndman, R. J. & Fan, Y. (1996). Sample quantiles in statistical packages. *The American
///   Statistician* 50(4), 361–365 (definition 7, numpy's default "linear" percentile).
/// - McNemar, Q. (1947). Note on the sampling error of the difference between correlated
///   proportions or percentages. *Psychometrika* 12, 153–157.
/// - Nadeau, C. & Bengio, Y. (2003). Inference for the generalization error. *Machine Learning*
///   52, 239–281.
extension Statistics {
    /// McNemar's test of whether two classifiers, applied to the same subjects, have the same
    /// error rate (McNemar 1947), as statsmodels
    /// `mcnemar([[n₀₀, b], [c, n₁₁]], exact: exact, correction: True)`.
    ///
    /// Only the discordant pairs count: b subjects where the first classifier is right and the
    /// second wrong, c the opposite. Under the null hypothesis each discordant pair goes either
    /// way with probability ½, so b ~ Binomial(b + c, ½).
    /// ```
    /// exact:       statistic = min(b, c),  p = min(1, 2·P(X ≤ min(b, c))),  X ~ Bin(b + c, ½)
    ///                                       P(X ≤ k) = I_{½}(n − k, k + 1)
    /// chi-square:  statistic = (|b − c| − 1)² / (b + c),  p = P(χ²₁ ≥ statistic) = erfc(√(statistic/2))
    /// ```
    /// The chi-square form carries Edwards' (1948) continuity correction exactly as statsmodels
    /// writes it, without clamping |b − c| − 1 at 0 (so b = c gives 1/(b + c), not 0). The
    /// binomial distribution function uses `regularizedIncompleteBeta`.
    ///
    /// - Parameters:
    ///   - firstCorrect: for each subject, whether the first classifier's prediction is right.
    ///   - secondCorrect: the same for the second classifier, in the same subject order.
    ///     Precondition: the same length as `firstCorrect` (unpaired input is a programmer error).
    ///   - exact: `true` for the exact binomial test, `false` for the chi-square approximation,
    ///     `nil` (default) for the exact test when b + c < 25 and the chi-square otherwise.
    /// - Returns: the discordant counts `b` and `c`; the `statistic` (min(b, c) for the exact
    ///   test, the corrected χ² otherwise); the two-sided `p` in [0, 1]; and whether the test
    ///   was `exact`. With no discordant pair (b + c = 0, including empty input) the statistic
    ///   is 0 and p = 1 for either form (statsmodels' chi-square form gives statistic ∞, p = 0
    ///   there, from 1/0).
    public static func mcNemar(
        firstCorrect: [Bool], secondCorrect: [Bool], exact: Bool? = nil
    ) -> (b: Int, c: Int, statistic: Double, p: Double, exact: Bool) {
        precondition(
            firstCorrect.count == secondCorrect.count,
            "mcNemar needs paired predictions: \(firstCorrect.count) against \(secondCorrect.count)")
        var b = 0
        var c = 0
        for (first, second) in zip(firstCorrect, secondCorrect) where first != second {
            if first { b += 1 } else { c += 1 }
        }
        let discordant = b + c
        let useExact = exact ?? (discordant < 25)
        guard discordant > 0 else { return (b, c, 0, 1, useExact) }
        if useExact {
            let smaller = min(b, c)
            // P(X ≤ k) for X ~ Bin(n, ½) is I_{½}(n − k, k + 1); n − k ≥ 1 since k ≤ n/2 < n.
            let lowerTail = regularizedIncompleteBeta(
                0.5, a: Double(discordant - smaller), b: Double(smaller + 1))
            return (b, c, Double(smaller), min(1, 2 * lowerTail), true)
        }
        let excess = Double(abs(b - c)) - 1
        let statistic = excess * excess / Double(discordant)
        // The χ²₁ survival function: P(Z² ≥ x) = P(|Z| ≥ √x) = erfc(√(x/2)).
        return (b, c, statistic, erfc((statistic / 2).squareRoot()), false)
    }

    /// The corrected resampled t-test of Nadeau & Bengio (2003) for whether two classifiers
    /// differ in expected score, from the differences of their scores on the same k
    /// train/test splits (cross-validation folds or repeated hold-outs).
    ///
    /// The ordinary paired t-test treats the k differences as independent, but the training
    /// sets overlap, so it underestimates their variance and rejects far too often. The
    /// correction inflates the variance of the mean by the test/train size ratio:
    /// ```
    /// t = mean(d) / sqrt( (1/k + n_test/n_train) · s²(d) ),   n_test/n_train = f / (1 − f)
    /// ν = k − 1,   p = P(|T_ν| ≥ |t|)
    /// ```
    /// with s² the sample variance (divisor k − 1, from `standardDeviation`), f the fraction of
    /// the data held out for testing in each split, and p from `studentTTwoSidedP`. For k-fold
    /// cross-validation f = 1/k, so n_test/n_train = 1/(k − 1).
    ///
    /// - Parameters:
    ///   - differences: per split, the first classifier's score minus the second's (any score
    ///     where higher is better, e.g. balanced accuracy), in score units.
    ///   - testFraction: f, the fraction of subjects in each test set, in (0, 1).
    /// - Returns: `t`, positive when the first classifier scores higher; `degreesOfFreedom`
    ///   k − 1; and the two-sided `p` in [0, 1]. When every difference is equal (s = 0):
    ///   t = ±infinity and p = 0 if they are nonzero, t = 0 and p = 1 if they are all 0.
    ///   All NaN when k < 2, a difference is NaN or infinite, or `testFraction` is not in
    ///   (0, 1).
    public static func correctedResampledTTest(
        differences: [Double], testFraction: Double
    ) -> (t: Double, degreesOfFreedom: Double, p: Double) {
        guard differences.count >= 2, differences.allSatisfy(\.isFinite),
              testFraction > 0, testFraction < 1 else { return (.nan, .nan, .nan) }
        let folds = Double(differences.count)
        let degreesOfFreedom = folds - 1
        let meanDifference = mean(differences)
        let spread = standardDeviation(differences)
        if spread == 0 {
            if meanDifference == 0 { return (0, degreesOfFreedom, 1) }
            return (meanDifference > 0 ? .infinity : -.infinity, degreesOfFreedom, 0)
        }
        let varianceFactor = 1 / folds + testFraction / (1 - testFraction)
        let t = meanDifference / (spread * varianceFactor.squareRoot())
        return (t, degreesOfFreedom, studentTTwoSidedP(t: t, degreesOfFreedom: degreesOfFreedom))
    }

    /// A percentile bootstrap confidence interval for the mean of `values` (Efron & Tibshirani
    /// 1993, ch. 13): `bootstrapInterval(count:replicates:confidence:using:statistic:)` with
    /// the statistic `mean` of the resampled values.
    ///
    /// - Parameters:
    ///   - values: the sample, e.g. per-subject score differences.
    ///   - replicates: the number of bootstrap resamples, ≥ 1 (default 2000).
    ///   - confidence: the coverage of the central interval, in (0, 1) (default 0.95).
    ///   - generator: the source of the resampled indices; pass a seeded generator (such as
    ///     TensorCore's `Xoshiro256StarStar`) for reproducible intervals.
    /// - Returns: the interval's `low` and `high` ends in the units of `values`. NaN when
    ///   `values` is empty or holds NaN or an infinity, or a parameter is out of range.
    public static func bootstrapInterval(
        _ values: [Double], replicates: Int = 2000, confidence: Double = 0.95,
        using generator: inout some RandomNumberGenerator
    ) -> (low: Double, high: Double) {
        bootstrapInterval(
            count: values.count, replicates: replicates, confidence: confidence, using: &generator
        ) { indices in mean(indices.map { values[$0] }) }
    }

    /// A percentile bootstrap confidence interval for any statistic of n paired observations
    /// (Efron & Tibshirani 1993, ch. 13), e.g. the difference in balanced accuracy of two
    /// classifiers over the same subjects.
    ///
    /// Each replicate draws n indices uniformly with replacement from 0..<n and evaluates
    /// `statistic` on them; the interval is the central `confidence` range of the replicate
    /// values:
    /// ```
    /// low = Q(α/2),   high = Q(1 − α/2),   α = 1 − confidence
    /// Q(q) = v₍ⱼ₎ + g·(v₍ⱼ₊₁₎ − v₍ⱼ₎),   h = (R − 1)·q,  j = ⌊h⌋,  g = h − j
    /// ```
    /// over the sorted replicate values v₍₀₎ ≤ … ≤ v₍R₋₁₎: numpy's default ("linear")
    /// percentile, definition 7 of Hyndman & Fan (1996), interpolated as numpy does
    /// (from the upper end when g ≥ ½), so a constant statistic gives low = high = it.
    ///
    /// The same generator state gives the same interval; the indices are drawn with
    /// `Int.random(in:using:)`, so the sequence depends only on the generator.
    ///
    /// - Parameters:
    ///   - count: n, the number of observations to resample.
    ///   - replicates: R, the number of bootstrap resamples, ≥ 1 (default 2000).
    ///   - confidence: the coverage of the central interval, in (0, 1) (default 0.95).
    ///   - generator: the source of the resampled indices; pass a seeded generator for
    ///     reproducible intervals.
    ///   - statistic: the statistic of a resample, given its n indices (with repeats) into the
    ///     caller's paired data. Called R times, in order.
    /// - Returns: the interval's `low` and `high` ends in the units of the statistic. NaN when
    ///   `count` < 1, `replicates` < 1, `confidence` is not in (0, 1), or any replicate of the
    ///   statistic is NaN (numpy's percentile propagates NaN too).
    public static func bootstrapInterval(
        count: Int, replicates: Int = 2000, confidence: Double = 0.95,
        using generator: inout some RandomNumberGenerator, statistic: ([Int]) -> Double
    ) -> (low: Double, high: Double) {
        guard count >= 1, replicates >= 1, confidence > 0, confidence < 1 else { return (.nan, .nan) }
        var replicateValues = [Double]()
        replicateValues.reserveCapacity(replicates)
        var indices = [Int](repeating: 0, count: count)
        for _ in 0..<replicates {
            for position in indices.indices {
                indices[position] = Int.random(in: 0..<count, using: &generator)
            }
            replicateValues.append(statistic(indices))
        }
        guard !replicateValues.contains(where: \.isNaN) else { return (.nan, .nan) }
        replicateValues.sort()
        let tail = (1 - confidence) / 2
        return (linearPercentile(sorted: replicateValues, quantile: tail),
                linearPercentile(sorted: replicateValues, quantile: 1 - tail))
    }

    /// numpy's default `percentile(v, 100·q)` of sorted, non-empty, NaN-free values, q in
    /// [0, 1]: Hyndman & Fan definition 7 with numpy's two-sided interpolation, which is exact
    /// at both ends of each interval and keeps equal neighbours equal.
    private static func linearPercentile(sorted values: [Double], quantile: Double) -> Double {
        let position = Double(values.count - 1) * quantile
        let lowerIndex = min(Int(position.rounded(.down)), values.count - 1)
        let upperIndex = min(lowerIndex + 1, values.count - 1)
        let fraction = position - Double(lowerIndex)
        let lower = values[lowerIndex]
        let upper = values[upperIndex]
        let span = upper - lower
        return fraction >= 0.5 ? upper - span * (1 - fraction) : lower + span * fraction
    }
}
