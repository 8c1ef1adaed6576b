"""Stage A of the unipic-tiny training: the KL VAE (toolkit/vae.py, tiny config: 64x64 -> 8x8x16).

Trained on rendered ShapesWorld scenes with L1 + L2 pixel losses (object pixels weighted 4x, since
the white background is most of every image and small triangles live in their edge pixels) and a
small KL term (weight 1e-6 on the summed KL per image, LDM-style), posterior *sample* in training,
posterior *mean* at inference (as the engine does).

After training the latents are standardised in place: the mean half of `quant_conv` is rescaled and
shifted per channel and `post_quant_conv` absorbs the inverse, so that `tokens = mean * vae_scale`
(config value 0.2325, kept so the manifest and engine need no change) has zero mean and unit
standard deviation per channel on ShapesWorld, like UniPic's KL-16 latents. The decoder output is
unchanged by this reparametrisation (exactly linear).

Quality gate: `detector_agreement` renders fresh scenes, encodes (mean), decodes, converts with the
engine's to_uint8 rule and checks that shapes.detect reads back exactly the scene (same objects by
shape and colour, centres within the edit tolerance 0.08). Reported in the log and the model card.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch

from . import shapes as S
from .sampler import to_tokens, to_uint8

FG_WEIGHT = 4.0
KL_WEIGHT = 1e-6


def scene_batch(seed: int, step: int, B: int, size: int) -> np.ndarray:
    """uint8 [B,size,size,3] of random scenes, a pure function of (seed, step). 5% blank canvases
    (what a 'remove' edit of a single object leaves)."""
    rng = random.Random(f"vae:{seed}:{step}")
    out = np.empty((B, size, size, 3), dtype=np.uint8)
    for i in range(B):
        scene = [] if rng.random() < 0.05 else S.sample_scene(rng)
        out[i] = S.render(scene, size)
    return out


def pixels(imgs, device):
    """uint8 [B,H,W,3] (numpy or a tensor) -> [B,3,H,W] float in [-1,1] on device (docs/model.md 4.1: x/255*2-1)."""
    t = imgs if isinstance(imgs, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(imgs))
    x = t.to(device).permute(0, 3, 1, 2).float() / 255.0
    return 2 * x - 1


def posterior(vae, px):
    """-> mean, logvar [B,C,h,w] (quant_conv output split as in LDM's DiagonalGaussian)."""
    mom = vae.quant_conv(vae.encoder(px))
    mean, logvar = mom[:, :vae.z], mom[:, vae.z:]
    return mean, torch.clamp(logvar, -30.0, 20.0)


def vae_loss(vae, px, gen: torch.Generator | None = None):
    """-> total, dict of parts (detached scalar tensors). px [B,3,H,W] in [-1,1]."""
    mean, logvar = posterior(vae, px)
    std = torch.exp(0.5 * logvar)
    noise = torch.randn(mean.shape, generator=gen, device=mean.device, dtype=mean.dtype) if gen is not None \
        else torch.randn_like(mean)
    z = mean + std * noise
    rec = vae.decode(z).float()
    fg = (px < 0.999).any(dim=1, keepdim=True).float()     # not white
    w = 1.0 + (FG_WEIGHT - 1.0) * fg
    l1 = ((rec - px).abs() * w).mean()
    l2 = (((rec - px) ** 2) * w).mean()
    kl = 0.5 * (mean.float() ** 2 + torch.exp(logvar.float()) - 1.0 - logvar.float()).sum(dim=(1, 2, 3)).mean()
    total = l1 + l2 + KL_WEIGHT * kl
    return total, {"l1": l1.detach(), "l2": l2.detach(), "kl": kl.detach()}  # tensors: no GPU sync per step


@torch.no_grad()
def latent_stats(vae, size: int, device, n: int = 512, seed: int = 777):
    """Per-channel mean / std of the posterior mean over n fresh scenes."""
    ms = []
    for k in range(0, n, 64):
        px = pixels(scene_batch(seed, k, min(64, n - k), size), device)
        ms.append(vae.encode(px).float())
    m = torch.cat(ms)                                     # [n,C,h,w]
    flat = m.transpose(0, 1).reshape(m.shape[1], -1)       # [C, n*h*w]
    return flat.mean(1), flat.std(1)


@torch.no_grad()
def standardize(vae, size: int, vae_scale: float, device, n: int = 512):
    """Reparametrise so that mean * vae_scale has zero mean / unit std per channel. Returns the
    (mean, std) measured before. Exact: decode(encode(x)) is unchanged."""
    mu, sd = latent_stats(vae, size, device, n)
    a = (1.0 / vae_scale) / sd.clamp(min=1e-6)            # new = a * (old - mu)
    C = vae.z
    qw, qb = vae.quant_conv.weight, vae.quant_conv.bias    # [2C,2C,1,1], [2C]
    qw[:C] *= a[:, None, None, None]
    qb[:C] = (qb[:C] - mu) * a
    # post_quant_conv(old) = W old + b, old = new / a + mu
    pw, pb = vae.post_quant_conv.weight, vae.post_quant_conv.bias  # [C,C,1,1] (out, in)
    pb += (pw[:, :, 0, 0] @ mu)
    pw /= a[None, :, None, None]
    qb[C:] += 2 * torch.log(a)                             # logvar of the scaled posterior (training only)
    return mu, sd


@torch.no_grad()
def detector_agreement(vae, size: int, device, n: int = 200, seed: int = 4242) -> dict:
    """Fraction of fresh scenes whose reconstruction the detector reads as the scene itself."""
    rng = random.Random(f"agree:{seed}")
    scenes = [S.sample_scene(rng) for _ in range(n)]
    ok, mae = 0, 0.0
    for k in range(0, n, 50):
        chunk = scenes[k:k + 50]
        imgs = np.stack([S.render(s, size) for s in chunk])
        rec = to_uint8(vae.decode(vae.encode(pixels(imgs, device))).float()).cpu().numpy()
        mae += float(np.abs(rec.astype(np.int32) - imgs.astype(np.int32)).mean()) * len(chunk)
        for s, r in zip(chunk, rec):
            ok += S.score_edit({"expect": s}, S.detect(r)) == 1.0
    return {"detector_agreement": ok / n, "mae_uint8": mae / n, "n": n}


def lr_at(step: int, total: int, lr: float, warmup: int, final_frac: float = 0.1) -> float:
    """Linear warm-up, then cosine from lr to final_frac * lr at `total`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def vae_tokens(vae, imgs, vae_scale: float, device) -> torch.Tensor:
    """uint8 [B,H,W,3] -> tokens [B,L,C] = posterior mean * vae_scale (as Runner.encode_image)."""
    return to_tokens(vae.encode(pixels(imgs, device)).float()) * vae_scale
