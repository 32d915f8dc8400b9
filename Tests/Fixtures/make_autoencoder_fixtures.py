#!/usr/bin/env python3
"""PyTorch reference fixtures for the autoencoders (Tests/AutoencodersTests/TorchInteropTests.swift).

Run once from the repository root (needs torch and safetensors; the Swift tests never do):

    python3 Tests/Fixtures/make_autoencoder_fixtures.py

For each case below, builds in PyTorch a module with two attributes, `encoder` and `decoder`,
each an `nn.Sequential` laid out exactly as `StackedAutoencoder` / `ConvolutionalAutoencoder`
lay out theirs, so its `state_dict()` names are the ones our checkpoints use:

    SAE  encoder: [Linear(F→h1), act, Linear(h1→h2), act, ...]
         decoder: [Linear(hK→hK−1), act, ..., Linear(h1→F), out_act]   (out_act omitted if linear;
                  a tied decoder layer holds only `bias` and uses the encoder weight, transposed)
    CAE  encoder, per level: [Conv3d(k, padding k//2), act, MaxPool3d(2)]
         decoder, per level (mirrored): transpose: [ConvTranspose3d(k, stride 2, padding k//2,
                  output_padding 1), act]; upsample: [Upsample(2, nearest), Conv3d(k, padding k//2),
                  act]; no act after the last layer. On an axis where the patch has extent 1
                  (2-D slices) the kernel, pooling and upsampling factor are 1, padding and
                  output padding 0.

Weights are torch's default initialisation, biases uniform in [-0.5, 0.5] (non-zero), all from
a per-case seed. The reference outputs are computed in float64 from the float32 weights and
input, then stored as float32.

Output, in Tests/Fixtures/Autoencoders/:

* `<case>.safetensors` (float32, written by `safetensors.torch.save_file`):
    - the model's `state_dict()` under its own names (`encoder.0.weight`, ...);
    - `fixture.input`:  the input batch, `[N, 1, d, h, w]`;
    - `fixture.output`: the model's output, `[N, F]` for a SAE (its input is the flattened
      patch `[N, F]`, F = d·h·w) and `[N, 1, d, h, w]` for a CAE;
    - SAE: `fixture.codes.<k>` for k = 1...K, the codes after k encoder levels
      (`encoder[:2k](x)`, `[N, h_k]`); CAE: `fixture.codes`, the encoder output
      `[N, c_L, d', h', w']`.
  Header metadata: `source` ("make_autoencoder_fixtures.py <case>, torch <version>").
* `cases.json`: `{"source", "torch", "cases": [{"name", "model" ("sae"|"cae"), "patch_size"
  [d, h, w], "batch" N, "sae" | "cae": the options in `config.json`'s snake_case keys, "state":
  [[name, shape], ...] in state_dict order}]}`.
"""
import copy
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "Autoencoders")

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "linear": None}

CASES = [
    # The payan2015 shape in small: sigmoid hidden units, sigmoid output (inputs in [0, 1]).
    dict(name="sae_sigmoid", model="sae", patch_size=[3, 3, 3], batch=3,
         sae=dict(hidden=[6, 4], activation="sigmoid", output_activation="sigmoid", tied_weights=False)),
    # Linear output (z-scored inputs): the decoder's last Linear has no activation after it.
    dict(name="sae_linear_output", model="sae", patch_size=[3, 3, 3], batch=3,
         sae=dict(hidden=[6, 4], activation="sigmoid", output_activation="linear", tied_weights=False)),
    # Tied weights: decoder layers store only their bias; non-cubic patch (flattening order).
    dict(name="sae_tied_tanh", model="sae", patch_size=[2, 3, 4], batch=3,
         sae=dict(hidden=[5, 3], activation="tanh", output_activation="linear", tied_weights=True)),
    dict(name="cae_transpose", model="cae", patch_size=[8, 8, 8], batch=2,
         cae=dict(channels=[2, 3], kernel=3, activation="relu", decoder="transpose")),
    dict(name="cae_upsample", model="cae", patch_size=[8, 8, 8], batch=2,
         cae=dict(channels=[2, 3], kernel=3, activation="relu", decoder="upsample")),
    # Anisotropic patch and kernel 5: catches axis mix-ups that a cube would hide.
    dict(name="cae_anisotropic_k5_tanh", model="cae", patch_size=[4, 8, 12], batch=2,
         cae=dict(channels=[2, 2], kernel=5, activation="tanh", decoder="transpose")),
    # 2-D slices: the flat axis gets kernel 1, pooling 1, stride 1, padding / output padding 0.
    dict(name="cae_slice_transpose", model="cae", patch_size=[1, 8, 8], batch=3,
         cae=dict(channels=[2, 3], kernel=3, activation="relu", decoder="transpose")),
    dict(name="cae_slice_upsample", model="cae", patch_size=[8, 8, 1], batch=3,
         cae=dict(channels=[2, 3], kernel=3, activation="sigmoid", decoder="upsample")),
]


class Autoencoder(nn.Module):
    """Our `EncoderDecoder`: state under `encoder.*` and `decoder.*`."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x):
        return self.decoder(self.encoder(x))


class TiedLinear(nn.Module):
    """Our `TiedDense`: `y = x W + b` with the encoder Linear's `W: [out, in]`; state: `bias` only."""

    def __init__(self, encoder_linear):
        super().__init__()
        self._encoder = [encoder_linear]  # a list, so it is not registered as a child module
        self.bias = nn.Parameter(torch.zeros(encoder_linear.in_features))

    def forward(self, x):
        return F.linear(x, self._encoder[0].weight.t(), self.bias)


