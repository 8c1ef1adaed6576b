"""unipic-tiny training losses (toolkit.train): the diffusion loss (eps MSE + VLB term, as MAR's
DiffLoss) and the Objective that computes the three task losses of a step (text-to-image and
editing through MAR + diffusion head, understanding as LM cross-entropy), with bf16 matmuls on CPU.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F

from .diffusion import Schedule
from .mar import resize_table
from .model import UniPic
from .tokenizer import USER_PREFIX
from .train_data import tiny_tokenizer


# ---------------------------------------------------------------------------------------------
# bf16 on CPU: matmul inputs in bf16, everything else fp32 (docs/stack.md section 3)


FAST_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 flags of native bf16 dot products


def fast_cpu_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX), from /proc/cpuinfo's flags.
    Without them oneDNN emulates bf16 and a training step is 20x slower than in fp32: measured on a
    2-core AMD EPYC with AVX2 only, 138 s for the first step against 6.7 s in fp32."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return any(f in flags for f in FAST_BF16_FLAGS)


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
    learn_sigma), as MAR's DiffLoss.

    snr_gamma > 0 weights each row's eps MSE by min(SNR(t), gamma) / SNR(t) (Min-SNR, Hang et al.
    2023, arXiv 2303.09556, eps form): the low-noise steps, where the target is mostly in x_t, count
    less, so the high-noise steps that must learn E[x0 | z] (the layout MAR's first iterations
    sample) get a larger share of the gradient. 0 = uniform (how the shipped weights were trained)."""

    def __init__(self, device, snr_gamma: float = 0.0):
        sch = Schedule(1000)  # respacing 1000 of 1000 = the base tables
        f = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        self.T = 1000
        snr = sch.alphas_cumprod / (1 - sch.alphas_cumprod)
        self.w_eps = f(np.minimum(snr, snr_gamma) / snr if snr_gamma > 0 else np.ones_like(snr))  # [T]
        self.sqrt_ac = f(np.sqrt(sch.alphas_cumprod))
        self.sqrt_1mac = f(np.sqrt(1 - sch.alphas_cumprod))
        self.sra, self.srm1 = f(sch.sqrt_recip_ac), f(sch.sqrt_recipm1_ac)
        self.c1, self.c2 = f(sch.coef1), f(sch.coef2)
        self.plc, self.logb = f(sch.post_logvar_clipped), f(sch.log_betas)

    def q_sample(self, x0, t, noise):
        """x_t = sqrt(ac_t) x0 + sqrt(1 - ac_t) noise; x0 / noise [N,C], t [N]."""
        return self.sqrt_ac[t][:, None] * x0 + self.sqrt_1mac[t][:, None] * noise

    def x0_from_eps(self, xt, t, eps):
        """The clean estimate sqrt(1/ac_t) x_t - sqrt(1/ac_t - 1) eps (no clipping, as the sampler)."""
        return self.sra[t][:, None] * xt - self.srm1[t][:, None] * eps

    def __call__(self, head, z, x0, mul, gen, autocast_ctx, weight=None, t=None, noise=None):
        """z [N,W] conditions, x0 [N,C] targets -> (loss, mse) scalars (fp32). Each row is repeated
        `mul` times with its own t and noise (drawn from `gen` unless given, [N*mul] / [N*mul,C]).
        weight [N] (optional): a weighted mean over rows instead of the plain mean (the static pass
        runs every position and weights the ones to predict)."""
        z, x0 = z.repeat(mul, 1), x0.repeat(mul, 1)
        N, C = x0.shape
        if t is None:
            t = torch.randint(0, self.T, (N,), generator=gen, device=x0.device)
        if noise is None:
            noise = torch.randn(x0.shape, generator=gen, device=x0.device)
        e = lambda a: a[t][:, None]  # noqa: E731
        xt = self.q_sample(x0, t, noise)
        with autocast_ctx():
            out = head(xt, t, z)
        out = out.float()
        eps, v = out[:, :C], out[:, C:]
        mse = ((eps - noise) ** 2).mean(1)
        true_mean = e(self.c1) * x0 + e(self.c2) * xt
        true_lv = e(self.plc)
        px0 = self.x0_from_eps(xt, t, eps.detach())
        mmean = e(self.c1) * px0 + e(self.c2) * xt
        frac = (v + 1) / 2
        mlv = frac * e(self.logb) + (1 - frac) * true_lv
        kl = normal_kl(true_mean, true_lv, mmean, mlv).mean(1) / math.log(2.0)
        nll = -discretized_gaussian_ll(x0, mmean, 0.5 * mlv).mean(1) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl)
        per = self.w_eps[t] * mse + vb
        if weight is None:
            return per.mean(), mse.mean()
        w = weight.repeat(mul).to(per.dtype)
        return (per * w).sum() / w.sum(), (mse * w).sum() / w.sum()


