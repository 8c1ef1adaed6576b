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
softmax and the diffusion math stay fp32), which is 4-5x faster on AVX512-BF16 CPUs; `--bf16 auto`
uses it only on CPUs that have bf16 instructions, as emulated bf16 is 20x slower than fp32
(docs/stack.md section 3).

Everything random in a step is a pure function of (--seed, step): batches are rendered from
`random.Random(f"{seed}:{step}")` (in worker processes on CUDA), orders/masks from a numpy
RandomState of the same key, t and noise from a torch generator seeded from it. So `--resume`
continues exactly (model, EMA, optimizer, step, schedule and wall-clock budget are checkpointed).

This module is the trainer loop and the CLI; its parts live in train_data.py (batches),
train_losses.py (diffusion and LM losses), train_state.py (init, EMA, checkpoints, RNG, log),
train_stage_a.py (stage A) and train_export.py (sweep and export), all re-exported here.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque

import torch

from . import vae_train as V
from .config import fit_to_weights, get_config
from .evaluate import DeviceModel, build_cases, pick_device, run_cases, torch_load
from .model import UniPic, param_count
# The trainer's parts: train_data (batches), train_losses (the eager pass), train_static (the
# fixed-shape pass), train_state (init, EMA, checkpoints, log), train_stage_a (the VAE),
# train_export (sweep and export).
from .train_args import parse_args  # noqa: F401 (toolkit.train.parse_args)
from .train_data import BatchStream, make_batch, tiny_tokenizer, to_device_batch
from .train_export import export_weights, sweep_sampling
from .train_losses import Objective, fast_cpu_bf16
from .train_stage_a import StageA
from .train_static import StaticObjective, StepChooser, static_pads
from .train_state import EMA, Log, grow_buffers, grow_blocks, fmt_duration, unipic_state_dict, atomic_save, init_train, rng_state, set_rng_state, \
    step_generator, trainable


# ---------------------------------------------------------------------------------------------
# the trainer


def lr_at(a, step: int, total: int | None) -> float:
    """--schedule constant: linear warm-up, then a constant rate, then a linear cool-down to 0.1x
    over the last --cooldown steps of a run whose length is known (a resumed or extended run just
    continues at the constant rate). --schedule cosine: warm-up, cosine to 0.1x at `total`."""
    if a.schedule == "cosine":
        return V.lr_at(step, total or 10**9, a.lr, a.warmup)
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    if total and a.cooldown and step >= total - a.cooldown:
        return a.lr * (0.1 + 0.9 * max(0, total - step) / a.cooldown)
    return a.lr


# Shape knobs a warm start may grow (train_state.grow_blocks, grow_buffers), each a flag named as its
# config field (`--mar-enc-blocks` sets mar_enc_blocks).
GROWN_FIELDS = ("mar_enc_blocks", "mar_dec_blocks", "llm_layers", "head_blocks", "buffer_tokens")


