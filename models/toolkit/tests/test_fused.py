"""Fused-attention fp16 graphs (issue 13, item 1): `toolkit.convert --fused-attention --fp16` on the
synthetic checkpoint (reduced widths: the full-size run is toolkit/gpu_check.py, README "GPU path"),
against the torch reference, graph by graph and through the reference sampler."""

import json
import os

import numpy as np
import onnx
import pytest
import torch

from toolkit.convert import convert
from toolkit.export import ROLE_FNS, example_inputs, export_graph, role_specs
from toolkit.ortnode import OnnxUniPic, OrtServer, node_available, run_onnx
from toolkit.parity import PARITY
from toolkit.sampler import Draws, Runner
from toolkit.synthetic import write_synthetic_checkpoint
from toolkit.tokenizer import ByteLevelBPE

pytestmark = pytest.mark.skipif(not node_available(), reason="needs node + onnxruntime-node")
# fp16 weights and activations: ~1e-3 relative per graph (fp16 has an 11-bit mantissa)
FP16_REL = 5e-3


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    ck = str(tmp_path_factory.mktemp("ckpt"))
    write_synthetic_checkpoint(ck, seed=2)
    out = str(tmp_path_factory.mktemp("fused"))
    res = convert(ck, out, resolutions=(64,), log=lambda *a: None, fused=True, fp16=True)
    return out, res["model"], res["manifest"]


def _rel(got, ref):
    return float(np.abs(got - ref).max() / (1e-6 + np.abs(ref).max()))


def _run(folder, model, role, ins, names=None):
    spec = role_specs(model.cfg)[role]
    names = names or [x["name"] for x in spec["outputs"]]
    out = run_onnx(os.path.join(folder, f"{role}.onnx"), {x["name"]: a.numpy() for x, a in zip(spec["inputs"], ins)}, names)
    with torch.no_grad():
        ref = ROLE_FNS[role](model, *ins)
    ref = (ref,) if isinstance(ref, torch.Tensor) else ref
    return {n: (out[n], r.numpy()) for n, r in zip([x["name"] for x in spec["outputs"]], ref) if n in names}


def test_graphs_use_contrib_attention_in_fp16(fused):
    out, model, man = fused
    assert man["kv_cache"]["attention"] == "GroupQueryAttention" and man["kv_cache"]["rows_with_past"] == 1
    assert man["precision"]["weights"] == "float16"
    ops = {role: [n.op_type for n in onnx.load(os.path.join(out, f"{role}.onnx")).graph.node] for role in man["graphs"]}
    assert ops["llm"].count("GroupQueryAttention") == model.cfg.llm_layers and "Softmax" not in ops["llm"]
    assert ops["mar_encoder"].count("MultiHeadAttention") == model.cfg.mar_enc_blocks
    assert ops["mar_decoder"].count("MultiHeadAttention") == model.cfg.mar_dec_blocks
    g = onnx.load(os.path.join(out, "llm.onnx")).graph
    assert all(i.type.tensor_type.elem_type in (1, 7) for i in g.input)  # float32 / int64 I/O
    assert {t.data_type for t in g.initializer if len(t.dims) == 2} == {10}  # every weight matrix fp16


@pytest.mark.parametrize("role", ["vae_encoder", "vae_decoder", "mar_encoder", "mar_fill", "mar_decoder", "diffusion_head"])
def test_role_parity(fused, role):
    out, model, _ = fused
    for name, (got, ref) in _run(out, model, role, example_inputs(model.cfg, role, seed=5)).items():
        PARITY[f"fused fp16/{role}/{name} (relative)"] = _rel(got, ref)
        assert _rel(got, ref) < FP16_REL, (role, name, _rel(got, ref))


def test_llm_parity_and_left_packed_cache(fused):
    """One row with T > 1 after a past (the MAR iteration), a pad inside the past: the hidden
    states match; the present cache holds the new keys right after the valid past (left-packed)."""
    out, model, _ = fused
    ins = list(example_inputs(model.cfg, "llm", seed=6, B=1, P=4, T=3))
    ins[3][0, 3] = 0  # the last prompt key is a pad
    res = _run(out, model, "llm", ins)
    for n in ("hidden", "logits"):
        PARITY[f"fused fp16/llm/{n} (relative)"] = _rel(*res[n])
        assert _rel(*res[n]) < FP16_REL, (n, _rel(*res[n]))
    got, ref = res["present_key_0"]  # ref: [past 0..3 | new 4..6]; fused: [past 0..2 | new 3..5 | unused]
    assert _rel(got[:, :, :3], ref[:, :, :3]) < FP16_REL and _rel(got[:, :, 3:6], ref[:, :, 4:7]) < FP16_REL


def test_rope_keeps_float32_positions(fused):
    """Positions past 2048 (fp16 holds only even integers there) still match: RoPE angles stay
    float32 inside the fp16 graph."""
    out, model, _ = fused
    ins = list(example_inputs(model.cfg, "llm", seed=7, B=1, P=0, T=5))
    ins[4] = ins[4] + 4001
    res = _run(out, model, "llm", ins, ["hidden"])
    assert _rel(*res["hidden"]) < FP16_REL, _rel(*res["hidden"])


def test_fused_fp32_matches_plain(fused, tmp_path):
    """Without fp16 the fused graphs are the plain ones to float32 rounding."""
    _, model, _ = fused
    for role in ("mar_encoder", "llm"):
        export_graph(model, role, str(tmp_path / f"{role}.onnx"), fused=True)
        ins = list(example_inputs(model.cfg, role, seed=8, **({"B": 1} if role == "llm" else {})))
        if role == "llm":
            ins[3] = torch.ones_like(ins[3])  # no pad: both caches are [past | new]
        for name, (got, ref) in _run(str(tmp_path), model, role, ins).items():
            PARITY[f"fused fp32/{role}/{name}"] = float(np.abs(got - ref).max())
            assert np.abs(got - ref).max() < 1e-4, (role, name)


def test_generation_through_fused_graphs(fused):
    """The reference sampler driving the fp16 fused graphs (cond and uncond rows one at a time in the
    LLM, as the engine does) samples the same tokens as torch, within fp16 tolerance."""
    out, model, _ = fused
    with open(os.path.join(out, "tokenizer.json"), encoding="utf-8") as f:
        tok = ByteLevelBPE(json.load(f))
    params = {"steps": 4, "cfg": 3.0, "cfgSchedule": "constant", "temperature": 1.0, "diffusionSteps": 10}
    ref, _ = Runner(model, tok, 64).generate(["a red circle", "two blue squares"], Draws(3), params)
    srv = OrtServer()
    try:
        got, _ = Runner(OnnxUniPic(out, model.cfg, srv), tok, 64).generate(["a red circle", "two blue squares"], Draws(3), params)
    finally:
        srv.close()
    rel = float((np.abs(got.numpy() - ref.numpy()) / (1 + np.abs(ref.numpy()))).max())
    PARITY["fused fp16/e2e tokens, |d|/(1+|ref|)"] = rel
    assert rel < 5e-2, rel
