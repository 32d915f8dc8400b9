"""Paired-comparison statistics for ReportsTests/PairedComparisonTests.

Run: python Tests/Fixtures/make_paired_fixtures.py   (numpy, scipy, statsmodels)
Writes Tests/Fixtures/Statistics/paired_fixtures.json with
- mcnemar: discordant counts (b, c), the test used (exact binomial or chi-square with continuity
  correction) and statsmodels `mcnemar([[0, b], [c, 0]], exact=..., correction=True)`'s statistic
  and p-value (the concordant cells do not enter the test);
- corrected_t: fold-wise score differences, the test fraction and the Nadeau & Bengio (2003)
  corrected resampled t statistic, k - 1 degrees of freedom and the two-sided p-value from
  scipy.stats.t;
- percentiles: a list of values and numpy.percentile (default linear interpolation) at the
  lower and upper tails of a central interval of the given confidence.
"""
import json
import os

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar


def mcnemar_case(name, b, c, exact):
    result = mcnemar([[0, b], [c, 0]], exact=exact, correction=True)
    return {"name": name, "b": b, "c": c, "exact": exact,
            "statistic": float(result.statistic), "p": float(result.pvalue)}


def corrected_t_case(name, differences, test_fraction):
    d = np.asarray(differences, dtype=np.float64)
    k = d.size
    ratio = test_fraction / (1 - test_fraction)
    t = d.mean() / np.sqrt((1 / k + ratio) * d.var(ddof=1))
    df = k - 1
    return {"name": name, "differences": d.tolist(), "test_fraction": test_fraction,
            "t": float(t), "degrees_of_freedom": df, "p": float(2 * stats.t.sf(abs(t), df))}


def percentile_case(name, values, confidence):
    tail = (1 - confidence) / 2
    low, high = np.percentile(values, [100 * tail, 100 * (1 - tail)])
    return {"name": name, "values": list(map(float, values)), "confidence": confidence,
            "low": float(low), "high": float(high)}


rng = np.random.default_rng(2003)

mcnemar_cases = [
    mcnemar_case("small exact", 3, 9, True),
    mcnemar_case("exact one-sided extreme", 0, 7, True),
    mcnemar_case("exact balanced (capped at 1)", 6, 6, True),
    mcnemar_case("exact just below 25", 16, 8, True),
    mcnemar_case("chi-square at 25", 17, 8, False),
    mcnemar_case("chi-square large asymmetric", 40, 12, False),
    mcnemar_case("chi-square very large", 310, 250, False),
    mcnemar_case("chi-square balanced", 30, 30, False),
    mcnemar_case("exact forced on a large table", 40, 12, True),
    mcnemar_case("no discordant pairs", 0, 0, True),
]

corrected_t_cases = [
    corrected_t_case("5-fold", [0.02, 0.035, -0.01, 0.04, 0.015], 1 / 5),
    corrected_t_case("5-fold negative", [-0.05, -0.02, -0.07, -0.01, -0.04], 1 / 5),
    corrected_t_case("10-fold", rng.normal(0.01, 0.03, 10).round(6).tolist(), 1 / 10),
    corrected_t_case("10-fold strong", rng.normal(0.08, 0.02, 10).round(6).tolist(), 1 / 10),
    corrected_t_case("10x hold-out 30%", rng.normal(0.005, 0.04, 10).round(6).tolist(), 0.3),
]

percentile_cases = [
    percentile_case("95% of 199", rng.normal(0.7, 0.05, 199).round(6).tolist(), 0.95),
    percentile_case("90% of 37", rng.normal(0, 1, 37).round(6).tolist(), 0.90),
    percentile_case("99% of 11", rng.uniform(0, 1, 11).round(6).tolist(), 0.99),
]

# statsmodels' chi-square form at b + c = 0 divides 1 by 0: statistic inf, p 0. The Swift code
# returns p = 1 there instead (no discordant pair is no evidence), so that case is not listed.
with np.errstate(divide="ignore"):
    degenerate = mcnemar([[5, 0], [0, 5]], exact=False, correction=True)
assert np.isinf(degenerate.statistic) and degenerate.pvalue == 0

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Statistics", "paired_fixtures.json")
with open(out, "w") as f:
    json.dump({"mcnemar": mcnemar_cases, "corrected_t": corrected_t_cases,
               "percentiles": percentile_cases}, f, indent=1)
    f.write("\n")
print("wrote", out)
