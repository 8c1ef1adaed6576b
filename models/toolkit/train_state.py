"""unipic-tiny training state (toolkit.train): the training init, EMA, checkpoint files, RNG
state and per-step noise generators, and the run log (log.jsonl + progress line)."""

from __future__ import annotations

import json
import os
import random
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn

from .model import UniPic


# ---------------------------------------------------------------------------------------------
# model init, EMA, checkpoints


def init_train(model: UniPic, seed: int) -> UniPic:
    """Training init (the exporter's init_random is for placeholders): xavier-uniform linears with
    zero bias (MAR/timm), N(0, 0.02) embeddings, positional tables, mask_token, fake_latent;
    the diffusion head's AdaLN modulations and output layer zeroed (MAR's SimpleMLPAdaLN init);
    RMSNorm/LayerNorm at 1/0. The VAE keeps its PyTorch default init (it is trained in stage A)."""
    torch.manual_seed(seed)
    for name, mod in model.named_modules():
        if name.startswith("vae"):
            continue
        if isinstance(mod, nn.Linear):
            nn.init.xavier_uniform_(mod.weight)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.Embedding):
            nn.init.normal_(mod.weight, std=0.02)
        elif isinstance(mod, nn.LayerNorm) and mod.elementwise_affine:
            nn.init.ones_(mod.weight)
            nn.init.zeros_(mod.bias)
    mar = model.mar
    for p in (mar.fake_latent, mar.mask_token, mar.encoder_pos_embed_learned,
              mar.decoder_pos_embed_learned, mar.diffusion_pos_embed_learned):
        nn.init.normal_(p, std=0.02)
    net = mar.diffloss.net
    for m in net.time_embed.mlp:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
    for blk in net.res_blocks:
        nn.init.zeros_(blk.adaLN_modulation[-1].weight)
        nn.init.zeros_(blk.adaLN_modulation[-1].bias)
    nn.init.zeros_(net.final_layer.adaLN_modulation[-1].weight)
    nn.init.zeros_(net.final_layer.adaLN_modulation[-1].bias)
    nn.init.zeros_(net.final_layer.linear.weight)
    nn.init.zeros_(net.final_layer.linear.bias)
    return model


def trainable(model):
    return [(n, p) for n, p in model.named_parameters() if not n.startswith("vae.")]


class EMA:
    def __init__(self, model, decay):
        self.decay = decay
        self.names = [n for n, _ in trainable(model)]
        self.shadow = [p.detach().clone().float() for _, p in trainable(model)]

    @torch.no_grad()
    def update(self, model, step):
        d = min(self.decay, (1 + step) / (10 + step))
        params = [p.detach().float() for _, p in trainable(model)]
        torch._foreach_mul_(self.shadow, d)
        torch._foreach_add_(self.shadow, params, alpha=1 - d)

    def state_dict(self, model):
        """Full UniPic state dict with the EMA weights (VAE from the model)."""
        sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for n, t in zip(self.names, self.shadow):
            sd[n] = t.clone()
        return sd

    def load(self, sd):
        for i, n in enumerate(self.names):
            self.shadow[i].copy_(sd[n])


def unipic_state_dict(obj):
    """A UniPic state dict from a state-dict file or a trainer checkpoint (its EMA)."""
    if isinstance(obj, dict) and "ema" in obj and "model" in obj:
        return obj["ema"]
    return obj


# The outputs of a MAR ViT block's residual branches (encoder and decoder blocks alike).
RESIDUAL_OUT = ("attn.proj.weight", "attn.proj.bias", "mlp.fc2.weight", "mlp.fc2.bias")
# The blocks a warm start may append, by state-dict prefix, with the weights that start at zero so
# that a new block passes its input through unchanged.
GROWABLE = {"mar.decoder_blocks.": RESIDUAL_OUT,
            "mar.encoder_blocks.": RESIDUAL_OUT,
            "llm.model.layers.": ("self_attn.o_proj.weight", "mlp.down_proj.weight"),  # Qwen2 residual outputs
            # the head's AdaLN blocks: a zero modulation is a zero gate (and MAR's own init, init_train)
            "mar.diffloss.net.res_blocks.": ("adaLN_modulation.1.weight", "adaLN_modulation.1.bias")}


def grow_blocks(model, sd):
    """sd completed with the MAR encoder and decoder blocks, LLM layers and diffusion-head blocks
    `model` has and sd lacks (a run that deepens them, `--mar-enc-blocks`, `--mar-dec-blocks`,
    `--llm-layers`, `--head-blocks`): their own initialisation with the GROWABLE weights at zero,
    so the grown model starts out computing exactly what sd does and learns the new depth from there."""
    out = dict(sd)
    for k, v in model.state_dict().items():
        for prefix, residual_out in GROWABLE.items():
            if k not in sd and k.startswith(prefix):
                out[k] = torch.zeros_like(v) if k.endswith(residual_out) else v.detach().clone().float()
    return out


POS_TABLES = ("mar.encoder_pos_embed_learned", "mar.decoder_pos_embed_learned")  # [1, buf + G*G, W]


def grow_buffers(model, sd, seed=0, noise=0.1):
    """sd completed with the MAR buffer tokens `model` has and sd lacks (a run that adds buffers,
    `--buffer-tokens`). A buffer is only its row in the two positional tables (fake_latent is
    shared), so the new rows copy the old buffer rows in turn, plus noise of `noise` x their spread
    so the copies can part. Unlike a grown decoder this does not compute exactly what sd does:
    attention sees the copies as extra keys, and training recovers from that."""
    out = dict(sd)
    buf = model.cfg.buffer_tokens
    g = torch.Generator().manual_seed(seed)
    for k in POS_TABLES:
        t, want = sd[k], model.state_dict()[k]       # [1, old + L, W], [1, buf + L, W]
        old = buf - (want.shape[1] - t.shape[1])
        if old == buf:
            continue
        if not 1 <= old < buf:  # new buffers copy old ones; fewer buffers would drop learned rows
            raise ValueError(f"--buffer-tokens: expected at least the weights' buffer count ({old}), "
                             f"from weights with one buffer or more, got {buf}")
        rows = t[0, :old]                             # [old, W]
        new = rows[torch.arange(buf - old) % old]
        new = new + noise * rows.std() * torch.randn(new.shape, generator=g)
        out[k] = torch.cat([rows, new, t[0, old:]], dim=0)[None]
    return out


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state():
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st):
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def step_generator(seed, step, device):
    g = torch.Generator(device=device)
    g.manual_seed(zlib.crc32(f"noise:{seed}:{step}".encode()))
    return g


# ---------------------------------------------------------------------------------------------
# run log


class Log:
    def __init__(self, out):
        self.path = os.path.join(out, "log.jsonl")
        self.tty = sys.stderr.isatty()

    def write(self, rec):
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def bar(self, text, final=False):
        if self.tty and not final:
            print("\r" + text[:160].ljust(160), end="", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)


def fmt_duration(s):
    s = int(max(0, s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
