"""Stage A of toolkit.train: the tiny KL VAE trained on rendered scenes (losses and metrics in
toolkit/vae_train.py), then standardised, measured (detector agreement) and saved for freezing.

Built from the trainer (toolkit.train.Trainer.stage_vae): it reads the trainer's args, config,
device, log and data workers, and owns nothing else.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import deque

import torch

from . import vae_train as V
from .evaluate import torch_load
from .train_data import BatchStream, vae_job
from .train_state import fmt_duration, unipic_state_dict, atomic_save, step_generator


class StageA:
    """Stage A, the VAE, for one trainer."""

    def __init__(self, trainer):
        t = trainer
        self.a, self.cfg, self.dev, self.out, self.log = t.a, t.cfg, t.dev, t.out, t.log
        self.size, self.cuda, self.bf16, self.workers = t.size, t.cuda, t.bf16, t.workers

    def vae_path(self):
        return os.path.join(self.out, "vae.pt")

    def run(self):
        """-> the trained (or saved) VAE's state dict."""
        a = self.a
        if a.init_from and not os.path.exists(self.vae_path()):
            sd = unipic_state_dict(torch_load(a.init_from))
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
                             f"kl {parts['kl']:.1f} | {rate:.3f} s/step | ETA {fmt_duration(left)}")
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
