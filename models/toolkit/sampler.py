"""Reference sampler (docs/model.md sections 3, 4, 5), written against the role functions of model.UniPic so
that it does exactly what the TypeScript engine does with the ONNX graphs.

Every random draw goes through a `Draws` object and is recorded, so a run can be replayed without
matching the RNG (fixtures). Draw order per run: orders [B, L] once; then per MAR iteration the
initial noise [B*n, C] (cond rows only: the uncond half of x is never read, docs/model.md §3.5 notes) and,
for k = S-1 .. 1, the per-step noise [B*n, C] (no draw at k = 0).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .diffusion import Schedule, ddpm_step
from .tokenizer import (EDIT_NEGATIVE, EDIT_POSITIVE, IMAGE, T2I_NEGATIVE, T2I_POSITIVE, UNDERSTAND,
                        chat, special_ids)


class Draws:
    """Seeded source of all randomness; records every draw."""

    def __init__(self, seed: int):
        self.rs = np.random.RandomState(seed)            # orders (numpy, as MAR's sample_orders)
        self.g = torch.Generator().manual_seed(seed)     # Gaussian noise
        self.record = {"orders": [], "normals": []}

    def orders(self, B: int, L: int) -> np.ndarray:
        o = np.stack([self.rs.permutation(L) for _ in range(B)]).astype(np.int64)  # [B, L]
        self.record["orders"].append(o)
        return o

    def normal(self, shape) -> torch.Tensor:
        x = torch.randn(shape, generator=self.g, dtype=torch.float32)
        self.record["normals"].append(x.clone())
        return x


class ReplayDraws:
    """Replays a record (e.g. from a fixture) in the same order."""

    def __init__(self, record):
        self.o = list(record["orders"])
        self.n = list(record["normals"])

    def orders(self, B, L):
        return np.asarray(self.o.pop(0), dtype=np.int64).reshape(B, L)

    def normal(self, shape):
        return torch.from_numpy(np.array(self.n.pop(0), dtype=np.float32)).reshape(shape)


def mask_len_after(step: int, num_iter: int, L: int, still_masked: int) -> int:
    """Cosine schedule (docs/model.md §3.3 step 2): floor(L cos(pi/2 (step+1)/N)) clamped to [1, masked-1]."""
    n = math.floor(L * np.cos(math.pi / 2.0 * (step + 1) / num_iter))
    return int(max(1, min(still_masked - 1, n)))


def cfg_scale(cfg: float, schedule: str, L: int, mask_len: int) -> float:
    """docs/model.md 3.4: constant, or linear 1 + (cfg-1)(L - mask_len)/L with the clamped mask_len."""
    if schedule == "constant":
        return cfg
    if schedule == "linear":
        return 1 + (cfg - 1) * (L - mask_len) / L
    raise ValueError(f"cfg schedule {schedule!r} is not supported (constant, linear)")


def to_latent(tokens, h, w):
    """tokens [B, L, C] (raster order) -> latent [B, C, h, w]."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


def to_tokens(latent):
    B, C = latent.shape[:2]
    return latent.reshape(B, C, -1).transpose(1, 2)