class Trainer:
    """The two stages (stage A: train_stage_a.StageA), checkpoints and periodic evaluation."""

    def __init__(self, args):
        self.a = args
        self.dev = torch.device(pick_device(args.device))
        self.cfg = get_config(args.config)
        if args.init_from:  # a warm start keeps the depth of the weights it starts from
            self.cfg = fit_to_weights(self.cfg, unipic_state_dict(torch_load(args.init_from)))
        # --resume: the run's checkpoint, read once here (a resumed run keeps the shapes it grew
        # to) and taken by run(), which restores model, EMA, AdamW, step and RNG from it
        ckpt = os.path.join(args.out, "ckpt.pt")
        self.resumed = torch_load(ckpt) if args.resume and os.path.exists(ckpt) else None
        if self.resumed:
            self.cfg = fit_to_weights(self.cfg, self.resumed["model"])
        grown = {k: getattr(args, k) for k in GROWN_FIELDS if getattr(args, k)}
        self.cfg = self.cfg.replace(**grown)
        self.out = args.out
        os.makedirs(self.out, exist_ok=True)
        self.log = Log(self.out)
        self.size = self.cfg.default_resolution
        self.cuda = self.dev.type == "cuda"
        # auto: bf16 on CUDA, and on a CPU only where it multiplies bf16 natively (fast_cpu_bf16)
        self.bf16 = {"auto": self.cuda or fast_cpu_bf16(), "on": True, "off": False}[args.bf16]
        self.static = {"auto": self.cuda, "on": True, "off": False}[args.static]
        if self.cuda:
            try:  # fp32 leftovers (VAE encode, losses) on tensor cores
                torch.backends.cuda.matmul.allow_tf32 = True
                torch.backends.cudnn.allow_tf32 = True
            except Exception:  # noqa: BLE001 (newer torch: fp32_precision API)
                pass

    def stage_vae(self):
        """Stage A (the VAE), or its saved result: the VAE state dict."""
        return StageA(self).run()

    def workers(self):
        a = self.a
        if a.workers is not None:
            return a.workers
        return min(12, max(0, (os.cpu_count() or 1) - 2)) if self.cuda else 0

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
        # groups (weight decay or not) x (the image side at --lr-mar times the rate, or the rest); the
        # image side is a group of its own only when its rate differs, so older checkpoints resume
        image = (lambda n: n.startswith(("mar.", "proj_"))) if a.lr_mar != 1.0 else (lambda n: False)
        groups = {(d, i): [] for d in (True, False) for i in (False, True)}
        for n, p in trainable(model):
            groups[(p.dim() >= 2 and "pos_embed" not in n and "embed_tokens" not in n, image(n))].append(p)
        groups = [{"params": ps, "weight_decay": a.wd if d else 0.0, "lr_mult": a.lr_mar if i else 1.0}
                  for (d, i), ps in groups.items() if ps]
        kw = {}
        if self.cuda and "fused" in torch.optim.AdamW.__init__.__code__.co_varnames:
            kw["fused"] = True
        elif "foreach" in torch.optim.AdamW.__init__.__code__.co_varnames:
            kw["foreach"] = True
        return torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), **kw)

    def dims(self):
        c, a = self.cfg, self.a
        g = c.grid(self.size)
        d = {"size": self.size, "L": g * g, "img_tokens": g * g + c.buffer_tokens, "cfg_drop": a.cfg_drop,
             "vocab_size": c.vocab_size, "batch_gen": a.batch_gen, "batch_edit": a.batch_edit,
             "batch_und": a.batch_und, "layout": a.layout, "open_colors": a.open_colors, "mask_min": a.mask_min,
             "edit_drawn": a.edit_drawn, "edit_min_objects": a.edit_min_objects, "edit_uncond": a.edit_uncond,
             "edit_isolate": a.edit_isolate, "und_where": a.und_where, "article_an": a.article_an,
             "edit_focus_on": a.edit_focus_on}
        if self.static:
            d.update(static=True, pads=static_pads(make_batch, d))
        return d

    def ckpt_path(self):
        return os.path.join(self.out, "ckpt.pt")

    def save(self, model, ema, opt, state):
        atomic_save({"model": model.state_dict(), "ema": ema.state_dict(model), "opt": opt.state_dict(),
                     "state": state, "rng": rng_state(), "args": vars(self.a), "config": self.cfg.to_dict()},
                    self.ckpt_path())
        atomic_save({k: v.cpu() for k, v in ema.state_dict(model).items()}, os.path.join(self.out, "ema.pt"))
        # the raw (non-EMA) weights too: whether the EMA helps is measured, not assumed
        atomic_save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                    os.path.join(self.out, "raw.pt"))

    def eval_cases(self):
        a = self.a
        return build_cases(a.eval_gen, a.eval_und, a.eval_edit, seed=a.eval_seed, repeats=a.eval_repeat)

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
        obj = (StaticObjective if self.static else Objective)(model, self.dev, mul=a.diff_mul, autocast=self.bf16,
                                                               cpu_bf16=self.bf16, snr_gamma=a.snr_gamma,
                                                               edit_focus=a.edit_focus)
        tok, ids = tiny_tokenizer(self.cfg.vocab_size)
        obj.ids = ids
        opt = self.optimizer(model)
        ema = EMA(model, a.ema)
        state = {"step": 0, "elapsed": 0.0, "total": a.steps}
        st, self.resumed = self.resumed, None  # the checkpoint is not held past its restore
        if a.init_from and not st:
            # warm start from earlier (EMA) weights: new optimizer and schedule, new data steps
            sd = {k: v.float() for k, v in unipic_state_dict(torch_load(a.init_from)).items()}
            sd = grow_buffers(model, grow_blocks(model, sd))
            model.load_state_dict({**sd, **{k: v for k, v in model.state_dict().items() if k.startswith("vae.")}})
            ema.load({k: v.to(self.dev) for k, v in sd.items()})
            self.log.bar(f"[train] initialised from {a.init_from}", final=True)
        if st:
            model.load_state_dict(st["model"])
            ema.load(st["ema"])
            opt.load_state_dict(st["opt"])
            state = st["state"]
            set_rng_state(st["rng"])
            if a.steps and a.steps != state.get("total"):
                state["total"] = a.steps
            self.log.bar(f"[train] resumed at step {state['step']} ({fmt_duration(state['elapsed'])} trained)", final=True)
        n_train = sum(p.numel() for _, p in trainable(model))
        self.log.bar(f"[train] UniPic {self.cfg.name}: {param_count(model) / 1e6:.2f}M params "
                     f"({n_train / 1e6:.2f}M trained, VAE frozen), device {self.dev}, "
                     f"bf16 {'autocast' if self.cuda and self.bf16 else 'cpu-matmuls' if self.bf16 else 'off'}, "
                     f"batches gen/edit/und {a.batch_gen}/{a.batch_edit}/{a.batch_und}", final=True)
        cases = self.eval_cases()
        dims = self.dims()
        stream = BatchStream(a.seed, state["step"], dims, workers=self.workers())
        compile_on = {"auto": self.cuda and self.static, "on": True, "off": False}[a.compile]
        if compile_on and not self.static:
            raise ValueError("--compile needs --static (compiled steps want fixed shapes)")
        sync = torch.cuda.synchronize if self.cuda else None
        chooser = StepChooser(lambda b, dr: obj.losses(b, None, dr), compile_on, mode=a.compile_mode, sync=sync,
                              warm=min(3, a.compile_probe), probe=a.compile_probe,
                              log=lambda m: self.log.bar(m, final=True))
        logged_choice = False
        budget = a.minutes * 60 if a.minutes else None
        t_start = time.time() - state["elapsed"]
        last_ck = time.time()
        hist = {k: deque(maxlen=max(10, a.log_every))
                for k in ("loss", "gen", "edit", "und", "und_acc", "gen_mse", "edit_mse")}
        rate_mark = None
        last_ev = time.time()
        model.train()
        model.vae.eval()
        step = state["step"]
        win = (step, state["elapsed"])  # the samples/s window: since the last log line
        stop_at = step + a.stop_after if a.stop_after else None
        try:
            while True:
                total = state["total"]
                el = time.time() - t_start
                if total and step >= total or stop_at is not None and step >= stop_at:
                    break
                if budget and el >= budget:
                    break
                lr = lr_at(a, step, total)
                for gparam in opt.param_groups:
                    gparam["lr"] = lr * gparam.get("lr_mult", 1.0)
                b = to_device_batch(stream.get(), self.dev, model.vae, self.cfg.vae_scale, bf16_vae=self.bf16)
                gen = step_generator(a.seed, step, self.dev)
                L = chooser(b, obj.draws(b, gen)) if self.static else obj.losses(b, gen)
                loss = a.w_gen * L.get("gen", 0.0) + a.w_edit * L.get("edit", 0.0) + a.w_und * L.get("und", 0.0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                gn = torch.nn.utils.clip_grad_norm_([p for _, p in trainable(model)], a.clip)
                opt.step()
                ema.update(model, step)
                chooser.step_done()
                if not logged_choice and chooser.rec.get("chosen"):
                    self.log.write({"stage": "compile", "step": step, **chooser.record()})
                    logged_choice = True
                step += 1
                state["step"] = step
                state["elapsed"] = time.time() - t_start
                # tensors: the GPU is synchronised only when logging; cloned, because a CUDA-graph
                # step reuses its output buffers on the next replay
                hist["loss"].append(loss.detach().clone())
                for k in ("gen", "edit", "und", "und_acc", "gen_mse", "edit_mse"):
                    if k in L:
                        hist[k].append(L[k].detach().clone())
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
                                 f"| {rate:.3f} s/step | {fmt_duration(el)} ETA {fmt_duration(eta)}")
                    per_step = a.batch_gen + a.batch_edit + a.batch_und
                    sps_win = per_step * (step - win[0]) / max(el - win[1], 1e-9)
                    win = (step, el)
                    self.log.write({"stage": "train", "step": step, **mean,
                                    "loss_step": float(loss), "lr": lr, "grad_norm": float(gn), "s_per_step": round(rate, 4),
                                    "samples_per_s": round(sps_win, 1), "elapsed_s": round(el, 1)})
                if a.ckpt_every and step % a.ckpt_every == 0 or time.time() - last_ck > a.ckpt_minutes * 60:
                    self.save(model, ema, opt, state)
                    last_ck = time.time()
                due = a.eval_minutes and time.time() - last_ev > a.eval_minutes * 60
                if a.eval_every and step % a.eval_every == 0 or due:
                    self.log.bar("", final=True)
                    t_ev = time.time()
                    self.evaluate(model, ema, step, cases, tok)
                    model.train()
                    model.vae.eval()
                    t_start += time.time() - t_ev  # evaluation time is not training time
                    last_ev = time.time()
        finally:
            stream.close()
        self.log.bar("", final=True)
        self.save(model, ema, opt, state)
        self.log.bar(f"[train] stopped at step {step} after {fmt_duration(state['elapsed'])} of training; "
                     f"checkpoint {self.ckpt_path()}", final=True)
        final = None
        if a.final_eval and not (a.eval_every and step % a.eval_every == 0):
            final = self.evaluate(model, ema, step, cases, tok)
        return model, ema, state, final


