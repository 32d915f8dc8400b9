#!/usr/bin/env python3
"""What nibabel reads from a small built-in synthetic cohort, for CohortTests.

Run from the repository root after `swift build -c release` (needs numpy + nibabel; the Swift
tests never need Python, they read the committed JSON):

    python3 Tests/Fixtures/make_synth_fixtures.py [--adwb .build/release/adwb]

It runs `adwb synth` with the recipe in RECIPE into a temporary folder, loads every scan, mask
and label map the manifest names with nibabel, and writes `synth_fixtures.json`: the recipe,
the manifest's rows, and per file the SHA-256 of its decompressed bytes, shape, on-disk dtype, affine, sum / min / max of
get_fdata() and the values at probe voxels. The Swift test regenerates the cohort with the same
recipe and checks (1) the files hold the same bytes as the ones nibabel read here, and (2) our
reader gives nibabel's values. Regenerate this fixture whenever the generator changes on
purpose. Deterministic: same binary, same JSON.
"""
import argparse
import csv
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import nibabel as nib

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = ["--participants", "4", "--seed", "7", "--shape", "64", "--voxel-size", "3", "--unlabeled", "0.25",
          "--second-session", "0.25"]


def describe(path):
    img = nib.load(path)
    data = img.get_fdata(dtype=np.float64)
    rng = np.random.default_rng(17)
    probes = [[int(rng.integers(0, n)) for n in data.shape] for _ in range(16)]
    # Of the decompressed bytes: other zlib builds may deflate the same bytes differently.
    with gzip.open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {
        "sha256_uncompressed": digest,
        "shape": list(data.shape),
        "dtype": str(img.get_data_dtype()),
        "affine": [float(v) for v in img.affine.flatten()],
        "sum": float(data.sum()),
        "min": float(data.min()),
        "max": float(data.max()),
        "nonzero": int(np.count_nonzero(data)),
        "probes": [{"voxel": p, "value": float(data[tuple(p)])} for p in probes],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adwb", default=".build/release/adwb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([args.adwb, "synth", *RECIPE, "--out", out], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "manifest.tsv"), newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        files = {}
        for row in rows:
            for column in ("path", "mask_path", "label_path"):
                files[row[column]] = describe(os.path.join(out, row[column]))
    fixture = {
        "generated_by": "Tests/Fixtures/make_synth_fixtures.py",
        "nibabel": nib.__version__,
        "recipe": RECIPE,
        "rows": [{k: row[k] for k in ("participant_id", "session_id", "path", "diagnosis", "mask_path", "label_path")} for row in rows],
        "files": files,
    }
    with open(os.path.join(HERE, "synth_fixtures.json"), "w") as f:
        json.dump(fixture, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {os.path.join(HERE, 'synth_fixtures.json')}: {len(rows)} rows, {len(files)} files", file=sys.stderr)


if __name__ == "__main__":
    main()
