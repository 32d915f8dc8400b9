#!/usr/bin/env python3
"""Reference values for the support vector classifier tests (Tests/ClassifiersTests/SVMReferenceTests.swift).

Run from the repository root with scikit-learn installed (the Swift tests never run Python,
they only read the committed JSON):

    python3 Tests/Fixtures/make_svm_fixtures.py

It writes one JSON file per case under Tests/Fixtures/SVM/, deterministic (fixed random_state
everywhere, sorted keys, no timestamps; running it twice gives identical bytes), about 0.2 MB
in all. Every case is a small data set from sklearn.datasets (rounded to 4 decimals, and every
reference computed from the rounded values, so Swift sees exactly the same inputs) fitted with
sklearn.svm.SVC (libsvm's C-SVC, tol 1e-3, shrinking on, cache 200 MB, decision_function_shape
"ovo"). Recorded per case:

- x_train [n, d], y_train [n], x_test [m, d];
- the options: kernel, C, gamma as given ("scale", "auto" or a number), degree, coef0,
  class_weight (None, "balanced" or {label: weight}), probability;
- gamma_value: the gamma libsvm used (SVC._gamma); class_weight_values: SVC.class_weight_;
- support (SVC.support_, indices into x_train), n_support (SVC.n_support_), dual_coef
  (SVC.dual_coef_ [k-1, nSV]) and intercept (SVC.intercept_, one per pair), both with
  scikit-learn's sign flip for two classes;
- n_iter: SVC.n_iter_ per pair; objective: libsvm's dual objective per pair, computed here as
  obj = 1/2 a^T Q a - sum(a) over the pair's support vectors with Q_st = y_s y_t K(x_s, x_t)
  (a_s = |dual coefficient|, y_s = +1 for the pair's first class), K in float64 with
  sklearn.metrics.pairwise kernels at gamma_value;
- decision (SVC.decision_function(x_test), [m, k(k-1)/2], or [m] for two classes),
  predict (SVC.predict(x_test));
- with probability=True: proba, the mean of predict_proba(x_test) over random_state 0..4, and
  proba_spread, the largest |p_seed - proba| over those seeds: libsvm's Platt scaling uses a
  random 5-fold split, so this measures how much the reference itself moves with the shuffle.
"""
import json
import os
import warnings

import numpy as np
from sklearn.datasets import make_blobs, make_classification
from sklearn.metrics.pairwise import linear_kernel, polynomial_kernel, rbf_kernel, sigmoid_kernel
from sklearn.svm import SVC

# SVC(probability=True) is deprecated from scikit-learn 1.9 on, still computed as libsvm does.
warnings.simplefilter("ignore", FutureWarning)

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "SVM")


def rounded(values, decimals):
    return np.round(np.asarray(values, dtype=np.float64), decimals)


def listed(values, decimals):
    return [float(v) for v in np.round(np.asarray(values, dtype=np.float64).ravel(), decimals)]


def kernel_matrix(model, a, b):
    kernel, gamma = model.kernel, model._gamma
    if kernel == "linear":
        return linear_kernel(a, b)
    if kernel == "rbf":
        return rbf_kernel(a, b, gamma=gamma)
    if kernel == "poly":
        return polynomial_kernel(a, b, degree=model.degree, gamma=gamma, coef0=model.coef0)
    return sigmoid_kernel(a, b, gamma=gamma, coef0=model.coef0)


def pair_objectives(model, x):
    """libsvm's si->obj for each one-vs-one pair, from the fitted dual coefficients."""
    k = len(model.classes_)
    coef = model._dual_coef_  # libsvm's own layout and signs (no binary flip)
    start = np.concatenate([[0], np.cumsum(model.n_support_)])
    sv = x[model.support_]
    objectives = []
    for i in range(k):
        for j in range(i + 1, k):
            rows_i = np.arange(start[i], start[i + 1])
            rows_j = np.arange(start[j], start[j + 1])
            # Coefficients y_s a_s: class i's are in row j-1, class j's in row i.
            signed = np.concatenate([coef[j - 1, rows_i], coef[i, rows_j]])
            points = np.concatenate([sv[rows_i], sv[rows_j]])
            gram = kernel_matrix(model, points, points)
            objectives.append(0.5 * signed @ gram @ signed - np.abs(signed).sum())
    return objectives


