import Foundation

/// Descriptive statistics, effect sizes and two-sample tests for comparing groups of subjects
/// (for example a regional MRI measure in AD against CN), written to reproduce numpy, scipy and
/// scikit-learn to within rounding.
///
/// Every function takes plain arrays and never traps: empty or too short inputs, NaN, infinities
/// and huge counts give NaN or the documented limit instead. Results are in the units of the
/// input (mean, standard deviation), in pooled-standard-deviation units (Cohen's d) or are
/// dimensionless (t, degrees of freedom, AUC, p- and q-values).
///
/// Sources cited below:
/// - Abramowitz, M. & Stegun, I. A. (1964). *Handbook of Mathematical Functions*, §26.7.
/// - Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. *J. R. Stat.
///   Soc. B* 57(1), 289–300.
/// - Chan, T. F., Golub, G. H. & LeVeque, R. J. (1983). Algorithms for computing the sample
///   variance: analysis and recommendations. *The American Statistician* 37(3), 242–247.
/// - Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed., §2.2.
/// - Cuyt, A. et al. (2008). *Handbook of Continued Fractions for Special Functions*, §1.6
///   (even and odd parts of a continued fraction).
/// - DiDonato, A. R. & Morris, A. H. (1992). Algorithm 708: significant digit computation of the
///   incomplete beta function ratios. *ACM TOMS* 18(3), 360–373.
/// - DLMF: NIST Digital Library of Mathematical Functions, eq. 5.11.1 (Stirling series) and
///   §8.17(v) (continued fraction for the incomplete beta function).
/// - Hanley, J. A. & McNeil, B. J. (1982). The meaning and use of the area under a receiver
///   operating characteristic (ROC) curve. *Radiology* 143, 29–36.
/// - Press, W. H. et al. (2007). *Numerical Recipes*, 3rd ed., §5.2 (modified Lentz method) and
///   §6.4 (incomplete beta function, Student's distribution).
/// - Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance
///   components. *Biometrics Bulletin* 2(6), 110–114.
/// - Welch, B. L. (1947). The generalization of "Student's" problem when several different
///   population variances are involved. *Biometrika* 34, 28–35.
public enum Statistics {
    /// The arithmetic mean, in the units of `x`.
    ///
    /// ```
    /// x̄ = (1/n) Σ xᵢ
    /// ```
    /// A second pass adds the mean residual, `x̄ ← x̄ + (1/n) Σ (xᵢ − x̄)`, which cancels most of
    /// the rounding error of the first sum (the correction step of Chan, Golub & LeVeque 1983),
    /// so long arrays keep nearly full precision, as with numpy's pairwise summation.
    ///
    /// - Parameters:
    ///   - x: the sample.
    /// - Returns: the mean; NaN when `x` is empty or holds NaN (or both +∞ and −∞); ±infinity
    ///   when `x` holds infinities of one sign or the sum overflows, as numpy.
    public static func mean(_ x: [Double]) -> Double {
        guard !x.isEmpty else { return .nan }
        let count = Double(x.count)
        let firstEstimate = x.reduce(0, +) / count
        // A non-finite first estimate cannot be refined: x − ∞ would turn ±∞ into NaN.
        guard firstEstimate.isFinite else { return firstEstimate }
        return firstEstimate + x.reduce(0) { $0 + ($1 - firstEstimate) } / count
    }

    /// The sample standard deviation with Bessel's correction (numpy `std(x, ddof=1)`), in the
    /// units of `x`.
    ///
    /// ```
    /// s = sqrt( Σ (xᵢ − x̄)² / (n − 1) )
    /// ```
    /// Computed in two passes (the mean, then the squared deviations from it), which unlike the
    /// one-pass `Σxᵢ² − n·x̄²` does not cancel catastrophically when the spread is small next to
    /// the mean (Chan, Golub & LeVeque 1983).
    ///
    /// - Parameters:
    ///   - x: the sample.
    /// - Returns: s ≥ 0; NaN when `x` has fewer than 2 values or holds NaN or an infinity;
    ///   +infinity when a squared deviation overflows (deviations beyond ~1e154), as numpy.
    public static func standardDeviation(_ x: [Double]) -> Double {
        guard x.count >= 2 else { return .nan }
        return (sumOfSquaredDeviations(x) / Double(x.count - 1)).squareRoot()
    }