def to_uint8(pixels):
    """[B,3,H,W] in ~[-1,1] -> uint8 [B,H,W,3] = trunc(clamp(127.5 x + 128)) (docs/model.md §2.2 step 5)."""
    return torch.clamp(127.5 * pixels + 128.0, 0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def from_uint8(img):
    """uint8 [B,H,W,3] -> [B,3,H,W] in [-1,1]: /255 then 2x-1 (docs/model.md §4.1)."""
    x = torch.from_numpy(np.array(img)).permute(0, 3, 1, 2).float() / 255.0
    return 2 * x - 1


class Runner:
    def __init__(self, model, tok, resolution: int | None = None):
        self.m, self.tok, self.cfg = model, tok, model.cfg
        res = resolution or self.cfg.default_resolution
        self.h = self.w = self.cfg.grid(res)
        self.L = self.h * self.w
        self.ids = special_ids(tok)
        self.enc_pos, self.dec_pos, self.diff_pos = model.mar.pos_tables(self.h, self.w)

    # --- prompt prefix -------------------------------------------------------------------
    def prefill(self, texts, image_rows=None):
        """texts: R chat strings; image_rows: None or [R, L+buf, H] rows for the <image> tokens.
        Right-pads with pad id (docs/model.md §3.1), runs the prefix once -> past, mask [R,P], valid [R]."""
        seqs = [self.tok.encode(t) for t in texts]
        P = max(len(s) for s in seqs)
        R, H = len(seqs), self.cfg.llm_hidden
        ids = torch.full((R, P), self.ids["pad"], dtype=torch.int64)
        mask = torch.zeros(R, P, dtype=torch.int64)
        for r, s in enumerate(seqs):
            ids[r, :len(s)] = torch.tensor(s)
            mask[r, :len(s)] = 1
        emb = torch.zeros(R, P, H)
        emask = (ids == self.ids["image"]).float()
        if image_rows is not None:
            for r in range(R):
                pos = torch.nonzero(emask[r]).flatten()
                if len(pos) != image_rows.shape[1]:
                    raise ValueError(f"prompt has {len(pos)} image tokens, expected {image_rows.shape[1]}")
                emb[r, pos] = image_rows[r]
        posn = torch.arange(P)[None].expand(R, P)  # default positions for the prefix pass (3.2)
        _, logits, past = self.m.llm_forward(ids, emb, emask, mask, posn, self.m.llm.empty_past(R))
        return {"ids": ids, "past": past, "mask": mask, "valid": mask.sum(1), "logits": logits}

    def encode_image(self, pixels):
        """pixels [B,3,H,W] -> tokens [B,L,C] (mean * vae_scale), x_con [B,buf+L,W], z_enc [B,L+buf,H]."""
        tokens = to_tokens(self.m.vae_encode(pixels)) * self.cfg.vae_scale
        idx = torch.arange(self.L)[None].expand(tokens.shape[0], self.L)
        x_con, z_enc = self.m.mar_encoder(tokens, idx, self.enc_pos)
        return tokens, x_con, z_enc

    # --- one MAR iteration: encoder -> LLM (cache reused, never extended) -> decoder ---------
    def mar_iteration(self, tokens, vis_idx, pred_idx, pre, fill):
        """tokens [R,L,C]; vis_idx [R,V]; pred_idx [R,n] -> z [R,n,W] (docs/model.md §2.2 steps 1-3)."""
        R, V = vis_idx.shape
        lat = torch.gather(tokens, 1, vis_idx[..., None].expand(R, V, tokens.shape[2]))
        x_enc, llm_in = self.m.mar_encoder(lat, vis_idx, self.enc_pos)
        T = llm_in.shape[1]
        attn = torch.cat([pre["mask"], torch.ones(R, T, dtype=torch.int64)], dim=1)
        posn = pre["valid"][:, None] + torch.arange(T)[None]      # continue after the unpadded prompt
        ids = torch.full((R, T), self.ids["pad"], dtype=torch.int64)
        hidden, _, _ = self.m.llm_forward(ids, llm_in, torch.ones(R, T), attn, posn, pre["past"])
        # the present KV is dropped: the cache is truncated back to the prompt (docs/model.md §3.3 step 1)
        return self.m.mar_decoder(x_enc, hidden, vis_idx, fill, self.dec_pos, self.diff_pos, pred_idx)

    def diffuse(self, z_c, z_u, sch, scale, temperature, draws):
        """z_c / z_u [N,W] -> sampled token latents [N,C] (docs/model.md §3.5)."""
        N, C = z_c.shape[0], self.cfg.latent_channels
        x = draws.normal((N, C))                                  # initial noise, not tempered
        for k in reversed(range(len(sch.timesteps))):
            t = torch.full((N,), sch.timesteps[k], dtype=torch.int64)  # original timestep
            if z_u is None:
                out_c, out_u = self.m.diffusion_head(x, t, z_c), None
            else:
                out = self.m.diffusion_head(torch.cat([x, x]), torch.cat([t, t]), torch.cat([z_c, z_u]))
                out_c, out_u = out[:N], out[N:]
            noise = draws.normal((N, C)) if k > 0 else None
            x = ddpm_step(sch, k, x, out_c, out_u, scale, temperature, noise)
        return x

    @torch.no_grad()
    def sample(self, pre, B, fill, *, steps, cfg, cfg_schedule, temperature, diffusion_steps, draws,
               trace=None):
        """docs/model.md 3.3. pre: prefix of R = 2B rows (cond first) or B rows when cfg == 1.
        Returns tokens [B,L,C] of the cond rows."""
        L, C = self.L, self.cfg.latent_channels
        use_cfg = cfg != 1.0
        R = 2 * B if use_cfg else B
        sch = Schedule(diffusion_steps)
        orders = draws.orders(B, L)                               # one permutation per image
        tokens = torch.zeros(R, L, C)
        masked = L
        for step in range(steps):
            nxt = mask_len_after(step, steps, L, masked)
            last = step >= steps - 1
            lo = 0 if last else nxt
            vis = torch.as_tensor(np.sort(orders[:, masked:], axis=1))      # revealed so far [B,V]
            pred = torch.as_tensor(np.sort(orders[:, lo:masked], axis=1))   # to predict now [B,n]
            rows = (lambda t: torch.cat([t, t])) if use_cfg else (lambda t: t)  # uncond shares orders
            z = self.mar_iteration(tokens, rows(vis), rows(pred), pre, fill)  # [R,n,W]
            n = pred.shape[1]
            scale = cfg_scale(cfg, cfg_schedule, L, nxt)
            zc = z[:B].reshape(B * n, -1)
            zu = z[B:].reshape(B * n, -1) if use_cfg else None
            x = self.diffuse(zc, zu, sch, scale, temperature, draws).reshape(B, n, C)
            tokens[:B].scatter_(1, pred[..., None].expand(B, n, C), x)
            if use_cfg:
                tokens[B:] = tokens[:B]                           # copy cond over uncond (3.3 step 4)
            if trace is not None:
                trace.append({"vis_idx": vis, "pred_idx": pred, "cfg_scale": scale, "z": z[:, :].clone()})
            masked = lo
        return tokens[:B]

    # --- tasks ----------------------------------------------------------------------------
    def _params(self, p, task="generate"):
        # the caller's params over the defaults; edits have their own overrides (cfg.edit_sampling)
        d = dict(self.cfg.sampling)
        if task == "edit":
            d.update(self.cfg.edit_sampling)
        d.update({k: v for k, v in (p or {}).items() if v is not None})
        return dict(steps=d["steps"], cfg=d["cfg"], cfg_schedule=d["cfgSchedule"],
                    temperature=d["temperature"], diffusion_steps=d["diffusionSteps"])

    @torch.no_grad()
    def generate(self, prompts, draws, params=None, trace=None):
        """Text-to-image (docs/model.md §3). -> tokens [B,L,C], pixels [B,3,H,W]."""
        p = self._params(params)
        B = len(prompts)
        texts = [chat(T2I_POSITIVE.format(prompt=q)) for q in prompts]
        if p["cfg"] != 1.0:
            texts += [chat(T2I_NEGATIVE)] * B
        pre = self.prefill(texts)
        R = len(texts)
        x0 = torch.zeros(R, self.cfg.buffer_tokens + self.L, self.cfg.mar_width)
        fill = self.m.mar_fill(x0, torch.zeros(R))                 # mask_token everywhere
        tokens = self.sample(pre, B, fill, draws=draws, trace=trace, **p)
        return tokens, self.m.vae_decode(to_latent(tokens, self.h, self.w) / self.cfg.vae_scale)

    @torch.no_grad()
    def edit(self, pixels, instructions, draws, params=None, trace=None):
        """Editing (docs/model.md §4): x_con in the decoder, "<image>\\nRepeat this image." as negative."""
        p = self._params(params, "edit")
        B = len(instructions)
        _, x_con, z_enc = self.encode_image(pixels)
        img = IMAGE * (self.L + self.cfg.buffer_tokens)
        texts = [chat(EDIT_POSITIVE.format(image=img, instruction=q)) for q in instructions]
        rows_z, rows_x = [z_enc], [x_con]
        if p["cfg"] != 1.0:
            texts += [chat(EDIT_NEGATIVE.format(image=img))] * B
            rows_z.append(z_enc)
            rows_x.append(x_con)
        pre = self.prefill(texts, torch.cat(rows_z))
        xc = torch.cat(rows_x)
        fill = self.m.mar_fill(xc, torch.ones(xc.shape[0]))
        tokens = self.sample(pre, B, fill, draws=draws, trace=trace, **p)
        return tokens, self.m.vae_decode(to_latent(tokens, self.h, self.w) / self.cfg.vae_scale)

    @torch.no_grad()
    def understand(self, pixels, question, max_new_tokens=None):
        """Image -> text (docs/model.md §5): greedy, stops at eos (<|im_end|>). Returns generated ids (eos
        included when reached) and the decoded text without specials."""
        max_new = max_new_tokens or self.cfg.max_new_tokens
        _, _, z_enc = self.encode_image(pixels)
        img = IMAGE * (self.L + self.cfg.buffer_tokens)
        pre = self.prefill([chat(UNDERSTAND.format(image=img, question=question))], z_enc)
        past, P = pre["past"], pre["ids"].shape[1]
        logits, out = pre["logits"], []
        H = self.cfg.llm_hidden
        for i in range(max_new):
            nxt = int(torch.argmax(logits[0]))
            out.append(nxt)
            if nxt == self.ids["eos"]:
                break
            ids = torch.tensor([[nxt]])
            attn = torch.ones(1, P + i + 1, dtype=torch.int64)
            _, logits, past = self.m.llm_forward(ids, torch.zeros(1, 1, H), torch.zeros(1, 1), attn,
                                                 torch.tensor([[P + i]]), past)
        return out, self.tok.decode(out, skip_special=True)
