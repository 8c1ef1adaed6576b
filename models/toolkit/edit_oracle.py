"""Which copied tokens fail an edit: the scorer on true edit targets with some tokens put back to
the source's (issue #17, item 2).

    cd models
    /usr/bin/python3 -m toolkit.edit_oracle --weights checkpoints/unipic-tiny-ema-fp16.pt --cases 60

No model is sampled: only the frozen VAE of --weights is used. For each edit form, --cases random
edit cases (the evaluation's random layouts) are rendered, source and target are encoded, and
tokens of the target are replaced by the source's before decoding and scoring against the
expected scene. Arms:

- `target`: nothing replaced: the ceiling the VAE leaves an edit (its round trip costs a little);
- `source`: everything replaced: the instruction ignored (scores 0 by construction);
- `copy_context`: the tokens whose latent moves (train_losses.changed_tokens) but whose own patch
  of pixels does not: the VAE's encoder is not local, so a change spreads to its neighbours;
- `copy_random_P`: a random share P of the tokens whose latent moves (what a model that copies
  each changed token with probability P, independently, would score);
- `copy_smallest_P`: the share P of them with the smallest latent change, per case.

It prints one JSON object: per form, the score of each arm and the mean counts of tokens whose
latent moves (`latent_changed`) and whose patch changes (`patch_changed`).
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np
import torch

from . import shapes as S
from .evaluate import load_torch
from .sampler import from_uint8, to_latent, to_tokens, to_uint8
from .train_data import patch_changes
from .train_losses import changed_tokens

SHARES = (0.1, 0.2, 0.3)


def _smallest(lat_mse, changed, share):
    """[B,L] bool: per case, the share of its changed tokens with the smallest latent change."""
    sel = torch.zeros_like(changed)
    for b in range(changed.shape[0]):
        idx = torch.nonzero(changed[b]).flatten()
        k = int(round(share * len(idx)))
        if k:
            sel[b, idx[torch.argsort(lat_mse[b, idx])[:k]]] = True
    return sel


def form_report(model, form: str, n: int, rng: random.Random, gen: torch.Generator) -> dict:
    c = model.cfg
    size, g = c.default_resolution, c.grid(c.default_resolution)
    cases, src, tgt = [], [], []
    for _ in range(n):
        case, target = S._edit_case(rng, form)
        cases.append(case)
        src.append(S.render(case["scene"], size))
        tgt.append(S.render(target, size))
    src, tgt = np.stack(src), np.stack(tgt)
    with torch.no_grad():
        ts = to_tokens(model.vae_encode(from_uint8(src))) * c.vae_scale           # [B,L,C]
        tt = to_tokens(model.vae_encode(from_uint8(tgt))) * c.vae_scale

    def score(copy):  # copy [B,L] bool -> mean edit score with those tokens from the source
        tokens = torch.where(copy[..., None], ts, tt)
        with torch.no_grad():
            px = to_uint8(model.vae_decode(to_latent(tokens, g, g) / c.vae_scale)).numpy()
        return round(float(np.mean([S.score_edit(k, S.detect(im)) for k, im in zip(cases, px)])), 3)

    lat_mse = ((ts - tt) ** 2).mean(-1)                                         # [B,L]
    moved = changed_tokens(ts, tt)
    patch = torch.from_numpy(patch_changes(src, tgt, g)) > 0
    none = torch.zeros_like(moved)
    out = {"target": score(none), "source": score(~none), "copy_context": score(moved & ~patch)}
    for p in SHARES:
        out[f"copy_random_{p}"] = score(moved & (torch.rand(moved.shape, generator=gen) < p))
        out[f"copy_smallest_{p}"] = score(_smallest(lat_mse, moved, p))
    out["latent_changed"] = round(float(moved.sum(1).float().mean()), 2)
    out["patch_changed"] = round(float(patch.sum(1).float().mean()), 2)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.edit_oracle", description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", default="unipic-tiny", help="folder with manifest.json; '' for --config")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--weights", required=True, help="UniPic state dict (its VAE is used)")
    ap.add_argument("--cases", type=int, default=60, help="edit cases per form")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    if a.cases < 1:
        ap.error(f"--cases: expected a positive count, got {a.cases}")
    torch.set_num_threads(a.threads)
    model = load_torch(a.model_dir or None, a.weights, a.config)
    rng, gen = random.Random(a.seed), torch.Generator().manual_seed(a.seed)
    report = {"cases_per_form": a.cases, "seed": a.seed,
              "forms": {f: form_report(model, f, a.cases, rng, gen) for f in S.EDIT_FORMS}}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
