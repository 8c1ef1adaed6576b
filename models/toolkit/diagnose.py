"""Health report of trained UniPic weights: where generation and editing lose quality (issue #4).

    cd models
    /usr/bin/python3 -m toolkit.diagnose --model-dir unipic-tiny --weights checkpoints/unipic-tiny-ema-fp16.pt

ShapesEval says *that* images are wrong; this says *where*. It feeds fresh training batches
(toolkit.train_data, no prompt dropout) through the model and prints one JSON object:

- `parity`: largest |z| difference between the trainer's batched pass (Objective) and the sampler's
  MAR iteration (Runner.mar_iteration) on the same tokens, orders and prompts. ~0 means the
  sampler runs the model that was trained; anything above ~1e-4 is a bug, not undertraining.
- `head_x0_mse`: per task, the head's x0 estimate sqrt(1/ac) x_t - sqrt(1/ac - 1) eps from the
  *true* condition z at a few timesteps t, as MSE against the true tokens. At high t this is the
  head's guess of E[x0 | z], which MAR's first iterations sample from; compare with `token_var`.
- `edit_x0_mse`: the same for editing, split into the tokens the edit changes and those it leaves
  (the cheapest sign of whether the instruction reaches the tokens it is about).
- `edit_by_form`: on the tokens an edit changes, per edit form, with 0, 16 or 32 target tokens
  visible: the head's x0 estimate at t = 950 (`mse`, beside a drawing's object tokens, `gen`) and how
  far it leans from the source token towards the target, under the instruction (`lean`) and under
  "Repeat this image." (`lean_repeat`): whether the instruction reaches the tokens it changes, and
  how firmly.
- `edit_sampled_modes`: per edit form, what the head samples on the tokens an edit clearly changes,
  alone and with half of them shown: the share that copies the source instead (`copied`) and the
  share of cases with none copied (`whole`): a blend, or a split across tokens.
- `probe`: MSE of a least-squares linear map z -> x0 (fit on 3/4, scored on 1/4): how much the
  condition itself says about the token. For editing also split into tokens the edit leaves
  unchanged (should be easy: a copy of the source) and tokens it changes.
- `teacher_forced`: the masked tokens sampled by the DDPM loop (cfg 1, manifest temperature and
  steps) from the true z, MSE against the truth, next to predicting every token as plain background.
- `decoder_noise`: detector agreement of VAE reconstructions when Gaussian noise of the given sd is
  added to the (unit-variance) tokens: whether the decoder tolerates the head's sampling noise.
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np
import torch

from . import shapes as S
from .diffusion import Schedule
from .evaluate import load_tokenizer, load_torch
from .sampler import Draws, Runner, from_uint8, to_latent, to_tokens, to_uint8
from .train_data import pad_rows, make_batch, tiny_tokenizer, to_device_batch
from .train_losses import DiffusionLoss, Objective, changed_tokens
from .tokenizer import ASSISTANT_PREFIX, EDIT_NEGATIVE, IMAGE, chat

TASKS = ("gen", "edit")


def _capture_z(model, batch):
    """The trainer's z (condition of the diffusion head) per task, [B*n, W], without the loss."""
    obj = Objective(model, "cpu")
    obj.ids = tiny_tokenizer(model.cfg.vocab_size)[1]
    seen = []
    obj.diff = lambda head, z, x0, mul, gen, ctx, weight=None: (seen.append(z.detach()), (torch.zeros(()),) * 2)[1]
    with torch.no_grad():
        obj.losses(batch, torch.Generator().manual_seed(0))
    return dict(zip(TASKS, seen))


def _targets(bd, task, background):
    """True tokens at the masked positions [B*n, C], the source's there (edit, else None), and the
    empty scene's there (background [1,L,C]: plain white, position by position)."""
    B, n = bd[task + "_pred"].shape
    idx = bd[task + "_pred"][..., None].expand(B, n, bd[task + "_tok"].shape[2])
    at = lambda tokens: torch.gather(tokens.expand(B, -1, -1), 1, idx).reshape(B * n, -1)  # noqa: E731
    return at(bd[task + "_tok"]), at(bd["edit_src_tok"]) if task == "edit" else None, at(background)


