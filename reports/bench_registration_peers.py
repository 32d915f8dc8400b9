#!/usr/bin/env python3
"""Peer figures for affine registration (scan -> template): SimpleITK and ANTsPy on this machine.

What
----
A synthetic but exactly known problem, the same one `adwb`'s Swift registration bench uses:

* fixed F  = ICBM152 2009a sym T1 template (1 mm, 197x233x189 uint8, sform only, RAS) and its
             brain mask; a second, quick case uses the 2 mm derived template + mask (98x116x94).
* truth T  = x (fixed/template world, RAS mm) -> y (moving/scan world, RAS mm), y = A x + b with
             c = (0, -18, 18) mm, R = Rz(12 deg) . Ry(-8 deg) . Rx(10 deg) (right-handed rotations
             about world x, y, z; x applied first), S = diag(1.08, 0.94, 1.05), A = R . S,
             b = c - A c + (8, -12, 6).
* moving M = on the fixed grid (same shape and affine), M(y) = F(T^-1 y) by trilinear
             interpolation (scipy.ndimage.map_coordinates order=1, mode='constant', cval=0),
             float32 NIfTI with the fixed affine written as both sform and qform (code 2).
             Written to --regdata-dir as moving_1mm.nii.gz / moving_2mm.nii.gz, with truth.txt
             (the RAS 4x4 of T; '#' lines are comments) for the Swift side to cross-check.
* task     = given F (optionally its mask) and M, estimate T.
* accuracy = over the fixed brain-mask voxel centres x: mean and max |T_est(x) - T(x)| in mm.

Peers (each run on images already in memory, loaded with the tool's own reader):
* SimpleITK: CenteredTransformInitializer(MOMENTS) -> Euler3D rigid stage -> AffineTransform
  stage, each 3 levels (shrink 4,2,1; smoothing sigmas 2,1,0 voxels), RANDOM sampling 20 %
  (seed 42), linear interpolation, SetOptimizerScalesFromPhysicalShift(), fixed brain mask on
  the metric. Two metrics: Correlation (NCC) and Mattes MI (50 bins).
  Tuned config (succeeds): RegularStepGradientDescent(learningRate 2, minStep 1e-3, 200 it/level,
  relaxation 0.5). First attempt, kept as *_gd_untuned (one run each, recorded as failures): the
  SimpleITK-notebook GradientDescent(lr 1, 100 it/level, conv 1e-6 / window 10, learning rate
  estimated once per level), which oscillates and stops on its convergence check 4-60 mm off.
* ANTsPy: ants.registration(fixed, moving, type_of_transform='Affine') with its defaults (a single
  Affine stage after a centre-of-mass initialisation: no separate rigid stage; Mattes MI 32 bins,
  regular 20 % sampling, 6x4x2x1 shrink, 3x2x1x0 vox smoothing, 2100x1200x1200x10 iterations,
  step 0.25, no mask), the same with aff_metric='GC', and 'TRSAA' (translation, rigid, similarity,
  affine x2) with reg_iterations=(100, 50, 20). ANTS_RANDOM_SEED=42 is set (ANTs' own env var).
  The GC and TRSAA variants run on the 2 mm case only (at 1 mm they cost minutes per run).
  The estimate is read from fwdtransforms[0] (ITK .mat) with ants.read_transform.
  The full settings each config used are recorded in the JSON.

Conventions
-----------
ITK/ANTs physical space is LPS; their registration output maps fixed physical points to moving
physical points. With Fh = diag(-1, -1, 1, 1): T_ras = Fh . T_lps . Fh. A transform's 4x4 is
recovered by evaluating it at the origin and the three unit points (exact for affine transforms).
Checks (all recorded): the error of T itself is 0 (truth by construction); each tool reads the
fixed, mask and moving geometry exactly as nibabel does; for every config, M resampled onto
the fixed grid through the estimate (scipy, RAS) correlates with F, and the tool's own resampler
(sitk.Resample / ants.apply_transforms) agrees with that RAS resampling (conversion check; compared
over mask voxels whose mapped point lies >= 1 voxel inside the moving grid, since scipy and ITK
treat the last half voxel at the grid edge differently and the moving brain is cut by its FOV).

Timing: wall clock (time.perf_counter) of the registration call only; image loading/casting is
OUT (load times are recorded separately). For ANTsPy the call includes what ants.registration
always does inside: cloning to float, writing/reading the .mat files and producing the warped
images. Median of --repeats runs, no warm-up run; process CPU time is recorded per run as a check
on the thread count. Other processes' CPU use during each run is measured from /proc/stat
(others_cpu_share: 0 = machine otherwise idle, 1 = both cores busy with other work); with
--wait-idle S the script waits up to S seconds before each run for a quiet 3 s window, and a run
with others_cpu_share > --max-others-share is flagged contended and repeated (up to --max-retries
extra runs per config); the median is taken over the uncontended runs when there are enough (all --repeats, or at least 2)
(timing_contended=false), else over all runs (timing_contended=true). Every run is kept in 'runs'. Threads: ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS, OMP_NUM_THREADS (set before
SimpleITK/ants are imported) and sitk.ProcessObject.SetGlobalDefaultNumberOfThreads.

How to run
----------
Needs numpy, scipy, nibabel, SimpleITK, antspyx (antspyx pins numpy<2.4 and scipy<1.16, so it lives
in its own venv here rather than in /work/venv):

    /work/scratch/venv-regpeers/bin/python reports/bench_registration_peers.py \\
        --data-dir /work/shared/data --out reports/peers-registration-2026-11-30.json \\
        --repeats 3 --threads 2

`adwb` itself never needs Python.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time

FIXED_1MM = 'mni-icbm152-2009a-sym/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz'
MASK_1MM = 'mni-icbm152-2009a-sym/derived/mni_icbm152_brain_mask_sym_09a_1mm_derived.nii.gz'
FIXED_2MM = 'mni-icbm152-2009a-sym/derived/mni_icbm152_t1_sym_09a_2mm_derived.nii.gz'
MASK_2MM = 'mni-icbm152-2009a-sym/derived/mni_icbm152_brain_mask_sym_09a_2mm_derived.nii.gz'

TRUTH_PARAMETERS = {
    'centre_mm': [0.0, -18.0, 18.0],
    'rotation_deg_xyz': [10.0, -8.0, 12.0],
    'rotation_order': 'R = Rz(gamma) . Ry(beta) . Rx(alpha) (x applied first, right-handed, world axes)',
    'scales': [1.08, 0.94, 1.05],
    'A': 'R . diag(scales)',
    'extra_translation_mm': [8.0, -12.0, 6.0],
    'b': 'c - A c + extra_translation',
    'maps': 'fixed (template) RAS mm -> moving (scan) RAS mm',
}

SEED = 42


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-dir', default='/work/shared/data', help='the shared data folder')
    parser.add_argument('--out', default='reports/peers-registration-2026-11-30.json',
                        help='results JSON (written to a temporary name, then renamed)')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs per config (median reported)')
    parser.add_argument('--threads', type=int, default=2, help='ITK / OpenMP threads')
    parser.add_argument('--regdata-dir', default='/work/scratch/regdata',
                        help='where the moving images and truth.txt are written')
    parser.add_argument('--sizes', default='2mm,1mm', help='comma list of cases: 1mm, 2mm')
    parser.add_argument('--wait-idle', type=float, default=120.0,
                        help='before each run wait up to this many s for other processes to go quiet (0: no wait)')
    parser.add_argument('--max-others-share', type=float, default=0.15,
                        help='a run during which other processes used more than this share of the CPUs is '
                             'kept but flagged contended and retried (see --max-retries)')
    parser.add_argument('--max-retries', type=int, default=3,
                        help='extra runs per config allowed to replace contended ones')
    parser.add_argument('--configs', default='all',
                        help='comma list of config names to run (default all); see CONFIG_NAMES')
    return parser.parse_args()


ARGS = parse_args()
# Thread settings must be in the environment before ITK (inside SimpleITK and ants) initialises.
os.environ['ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS'] = str(ARGS.threads)
os.environ['OMP_NUM_THREADS'] = str(ARGS.threads)
os.environ['ANTS_RANDOM_SEED'] = str(SEED)

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import nibabel as nib  # noqa: E402
from scipy import ndimage  # noqa: E402
import SimpleITK as sitk  # noqa: E402
import ants  # noqa: E402

sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(ARGS.threads)

FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS <-> LPS, its own inverse


# ----------------------------------------------------------------------------- the problem

def true_transform_ras():
    a, b_, g = np.deg2rad(TRUTH_PARAMETERS['rotation_deg_xyz'])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b_), 0, np.sin(b_)], [0, 1, 0], [-np.sin(b_), 0, np.cos(b_)]])
    rz = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
    rot = rz @ ry @ rx
    lin = rot @ np.diag(TRUTH_PARAMETERS['scales'])
    c = np.array(TRUTH_PARAMETERS['centre_mm'])
    t = c - lin @ c + np.array(TRUTH_PARAMETERS['extra_translation_mm'])
    out = np.eye(4)
    out[:3, :3] = lin
    out[:3, 3] = t
    return out


def voxel_grid(shape):
    ijk = np.indices(shape, dtype=np.float64).reshape(3, -1)
    return np.vstack([ijk, np.ones((1, ijk.shape[1]))])


def resample_ras(source, source_affine, target_shape, target_affine, target_to_source_world, inside=False):
    """Value of `source` at T(x) for every voxel centre x of the target grid (trilinear, 0 outside).

    With inside=True also returns where the mapped point lies >= 1 voxel inside the source grid."""
    vox = np.linalg.inv(source_affine) @ target_to_source_world @ target_affine
    n = int(np.prod(target_shape))
    out = np.empty(n, dtype=np.float32)
    ok = np.empty(n, dtype=bool)
    limit = np.array(source.shape, dtype=np.float64)[:, None] - 2.0
    grid = voxel_grid(target_shape)
    step = 2_000_000
    for start in range(0, grid.shape[1], step):
        coords = (vox @ grid[:, start:start + step])[:3]
        out[start:start + step] = ndimage.map_coordinates(source, coords, order=1, mode='constant', cval=0.0)
        ok[start:start + step] = ((coords >= 1.0) & (coords <= limit)).all(axis=0)
    if inside:
        return out.reshape(target_shape), ok.reshape(target_shape)
    return out.reshape(target_shape)


def make_moving(fixed_data, affine, truth):
    # M(y) = F(T^-1 y): for each moving voxel y, sample F at T^-1 y.
    return resample_ras(fixed_data.astype(np.float32), affine, fixed_data.shape, affine, np.linalg.inv(truth))


def save_moving(data, affine, path):
    image = nib.Nifti1Image(data.astype(np.float32), affine)
    image.set_sform(affine, code=2)
    image.set_qform(affine, code=2)
    image.header.set_xyzt_units('mm', 'sec')
    tmp = path + '.tmp.nii.gz'
    nib.save(image, tmp)
    os.replace(tmp, path)


def write_truth(path, truth):
    lines = [
        '# True transform T, 4x4 homogeneous, RAS mm: y_moving = T . x_fixed (template -> scan).',
        '# c=(0,-18,18) mm; R=Rz(12deg).Ry(-8deg).Rx(10deg); S=diag(1.08,0.94,1.05); A=R.S; b=c-A.c+(8,-12,6).',
        '# moving_1mm/2mm.nii.gz: M(y)=F(T^-1 y), trilinear (scipy map_coordinates order=1, cval 0), fixed grid.',
        '# In ITK/ANTs LPS terms: T_lps = diag(-1,-1,1,1) . T . diag(-1,-1,1,1). Rows follow; "#" lines are comments.',
    ]
    lines += [' '.join('%.17g' % v for v in row) for row in truth]
    tmp = path + '.tmp'
    with open(tmp, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    os.replace(tmp, path)


def displacement_error(estimate, truth, mask_points_ras):
    d = (estimate - truth)[:3] @ mask_points_ras
    norm = np.sqrt((d * d).sum(axis=0))
    return {'mean_mm': float(norm.mean()), 'max_mm': float(norm.max()),
            'median_mm': float(np.median(norm))}


def masked_corr(a, b, mask):
    x = a[mask].astype(np.float64)
    y = b[mask].astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


# ----------------------------------------------------------------------------- conversions

def affine_from_point_map(apply):
    """4x4 of an affine point map from its values at the origin and the unit points (checked)."""
    o = np.asarray(apply((0.0, 0.0, 0.0)), dtype=np.float64)
    out = np.eye(4)
    out[:3, 3] = o
    for axis in range(3):
        e = [0.0, 0.0, 0.0]
        e[axis] = 1.0
        out[:3, axis] = np.asarray(apply(tuple(e)), dtype=np.float64) - o
    rng = np.random.default_rng(0)
    worst = 0.0
    for p in rng.uniform(-100, 100, size=(8, 3)):
        worst = max(worst, float(np.abs(np.asarray(apply(tuple(p))) - (out[:3, :3] @ p + out[:3, 3])).max()))
    assert worst < 1e-3, 'transform is not affine? residual %g' % worst
    return out


def lps_to_ras(t_lps):
    return FLIP @ t_lps @ FLIP


def sitk_transform_to_ras(transform):
    return lps_to_ras(affine_from_point_map(transform.TransformPoint))


def ants_transform_to_ras(transform):
    return lps_to_ras(affine_from_point_map(lambda p: transform.apply_to_point(list(p))))


def check_geometry(tool, origin, spacing, direction, affine_ras):
    """The tool's (LPS) geometry must equal nibabel's RAS affine after the flip."""
    lin = np.asarray(direction, dtype=np.float64).reshape(3, 3) * np.asarray(spacing, dtype=np.float64)
    tool_lps = np.eye(4)
    tool_lps[:3, :3] = lin
    tool_lps[:3, 3] = origin
    diff = float(np.abs(FLIP @ tool_lps - affine_ras).max())  # voxel -> world: flip the output side only
    assert diff < 1e-4, '%s geometry differs from nibabel by %g' % (tool, diff)
    return diff


# ----------------------------------------------------------------------------- SimpleITK

SITK_COMMON = {
    'initializer': 'CenteredTransformInitializer(fixed, moving, Euler3DTransform(), MOMENTS)',
    'stages': ['rigid: Euler3DTransform', 'affine: AffineTransform initialised from the rigid result'],
    'shrink_factors': [4, 2, 1],
    'smoothing_sigmas_voxels': [2, 1, 0],
    'sampling': 'RANDOM, 20 %% of voxels per level, seed %d (samples outside the fixed mask dropped)' % SEED,
    'interpolator': 'sitkLinear',
    'optimizer': ('RegularStepGradientDescent(learningRate=2.0, minStep=1e-3, numberOfIterations=200 per level, '
                  'relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8)'),
    'optimizer_scales': 'SetOptimizerScalesFromPhysicalShift()',
    'fixed_mask': 'brain mask (SetMetricFixedMask)',
    'moving_mask': None,
    'pixel_type': 'float32 (sitk.Cast before timing)',
}


SITK_GD_UNTUNED = ('GradientDescent(learningRate=1.0, numberOfIterations=100 per level, convergenceMinimumValue=1e-6, '
                   'convergenceWindowSize=10, estimateLearningRate=Once) -- the SimpleITK notebooks\' setting')


def sitk_stage(fixed, moving, mask, transform, metric, optimizer):
    reg = sitk.ImageRegistrationMethod()
    if metric == 'correlation':
        reg.SetMetricAsCorrelation()
    else:
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.20, SEED)
    if mask is not None:
        reg.SetMetricFixedMask(mask)
    reg.SetInterpolator(sitk.sitkLinear)
    if optimizer == 'rsgd':
        reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-3, numberOfIterations=200,
                                                     relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8)
    else:
        reg.SetOptimizerAsGradientDescent(learningRate=1.0, numberOfIterations=100,
                                          convergenceMinimumValue=1e-6, convergenceWindowSize=10)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2, 1, 0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    iterations = []
    reg.AddCommand(sitk.sitkMultiResolutionIterationEvent, lambda: iterations.append(0))
    reg.AddCommand(sitk.sitkIterationEvent, lambda: iterations.__setitem__(-1, iterations[-1] + 1))
    reg.SetInitialTransform(transform, inPlace=True)
    reg.Execute(fixed, moving)
    return {'iterations_per_level': iterations, 'final_metric': reg.GetMetricValue(),
            'stop': reg.GetOptimizerStopConditionDescription()}


def run_sitk(images, metric, optimizer='rsgd'):
    fixed, moving, mask = images['sitk_fixed'], images['sitk_moving'], images['sitk_mask']
    rigid = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                              sitk.CenteredTransformInitializerFilter.MOMENTS)
    rigid = sitk.Euler3DTransform(rigid)
    info_rigid = sitk_stage(fixed, moving, mask, rigid, metric, optimizer)
    affine = sitk.AffineTransform(3)
    affine.SetMatrix(rigid.GetMatrix())
    affine.SetTranslation(rigid.GetTranslation())
    affine.SetCenter(rigid.GetCenter())
    info_affine = sitk_stage(fixed, moving, mask, affine, metric, optimizer)
    return affine, {'rigid': info_rigid, 'affine': info_affine}


def sitk_resample_check(images, transform):
    out = sitk.Resample(images['sitk_moving'], images['sitk_fixed'], transform, sitk.sitkLinear, 0.0,
                        sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out).transpose(2, 1, 0)


# ----------------------------------------------------------------------------- ANTsPy

ANTS_AFFINE_DEFAULTS = {
    'call': "ants.registration(fixed, moving, type_of_transform='Affine')",
    'runs': ('antsRegistration -r [fixed,moving,1] (centre-of-mass initial translation) then ONE '
             'Affine[0.25] stage; no separate rigid stage'),
    'metric': 'MI (Mattes) 32 bins, regular sampling 20 % (aff_sampling=32, aff_random_sampling_rate=0.2)',
    'shrink_factors': [6, 4, 2, 1],
    'smoothing_sigmas_voxels': [3, 2, 1, 0],
    'iterations': [2100, 1200, 1200, 10],
    'convergence': 'antsRegistration default threshold 1e-6, window 10',
    'mask': None,
    'histogram_matching': False,
    'winsorize': False,
    'precision': 'float (singleprecision=True)',
    'random_seed': 'ANTS_RANDOM_SEED=%d' % SEED,
}


def run_ants(images, **kwargs):
    result = ants.registration(images['ants_fixed'], images['ants_moving'], **kwargs)
    files = list(dict.fromkeys(result['fwdtransforms'] + result['invtransforms']))
    mats = [f for f in result['fwdtransforms'] if f.endswith('.mat')]
    assert len(result['fwdtransforms']) == 1 and len(mats) == 1, result['fwdtransforms']
    transform = ants.read_transform(mats[0])
    check = ants.apply_transforms(images['ants_fixed'], images['ants_moving'], result['fwdtransforms'],
                                  interpolator='linear')
    for f in files:
        if os.path.exists(f) and f.startswith(tempfile.gettempdir()):
            os.remove(f)
    return transform, {'transform_type': transform.transform_type,
                       'parameters': [float(v) for v in transform.parameters],
                       'fixed_parameters': [float(v) for v in transform.fixed_parameters],
                       'resampled': check.numpy()}


CONFIGS = [
    {'name': 'sitk_rigid_affine_ncc', 'peer': 'SimpleITK',
     'settings': dict(SITK_COMMON, metric='Correlation (SetMetricAsCorrelation, NCC)'),
     'run': lambda im: run_sitk(im, 'correlation'), 'kind': 'sitk'},
    {'name': 'sitk_rigid_affine_mattes', 'peer': 'SimpleITK',
     'settings': dict(SITK_COMMON, metric='Mattes MI, 50 bins'),
     'run': lambda im: run_sitk(im, 'mattes'), 'kind': 'sitk'},
    {'name': 'sitk_rigid_affine_ncc_gd_untuned', 'peer': 'SimpleITK', 'repeats': 1,
     'settings': dict(SITK_COMMON, metric='Correlation (SetMetricAsCorrelation, NCC)', optimizer=SITK_GD_UNTUNED,
                      note='first attempt before tuning; one run only'),
     'run': lambda im: run_sitk(im, 'correlation', 'gd'), 'kind': 'sitk'},
    {'name': 'sitk_rigid_affine_mattes_gd_untuned', 'peer': 'SimpleITK', 'repeats': 1,
     'settings': dict(SITK_COMMON, metric='Mattes MI, 50 bins', optimizer=SITK_GD_UNTUNED,
                      note='first attempt before tuning; one run only'),
     'run': lambda im: run_sitk(im, 'mattes', 'gd'), 'kind': 'sitk'},
    {'name': 'ants_affine_default', 'peer': 'ANTsPy',
     'settings': ANTS_AFFINE_DEFAULTS,
     'run': lambda im: run_ants(im, type_of_transform='Affine'), 'kind': 'ants'},
    {'name': 'ants_affine_gc', 'peer': 'ANTsPy',
     'settings': dict(ANTS_AFFINE_DEFAULTS, call="ants.registration(fixed, moving, type_of_transform='Affine', aff_metric='GC')",
                      metric='GC (global correlation), regular sampling 20 %'),
     'run': lambda im: run_ants(im, type_of_transform='Affine', aff_metric='GC'), 'kind': 'ants', 'sizes': ['2mm']},
    {'name': 'ants_trsaa', 'peer': 'ANTsPy',
     'settings': {
         'call': "ants.registration(fixed, moving, type_of_transform='TRSAA', reg_iterations=(100, 50, 20))",
         'runs': ('-r [fixed,moving,1] then 5 stages: Translation[1], Rigid[1], Similarity[1] '
                  '(2000x2000x0 iterations), Affine[1], Affine[1] ([100x50x20,1e-7,10])'),
         'why_reg_iterations': ("the docs say to set reg_iterations with TRSAA; its default (40,20,0) "
                                "would run 0 iterations at full resolution"),
         'metric': 'MI (Mattes) 32 bins, regular 20 % (aff_metric default)',
         'shrink_factors': [4, 2, 1],
         'smoothing_sigmas_voxels': [2, 1, 0],
         'mask': None,
         'random_seed': 'ANTS_RANDOM_SEED=%d' % SEED,
     },
     'run': lambda im: run_ants(im, type_of_transform='TRSAA', reg_iterations=(100, 50, 20)), 'kind': 'ants',
     'sizes': ['2mm']},
]
CONFIG_NAMES = [c['name'] for c in CONFIGS]


# ----------------------------------------------------------------------------- driver

def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def machine_info():
    model = None
    with open('/proc/cpuinfo') as handle:
        for line in handle:
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    return {
        'platform': platform.platform(),
        'cpu_model': model,
        'nproc': os.cpu_count(),
        'sched_affinity': len(os.sched_getaffinity(0)),
        'python': platform.python_version(),
        'python_executable': sys.executable,
        'numpy': np.__version__,
        'scipy': scipy.__version__,
        'nibabel': nib.__version__,
        'SimpleITK': sitk.Version_VersionString(),
        'SimpleITK_ITK': '%d.%d.%d' % (sitk.Version_ITKMajorVersion(), sitk.Version_ITKMinorVersion(),
                                       sitk.Version_ITKPatchVersion()),
        'antspyx': getattr(ants, '__version__', None),
        'threads': ARGS.threads,
        'sitk_global_default_threads': sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
        'env': {k: os.environ.get(k) for k in ('ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS', 'OMP_NUM_THREADS',
                                               'ANTS_RANDOM_SEED')},
    }


def load_case(size, data_dir, regdata_dir, truth):
    fixed_rel, mask_rel = (FIXED_1MM, MASK_1MM) if size == '1mm' else (FIXED_2MM, MASK_2MM)
    fixed_path = os.path.join(data_dir, fixed_rel)
    mask_path = os.path.join(data_dir, mask_rel)
    fixed_img = nib.load(fixed_path)
    affine = fixed_img.affine.copy()
    fixed = np.asanyarray(fixed_img.dataobj).astype(np.float32)
    mask = np.asanyarray(nib.load(mask_path).dataobj) > 0
    assert np.allclose(nib.load(mask_path).affine, affine)

    t0 = time.perf_counter()
    moving = make_moving(fixed, affine, truth)
    make_s = time.perf_counter() - t0
    moving_path = os.path.join(regdata_dir, 'moving_%s.nii.gz' % size)
    save_moving(moving, affine, moving_path)
    reread = nib.load(moving_path)
    assert np.array_equal(np.asanyarray(reread.dataobj), moving) and np.allclose(reread.affine, affine)

    pts = affine @ np.vstack([np.array(np.nonzero(mask), dtype=np.float64), np.ones((1, int(mask.sum())))])
    case = {'fixed': fixed, 'moving': moving, 'mask': mask, 'affine': affine, 'mask_points': pts}
    info = {
        'fixed_file': fixed_rel, 'fixed_sha256': sha256(fixed_path),
        'mask_file': mask_rel, 'mask_voxels': int(mask.sum()),
        'shape': list(fixed.shape), 'affine_ras': affine.tolist(),
        'moving_file': moving_path, 'moving_sha256': sha256(moving_path),
        'moving_make_s': round(make_s, 3),
        'moving_nonzero_fraction_in_mask': float((moving[mask] > 0).mean()),
    }

    # Each tool's own reader, with its geometry checked against nibabel's.
    loads = {}
    t0 = time.perf_counter()
    case['sitk_fixed'] = sitk.Cast(sitk.ReadImage(fixed_path), sitk.sitkFloat32)
    case['sitk_moving'] = sitk.Cast(sitk.ReadImage(moving_path), sitk.sitkFloat32)
    case['sitk_mask'] = sitk.Cast(sitk.ReadImage(mask_path) > 0, sitk.sitkUInt8)
    loads['sitk_read_cast_s'] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    case['ants_fixed'] = ants.image_read(fixed_path)
    case['ants_moving'] = ants.image_read(moving_path)
    case['ants_mask'] = ants.image_read(mask_path)
    loads['ants_read_s'] = round(time.perf_counter() - t0, 3)
    info['load_times_not_in_timings'] = loads

    geometry = {}
    for key in ('sitk_fixed', 'sitk_moving', 'sitk_mask'):
        im = case[key]
        geometry[key] = check_geometry(key, im.GetOrigin(), im.GetSpacing(), im.GetDirection(), affine)
    for key in ('ants_fixed', 'ants_moving', 'ants_mask'):
        im = case[key]
        geometry[key] = check_geometry(key, im.origin, im.spacing, im.direction, affine)
    assert np.array_equal(sitk.GetArrayFromImage(case['sitk_fixed']).transpose(2, 1, 0), fixed)
    assert np.array_equal(sitk.GetArrayFromImage(case['sitk_moving']).transpose(2, 1, 0), moving)
    assert np.array_equal(case['ants_fixed'].numpy(), fixed)
    assert np.array_equal(case['ants_moving'].numpy(), moving)
    info['geometry_max_abs_diff_vs_nibabel'] = geometry

    # Truth by construction: zero error for T, and M resampled through T matches F.
    back = resample_ras(moving, affine, fixed.shape, affine, truth)
    info['truth_checks'] = {
        'error_of_true_transform': displacement_error(truth, truth, pts),
        'error_of_identity': displacement_error(np.eye(4), truth, pts),
        'corr_fixed_vs_moving_in_mask_unregistered': masked_corr(fixed, moving, mask),
        'corr_fixed_vs_moving_resampled_through_truth_in_mask': masked_corr(fixed, back, mask),
    }
    assert info['truth_checks']['error_of_true_transform']['max_mm'] < 1e-9
    return case, info


def busy_jiffies():
    with open('/proc/stat') as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal, minus idle


def others_share(wall, own_cpu, jiffies):
    ncpu = len(os.sched_getaffinity(0))
    tick = os.sysconf('SC_CLK_TCK')
    others = jiffies / tick - own_cpu
    return max(0.0, others / (wall * ncpu))


def wait_for_idle(max_wait):
    """Wait (up to max_wait s) for a 3 s window in which other processes use < 10 % of the CPUs."""
    start = time.perf_counter()
    while True:
        j0, c0, w0 = busy_jiffies(), time.process_time(), time.perf_counter()
        time.sleep(3.0)
        share = others_share(time.perf_counter() - w0, time.process_time() - c0, busy_jiffies() - j0)
        waited = time.perf_counter() - start
        if share < 0.10 or waited >= max_wait:
            return {'waited_s': round(waited, 1), 'others_cpu_share_before': round(share, 3)}


def run_config(config, case, truth, repeats, voxel_mm):
    runs = []
    first_extra = None
    attempts = 0
    while attempts < repeats + ARGS.max_retries:
        clean = [r for r in runs if 'exception' not in r and not r['contended']]
        if len(clean) >= repeats or (attempts >= repeats and not any(r.get('contended') for r in runs)):
            break
        attempts += 1
        idle = wait_for_idle(ARGS.wait_idle) if ARGS.wait_idle > 0 else None
        wall0, cpu0, jif0 = time.perf_counter(), time.process_time(), busy_jiffies()
        try:
            transform, extra = config['run'](case)
        except Exception as exc:  # report failures honestly, keep going
            runs.append({'exception': repr(exc), 'wall_s': time.perf_counter() - wall0, 'contended': False})
            continue
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        share = others_share(wall, cpu, busy_jiffies() - jif0)
        if config['kind'] == 'sitk':
            estimate = sitk_transform_to_ras(transform)
        else:
            estimate = ants_transform_to_ras(transform)
        run = {'wall_s': round(wall, 4), 'cpu_s': round(cpu, 3), 'others_cpu_share': round(share, 3),
               'contended': share > ARGS.max_others_share,
               'idle_wait': idle, 'loadavg_after': open('/proc/loadavg').read().split()[:3],
               'error': displacement_error(estimate, truth, case['mask_points']),
               'estimate_ras': estimate.tolist()}
        if config['kind'] == 'sitk':
            run['optimizer'] = extra
        runs.append(run)
        if first_extra is None:
            first_extra = (transform, estimate, extra)
    ok = [r for r in runs if 'exception' not in r]
    out = {'peer': config['peer'], 'settings': config['settings'], 'repeats': repeats, 'runs': runs}
    if not ok:
        out['failed'] = True
        return out
    clean = [r for r in ok if not r['contended']]
    # Uncontended runs only, if there are enough of them (all asked for, or at least 2); else every run.
    timed = clean if clean and len(clean) >= min(repeats, len(ok), 2) else ok
    out['timing_contended'] = any(r['contended'] for r in timed)
    out['uncontended_runs'] = len(clean)
    times = [r['wall_s'] for r in timed]
    out['times_s'] = times
    out['median_s'] = round(statistics.median(times), 4)
    out['cpu_s'] = [r['cpu_s'] for r in timed]
    out['median_cpu_s'] = round(statistics.median(out['cpu_s']), 3)
    out['max_others_cpu_share'] = max(r['others_cpu_share'] for r in timed)
    out['runs_total'] = len(runs)
    median_run = sorted(timed, key=lambda r: r['wall_s'])[len(timed) // 2]
    out['error_mm_median_run'] = median_run['error']
    out['mean_error_mm_all_runs'] = [round(r['error']['mean_mm'], 4) for r in ok]
    out['max_error_mm_all_runs'] = [round(r['error']['max_mm'], 4) for r in ok]
    out['estimate_ras_median_run'] = median_run['estimate_ras']
    out['success_mean_error_below_1_voxel'] = all(r['error']['mean_mm'] < voxel_mm for r in ok)
    out['success_max_error_below_1_voxel'] = all(r['error']['max_mm'] < voxel_mm for r in ok)

    # Conversion checks on the first successful run (not timed).
    transform, estimate, extra = first_extra
    ours, inside = resample_ras(case['moving'], case['affine'], case['fixed'].shape, case['affine'], estimate,
                                inside=True)
    if config['kind'] == 'sitk':
        theirs = sitk_resample_check(case, transform)
        out['sitk_transform'] = {'matrix': list(transform.GetMatrix()), 'translation': list(transform.GetTranslation()),
                                 'center': list(transform.GetCenter()), 'space': 'LPS, fixed -> moving'}
    else:
        theirs = extra['resampled']
        out['ants_transform'] = {k: extra[k] for k in ('transform_type', 'parameters', 'fixed_parameters')}
        out['ants_transform']['space'] = 'LPS, fixed -> moving'
    mask = case['mask']
    both = mask & inside
    out['checks'] = {
        'corr_fixed_vs_moving_resampled_through_estimate_in_mask': masked_corr(case['fixed'], ours, mask),
        'compared_voxels_mask_and_inside_moving': int(both.sum()),
        'tool_resampler_vs_ras_resampling_corr': masked_corr(theirs, ours, both),
        'tool_resampler_vs_ras_resampling_max_abs_diff': float(np.abs(theirs[both] - ours[both]).max()),
        'fixed_intensity_range': [float(case['fixed'].min()), float(case['fixed'].max())],
    }
    return out


def main():
    started = datetime.datetime.now(datetime.timezone.utc)
    truth = true_transform_ras()
    os.makedirs(ARGS.regdata_dir, exist_ok=True)
    write_truth(os.path.join(ARGS.regdata_dir, 'truth.txt'), truth)
    wanted = CONFIG_NAMES if ARGS.configs == 'all' else ARGS.configs.split(',')
    unknown = set(wanted) - set(CONFIG_NAMES)
    if unknown:
        sys.exit('unknown configs %s; choose from %s' % (sorted(unknown), CONFIG_NAMES))

    result = {
        'schema': 'peers-registration/1',
        'started_utc': started.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'machine': machine_info(),
        'problem': dict(TRUTH_PARAMETERS, truth_ras=truth.tolist(),
                        truth_lps=(FLIP @ truth @ FLIP).tolist(),
                        moving='M(y) = F(T^-1 y), scipy map_coordinates order=1 mode=constant cval=0, fixed grid, float32, sform+qform code 2',
                        accuracy='mean/max over fixed brain-mask voxel centres of |T_est(x) - T(x)| (mm)',
                        truth_file=os.path.join(ARGS.regdata_dir, 'truth.txt')),
        'timing': {'what': 'wall clock of the registration call only; image loading and casting are OUT',
                   'repeats': ARGS.repeats, 'statistic': 'median', 'warm_up': False,
                   'wait_idle_s': ARGS.wait_idle, 'max_others_share': ARGS.max_others_share,
                   'max_retries': ARGS.max_retries,
                   'others_cpu_share': 'CPU used by other processes during the run / (wall x CPUs), from /proc/stat'},
        'tuning_log': [
            'SimpleITK, first attempt: GradientDescent as in the SimpleITK notebooks (lr 1, 100 it, learning rate '
            'estimated once per level) fails with both metrics (oscillating metric, convergence check stops it after '
            '~10-20 iterations/level; 4-60 mm mean error at 2 mm). Kept as *_gd_untuned.',
            'SimpleITK, also tried at 2 mm: estimateLearningRate=EachIteration (still 4-6 mm off) and a longer '
            'convergence window (20, 1e-7; still fails). Switching to RegularStepGradientDescent (lr 2, minStep 1e-3, '
            '200 it) succeeds with both metrics, with and without the mask; lr 1 / minStep 1e-4 gives similar accuracy.',
            'SimpleITK, fixed mask: kept. In exploration the masked runs were ~2-6x faster; without it NCC was somewhat '
            'more accurate (0.01-0.03 mm vs 0.1-0.17 mm mean) but both are far below 1 voxel.',
            'ANTsPy: no tuning (defaults); GC and TRSAA only at 2 mm because the 1 mm default Affine already takes '
            'minutes per run on 2 cores.',
        ],
        'cases': {},
    }
    for size in ARGS.sizes.split(','):
        print('== %s: making moving image, loading' % size, flush=True)
        case, info = load_case(size, ARGS.data_dir, ARGS.regdata_dir, truth)
        voxel_mm = float(abs(case['affine'][0, 0]))
        info['configs'] = {}
        for config in CONFIGS:
            if config['name'] not in wanted or size not in config.get('sizes', [size]):
                continue
            print('-- %s %s' % (size, config['name']), flush=True)
            res = run_config(config, case, truth, config.get('repeats', ARGS.repeats), voxel_mm)
            info['configs'][config['name']] = res
            if res.get('failed'):
                print('   FAILED: %s' % res['runs'][0].get('exception'), flush=True)
            else:
                print('   median %.2f s  (runs %s, others %.2f, %d runs)  mean err %.3f mm  max err %.3f mm  corr %.4f  '
                      'tool-vs-ras corr %.6f maxdiff %.3g'
                      % (res['median_s'], res['times_s'], res['max_others_cpu_share'], res['runs_total'],
                         res['error_mm_median_run']['mean_mm'], res['error_mm_median_run']['max_mm'],
                         res['checks']['corr_fixed_vs_moving_resampled_through_estimate_in_mask'],
                         res['checks']['tool_resampler_vs_ras_resampling_corr'],
                         res['checks']['tool_resampler_vs_ras_resampling_max_abs_diff']), flush=True)
        result['cases'][size] = info
    result['finished_utc'] = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    tmp = ARGS.out + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump(result, handle, indent=1)
        handle.write('\n')
    os.replace(tmp, ARGS.out)
    print('wrote %s' % ARGS.out)


if __name__ == '__main__':
    main()
