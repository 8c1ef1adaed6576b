"""Golden fixtures for the TypeScript engine's parity tests (format: models/README.md, "Fixtures").

    cd models && /usr/bin/python3 -m toolkit.fixtures --out ../test/fixtures/toolkit

All model-dependent fixtures use the `tiny` config with the weights models/unipic-tiny was exported
from: seeded random weights (`--random-seed SEED`, as `python -m toolkit.export --config tiny
--random-seed SEED`) or a trained state dict (`--weights checkpoints/unipic-tiny-ema-fp16.pt`, the
committed weights). Tensors are {"dtype", "shape", "b64"} (little-endian, row-major).
"""

from __future__ import annotations

import argparse
import base64
import json
import os

import numpy as np
import torch

from .config import get_config
from .diffusion import Schedule, ddpm_step
from .model import UniPic, init_random
from .sampler import Draws, Runner, cfg_scale, from_uint8, mask_len_after, to_uint8
from .tokenizer import ByteLevelBPE, T2I_NEGATIVE, T2I_POSITIVE, build_tiny_tokenizer, chat

FORMAT = "unipic-fixture/1"


def enc(t) -> dict:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if a.dtype == np.uint8:
        dt = "uint8"
    elif a.dtype.kind in "iu":
        a, dt = a.astype("<i8"), "int64"
    else:
        a, dt = a.astype("<f4"), "float32"
    return {"dtype": dt, "shape": list(a.shape), "b64": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()}


def dec(d: dict) -> np.ndarray:
    dt = {"int64": "<i8", "float32": "<f4", "uint8": "u1"}[d["dtype"]]
    return np.frombuffer(base64.b64decode(d["b64"]), dtype=dt).reshape(d["shape"])


def mask_steps(L: int, N: int) -> list:
    """Tokens predicted at each MAR step (docs/model.md 3.3 table)."""
    out, masked = [], L
    for s in range(N):
        nxt = mask_len_after(s, N, L, masked)
        lo = 0 if s >= N - 1 else nxt
        out.append({"mask_len": nxt, "predict": masked - lo})
        masked = lo
    return out


def schedule_fixture() -> dict:
    return {"format": FORMAT, "kind": "schedule",
            "diffusion": {str(s): Schedule(s).tables() for s in (100, 25, 10)},
            "mask": {f"{L}x{N}": mask_steps(L, N) for L, N in ((64, 16), (64, 8), (256, 32), (1024, 32), (4096, 32), (4096, 64))},
            "cfg_linear": {"cfg": 3.0, "L": 64, "values": [cfg_scale(3.0, "linear", 64, m["mask_len"]) for m in mask_steps(64, 16)]}}


MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # models/


def _header(cfg, seed, kind):
    if isinstance(seed, str):  # trained weights
        rel = os.path.relpath(os.path.abspath(seed), MODELS)  # the same text from any working directory
        return {"format": FORMAT, "kind": kind, "model": {"config": cfg.name, "weights": os.path.basename(seed),
                                                           "export": f"python -m toolkit.export --config {cfg.name} --weights {rel}"}}
    return {"format": FORMAT, "kind": kind, "model": {"config": cfg.name, "random_seed": seed,
                                                       "export": f"python -m toolkit.export --config {cfg.name} --random-seed {seed}"}}


@torch.no_grad()
def head_step_fixture(model, seed) -> dict:
    cfg = model.cfg
    g = torch.Generator().manual_seed(100)
    n, C, W = 3, cfg.latent_channels, cfg.mar_width
    sch = Schedule(25)
    k = 20
    x = torch.randn(n, C, generator=g)
    zc, zu = torch.randn(n, W, generator=g), torch.randn(n, W, generator=g)
    t = torch.full((2 * n,), sch.timesteps[k], dtype=torch.int64)
    out = model.diffusion_head(torch.cat([x, x]), t, torch.cat([zc, zu]))
    noise = torch.randn(n, C, generator=g)
    x_next = ddpm_step(sch, k, x, out[:n], out[n:], 3.0, 0.9, noise)
    x_last = ddpm_step(sch, 0, x, out[:n], out[n:], 3.0, 0.9, None)
    return _header(cfg, seed, "diffusion_step") | {
        "diffusion_steps": 25, "k": k, "t": sch.timesteps[k], "cfg": 3.0, "temperature": 0.9,
        "head_inputs": {"x": enc(torch.cat([x, x])), "t": enc(t), "c": enc(torch.cat([zc, zu]))},
        "head_output": enc(out), "noise": enc(noise), "x_next": enc(x_next),
        "x_next_at_k0": enc(x_last)}


