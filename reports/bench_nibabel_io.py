#!/usr/bin/env python3
"""Peer figures for `adwb bench`'s volume I/O kernels, measured with nibabel on this machine.

    python reports/bench_nibabel_io.py [--shared ../shared/data] > reports/peers-nibabel-YYYY-MM-DD.json

nifti_read_mni_1mm  = nibabel.load(T1).get_fdata()       (inflate, float64 conversion)
nifti_write_mni_1mm = nibabel.save(Nifti1Image(data, affine, header with dtype uint8), tmp.nii.gz)
                      where data is that get_fdata() array: the same task as `adwb bench`,
                      which writes its in-memory Float32 volume as the template's uint8
                      (checking values, converting, gzip level 1: nibabel's default).
Also recorded, for reference only: nifti_write_mni_1mm_stored_uint8, saving the array of
stored uint8 values as read from disk (no conversion work at all).

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
    values = image.get_fdata()
    header = image.header.copy()
    header.set_data_dtype(np.uint8)
    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, 'out.nii.gz')
        write_ms = median_ms(lambda: nib.save(nib.Nifti1Image(values, image.affine, header), output))
        assert np.array_equal(nib.load(output).get_fdata(), values)
        stored_ms = median_ms(lambda: nib.save(nib.Nifti1Image(stored, image.affine, image.header), output))

    def figure(ms):
        return {'ms': round(ms, 3), 'mb_per_s': round(megabytes / (ms / 1000), 2)}

    figures = {
        'nifti_read_mni_1mm': figure(read_ms),
        'nifti_write_mni_1mm': figure(write_ms),
        'nifti_write_mni_1mm_stored_uint8': figure(stored_ms),
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