def parity(model, tok, b, bd, z):
    """max |z_trainer - z_sampler| per task on one batch."""
    r, c = Runner(model, tok), model.cfg
    texts = lambda k: [tok.decode(row[mk.astype(bool)].tolist()) for row, mk in zip(b[k + "_ids"], b[k + "_mask"])]  # noqa: E731
    out = {}
    with torch.no_grad():
        B = b["gen_ids"].shape[0]
        fill = model.mar_fill(torch.zeros(B, c.buffer_tokens + r.L, c.mar_width), torch.zeros(B))
        zs = r.mar_iteration(bd["gen_tok"], bd["gen_vis"], bd["gen_pred"], r.prefill(texts("gen")), fill)
        out["gen"] = float((zs.reshape(z["gen"].shape) - z["gen"]).abs().max())
        _, x_con, z_enc = r.encode_image(from_uint8(b["edit_src"]))
        fill = model.mar_fill(x_con, torch.ones(x_con.shape[0]))
        zs = r.mar_iteration(bd["edit_tok"], bd["edit_vis"], bd["edit_pred"], r.prefill(texts("edit"), z_enc), fill)
        out["edit"] = float((zs.reshape(z["edit"].shape) - z["edit"]).abs().max())
    return out


def head_x0_mse(model, z, x0, ts, seed=0, rows=None):
    """{t: MSE} of the head's x0 estimate; with rows [N] bool, the MSE over those rows only (None: no row)."""
    dl, g, out = DiffusionLoss("cpu"), torch.Generator().manual_seed(seed), {}
    for tv in ts:
        t = torch.full((x0.shape[0],), tv, dtype=torch.int64)
        xt = dl.q_sample(x0, t, torch.randn(x0.shape, generator=g))
        with torch.no_grad():
            eps = model.diffusion_head(xt, t, z)[:, :x0.shape[1]]
        err = ((dl.x0_from_eps(xt, t, eps) - x0) ** 2).mean(1)
        sel = err if rows is None else err[rows]
        out[str(tv)] = round(float(sel.mean()), 4) if len(sel) else None
    return out


def _instruction(text: str) -> str:
    """The instruction of a decoded edit prompt ("<|im_start|>user\n<image>...\n{instruction}<|im_end|>...")."""
    return text.split(ASSISTANT_PREFIX)[0].rsplit("\n", 1)[-1]


def _x0_estimate(model, dl, x0, z, t, seed):
    """The head's clean estimate at step t from z, with the noise of `seed` ([N,C])."""
    tt = torch.full((len(x0),), t, dtype=torch.int64)
    xt = dl.q_sample(x0, tt, torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)))
    return dl.x0_from_eps(xt, tt, model.diffusion_head(xt, tt, z)[:, :x0.shape[1]])


def _edit_batch(model, tok, seed, step, batch_gen):
    """A training batch of 64 edits (the shipped recipe's data, no prompt dropout) beside batch_gen
    drawings, and each edit's form from its instruction."""
    c, L = model.cfg, model.cfg.grid(model.cfg.default_resolution) ** 2
    dims = dict(size=c.default_resolution, L=L, img_tokens=L + c.buffer_tokens, cfg_drop=0.0, vocab_size=c.vocab_size,
                batch_gen=batch_gen, batch_edit=64, batch_und=0, layout="canonical", open_colors="shared", edit_drawn=0.5)
    b = make_batch((seed, step, dims))
    return b, [S.edit_form({"instruction": _instruction(tok.decode(r[m.astype(bool)].tolist()))})
               for r, m in zip(b["edit_ids"], b["edit_mask"])]


