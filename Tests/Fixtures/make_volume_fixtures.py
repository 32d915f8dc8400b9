#!/usr/bin/env python3
"""NIfTI-1 / NIfTI-2 / Analyze 7.5 reference fixtures for the volume reader/writer tests.

Run from the repository root (needs numpy + nibabel 5.4.2; the Swift tests never need Python,
they only read the committed files and JSON):

    python3 Tests/Fixtures/make_volume_fixtures.py \
        [--shared ../shared/data] [--adwb PATH_TO_adwb_BINARY]

What it makes / checks (everything deterministic: fixed seeds, mtime-0 gzip without file names,
sorted JSON keys, no timestamps, no absolute paths; running it twice gives identical bytes):

1. `Volumes/shared-copies/...`: copies of a few small real files from the shared data folder,
   same sub-path as there, each verified against its SHA256SUMS while copying (with --shared)
   and afterwards against `Volumes/shared-copies/SHA256SUMS` (always). Licence notices are
   copied next to them. Without --shared the existing copies are verified and used.
2. `Volumes/generated/...`: small synthetic files written here (nibabel and a tiny raw writer
   for exact header control) covering what the real files do not: every datatype in both byte
   orders, LE/BE twins, Analyze with gzipped .img, SPM origin + scale, NIfTI-2 single and pair,
   gzipped NIfTI-1 pair, qform-only (qfac -1), no transform, sform != qform, scl_slope/inter,
   scl_slope 0, NaN/Inf, 4-D with an extension, and broken files (truncated gzip / bad CRC /
   truncated .nii / empty / bad magic / .hdr without .img). This folder is owned by the
   script: files in it that the script does not make are deleted.
3. `volume_fixtures.json`: what nibabel says about every volume file under `Volumes/`
   (except `written/`) and, with --shared, every .nii/.nii.gz/.hdr under the shared folder:
   class, error, byte order, shape, on-disk dtype, q/sform codes, affine, zooms, scaling,
   offsets, extension codes and nan-aware statistics / probe voxels of get_fdata().
   Non-finite floats are written as the strings "NaN", "Infinity", "-Infinity" (decode in
   Swift with JSONDecoder.nonConformingFloatDecodingStrategy = .convertFromString).
   Header fields come from the header as stored on disk (nibabel resets scl_slope/inter and
   vox_offset in img.header after loading). Fields beyond the brief: header_shape (dims in the
   header; differs from shape only for CIFTI, where volume stats use header_shape),
   scl_slope_raw / scl_inter_raw (stored values; slope/inter are get_slope_inter()),
   loaded_via ("nib.load", or "from_file_map(.hdr + .img.gz)" when nib.load cannot find the
   gzipped image of an Analyze pair), gzip_error (what a full gzip decompression says: nibabel
   reads only the bytes it needs and never checks the CRC) and warnings (Python warnings).
   Probe points are seeded by the shape, so byte-order twins share them.
4. `Volumes/written/...` + the "written" list: with --adwb, runs
   `adwb convert SOURCE OUTPUT --datatype DT [--volume N]` for each job in WRITE_JOBS, loads
   the output with nibabel and checks data and affine against the source (exit status 1 on a
   mismatch, JSON left untouched). Without --adwb, existing written files are re-checked and
   recorded the same way and missing ones are skipped, so the JSON stays stable.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
import zlib

import numpy as np
import nibabel as nib
from nibabel.affines import voxel_sizes
from nibabel.openers import ImageOpener

HERE = os.path.dirname(os.path.abspath(__file__))
VOLUMES = os.path.join(HERE, 'Volumes')
COPIES = os.path.join(VOLUMES, 'shared-copies')
GENERATED = os.path.join(VOLUMES, 'generated')
WRITTEN = os.path.join(VOLUMES, 'written')
JSON_PATH = os.path.join(HERE, 'volume_fixtures.json')

# Small real files copied from the shared data folder (paths relative to it).
SHARED_COPIES = [
    'nifti-edge-cases/nibabel/anatomical.nii',
    'nifti-edge-cases/nibabel/functional.nii',
    'nifti-edge-cases/nibabel/example_nifti2.nii.gz',
    'nifti-edge-cases/nibabel/standard.nii.gz',
    'nifti-edge-cases/nibabel/reoriented_anat_moved.nii',
    'nifti-edge-cases/nibabel/example4d.nii.gz',
    'nifti-edge-cases/nibabel/nifti1.hdr',
    'nifti-edge-cases/nibabel/nifti2.hdr',
    'nifti-edge-cases/nibabel/analyze.hdr',
    'nifti-edge-cases/generated/anatomical_analyze75.hdr',
    'nifti-edge-cases/generated/anatomical_analyze75.img',
    'nifti-edge-cases/generated/anatomical_nifti1pair.hdr',
    'nifti-edge-cases/generated/anatomical_nifti1pair.img',
    'nifti-edge-cases/generated/anatomical_float64.nii.gz',
    'nifti-edge-cases/generated/anatomical_int8_label.nii',
    'nifti-edge-cases/dipy/aniso_vox.nii.gz',
    'nifti-edge-cases/dipy/small_101D.nii.gz',
    'nifti-edge-cases/nifticlib/ATestReferenceImageForReadingAndWriting.nii.gz',
    'mni-icbm152-2009a-sym/derived/mni_icbm152_brain_mask_sym_09a_2mm_derived.nii.gz',
    'mni-icbm152-2009a-sym/derived/mni_icbm152_t1_sym_09a_2mm_derived.nii.gz',
]
# Licence notices (not in SHA256SUMS) copied alongside.
SHARED_LICENCES = [
    'nifti-edge-cases/nibabel/COPYING-nibabel.txt',
    'nifti-edge-cases/dipy/LICENSE-dipy.txt',
    'nifti-edge-cases/nifticlib/copyright-debian-libnifti2-2.txt',
    'mni-icbm152-2009a-sym/NOTICE-MNI-ICBM152-2009.txt',
    'mni-icbm152-2009a-sym/LICENSE-nilearn.txt',
]

COPY = 'shared-copies/'
ANAT = COPY + 'nifti-edge-cases/nibabel/anatomical.nii'
ANALYZE75 = COPY + 'nifti-edge-cases/generated/anatomical_analyze75.hdr'

# (source root, source path, output name under Volumes/, datatype, volume index or None)
WRITE_JOBS = [
    ('fixtures', ANAT, 'written/anatomical_float32.nii.gz', 'float32', None),
    ('fixtures', ANAT, 'written/anatomical_int16.nii', 'int16', None),
    ('fixtures', COPY + 'mni-icbm152-2009a-sym/derived/'
     'mni_icbm152_brain_mask_sym_09a_2mm_derived.nii.gz',
     'written/mask_uint8.nii.gz', 'uint8', None),
    ('fixtures', COPY + 'nifti-edge-cases/nibabel/example4d.nii.gz',
     'written/example4d_v1_float32.nii.gz', 'float32', 1),
    ('fixtures', COPY + 'nifti-edge-cases/nibabel/functional.nii',
     'written/functional_v3_int16_scaled.nii.gz', 'int16', 3),
    ('fixtures', COPY + 'nifti-edge-cases/dipy/aniso_vox.nii.gz',
     'written/aniso_float32.nii.gz', 'float32', None),
]

DTYPES = ['uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64',
          'float32', 'float64']
LICENCE_NAMES = ('README.md', 'SHA256SUMS')


# ----------------------------------------------------------------------------- helpers

def seed_for(text):
    return zlib.crc32(text.encode('utf-8'))


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    with open(path, 'rb') as f:
        return sha256_bytes(f.read())


def gz(b):
    """Deterministic gzip: level 9, mtime 0, no file name in the header."""
    return gzip.compress(b, compresslevel=9, mtime=0)


def write_bytes(path, b):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(b)


def header_bytes(hdr):
    bio = io.BytesIO()
    hdr.write_to(bio)
    return bio.getvalue()


def data_bytes(hdr, data):
    return np.asarray(data).astype(hdr.get_data_dtype()).tobytes(order='F')


def write_single(path, hdr, data):
    """NIfTI single file (.nii or .nii.gz): header, extensions, padding to vox_offset, data."""
    hdr.set_data_shape(data.shape)
    head = header_bytes(hdr)
    off = int(hdr['vox_offset'])
    assert len(head) <= off, (path, len(head), off)
    b = head + b'\x00' * (off - len(head)) + data_bytes(hdr, data)
    write_bytes(path, gz(b) if path.endswith('.gz') else b)
    return b


def write_pair(hdr_path, img_path, hdr, data):
    hdr.set_data_shape(data.shape)
    h = header_bytes(hdr)
    d = data_bytes(hdr, data)
    write_bytes(hdr_path, gz(h) if hdr_path.endswith('.gz') else h)
    write_bytes(img_path, gz(d) if img_path.endswith('.gz') else d)


def rot(ax, deg):
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    m = np.eye(4)
    i, j = [(1, 2), (0, 2), (0, 1)][ax]
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def affine_from(zooms, rotations=(), offset=(0, 0, 0)):
    m = np.eye(4)
    for ax, deg in rotations:
        m = m @ rot(ax, deg)
    m = m @ np.diag(list(zooms) + [1.0])
    m[:3, 3] = offset
    return m


# ----------------------------------------------------------------------------- copies

def read_sums(path):
    sums = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                h, name = line.split(None, 1)
                sums[name.lstrip('*')] = h
    return sums


def copy_shared(shared):
    sums_path = os.path.join(COPIES, 'SHA256SUMS')
    if shared is not None:
        sums = read_sums(os.path.join(shared, 'SHA256SUMS'))
        lines = []
        for rel in SHARED_COPIES:
            src = os.path.join(shared, rel)
            with open(src, 'rb') as f:
                b = f.read()
            h = sha256_bytes(b)
            if sums.get(rel) != h:
                sys.exit(f'sha256 mismatch for {rel}: {h} vs SHA256SUMS {sums.get(rel)}')
            write_bytes(os.path.join(COPIES, rel), b)
            lines.append(f'{h}  {rel}\n')
        for rel in SHARED_LICENCES:
            with open(os.path.join(shared, rel), 'rb') as f:
                write_bytes(os.path.join(COPIES, rel), f.read())
        write_bytes(sums_path, ''.join(lines).encode())
    if not os.path.exists(sums_path):
        sys.exit('no shared copies yet: run once with --shared PATH_TO/shared/data')
    for rel, h in read_sums(sums_path).items():
        p = os.path.join(COPIES, rel)
        if not os.path.exists(p) or sha256_file(p) != h:
            sys.exit(f'shared copy missing or altered: {rel}')


# ----------------------------------------------------------------------------- generated

def dtype_values(name, shape):
    """Seeded values spanning the type's useful range (exactly representable in float64)."""
    rng = np.random.default_rng(seed_for('dtype_' + name))
    n = int(np.prod(shape))
    dt = np.dtype(name)
    if dt.kind in 'iu':
        if dt.itemsize <= 4:
            info = np.iinfo(dt)
            v = rng.integers(info.min, info.max, size=n, endpoint=True, dtype=np.int64)
            extremes = [info.min, info.max, 0, 1] + ([-1] if dt.kind == 'i' else [])
        elif dt.kind == 'i':  # int64
            v = rng.integers(-2**40, 2**40, size=n, endpoint=True, dtype=np.int64)
            extremes = [-2**53, 2**53, 0, -1, 2**40, -2**40]
        else:  # uint64: also values above Int64.max (exact in float64)
            v = rng.integers(0, 2**40, size=n, endpoint=True, dtype=np.int64).astype(np.uint64)
            extremes = [0, 2**64 - 2048, 2**63 + 2048, 2**53, 2**40]
        v = v.astype(dt)
        v[:len(extremes)] = np.array(extremes, dtype=object).astype(dt)
    else:
        scale = 1e6 if name == 'float32' else 1e12
        v = (rng.standard_normal(n) * scale).astype(dt)
        tiny = np.finfo(dt).tiny
        extremes = [-scale * 3.75, scale * 3.5 + 0.5, 0.0, -0.0, 0.1, -1.0 / 3.0, tiny, -tiny]
        v[:len(extremes)] = np.array(extremes, dtype=dt)
    # spread the extremes over the volume (seeded), with the first extreme at voxel (0,0,0)
    # and the second at the last voxel
    out = v[rng.permutation(n)]
    for pos, src in ((0, 0), (n - 1, 1)):
        j = int(np.flatnonzero(out == v[src])[0])
        out[[pos, j]] = out[[j, pos]]
    return out.reshape(shape, order='F')