    /// Cohen's d: the difference of the means in units of the pooled standard deviation.
    ///
    /// ```
    /// d  = (mean(a) − mean(b)) / s_p
    /// s_p = sqrt( ((n_a − 1)·s_a² + (n_b − 1)·s_b²) / (n_a + n_b − 2) )
    /// ```
    /// (Cohen 1988, §2.2), with the sample variances s² of `standardDeviation`. Positive when
    /// `a` has the larger mean.
    ///
    /// - Parameters:
    ///   - a: the first group (e.g. AD).
    ///   - b: the second group (e.g. CN).
    /// - Returns: d, dimensionless. NaN when n_a + n_b < 3, when either group is empty or when
    ///   an input holds NaN or an infinity. When s_p is 0 (both groups constant): 0 if the means
    ///   are equal, otherwise +infinity or −infinity with the sign of the difference.
    public static func cohensD(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count + b.count >= 3 else { return .nan }
        // (n − 1)·s² is the sum of squared deviations, which is also defined (0) for a group of one.
        let pooledVariance = (sumOfSquaredDeviations(a) + sumOfSquaredDeviations(b))
            / Double(a.count + b.count - 2)
        let difference = mean(a) - mean(b)
        // IEEE division already gives ±infinity for a nonzero difference over 0; only 0/0 needs a value.
        if pooledVariance == 0, difference == 0 { return 0 }
        return difference / pooledVariance.squareRoot()
    }

    /// The area under the ROC curve for scores where `positives` should be higher than
    /// `negatives`: the probability that a random positive outscores a random negative, ties
    /// counting one half (Hanley & McNeil 1982). Equal to
    /// `sklearn.metrics.roc_auc_score(labels, scores)` with the positives labelled 1.
    ///
    /// ```
    /// AUC = P(pos > neg) + ½·P(pos = neg) = U / (n₊·n₋)
    /// U   = R₊ − n₊(n₊ + 1)/2          (Mann–Whitney U of the positives)
    /// ```
    /// where R₊ is the sum of the positives' ranks in the pooled sample, tied values sharing the
    /// average of their ranks. The rank sum is evaluated per group g of tied values, which is
    /// the same number: U = Σ_g p_g·(negatives below g + ½·n_g), with p_g positives and n_g
    /// negatives in g. Sorting makes it O(n log n); the counts stay exact integers.
    ///
    /// - Parameters:
    ///   - positives: scores of the cases (label 1).
    ///   - negatives: scores of the controls (label 0).
    /// - Returns: AUC in [0, 1]; 0.5 for indistinguishable groups. NaN when either side is empty
    ///   or any score is NaN (scikit-learn raises an error there). Infinite scores rank normally.
    public static func rocAUC(positives: [Double], negatives: [Double]) -> Double {
        guard !positives.isEmpty, !negatives.isEmpty else { return .nan }
        // NaN has no rank; left in, it would also make the sort order undefined.
        guard !positives.contains(where: \.isNaN), !negatives.contains(where: \.isNaN) else { return .nan }
        let sortedPositives = positives.sorted()
        let sortedNegatives = negatives.sorted()
        // 2·U counts each positive above a negative twice and each tie once, so it is an integer;
        // it is summed in Double so that no count, however large, can overflow.
        var twiceU = 0.0
        var negativesBelow = 0
        var index = 0
        while index < sortedPositives.count {
            let value = sortedPositives[index]
            var tiedPositives = 0
            while index < sortedPositives.count, sortedPositives[index] == value {
                tiedPositives += 1
                index += 1
            }
            while negativesBelow < sortedNegatives.count, sortedNegatives[negativesBelow] < value {
                negativesBelow += 1
            }
            var negativesNotAbove = negativesBelow
            while negativesNotAbove < sortedNegatives.count, sortedNegatives[negativesNotAbove] == value {
                negativesNotAbove += 1
            }
            // 2·(below + ½·tied negatives) = below + notAbove.
            twiceU += Double(tiedPositives) * Double(negativesBelow + negativesNotAbove)
        }
        return twiceU / (2 * Double(positives.count) * Double(negatives.count))
    }