def edit_by_form(model, tok, seed, visible=(0, 16, 32), batches=2, t=950):
    """{form: {V: {mse, lean, lean_repeat}}} on the tokens an edit changes, per edit form, with V
    target tokens visible: `mse` of the head's x0 estimate at step t (beside `gen`: a drawing's object
    tokens, those that differ from the empty canvas), and `lean`, where that estimate sits on the line
    from the source token (0) to the target (1), under the instruction and under "Repeat this image."
    (`lean_repeat`, the CFG negative). A lean well under 1 with the instruction, far above the
    negative's, is an instruction that reaches the token but is only partly believed: the sampler then
    changes some of an object's tokens and copies the rest."""
    c, L = model.cfg, model.cfg.grid(model.cfg.default_resolution) ** 2
    dl, sums = DiffusionLoss("cpu"), {}
    _, ids = tiny_tokenizer(c.vocab_size)
    with torch.no_grad():
        white = to_tokens(model.vae_encode(from_uint8(S.render([], c.default_resolution)[None]))) * c.vae_scale
    for k in range(batches):
        b, forms = _edit_batch(model, tok, seed, 1000 + k, batch_gen=32)
        negative = tok.encode(chat(EDIT_NEGATIVE.format(image=IMAGE * (L + c.buffer_tokens))))
        rep_ids, rep_mask = pad_rows([negative] * len(forms), ids["pad"])
        rs = np.random.RandomState(seed + k)
        for V in visible:
            for task in TASKS:  # the same V visible tokens in every row, at random places
                order = np.stack([rs.permutation(L) for _ in range(len(b[task + "_ids"]))])
                b[task + "_vis"], b[task + "_pred"] = np.sort(order[:, :V], 1), np.sort(order[:, V:], 1)
            bd = to_device_batch(b, "cpu", model.vae, c.vae_scale)
            z = _capture_z(model, bd)
            z_rep = _capture_z(model, {**bd, "edit_ids": torch.from_numpy(rep_ids), "edit_mask": torch.from_numpy(rep_mask)})
            for task in TASKS:
                x0, src, bg = _targets(bd, task, white)
                ch = changed_tokens((src if task == "edit" else bg)[None], x0[None])[0]
                est = _x0_estimate(model, dl, x0, z[task], t, k)
                parts = {"mse": ((est - x0) ** 2).mean(1)}
                if task == "edit":
                    d = x0 - src
                    on_line = lambda e: ((e - src) * d).sum(1) / (d * d).sum(1).clamp_min(1e-6)  # noqa: E731
                    parts["lean"] = on_line(est)
                    parts["lean_repeat"] = on_line(_x0_estimate(model, dl, x0, z_rep[task], t, k))
                row_form = np.repeat(forms, L - V) if task == "edit" else np.full(len(x0), "gen")
                for f in set(row_form):
                    sel = torch.from_numpy(row_form == f) & ch
                    for name, v in parts.items():
                        acc = sums.setdefault(f, {}).setdefault(str(V), {}).setdefault(name, [0.0, 0])
                        acc[0], acc[1] = acc[0] + float(v[sel].sum()), acc[1] + int(sel.sum())
    return {f: {V: {name: round(e / n, 4) if n else None for name, (e, n) in parts.items()} for V, parts in per.items()}
            for f, per in sorted(sums.items())}


