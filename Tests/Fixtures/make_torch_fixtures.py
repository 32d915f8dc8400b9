#!/usr/bin/env python3
"""PyTorch reference fixtures for the NeuralNet tests, and the interop check of our files.

Run once from the repository root (needs torch and safetensors; the Swift tests never do):

    python3 Tests/Fixtures/make_torch_fixtures.py

1. Writes `torch_stack_state.safetensors` (a seeded PyTorch model's state_dict, PyTorch names
   and layouts) and `torch_stack_io.safetensors` (its input, output, an output gradient, and
   the resulting input / parameter gradients and updated BatchNorm statistics) for

       Sequential(Conv3d(2, 3, 3, padding=1), BatchNorm3d(3), ReLU(), MaxPool3d(2),
                  ConvTranspose3d(3, 2, 3, stride=2, padding=1, output_padding=1), AvgPool3d(2))

   in training mode. The Swift test loads the state with `Checkpoint.load` into the same
   stack built from our layers and compares every tensor.
2. Checks `swift_conv3d.safetensors`, written by our `SafeTensors` writer (regenerate it with
   `ADWB_REGENERATE_FIXTURES=1 swift test --filter SafeTensorsInterop`): that
   `safetensors.torch.load_file` reads it and that an `nn.Conv3d(2, 4, 3, stride=2,
   padding=1)` loaded with its `weight`/`bias` reproduces its `output` from its `input`.
"""
import os
import sys

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def make_stack_fixture():
    torch.manual_seed(20261130)
    model = nn.Sequential(
        nn.Conv3d(2, 3, 3, padding=1),
        nn.BatchNorm3d(3),
        nn.ReLU(),
        nn.MaxPool3d(2),
        nn.ConvTranspose3d(3, 2, 3, stride=2, padding=1, output_padding=1),
        nn.AvgPool3d(2),
    ).double()
    with torch.no_grad():  # non-trivial BatchNorm affine parameters and statistics
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.5, 0.5)
        model[1].running_mean.uniform_(-0.2, 0.2)
        model[1].running_var.uniform_(0.5, 2.0)
    state = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(HERE, "torch_stack_state.safetensors"), metadata={"source": "make_torch_fixtures.py"})

    model.train()
    x = torch.rand(2, 2, 6, 8, 7, dtype=torch.float64, requires_grad=True)
    y = model(x)
    grad_output = torch.rand_like(y) - 0.5
    y.backward(grad_output)
    io = {
        "input": x.detach(),
        "output": y.detach(),
        "grad_output": grad_output,
        "grad_input": x.grad,
        "after.1.running_mean": model[1].running_mean,
        "after.1.running_var": model[1].running_var,
    }
    for name, p in model.named_parameters():
        io[f"grad.{name}"] = p.grad
    io = {k: v.float().contiguous() for k, v in io.items()}
    save_file(io, os.path.join(HERE, "torch_stack_io.safetensors"), metadata={"source": "make_torch_fixtures.py"})
    print("wrote torch_stack_state.safetensors, torch_stack_io.safetensors; output", tuple(y.shape))


def check_swift_file():
    path = os.path.join(HERE, "swift_conv3d.safetensors")
    if not os.path.exists(path):
        print("no swift_conv3d.safetensors yet: run the Swift test with ADWB_REGENERATE_FIXTURES=1 first")
        return True
    tensors = load_file(path)
    conv = nn.Conv3d(2, 4, 3, stride=2, padding=1)
    conv.load_state_dict({"weight": tensors["weight"], "bias": tensors["bias"]}, strict=True)
    with torch.no_grad():
        ours = tensors["output"]
        theirs = conv(tensors["input"])
    diff = (ours - theirs).abs().max().item()
    ok = theirs.shape == ours.shape and diff < 1e-4
    print(f"swift_conv3d.safetensors: load_file ok, weight {tuple(tensors['weight'].shape)}, "
          f"output {tuple(ours.shape)}, max |ours - torch| = {diff:.3g}: {'OK' if ok else 'MISMATCH'}")
    return ok


if __name__ == "__main__":
    make_stack_fixture()
    sys.exit(0 if check_swift_file() else 1)
