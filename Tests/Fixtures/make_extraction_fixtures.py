#!/usr/bin/env python3
"""PyTorch reference fixtures for feature extraction (Tests/ExtractionTests/ExtractionReferenceTests.swift).

Run once from the repository root (needs torch, numpy, nibabel and safetensors; the Swift tests
never run Python):

    python3 Tests/Fixtures/make_extraction_fixtures.py

Everything is deterministic (fixed seeds; the NIfTI file is uncompressed and safetensors files
carry a single metadata key), so re-running rewrites the same bytes with the same torch version.

What the Swift extraction stage must reproduce, computed here independently with torch's own
layers (float64 from the float32 weights and volume, stored as float32):

* the whole volume `x` is `[1, 1, X, Y, Z]`, axes as nibabel's `get_fdata()` (ours);
* a CAE's feature map is `encoder(x)` (Conv3d k3 padding 1, ReLU, MaxPool3d 2, per level);
* a SAE's first level is a valid 3-D convolution with the first Linear's weight viewed as
  filters `W1.view(h1, 1, 5, 5, 5)` (patch flattened row-major, last axis fastest) + sigmoid;
  a deeper level is either a 1x1x1 convolution at every map voxel (`grid`) or a Linear on each
  region's pooled first-level codes (`pooled`);
* features are `AdaptiveAvgPool3d(grid)` / `AdaptiveMaxPool3d(grid)` of the map, flattened
  channel first (`pooled`: pool, then per region Linear + sigmoid, then channel first).

Output, in Tests/Fixtures/Extraction/:

* `volume.nii`: float32 NIfTI-1, 23x19x21, smooth random values in [0, 1], 2 mm voxels with a
  flipped first axis and a non-zero origin (nibabel writes it; the values in the tests are read
  back from this file).
* `cae_state.safetensors`: `state_dict()` of a CAE with channels [4, 8], kernel 3, ReLU,
  MaxPool 2 and the transpose decoder, under our names (`encoder.0.weight`, ...,
  `decoder.2.bias`): loads strictly into `ConvolutionalAutoencoder(patchSize: [8, 8, 8], ...)`.
* `sae_state.safetensors`: `state_dict()` of an untied SAE on 5x5x5 patches, hidden [6, 3],
  sigmoid units and sigmoid output (`encoder.0`, `encoder.2`, `decoder.0`, `decoder.2`).
* `expected.safetensors` (float32):
    - `cae.map` `[8, X', Y', Z']`: `encoder(x)[0]`;
    - `sae.map.1` `[6, X-4, Y-4, Z-4]` (first level) and `sae.map.grid` `[3, ...]` (two levels
      on the grid);
    - `<model>.<variant>.<pooling>.<gx>x<gy>x<gz>` `[C * gx * gy * gz]`: features for
      `cae.encoder`, `sae.level1`, `sae.grid` and `sae.pooled`, pooling `mean` / `max`, grids
      2x2x2 and 3x2x1.
  Header metadata: `source` ("make_extraction_fixtures.py, torch <version>").
"""
import os

import nibabel as nib
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "Extraction")

SHAPE = (23, 19, 21)
AFFINE = np.array([[-2.0, 0, 0, 90], [0, 2.0, 0, -126], [0, 0, 2.0, -72], [0, 0, 0, 1]])
GRIDS = [(2, 2, 2), (3, 2, 1)]
POOLS = {"mean": nn.AdaptiveAvgPool3d, "max": nn.AdaptiveMaxPool3d}
SOURCE = f"make_extraction_fixtures.py, torch {torch.__version__}"


