"""Static-shape training pass for accelerators (toolkit.train --static; issue #17 item 3).

The eager pass (train_losses.Objective) follows the sampler literally: only the visible tokens go
through the MAR encoder and the LLM, prompts are padded to the batch's longest, and the number of
masked tokens changes every step. On a GPU that means new shapes every step (no CUDA graphs, a
recompile per shape) and thousands of small launches. This pass computes the same thing with
shapes that never change:

- prompts are padded to a fixed length per task (`prompt_lengths`);
- every image token goes through the MAR encoder and the LLM, and the masked ones are hidden from
  attention as keys (an additive -1e9 bias; the LLM's own padding mask), so each visible token
  sees exactly the keys, order and RoPE positions it sees in the eager pass: positions are
  `valid + (rank among the visible)`, buffers follow the last visible one;
- the decoder takes visible slots from the encoder and the fill elsewhere, as the scatter does;
- the diffusion loss runs on all L positions, weighted by the prediction mask, and the
  understanding loss on all positions, weighted by the answer mask.

Masked tokens' own encoder / LLM outputs are computed and thrown away: about 15% more FLOPs, no
extra launches. `tests/test_train.py::test_static_pass_equals_the_eager_pass` pins z and the
answer logits to the eager pass.

Shapes: B rows, L image tokens, buf buffers, P padded prompt, W MAR width, H LLM hidden, C latent
channels.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from .qwen2 import NEG
from .train_losses import Objective


def prompt_lengths(tok, sample_texts, margin: int = 4) -> int:
    """A fixed pad length covering every prompt the samplers make (longest seen + margin)."""
    return max(len(tok.encode(t)) for t in sample_texts) + margin


def to_static(b: dict, L: int, pads: dict, pad_id: int) -> dict:
    """Eager numpy batch -> fixed shapes: *_pred [B,n] -> *_pmask [B,L] float (1 = predict),
    *_ids / *_mask padded to pads[task]; und_rows/cols -> und_w [B,P] (1 = an answer position)."""
    out = dict(b)
    for t in ("gen", "edit"):
        if f"{t}_ids" not in b:
            continue
        B = b[f"{t}_ids"].shape[0]
        pm = np.zeros((B, L), np.float32)
        np.put_along_axis(pm, b[f"{t}_pred"], 1.0, axis=1)
        out[f"{t}_pmask"] = pm
        del out[f"{t}_pred"], out[f"{t}_vis"]
        out[f"{t}_ids"], out[f"{t}_mask"] = _pad_to(b[f"{t}_ids"], b[f"{t}_mask"], pads[t], pad_id)
    if "und_ids" in b:
        ids, mask = _pad_to(b["und_ids"], b["und_mask"], pads["und"], pad_id)
        w = np.zeros(ids.shape, np.float32)
        w[b["und_rows"], b["und_cols"]] = 1.0
        out["und_ids"], out["und_mask"], out["und_w"] = ids, mask, w
        del out["und_rows"], out["und_cols"]
    return out


def _pad_to(ids, mask, P, pad_id):
    B, n = ids.shape
    if n > P:
        raise ValueError(f"prompt of {n} tokens exceeds the static pad length {P}")
    full = np.full((B, P), pad_id, np.int64)
    m = np.zeros((B, P), np.int64)
    full[:, :n], m[:, :n] = ids, mask
    return full, m


class StaticObjective(Objective):
    """Objective.losses with static shapes (same losses, same z; see the module docstring)."""

    def encode_all(self, tokens, vis, enc_pos):
        """tokens [B,L,C], vis [B,L] (1 = visible) -> x_enc [B,buf+L,W]: MAR.encode with the
        masked tokens present but never attended to (their rows are garbage, and unused)."""
        mar, buf = self.m.mar, self.buf
        B = tokens.shape[0]
        x = mar.z_proj(tokens) + enc_pos[buf:]                                  # [B,L,W]
        b = (mar.fake_latent + enc_pos[:buf])[None].expand(B, buf, -1)
        x = mar.z_proj_ln(torch.cat([b, x], dim=1))                             # [B,buf+L,W]
        keys = torch.cat([torch.ones(B, buf, device=vis.device, dtype=vis.dtype), vis], dim=1)
        bias = ((1 - keys) * NEG)[:, None, None, :].to(x.dtype)                 # [B,1,1,buf+L]
        for blk in mar.encoder_blocks:
            x = blk(x, bias)
        return mar.encoder_norm(x)

    def image_loss(self, tokens, pmask, ids, pmask_prompt, fill, prompt_rows, t, noise, pos, weight=None):
        """tokens [B,L,C]; pmask [B,L] (1 = predict, 0 = visible); ids / pmask_prompt [B,P];
        fill [B,buf+L,W]; t [B*L*mul], noise [B*L*mul,C]; weight [B,L] optional -> (loss, mse)."""
        enc_pos, dec_pos, diff_pos = pos
        B, L, C = tokens.shape
        buf, m = self.buf, self.m
        vis = 1 - pmask
        with self.ctx():
            x_enc = self.encode_all(tokens, vis, enc_pos)                        # [B,buf+L,W]
            z = m.proj_in(x_enc)
            llm_in = torch.cat([z[:, buf:], z[:, :buf]], dim=1)                 # buffers last
            pe = self.embed(ids, prompt_rows)
            P = ids.shape[1]
            x = torch.cat([pe, llm_in.to(pe.dtype)], dim=1)                     # [B,P+L+buf,H]
            ones = torch.ones(B, buf, dtype=pmask_prompt.dtype, device=ids.device)
            attn = torch.cat([pmask_prompt, vis.to(pmask_prompt.dtype), ones], dim=1)
            valid = pmask_prompt.sum(1, keepdim=True)                           # [B,1]
            rank = torch.cumsum(vis, 1).to(torch.int64) - 1                     # [B,L] rank among visible
            nvis = vis.sum(1, keepdim=True).to(torch.int64)
            img_pos = valid + rank.clamp(min=0)
            buf_pos = valid + nvis + torch.arange(buf, device=ids.device)[None]
            posn = torch.cat([torch.arange(P, device=ids.device)[None].expand(B, P), img_pos, buf_pos], dim=1)
            zc = torch.zeros(B, self.cfg.llm_kv_heads, 0, self.cfg.llm_head_dim, device=x.device, dtype=x.dtype)
            hidden, _ = m.llm.model(x, attn, posn, [(zc, zc)] * self.cfg.llm_layers)
            h = hidden[:, P:]                                                    # [B,L+buf,H]
            h = m.proj_out(torch.cat([h[:, L:], h[:, :L]], dim=1))               # buffers first, [B,buf+L,W]
            xd = m.mar.decoder_embed(x_enc + h)
            img = torch.where(vis[..., None] > 0, xd[:, buf:], fill[:, buf:].to(xd.dtype))
            xdec = torch.cat([xd[:, :buf], img], dim=1) + dec_pos
            for blk in m.mar.decoder_blocks:
                xdec = blk(xdec)
            zall = m.mar.decoder_norm(xdec)[:, buf:] + diff_pos                  # [B,L,W]
        w = (pmask if weight is None else pmask * weight).reshape(B * L)
        return self.diff(m.mar.diffloss.net, zall.reshape(B * L, -1).float(), tokens.reshape(B * L, C),
                         self.mul, None, self.ctx, weight=w, t=t, noise=noise)

    def draws(self, b, gen):
        """t and noise for every diffusion row of the step, drawn outside the (compiled) pass."""
        out = {}
        for k in ("gen", "edit"):
            if f"{k}_pmask" in b:
                N = b[f"{k}_pmask"].numel() * self.mul
                out[k] = (torch.randint(0, self.diff.T, (N,), generator=gen, device=self.dev),
                          torch.randn((N, self.cfg.latent_channels), generator=gen, device=self.dev))
        return out

    def losses(self, b, gen, draws=None):
        draws = draws if draws is not None else self.draws(b, gen)
        pos = self.pos()
        out = {}
        W = self.cfg.mar_width
        if "gen_ids" in b:
            B = b["gen_ids"].shape[0]
            with self.ctx():
                fill = self.m.mar_fill(torch.zeros(B, self.buf + self.L, W, device=self.dev),
                                       torch.zeros(B, device=self.dev))
            out["gen"], out["gen_mse"] = self.image_loss(b["gen_tok"], b["gen_pmask"], b["gen_ids"], b["gen_mask"],
                                                         fill, None, *draws["gen"], pos)
        if "edit_ids" in b:
            B = b["edit_src_tok"].shape[0]
            with self.ctx():
                x_con, z_enc = self.encode_source(b["edit_src_tok"], pos)
                fill = self.m.mar_fill(x_con, torch.ones(B, device=self.dev))
            w = self.edit_w(b)
            out["edit"], out["edit_mse"] = self.image_loss(b["edit_tok"], b["edit_pmask"], b["edit_ids"],
                                                           b["edit_mask"], fill, z_enc, *draws["edit"], pos, w)
        if "und_ids" in b:
            with self.ctx():
                _, z_enc = self.encode_source(b["und_tok"], pos)
                x = self.embed(b["und_ids"], z_enc)
                hidden = self.llm(x, b["und_mask"])
                logits = self.m.llm.logits(hidden[:, :-1]).float()              # [B,P-1,V]
            target = b["und_ids"][:, 1:]
            w = b["und_w"][:, :-1]
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
            out["und"] = (ce * w.reshape(-1)).sum() / w.sum()
            hit = (logits.argmax(-1) == target).float()
            out["und_acc"] = ((hit * w).sum() / w.sum()).detach()
        return out


class StepChooser:
    """Eager or torch.compile'd losses, whichever measures faster on this run's first steps.

    Steps [0, warm) run eager (allocator and cuDNN warm-up), [warm, warm+probe) eager and timed;
    then the compiled function is built (mode "reduce-overhead": CUDA graphs over the static
    shapes) and timed over the next `probe` steps after its first (compiling) call. The compiled
    one is kept when it is at least 5% faster per step, else the run goes back to eager. Any error
    while compiling or in the compiled steps also falls back to eager. `record()` is what the run
    log keeps: both timings, the compile time and the choice."""

    def __init__(self, fn, enabled: bool, mode: str = "reduce-overhead", warm: int = 3, probe: int = 10,
                 sync=None, log=print):
        self.eager, self.fn = fn, fn
        self.enabled = enabled and hasattr(torch, "compile")
        self.mode, self.warm, self.probe = mode, warm, probe
        self.sync = sync or (lambda: None)
        self.log = log
        self.n = 0
        self.t_mark = None
        self.rec = {"compile": "off" if not enabled else ("unavailable" if not hasattr(torch, "compile") else "probing")}

    def __call__(self, *args):
        try:
            return self.fn(*args)
        except Exception as e:  # noqa: BLE001 (any compiler failure: keep training, eagerly)
            if self.fn is self.eager:
                raise
            self._fallback(f"compiled step failed: {type(e).__name__}: {e}"[:300])
            return self.eager(*args)

    def _fallback(self, why):
        self.fn = self.eager
        self.enabled = False
        self.rec.update({"compile": "fallback", "chosen": "eager", "why": why})
        self.log(f"[train] torch.compile -> eager: {why}")

    def _now(self):
        self.sync()
        return time.time()

    def step_done(self):
        """Call after each optimizer step."""
        if not self.enabled:
            return
        self.n += 1
        w, p = self.warm, self.probe
        if self.n == w:
            self.t_mark = self._now()
        elif self.n == w + p:
            self.rec["eager_s_per_step"] = round((self._now() - self.t_mark) / p, 5)
            try:
                self.fn = torch.compile(self.eager, mode=self.mode, dynamic=False)
            except Exception as e:  # noqa: BLE001
                self._fallback(f"torch.compile failed: {type(e).__name__}: {e}"[:300])
                return
            self.t_mark = self._now()
        elif self.n == w + p + 1:
            self.rec["compile_s"] = round(self._now() - self.t_mark, 2)  # the first compiled step
            self.t_mark = self._now()
        elif self.n == w + 2 * p + 1:
            c = (self._now() - self.t_mark) / p
            self.rec["compiled_s_per_step"] = round(c, 5)
            keep = c < 0.95 * self.rec["eager_s_per_step"]
            self.rec.update({"compile": "measured", "chosen": "compiled" if keep else "eager"})
            if not keep:
                self.fn = self.eager
            self.enabled = False
            self.log(f"[train] eager {self.rec['eager_s_per_step']:.4f} s/step, compiled {c:.4f} s/step "
                     f"(compile {self.rec['compile_s']} s): keeping {self.rec['chosen']}")

    def record(self) -> dict:
        return dict(self.rec)


def static_pads(make_batch, dims: dict, probes: int = 4, margin: int = 8) -> dict:
    """Pad lengths per task: the longest prompt in `probes` large sample batches of the run's own
    data, plus a margin; to_static raises if a later batch ever needs more."""
    d = {**dims, "batch_gen": 256, "batch_edit": 256, "batch_und": 256, "static": False}
    P = {"gen": 0, "edit": 0, "und": 0}
    for k in range(probes):
        b = make_batch((f"pads{k}", 0, d))
        for t in P:
            P[t] = max(P[t], b[f"{t}_ids"].shape[1])
    return {t: v + margin for t, v in P.items()}
