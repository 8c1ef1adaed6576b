"""ONNX export (opset 17) + manifest.json + tokenizer.json + preview map (the unipic-onnx/1 contract, models/README.md).

    cd models && /usr/bin/python3 -m toolkit.export --config tiny --random-seed 0 --out unipic-tiny

Graphs (one file each, shared by every resolution; the per-resolution positional tables are raw
float32 in pos_<res>.bin and passed as inputs, so 1.5B weights are never duplicated per size).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn

from .config import get_config
from .fp16 import convert_to_fp16
from .flops import flops_table
from .fused import MS_DOMAIN, fuse
from .model import UniPic, init_random
from .sampler import to_tokens
from .tokenizer import (ASSISTANT_PREFIX, EDIT_NEGATIVE, EDIT_POSITIVE, IMAGE, T2I_NEGATIVE,
                        T2I_POSITIVE, UNDERSTAND, USER_PREFIX, ByteLevelBPE, special_ids,
                        tiny_serving_tokenizer)

OPSET = 17
# Loaded by @huggingface/tokenizers next to tokenizer.json (Qwen2.5-Instruct's values: no BOS).
TOKENIZER_CONFIG = {"tokenizer_class": "Qwen2Tokenizer", "add_bos_token": False, "bos_token": None,
                    "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None,
                    "clean_up_tokenization_spaces": False, "split_special_tokens": False,
                    "model_max_length": 32768}
FORMAT = "unipic-onnx/1"


def io(name, dtype, shape):
    return {"name": name, "dtype": dtype, "shape": shape}


def role_specs(cfg) -> dict:
    """Input/output declarations of every graph. String dims are dynamic."""
    C, W, H = cfg.latent_channels, cfg.mar_width, cfg.llm_hidden
    kv, hd = cfg.llm_kv_heads, cfg.llm_head_dim
    past, present = [], []
    for i in range(cfg.llm_layers):
        past += [io(f"past_key_{i}", "float32", ["B", kv, "P", hd]), io(f"past_value_{i}", "float32", ["B", kv, "P", hd])]
        present += [io(f"present_key_{i}", "float32", ["B", kv, "P+T", hd]),
                    io(f"present_value_{i}", "float32", ["B", kv, "P+T", hd])]
    return {
        "vae_encoder": {"inputs": [io("pixels", "float32", ["B", 3, "H", "W"])],
                        "outputs": [io("latent_mean", "float32", ["B", C, "h", "w"])]},
        "vae_decoder": {"inputs": [io("latent", "float32", ["B", C, "h", "w"])],
                        "outputs": [io("pixels", "float32", ["B", 3, "H", "W"])]},
        "mar_encoder": {"inputs": [io("latents", "float32", ["B", "V", C]), io("vis_idx", "int64", ["B", "V"]),
                                   io("enc_pos", "float32", ["S", W])],
                        "outputs": [io("x_enc", "float32", ["B", "buf+V", W]),
                                    io("llm_in", "float32", ["B", "V+buf", H])]},
        "mar_fill": {"inputs": [io("x_con", "float32", ["B", "S", W]), io("con", "float32", ["B"])],
                     "outputs": [io("fill", "float32", ["B", "S", W])]},
        "mar_decoder": {"inputs": [io("x_enc", "float32", ["B", "buf+V", W]), io("llm_out", "float32", ["B", "V+buf", H]),
                                   io("vis_idx", "int64", ["B", "V"]), io("fill", "float32", ["B", "S", W]),
                                   io("dec_pos", "float32", ["S", W]), io("diff_pos", "float32", ["L", W]),
                                   io("pred_idx", "int64", ["B", "n"])],
                        "outputs": [io("z", "float32", ["B", "n", W])]},
        "llm": {"inputs": [io("input_ids", "int64", ["B", "T"]), io("inputs_embeds", "float32", ["B", "T", H]),
                           io("embeds_mask", "float32", ["B", "T"]), io("attention_mask", "int64", ["B", "P+T"]),
                           io("position_ids", "int64", ["B", "T"])] + past,
                "outputs": [io("hidden", "float32", ["B", "T", H]), io("logits", "float32", ["B", cfg.vocab_size])] + present},
        "diffusion_head": {"inputs": [io("x", "float32", ["N", C]), io("t", "int64", ["N"]), io("c", "float32", ["N", W])],
                           "outputs": [io("out", "float32", ["N", 2 * C])]},
    }


GRAPH_NOTES = {
    "vae_encoder": "posterior mean, unscaled; tokens = to_tokens(latent_mean) * vae.scale",
    "vae_decoder": "input tokens / vae.scale as [B,C,h,w]; output pixels ~[-1,1]",
    "mar_encoder": "visible tokens only, vis_idx ascending raster indices (V may be 0); enc_pos from pos_tables; "
                   "x_enc has buffers first, llm_in has buffers last (ready for the LLM)",
    "mar_fill": "con=0: mask_token everywhere (text-to-image, x_con may be zeros); con=1: decoder_embed(x_con), "
                "x_con = mar_encoder x_enc of the source image with all tokens visible (editing). Once per job",
    "mar_decoder": "llm_out = llm hidden of the V+buf new tokens; adds proj_out residual, scatters into fill, "
                   "returns z at pred_idx (ascending raster indices)",
    "llm": "input_ids used where embeds_mask=0, inputs_embeds where 1; causal over [past | new] with attention_mask "
           "on keys; logits = tied LM head on the last position only; P may be 0",
    "diffusion_head": "t = original timesteps (0..T-1); out[:, :C] = eps, out[:, C:] = learned-range variance v",
}


class _Fn(nn.Module):
    def __init__(self, model, fn):
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, *a):
        return self.fn(self.model, *a)


def _llm_fn(m, ids, emb, emask, attn, pos, *past_flat):
    past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
    hidden, logits, present = m.llm_forward(ids, emb, emask, attn, pos, past)
    return (hidden, logits) + tuple(t for kv in present for t in kv)


ROLE_FNS = {
    "vae_encoder": lambda m, x: m.vae_encode(x),
    "vae_decoder": lambda m, z: m.vae_decode(z),
    "mar_encoder": lambda m, lat, idx, pos: m.mar_encoder(lat, idx, pos),
    "mar_fill": lambda m, x, c: m.mar_fill(x, c),
    "mar_decoder": lambda m, *a: m.mar_decoder(*a),
    "llm": _llm_fn,
    "diffusion_head": lambda m, x, t, c: m.diffusion_head(x, t, c),
}


def example_inputs(cfg, role, resolution=None, seed=0, B=2, V=5, n=3, P=4, T=3):
    """Random inputs for export tracing and parity tests (shapes deliberately unequal)."""
    g = torch.Generator().manual_seed(seed)
    res = resolution or cfg.default_resolution
    hh = cfg.grid(res)
    L, buf, C, W, H = hh * hh, cfg.buffer_tokens, cfg.latent_channels, cfg.mar_width, cfg.llm_hidden
    rn = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    idx = lambda k: torch.stack([torch.sort(torch.randperm(L, generator=g)[:k]).values for _ in range(B)])  # noqa: E731
    if role == "vae_encoder":
        return (rn(B, 3, res, res).clamp(-1, 1),)
    if role == "vae_decoder":
        return (rn(B, C, hh, hh),)
    if role == "mar_encoder":
        return (rn(B, V, C), idx(V), rn(buf + L, W) * 0.02)
    if role == "mar_fill":
        return (rn(B, buf + L, W), torch.tensor([1.0] + [0.0] * (B - 1)))
    if role == "mar_decoder":
        return (rn(B, buf + V, W), rn(B, V + buf, H), idx(V), rn(B, buf + L, W), rn(buf + L, W) * 0.02,
                rn(L, W) * 0.02, idx(n))
    if role == "llm":
        past = []
        for _ in range(cfg.llm_layers):
            past += [rn(B, cfg.llm_kv_heads, P, cfg.llm_head_dim), rn(B, cfg.llm_kv_heads, P, cfg.llm_head_dim)]
        attn = torch.ones(B, P + T, dtype=torch.int64)
        attn[-1, P - 1] = 0  # a padded prompt key
        return (torch.randint(0, cfg.vocab_size, (B, T), generator=g), rn(B, T, H),
                torch.tensor([[1.0] * T] + [[0.0] * T] * (B - 1)), attn,
                (torch.arange(T)[None] + P).expand(B, T).contiguous(), *past)
    if role == "diffusion_head":
        N = 2 * n + 1
        return (rn(N, C), torch.randint(0, 1000, (N,), generator=g), rn(N, W))
    raise KeyError(role)


def export_graph(model, role, path, fused=False, fp16=False):
    """One role's graph. fused: contrib attention ops (fused.py); fp16: fp16 weights and compute,
    float32 I/O (fp16.py)."""
    spec = role_specs(model.cfg)[role]
    names_in = [x["name"] for x in spec["inputs"]]
    names_out = [x["name"] for x in spec["outputs"]]
    dyn = {}
    for x in spec["inputs"] + spec["outputs"]:
        d = {i: str(s) for i, s in enumerate(x["shape"]) if isinstance(s, str)}
        if d:
            dyn[x["name"]] = d
    # torch >= 2.5 has a second (dynamo) exporter that became the default later; use the TorchScript one
    extra = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    if fused:
        extra["custom_opsets"] = {MS_DOMAIN: 1}
    # fp16: trace to float32 in a scratch folder first (torch writes one file per tensor for a
    # graph over 2 GB), then rewrite
    scratch = tempfile.mkdtemp(prefix=f".{role}-", dir=os.path.dirname(os.path.abspath(path))) if fp16 else None
    target = os.path.join(scratch, f"{role}.onnx") if fp16 else path
    try:
        with torch.no_grad():
            torch.onnx.export(_Fn(fuse(model) if fused else model, ROLE_FNS[role]), example_inputs(model.cfg, role),
                              target, input_names=names_in, output_names=names_out, dynamic_axes=dyn,
                              opset_version=OPSET, do_constant_folding=True, **extra)
        if fp16:
            save_fp16(target, path)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def save_fp16(src, dst):
    """Writes the float32 graph src as fp16 into dst; over 2 GB, its weights go to one dst.data file."""
    m = convert_to_fp16(onnx.load(src))
    weight_bytes = sum(len(t.raw_data) for t in m.graph.initializer)
    if weight_bytes > 1_800_000_000:  # protobuf's 2 GB limit
        onnx.save(m, dst, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=os.path.basename(dst) + ".data", size_threshold=1024)
    else:
        onnx.save(m, dst)


# ---------------------------------------------------------------------------------------------
def synthetic_images(n, size, seed=0):
    """Colored rectangles on white, uint8 [n,size,size,3] (for the preview-map fit only)."""
    rs = np.random.RandomState(seed)
    imgs = np.full((n, size, size, 3), 255, dtype=np.uint8)
    for i in range(n):
        for _ in range(rs.randint(1, 5)):
            x0, y0 = rs.randint(0, size - 4, 2)
            w, h = rs.randint(3, max(4, size // 3), 2)
            imgs[i, y0:y0 + h, x0:x0 + w] = rs.randint(0, 256, 3)
    return imgs


@torch.no_grad()
def fit_preview(model, size, n=16, seed=0) -> dict:
    """Least-squares rgb = tokens @ weight + bias (tokens = scaled latents, rgb in [-1,1] averaged over
    each stride x stride patch), docs/model.md 7 option 1."""
    cfg = model.cfg
    imgs = synthetic_images(n, size, seed)
    px = torch.as_tensor(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
    tok = to_tokens(model.vae_encode(px)) * cfg.vae_scale                      # [n, L, C]
    s = cfg.vae_stride
    tgt = torch.nn.functional.avg_pool2d(px, s).reshape(n, 3, -1).transpose(1, 2)  # [n, L, 3]
    X = torch.cat([tok.reshape(-1, cfg.latent_channels), torch.ones(tok.shape[0] * tok.shape[1], 1)], 1).double()
    sol = torch.linalg.lstsq(X, tgt.reshape(-1, 3).double(), rcond=None).solution.float()  # [C+1, 3]
    return {"kind": "linear", "input": "token latents (scaled, as sampled)", "output": "rgb in [-1,1]",
            "weight": [[round(float(v), 7) for v in row] for row in sol[:-1]],
            "bias": [round(float(v), 7) for v in sol[-1]]}


def write_pos_tables(model, resolutions, out) -> list:
    entries = []
    for res in resolutions:
        g = model.cfg.grid(res)
        tabs = model.mar.pos_tables(g, g)
        fname = f"pos_{res}.bin"
        off, desc = 0, {}
        with open(os.path.join(out, fname), "wb") as f:
            for name, t in zip(("enc_pos", "dec_pos", "diff_pos"), tabs):
                a = t.detach().float().contiguous().numpy().astype("<f4")
                f.write(a.tobytes())
                desc[name] = {"offset": off, "shape": list(a.shape), "dtype": "float32"}
                off += a.nbytes
        entries.append({"size": res, "grid": [g, g], "tokens": g * g,
                        "image_prompt_tokens": g * g + model.cfg.buffer_tokens,
                        "pos_tables": {"file": fname, **desc}})
    return entries


def build_manifest(model, tok: ByteLevelBPE, resolutions, name, preview, source, fused=False, fp16=False) -> dict:
    cfg = model.cfg
    ids = special_ids(tok)
    specs = role_specs(cfg)
    return {
        "format": FORMAT,
        "name": name,
        "config": cfg.name,
        "source": source,
        "dims": {"latent_channels": cfg.latent_channels, "vae_stride": cfg.vae_stride,
                 "buffer_tokens": cfg.buffer_tokens, "mar_width": cfg.mar_width,
                 "llm_hidden": cfg.llm_hidden, "llm_layers": cfg.llm_layers, "llm_heads": cfg.llm_heads,
                 "llm_kv_heads": cfg.llm_kv_heads, "llm_head_dim": cfg.llm_head_dim,
                 "vocab_size": cfg.vocab_size, "head_out_channels": 2 * cfg.latent_channels},
        "vae": {"scale": cfg.vae_scale, "pixel_range": [-1, 1],
                "encode": "tokens = latent_mean * scale (raster order: token y*w+x = latent[:, :, y, x])",
                "decode": "latent = tokens / scale", "to_uint8": "trunc(clamp(127.5*x + 128, 0, 255))",
                "from_uint8": "x/255*2 - 1"},
        "resolutions": [],  # filled by export()
        "default_resolution": cfg.default_resolution,
        "graphs": {role: {"file": f"{role}.onnx", **spec, "notes": GRAPH_NOTES[role]} for role, spec in specs.items()},
        "kv_cache": {"layers": cfg.llm_layers, "past": "past_key_{i}, past_value_{i}", "present": "present_key_{i}, present_value_{i}",
                     "layout": ["B", cfg.llm_kv_heads, "P", cfg.llm_head_dim], "dtype": "float32",
                     # GroupQueryAttention: keys left-packed, one row per call when T > 1 and P > 0 (fused.py)
                     **({"attention": "GroupQueryAttention", "rows_with_past": 1} if fused else {})},
        "precision": {"weights": "float16" if fp16 else "float32", "io": "float32",
                      "attention": "com.microsoft contrib ops" if fused else "plain ONNX ops"},
        "flops": flops_table(cfg),
        "tokenizer": {"file": "tokenizer.json", "config_file": "tokenizer_config.json", "format": "huggingface-tokenizers",
                      "special_ids": ids, "eos_id": ids["eos"], "pad_id": ids["pad"],
                      "image_token_id": ids["image"], "add_bos": False},
        "prompts": {"user_prefix": USER_PREFIX, "assistant_prefix": ASSISTANT_PREFIX,
                    "image_token": IMAGE,
                    "t2i_positive": T2I_POSITIVE, "t2i_negative": T2I_NEGATIVE,
                    "edit_positive": EDIT_POSITIVE, "edit_negative": EDIT_NEGATIVE,
                    "understand": UNDERSTAND,
                    "notes": "{image} = image_token repeated image_prompt_tokens times; those rows take "
                             "llm_in of mar_encoder on all tokens (buffers last). No system turn."},
        "diffusion": {"T": 1000, "noise_schedule": "cosine", "cosine_s": 0.008, "max_beta": 0.2,
                      "respacing": "space_timesteps(T, steps): float stride (T-1)/(steps-1), Python round (half to even)",
                      "timestep_input": "original", "prediction": "epsilon", "variance": "learned_range",
                      "clip_denoised": False, "cfg_on": "epsilon", "cfg_schedules": ["constant", "linear"]},
        "mask_schedule": {"kind": "cosine", "order": "one random permutation per image, shared by cond/uncond rows"},
        "sampling_defaults": dict(cfg.sampling),
        # optional (absent = edits use sampling_defaults), so manifests without it stay unchanged
        **({"edit_sampling_defaults": dict(cfg.edit_sampling)} if cfg.edit_sampling else {}),
        "understanding_defaults": {"max_new_tokens": cfg.max_new_tokens, "greedy": True},
        "preview": preview,
    }


def export(model, tokenizer_spec: dict, out: str, resolutions=None, name=None, source="random",
           fused=False, fp16=False) -> dict:
    """Writes every graph, pos tables, tokenizer.json and manifest.json into `out`.
    fused: attention as com.microsoft GroupQueryAttention / MultiHeadAttention; fp16: fp16 graphs."""
    os.makedirs(out, exist_ok=True)
    cfg = model.cfg
    resolutions = list(resolutions or cfg.resolutions)
    model.eval()
    for role in role_specs(cfg):
        export_graph(model, role, os.path.join(out, f"{role}.onnx"), fused=fused, fp16=fp16)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_spec, f, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(TOKENIZER_CONFIG, f, indent=1)
    tok = ByteLevelBPE(tokenizer_spec)
    if len(tok) > cfg.vocab_size:
        raise ValueError(f"tokenizer has {len(tok)} ids but the model vocab is {cfg.vocab_size}")
    preview = fit_preview(model, min(resolutions[0], 256))
    man = build_manifest(model, tok, resolutions, name or cfg.name, preview, source, fused, fp16)
    man["resolutions"] = write_pos_tables(model, resolutions, out)
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(man, f, indent=1)
    return man


def add_graph_options(ap):
    ap.add_argument("--fused-attention", action="store_true",
                    help="LLM attention as com.microsoft GroupQueryAttention, MAR as MultiHeadAttention")
    ap.add_argument("--fp16", action="store_true", help="fp16 weights and compute (inputs and outputs stay float32)")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.export", description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--random-seed", type=int, default=0, help="seeded random weights")
    ap.add_argument("--weights", help="a torch state dict (.pt) of UniPic instead of random weights")
    ap.add_argument("--out", required=True)
    ap.add_argument("--resolutions", help="comma list, default from the config")
    add_graph_options(ap)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a.weights:  # at the weights' own MAR depth
        from .evaluate import load_torch
        model = load_torch(None, a.weights, a.config)
        source = f"weights {os.path.basename(a.weights)}"
    else:
        model = init_random(UniPic(get_config(a.config)), a.random_seed)
        source = f"random weights, seed {a.random_seed}"
    cfg = model.cfg
    if cfg.name != "tiny":
        sys.exit("only the tiny config has a built-in tokenizer; use toolkit.convert for the 1.5B")
    res = [int(r) for r in a.resolutions.split(",")] if a.resolutions else None
    man = export(model, tiny_serving_tokenizer(cfg.vocab_size), a.out, res, name=f"unipic-{cfg.name}", source=source,
                 fused=a.fused_attention, fp16=a.fp16)
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
    print(f"wrote {a.out}: {len(man['graphs'])} graphs, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
