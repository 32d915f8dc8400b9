#!/usr/bin/env python3
"""Reference values for the Statistics tests (Tests/ReportsTests/StatisticsTests.swift).

Run from the repository root (needs numpy, scipy and scikit-learn; the Swift tests never need
Python, they only read the committed JSON):

    python3 Tests/Fixtures/make_stats_fixtures.py

It writes Tests/Fixtures/Statistics/stats_cases.json, deterministic (a seeded numpy Generator,
sorted keys, no timestamps; running it twice gives identical bytes) and under 200 KB:

1. "two_sample": pairs of samples a, b (sizes 2..200; unequal variances, ties from rounding,
   identical samples, a constant sample, a large effect with p < 1e-30, small Welch df, a large
   common offset, b above a). Sample values are rounded to a few decimals to keep the file
   small, and every reference is computed from the rounded values:
   - mean_a, mean_b: numpy.mean; sd_a, sd_b: numpy.std(ddof=1);
   - cohens_d: (mean_a - mean_b) / pooled SD, pooled SD = sqrt(((na-1) sa^2 + (nb-1) sb^2) /
     (na + nb - 2)), with numpy;
   - auc: sklearn.metrics.roc_auc_score with a labelled 1 and b labelled 0;
   - welch_t, welch_df, welch_p: scipy.stats.ttest_ind(a, b, equal_var=False) (two-sided).
2. "incomplete_beta": x, a, b and scipy.special.betainc(a, b, x), for a, b in [0.5, 1e5].
3. "benjamini_hochberg": p-value vectors (ties, p = 0 and p = 1, unsorted) and
   scipy.stats.false_discovery_control(p, method="bh").

Non-finite floats would be written as the strings "NaN", "Infinity", "-Infinity" (decode in
Swift with JSONDecoder.nonConformingFloatDecodingStrategy = .convertFromString); the current
cases have none.
"""
import json
import math
import os
import warnings

import numpy as np
import scipy
import scipy.special
import scipy.stats
import sklearn
from sklearn.metrics import roc_auc_score

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Statistics", "stats_cases.json")
rng = np.random.default_rng(20240611)


