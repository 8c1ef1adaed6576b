"""Train unipic-tiny on ShapesWorld (issue #4): stage A the KL VAE, stage B UniPic on all three tasks.

    cd models
    export OPENBLAS_NUM_THREADS=1
    /usr/bin/python3 -m toolkit.train --out toolkit/runs/tiny --export unipic-tiny          # the whole recipe
    /usr/bin/python3 -m toolkit.train --out toolkit/runs/tiny --resume                      # continue exactly
    /usr/bin/python3 -m toolkit.train --out toolkit/runs/tiny --export-only --export unipic-tiny

Stage A (toolkit/vae_train.py): the tiny KL VAE on rendered scenes; then its latents are
standardised, the detector agreement of its reconstructions is measured, and it is frozen.

Stage B, per optimizer step (all three losses summed, weights --w-gen/--w-edit/--w-und):
- text-to-image: `chat("Generate an image: {prompt}")`, 10% dropped to `chat("Generate an image.")`
  (the CFG negative). MAR masking: one random order per row, one mask ratio per batch from
  truncnorm(mean 1, sd 0.25) on [0.7, 1], ceil(L * ratio) tokens masked. Visible tokens -> MAR
  encoder -> LLM after the prompt (positions continue from the unpadded prompt, as the sampler's
  cache does) -> MAR decoder (fill = mask_token) -> z of the masked tokens -> diffusion loss
  (eps MSE + VLB term for the learned-range variance, mean detached; guided-diffusion/MAR),
  each z repeated `--diff-mul` times with fresh t and noise.
- editing: the source image's tokens, all visible, through the MAR encoder give x_con (decoder
  fill) and the `<image>` rows of `chat("{image}\\n{instruction}")`; target = the edited scene.
  10% dropped to `chat("{image}\\nRepeat this image.")` (the CFG negative) with target = source.
- understanding: `chat("{image}\\n{question}") + answer + <|im_end|>`, LM cross-entropy on the
  answer tokens and <|im_end|>, all image tokens visible.
Prompts go through toolkit.tokenizer exactly as sampler.Runner builds them.

AdamW (0.9, 0.95, wd 0.02 on matrices), linear warm-up + cosine to 0.1x, grad clip, EMA (evaluated
and exported). bf16: autocast on CUDA; on CPU only the matmuls run in bf16 (master weights, norms,
softmax and the diffusion math stay fp32), which is 4-5x faster on AVX512-BF16 CPUs
(tiny-prototype.md section 2).

Everything random in a step is a pure function of (--seed, step): batches are rendered from
`random.Random(f"{seed}:{step}")` (in worker processes on CUDA), orders/masks from a numpy
RandomState of the same key, t and noise from a torch generator seeded from it. So `--resume`
continues exactly (model, EMA, optimizer, step, schedule and wall-clock budget are checkpointed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import random
import sys
import time
import zlib
from collections import deque

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import shapes as S
from . import vae_train as V
from .config import get_config
from .diffusion import Schedule
from .evaluate import DeviceModel, build_cases, pick_device, run_cases, torch_load
from .mar import resize_table
from .model import UniPic, param_count
from .tokenizer import (EDIT_NEGATIVE, EDIT_POSITIVE, IMAGE, T2I_NEGATIVE, T2I_POSITIVE, UNDERSTAND, USER_PREFIX,
                        ByteLevelBPE, build_tiny_tokenizer, chat, special_ids)

# ---------------------------------------------------------------------------------------------
# data: a pure function of (seed, step)

_W = {}  # per-process cache: tokenizer, ids


def _tok(vocab_size):
    if "tok" not in _W:
        tok = ByteLevelBPE(build_tiny_tokenizer(vocab_size))
        _W["tok"], _W["ids"] = tok, special_ids(tok)
    return _W["tok"], _W["ids"]


def _pad(seqs, pad):
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


def make_batch(job) -> dict:
    """job = (seed, step, dims dict). Renders and tokenizes one step's batch (numpy only)."""
    seed, step, d = job
    size, L, n_img, drop = d["size"], d["L"], d["img_tokens"], d["cfg_drop"]
    tok, ids = _tok(d["vocab_size"])
    rng = random.Random(f"{seed}:{step}")
    rs = np.random.RandomState(zlib.crc32(f"{seed}:{step}".encode()))
    img_str = IMAGE * n_img
    out = {}
    Bg, Be, Bu = d["batch_gen"], d["batch_edit"], d["batch_und"]
    if Bg:
        texts, imgs = [], np.empty((Bg, size, size, 3), np.uint8)
        for i in range(Bg):
            prompt, scene = S.sample_generation(rng)
            texts.append(chat(T2I_NEGATIVE) if rng.random() < drop else chat(T2I_POSITIVE.format(prompt=prompt)))
            imgs[i] = S.render(scene, size)
        out["gen_ids"], out["gen_mask"] = _pad([tok.encode(t) for t in texts], ids["pad"])
        out["gen_img"] = imgs
        n = math.ceil(L * truncnorm_ratio(rng))
        out["gen_vis"], out["gen_pred"] = _masking(rs, Bg, L, n)
    if Be:
        texts = []
        src = np.empty((Be, size, size, 3), np.uint8)
        tgt = np.empty((Be, size, size, 3), np.uint8)
        for i in range(Be):
            scene, instr, target = S.sample_edit(rng)
            src[i] = S.render(scene, size)
            if rng.random() < drop:
                texts.append(chat(EDIT_NEGATIVE.format(image=img_str)))
                tgt[i] = src[i]
            else:
                texts.append(chat(EDIT_POSITIVE.format(image=img_str, instruction=instr)))
                tgt[i] = S.render(target, size)
        out["edit_ids"], out["edit_mask"] = _pad([tok.encode(t) for t in texts], ids["pad"])
        out["edit_src"], out["edit_img"] = src, tgt
        n = math.ceil(L * truncnorm_ratio(rng))
        out["edit_vis"], out["edit_pred"] = _masking(rs, Be, L, n)
    if Bu:
        seqs, starts, imgs = [], [], np.empty((Bu, size, size, 3), np.uint8)
        for i in range(Bu):
            scene, q, a = S.sample_understanding(rng)
            imgs[i] = S.render(scene, size)
            p = tok.encode(chat(UNDERSTAND.format(image=img_str, question=q)))
            starts.append(len(p))
            seqs.append(p + tok.encode(a) + [ids["eos"]])
        out["und_ids"], out["und_mask"] = _pad(seqs, ids["pad"])
        # loss positions: hidden at p predicts ids[p+1] for p = start-1 .. len-2
        rows, cols = [], []
        for r, (s, q) in enumerate(zip(starts, seqs)):
            for p in range(s - 1, len(q) - 1):
                rows.append(r)
                cols.append(p)
        out["und_rows"], out["und_cols"] = np.array(rows, np.int64), np.array(cols, np.int64)
        out["und_img"] = imgs
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