CHANGED_MSE = 0.05  # a target token this far (mean squared) from its source token was changed by the edit


def changed_tokens(src, tgt):
    """src, tgt [B,L,C] tokens -> [B,L] bool: the tokens the edit changes (the rest copy the source)."""
    return ((src - tgt) ** 2).mean(-1) > CHANGED_MSE


def edit_weights(src, tgt, focus: float, patches=None):
    """[B,L] loss weights of an edit's target tokens: 1 + focus on the tokens the edit changes.
    patches [B,L] (optional): weigh instead the tokens whose patch share is above 0: those an edit
    repaints (train_data.patch_changes) or those an object covers (train_data.patch_objects).
    The VAE's latents are not local: an edit moves two to three times as many tokens as it
    repaints patches, and copying those neighbours costs the scorer little, while copying a
    repainted patch fails the edit (docs/training.md, "Which copied tokens fail an edit").

    An edit changes a few percent of the tokens and the decoder already holds the source at every
    masked position (x_con), so the plain mean is nearly all copying: a model that ignores the
    instruction scores almost as well as one that follows it. Weighting the changed tokens makes
    the instruction worth learning (the weighted mean keeps the loss's scale). None when focus = 0."""
    if focus <= 0:
        return None
    changed = changed_tokens(src, tgt) if patches is None else patches > 0
    return 1.0 + focus * changed.float()


class Objective:
    """The three task losses of one step, on the training (non-EMA) model.
    edit_focus: extra loss weight on the target tokens an edit changes (edit_weights), told by their
    latents, or by the patch shares a batch carries (`--edit-focus-on`, train_data.FOCUS_PATCHES)."""

    def __init__(self, model: UniPic, device, mul=4, autocast=False, cpu_bf16=False, snr_gamma=0.0, edit_focus=0.0):
        self.m, self.dev, self.mul = model, torch.device(device), mul
        self.edit_focus = edit_focus
        self.cfg = model.cfg
        c = self.cfg
        self.L = c.grid(c.default_resolution) ** 2
        self.buf = c.buffer_tokens
        self.ids = None
        tok, _ = tiny_tokenizer(c.vocab_size)
        self.img_start = len(tok.encode(USER_PREFIX))  # <image> rows follow "<|im_start|>user\n"
        self.diff = DiffusionLoss(self.dev, snr_gamma)
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

    def encode_source(self, tokens, pos):
        """A whole source image [B,L,C] through the MAR encoder (every token visible): (x_con, z_enc)."""
        B = tokens.shape[0]
        idx = torch.arange(self.L, device=self.dev)[None].expand(B, self.L)
        return self.m.mar_encoder(tokens, idx, pos[0])

    def image_loss(self, tokens, vis, pred, ids, pmask, fill, prompt_rows, image_id, gen, pos, weight=None):
        """One MAR training pass: visible tokens + prompt -> z at pred -> diffusion loss.
        weight [B,L] (optional): per-token loss weights, read at pred."""
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
        w = None if weight is None else torch.gather(weight, 1, pred).reshape(B * n)
        return self.diff(self.m.mar.diffloss.net, z.reshape(B * n, -1).float(), x0.reshape(B * n, C),
                         self.mul, gen, self.ctx, weight=w)

    def edit_w(self, b):
        """[B,L] edit loss weights or None; the patch shares come with the batch when --edit-focus-on
        names them (train_data.FOCUS_PATCHES)."""
        return edit_weights(b["edit_src_tok"], b["edit_tok"], self.edit_focus, b.get("edit_patches"))

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
            B = b["edit_src_tok"].shape[0]
            with self.ctx():
                x_con, z_enc = self.encode_source(b["edit_src_tok"], pos)
                fill = self.m.mar_fill(x_con, torch.ones(B, device=self.dev))
            w = self.edit_w(b)
            out["edit"], out["edit_mse"] = self.image_loss(b["edit_tok"], b["edit_vis"], b["edit_pred"], b["edit_ids"],
                                                           b["edit_mask"], fill, z_enc, ids["image"], gen, pos, w)
        if "und_ids" in b:
            with self.ctx():
                _, z_enc = self.encode_source(b["und_tok"], pos)
                x = self.embed(b["und_ids"], z_enc, ids["image"])
                hidden = self.llm(x, b["und_mask"])
                h = hidden[b["und_rows"], b["und_cols"]]                       # [K,H]
                logits = self.m.llm.logits(h).float()
            target = b["und_ids"][b["und_rows"], b["und_cols"] + 1]
            out["und"] = F.cross_entropy(logits, target)
            out["und_acc"] = (logits.argmax(-1) == target).float().mean().detach()
        return out