class Autoencoder(nn.Module):
    """Our `EncoderDecoder`: state under `encoder.*` and `decoder.*`."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder


def build_cae():
    encoder = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
                            nn.Conv3d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2))
    decoder = nn.Sequential(nn.ConvTranspose3d(8, 4, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                            nn.ConvTranspose3d(4, 1, 3, stride=2, padding=1, output_padding=1))
    return Autoencoder(encoder, decoder)


def build_sae():
    encoder = nn.Sequential(nn.Linear(125, 6), nn.Sigmoid(), nn.Linear(6, 3), nn.Sigmoid())
    decoder = nn.Sequential(nn.Linear(3, 6), nn.Sigmoid(), nn.Linear(6, 125), nn.Sigmoid())
    return Autoencoder(encoder, decoder)


def make_volume():
    """Box-smoothed uniform noise, rescaled to [0, 1], written and read back with nibabel."""
    generator = torch.Generator().manual_seed(20260501)
    noise = torch.rand((1, 1) + tuple(n + 4 for n in SHAPE), generator=generator, dtype=torch.float64)
    smooth = F.conv3d(noise, torch.full((1, 1, 5, 5, 5), 1 / 125, dtype=torch.float64))[0, 0].numpy()
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    image = nib.Nifti1Image(smooth.astype(np.float32), AFFINE)
    image.set_data_dtype(np.float32)
    path = os.path.join(OUT, "volume.nii")
    nib.save(image, path)
    os.chmod(path, 0o644)
    back = nib.load(path)
    assert back.shape == SHAPE and np.allclose(back.affine, AFFINE)
    data = back.get_fdata(dtype=np.float32)
    assert data.min() == 0 and data.max() == 1
    return torch.from_numpy(np.ascontiguousarray(data))[None, None]


def randomise_biases(model, low, high):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.uniform_(low, high)


def save_state(model, name):
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    path = os.path.join(OUT, name)
    save_file(state, path, metadata={"source": SOURCE})
    os.chmod(path, 0o644)
    return state


def pool_all(prefix, feature_map, expected, per_region=None):
    """Features of `feature_map [1, C, ...]` for every pooling and grid."""
    for pooling, cls in POOLS.items():
        for grid in GRIDS:
            pooled = cls(grid)(feature_map)[0]  # [C, gx, gy, gz]
            if per_region is not None:
                c = pooled.shape[0]
                regions = pooled.reshape(c, -1).t()  # [R, C]
                pooled = per_region(regions).t()  # [C', R]
            key = f"{prefix}.{pooling}.{'x'.join(map(str, grid))}"
            expected[key] = pooled.flatten()


def main():
    os.makedirs(OUT, exist_ok=True)
    x32 = make_volume()
    x = x32.double()
    expected = {}

    # CAE: torch's default initialisation, biases in [0, 0.2] so few channels die under ReLU.
    torch.manual_seed(20260502)
    cae = build_cae()
    randomise_biases(cae, 0.0, 0.2)
    save_state(cae, "cae_state.safetensors")
    reference = build_cae().double()
    reference.load_state_dict({k: v.double() for k, v in load_file(os.path.join(OUT, "cae_state.safetensors")).items()}, strict=True)
    with torch.no_grad():
        cae_map = reference.encoder(x)
        assert cae_map.shape == (1, 8, 5, 4, 5), cae_map.shape
        # Every channel responds somewhere (the fixture would be weak otherwise).
        assert (cae_map[0].flatten(1).max(dim=1).values > 0).all()
        assert (cae_map - cae.encoder(x32).double()).abs().max().item() < 1e-5
        expected["cae.map"] = cae_map[0]
        pool_all("cae.encoder", cae_map, expected)

    # SAE: default initialisation, biases in [-0.5, 0.5].
    torch.manual_seed(20260503)
    sae = build_sae()
    randomise_biases(sae, -0.5, 0.5)
    save_state(sae, "sae_state.safetensors")
    reference = build_sae().double()
    reference.load_state_dict({k: v.double() for k, v in load_file(os.path.join(OUT, "sae_state.safetensors")).items()}, strict=True)
    first, second = reference.encoder[0], reference.encoder[2]
    with torch.no_grad():
        level1 = torch.sigmoid(F.conv3d(x, first.weight.view(6, 1, 5, 5, 5), first.bias))
        assert level1.shape == (1, 6, 19, 15, 17), level1.shape
        # The filters are the Linear on each flattened patch: check one patch directly.
        i, j, k = 7, 3, 11
        patch = x[0, 0, i:i + 5, j:j + 5, k:k + 5].reshape(1, 125)
        assert (reference.encoder[:2](patch)[0] - level1[0, :, i, j, k]).abs().max().item() < 1e-12
        grid = torch.sigmoid(F.conv3d(level1, second.weight.view(3, 6, 1, 1, 1), second.bias))
        assert (reference.encoder(patch)[0] - grid[0, :, i, j, k]).abs().max().item() < 1e-12
        expected["sae.map.1"] = level1[0]
        expected["sae.map.grid"] = grid[0]
        pool_all("sae.level1", level1, expected)
        pool_all("sae.grid", grid, expected)
        pool_all("sae.pooled", level1, expected, per_region=lambda r: torch.sigmoid(second(r)))

    tensors = {k: v.float().contiguous() for k, v in sorted(expected.items())}
    path = os.path.join(OUT, "expected.safetensors")
    save_file(tensors, path, metadata={"source": SOURCE})
    os.chmod(path, 0o644)
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")
    print(f"{len(tensors)} expected tensors: {', '.join(sorted(tensors))}")


if __name__ == "__main__":
    main()
