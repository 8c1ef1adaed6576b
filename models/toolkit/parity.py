"""ONNX-vs-torch parity helper shared by the tests (runs graphs in onnxruntime-node)."""

import os

import numpy as np
import torch

from .export import ROLE_FNS, example_inputs, role_specs
from .ortnode import run_onnx

# label -> max abs diff, printed at the end of a pytest run (tests/conftest.py)
PARITY: dict = {}


def parity(model, onnx_dir, role, label, resolution=None, **kw):
    """Runs `role` in torch and in onnxruntime-node on the same random inputs -> max abs diff."""
    spec = role_specs(model.cfg)[role]
    ins = example_inputs(model.cfg, role, resolution=resolution, **kw)
    with torch.no_grad():
        ref = ROLE_FNS[role](model, *ins)
    ref = (ref,) if isinstance(ref, torch.Tensor) else ref
    names = [x["name"] for x in spec["outputs"]]
    out = run_onnx(os.path.join(onnx_dir, f"{role}.onnx"),
                   {x["name"]: a.numpy() for x, a in zip(spec["inputs"], ins)}, names)
    d = 0.0
    for n, r in zip(names, ref):
        assert tuple(out[n].shape) == tuple(r.shape), (role, n, out[n].shape, r.shape)
        if r.numel():
            d = max(d, float(np.abs(out[n] - r.numpy()).max()))
    PARITY[label] = max(PARITY.get(label, 0.0), d)
    return d