# ---------------------------------------------------------------------------------------------


def export_run(tr, weights: dict, export_dir: str, source: str) -> dict:
    """The one export path: sampling defaults from --sampling (measured elsewhere, e.g. with
    toolkit.proxy --eval-only) or a small sweep (--sweep), then toolkit.export of `weights`."""
    a = tr.a
    sampling = {**tr.cfg.sampling, **json.loads(a.sampling)} if a.sampling else None
    if a.sweep:
        sampling, rows = sweep_sampling(weights, tr.cfg, tr.dev, log=lambda m: tr.log.bar(m, final=True))
        tr.log.write({"stage": "sweep", "rows": rows, "chosen": sampling})
    edit = json.loads(a.edit_sampling) if a.edit_sampling else None
    return export_weights(weights, export_dir, tr.cfg, source, sampling, edit)


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads or (torch.get_num_threads() if torch.cuda.is_available() else 1))
    tr = Trainer(a)
    export_dir = a.export or os.path.join(a.out, "unipic-tiny")
    if a.export_only:
        w = unipic_state_dict(torch_load(a.weights or os.path.join(a.out, "ema.pt")))
        src = a.source or f"trained: {os.path.basename(a.weights or 'ema.pt')} ({os.path.abspath(a.out)})"
        man = export_run(tr, w, export_dir, src)
        print(f"exported {export_dir}: sampling_defaults {man['sampling_defaults']}")
        return
    t0 = time.time()
    vae_sd = tr.stage_vae()
    model, ema, state, final = tr.stage_unipic(vae_sd)
    if not a.no_export:
        src = (f"trained by toolkit.train: {state['step']} steps, {state['elapsed'] / 60:.1f} min on "
               f"{torch.cuda.get_device_name(0) if tr.cuda else 'cpu'}")
        man = export_run(tr, ema.state_dict(model), export_dir, src)
        tr.log.write({"stage": "export", "dir": export_dir, "sampling_defaults": man["sampling_defaults"]})
        tr.log.bar(f"[export] {export_dir} (sampling_defaults {man['sampling_defaults']}); regenerate the "
                   f"engine fixtures with: python -m toolkit.fixtures --weights {os.path.join(a.out, 'ema.pt')}",
                   final=True)
    tr.log.bar(f"[done] {fmt_duration(time.time() - t0)} in all", final=True)


if __name__ == "__main__":
    main()
