"""Writes the scikit-learn reference fixtures for LinearSVC and FastICA.

Run with the workbench's Python environment (numpy, scipy, scikit-learn 1.9):

    /work/venv/bin/python Tests/Fixtures/make_linear_ica_fixtures.py

Matrices are stored as base64 of little-endian float32 in C order (compact, and read exactly
by Swift's JSONDecoder as `Data`); scikit-learn is fitted on the float32-rounded data, so both
sides see the same numbers. Labels and small vectors are plain JSON lists.
"""

import base64
import json
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.decomposition import FastICA
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parent


def f32(array):
    """Base64 of the array as little-endian float32, C order."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def write(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, separators=(",", ":")))
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KiB")


# ---------------------------------------------------------------------------------------------
# LinearSVC: the dual coordinate descent converges to the unique optimum, so with a tight
# tolerance the coefficients must agree whatever the visiting order.

SVC_TOL = 1e-6
SVC_MAX_ITER = 200_000


def linear_svc_dataset(name, n_train, n_test, d, classes, weights, seed):
    x, y = make_classification(
        n_samples=n_train + n_test, n_features=d, n_informative=8, n_redundant=4,
        n_classes=len(classes), n_clusters_per_class=1, weights=weights, flip_y=0.03,
        class_sep=1.0, random_state=seed)
    scaler = StandardScaler().fit(x[:n_train])
    x = scaler.transform(x).astype(np.float32)
    labels = np.asarray(classes)[y]
    x_train, y_train = x[:n_train], labels[:n_train]
    x_test, y_test = x[n_train:], labels[n_train:]
    fits = []
    for loss in ("squared_hinge", "hinge"):
        for class_weight in (None, "balanced"):
            model = LinearSVC(C=1.0, loss=loss, dual=True, tol=SVC_TOL, max_iter=SVC_MAX_ITER,
                              class_weight=class_weight, random_state=0)
            model.fit(x_train.astype(np.float64), y_train)
            fits.append({
                "loss": loss,
                "balanced": class_weight == "balanced",
                "coef": model.coef_.tolist(),
                "intercept": model.intercept_.tolist(),
                "decision": model.decision_function(x_test.astype(np.float64)).reshape(len(x_test), -1).tolist(),
                "predict": model.predict(x_test.astype(np.float64)).tolist(),
                "n_iter": int(model.n_iter_),
            })
    write(ROOT / "LinearSVC" / f"{name}.json", {
        "name": name, "c": 1.0, "tolerance": SVC_TOL, "max_iterations": SVC_MAX_ITER,
        "n_train": n_train, "n_test": n_test, "features": d,
        "x_train": f32(x_train), "y_train": y_train.tolist(),
        "x_test": f32(x_test), "y_test": y_test.tolist(),
        "fits": fits,
    })


# ---------------------------------------------------------------------------------------------
# FastICA: each case is kept only if scikit-learn finds the same sources from several random
# starts (so that a different starting matrix on our side must find them too).

def sources(kind, n, k, rng):
    if kind == "laplace":
        return rng.laplace(size=(n, k))
    if kind == "uniform":
        return rng.uniform(-np.sqrt(3), np.sqrt(3), size=(n, k))
    if kind == "subgaussian":
        t = np.linspace(0, 8 * np.pi, n)
        columns = [np.sin(t * (1 + 0.37 * j) + j) for j in range(k)]
        columns[1] = np.sign(np.sin(1.9 * t + 0.5))
        columns[2] = ((t * 0.83) % (2 * np.pi)) / np.pi - 1
        if k > 3:
            columns[3] = rng.uniform(-1, 1, size=n)
        return np.stack(columns, axis=1)
    raise ValueError(kind)


def matched_correlation(a, b):
    """Smallest |corr| of a greedy one-to-one matching of a's columns to b's."""
    corr = np.abs(np.corrcoef(a.T, b.T)[: a.shape[1], a.shape[1]:])
    worst, used = 1.0, set()
    for i in np.argsort(-corr.max(axis=1)):
        order = [j for j in np.argsort(-corr[i]) if j not in used]
        used.add(order[0])
        worst = min(worst, corr[i, order[0]])
    return worst


def fastica_case(name, kind, n, d, k, fits, seed, noise=0.05):
    rng = np.random.default_rng(seed)
    s = sources(kind, n, k, rng)
    a = rng.standard_normal((k, d))
    x = (s @ a + noise * rng.standard_normal((n, d))).astype(np.float32)
    x64 = x.astype(np.float64)
    results = []
    for algorithm, fun, solver in fits:
        def fit(state):
            model = FastICA(n_components=k, algorithm=algorithm, fun=fun, whiten="unit-variance",
                            whiten_solver=solver, max_iter=1000, tol=1e-6, random_state=state)
            return model, model.fit_transform(x64)
        model, recovered = fit(0)
        stability = min(matched_correlation(recovered, fit(state)[1]) for state in range(1, 6))
        truth = matched_correlation(recovered, s)
        print(f"  {name} {algorithm}/{fun}/{solver}: n_iter {model.n_iter_}, "
              f"stability {stability:.5f}, vs truth {truth:.4f}")
        assert stability > 0.995, "scikit-learn's solution depends on its start: pick another case"
        results.append({
            "algorithm": algorithm, "contrast": fun, "whitening": "eigen" if solver == "eigh" else "svd",
            "n_iter": int(model.n_iter_),
            "sources": f32(recovered), "components": f32(model.components_),
            "whitening_matrix": f32(model.whitening_), "mean": f32(model.mean_),
        })
    write(ROOT / "FastICA" / f"{name}.json", {
        "name": name, "n": n, "d": d, "k": k, "x": f32(x), "fits": results,
    })


def main():
    linear_svc_dataset("binary", n_train=300, n_test=200, d=20, classes=[2, 5], weights=[0.7, 0.3], seed=1)
    linear_svc_dataset("three_class", n_train=300, n_test=200, d=16, classes=[1, 4, 7],
                       weights=[0.5, 0.3, 0.2], seed=2)
    fastica_case("laplace", "laplace", n=2000, d=8, k=4, seed=10,
                 fits=[("parallel", "logcosh", "eigh"), ("deflation", "exp", "svd")])
    fastica_case("uniform", "uniform", n=1500, d=12, k=5, seed=11,
                 fits=[("parallel", "cube", "svd"), ("deflation", "logcosh", "eigh")])
    fastica_case("subgaussian", "subgaussian", n=800, d=10, k=4, seed=12,
                 fits=[("parallel", "exp", "eigh"), ("parallel", "cube", "svd")])
    fastica_case("wide_laplace", "laplace", n=1200, d=40, k=8, seed=13,
                 fits=[("parallel", "logcosh", "svd")])
    fastica_case("gram", "uniform", n=60, d=400, k=5, seed=14,
                 fits=[("parallel", "logcosh", "eigh"), ("parallel", "cube", "svd")])


if __name__ == "__main__":
    main()