def activation(name):
    cls = ACTIVATIONS[name]
    return [cls()] if cls is not None else []


def build_sae(features, o):
    sizes = [features] + o["hidden"]
    encoder = []
    for k in range(len(o["hidden"])):
        encoder += [nn.Linear(sizes[k], sizes[k + 1])] + activation(o["activation"])
    decoder = []
    for k in reversed(range(len(o["hidden"]))):
        decoder.append(TiedLinear(encoder[2 * k]) if o["tied_weights"] else nn.Linear(sizes[k + 1], sizes[k]))
        decoder += activation(o["output_activation"] if k == 0 else o["activation"])
    return Autoencoder(nn.Sequential(*encoder), nn.Sequential(*decoder))


def build_cae(patch_size, o):
    def per_axis(value, flat):
        return tuple(flat if extent == 1 else value for extent in patch_size)

    kernel, padding = per_axis(o["kernel"], 1), per_axis(o["kernel"] // 2, 0)
    factor, output_padding = per_axis(2, 1), per_axis(1, 0)
    channels = [1] + o["channels"]
    encoder = []
    for i in range(len(o["channels"])):
        encoder += [nn.Conv3d(channels[i], channels[i + 1], kernel, padding=padding)]
        encoder += activation(o["activation"])
        encoder += [nn.MaxPool3d(factor)]
    decoder = []
    for i in reversed(range(len(o["channels"]))):
        cin, cout = channels[i + 1], channels[i]
        if o["decoder"] == "transpose":
            decoder += [nn.ConvTranspose3d(cin, cout, kernel, stride=factor, padding=padding, output_padding=output_padding)]
        else:
            decoder += [nn.Upsample(scale_factor=tuple(float(f) for f in factor), mode="nearest"),
                        nn.Conv3d(cin, cout, kernel, padding=padding)]
        if i > 0:
            decoder += activation(o["activation"])
    return Autoencoder(nn.Sequential(*encoder), nn.Sequential(*decoder))


def make_case(index, case):
    torch.manual_seed(20261130 + index)
    d, h, w = case["patch_size"]
    n = case["batch"]
    if case["model"] == "sae":
        model = build_sae(d * h * w, case["sae"])
    else:
        model = build_cae(case["patch_size"], case["cae"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.5, 0.5)
    sigmoid_output = case["model"] == "sae" and case["sae"]["output_activation"] == "sigmoid"
    x = torch.rand(n, 1, d, h, w) if sigmoid_output else torch.randn(n, 1, d, h, w)

    reference = copy.deepcopy(model).double()
    for layer in reference.decoder:  # deepcopy keeps a tied layer pointing at the copied encoder
        if isinstance(layer, TiedLinear):
            assert any(layer._encoder[0] is m for m in reference.encoder)
    reference.eval()
    io = {"fixture.input": x}
    with torch.no_grad():
        xd = x.double()
        if case["model"] == "sae":
            flat = xd.reshape(n, d * h * w)
            io["fixture.output"] = reference(flat)
            for k in range(1, len(case["sae"]["hidden"]) + 1):
                io[f"fixture.codes.{k}"] = reference.encoder[: 2 * k](flat)
        else:
            io["fixture.output"] = reference(xd)
            io["fixture.codes"] = reference.encoder(xd)
        # The float32 model agrees (a check on the script, not the fixture).
        ours32 = model(x.reshape(n, d * h * w) if case["model"] == "sae" else x)
        assert (ours32.double() - io["fixture.output"]).abs().max().item() < 1e-5

    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    tensors = dict(state)
    tensors.update({k: v.float().contiguous() for k, v in io.items()})
    path = os.path.join(OUT, case["name"] + ".safetensors")
    # One metadata key: safetensors writes several in a random order, and the files should be
    # byte-for-byte reproducible.
    save_file(tensors, path, metadata={"source": f"make_autoencoder_fixtures.py {case['name']}, torch {torch.__version__}"})
    os.chmod(path, 0o644)

    # Round trip: a fresh model loads the stored state strictly and reproduces the output.
    stored = load_file(path)
    fresh = build_sae(d * h * w, case["sae"]) if case["model"] == "sae" else build_cae(case["patch_size"], case["cae"])
    fresh.load_state_dict({k: v for k, v in stored.items() if not k.startswith("fixture.")}, strict=True)
    with torch.no_grad():
        again = fresh(stored["fixture.input"].reshape(n, -1) if case["model"] == "sae" else stored["fixture.input"])
    assert (again - stored["fixture.output"]).abs().max().item() < 1e-5

    entry = {k: case[k] for k in ("name", "model", "patch_size", "batch", case["model"])}
    entry["state"] = [[k, list(v.shape)] for k, v in state.items()]
    print(f"{case['name']}: {len(state)} state tensors, output {tuple(io['fixture.output'].shape)}, "
          f"{os.path.getsize(path)} bytes")
    return entry


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    entries = [make_case(i, case) for i, case in enumerate(CASES)]
    manifest = {"source": "make_autoencoder_fixtures.py", "torch": torch.__version__, "cases": entries}
    # One line per case and per state entry (compact, diff-friendly).
    lines = [json.dumps({k: v for k, v in entry.items() if k != "state"})[:-1] + ', "state": [\n'
             + ",\n".join("   " + json.dumps(item) for item in entry["state"]) + "]}" for entry in entries]
    text = ('{"source": "make_autoencoder_fixtures.py", "torch": ' + json.dumps(torch.__version__)
            + ', "cases": [\n' + ",\n".join(" " + line for line in lines) + "\n]}\n")
    assert json.loads(text) == manifest
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        f.write(text)
    print(f"wrote {len(entries)} cases to {OUT}")
