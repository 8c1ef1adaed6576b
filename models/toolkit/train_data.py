"""unipic-tiny training data (toolkit.train): one step's batch rendered from ShapesWorld and
tokenized, as a pure function of (seed, step); the worker-pool stream; batch -> device tensors.

Batches are rendered from `random.Random(f"{seed}:{step}")`, MAR orders / masks from a numpy
RandomState of the same key, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import random
import re
import zlib
from collections import deque

import numpy as np
import torch

from . import shapes as S
from . import vae_train as V
from .tokenizer import (EDIT_NEGATIVE, EDIT_POSITIVE, EDIT_UNCOND, IMAGE, T2I_NEGATIVE, T2I_POSITIVE, UNDERSTAND,
                        ByteLevelBPE, build_tiny_tokenizer, chat, special_ids)


# ---------------------------------------------------------------------------------------------
# data: a pure function of (seed, step)

_W = {}  # per-process cache: tokenizer, ids


def tiny_tokenizer(vocab_size):
    """(tokenizer, special ids) of the tiny vocabulary, built once per process."""
    if "tok" not in _W:
        tok = ByteLevelBPE(build_tiny_tokenizer(vocab_size))
        _W["tok"], _W["ids"] = tok, special_ids(tok)
    return _W["tok"], _W["ids"]


def pad_rows(seqs, pad):
    """Token id lists -> ids [B, P] right-padded with `pad`, mask [B, P] (1 on tokens); P = the longest."""
    P = max(len(s) for s in seqs)
    ids = np.full((len(seqs), P), pad, dtype=np.int64)
    mask = np.zeros((len(seqs), P), dtype=np.int64)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = s
        mask[r, :len(s)] = 1
    return ids, mask


def truncnorm_ratio(rng: random.Random, mean=1.0, sd=0.25, lo=0.7, hi=1.0) -> float:
    while True:
        r = rng.gauss(mean, sd)
        if lo <= r <= hi:
            return r


def _masking(rs: np.random.RandomState, B: int, L: int, n_mask: int):
    """-> vis [B,L-n_mask], pred [B,n_mask] ascending raster indices (one random order per row)."""
    orders = np.argsort(rs.random_sample((B, L)), axis=1)
    return np.sort(orders[:, n_mask:], axis=1), np.sort(orders[:, :n_mask], axis=1)


def _differs(a, b):
    """uint8 [...,3] arrays -> bool [...]: any channel apart by more than a rendering's anti-aliasing."""
    return np.abs(a.astype(np.int16) - np.asarray(b, np.int16)).max(-1) > 8


def _patch_share(mask, grid: int):
    """bool [B,H,W] -> [B,grid*grid] float32: the share of each token's patch that is set, in the
    tokens' raster order."""
    B, H = mask.shape[:2]
    p = H // grid
    return mask.astype(np.float32).reshape(B, grid, p, grid, p).mean((2, 4)).reshape(B, grid * grid)


def patch_changes(src, tgt, grid: int):
    """uint8 [B,H,W,3] x2 -> [B,grid*grid]: the share of each token's patch the edit repaints."""
    return _patch_share(_differs(src, tgt), grid)


def patch_objects(src, tgt, grid: int):
    """uint8 [B,H,W,3] x2 -> [B,grid*grid]: the share of each token's patch an object covers in the
    source or the target: the repainted patches and the objects an edit keeps, without the empty
    background that makes up most of a plain mean."""
    return _patch_share(_differs(src, S.BACKGROUND) | _differs(tgt, S.BACKGROUND), grid)


# --edit-focus-on: the patch shares whose tokens the edit loss weighs (train_losses.edit_weights);
# "latent" needs none (it reads the tokens themselves)
FOCUS_PATCHES = {"pixels": patch_changes, "objects": patch_objects}


_A_BEFORE_VOWEL = re.compile(r"\ba (?=[aeiou])")