# ---------------------------------------------------------------------------------------------
# bf16 on CPU: matmul inputs in bf16, everything else fp32 (tiny-prototype.md section 2)


@contextlib.contextmanager
def cpu_bf16_matmuls(enabled=True):
    if not enabled:
        yield
        return
    lin, mm = F.linear, torch.matmul

    def linear(x, w, b=None):
        return lin(x.to(torch.bfloat16), w.to(torch.bfloat16),
                   None if b is None else b.to(torch.bfloat16)).float()

    def matmul(a, b):
        return mm(a.to(torch.bfloat16), b.to(torch.bfloat16)).float()

    F.linear, torch.matmul = linear, matmul
    try:
        yield
    finally:
        F.linear, torch.matmul = lin, mm


# ---------------------------------------------------------------------------------------------
# losses


def normal_kl(m1, lv1, m2, lv2):
    return 0.5 * (-1.0 + lv2 - lv1 + torch.exp(lv1 - lv2) + (m1 - m2) ** 2 * torch.exp(-lv2))


def _approx_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_ll(x, means, log_scales):
    c = x - means
    inv = torch.exp(-log_scales)
    cdf_plus = _approx_cdf(inv * (c + 1.0 / 255))
    cdf_min = _approx_cdf(inv * (c - 1.0 / 255))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_1m_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_1m_cdf_min, torch.log(delta.clamp(min=1e-12))))


class DiffusionLoss:
    """guided-diffusion training loss on the base schedule (T=1000, cosine, max_beta 0.2):
    MSE(eps) + VLB term for the learned-range variance with the mean detached (LossType.MSE,
    learn_sigma), as MAR's DiffLoss."""

    def __init__(self, device):
        sch = Schedule(1000)  # respacing 1000 of 1000 = the base tables
        f = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        self.T = 1000
        self.sqrt_ac = f(np.sqrt(sch.alphas_cumprod))
        self.sqrt_1mac = f(np.sqrt(1 - sch.alphas_cumprod))
        self.sra, self.srm1 = f(sch.sqrt_recip_ac), f(sch.sqrt_recipm1_ac)
        self.c1, self.c2 = f(sch.coef1), f(sch.coef2)
        self.plc, self.logb = f(sch.post_logvar_clipped), f(sch.log_betas)

    def __call__(self, head, z, x0, mul, gen, autocast_ctx):
        """z [N,W] conditions, x0 [N,C] targets -> (loss, mse) scalars (fp32)."""
        z, x0 = z.repeat(mul, 1), x0.repeat(mul, 1)
        N, C = x0.shape
        t = torch.randint(0, self.T, (N,), generator=gen, device=x0.device)
        noise = torch.randn(x0.shape, generator=gen, device=x0.device)
        e = lambda a: a[t][:, None]  # noqa: E731
        xt = e(self.sqrt_ac) * x0 + e(self.sqrt_1mac) * noise
        with autocast_ctx():
            out = head(xt, t, z)
        out = out.float()
        eps, v = out[:, :C], out[:, C:]
        mse = ((eps - noise) ** 2).mean(1)
        true_mean = e(self.c1) * x0 + e(self.c2) * xt
        true_lv = e(self.plc)
        px0 = e(self.sra) * xt - e(self.srm1) * eps.detach()
        mmean = e(self.c1) * px0 + e(self.c2) * xt
        frac = (v + 1) / 2
        mlv = frac * e(self.logb) + (1 - frac) * true_lv
        kl = normal_kl(true_mean, true_lv, mmean, mlv).mean(1) / math.log(2.0)
        nll = -discretized_gaussian_ll(x0, mmean, 0.5 * mlv).mean(1) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl)
        return (mse + vb).mean(), mse.mean()