def gen_dtypes(out):
    shape = (7, 6, 5)
    aff = affine_from((1.5, 2.0, 2.5), offset=(-4.5, -5.0, -5.0))
    made = {}
    for name in DTYPES:
        data = dtype_values(name, shape)
        for endian, tag in (('<', 'le'), ('>', 'be')):
            hdr = nib.Nifti1Header(endianness=endian)
            hdr.set_data_dtype(np.dtype(name))
            hdr.set_data_shape(shape)
            hdr.set_qform(aff, code=1)
            hdr.set_sform(aff, code=1)
            hdr.set_xyzt_units('mm', 'sec')
            hdr['descrip'] = f'ADWorkbench dtype fixture {name} {tag}'.encode()
            path = os.path.join(out, f'dtype_{name}_{tag}.nii')
            write_single(path, hdr, data)
            made[path] = data
    return made


def gen_twins(out):
    # little-endian twin of the big-endian anatomical.nii: same header fields, data, affine
    with ImageOpener(os.path.join(VOLUMES, ANAT)) as f:
        hdr = nib.Nifti1Header.from_fileobj(f)
    data = np.asanyarray(nib.load(os.path.join(VOLUMES, ANAT)).dataobj)
    le = hdr.as_byteswapped('<')
    write_single(os.path.join(out, 'anatomical_le.nii'), le, data)

    # Analyze 7.5 pair: big-endian twin, and a twin whose .img is gzipped (.hdr plain)
    hdr_path = os.path.join(VOLUMES, ANALYZE75)
    with open(hdr_path, 'rb') as f:
        hbytes = f.read()
    ahdr = nib.AnalyzeHeader.from_fileobj(io.BytesIO(hbytes))
    with open(hdr_path[:-4] + '.img', 'rb') as f:
        ibytes = f.read()
    adata = np.frombuffer(ibytes, ahdr.get_data_dtype()).reshape(ahdr.get_data_shape(), order='F')
    be = ahdr.as_byteswapped('>')
    write_pair(os.path.join(out, 'anatomical_analyze75_be.hdr'),
               os.path.join(out, 'anatomical_analyze75_be.img'), be, adata)
    write_bytes(os.path.join(out, 'anatomical_analyze75_gz.hdr'), hbytes)
    write_bytes(os.path.join(out, 'anatomical_analyze75_gz.img.gz'), gz(ibytes))