    /// Welch's two-sided t-test for a difference in means without assuming equal variances, as
    /// `scipy.stats.ttest_ind(a, b, equal_var=False)` (Welch 1947; Satterthwaite 1946).
    ///
    /// ```
    /// t  = (mean(a) − mean(b)) / sqrt(s_a²/n_a + s_b²/n_b)
    /// ν  = (s_a²/n_a + s_b²/n_b)² / ( (s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1) )
    /// p  = P(|T_ν| ≥ |t|) = I_{ν/(ν+t²)}(ν/2, 1/2)
    /// ```
    /// with the sample variances s² of `standardDeviation` and p from `studentTTwoSidedP`.
    ///
    /// Edge cases:
    /// - fewer than 2 values in either group: t, ν and p are all NaN (scipy reports ν = 1 there);
    /// - both groups constant (s_a = s_b = 0): t and p are NaN when the means are equal (no test
    ///   is possible; as scipy, so Benjamini–Hochberg leaves such features out of its count),
    ///   otherwise t = ±infinity and p = 0; ν is NaN because the Welch–Satterthwaite ratio is
    ///   0/0 (scipy reports ν = 1);
    /// - one group constant: ν = n − 1 of the other group, as the formula gives;
    /// - NaN or an infinity in an input: all NaN.
    ///
    /// - Parameters:
    ///   - a: the first group (e.g. AD).
    ///   - b: the second group (e.g. CN).
    /// - Returns: `t`, dimensionless and positive when `a` has the larger mean; the
    ///   Welch–Satterthwaite `degreesOfFreedom`, between min(n_a, n_b) − 1 and n_a + n_b − 2;
    ///   and the two-sided `p` in [0, 1].
    public static func welchTTest(_ a: [Double], _ b: [Double]) -> (t: Double, degreesOfFreedom: Double, p: Double) {
        guard a.count >= 2, b.count >= 2 else { return (.nan, .nan, .nan) }
        let countA = Double(a.count)
        let countB = Double(b.count)
        // Squared standard errors of the two means; their sum is the variance of the difference.
        let squaredErrorA = sumOfSquaredDeviations(a) / (countA - 1) / countA
        let squaredErrorB = sumOfSquaredDeviations(b) / (countB - 1) / countB
        let squaredError = squaredErrorA + squaredErrorB
        let difference = mean(a) - mean(b)
        if squaredError == 0 {
            if difference == 0 { return (.nan, .nan, .nan) }
            return (difference > 0 ? .infinity : -.infinity, .nan, 0)
        }
        let t = difference / squaredError.squareRoot()
        // ν written with each group's share of the variance, which avoids squaring (and
        // overflowing) the variances themselves.
        let shareA = squaredErrorA / squaredError
        let shareB = squaredErrorB / squaredError
        let degreesOfFreedom = 1 / (shareA * shareA / (countA - 1) + shareB * shareB / (countB - 1))
        return (t, degreesOfFreedom, studentTTwoSidedP(t: t, degreesOfFreedom: degreesOfFreedom))
    }

