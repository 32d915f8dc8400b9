#!/usr/bin/env python3
"""Peer figures for `adwb bench`'s volume I/O kernels, measured with nibabel on this machine.

    python reports/bench_nibabel_io.py [--shared ../shared/data] > reports/peers-nibabel-YYYY-MM-DD.json

nifti_read_mni_1mm  = nibabel.load(T1).get_fdata()          (inflate, float64 conversion)
nifti_write_mni_1mm = nibabel.save(Nifti1Image(uint8 data, affine, header), tmp.nii.gz)
                      (nibabel's default gzip level 1, as `adwb bench` writes)

T1 is the 1 mm ICBM152 2009a template (197x233x189 uint8, 8.68 MB of voxels). Timing rule as
bench_peers.py and `adwb bench`: median of 5 calls after one warm-up. MB/s counts the voxel
bytes as stored (uncompressed). nibabel and numpy run these single-threaded, so one figure is
recorded under both threads_1 and threads_2 for `adwb bench --peers`. Needs nibabel and numpy;
`adwb` itself never needs Python.
"""
import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import nibabel as nib
import numpy as np

TEMPLATE = 'mni-icbm152-2009a-sym/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz'


def median_ms(call, runs=5):
    call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shared', default='../shared/data', help='the shared data folder')
    args = parser.parse_args()
    path = os.path.join(args.shared, TEMPLATE)
    image = nib.load(path)
    stored = np.asanyarray(image.dataobj)
    megabytes = stored.nbytes / 1e6

    read_ms = median_ms(lambda: nib.load(path).get_fdata())
    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, 'out.nii.gz')
        write_ms = median_ms(lambda: nib.save(nib.Nifti1Image(stored, image.affine, image.header), output))

    figures = {
        'nifti_read_mni_1mm': {'ms': round(read_ms, 3), 'mb_per_s': round(megabytes / (read_ms / 1000), 2)},
        'nifti_write_mni_1mm': {'ms': round(write_ms, 3), 'mb_per_s': round(megabytes / (write_ms / 1000), 2)},
    }
    print(json.dumps({
        'nibabel': {
            'version': nib.__version__,
            'numpy': np.__version__,
            'python': platform.python_version(),
            'file': TEMPLATE,
            'megabytes': round(megabytes, 3),
            'threads_1': figures,
            'threads_2': figures,
        }
    }, indent=1, sort_keys=True))


if __name__ == '__main__':
    main()