def edit_sampled_modes(model, tok, seed, batches=2):
    """{form: {"alone" | "half_shown": {copied, whole, tokens}}}: what the head *samples* (cfg 1, the
    edit temperature and diffusion steps) on the tokens an edit clearly changes (squared change above a
    quarter of the median), from the true z with no target token visible ("alone") and with half the
    changed tokens of each case visible as their targets ("half_shown"). `copied` is the share of those
    tokens whose sample lies nearer the source than the target on the line between them; `whole` the
    share of cases with none copied. A lean of 3/4 can be a blend or a mixture: this tells them apart
    (a mixture copies about one token in five, each on its own draw, so an object of five changed
    tokens comes out whole about one time in three), and "half_shown" says how much decoded neighbours
    settle the rest, which is all MAR's later iterations can lean on."""
    c, L = model.cfg, model.cfg.grid(model.cfg.default_resolution) ** 2
    p = {**c.sampling, **c.edit_sampling}
    r, sch, rs, sums = Runner(model, tok), Schedule(p["diffusionSteps"]), np.random.RandomState(seed), {}
    for k in range(batches):
        b, forms = _edit_batch(model, tok, seed, 2000 + k, batch_gen=4)
        B, changed = len(forms), None
        for shown in ("alone", "half_shown"):
            if changed is None:   # first pass: every token predicted, in place order
                vis, pred = np.zeros((B, 0), np.int64), np.tile(np.arange(L), (B, 1))
            else:                 # half of each case's changed tokens (at most 16) visible, rest random
                V = 16
                vis, pred = np.zeros((B, V), np.int64), np.zeros((B, L - V), np.int64)
                for i in range(B):
                    ci = rs.permutation(np.flatnonzero(changed[i]))[: min(int(changed[i].sum()) // 2, V)]
                    rest = rs.permutation(np.setdiff1d(np.arange(L), ci))[: V - len(ci)]
                    vis[i] = np.sort(np.concatenate([ci, rest]))
                    pred[i] = np.setdiff1d(np.arange(L), vis[i])
            b["edit_vis"], b["edit_pred"] = vis, pred
            G = len(b["gen_ids"])                                      # the batch needs its drawings too
            b["gen_vis"], b["gen_pred"] = np.zeros((G, 0), np.int64), np.tile(np.arange(L), (G, 1))
            bd = to_device_batch(b, "cpu", model.vae, c.vae_scale)
            z = _capture_z(model, bd)["edit"]                          # [B*n, W]
            x0, src, _ = _targets(bd, "edit", torch.zeros(1, L, c.latent_channels))
            d2 = ((x0 - src) ** 2).sum(1)                              # [B*n]
            ch = changed_tokens(src[None], x0[None])[0]
            if changed is None:
                changed = ch.numpy().reshape(B, L)
            clear = ch & (d2 > 0.25 * d2[ch].median())
            x = r.diffuse(z, None, sch, 1.0, p["temperature"], Draws(seed + k))
            copied = ((((x - src) * (x0 - src)).sum(1) / d2.clamp_min(1e-6)) < 0.5) & clear
            n = pred.shape[1]
            for i, f in enumerate(forms):
                rows = slice(i * n, (i + 1) * n)
                if int(clear[rows].sum()) == 0:
                    continue
                acc = sums.setdefault(f, {}).setdefault(shown, [0, 0, 0, 0])
                acc[0] += int(copied[rows].sum())
                acc[1] += int(clear[rows].sum())
                acc[2] += int(copied[rows].sum() == 0)
                acc[3] += 1
    return {f: {k: {"copied": round(a[0] / a[1], 3), "whole": round(a[2] / a[3], 3), "tokens": a[1]}
                for k, a in per.items()} for f, per in sorted(sums.items())}


def probe(z, x0, rows=None):
    """Least-squares z -> x0 on the first 3/4, per-row MSE on the last 1/4 (rows: a mask to split)."""
    N = z.shape[0]
    k = N * 3 // 4
    A = torch.cat([z, torch.ones(N, 1)], 1)
    err = ((A[k:] @ torch.linalg.lstsq(A[:k], x0[:k]).solution - x0[k:]) ** 2).mean(1)
    out = {"all": round(float(err.mean()), 4)}
    if rows is not None:
        out["unchanged"] = round(float(err[~rows[k:]].mean()), 4)
        out["changed"] = round(float(err[rows[k:]].mean()), 4)
        out["changed_share"] = round(float(rows[k:].float().mean()), 3)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.diagnose", description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", default="unipic-tiny",
                    help="folder with manifest.json (sampling defaults); '' for --config's defaults")
    ap.add_argument("--config", default="tiny", help="with --model-dir ''")
    ap.add_argument("--weights", required=True, help="UniPic state dict / trainer checkpoint")
    ap.add_argument("--batches", type=int, default=8, help="training batches of 32 gen + 32 edit cases")
    ap.add_argument("--seed", type=int, default=777, help="data seed (not the training seed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layout", default="canonical", choices=["random", "canonical", "fixed"],
                    help="training layout of the batches (the weights' own recipe; the first GPU weights: random)")
    ap.add_argument("--open-colors", default="shared", choices=["each", "shared"],
                    help="colours a prompt leaves open in the batches: shared per scene (the recipe since run "
                    "cpu11) or drawn per object (the records of cpu10 and before)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_torch(a.model_dir or None, a.weights, a.config)
    tok = load_tokenizer(a.model_dir or None, model.cfg)
    c = model.cfg
    L = c.grid(c.default_resolution) ** 2
    dims = dict(size=c.default_resolution, L=L, img_tokens=L + c.buffer_tokens, cfg_drop=0.0,
                vocab_size=c.vocab_size, batch_gen=32, batch_edit=32, batch_und=0, layout=a.layout,
                open_colors=a.open_colors)
    with torch.no_grad():
        white = to_tokens(model.vae_encode(from_uint8(S.render([], c.default_resolution)[None]))) * c.vae_scale
    Z, X, BG = ({t: [] for t in TASKS} for _ in range(3))
    CH, report = [], {}
    for k in range(a.batches):
        b = make_batch((a.seed, k, dims))
        bd = to_device_batch(b, "cpu", model.vae, c.vae_scale)
        z = _capture_z(model, bd)
        if k == 0:
            report["parity"] = parity(model, tok, b, bd, z)
        for t in TASKS:
            x0, src, bg = _targets(bd, t, white)
            Z[t].append(z[t])
            X[t].append(x0)
            BG[t].append(bg)
            if src is not None:
                CH.append(changed_tokens(src, x0))  # the edit changed this token
    Zc = {t: torch.cat(v) for t, v in Z.items()}
    Xc = {t: torch.cat(v) for t, v in X.items()}
    report["token_var"] = {t: round(float(Xc[t].var(0).mean()), 4) for t in TASKS}
    report["head_x0_mse"] = {t: head_x0_mse(model, Zc[t], Xc[t], (200, 500, 800, 900, 950)) for t in TASKS}
    ch, ts = torch.cat(CH), (500, 800, 900, 950)
    report["edit_x0_mse"] = {"changed": head_x0_mse(model, Zc["edit"], Xc["edit"], ts, rows=ch),
                             "unchanged": head_x0_mse(model, Zc["edit"], Xc["edit"], ts, rows=~ch)}
    with torch.no_grad():
        report["edit_by_form"] = edit_by_form(model, tok, a.seed)
        report["edit_sampled_modes"] = edit_sampled_modes(model, tok, a.seed)
    report["probe"] = {"gen": probe(Zc["gen"], Xc["gen"]), "edit": probe(Zc["edit"], Xc["edit"], torch.cat(CH))}
    # teacher forcing: sample the masked tokens of the first batch from their true z
    r = Runner(model, tok)
    report["teacher_forced"] = {}
    sch = Schedule(c.sampling["diffusionSteps"])
    with torch.no_grad():
        for t in TASKS:
            z, x0, bg = Z[t][0], X[t][0], BG[t][0]
            x = r.diffuse(z, None, sch, 1.0, c.sampling["temperature"], Draws(a.seed))
            report["teacher_forced"][t] = {"sampled_mse": round(float(((x - x0) ** 2).mean()), 4),
                                           "background_mse": round(float(((bg - x0) ** 2).mean()), 4)}
    # decoder tolerance to token noise
    rng = random.Random(a.seed)
    imgs = np.stack([S.render(S.sample_scene(rng), c.default_resolution) for _ in range(100)])
    key = lambda ds: sorted((d["shape"], d["color"]) for d in ds)  # noqa: E731
    g = torch.Generator().manual_seed(a.seed)
    report["decoder_noise"] = {}
    with torch.no_grad():
        tokens = to_tokens(model.vae_encode(from_uint8(imgs))) * c.vae_scale
        h = w = c.grid(c.default_resolution)
        for sd in (0.0, 0.2, 0.5):
            noisy = tokens + sd * torch.randn(tokens.shape, generator=g)
            px = to_uint8(model.vae_decode(to_latent(noisy, h, w) / c.vae_scale)).numpy()
            ok = np.mean([key(S.detect(px[i])) == key(S.detect(imgs[i])) for i in range(len(imgs))])
            report["decoder_noise"][str(sd)] = round(float(ok), 3)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
