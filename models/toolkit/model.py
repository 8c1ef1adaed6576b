"""The UniPic wrapper: LLM + MAR + projectors + VAE, split into the same functions as the ONNX roles
(the unipic-onnx/1 contract, models/README.md), so the reference sampler and the exported graphs share one definition.

State-dict keys = the released checkpoint's (docs/model.md 9.3): `llm.model.*`, `mar.*`, `proj_in.{0,2}`,
`proj_out.{0,2}`; the VAE keeps kl16.ckpt's unprefixed keys under `vae.`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .mar import MAR
from .qwen2 import Qwen2ForCausalLM
from .vae import AutoencoderKL


def mlp2(i, h, o):
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, o))


class UniPic(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        H, W = cfg.llm_hidden, cfg.mar_width
        self.llm = Qwen2ForCausalLM(cfg)
        self.mar = MAR(cfg)
        self.proj_in = mlp2(W, H, H)   # MAR -> LLM (docs/model.md §2.1)
        self.proj_out = mlp2(H, H, W)  # LLM -> MAR, added as a residual
        self.vae = AutoencoderKL(cfg)

    # --- role: mar_encoder (+ proj_in and the buffer rotation) -------------------------------
    def mar_encoder(self, latents, vis_idx, enc_pos):
        """latents [B,V,C], vis_idx [B,V], enc_pos [buf+L,W]
        -> x_enc [B,buf+V,W] (buffers first, for MAR), llm_in [B,V+buf,H] (buffers last, for the LLM)."""
        buf = self.cfg.buffer_tokens
        x_enc = self.mar.encode(latents, vis_idx, enc_pos)
        z = self.proj_in(x_enc)
        return x_enc, torch.cat([z[:, buf:], z[:, :buf]], dim=1)  # rotate buffers to the end (2.2)

    # --- role: llm (embedding lookup, decoder stack, tied LM head on the last position) ---------
    def llm_forward(self, input_ids, inputs_embeds, embeds_mask, attention_mask, position_ids, past):
        """input_ids [B,T]; inputs_embeds [B,T,H] used where embeds_mask [B,T] is 1 (image rows),
        token embeddings elsewhere; attention_mask [B,P+T]; position_ids [B,T]; past [(k,v)]*layers.
        -> hidden [B,T,H], logits [B,vocab] of the last position, present [(k,v)]."""
        tok = self.llm.model.embed_tokens(input_ids)
        m = embeds_mask.to(tok.dtype)[..., None]
        x = m * inputs_embeds + (1 - m) * tok
        hidden, present = self.llm.model(x, attention_mask, position_ids, past)
        return hidden, self.llm.logits(hidden[:, -1]), present

    # --- role: mar_fill ---------------------------------------------------------------------
    def mar_fill(self, x_con, con):
        return self.mar.fill(x_con, con)

    # --- role: mar_decoder (+ proj_out residual) --------------------------------------------
    def mar_decoder(self, x_enc, llm_out, vis_idx, fill, dec_pos, diff_pos, pred_idx=None):
        """llm_out [B,V+buf,H] = LLM hidden of the new tokens (buffers last); rotated back and added
        residually before decoder_embed (gotcha 6) -> z [B,n,W]."""
        V = vis_idx.shape[1]
        h = self.proj_out(torch.cat([llm_out[:, V:], llm_out[:, :V]], dim=1))  # buffers first
        return self.mar.decode(x_enc + h, vis_idx, fill, dec_pos, diff_pos, pred_idx)

    # --- role: diffusion_head -----------------------------------------------------------------
    def diffusion_head(self, x, t, c):
        return self.mar.diffloss.net(x, t, c)

    # --- roles: vae_encoder / vae_decoder --------------------------------------------------
    def vae_encode(self, pixels):
        return self.vae.encode(pixels)

    def vae_decode(self, latent):
        return self.vae.decode(latent)


def init_random(model: UniPic, seed: int, std: float = 0.02) -> UniPic:
    """Seeded random weights that keep activations well scaled (the tiny placeholder export).
    Norm weights stay 1; everything else N(0, std) (biases 0.0 + small noise)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name or ".norm" in name or "_ln" in name \
                    or "norm1" in name or "norm2" in name or "norm_out" in name:
                if name.endswith("weight"):
                    p.fill_(1.0)
                    continue
            if p.dim() == 4:  # conv: fan-in scaled so the VAE does not explode
                fan = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / fan) ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model.eval()


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
