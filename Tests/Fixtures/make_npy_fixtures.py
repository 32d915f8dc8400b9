#!/usr/bin/env python3
"""NumPy interop fixtures for NumpyFile (Tests/ExtractionTests/NumpyInteropTests.swift).

Run from the repository root (needs numpy only; the Swift tests never run Python, they only
read the committed files):

    python3 Tests/Fixtures/make_npy_fixtures.py

It writes into Tests/Fixtures/Extraction/npy/:

(a) .npy files written by numpy.save, which NumpyFile.read must read (or reject):
    - float32_2d.npy: float32 (3, 4), C order, the values of FLOAT32_2D below (with -0.0,
      1e-30, NaN, inf, the smallest subnormal);
    - float32_1d.npy: float32 (5,) = [0.5, -1, 2, -3.25, 1e+20];
    - float32_empty.npy: float32 (0, 3);
    - float64_2d.npy: float64 (2, 3) -> must be rejected (NumpyFileError.malformed, dtype);
    - float32_fortran.npy: float32 (2, 3) in Fortran order -> must be rejected (C order only).
(b) numpy_read.json: what numpy sees when it loads adwb_written.npy, a file written by
    NumpyFile.encode (Swift) and committed beside it: its shape, dtype, format version,
    header length (the u16 after the version bytes), data offset (where the values start),
    the values' float32 bit patterns (uint32) and, for reading, float.hex of each value.

adwb_written.npy itself comes from Swift, not from this script. To regenerate it (only needed
if the tensor in the Swift test changes), run the Swift tests once with
ADWB_WRITE_NPY_FIXTURE=1 in the environment (NumpyInteropTests writes the file), then run this
script again. Output is deterministic: running the script twice gives identical bytes.
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "Extraction", "npy")

FLOAT32_2D = [
    [1.0, -0.0, 1e-30, float("nan")],
    [-2.5, 3.4028234663852886e38, float("inf"), 1.401298464324817e-45],
    [0.1, -1e-30, 65504.0, -7.0],
]
FLOAT32_1D = [0.5, -1.0, 2.0, -3.25, 1e20]


def save(name, array):
    path = os.path.join(OUT, name)
    np.save(path, array, allow_pickle=False)
    return path


def write_numpy_files():
    save("float32_2d.npy", np.array(FLOAT32_2D, dtype=np.float32))
    save("float32_1d.npy", np.array(FLOAT32_1D, dtype=np.float32))
    save("float32_empty.npy", np.zeros((0, 3), dtype=np.float32))
    save("float64_2d.npy", np.arange(6, dtype=np.float64).reshape(2, 3) * 0.5)
    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert fortran.flags.f_contiguous and not fortran.flags.c_contiguous
    save("float32_fortran.npy", fortran)


def read_swift_file():
    path = os.path.join(OUT, "adwb_written.npy")
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            raw_length = f.read(2)
            header_length = int.from_bytes(raw_length, "little")
            f.seek(-2, os.SEEK_CUR)
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            raise SystemExit(f"{path}: unexpected .npy version {version}")
        data_offset = f.tell()
    array = np.load(path, allow_pickle=False)
    assert array.shape == shape and array.dtype == dtype
    flat = array.ravel(order="C")
    record = {
        "file": "adwb_written.npy",
        "version": list(version),
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "fortran_order": bool(fortran_order),
        "header_length": header_length,
        "data_offset": data_offset,
        "bits": [int(b) for b in flat.view(np.uint32)],
        "hex": [float(v).hex() for v in flat],
    }
    with open(os.path.join(OUT, "numpy_read.json"), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    write_numpy_files()
    read_swift_file()


if __name__ == "__main__":
    main()
