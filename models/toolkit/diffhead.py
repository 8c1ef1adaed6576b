"""Diffusion head: MAR's SimpleMLPAdaLN with learned-range variance (docs/model.md 3.5 "Inside the diffusion MLP").

Keys follow `mar.diffloss.net.*`. The final LayerNorm has no parameters in the checkpoint; it is
written with constant weight 1 / bias 0 buffers (non-persistent) so that torch 1.13 exports a
valid opset-17 LayerNormalization (docs/model.md section 15, pitfall 1).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

FREQ_DIM = 256  # sinusoid size of the timestep embedder


def timestep_sinusoid(t, dim: int = FREQ_DIM, max_period: float = 10000.0):
    """t [N] (original timesteps 0..999) -> [N, dim], laid out [cos, sin] (docs/model.md §3.5)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(FREQ_DIM, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t):
        return self.mlp(timestep_sinusoid(t))


class ResBlock(nn.Module):
    def __init__(self, width, eps):
        super().__init__()
        self.in_ln = nn.LayerNorm(width, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))

    def forward(self, x, y):
        shift, scale, gate = self.adaLN_modulation(y).chunk(3, dim=-1)  # each [N, width]
        return x + gate * self.mlp(modulate(self.in_ln(x), shift, scale))


class FinalLayer(nn.Module):
    def __init__(self, width, out_ch, eps):
        super().__init__()
        self.eps, self.width = eps, width
        self.register_buffer("ln_w", torch.ones(width), persistent=False)
        self.register_buffer("ln_b", torch.zeros(width), persistent=False)
        self.linear = nn.Linear(width, out_ch)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x, y):
        shift, scale = self.adaLN_modulation(y).chunk(2, dim=-1)
        x = F.layer_norm(x, (self.width,), self.ln_w, self.ln_b, self.eps)  # norm_final, no affine
        return self.linear(modulate(x, shift, scale))


class SimpleMLPAdaLN(nn.Module):
    """x [N,C], t [N] int64 (original timesteps), c [N,W] -> [N, 2C] = (eps, variance interpolation)."""

    def __init__(self, cfg):
        super().__init__()
        C, W, D = cfg.latent_channels, cfg.mar_width, cfg.head_width
        self.time_embed = TimestepEmbedder(D)
        self.cond_embed = nn.Linear(W, D)
        self.input_proj = nn.Linear(C, D)
        self.res_blocks = nn.ModuleList([ResBlock(D, cfg.ln_eps) for _ in range(cfg.head_blocks)])
        self.final_layer = FinalLayer(D, 2 * C, cfg.ln_eps)

    def forward(self, x, t, c):
        y = self.time_embed(t) + self.cond_embed(c)  # [N, D]
        h = self.input_proj(x)
        for blk in self.res_blocks:
            h = blk(h, y)
        return self.final_layer(h, y)


class DiffLoss(nn.Module):
    """Only a container so the keys read `mar.diffloss.net.*` like the checkpoint."""

    def __init__(self, cfg):
        super().__init__()
        self.net = SimpleMLPAdaLN(cfg)