def an_before_vowels(text: str) -> str:
    """"a orange circle" (ShapesWorld's templates) -> "an orange circle" (what users write)."""
    return _A_BEFORE_VOWEL.sub("an ", text)


def with_articles(texts: list[str], share: float, rng: random.Random) -> list[str]:
    """Each text whose "a" stands before a vowel is written "an" with probability `share`: a model
    that never read "an orange" reads it worse (toolkit.articles). rng is a stream of its own, so
    the rest of the batch does not move; the token count is the same either way."""
    if share <= 0:
        return texts
    return [an_before_vowels(t) if _A_BEFORE_VOWEL.search(t) and rng.random() < share else t for t in texts]


def make_batch(job) -> dict:
    """job = (seed, step, dims dict). Renders and tokenizes one step's batch (numpy only)."""
    seed, step, d = job
    size, L, n_img, drop = d["size"], d["L"], d["img_tokens"], d["cfg_drop"]
    tok, ids = tiny_tokenizer(d["vocab_size"])
    rng = random.Random(f"{seed}:{step}")
    rs = np.random.RandomState(zlib.crc32(f"{seed}:{step}".encode()))
    img_str = IMAGE * n_img
    art_rng, art = random.Random(f"{seed}:{step}:articles"), d.get("article_an", 0.0)
    out = {}
    Bg, Be, Bu = d["batch_gen"], d["batch_edit"], d["batch_und"]
    if Bg:
        texts, imgs = [], np.empty((Bg, size, size, 3), np.uint8)
        for i in range(Bg):
            prompt, scene = S.sample_generation(rng, layout=d.get("layout", "random"),
                                                open_colors=d.get("open_colors", "each"))
            texts.append(chat(T2I_NEGATIVE) if rng.random() < drop else chat(T2I_POSITIVE.format(prompt=prompt)))
            imgs[i] = S.render(scene, size)
        texts = with_articles(texts, art, art_rng)
        out["gen_ids"], out["gen_mask"] = pad_rows([tok.encode(t) for t in texts], ids["pad"])
        out["gen_img"] = imgs
        n = math.ceil(L * truncnorm_ratio(rng, lo=d.get("mask_min", 0.7)))
        out["gen_vis"], out["gen_pred"] = _masking(rs, Bg, L, n)
    if Be:
        texts = []
        src = np.empty((Be, size, size, 3), np.uint8)
        tgt = np.empty((Be, size, size, 3), np.uint8)
        for i in range(Be):
            # the isolate draw only when asked for: the default data stream stays as it was
            if d.get("edit_isolate", 0.0) > 0 and rng.random() < d["edit_isolate"]:
                scene, instr, target = S.sample_isolate(rng)
            else:
                scene, instr, target = S.sample_edit(rng, layout=d.get("layout", "random"),
                                                     drawn_share=d.get("edit_drawn", 0.0),
                                                     min_objects=d.get("edit_min_objects", 1),
                                                     open_colors=d.get("open_colors", "each"))
            src[i] = S.render(scene, size)
            u = rng.random()  # one draw: the same data stream whatever edit_uncond is
            if u < drop:
                texts.append(chat(EDIT_NEGATIVE.format(image=img_str)))
                tgt[i] = src[i]
                continue
            # instruction dropped, target kept: the change is read from the visible target tokens
            uncond = u < drop + d.get("edit_uncond", 0.0)
            texts.append(chat(EDIT_UNCOND.format(image=img_str) if uncond
                              else EDIT_POSITIVE.format(image=img_str, instruction=instr)))
            tgt[i] = S.render(target, size)
        texts = with_articles(texts, art, art_rng)
        out["edit_ids"], out["edit_mask"] = pad_rows([tok.encode(t) for t in texts], ids["pad"])
        out["edit_src"], out["edit_img"] = src, tgt
        if d.get("edit_focus_on") in FOCUS_PATCHES:
            out["edit_patches"] = FOCUS_PATCHES[d["edit_focus_on"]](src, tgt, int(math.isqrt(L)))
        n = math.ceil(L * truncnorm_ratio(rng, lo=d.get("mask_min", 0.7)))
        out["edit_vis"], out["edit_pred"] = _masking(rs, Be, L, n)
    if Bu:
        seqs, starts, imgs = [], [], np.empty((Bu, size, size, 3), np.uint8)
        for i in range(Bu):
            # "where is the ...?" only when asked for: the default data stream stays as it was
            where = d.get("und_where", 0.0) > 0 and rng.random() < d["und_where"]
            scene, q, a = S.sample_understanding(rng, "where" if where else None)
            imgs[i] = S.render(scene, size)
            p = tok.encode(chat(UNDERSTAND.format(image=img_str, question=with_articles([q], art, art_rng)[0])))
            starts.append(len(p))
            seqs.append(p + tok.encode(a) + [ids["eos"]])
        out["und_ids"], out["und_mask"] = pad_rows(seqs, ids["pad"])
        # loss positions: hidden at p predicts ids[p+1] for p = start-1 .. len-2
        rows, cols = [], []
        for r, (s, q) in enumerate(zip(starts, seqs)):
            for p in range(s - 1, len(q) - 1):
                rows.append(r)
                cols.append(p)
        out["und_rows"], out["und_cols"] = np.array(rows, np.int64), np.array(cols, np.int64)
        out["und_img"] = imgs
    if d.get("static"):  # fixed shapes for compiled / CUDA-graph steps (train_static.py)
        from .train_static import to_static
        out = to_static(out, L, d["pads"], ids["pad"])
    return out


