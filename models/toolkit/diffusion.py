"""Diffusion schedule tables and one ancestral DDPM step (docs/model.md 3.5).

Tables are computed once in float64 (numpy), as guided-diffusion/MAR do, and cast to float32 where
they meet tensors. The network is fed the *original* timesteps t_k in 0..T-1 (respace.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch

T_BASE = 1000
MAX_BETA = 0.2  # UniPic's betas_for_alpha_bar default (MAR/Harmon use 0.999), docs/model.md §3.5


def alpha_bar(t: float) -> float:
    return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2


def base_betas(T: int = T_BASE, max_beta: float = MAX_BETA) -> np.ndarray:
    return np.array([min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta) for i in range(T)],
                    dtype=np.float64)


def space_timesteps(T: int, steps: int) -> list[int]:
    """guided-diffusion space_timesteps(T, str(steps)) for one section: float stride, Python
    round() (banker's rounding). 100 of 1000 -> 0, 10, 20, 30, 40, 50, 61, ..., 989, 999."""
    if steps > T:
        raise ValueError(f"cannot take {steps} steps from {T}")
    stride = (T - 1) / (steps - 1) if steps > 1 else 1
    cur, out = 0.0, []
    for _ in range(steps):
        out.append(round(cur))
        cur += stride
    return sorted(set(out))


class Schedule:
    """Respaced tables, index k = 0..S-1 (k = S-1 is the noisiest)."""

    def __init__(self, steps: int, T: int = T_BASE, max_beta: float = MAX_BETA):
        ac_base = np.cumprod(1.0 - base_betas(T, max_beta))
        self.timesteps = space_timesteps(T, steps)
        last, betas = 1.0, []
        for t in self.timesteps:
            betas.append(1 - ac_base[t] / last)
            last = ac_base[t]
        b = np.array(betas, dtype=np.float64)
        ac = np.cumprod(1.0 - b)
        acp = np.append(1.0, ac[:-1])
        self.betas = b
        self.alphas_cumprod = ac
        self.alphas_cumprod_prev = acp
        self.sqrt_recip_ac = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_ac = np.sqrt(1.0 / ac - 1)
        pv = b * (1.0 - acp) / (1.0 - ac)
        self.posterior_variance = pv
        self.post_logvar_clipped = np.log(np.append(pv[1], pv[1:])) if len(pv) > 1 else np.log(b)
        self.log_betas = np.log(b)
        self.coef1 = b * np.sqrt(acp) / (1.0 - ac)
        self.coef2 = (1.0 - acp) * np.sqrt(1.0 - b) / (1.0 - ac)

    def tables(self) -> dict:
        """Every table the engine uses, as plain lists (fixtures)."""
        return {k: [float(v) for v in getattr(self, k)] for k in (
            "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_recip_ac", "sqrt_recipm1_ac",
            "posterior_variance", "post_logvar_clipped", "log_betas", "coef1", "coef2")} | {
            "timesteps": list(self.timesteps)}


def ddpm_step(sch: Schedule, k: int, x, out_c, out_u, cfg: float, temperature: float, noise):
    """One guided ancestral step (docs/model.md §3.5 'Per MAR iteration').
    x [n,C]; out_c / out_u [n,2C] = head outputs for the cond / uncond rows (out_u None: no CFG);
    noise [n,C] or None at k = 0 -> x_{k-1} [n,C]. All in float32 like the reference."""
    C = x.shape[1]
    eps_c, v = out_c[:, :C], out_c[:, C:]
    eps = eps_c if out_u is None else out_u[:, :C] + cfg * (eps_c - out_u[:, :C])  # CFG on eps only
    f = lambda a: torch.tensor(float(a[k]), dtype=torch.float32)  # noqa: E731
    x0 = f(sch.sqrt_recip_ac) * x - f(sch.sqrt_recipm1_ac) * eps  # no clipping
    mean = f(sch.coef1) * x0 + f(sch.coef2) * x
    frac = (v + 1) / 2                                           # learned range, not clamped
    logvar = frac * f(sch.log_betas) + (1 - frac) * f(sch.post_logvar_clipped)
    if k == 0:
        return mean
    return mean + torch.exp(0.5 * logvar) * noise * temperature   # temperature on per-step noise only