class Objective:
    """The three task losses of one step, on the training (non-EMA) model."""

    def __init__(self, model: UniPic, device, mul=4, autocast=False, cpu_bf16=False):
        self.m, self.dev, self.mul = model, torch.device(device), mul
        self.cfg = model.cfg
        c = self.cfg
        self.L = c.grid(c.default_resolution) ** 2
        self.buf = c.buffer_tokens
        self.ids = None
        tok, _ = _tok(c.vocab_size)
        self.img_start = len(tok.encode(USER_PREFIX))  # <image> rows follow "<|im_start|>user\n"
        self.diff = DiffusionLoss(self.dev)
        self.autocast = autocast and self.dev.type == "cuda"
        self.cpu_bf16 = cpu_bf16 and self.dev.type == "cpu"

    def ctx(self):
        if self.autocast:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return cpu_bf16_matmuls(self.cpu_bf16)

    def pos(self):
        """Differentiable positional tables at the training grid (MAR.pos_tables is no_grad)."""
        mar, c = self.m.mar, self.cfg
        g = c.grid(c.default_resolution)
        G = c.native_grid
        return (resize_table(mar.encoder_pos_embed_learned[0], self.buf, G, g, g),
                resize_table(mar.decoder_pos_embed_learned[0], self.buf, G, g, g),
                resize_table(mar.diffusion_pos_embed_learned[0], 0, G, g, g))

    def embed(self, ids, image_rows=None, image_id=None):
        """Token embeddings, with the <image> positions replaced by image_rows [B,L+buf,H]."""
        e = self.m.llm.model.embed_tokens(ids)
        if image_rows is None:
            return e
        start, n = self.img_start, image_rows.shape[1]  # every prompt starts with USER_PREFIX
        return torch.cat([e[:, :start], image_rows.to(e.dtype), e[:, start + n:]], dim=1)

    def llm(self, x, mask):
        B, P = mask.shape
        c = self.cfg
        z = torch.zeros(B, c.llm_kv_heads, 0, c.llm_head_dim, device=x.device, dtype=x.dtype)
        pos = torch.arange(P, device=x.device)[None].expand(B, P)
        hidden, _ = self.m.llm.model(x, mask, pos, [(z, z)] * c.llm_layers)
        return hidden

    def image_loss(self, tokens, vis, pred, ids, pmask, fill, prompt_rows, image_id, gen, pos):
        """One MAR training pass: visible tokens + prompt -> z at pred -> diffusion loss."""
        enc_pos, dec_pos, diff_pos = pos
        B, V = vis.shape
        C = tokens.shape[2]
        with self.ctx():
            lat = torch.gather(tokens, 1, vis[..., None].expand(B, V, C))
            x_enc, llm_in = self.m.mar_encoder(lat, vis, enc_pos)
            pe = self.embed(ids, prompt_rows, image_id)
            T = llm_in.shape[1]
            x = torch.cat([pe, llm_in.to(pe.dtype)], dim=1)
            mask = torch.cat([pmask, torch.ones(B, T, dtype=pmask.dtype, device=pmask.device)], dim=1)
            # positions: prompt 0..P-1 (right-padded), image tokens continue from the unpadded length
            P = ids.shape[1]
            posn = torch.cat([torch.arange(P, device=ids.device)[None].expand(B, P),
                              pmask.sum(1, keepdim=True) + torch.arange(T, device=ids.device)[None]], dim=1)
            zc = torch.zeros(B, self.cfg.llm_kv_heads, 0, self.cfg.llm_head_dim, device=x.device, dtype=x.dtype)
            hidden, _ = self.m.llm.model(x, mask, posn, [(zc, zc)] * self.cfg.llm_layers)
            z = self.m.mar_decoder(x_enc, hidden[:, P:], vis, fill, dec_pos, diff_pos, pred)
        n = pred.shape[1]
        x0 = torch.gather(tokens, 1, pred[..., None].expand(B, n, C))
        return self.diff(self.m.mar.diffloss.net, z.reshape(B * n, -1).float(), x0.reshape(B * n, C),
                         self.mul, gen, self.ctx)

    def losses(self, b, gen):
        """b: batch dict of device tensors (tokens already encoded). -> dict of scalar losses."""
        ids = self.ids
        pos = self.pos()
        out = {}
        W = self.cfg.mar_width
        if "gen_ids" in b:
            B = b["gen_ids"].shape[0]
            with self.ctx():
                fill = self.m.mar_fill(torch.zeros(B, self.buf + self.L, W, device=self.dev),
                                       torch.zeros(B, device=self.dev))
            out["gen"], out["gen_mse"] = self.image_loss(b["gen_tok"], b["gen_vis"], b["gen_pred"], b["gen_ids"],
                                                         b["gen_mask"], fill, None, None, gen, pos)
        if "edit_ids" in b:
            src = b["edit_src_tok"]
            B = src.shape[0]
            idx = torch.arange(self.L, device=self.dev)[None].expand(B, self.L)
            with self.ctx():
                x_con, z_enc = self.m.mar_encoder(src, idx, pos[0])
                fill = self.m.mar_fill(x_con, torch.ones(B, device=self.dev))
            out["edit"], out["edit_mse"] = self.image_loss(b["edit_tok"], b["edit_vis"], b["edit_pred"], b["edit_ids"],
                                                           b["edit_mask"], fill, z_enc, ids["image"], gen, pos)
        if "und_ids" in b:
            src = b["und_tok"]
            B = src.shape[0]
            idx = torch.arange(self.L, device=self.dev)[None].expand(B, self.L)
            with self.ctx():
                _, z_enc = self.m.mar_encoder(src, idx, pos[0])
                x = self.embed(b["und_ids"], z_enc, ids["image"])
                hidden = self.llm(x, b["und_mask"])
                h = hidden[b["und_rows"], b["und_cols"]]                       # [K,H]
                logits = self.m.llm.logits(h).float()
            target = b["und_ids"][b["und_rows"], b["und_cols"] + 1]
            out["und"] = F.cross_entropy(logits, target)
            out["und_acc"] = (logits.argmax(-1) == target).float().mean().detach()
        return out


