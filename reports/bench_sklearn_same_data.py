"""scikit-learn timed on the very matrices ADWorkbench's classifier kernels use.

bench_peers.py times scikit-learn on data it draws itself; ADWorkbench's `adwb bench` kernels
draw data by the same recipe with their own generator, so solver iteration counts (and times)
can differ between the two for reasons of data alone. This script closes that gap: it reads
the matrices `adwb bench --dump-data DIR` writes and fits scikit-learn's SVC, LinearSVC and
FastICA on them with bench_peers.py's settings and timing rule.

    swift run -c release adwb bench --dump-data /tmp/adwb-bench-data
    python reports/bench_sklearn_same_data.py /tmp/adwb-bench-data --threads 2 \
        --out reports/peers-sklearn-same-data-$(date +%F).json
    swift run -c release adwb bench --filter svc_ --filter fastica \
        --peers ../shared/peers/baseline-2026-11-30.json --peers reports/peers-sklearn-same-data-*.json

Output: {"sklearn_same_data": {"svc": [...], "linear_svc": [...], "fastica": [...]}}, each
entry with the fields bench_peers.py records (fit_ms / ms, n_support, n_iter, shapes).
Needs numpy, scikit-learn and threadpoolctl.
"""
import argparse
import json
import statistics
import time
import warnings

import numpy as np
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC, LinearSVC
from threadpoolctl import threadpool_limits

SVM_SHAPES = [(400, 512), (400, 2048), (1000, 512), (1000, 2048), (4000, 512), (4000, 2048)]
ICA_SHAPES = [(400, 20000, 20), (400, 20000, 50), (4000, 512, 20), (4000, 512, 50)]


def timed(fit, reps=5, slow_s=1.0, slow_reps=3):
    """bench_peers.py's rule: one warm-up, then 5 timed calls (3 when the warm-up took over
    slow_s); the median in ms, and the last fitted estimator."""
    t0 = time.perf_counter()
    model = fit()
    if time.perf_counter() - t0 > slow_s:
        reps = slow_reps
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        model = fit()
        samples.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(samples), 3), len(samples), model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    svc, lsvc, ica = [], [], []
    with threadpool_limits(args.threads):
        for n, d in SVM_SHAPES:
            x = np.load(f"{args.data}/svm_{n}x{d}_x.npy")
            y = np.load(f"{args.data}/svm_{n}x{d}_y.npy").astype(int)
            for kernel in ("rbf", "linear"):
                ms, runs, m = timed(lambda: SVC(kernel=kernel, C=1.0).fit(x, y))
                svc.append({"fit_ms": ms, "runs": runs, "n_train": n, "d": d, "kernel": kernel, "C": 1.0,
                            "n_support": int(m.n_support_.sum()), "n_iter": int(np.sum(m.n_iter_))})
                print(f"svc {kernel} {n}x{d}: {ms} ms, {svc[-1]['n_support']} SVs, {svc[-1]['n_iter']} iterations", flush=True)
            ms, runs, m = timed(lambda: LinearSVC(C=1.0, random_state=0).fit(x, y))
            lsvc.append({"fit_ms": ms, "runs": runs, "n_train": n, "d": d, "C": 1.0, "n_iter": int(m.n_iter_)})
            print(f"linear_svc {n}x{d}: {ms} ms, {lsvc[-1]['n_iter']} iterations", flush=True)
        for n, d, k in ICA_SHAPES:
            x = np.load(f"{args.data}/fastica_{n}x{d}_k{k}.npy")
            def fit_ica():
                estimator = FastICA(n_components=k, random_state=0, whiten="unit-variance", max_iter=200, tol=1e-4)
                estimator.fit_transform(x)  # as bench_peers.py times it
                return estimator
            ms, runs, m = timed(fit_ica)
            ica.append({"ms": ms, "runs": runs, "n_samples": n, "n_features": d, "n_components": k,
                        "threads": args.threads, "n_iter": int(m.n_iter_)})
            print(f"fastica {n}x{d} k={k}: {ms} ms, {ica[-1]['n_iter']} iterations", flush=True)
    result = {"sklearn_same_data": {"svc": svc, "linear_svc": lsvc, "fastica": ica}}
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