def vae_job(job) -> dict:
    seed, step, d = job
    return {"img": V.scene_batch(seed, step, d["batch"], d["size"])}


class BatchStream:
    """Batches for steps start, start+1, ... rendered in a process pool (bounded prefetch) or inline.
    fn(job) with job = (seed, step, dims) must be a pure function of the job."""

    def __init__(self, seed, start, dims, workers=0, prefetch=6, fn=make_batch):
        self.seed, self.step, self.dims, self.fn = seed, start, dims, fn
        self.pool = mp.get_context("spawn").Pool(workers) if workers > 0 else None
        self.q = deque()
        self.prefetch = max(prefetch, 2 * workers) if workers > 0 else 0
        self.next_submit = start

    def _submit(self):
        job = (self.seed, self.next_submit, self.dims)
        self.q.append(self.pool.apply_async(self.fn, (job,)))
        self.next_submit += 1

    def get(self):
        if self.pool is None:
            b = self.fn((self.seed, self.step, self.dims))
        else:
            while len(self.q) < self.prefetch:
                self._submit()
            b = self.q.popleft().get()
            self._submit()
        self.step += 1
        return b

    def close(self):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def to_device_batch(b, dev, vae, vae_scale, bf16_vae=False):
    """numpy batch -> device tensors; images -> tokens with the frozen VAE (posterior mean).
    On CUDA the host arrays are pinned so the copies are asynchronous, and with bf16_vae the VAE
    encoder runs under bf16 autocast (tokens come back fp32)."""
    out = {}
    cuda = torch.device(dev).type == "cuda"
    ac = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and bf16_vae else contextlib.nullcontext()
    with torch.no_grad():
        for k, v in b.items():
            t = torch.from_numpy(np.ascontiguousarray(v))
            if cuda:
                t = t.pin_memory().to(dev, non_blocking=True)
            if k.endswith("_img") or k == "edit_src":
                name = {"gen_img": "gen_tok", "edit_img": "edit_tok", "edit_src": "edit_src_tok",
                        "und_img": "und_tok"}[k]
                with ac:
                    out[name] = V.vae_tokens(vae, t, vae_scale, dev).float()
            else:
                out[k] = t
    return out