def case(name, x, y, x_test, kernel="rbf", C=1.0, gamma="scale", degree=3, coef0=0.0,
         class_weight=None, probability=False):
    x, x_test = rounded(x, 4), rounded(x_test, 4)
    y = np.asarray(y, dtype=np.int64)
    options = dict(kernel=kernel, C=C, gamma=gamma, degree=degree, coef0=coef0, class_weight=class_weight)
    model = SVC(probability=probability, random_state=0, decision_function_shape="ovo", **options).fit(x, y)
    record = {
        "name": name,
        "kernel": kernel,
        "C": C,
        "gamma": gamma if isinstance(gamma, str) else float(gamma),
        "degree": degree,
        "coef0": coef0,
        "class_weight": class_weight if not isinstance(class_weight, dict)
        else {str(label): float(w) for label, w in class_weight.items()},
        "probability": probability,
        "x_train": [listed(row, 4) for row in x],
        "y_train": [int(v) for v in y],
        "x_test": [listed(row, 4) for row in x_test],
        "classes": [int(c) for c in model.classes_],
        "gamma_value": float(model._gamma),
        "class_weight_values": listed(model.class_weight_, 12),
        "support": [int(i) for i in model.support_],
        "n_support": [int(c) for c in model.n_support_],
        "dual_coef": [listed(row, 10) for row in model.dual_coef_],
        "intercept": listed(model.intercept_, 10),
        "n_iter": [int(i) for i in np.atleast_1d(model.n_iter_)],
        "objective": listed(pair_objectives(model, x), 10),
        "decision": [listed(row, 8) for row in model.decision_function(x_test).reshape(len(x_test), -1)],
        "predict": [int(v) for v in model.predict(x_test)],
    }
    if probability:
        seeds = [model.predict_proba(x_test)] + [
            SVC(probability=True, random_state=seed, **options).fit(x, y).predict_proba(x_test) for seed in range(1, 5)]
        mean = np.mean(seeds, axis=0)
        record["proba"] = [listed(row, 8) for row in mean]
        record["proba_spread"] = round(max(float(np.abs(p - mean).max()) for p in seeds), 8)
    os.makedirs(FOLDER, exist_ok=True)
    with open(os.path.join(FOLDER, name + ".json"), "w") as f:
        json.dump(record, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")


def split(x, y, n_test):
    return x[:-n_test], y[:-n_test], x[-n_test:]


def main():
    # Well separated blobs: few support vectors, most alphas free.
    x, y = make_blobs(n_samples=100, n_features=5, centers=2, cluster_std=1.0, random_state=1)
    case("separable_linear", *split(x, y, 20), kernel="linear", C=1.0)

    # Overlapping classes (flipped labels), rbf with gamma "scale", many bounded alphas.
    x, y = make_classification(n_samples=200, n_features=10, n_informative=5, n_redundant=2,
                               flip_y=0.1, class_sep=0.8, random_state=2)
    case("overlap_rbf", *split(x, y, 50), kernel="rbf", C=1.0, probability=True)
    case("overlap_linear", *split(x, y, 50), kernel="linear", C=0.5)

    # 80/20 imbalance, plain and with balanced class weights (per-class C).
    x, y = make_classification(n_samples=180, n_features=8, n_informative=4, weights=[0.8, 0.2],
                               flip_y=0.02, class_sep=1.0, random_state=3)
    case("imbalanced_rbf", *split(x, y, 40), kernel="rbf", C=2.0)
    case("imbalanced_balanced", *split(x, y, 40), kernel="rbf", C=2.0, class_weight="balanced")

    # Three classes with non-contiguous labels, custom per-class weights, probabilities.
    x, y = make_classification(n_samples=210, n_features=12, n_informative=6, n_classes=3,
                               n_clusters_per_class=1, class_sep=1.2, flip_y=0.03, random_state=4)
    labels = np.array([3, 7, 10])[y]
    case("three_class_rbf", *split(x, labels, 60), kernel="rbf", C=2.0, probability=True)
    case("three_class_weighted", *split(x, labels, 60), kernel="rbf", C=1.0,
         class_weight={3: 2.0, 10: 0.5})

    # Four classes, linear kernel, d = 30 (more features than informative ones).
    x, y = make_classification(n_samples=200, n_features=30, n_informative=8, n_classes=4,
                               n_clusters_per_class=1, class_sep=1.0, flip_y=0.02, random_state=5)
    case("four_class_linear", *split(x, y, 40), kernel="linear", C=0.3)

    # Polynomial (degree 3, coef0 1) and sigmoid (gamma "auto") kernels.
    x, y = make_classification(n_samples=130, n_features=6, n_informative=4, class_sep=1.0,
                               flip_y=0.05, random_state=6)
    case("poly", *split(x, y, 30), kernel="poly", C=1.0, gamma="scale", degree=3, coef0=1.0)
    case("sigmoid", *split(x, y, 30), kernel="sigmoid", C=0.5, gamma="auto", coef0=0.0)


if __name__ == "__main__":
    main()