# ---------------------------------------------------------------------------------------------
# model init, EMA, checkpoints


def init_train(model: UniPic, seed: int) -> UniPic:
    """Training init (the exporter's init_random is for placeholders): xavier-uniform linears with
    zero bias (MAR/timm), N(0, 0.02) embeddings, positional tables, mask_token, fake_latent;
    the diffusion head's AdaLN modulations and output layer zeroed (MAR's SimpleMLPAdaLN init);
    RMSNorm/LayerNorm at 1/0. The VAE keeps its PyTorch default init (it is trained in stage A)."""
    torch.manual_seed(seed)
    for name, mod in model.named_modules():
        if name.startswith("vae"):
            continue
        if isinstance(mod, nn.Linear):
            nn.init.xavier_uniform_(mod.weight)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.Embedding):
            nn.init.normal_(mod.weight, std=0.02)
        elif isinstance(mod, nn.LayerNorm) and mod.elementwise_affine:
            nn.init.ones_(mod.weight)
            nn.init.zeros_(mod.bias)
    mar = model.mar
    for p in (mar.fake_latent, mar.mask_token, mar.encoder_pos_embed_learned,
              mar.decoder_pos_embed_learned, mar.diffusion_pos_embed_learned):
        nn.init.normal_(p, std=0.02)
    net = mar.diffloss.net
    for m in net.time_embed.mlp:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
    for blk in net.res_blocks:
        nn.init.zeros_(blk.adaLN_modulation[-1].weight)
        nn.init.zeros_(blk.adaLN_modulation[-1].bias)
    nn.init.zeros_(net.final_layer.adaLN_modulation[-1].weight)
    nn.init.zeros_(net.final_layer.adaLN_modulation[-1].bias)
    nn.init.zeros_(net.final_layer.linear.weight)
    nn.init.zeros_(net.final_layer.linear.bias)
    return model


def trainable(model):
    return [(n, p) for n, p in model.named_parameters() if not n.startswith("vae.")]


class EMA:
    def __init__(self, model, decay):
        self.decay = decay
        self.names = [n for n, _ in trainable(model)]
        self.shadow = [p.detach().clone().float() for _, p in trainable(model)]

    @torch.no_grad()
    def update(self, model, step):
        d = min(self.decay, (1 + step) / (10 + step))
        params = [p.detach().float() for _, p in trainable(model)]
        torch._foreach_mul_(self.shadow, d)
        torch._foreach_add_(self.shadow, params, alpha=1 - d)

    def state_dict(self, model):
        """Full UniPic state dict with the EMA weights (VAE from the model)."""
        sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for n, t in zip(self.names, self.shadow):
            sd[n] = t.clone()
        return sd

    def load(self, sd):
        for i, n in enumerate(self.names):
            self.shadow[i].copy_(sd[n])


def _state_dict(obj):
    """A UniPic state dict from a state-dict file or a trainer checkpoint (its EMA)."""
    if isinstance(obj, dict) and "ema" in obj and "model" in obj:
        return obj["ema"]
    return obj


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state():
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st):
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def step_generator(seed, step, device):
    g = torch.Generator(device=device)
    g.manual_seed(zlib.crc32(f"noise:{seed}:{step}".encode()))
    return g


# ---------------------------------------------------------------------------------------------
# the trainer


class Log:
    def __init__(self, out):
        self.path = os.path.join(out, "log.jsonl")
        self.tty = sys.stderr.isatty()

    def write(self, rec):
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def bar(self, text, final=False):
        if self.tty and not final:
            print("\r" + text[:160].ljust(160), end="", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)


