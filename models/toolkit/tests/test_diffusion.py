"""Schedule numerics against docs/model.md's anchor values (docs/model.md 3.5, 3.3)."""

import math

import numpy as np
import pytest
import torch

from toolkit.diffusion import Schedule, base_betas, ddpm_step, space_timesteps
from toolkit.fixtures import mask_steps
from toolkit.sampler import cfg_scale


def test_anchor_values():
    s = Schedule(100)
    assert s.betas[0] == pytest.approx(4.1284e-05, rel=1e-4)
    assert s.betas[1] == pytest.approx(6.7984e-04, rel=1e-4)
    assert s.betas[99] == pytest.approx(0.891282, abs=1e-6)
    assert s.alphas_cumprod[99] == pytest.approx(2.6403e-05, rel=1e-4)
    assert s.post_logvar_clipped[0] == pytest.approx(-10.15395, abs=1e-5)
    assert s.post_logvar_clipped[1] == pytest.approx(-10.15395, abs=1e-5)
    assert s.post_logvar_clipped[99] == pytest.approx(-0.115311, abs=1e-6)
    assert s.log_betas[99] == pytest.approx(-0.115094, abs=1e-6)


def test_max_beta_matters():
    b = base_betas()
    assert b.max() == 0.2 and (b == 0.2).sum() == 1000 - 991  # only i >= 991 clipped
    ac = np.cumprod(1 - base_betas(max_beta=0.999))
    assert ac[999] < 1e-8  # 0.999 would give 2.4e-9 at the end of the respaced chain


def test_respaced_timesteps():
    ts = space_timesteps(1000, 100)
    assert ts[:8] == [0, 10, 20, 30, 40, 50, 61, 71]
    assert ts[-4:] == [969, 979, 989, 999] and len(ts) == 100
    assert space_timesteps(1000, 25)[:3] == [0, 42, 83]
    assert space_timesteps(1000, 10) == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]


def test_mask_schedule_tables():
    # docs/model.md §3.3 table (tokens predicted per step)
    assert [m["predict"] for m in mask_steps(4096, 32)][:8] == [5, 15, 25, 34, 44, 54, 63, 72]
    assert [m["predict"] for m in mask_steps(4096, 32)][-6:] == [194, 196, 198, 200, 201, 200]
    assert [m["predict"] for m in mask_steps(1024, 32)][:8] == [2, 3, 7, 8, 11, 14, 15, 18]
    assert [m["predict"] for m in mask_steps(256, 32)][:8] == [1, 1, 1, 2, 3, 4, 3, 5]
    assert [m["predict"] for m in mask_steps(256, 32)][-6:] == [12, 13, 12, 12, 13, 12]
    for L, N in ((64, 16), (4096, 64), (10, 16)):
        assert sum(m["predict"] for m in mask_steps(L, N)) == L
    # LLM tokens per row summed over steps = sum(V + buf), docs/model.md §3.3: 47,661 for 4096 x 32
    masked, total = 4096, 0
    for m in mask_steps(4096, 32):
        total += (4096 - masked) + 64
        masked -= m["predict"]
    assert total == 47661


def test_cfg_linear():
    assert cfg_scale(3.0, "constant", 64, 10) == 3.0
    assert cfg_scale(3.0, "linear", 64, 16) == pytest.approx(1 + 2 * 48 / 64)
    with pytest.raises(ValueError):
        cfg_scale(3.0, "cosine", 64, 1)


def test_oracle_eps_recovers_x0():
    """With the true eps the ancestral chain lands on x0 (exact sampler check)."""
    s = Schedule(100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 16, generator=g) * 0.5
    x = torch.randn(64, 16, generator=g)
    for k in reversed(range(100)):
        ac = float(s.alphas_cumprod[k])
        eps = (x - math.sqrt(ac) * x0) / math.sqrt(1 - ac)
        out = torch.cat([eps, torch.zeros_like(eps)], 1)
        x = ddpm_step(s, k, x, out, None, 1.0, 1.0, torch.randn(64, 16, generator=g) if k else None)
    assert float((x - x0).abs().max()) < 1e-3


def test_cfg_on_eps_only_variance_from_cond():
    s = Schedule(10)
    x = torch.ones(2, 4)
    oc = torch.cat([torch.full((2, 4), 0.5), torch.full((2, 4), 0.3)], 1)
    ou = torch.cat([torch.full((2, 4), 0.1), torch.full((2, 4), -0.9)], 1)
    a = ddpm_step(s, 5, x, oc, ou, 2.0, 1.0, torch.zeros(2, 4))
    ref = torch.cat([torch.full((2, 4), 0.1 + 2.0 * 0.4), torch.full((2, 4), 0.3)], 1)
    b = ddpm_step(s, 5, x, ref, None, 1.0, 1.0, torch.zeros(2, 4))
    assert torch.allclose(a, b, atol=1e-6)
    # temperature scales the per-step noise only
    n = torch.randn(2, 4)
    d1 = ddpm_step(s, 5, x, oc, ou, 2.0, 1.0, n) - a
    d2 = ddpm_step(s, 5, x, oc, ou, 2.0, 0.5, n) - a
    assert torch.allclose(d2, 0.5 * d1, atol=1e-6)
