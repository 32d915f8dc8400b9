"""Binary morphology from scipy.ndimage for PreprocessingTests/MorphologyTests.

Run: python Tests/Fixtures/make_morphology_fixtures.py   (numpy, scipy)
Writes Tests/Fixtures/Preprocessing/morphology.json: small random 3-D masks and, for each,
scipy's binary_erosion (border_value 0 and 1), binary_dilation, binary_opening and
binary_closing (of the mask padded by floor(r) + 1 background voxels, then cropped) with a
ball footprint at unit voxel size, label (6-connectivity, the default structure),
the largest component and binary_fill_holes.

Masks are C-order (k fastest) bits packed by numpy.packbits (first voxel = most significant
bit of the first byte) and written as hex; labels as integer lists.
"""
import json
import os

import numpy as np
from scipy import ndimage

RADII = [1.0, 1.5, 2.0, 2.5]


def ball(radius):
    """Offsets o with |o|^2 <= r^2 (relative slack 1e-9, as the Swift ball)."""
    n = int(np.floor(radius))
    grid = np.mgrid[-n:n + 1, -n:n + 1, -n:n + 1]
    return (grid ** 2).sum(axis=0) <= radius * radius * (1 + 1e-9)


def pack(mask):
    return np.packbits(mask.astype(np.uint8).ravel()).tobytes().hex()


def case(name, mask):
    labels, count = ndimage.label(mask)
    # The Swift labels number components by their first voxel in memory order; check scipy does.
    firsts = [np.flatnonzero(labels.ravel() == c)[0] for c in range(1, count + 1)]
    assert firsts == sorted(firsts), name
    sizes = np.bincount(labels.ravel())[1:]
    largest = labels == (int(np.argmax(sizes)) + 1) if count else np.zeros_like(mask)
    entry = {
        "name": name, "shape": list(mask.shape), "mask": pack(mask),
        "labels": labels.ravel().tolist(), "component_count": int(count),
        "largest": pack(largest), "filled": pack(ndimage.binary_fill_holes(mask)),
        "balls": [],
    }
    for r in RADII:
        footprint = ball(r)
        pad = int(np.floor(r)) + 1
        closed = ndimage.binary_closing(np.pad(mask, pad), footprint)[pad:-pad, pad:-pad, pad:-pad]
        entry["balls"].append({
            "radius": r, "footprint_size": int(footprint.sum()),
            "eroded": pack(ndimage.binary_erosion(mask, footprint)),
            "eroded_border1": pack(ndimage.binary_erosion(mask, footprint, border_value=1)),
            "dilated": pack(ndimage.binary_dilation(mask, footprint)),
            "opened": pack(ndimage.binary_opening(mask, footprint)),
            "closed": pack(closed),
        })
    return entry


rng = np.random.default_rng(2024)
shape = (9, 8, 7)
blobs = ndimage.gaussian_filter(rng.standard_normal(shape), 1.2) > 0
salt = rng.random(shape) < 0.3
# Mostly foreground with scattered background voxels: many enclosed holes.
cavities = (ndimage.gaussian_filter(rng.standard_normal(shape), 1.0) > -0.4) & (rng.random(shape) > 0.12)
cases = [case("blobs", blobs), case("salt", salt), case("cavities", cavities)]
assert any((c["filled"] != c["mask"]) for c in cases), "no case has holes"
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Preprocessing", "morphology.json")
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump({"scipy": __import__("scipy").__version__, "numpy": np.__version__, "cases": cases}, f, separators=(",", ":"))
    f.write("\n")
print(out, os.path.getsize(out), "bytes", [(c["name"], c["component_count"], int(np.frombuffer(bytes.fromhex(c["mask"]), np.uint8).sum() > 0)) for c in cases])