def _fmt_t(s):
    s = int(max(0, s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def to_device_batch(b, dev, vae, vae_scale):
    """numpy batch -> device tensors; images -> tokens with the frozen VAE (posterior mean)."""
    out = {}
    with torch.no_grad():
        for k, v in b.items():
            if k.endswith("_img") or k == "edit_src":
                name = {"gen_img": "gen_tok", "edit_img": "edit_tok", "edit_src": "edit_src_tok",
                        "und_img": "und_tok"}[k]
                out[name] = V.vae_tokens(vae, v, vae_scale, dev)
            else:
                out[k] = torch.from_numpy(v).to(dev, non_blocking=True)
    return out


class Trainer:
    def __init__(self, args):
        self.a = args
        self.dev = torch.device(pick_device(args.device))
        self.cfg = get_config(args.config)
        self.out = args.out
        os.makedirs(self.out, exist_ok=True)
        self.log = Log(self.out)
        self.size = self.cfg.default_resolution
        self.cuda = self.dev.type == "cuda"
        self.bf16 = {"auto": True, "on": True, "off": False}[args.bf16]
        if self.cuda:
            try:  # fp32 leftovers (VAE encode, losses) on tensor cores
                torch.backends.cuda.matmul.allow_tf32 = True
                torch.backends.cudnn.allow_tf32 = True
            except Exception:  # noqa: BLE001 (newer torch: fp32_precision API)
                pass

    def workers(self):
        a = self.a
        if a.workers is not None:
            return a.workers
        return min(12, max(0, (os.cpu_count() or 1) - 2)) if self.cuda else 0

    # ---- stage A -----------------------------------------------------------------------
    def vae_path(self):
        return os.path.join(self.out, "vae.pt")

    def stage_vae(self):
        a = self.a
        if a.init_from and not os.path.exists(self.vae_path()):
            sd = _state_dict(torch_load(a.init_from))
            vae = {k[4:]: v.float() for k, v in sd.items() if k.startswith("vae.")}
            self.log.bar(f"[vae] VAE taken from --init-from {a.init_from}", final=True)
            atomic_save({"vae": vae, "metrics": {"source": f"init-from {a.init_from}"}}, self.vae_path())
        if os.path.exists(self.vae_path()):
            st = torch_load(self.vae_path())
            self.log.bar(f"[vae] trained VAE found ({self.vae_path()}): {st.get('metrics')}", final=True)
            return st["vae"]
        from .vae import AutoencoderKL
        torch.manual_seed(a.seed)
        vae = AutoencoderKL(self.cfg).to(self.dev)
        opt = torch.optim.AdamW(vae.parameters(), lr=a.vae_lr, betas=(0.9, 0.99), weight_decay=0.0)
        ck = os.path.join(self.out, "vae_ckpt.pt")
        step, elapsed = 0, 0.0
        if a.resume and os.path.exists(ck):
            st = torch_load(ck)
            vae.load_state_dict(st["vae"])
            opt.load_state_dict(st["opt"])
            step, elapsed = st["step"], st["elapsed"]
        total = a.vae_steps
        budget = a.vae_minutes * 60 if a.vae_minutes else None
        t0, last_ck, hist = time.time() - elapsed, time.time(), deque(maxlen=50)
        vae.train()
        ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if (self.cuda and self.bf16) \
            else contextlib.nullcontext
        stream = BatchStream(a.seed, step, {"batch": a.vae_batch, "size": self.size},
                             workers=self.workers(), fn=vae_job)
        warm = min(100, total // 10 + 1)
        while step < total and not (budget and time.time() - t0 >= budget):
            # cosine over steps, or over the wall-clock budget when that ends first
            frac = step / total
            if budget:
                frac = max(frac, (time.time() - t0) / budget)
            lr = a.vae_lr * (step + 1) / warm if step < warm else \
                a.vae_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
            for gparam in opt.param_groups:
                gparam["lr"] = lr
            px = V.pixels(stream.get()["img"], self.dev)
            gen = step_generator(a.seed, step + 10**9, self.dev)
            with ctx():
                loss, parts = V.vae_loss(vae, px, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            step += 1
            hist.append(loss.detach())
            if step % a.log_every == 0 or step == total:
                el = time.time() - t0
                rate = el / step if step else 0
                left = (total - step) * rate if not budget else min((total - step) * rate, budget - el)
                parts = {k: float(v) for k, v in parts.items()}
                mloss = float(torch.stack(list(hist)).mean())
                self.log.bar(f"[vae] step {step}/{total} loss {mloss:.4f} l1 {parts['l1']:.4f} "
                             f"kl {parts['kl']:.1f} | {rate:.3f} s/step | ETA {_fmt_t(left)}")
                self.log.write({"stage": "vae", "step": step, "loss": mloss, **parts,
                                "elapsed_s": round(el, 1)})
            if time.time() - last_ck > a.ckpt_minutes * 60:
                atomic_save({"vae": vae.state_dict(), "opt": opt.state_dict(), "step": step,
                             "elapsed": time.time() - t0}, ck)
                last_ck = time.time()
        stream.close()
        vae.eval()
        mu, sd = V.standardize(vae, self.size, self.cfg.vae_scale, self.dev, n=a.vae_stats_n)
        metrics = V.detector_agreement(vae, self.size, self.dev, n=a.vae_agree_n)
        metrics.update({"steps": step, "minutes": round((time.time() - t0) / 60, 2),
                        "latent_mean_before": [round(float(x), 4) for x in mu],
                        "latent_std_before": [round(float(x), 4) for x in sd]})
        self.log.bar(f"\n[vae] done: {step} steps, detector agreement of reconstructions "
                     f"{metrics['detector_agreement']:.3f}, mean |err| {metrics['mae_uint8']:.2f}/255", final=True)
        self.log.write({"stage": "vae_done", **metrics})
        sdict = {k: v.detach().cpu() for k, v in vae.state_dict().items()}
        atomic_save({"vae": sdict, "metrics": metrics}, self.vae_path())
        return sdict

    # ---- stage B -----------------------------------------------------------------------
    def build(self, vae_sd):
        model = UniPic(self.cfg)
        init_train(model, self.a.seed)
        model.vae.load_state_dict(vae_sd)
        model.to(self.dev)
        for p in model.vae.parameters():
            p.requires_grad_(False)
        model.vae.eval()
        return model

    def optimizer(self, model):
        a = self.a
        decay, no = [], []
        for n, p in trainable(model):
            (decay if p.dim() >= 2 and "pos_embed" not in n and "embed_tokens" not in n else no).append(p)
        groups = [{"params": decay, "weight_decay": a.wd}, {"params": no, "weight_decay": 0.0}]
        kw = {}
        if self.cuda and "fused" in torch.optim.AdamW.__init__.__code__.co_varnames:
            kw["fused"] = True
        elif "foreach" in torch.optim.AdamW.__init__.__code__.co_varnames:
            kw["foreach"] = True
        return torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), **kw)

    def dims(self):
        c, a = self.cfg, self.a
        g = c.grid(self.size)
        return {"size": self.size, "L": g * g, "img_tokens": g * g + c.buffer_tokens, "cfg_drop": a.cfg_drop,
                "vocab_size": c.vocab_size, "batch_gen": a.batch_gen, "batch_edit": a.batch_edit,
                "batch_und": a.batch_und}

    def ckpt_path(self):
        return os.path.join(self.out, "ckpt.pt")

    def save(self, model, ema, opt, state):
        atomic_save({"model": model.state_dict(), "ema": ema.state_dict(model), "opt": opt.state_dict(),
                     "state": state, "rng": rng_state(), "args": vars(self.a), "config": self.cfg.to_dict()},
                    self.ckpt_path())
        atomic_save({k: v.cpu() for k, v in ema.state_dict(model).items()}, os.path.join(self.out, "ema.pt"))

    def eval_cases(self):
        a = self.a
        return build_cases(a.eval_gen, a.eval_und, a.eval_edit, seed=a.eval_seed)

    def evaluate(self, model, ema, step, cases, tok):
        """ShapesEval of the EMA weights on the fixed small set (reference sampler)."""
        t0 = time.time()
        ev = UniPic(self.cfg)
        ev.load_state_dict({k: v.to("cpu") for k, v in ema.state_dict(model).items()})
        ev.eval()
        runnable = DeviceModel(ev.to(self.dev), self.dev, autocast=False) if self.cuda else ev
        summary, _ = run_cases(runnable, tok, cases, seeds=1, batch=self.a.eval_batch, draw_seed=self.a.seed)
        rec = {"stage": "eval", "step": step, "seconds": round(time.time() - t0, 1), **summary}
        self.log.write(rec)
        print(json.dumps({"step": step, **summary}), flush=True)
        return summary

    def stage_unipic(self, vae_sd):
        a = self.a
        model = self.build(vae_sd)
        obj = Objective(model, self.dev, mul=a.diff_mul, autocast=self.bf16, cpu_bf16=self.bf16)
        tok, ids = _tok(self.cfg.vocab_size)
        obj.ids = ids
        opt = self.optimizer(model)
        ema = EMA(model, a.ema)
        state = {"step": 0, "elapsed": 0.0, "total": a.steps}
        if a.init_from and not (a.resume and os.path.exists(self.ckpt_path())):
            # warm start from earlier (EMA) weights: new optimizer and schedule, new data steps
            sd = {k: v.float() for k, v in _state_dict(torch_load(a.init_from)).items()}
            model.load_state_dict({**sd, **{k: v for k, v in model.state_dict().items() if k.startswith("vae.")}})
            ema.load({k: v.to(self.dev) for k, v in sd.items()})
            self.log.bar(f"[train] initialised from {a.init_from}", final=True)
        if a.resume and os.path.exists(self.ckpt_path()):
            st = torch_load(self.ckpt_path())
            model.load_state_dict(st["model"])
            ema.load(st["ema"])
            opt.load_state_dict(st["opt"])
            state = st["state"]
            set_rng_state(st["rng"])
            if a.steps and a.steps != state.get("total"):
                state["total"] = a.steps
            self.log.bar(f"[train] resumed at step {state['step']} ({_fmt_t(state['elapsed'])} trained)", final=True)
        n_train = sum(p.numel() for _, p in trainable(model))
        self.log.bar(f"[train] UniPic {self.cfg.name}: {param_count(model) / 1e6:.2f}M params "
                     f"({n_train / 1e6:.2f}M trained, VAE frozen), device {self.dev}, "
                     f"bf16 {'autocast' if self.cuda and self.bf16 else 'cpu-matmuls' if self.bf16 else 'off'}, "
                     f"batches gen/edit/und {a.batch_gen}/{a.batch_edit}/{a.batch_und}", final=True)
        cases = self.eval_cases()
        stream = BatchStream(a.seed, state["step"], self.dims(), workers=self.workers())
        budget = a.minutes * 60 if a.minutes else None
        t_start = time.time() - state["elapsed"]
        last_ck = time.time()
        hist = {k: deque(maxlen=max(10, a.log_every))
                for k in ("loss", "gen", "edit", "und", "und_acc", "gen_mse", "edit_mse")}
        rate_mark = None
        model.train()
        model.vae.eval()
        step = state["step"]
        stop_at = step + a.stop_after if a.stop_after else None
        try:
            while True:
                total = state["total"]
                el = time.time() - t_start
                if total and step >= total or stop_at is not None and step >= stop_at:
                    break
                if budget and el >= budget:
                    break
                lr = V.lr_at(step, total or 10**9, a.lr, a.warmup)
                for gparam in opt.param_groups:
                    gparam["lr"] = lr
                b = to_device_batch(stream.get(), self.dev, model.vae, self.cfg.vae_scale)
                gen = step_generator(a.seed, step, self.dev)
                L = obj.losses(b, gen)
                loss = a.w_gen * L.get("gen", 0.0) + a.w_edit * L.get("edit", 0.0) + a.w_und * L.get("und", 0.0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                gn = torch.nn.utils.clip_grad_norm_([p for _, p in trainable(model)], a.clip)
                opt.step()
                ema.update(model, step)
                step += 1
                state["step"] = step
                state["elapsed"] = time.time() - t_start
                hist["loss"].append(loss.detach())  # tensors: the GPU is synchronised only when logging
                for k in ("gen", "edit", "und", "und_acc", "gen_mse", "edit_mse"):
                    if k in L:
                        hist[k].append(L[k].detach())
                # time budget without --steps: fix the schedule length from the measured speed
                if not state["total"] and budget:
                    if step == 20:
                        rate_mark = (step, time.time())
                    elif rate_mark and step == rate_mark[0] + 40:
                        sps = (time.time() - rate_mark[1]) / 40
                        left = budget - state["elapsed"] - a.reserve_minutes * 60
                        state["total"] = step + max(1, int(left / sps))
                        self.log.bar(f"\n[train] {sps:.3f} s/step -> schedule length {state['total']} steps "
                                     f"for the {a.minutes} min budget", final=True)
                if step % a.log_every == 0 or step == 1:
                    el = state["elapsed"]
                    tot = state["total"]
                    rate = el / max(1, step)
                    eta = (tot - step) * rate if tot else (budget - el if budget else 0)
                    mean = {k: float(torch.stack(list(v)).mean()) for k, v in hist.items() if v}
                    parts = " ".join(f"{k} {mean[k]:.4f}" for k in ("gen", "edit", "und") if k in mean)
                    self.log.bar(f"[train] step {step}/{tot or '?'} | loss {mean['loss']:.4f} ({parts}) "
                                 f"und_acc {mean.get('und_acc', 0):.2f} | lr {lr:.2e} "
                                 f"| {rate:.3f} s/step | {_fmt_t(el)} ETA {_fmt_t(eta)}")
                    self.log.write({"stage": "train", "step": step, **mean,
                                    "loss_step": float(loss), "lr": lr, "grad_norm": float(gn), "s_per_step": round(rate, 4),
                                    "elapsed_s": round(el, 1)})
                if a.ckpt_every and step % a.ckpt_every == 0 or time.time() - last_ck > a.ckpt_minutes * 60:
                    self.save(model, ema, opt, state)
                    last_ck = time.time()
                if a.eval_every and step % a.eval_every == 0:
                    self.log.bar("", final=True)
                    t_ev = time.time()
                    self.evaluate(model, ema, step, cases, tok)
                    model.train()
                    model.vae.eval()
                    t_start += time.time() - t_ev  # evaluation time is not training time
        finally:
            stream.close()
        self.log.bar("", final=True)
        self.save(model, ema, opt, state)
        self.log.bar(f"[train] stopped at step {step} after {_fmt_t(state['elapsed'])} of training; "
                     f"checkpoint {self.ckpt_path()}", final=True)
        final = None
        if a.final_eval and not (a.eval_every and step % a.eval_every == 0):
            final = self.evaluate(model, ema, step, cases, tok)
        return model, ema, state, final


# ---------------------------------------------------------------------------------------------
# export


def export_weights(weights_sd, out_dir, cfg, source, sampling=None, preview_n=64):
    """EMA weights -> models/<name> via toolkit.export (the unchanged ONNX contract)."""
    from .export import export
    if sampling:
        cfg = cfg.replace(sampling=dict(sampling))
    m = UniPic(cfg)
    m.load_state_dict({k: v.float().cpu() for k, v in weights_sd.items()}, strict=True)
    m.eval()
    import warnings
    with warnings.catch_warnings():  # torch.onnx tracer chatter (expected, see tests/conftest.py)
        warnings.simplefilter("ignore")
        man = export(m, build_tiny_tokenizer(cfg.vocab_size), out_dir, name=f"unipic-{cfg.name}", source=source)
    return man


def sweep_sampling(weights_sd, cfg, device, n_gen=8, n_edit=40, seed=99, log=None):
    """Small sweep of cfg / temperature on fresh cases; score = mean(generation overall, editing)."""
    m = UniPic(cfg)
    m.load_state_dict({k: v.float().cpu() for k, v in weights_sd.items()})
    m.eval()
    dev = torch.device(device)
    runnable = DeviceModel(m.to(dev), dev) if dev.type == "cuda" else m
    tok, _ = _tok(cfg.vocab_size)
    cases = build_cases(n_gen, 0, n_edit, seed=seed)
    best, rows = None, []
    for c in (1.5, 3.0, 5.0):
        for temp in (0.7, 1.0):
            for sched in ("constant", "linear"):
                p = {"cfg": c, "temperature": temp, "cfgSchedule": sched}
                s, _ = run_cases(runnable, tok, cases, seeds=1, params=p, batch=64, draw_seed=seed)
                score = ((s["generation"] or {}).get("overall", 0) + (s["editing"] or 0)) / 2
                rows.append({**p, "score": score, "generation": s["generation"]["overall"], "editing": s["editing"]})
                if log:
                    log(f"[sweep] {p} -> gen {s['generation']['overall']:.3f} edit {s['editing']:.3f}")
                if best is None or score > best[0]:
                    best = (score, p)
    return {**cfg.sampling, **best[1]}, rows


# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.train", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, ema.pt")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="stage B steps (schedule length); default 30000 "
                    "unless --minutes is given, then the length is fitted to the measured speed")
    ap.add_argument("--minutes", type=float, default=None, help="stage B wall-clock budget (training time)")
    ap.add_argument("--reserve-minutes", type=float, default=0.0,
                    help="with --minutes and no --steps: end the cosine this much before the budget")
    ap.add_argument("--batch-gen", type=int, default=64)
    ap.add_argument("--batch-edit", type=int, default=48)
    ap.add_argument("--batch-und", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--wd", type=float, default=0.02)
    ap.add_argument("--clip", type=float, default=2.0)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--w-gen", type=float, default=1.0)
    ap.add_argument("--w-edit", type=float, default=1.0)
    ap.add_argument("--w-und", type=float, default=0.5)
    ap.add_argument("--diff-mul", type=int, default=4, help="diffusion_batch_mul")
    ap.add_argument("--cfg-drop", type=float, default=0.1, help="prompt dropout to the CFG negative")
    ap.add_argument("--bf16", default="auto", choices=["auto", "on", "off"])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU); default 1")
    ap.add_argument("--workers", type=int, default=None, help="data processes (default: 0 on CPU, up to 12 on CUDA)")
    # stage A
    ap.add_argument("--vae-steps", type=int, default=4000)
    ap.add_argument("--vae-minutes", type=float, default=None)
    ap.add_argument("--vae-batch", type=int, default=64)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-agree-n", type=int, default=200)
    ap.add_argument("--vae-stats-n", type=int, default=512, help="scenes for the latent standardisation")
    # logging / eval / checkpoints
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=1000, help="0: no periodic evaluation")
    ap.add_argument("--no-final-eval", dest="final_eval", action="store_false")
    ap.add_argument("--eval-gen", type=int, default=12, help="prompts per generation category (1 seed)")
    ap.add_argument("--eval-und", type=int, default=60)
    ap.add_argument("--eval-edit", type=int, default=60)
    ap.add_argument("--eval-seed", type=int, default=31337)
    ap.add_argument("--eval-batch", type=int, default=72)
    ap.add_argument("--ckpt-every", type=int, default=500)
    ap.add_argument("--ckpt-minutes", type=float, default=10.0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init-from", help="warm start: UniPic weights (e.g. an earlier run's ema.pt / ema_fp16.pt, "
                    "VAE included) with a fresh optimizer and schedule; use another --seed to see new data")
    ap.add_argument("--stop-after", type=int, default=None, help="stop this invocation after N steps (resume later)")
    # export
    ap.add_argument("--export", default=None, help="export the EMA weights here (default OUT/unipic-tiny)")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--export-only", action="store_true", help="export OUT/ema.pt (or --weights) and stop")
    ap.add_argument("--weights", help="with --export-only: a UniPic state dict to export instead of OUT/ema.pt")
    ap.add_argument("--sweep", action="store_true", help="tune sampling_defaults by a small sweep before export")
    a = ap.parse_args(argv)
    if a.steps is None and a.minutes is None:
        a.steps = 30000
    return a


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads or (torch.get_num_threads() if torch.cuda.is_available() else 1))
    tr = Trainer(a)
    export_dir = a.export or os.path.join(a.out, "unipic-tiny")
    if a.export_only:
        w = torch_load(a.weights or os.path.join(a.out, "ema.pt"))
        if isinstance(w, dict) and "ema" in w and "model" in w:
            w = w["ema"]
        sampling = None
        if a.sweep:
            sampling, rows = sweep_sampling(w, tr.cfg, tr.dev, log=lambda m: tr.log.bar(m, final=True))
            tr.log.write({"stage": "sweep", "rows": rows, "chosen": sampling})
        man = export_weights(w, export_dir, tr.cfg, f"trained: {os.path.basename(a.weights or 'ema.pt')} "
                             f"({os.path.abspath(a.out)})", sampling)
        print(f"exported {export_dir}: sampling_defaults {man['sampling_defaults']}")
        return
    t0 = time.time()
    vae_sd = tr.stage_vae()
    model, ema, state, final = tr.stage_unipic(vae_sd)
    if not a.no_export:
        w = ema.state_dict(model)
        sampling = None
        if a.sweep:
            sampling, rows = sweep_sampling(w, tr.cfg, tr.dev, log=lambda m: tr.log.bar(m, final=True))
            tr.log.write({"stage": "sweep", "rows": rows, "chosen": sampling})
        src = (f"trained by toolkit.train: {state['step']} steps, {state['elapsed'] / 60:.1f} min on "
               f"{torch.cuda.get_device_name(0) if tr.cuda else 'cpu'}")
        man = export_weights(w, export_dir, tr.cfg, src, sampling)
        tr.log.write({"stage": "export", "dir": export_dir, "sampling_defaults": man["sampling_defaults"]})
        tr.log.bar(f"[export] {export_dir} (sampling_defaults {man['sampling_defaults']}); regenerate the "
                   f"engine fixtures with: python -m toolkit.fixtures --weights {os.path.join(a.out, 'ema.pt')}",
                   final=True)
    tr.log.bar(f"[done] {_fmt_t(time.time() - t0)} in all", final=True)


if __name__ == "__main__":
    main()
