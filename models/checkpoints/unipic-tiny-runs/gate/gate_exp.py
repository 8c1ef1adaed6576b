"""A temporary experiment, kept as its record (not part of the toolkit): guidance per token, gated
on how far the instruction's clean-token estimate lies from "Repeat this image."'s.

At the first (noisiest) DDPM step of each token, d = RMS over the 16 channels of
x0_cond - x0_uncond = sqrt(1/abar - 1) * (eps_cond - eps_uncond); the token then keeps guidance
scale `hi` for its whole chain where d > tau, and `lo` elsewhere (DiffEdit's idea, a mask from the
gap between two conditions, applied per token). Run from models/:

    GATE=tau,lo,hi python checkpoints/unipic-tiny-runs/gate/gate_exp.py <toolkit.edit_modes flags>

with --edit-sampling '{"cfg": 1.0001}' so both branches are computed (the draws are the same as
at CFG 1: the uncond rows take no noise of their own). HIST=path dumps every d.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
from toolkit import edit_modes  # noqa: E402
from toolkit import sampler as SM  # noqa: E402
from toolkit.diffusion import ddpm_step  # noqa: E402

TAU, LO, HI = (float(v) for v in os.environ.get("GATE", "0,1,1").split(","))
GAPS = []


def diffuse(self, z_c, z_u, sch, scale, temperature, draws):
    """sampler.Runner.diffuse with the gate: z_c / z_u [N,W] -> token latents [N,C]."""
    N, C = z_c.shape[0], self.cfg.latent_channels
    x = draws.normal((N, C))
    S, s = len(sch.timesteps), scale
    for k in reversed(range(S)):
        t = torch.full((N,), sch.timesteps[k], dtype=torch.int64)
        if z_u is None:
            out_c, out_u = self.m.diffusion_head(x, t, z_c), None
        else:
            out = self.m.diffusion_head(torch.cat([x, x]), torch.cat([t, t]), torch.cat([z_c, z_u]))
            out_c, out_u = out[:N], out[N:]
            if k == S - 1:
                d = (float(sch.sqrt_recipm1_ac[k]) * (out_c[:, :C] - out_u[:, :C])).pow(2).mean(1).sqrt()
                GAPS.extend(d.tolist())
                if TAU > 0:  # [N,1] scales broadcast in ddpm_step
                    s = torch.where(d > TAU, torch.tensor(HI), torch.tensor(LO))[:, None]
        noise = draws.normal((N, C)) if k > 0 else None
        x = ddpm_step(sch, k, x, out_c, out_u, s, temperature, noise)
    return x


SM.Runner.diffuse = diffuse
edit_modes.main(sys.argv[1:])
if os.environ.get("HIST"):
    with open(os.environ["HIST"], "w") as f:
        json.dump(GAPS, f)