def ramp(shape, dtype, lo, hi, seed):
    rng = np.random.default_rng(seed_for(seed))
    v = rng.integers(lo, hi, size=shape, endpoint=True)
    return v.astype(dtype)


def gen_misc(out):
    p = lambda name: os.path.join(out, name)  # noqa: E731

    # SPM-flavoured Analyze: origin (1-based voxel of the world origin) + scale in funused1
    hdr = nib.Spm2AnalyzeHeader(endianness='<')
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((9, 8, 7))
    hdr.set_zooms((2.0, 3.0, 4.0))
    hdr['origin'][:3] = (5, 4, 3)
    hdr['scl_slope'] = 0.25
    hdr['descrip'] = b'ADWorkbench SPM origin + scale fixture'
    write_pair(p('spm_origin_scaled.hdr'), p('spm_origin_scaled.img'), hdr,
               ramp((9, 8, 7), np.int16, -1000, 4000, 'spm'))

    # NIfTI-2 single file: float32, oblique, qform 1 / sform 2 (same affine)
    aff = affine_from((1.25, 1.5, 2.0), [(0, 12.0), (2, -7.0)], (-6.0, -8.5, 4.25))
    hdr = nib.Nifti2Header()
    hdr.set_data_dtype(np.float32)
    hdr.set_data_shape((11, 9, 7))
    hdr.set_qform(aff, code=1)
    hdr.set_sform(aff, code=2)
    hdr.set_xyzt_units('mm')
    rng = np.random.default_rng(seed_for('nifti2_single'))
    write_single(p('nifti2_single.nii'), hdr,
                 (rng.standard_normal((11, 9, 7)) * 100 + 50).astype(np.float32))

    # NIfTI-2 pair (magic ni2): int16 4-D with scl_slope 2 / scl_inter -10
    aff = affine_from((3.0, 3.0, 3.5), offset=(-9.0, -7.5, -6.0))
    hdr = nib.nifti2.Nifti2PairHeader()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((6, 5, 4, 3))
    hdr.set_qform(aff, code=1)
    hdr.set_sform(aff, code=1)
    hdr.set_xyzt_units('mm', 'sec')
    hdr.set_slope_inter(2.0, -10.0)
    write_pair(p('nifti2_pair.hdr'), p('nifti2_pair.img'), hdr,
               ramp((6, 5, 4, 3), np.int16, -500, 500, 'nifti2_pair'))

    # NIfTI-1 pair, both files gzipped
    aff = affine_from((2.0, 2.0, 2.0), offset=(-7.0, -6.0, -5.0))
    hdr = nib.nifti1.Nifti1PairHeader()
    hdr.set_data_dtype(np.uint16)
    hdr.set_data_shape((8, 7, 6))
    hdr.set_qform(aff, code=2)
    hdr.set_sform(aff, code=2)
    hdr.set_xyzt_units('mm')
    write_pair(p('nifti1_pair_gz.hdr.gz'), p('nifti1_pair_gz.img.gz'), hdr,
               ramp((8, 7, 6), np.uint16, 0, 65535, 'nifti1_pair_gz'))

    # qform only (sform_code 0), oblique, det < 0 so qfac = -1
    aff = affine_from((2.0, 2.5, -3.0), [(2, 20.0), (0, -10.0)], (30.0, -20.0, 10.0))
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((8, 7, 6))
    hdr.set_qform(aff, code=1)
    hdr.set_sform(None, code=0)
    hdr.set_xyzt_units('mm')
    assert hdr['pixdim'][0] == -1
    write_single(p('qform_only_qfac_neg.nii'), hdr, ramp((8, 7, 6), np.int16, -100, 900, 'qonly'))

    # no transform at all: qform_code 0, sform_code 0 (pixdim fall-back)
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.uint8)
    hdr.set_data_shape((8, 7, 6))
    hdr.set_zooms((2.5, 2.0, 3.0))
    hdr.set_xyzt_units('mm')
    write_single(p('no_xform.nii'), hdr, ramp((8, 7, 6), np.uint8, 0, 255, 'noxform'))

    # sform and qform both set, different: sform must win
    qaff = affine_from((2.0, 2.0, 2.0), offset=(-8.0, -7.0, -6.0))
    saff = affine_from((2.0, 2.0, 2.0), [(2, 15.0)], (10.0, 20.0, 30.0))
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((8, 7, 6))
    hdr.set_qform(qaff, code=1)
    hdr.set_sform(saff, code=4)
    hdr.set_xyzt_units('mm')
    write_single(p('sform_wins.nii'), hdr, ramp((8, 7, 6), np.int16, 0, 1000, 'sformwins'))

    # int16 with scl_slope 0.5 / scl_inter -100.25 (both exact in float32), gzipped
    aff = affine_from((1.0, 1.0, 1.5), offset=(-5.5, -4.5, -5.25))
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((12, 10, 8))
    hdr.set_qform(aff, code=1)
    hdr.set_sform(aff, code=1)
    hdr.set_xyzt_units('mm')
    hdr.set_slope_inter(0.5, -100.25)
    scaled = write_single(p('scaled_int16.nii.gz'), hdr,
                          ramp((12, 10, 8), np.int16, -32768, 32767, 'scaled'))

    # scl_slope 0 (= no scaling) with a non-zero scl_inter that must be ignored
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((6, 5, 4))
    hdr.set_qform(aff, code=1)
    hdr.set_sform(aff, code=1)
    hdr['scl_slope'] = 0.0
    hdr['scl_inter'] = 50.0
    write_single(p('slope_zero.nii'), hdr, ramp((6, 5, 4), np.int16, -20, 20, 'slopezero'))

    # float32 with NaN / +Inf / -Inf
    rng = np.random.default_rng(seed_for('nonfinite'))
    nf = (rng.standard_normal((6, 5, 4)) * 10).astype(np.float32)
    nf[0, 0, 0] = np.nan
    nf[5, 4, 3] = np.inf
    nf[2, 3, 1] = np.nan
    nf[3, 1, 2] = -np.inf
    nf[1, 2, 3] = np.nan
    nf[4, 0, 2] = np.inf
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.float32)
    hdr.set_data_shape(nf.shape)
    hdr.set_qform(aff, code=1)
    hdr.set_sform(aff, code=1)
    write_single(p('nonfinite_float32.nii'), hdr, nf)

    # 4-D, 3 different volumes, comment extension (code 6) so vox_offset > 352
    base = ramp((10, 9, 8), np.int32, 0, 999, 'fourd')
    four = np.stack([base + 1000 * t * (1 if t % 2 == 0 else -1) for t in range(3)], axis=-1)
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape(four.shape)
    aff4 = affine_from((2.0, 2.0, 2.5), [(0, 5.0)], (-9.0, -8.0, -10.0))
    hdr.set_qform(aff4, code=1)
    hdr.set_sform(aff4, code=1)
    hdr.set_zooms((2.0, 2.0, 2.5, 1.5))
    hdr.set_xyzt_units('mm', 'sec')
    hdr.extensions.append(nib.nifti1.Nifti1Extension(
        6, b'ADWorkbench fixture: 3 volumes, volume t = base + (-1)^t * 1000 * t\x00'))
    write_single(p('four_d_int16.nii.gz'), hdr, four.astype(np.int16))

    # ---- broken files ("nibabel rejects" cases)
    comp = gz(scaled)
    write_bytes(p('truncated.nii.gz'), comp[:int(len(comp) * 0.6)])
    bad = bytearray(comp)
    bad[-8] ^= 0xFF  # first byte of the CRC32 trailer
    write_bytes(p('bad_crc.nii.gz'), bytes(bad))
    with open(p('dtype_int16_le.nii'), 'rb') as f:
        good = f.read()
    write_bytes(p('truncated.nii'), good[:352 + (len(good) - 352) // 2])
    write_bytes(p('empty.nii'), b'')
    garbage = bytearray(good)
    garbage[344:348] = b'\xde\xad\xbe\xef'
    write_bytes(p('bad_magic.nii'), bytes(garbage))
    hdr = nib.nifti1.Nifti1PairHeader()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((8, 7, 6))
    hdr.set_qform(qaff, code=1)
    hdr.set_sform(qaff, code=1)
    write_bytes(p('orphan.hdr'), header_bytes(hdr))


def make_generated():
    os.makedirs(GENERATED, exist_ok=True)
    gen_dtypes(GENERATED)
    gen_twins(GENERATED)
    gen_misc(GENERATED)
    after = set(os.listdir(GENERATED))
    expected = set(EXPECTED_GENERATED)
    missing = expected - after
    if missing:
        sys.exit(f'generated files missing: {sorted(missing)}')
    for stale in sorted(after - expected):
        os.remove(os.path.join(GENERATED, stale))
        print('removed stale', stale)


EXPECTED_GENERATED = (
    [f'dtype_{n}_{e}.nii' for n in DTYPES for e in ('le', 'be')]
    + ['anatomical_le.nii', 'anatomical_analyze75_be.hdr', 'anatomical_analyze75_be.img',
       'anatomical_analyze75_gz.hdr', 'anatomical_analyze75_gz.img.gz',
       'spm_origin_scaled.hdr', 'spm_origin_scaled.img', 'nifti2_single.nii',
       'nifti2_pair.hdr', 'nifti2_pair.img', 'nifti1_pair_gz.hdr.gz', 'nifti1_pair_gz.img.gz',
       'qform_only_qfac_neg.nii', 'no_xform.nii', 'sform_wins.nii', 'scaled_int16.nii.gz',
       'slope_zero.nii', 'nonfinite_float32.nii', 'four_d_int16.nii.gz', 'truncated.nii.gz',
       'bad_crc.nii.gz', 'truncated.nii', 'empty.nii', 'bad_magic.nii', 'orphan.hdr'])


# ----------------------------------------------------------------------------- records

def jnum(x):
    """JSON-safe number: finite floats as float, non-finite as strings."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    if np.isnan(x):
        return 'NaN'
    if np.isinf(x):
        return 'Infinity' if x > 0 else '-Infinity'
    return x


def stats(a):
    a = np.asarray(a, dtype=np.float64)
    fin = np.isfinite(a)
    v = a[fin]
    n = int(v.size)
    s = float(np.sum(v)) if n else 0.0
    return {
        'sum': jnum(s),
        'mean': jnum(s / n) if n else None,
        'min': jnum(np.min(v)) if n else None,
        'max': jnum(np.max(v)) if n else None,
        'nonfinite': int(a.size - n),
    }


def probes(data4):
    """~8 voxels incl. both corners, seeded by the shape (so twins share probe points), plus
    the first NaN and first +-Inf if any (F order); duplicates dropped."""
    nx, ny, nz, nt = data4.shape
    pts = [(0, 0, 0, 0), (nx - 1, ny - 1, nz - 1, nt - 1), (nx - 1, 0, 0, 0),
           (0, ny - 1, nz - 1, nt - 1)]
    rng = np.random.default_rng(seed_for('probe %d %d %d %d' % data4.shape))
    for _ in range(4):
        pts.append(tuple(int(rng.integers(0, n)) for n in (nx, ny, nz, nt)))
    flat = data4.reshape(-1, order='F')
    for cond in (np.isnan(flat), np.isinf(flat)):
        idx = np.flatnonzero(cond)
        if idx.size:
            pts.append(tuple(int(c) for c in np.unravel_index(idx[0], data4.shape, order='F')))
    out, seen = [], set()
    for pt in pts:
        if pt not in seen:
            seen.add(pt)
            out.append([*pt, jnum(data4[pt])])
    return out


def scrub(msg, root):
    for r in (os.path.abspath(root) + os.sep, os.path.abspath(root)):
        msg = msg.replace(r, '')
    return msg


def raw_header(img):
    """The header exactly as stored (nibabel resets scl_* and vox_offset on load)."""
    fm = img.file_map
    fh = fm['header'] if 'header' in fm else fm['image']
    klass = nib.Nifti2Header if isinstance(img, nib.Cifti2Image) else img.header_class
    with ImageOpener(fh.filename) as f:
        return klass.from_fileobj(f)


def record(root_name, root, rel):
    rec = {
        'root': root_name, 'path': rel, 'nibabel_class': None, 'error': None,
        'header_loads': False, 'byte_order': None, 'shape': None, 'header_shape': None,
        'datatype': None, 'datatype_code': None, 'qform_code': None, 'sform_code': None,
        'affine': None, 'zooms': None, 'voxel_size': None, 'axcodes': None,
        'slope': None, 'inter': None, 'scl_slope_raw': None, 'scl_inter_raw': None,
        'vox_offset': None, 'dim_info': None, 'xyzt_units': None, 'extension_codes': [],
        'volume_count': None, 'volume0': None, 'last_volume': None, 'all': None,
        'probe': None, 'warnings': [], 'loaded_via': None, 'gzip_error': None,
    }
    if rel.endswith('.gz'):
        # nibabel reads only the bytes it needs, so it never sees a bad CRC / ISIZE trailer;
        # this is what a full decompression of the file says
        try:
            decompressed(os.path.join(root, rel))
        except Exception as e:  # noqa: BLE001
            rec['gzip_error'] = f'{type(e).__name__}: {e}'
    cwd = os.getcwd()
    os.chdir(root)
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            try:
                img = nib.load(rel)
            except Exception as e:  # noqa: BLE001
                rec['error'] = scrub(f'{type(e).__name__}: {e}', root)
                return rec
            rec['nibabel_class'] = type(img).__name__
            hdr = raw_header(img)
            rec['header_loads'] = True
            rec['byte_order'] = hdr.endianness
            rec['shape'] = [int(n) for n in img.shape]
            hshape = tuple(int(n) for n in hdr.get_data_shape())
            rec['header_shape'] = list(hshape)
            dt = hdr.get_data_dtype()
            rec['datatype'] = dt.name
            rec['datatype_code'] = int(hdr['datatype'])
            is_nifti = isinstance(hdr, nib.Nifti1Header)
            if is_nifti:
                rec['qform_code'] = int(hdr['qform_code'])
                rec['sform_code'] = int(hdr['sform_code'])
                rec['dim_info'] = int(hdr['dim_info'])
                rec['xyzt_units'] = int(hdr['xyzt_units'])
                rec['extension_codes'] = [int(e.get_code()) for e in hdr.extensions]
            affine = getattr(img, 'affine', None)
            if affine is not None:
                rec['affine'] = [[jnum(v) for v in row] for row in affine]
                rec['voxel_size'] = [jnum(v) for v in voxel_sizes(affine)]
                rec['axcodes'] = ''.join(nib.aff2axcodes(affine))
            rec['zooms'] = [jnum(z) for z in hdr.get_zooms()]
            slope, inter = hdr.get_slope_inter()
            rec['slope'], rec['inter'] = jnum(slope), jnum(inter)
            if 'scl_slope' in hdr:
                rec['scl_slope_raw'] = jnum(hdr['scl_slope'])
            if 'scl_inter' in hdr:
                rec['scl_inter_raw'] = jnum(hdr['scl_inter'])
            rec['vox_offset'] = int(hdr['vox_offset'])
            rec['volume_count'] = int(np.prod(hshape[3:])) if len(hshape) > 3 else 1
            try:
                data = img.get_fdata()
                rec['loaded_via'] = 'nib.load'
            except Exception as e:  # noqa: BLE001
                rec['error'] = scrub(f'{type(e).__name__}: {e}', root)
                data = fallback_data(img, rel)
                if data is None:
                    return rec
                rec['loaded_via'] = 'from_file_map(.hdr + .img.gz)'
            d4 = np.asarray(data).reshape(hshape[:3] + (-1,), order='F')
            rec['volume0'] = stats(d4[..., 0])
            rec['last_volume'] = stats(d4[..., -1])
            rec['all'] = stats(data)
            rec['probe'] = probes(d4)
    finally:
        rec['warnings'] = sorted({scrub(f'{w.category.__name__}: {w.message}', root)
                                  for w in caught})
        os.chdir(cwd)
    return rec


def fallback_data(img, rel):
    """Analyze/NIfTI pair whose image is gzipped while the header is not (.hdr + .img.gz):
    nib.load looks only for .img, so open the image ourselves and let nibabel decode it."""
    if not rel.endswith('.hdr') or not os.path.exists(rel[:-4] + '.img.gz'):
        return None
    fm = type(img).make_file_map()
    fm['header'].filename = rel
    fm['image'].filename = rel[:-4] + '.img.gz'
    if 'mat' in fm:
        fm['mat'].filename = rel[:-4] + '.mat'
    img2 = type(img).from_file_map(fm)
    data = img2.get_fdata()
    return data


def volume_files(base, skip_dirs=()):
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        relroot = os.path.relpath(dirpath, base)
        if relroot.split(os.sep)[0] in skip_dirs:
            continue
        for fn in sorted(filenames):
            if fn.endswith(('.nii', '.nii.gz', '.hdr', '.hdr.gz')):
                out.append(os.path.normpath(os.path.join(relroot, fn)).replace(os.sep, '/'))
    return sorted(out)


# ----------------------------------------------------------------------------- written

def load_volume(path, volume):
    img = nib.load(path)
    data = img.get_fdata()
    if volume is not None:
        data = data.reshape(data.shape[:3] + (-1,), order='F')[..., volume]
    return img, data


def decompressed(path):
    with open(path, 'rb') as f:
        b = f.read()
    return gzip.decompress(b) if path.endswith('.gz') else b


def check_written(job, adwb):
    root_name, src_rel, out_rel, dt, volume = job
    src = os.path.join(VOLUMES, src_rel)
    out = os.path.join(VOLUMES, out_rel)
    cmd_shown = f'adwb convert {root_name}:{src_rel} {out_rel} --datatype {dt}' + (
        f' --volume {volume}' if volume is not None else '')
    if adwb is not None:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if os.path.exists(out):
            os.remove(out)
        cmd = [adwb, 'convert', src, out, '--datatype', dt]
        if volume is not None:
            cmd += ['--volume', str(volume)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            return None, [f'{cmd_shown}: exit {r.returncode}: {r.stderr.strip()[-2000:]}']
    elif not os.path.exists(out):
        return None, []
    problems = []
    simg, sdata = load_volume(src, volume)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        oimg = nib.load(out)
        odata = oimg.get_fdata()
    ohdr = raw_header(oimg)
    if type(oimg).__name__ != 'Nifti1Image':
        problems.append(f'{out_rel}: nibabel class {type(oimg).__name__}, want Nifti1Image')
    if ohdr.get_data_dtype().name != dt:
        problems.append(f'{out_rel}: on-disk dtype {ohdr.get_data_dtype().name}, want {dt}')
    if tuple(odata.shape) != tuple(sdata.shape):
        problems.append(f'{out_rel}: shape {odata.shape}, want {sdata.shape}')
    else:
        slope, _ = ohdr.get_slope_inter()
        if dt == 'float32':
            exact = np.array_equal(sdata.astype(np.float32).astype(np.float64), sdata,
                                   equal_nan=True)
            tol = 0.0 if exact else np.finfo(np.float32).eps * np.nanmax(np.abs(sdata))
        elif dt == 'float64':
            tol = 0.0
        else:
            # Half a quantisation step, plus the Float32 rounding adwb's in-memory values carry.
            tol = 0.5 * abs(slope if slope is not None else 1.0) * (1 + 1e-6) + \
                np.finfo(np.float32).eps * np.nanmax(np.abs(sdata))
            if slope is None and np.array_equal(np.round(sdata), sdata):
                tol = 0.0  # integer-valued source into an unscaled integer type: exact
        diff = np.nanmax(np.abs(odata - sdata)) if odata.size else 0.0
        if not (diff <= tol) or not np.array_equal(np.isnan(odata), np.isnan(sdata)):
            problems.append(f'{out_rel}: data differ by {diff} (tolerance {tol})')
    if not np.allclose(oimg.affine, simg.affine, atol=1e-4):
        problems.append(f'{out_rel}: affine\n{oimg.affine}\nwant\n{simg.affine}')
    if int(ohdr['sform_code']) == 0 or int(ohdr['qform_code']) == 0:
        problems.append(f'{out_rel}: sform_code {int(ohdr["sform_code"])}, '
                        f'qform_code {int(ohdr["qform_code"])}; want both > 0')
    else:
        probe = nib.Nifti1Header()
        probe.set_qform(simg.affine, code=1)
        if np.allclose(probe.get_qform(), simg.affine, atol=1e-4) and \
                not np.allclose(ohdr.get_qform(), simg.affine, atol=1e-4):
            problems.append(f'{out_rel}: qform\n{ohdr.get_qform()}\nwant\n{simg.affine}')
    rec = {
        'source': {'root': root_name, 'path': src_rel},
        'output': out_rel,
        'command': cmd_shown,
        'datatype': dt,
        'volume': volume,
        'affine': [[jnum(v) for v in row] for row in oimg.affine],
        'sform_code': int(ohdr['sform_code']),
        'qform_code': int(ohdr['qform_code']),
        'shape': [int(n) for n in oimg.shape],
        'slope': jnum(ohdr.get_slope_inter()[0]),
        'inter': jnum(ohdr.get_slope_inter()[1]),
        'all': stats(odata),
        'source_all': stats(sdata),
        'sha256_uncompressed': sha256_bytes(decompressed(out)),
    }
    return rec, problems


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--shared', help='path to the shared data folder (../shared/data)')
    ap.add_argument('--adwb', help='path to the adwb binary (enables the write round trip)')
    args = ap.parse_args()
    shared = os.path.abspath(args.shared) if args.shared else None
    if shared is not None and not os.path.isdir(shared):
        print(f'--shared {args.shared} does not exist; shared files skipped')
        shared = None
    adwb = os.path.abspath(args.adwb) if args.adwb else None
    if adwb is not None and not os.access(adwb, os.X_OK):
        sys.exit(f'--adwb {args.adwb} is not an executable file')

    copy_shared(shared)
    make_generated()

    files = [record('fixtures', VOLUMES, rel)
             for rel in volume_files(VOLUMES, skip_dirs=('written',))]
    if shared is not None:
        files += [record('shared', shared, rel) for rel in volume_files(shared)]

    written, problems = [], []
    for job in WRITE_JOBS:
        rec, probs = check_written(job, adwb)
        problems += probs
        if rec is not None:
            written.append(rec)
        elif adwb is None:
            print(f'skipped {job[2]} (no --adwb and no existing file)')
    if problems:
        print('WRITE ROUND TRIP FAILED:\n' + '\n'.join(problems), file=sys.stderr)
        sys.exit(1)

    doc = {'nibabel_version': nib.__version__, 'files': files, 'written': written}
    text = json.dumps(doc, sort_keys=True, indent=1, allow_nan=False) + '\n'
    with open(JSON_PATH, 'w') as f:
        f.write(text)
    print(f'wrote {os.path.relpath(JSON_PATH)}: {len(files)} files, {len(written)} written')


if __name__ == '__main__':
    main()