@torch.no_grad()
def mar_iteration_fixture(model, tok, seed) -> dict:
    """One MAR iteration of text-to-image (B=1 with CFG): inputs, intermediates, z, revealed tokens."""
    r = Runner(model, tok)
    cfg = model.cfg
    L, C = r.L, cfg.latent_channels
    texts = [chat(T2I_POSITIVE.format(prompt="a red circle")), chat(T2I_NEGATIVE)]
    pre = r.prefill(texts)
    g = torch.Generator().manual_seed(7)
    rs = np.random.RandomState(7)
    order = rs.permutation(L)
    steps, step = 16, 3
    masked = L
    for s in range(step):  # reach step 3 of a 16-step schedule
        masked = mask_len_after(s, steps, L, masked)
    nxt = mask_len_after(step, steps, L, masked)
    vis = torch.as_tensor(np.sort(order[masked:]))[None]
    pred = torch.as_tensor(np.sort(order[nxt:masked]))[None]
    tokens = torch.zeros(2, L, C)
    tokens[:, vis[0]] = torch.randn(vis.shape[1], C, generator=g)
    fill = model.mar_fill(torch.zeros(2, cfg.buffer_tokens + L, cfg.mar_width), torch.zeros(2))
    lat = tokens[:, vis[0]]
    x_enc, llm_in = model.mar_encoder(lat, torch.cat([vis, vis]), r.enc_pos)
    z = r.mar_iteration(tokens, torch.cat([vis, vis]), torch.cat([pred, pred]), pre, fill)
    draws = Draws(11)
    sch = Schedule(10)
    x = r.diffuse(z[0], z[1], sch, 3.0, 1.0, draws)
    return _header(cfg, seed, "mar_iteration") | {
        "resolution": cfg.default_resolution, "steps": steps, "step": step, "mask_len_before": masked,
        "mask_len_after": nxt, "order": order.tolist(),
        "prompt_ids": pre["ids"].tolist(), "prompt_mask": pre["mask"].tolist(),
        "vis_idx": vis[0].tolist(), "pred_idx": pred[0].tolist(),
        "visible_latents": enc(lat[0]), "x_enc": enc(x_enc), "llm_in": enc(llm_in), "z": enc(z),
        "diffusion": {"steps": 10, "cfg": 3.0, "temperature": 1.0,
                      "normals": [enc(a) for a in draws.record["normals"]], "revealed": enc(x)}}


def _record(draws) -> dict:
    return {"orders": [o.tolist() for o in draws.record["orders"]],
            "normals": [enc(a) for a in draws.record["normals"]]}


def source_image(cfg, seed=3) -> np.ndarray:
    """A fixed 'ShapesWorld-like' source image: white canvas, two flat shapes, uint8 [1,S,S,3]."""
    S = cfg.default_resolution
    img = np.full((1, S, S, 3), 255, dtype=np.uint8)
    yy, xx = np.mgrid[0:S, 0:S] + 0.5
    img[0][(xx - 0.3 * S) ** 2 + (yy - 0.4 * S) ** 2 <= (0.12 * S) ** 2] = (220, 40, 40)
    img[0][(abs(xx - 0.7 * S) <= 0.1 * S) & (abs(yy - 0.6 * S) <= 0.1 * S)] = (40, 80, 220)
    return img


@torch.no_grad()
def run_fixtures(model, tok, seed) -> dict:
    cfg = model.cfg
    r = Runner(model, tok)
    out = {}
    gp = {"steps": 8, "cfg": 3.0, "cfgSchedule": "constant", "temperature": 1.0, "diffusionSteps": 10}
    prompts = ["a red circle", "two blue squares"]
    d = Draws(1234)
    tokens, pix = r.generate(prompts, d, gp)
    out["generate"] = _header(cfg, seed, "generate") | {
        "task": "generate", "resolution": cfg.default_resolution, "params": gp, "prompts": prompts,
        "prompt_texts": [chat(T2I_POSITIVE.format(prompt=p)) for p in prompts] + [chat(T2I_NEGATIVE)],
        "prompt_ids": [tok.encode(chat(T2I_POSITIVE.format(prompt=p))) for p in prompts] + [tok.encode(chat(T2I_NEGATIVE))],
        "draws": _record(d), "tokens": enc(tokens), "image": enc(to_uint8(pix))}
    ep = {"steps": 6, "cfg": 2.5, "cfgSchedule": "linear", "temperature": 0.8, "diffusionSteps": 10}
    src = source_image(cfg)
    d = Draws(99)
    tokens, pix = r.edit(from_uint8(src), ["make the circle green"], d, ep)
    out["edit"] = _header(cfg, seed, "edit") | {
        "task": "edit", "resolution": cfg.default_resolution, "params": ep,
        "instructions": ["make the circle green"], "source_image": enc(src),
        "draws": _record(d), "tokens": enc(tokens), "image": enc(to_uint8(pix))}
    q = "what color is the circle?"
    ids, text = r.understand(from_uint8(src), q)
    out["understand"] = _header(cfg, seed, "understand") | {
        "task": "understand", "resolution": cfg.default_resolution, "question": q,
        "source_image": enc(src), "max_new_tokens": cfg.max_new_tokens,
        "generated_ids": ids, "text": text}
    return out


def build_model(config="tiny", seed=0, weights=None):
    if weights:  # a trained state dict replaces the seeded random weights (at its own depth)
        from .evaluate import load_torch
        model = load_torch(None, weights, config)
    else:
        model = init_random(UniPic(get_config(config)), seed)
    return model, ByteLevelBPE(build_tiny_tokenizer(model.cfg.vocab_size))


def write_all(out_dir, seed=0, weights=None) -> list:
    os.makedirs(out_dir, exist_ok=True)
    model, tok = build_model("tiny", seed, weights)
    seed = weights or seed
    files = {"schedule.json": schedule_fixture(),
             "diffusion_step.json": head_step_fixture(model, seed),
             "mar_iteration.json": mar_iteration_fixture(model, tok, seed)}
    for k, v in run_fixtures(model, tok, seed).items():
        files[f"run_{k}.json"] = v
    for name, obj in files.items():
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(obj, f, separators=(",", ":"))
    return sorted(files)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.fixtures")
    ap.add_argument("--out", default="../test/fixtures/toolkit")
    ap.add_argument("--random-seed", type=int, default=0)
    ap.add_argument("--weights", help="trained tiny state dict (.pt) instead of the seeded random weights")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    names = write_all(a.out, a.random_seed, a.weights)
    total = sum(os.path.getsize(os.path.join(a.out, n)) for n in names)
    print(f"wrote {len(names)} fixtures to {a.out} ({total / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
