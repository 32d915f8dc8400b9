#!/usr/bin/env python3
"""Reference values for the resampling and reorientation tests
(Tests/PreprocessingTests/ResamplingTests.swift, ReorientationTests.swift).

Run from the repository root (needs numpy, scipy and nibabel; the Swift tests never need
Python, they only read the committed JSON):

    python3 Tests/Fixtures/make_resampling_fixtures.py

It writes Tests/Fixtures/Preprocessing/resampling_fixtures.json, deterministic (a seeded numpy
Generator, sorted keys, no timestamps; running it twice gives identical bytes), about 8 KB:

1. "interpolation": small random float32 volumes (multiples of 1/1024 in [-1, 1]) (one with axes of extent 1 and 2) and points
   in source voxel coordinates inside [0, n - 1] on every axis (random ones, the corners,
   grid points, points on the last plane), with
   - linear: scipy.ndimage.map_coordinates(order=1, mode='mirror'),
   - bspline: scipy.ndimage.map_coordinates(order=3, mode='mirror', prefilter=True),
   both in float64 on the float64 copy of the float32 values. Inside [0, n - 1] order 1 does
   not depend on the mode; order 3 uses the mirror-symmetric prefilter and extension that
   the Swift B-spline implements.
2. "canonical": for NIfTI files under Tests/Fixtures/Volumes, what
   nibabel.as_closest_canonical makes of them: shape, affine, axis codes and the values at a
   few seeded voxels of the canonical array (get_fdata, float64).
"""
import json
import os

import nibabel as nib
import numpy as np
import scipy
from scipy import ndimage

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, "Preprocessing", "resampling_fixtures.json")


def interpolation_case(name, shape, seed, random_points):
    rng = np.random.default_rng(seed)
    # Multiples of 1/1024: exact in float32 and short in JSON.
    values = (rng.integers(-1024, 1025, size=shape) / 1024).astype(np.float32)
    highs = np.array(shape, dtype=np.float64) - 1
    points = [rng.uniform(0, 1, size=3) * highs for _ in range(random_points)]
    # Corners, grid points and points on the last plane of each axis.
    for corner in range(8):
        points.append(np.array([highs[a] if corner >> a & 1 else 0.0 for a in range(3)]))
    points.append(np.floor(highs / 2))
    points.append(np.array([highs[0], 0.37 * highs[1], 0.5 * highs[2]]))
    points.append(np.array([0.25 * highs[0], highs[1], 0.9 * highs[2]]))
    points = np.array([[round(float(c), 6) for c in p] for p in points])
    data = values.astype(np.float64)
    linear = ndimage.map_coordinates(data, points.T, order=1, mode="mirror", output=np.float64)
    bspline = ndimage.map_coordinates(data, points.T, order=3, mode="mirror", prefilter=True, output=np.float64)
    return {
        "name": name,
        "shape": list(shape),
        "values": [float(v) for v in values.ravel()],
        "points": points.tolist(),
        "linear": [float(v) for v in linear],
        "bspline": [float(v) for v in bspline],
    }


def canonical_case(path, seed, probes):
    image = nib.load(os.path.join(ROOT, "Volumes", path))
    canonical = nib.as_closest_canonical(image)
    data = canonical.get_fdata()
    rng = np.random.default_rng(seed)
    voxels = [[int(rng.integers(0, n)) for n in data.shape] for _ in range(probes)]
    return {
        "path": path,
        "source_axcodes": "".join(nib.aff2axcodes(image.affine)),
        "shape": list(data.shape),
        "affine": canonical.affine.tolist(),
        "axcodes": "".join(nib.aff2axcodes(canonical.affine)),
        "probe_voxels": voxels,
        "probe_values": [float(data[tuple(v)]) for v in voxels],
    }


def main():
    fixtures = {
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "nibabel": nib.__version__},
        "interpolation": [
            interpolation_case("random 5x6x7", (5, 6, 7), seed=11, random_points=30),
            interpolation_case("thin 2x1x4", (2, 1, 4), seed=12, random_points=10),
        ],
        "canonical": [
            canonical_case("generated/anatomical_le.nii", seed=21, probes=16),
            canonical_case("generated/qform_only_qfac_neg.nii", seed=22, probes=16),
        ],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as handle:
        json.dump(fixtures, handle, sort_keys=True, separators=(",", ":"))
        handle.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