    /// The regularized incomplete beta function I_x(a, b), the distribution function of a
    /// Beta(a, b) variable at x (scipy `special.betainc(a, b, x)`).
    ///
    /// ```
    /// I_x(a, b) = (1 / B(a, b)) ∫₀ˣ u^(a−1) (1 − u)^(b−1) du
    ///           = [x^a (1 − x)^b / B(a, b)] / F,    F = α₀ + β₁/(α₁ + β₂/(α₂ + …))
    /// α₀ = a·(1 + a·(1 − x) − b·x) / (a + 1)
    /// αₘ = m + m(b − m)x/(a + 2m − 1) + (a + m)(1 + a·(1 − x) − b·x + m(2 − x))/(a + 2m + 1)
    /// βₘ = m(b − m)(a + m − 1)(a + b + m − 1)·x² / (a + 2m − 1)²
    /// I_x(a, b) = 1 − I_{1−x}(b, a)     (used when x ≥ (a + 1)/(a + b + 2))
    /// ```
    /// F is the odd part (Cuyt et al. 2008, §1.6) of the classical continued fraction of DLMF
    /// §8.17(v) and Numerical Recipes §6.4, scaled so that its terms are formed without the
    /// cancellation `1 − (a + b)x/(a + 1)` that the classical form suffers when a ≫ b and x is
    /// near 1. It is evaluated with the modified Lentz method (Numerical Recipes §5.2) on the side
    /// of the symmetry where it converges quickly (O(∛a) terms at worst for a = b).
    ///
    /// The prefactor x^a (1 − x)^b / B(a, b) is not taken as exp(lgamma(a + b) − lgamma(a) −
    /// lgamma(b) + a·ln x + b·ln(1 − x)): for a, b ≈ 1e5 those terms are ~1e6 and cancel to O(1),
    /// which would cost ~1e-10 relative accuracy. Instead Stirling's series is split off
    /// (DLMF 5.11.1, the approach of DiDonato & Morris 1992):
    /// ```
    /// x^a (1 − x)^b / B(a, b) = sqrt(a·b / (2π(a + b))) · exp( a·ln(x(a + b)/a) + b·ln((1 − x)(a + b)/b)
    ///                                                      + δ(a + b) − δ(a) − δ(b) )
    /// δ(z) = ln Γ(z) − [(z − ½)ln z − z + ½ ln 2π]
    /// ```
    /// where both logarithms are near 0 (taken with log1p) around the peak x ≈ a/(a + b).
    ///
    /// Accuracy: within 3e-13 relative for a, b in [0.5, 1e5] (874 points checked against
    /// 40-digit arithmetic, results that underflow excepted; the worst are far-tail values near
    /// 1e-159); with b = ½, as Student's t needs, within 1e-13 for a up to 1e300. The fraction is cut off after 1 000 000 terms, which is reached only
    /// for a and b both beyond ~1e16.
    ///
    /// - Parameters:
    ///   - x: the point, in [0, 1].
    ///   - a: the first shape parameter, > 0 and finite.
    ///   - b: the second shape parameter, > 0 and finite.
    /// - Returns: I_x(a, b) in [0, 1] (0 at x = 0, 1 at x = 1). NaN when an argument is NaN, x is
    ///   outside [0, 1], a or b is not positive and finite (scipy returns the limits 0 or 1 for
    ///   a or b of 0 or infinity), or the fraction has not converged.
    public static func regularizedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        guard (0...1).contains(x), a > 0, b > 0, a.isFinite, b.isFinite else { return .nan }
        return incompleteBeta(x: x, complement: 1 - x, a: a, b: b)
    }

    /// The two-sided p-value of Student's t distribution with ν degrees of freedom: the
    /// probability that |T| ≥ |t| (Abramowitz & Stegun §26.7; Numerical Recipes §6.4).
    ///
    /// ```
    /// p = I_{ν/(ν+t²)}(ν/2, 1/2)
    /// ```
    /// Both ν/(ν + t²) and its complement t²/(ν + t²) are formed from q = |t|/√ν without
    /// subtracting from 1, so tiny p-values (|t| large) and huge ν keep full relative accuracy.
    /// ν need not be an integer (Welch's ν is not).
    ///
    /// - Parameters:
    ///   - t: the t statistic.
    ///   - degreesOfFreedom: ν > 0; +infinity gives the normal limit erfc(|t|/√2).
    /// - Returns: p in [0, 1]: 1 at t = 0, 0 for infinite t. NaN when t or ν is NaN or ν ≤ 0.
    ///   p underflows to 0 below ~1e-308; it is also 0 once |t|/√ν exceeds ~1e161, where the
    ///   true p is below 1e-161 for ν ≥ 1.
    public static func studentTTwoSidedP(t: Double, degreesOfFreedom: Double) -> Double {
        // `ν > 0` is false for NaN too.
        guard !t.isNaN, degreesOfFreedom > 0 else { return .nan }
        let magnitude = abs(t)
        guard magnitude.isFinite else { return 0 }
        guard degreesOfFreedom.isFinite else { return erfc(magnitude / 2.0.squareRoot()) }
        let q = magnitude / degreesOfFreedom.squareRoot()
        // x = 1/(1 + q²) and 1 − x = q²/(1 + q²); for q > 1 the same in terms of 1/q, so that
        // q² cannot overflow.
        let x: Double
        let complement: Double
        if q <= 1 {
            let qSquared = q * q
            x = 1 / (1 + qSquared)
            complement = qSquared / (1 + qSquared)
        } else {
            let inverseSquared = 1 / q / q
            x = inverseSquared / (1 + inverseSquared)
            complement = 1 / (1 + inverseSquared)
        }
        return incompleteBeta(x: x, complement: complement, a: degreesOfFreedom / 2, b: 0.5)
    }

    /// Benjamini–Hochberg adjusted p-values (q-values) controlling the false discovery rate
    /// (Benjamini & Hochberg 1995), identical to `scipy.stats.false_discovery_control(p,
    /// method='bh')`, statsmodels `multipletests(p, method='fdr_bh')` and R's
    /// `p.adjust(p, "BH")`.
    ///
    /// ```
    /// q_(i) = min_{j ≥ i} min(1, p_(j) · m / j)
    /// ```
    /// where p_(1) ≤ … ≤ p_(m) are the sorted p-values. Tied p-values get equal q-values.
    ///
    /// NaN p-values (missing tests), and values outside [0, 1], which are not probabilities,
    /// are left as NaN in the output and excluded from m, so the other q-values are those of the
    /// valid p-values alone (scipy raises an error for them instead).
    ///
    /// - Parameters:
    ///   - p: p-values in [0, 1], in any order.
    /// - Returns: q-values in [0, 1], in the input order, each ≥ its p-value; NaN where the
    ///   p-value was not in [0, 1].
    public static func benjaminiHochberg(_ p: [Double]) -> [Double] {
        var adjusted = [Double](repeating: .nan, count: p.count)
        // `contains` is false for NaN, so NaN is left out along with out-of-range values.
        let ascending = p.indices.filter { (0.0...1.0).contains(p[$0]) }.sorted { p[$0] < p[$1] }
        let testCount = Double(ascending.count)
        // Walking from the largest p down carries min_{j ≥ i}; starting at 1 applies min(1, ·).
        var runningMinimum = 1.0
        for (position, index) in ascending.enumerated().reversed() {
            // p·(m/j) rather than p·m/j: the same rounding as scipy.
            runningMinimum = min(runningMinimum, p[index] * (testCount / Double(position + 1)))
            adjusted[index] = runningMinimum
        }
        return adjusted
    }

    // MARK: - Helpers

    /// Σ (xᵢ − x̄)², the (n − 1)·s² of `standardDeviation`, in squared units of `x`; 0 for fewer
    /// than two values.
    private static func sumOfSquaredDeviations(_ x: [Double]) -> Double {
        let center = mean(x)
        return x.reduce(0) { $0 + ($1 - center) * ($1 - center) }
    }

    /// The most terms of the incomplete beta continued fraction before giving up (NaN). Far
    /// more than needed: a = b = 1e5 takes ~250, a = b = 1e12 ~55 000.
    private static let maximumContinuedFractionTerms = 1_000_000

    /// Stand-in for a zero numerator or denominator in the modified Lentz method, which would
    /// otherwise divide by zero; small enough not to disturb any real value.
    private static let lentzFloor = 1e-300

    /// ½·ln(2π), the constant of Stirling's formula.
    private static let halfLogTwoPi = 0.5 * log(2 * Double.pi)

    /// I_x(a, b) for x and complement = 1 − x in (0, 1] given separately, so a caller that knows
    /// 1 − x more precisely than the subtraction would give (Student's t) keeps that precision.
    /// a, b > 0 and finite.
    private static func incompleteBeta(x: Double, complement: Double, a: Double, b: Double) -> Double {
        if x == 0 { return 0 }
        if complement == 0 { return 1 }
        let prefactor = powerTerms(x: x, complement: complement, a: a, b: b)
        // The fraction converges quickly for x < (a + 1)/(a + b + 2); beyond, use the symmetry
        // I_x(a, b) = 1 − I_{1−x}(b, a). The test is that inequality multiplied out as
        // x(b + 1) < (1 − x)(a + 1), which stays exact when a is so large that a + 1 and
        // a + b + 2 round to the same number.
        if x * (b + 1) < complement * (a + 1) {
            return prefactor / continuedFraction(x: x, complement: complement, a: a, b: b)
        }
        return 1 - prefactor / continuedFraction(x: complement, complement: x, a: b, b: a)
    }

    /// x^a (1 − x)^b / B(a, b), dimensionless, through the Stirling split documented at
    /// `regularizedIncompleteBeta`. Symmetric under (x, a) ↔ (1 − x, b).
    private static func powerTerms(x: Double, complement: Double, a: Double, b: Double) -> Double {
        let total = a + b
        // x(a + b)/a − 1 = (x·b − (1 − x)·a)/a and (1 − x)(a + b)/b − 1 = −(x·b − (1 − x)·a)/b:
        // formed from this one difference, both logarithms keep their accuracy near the peak,
        // where they nearly cancel each other.
        let offset = x * b - complement * a
        let logPowers = a * logRatio(x, total: total, part: a, ratioMinusOne: offset / a)
            + b * logRatio(complement, total: total, part: b, ratioMinusOne: -offset / b)
        let logCorrection = stirlingCorrection(total) - stirlingCorrection(a) - stirlingCorrection(b)
        // a·b/(a + b) grouped so that it cannot overflow.
        return (a / (2 * .pi) * (b / total)).squareRoot() * exp(logPowers + logCorrection)
    }

    /// ln(value·total/part), where `ratioMinusOne` is that ratio minus 1 formed without
    /// cancellation. Near 1 the result is log1p(ratioMinusOne), which keeps its relative
    /// accuracy; elsewhere ln of the ratio, because there `ratioMinusOne` may have lost accuracy
    /// (a ratio near 0); and if the ratio over- or underflows (a part of ~1e-300 against a total
    /// of ~1e300), the sum of the three logarithms.
    private static func logRatio(_ value: Double, total: Double, part: Double, ratioMinusOne: Double) -> Double {
        if abs(ratioMinusOne) <= 0.5 { return log1p(ratioMinusOne) }
        let ratio = value * (total / part)
        return ratio.isNormal ? log(ratio) : log(value) + log(total) - log(part)
    }

    /// δ(z) = ln Γ(z) − [(z − ½)ln z − z + ½ ln 2π], the remainder of Stirling's formula, for
    /// z > 0.
    private static func stirlingCorrection(_ z: Double) -> Double {
        if z < 10 {
            // Here ln Γ(z) < 13, so subtracting from lgamma loses only a few units of 1e-15.
            // The tuple form calls lgamma_r, which (unlike lgamma) writes no global sign variable.
            let (logGamma, _) = lgamma(z)
            return logGamma - ((z - 0.5) * log(z) - z + halfLogTwoPi)
        }
        // DLMF 5.11.1: δ(z) ~ Σₖ B₂ₖ / (2k(2k − 1) z^(2k−1)), here k = 1…7 in Horner form in
        // 1/z². For z ≥ 10 the first omitted term is below 3e-17.
        let inverseSquare = 1 / (z * z)
        let series = 1.0 / 12 + inverseSquare * (-1.0 / 360 + inverseSquare * (1.0 / 1260
            + inverseSquare * (-1.0 / 1680 + inverseSquare * (1.0 / 1188
            + inverseSquare * (-691.0 / 360_360 + inverseSquare / 156)))))
        return series / z
    }

    /// F = α₀ + β₁/(α₁ + β₂/(α₂ + …)) of `regularizedIncompleteBeta`, for x below the switch
    /// point, by the modified Lentz method; NaN if it has not converged after
    /// `maximumContinuedFractionTerms` terms.
    private static func continuedFraction(x: Double, complement: Double, a: Double, b: Double) -> Double {
        // a + 1 − (a + b)·x, written as 1 + a(1 − x) − b·x: when a ≫ b and x is near 1 the first
        // form subtracts two nearly equal large numbers, the second only adds small ones.
        let leadingDifference = 1 + a * complement - b * x
        var value = a / (a + 1) * leadingDifference
        if abs(value) < lentzFloor { value = lentzFloor }
        var ratioC = value
        var ratioD = 0.0
        for term in 1...maximumContinuedFractionTerms {
            let m = Double(term)
            let lowerIndex = a + 2 * m - 1
            // Grouped into factors of moderate size, so that no partial product overflows when a
            // or b is huge.
            let numerator = (x * (a + b + m - 1) / lowerIndex) * (x * (b - m)) * m * ((a + m - 1) / lowerIndex)
            let denominator = m + m * (b - m) * x / lowerIndex
                + (a + m) / (lowerIndex + 2) * (leadingDifference + m * (2 - x))
            ratioD = denominator + numerator * ratioD
            if abs(ratioD) < lentzFloor { ratioD = lentzFloor }
            ratioC = denominator + numerator / ratioC
            if abs(ratioC) < lentzFloor { ratioC = lentzFloor }
            ratioD = 1 / ratioD
            let step = ratioC * ratioD
            value *= step
            if abs(step - 1) <= .ulpOfOne { return value }
        }
        return .nan
    }
}
