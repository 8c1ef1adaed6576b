"""FLOPs of each graph call as a function of its shapes (issue 13, item 4), for manifest.json `flops`.

Counts multiply-adds of the matrix products and convolutions as 2 FLOPs each (norms, softmax and
elementwise work are left out: they are a few percent). Per role, a call with the shapes in
models/README.md ("Roles") costs:

    mar_encoder      B * (token * S + pair * S^2)              S = buf + V
    llm              B * (token * T + pair * T * (P + T) + row)
    mar_fill         B * token * S                             S = buf + L
    mar_decoder      B * (llm_token * (V + buf) + token * S + pair * S^2)      S = buf + L
    diffusion_head   N * row
    vae_encoder/decoder   B * (token * h*w + pair * (h*w)^2)   h, w: the latent grid

`pair` counts the attention products at the graph's shapes (the plain LLM graph multiplies all
T x (P+T) query-key pairs; the causal half is not subtracted).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .diffhead import FREQ_DIM
from .vae import AttnBlock, AutoencoderKL


def _vit_block(W, M):
    """One ViT block per token: qkv, proj, fc1, fc2; per query-key pair: QK^T and AV."""
    return 2 * W * (4 * W + 2 * M), 4 * W


def _vae_coefficients(cfg, which):
    """(token, pair) of the VAE encoder or decoder, counted with hooks at two latent grids."""
    vae = AutoencoderKL(cfg).eval()
    counts = []
    for g in (2, 4):
        total = [0]

        def conv(m, inp, out):
            k = m.kernel_size[0] * m.kernel_size[1]
            total[0] += 2 * m.in_channels * m.out_channels // m.groups * k * out.shape[2] * out.shape[3]

        def attn(m, inp, out):
            _, C, h, w = inp[0].shape
            total[0] += 4 * C * (h * w) ** 2

        hooks = [m.register_forward_hook(conv) for m in vae.modules() if isinstance(m, nn.Conv2d)]
        hooks += [m.register_forward_hook(attn) for m in vae.modules() if isinstance(m, AttnBlock)]
        with torch.no_grad():
            if which == "encoder":
                vae.encode(torch.zeros(1, 3, g * cfg.vae_stride, g * cfg.vae_stride))
            else:
                vae.decode(torch.zeros(1, cfg.latent_channels, g, g))
        for h in hooks:
            h.remove()
        counts.append(total[0])
    # F(g) = token * g^2 + pair * g^4 at g = 2, 4
    pair = (counts[1] - 4 * counts[0]) / (256 - 4 * 16)
    token = (counts[0] - pair * 16) / 4
    return {"token": int(round(token)), "pair": int(round(pair))}


def flops_table(cfg) -> dict:
    C, W, H, D = cfg.latent_channels, cfg.mar_width, cfg.llm_hidden, cfg.head_width
    M = int(W * cfg.mar_mlp_ratio)
    blk_tok, blk_pair = _vit_block(W, M)
    q, kv = cfg.llm_heads * cfg.llm_head_dim, cfg.llm_kv_heads * cfg.llm_head_dim
    llm_tok = cfg.llm_layers * 2 * (H * q + 2 * H * kv + q * H + 3 * H * cfg.llm_mlp)
    head = 2 * (C * D + FREQ_DIM * D + D * D + W * D + cfg.head_blocks * (3 * D * D + 2 * D * D) + 2 * D * D + D * 2 * C)
    return {
        "mar_encoder": {"token": 2 * C * W + cfg.mar_enc_blocks * blk_tok + 2 * (W * H + H * H),
                        "pair": cfg.mar_enc_blocks * blk_pair},
        "llm": {"token": llm_tok, "pair": cfg.llm_layers * 4 * q, "row": 2 * H * cfg.vocab_size},
        "mar_fill": {"token": 2 * W * W},
        "mar_decoder": {"llm_token": 2 * (H * H + H * W) + 2 * W * W, "token": cfg.mar_dec_blocks * blk_tok,
                        "pair": cfg.mar_dec_blocks * blk_pair},
        "diffusion_head": {"row": head},
        "vae_encoder": _vae_coefficients(cfg, "encoder"),
        "vae_decoder": _vae_coefficients(cfg, "decoder"),
    }