def number(value):
    """A JSON-safe float: non-finite values become the strings Swift's decoder accepts."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def rounded(values, decimals):
    return [float(v) for v in np.round(np.asarray(values, dtype=np.float64), decimals)]


def two_sample_case(name, a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na, nb = len(a), len(b)
    sd_a, sd_b = np.std(a, ddof=1), np.std(b, ddof=1)
    pooled = math.sqrt(((na - 1) * sd_a ** 2 + (nb - 1) * sd_b ** 2) / (na + nb - 2))
    with warnings.catch_warnings():
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            # scipy warns of "catastrophic cancellation" for a constant sample, whose variance is
            # nevertheless exactly 0; any other warning still shows.
            warnings.filterwarnings("ignore", message="Precision loss occurred in moment calculation")
        welch = scipy.stats.ttest_ind(a, b, equal_var=False)
    labels = np.concatenate([np.ones(na), np.zeros(nb)])
    scores = np.concatenate([a, b])
    return {
        "name": name,
        "a": [float(v) for v in a],
        "b": [float(v) for v in b],
        "mean_a": number(np.mean(a)),
        "mean_b": number(np.mean(b)),
        "sd_a": number(sd_a),
        "sd_b": number(sd_b),
        "cohens_d": number((np.mean(a) - np.mean(b)) / pooled),
        "auc": number(roc_auc_score(labels, scores)),
        "welch_t": number(welch.statistic),
        "welch_df": number(welch.df),
        "welch_p": number(welch.pvalue),
    }


def two_sample_cases():
    normal = rng.normal
    shared = rounded(normal(10, 3, 30), 3)
    cases = [
        ("n2_vs_n2", rounded(normal(1.0, 0.5, 2), 4), rounded(normal(0.2, 0.1, 2), 4)),
        # Small variance against a large one in a few values: Welch df near 2.
        ("n3_wide_vs_n50_narrow_small_df", rounded(normal(5, 4, 3), 4), rounded(normal(2, 0.2, 50), 4)),
        ("n2_vs_n200", rounded(normal(0.5, 1, 2), 4), rounded(normal(0, 1, 200), 4)),
        ("n20_vs_n20_small_effect", rounded(normal(0.2, 1, 20), 4), rounded(normal(0, 1, 20), 4)),
        ("n200_vs_n150_unequal_variance", rounded(normal(1.1, 2.5, 200), 4), rounded(normal(1.0, 0.7, 150), 4)),
        # About 2.5 SD apart with 200 + 200 subjects: t near 25, p far below 1e-30.
        ("n200_vs_n200_large_effect", rounded(normal(2.5, 1, 200), 4), rounded(normal(0, 1, 200), 4)),
        # Rounded to whole numbers: many ties within and across the groups.
        ("n60_vs_n45_rounded_ties", rounded(normal(3, 2, 60), 0), rounded(normal(2, 2, 45), 0)),
        # Likert-like scores 0..5: nearly everything tied.
        ("n80_vs_n90_discrete_scores", [float(v) for v in rng.integers(1, 6, 80)],
         [float(v) for v in rng.integers(0, 5, 90)]),
        ("n30_identical_samples", shared, list(shared)),
        ("n12_constant_vs_n15", [3.5] * 12, rounded(normal(3, 1, 15), 4)),
        ("n25_vs_n18_constant", rounded(normal(-1, 2, 25), 4), [0.25] * 18),
        # A common offset 4e5 times the spread: a one-pass variance (sum of squares minus n times
        # the squared mean) would lose about 11 digits; the two-pass one loses none. The
        # difference of the means stays well enough conditioned (~1e-10) for the 1e-9 tolerance.
        ("n40_vs_n35_large_offset", rounded(4000 + normal(0, 0.01, 40), 5), rounded(4000 + normal(0.01, 0.02, 35), 5)),
        ("n37_lognormal_vs_n41_exponential", rounded(rng.lognormal(0, 1, 37), 4), rounded(rng.exponential(1.5, 41), 4)),
        ("n50_heavy_tails_vs_n9", rounded(rng.standard_t(2, 50), 4), rounded(normal(0, 5, 9), 4)),
        # b above a: negative t and d, AUC below 0.5.
        ("n15_vs_n120_b_higher", rounded(normal(-0.3, 1, 15), 4), rounded(normal(0.4, 1.3, 120), 4)),
    ]
    return [two_sample_case(name, a, b) for name, a, b in cases]


def incomplete_beta_cases():
    points = [
        (0.3, 0.5, 0.5),
        (1e-10, 0.5, 0.5),
        (0.3, 1.0, 1.0),
        (0.4, 2.0, 3.0),
        (0.2, 7.5, 0.5),
        (0.6, 25.0, 0.5),
        (0.04, 0.5, 12.5),
        (0.33, 100.0, 200.0),
        (0.49, 1e3, 1e3),
        (0.5, 1e4, 1e4),
        (0.499, 1e5, 1e5),
        (0.501, 1e5, 1e5),
        (0.77, 1e5, 3e4),
        (0.99997, 1e5, 0.5),
        (2e-5, 0.5, 1e5),
        (1e-5, 3.0, 1e5),
    ]
    return [{"x": x, "a": a, "b": b, "value": number(scipy.special.betainc(a, b, x))} for x, a, b in points]


def benjamini_hochberg_cases():
    # The 15 p-values of Benjamini & Hochberg (1995), section 4, in a shuffled order.
    paper = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240,
             0.4262, 0.5719, 0.6528, 0.7590, 1.0]
    vectors = [
        ("ties_and_one", [0.01, 0.04, 0.04, 0.03, 1.0, 0.5, 0.001, 0.04]),
        ("paper_shuffled", [paper[i] for i in rng.permutation(len(paper))]),
        ("zeros_ones_half", [1.0, 0.0, 0.5, 1.0, 0.0]),
        ("uniform_with_signals", rounded(np.concatenate([rng.uniform(0, 1, 20), rng.uniform(0, 1e-3, 5)]), 8)),
    ]
    return [{"name": name, "p": p, "q": [number(q) for q in scipy.stats.false_discovery_control(p, method="bh")]}
            for name, p in vectors]


def main():
    table = {
        "generator": "Tests/Fixtures/make_stats_fixtures.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__},
        "two_sample": two_sample_cases(),
        "incomplete_beta": incomplete_beta_cases(),
        "benjamini_hochberg": benjamini_hochberg_cases(),
    }
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w") as file:
        json.dump(table, file, sort_keys=True, indent=1, allow_nan=False)
        file.write("\n")
    print(f"wrote {OUTPUT} ({os.path.getsize(OUTPUT)} bytes)")


if __name__ == "__main__":
    main()
