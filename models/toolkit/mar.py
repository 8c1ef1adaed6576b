"""MAR encoder / decoder (docs/model.md 2.2 steps 1 and 3, 2.3, 4.4).

Keys follow `mar.*` of the checkpoint (timm 0.9 `Block` layout: norm1, attn.qkv, attn.proj, norm2,
mlp.fc1, mlp.fc2). The graphs take *visible* tokens and their raster indices instead of a mask, so
that the ONNX export has a dynamic V and never runs masked tokens through the encoder.
Positional tables are passed in (`pos_tables`), already resized to the grid (docs/model.md §2.3).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .diffhead import DiffLoss


class ViTAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads, self.hd = heads, width // heads
        self.qkv = nn.Linear(width, 3 * width, bias=True)
        self.proj = nn.Linear(width, width)

    def forward(self, x, bias=None):  # x [B, N, W]; bias None or [B, 1, 1, N] additive key mask
        B, N, W = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                               # [B, h, N, hd]
        logits = torch.matmul(q * self.hd ** -0.5, k.transpose(-2, -1))
        att = torch.softmax(logits if bias is None else logits + bias, dim=-1)
        return self.proj(torch.matmul(att, v).transpose(1, 2).reshape(B, N, W))


class Mlp(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU, docs/model.md §2.1


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = ViTAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, int(width * mlp_ratio))

    def forward(self, x, bias=None):
        x = x + self.attn(self.norm1(x), bias)
        return x + self.mlp(self.norm2(x))


def resize_table(table, buf: int, native: int, h: int, w: int):
    """[buf + native^2, W] -> [buf + h*w, W]: keep the buffer rows, bilinearly resize the image part
    (align_corners=False, no antialias; docs/model.md §2.3). buf may be 0 (diffusion_pos_embed)."""
    if (h, w) == (native, native):
        return table
    W = table.shape[-1]
    img = table[buf:].reshape(1, native, native, W).permute(0, 3, 1, 2)
    img = F.interpolate(img, size=(h, w), mode="bilinear", align_corners=False)
    img = img.permute(0, 2, 3, 1).reshape(h * w, W)
    return torch.cat([table[:buf], img], dim=0)


class MAR(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        W, C, buf, G = cfg.mar_width, cfg.latent_channels, cfg.buffer_tokens, cfg.native_grid
        self.z_proj = nn.Linear(C, W)
        self.z_proj_ln = nn.LayerNorm(W, eps=cfg.ln_eps)
        self.fake_latent = nn.Parameter(torch.zeros(1, W))
        self.encoder_pos_embed_learned = nn.Parameter(torch.zeros(1, buf + G * G, W))
        self.encoder_blocks = nn.ModuleList(
            [Block(W, cfg.mar_heads, cfg.mar_mlp_ratio, cfg.ln_eps) for _ in range(cfg.mar_enc_blocks)])
        self.encoder_norm = nn.LayerNorm(W, eps=cfg.ln_eps)
        self.decoder_embed = nn.Linear(W, W)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, W))
        self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, buf + G * G, W))
        self.decoder_blocks = nn.ModuleList(
            [Block(W, cfg.mar_heads, cfg.mar_mlp_ratio, cfg.ln_eps) for _ in range(cfg.mar_dec_blocks)])
        self.decoder_norm = nn.LayerNorm(W, eps=cfg.ln_eps)
        self.diffusion_pos_embed_learned = nn.Parameter(torch.zeros(1, G * G, W))
        self.diffloss = DiffLoss(cfg)

    @torch.no_grad()
    def pos_tables(self, h: int, w: int):
        """-> enc_pos [buf+L, W], dec_pos [buf+L, W], diff_pos [L, W] for an h x w token grid."""
        buf, G = self.cfg.buffer_tokens, self.cfg.native_grid
        return (resize_table(self.encoder_pos_embed_learned[0], buf, G, h, w),
                resize_table(self.decoder_pos_embed_learned[0], buf, G, h, w),
                resize_table(self.diffusion_pos_embed_learned[0], 0, G, h, w))

    def encode(self, latents, vis_idx, enc_pos):
        """latents [B,V,C] (scaled VAE latents of the visible tokens), vis_idx [B,V] int64 raster
        indices in increasing order, enc_pos [buf+L, W] -> x_enc [B, buf+V, W].
        Buffers = fake_latent + pos; add pos *then* LN (docs/model.md §2.2 step 1, gotcha 4)."""
        buf = self.cfg.buffer_tokens
        B = latents.shape[0]
        x = self.z_proj(latents) + enc_pos[buf:][vis_idx]                   # [B,V,W]
        b = (self.fake_latent + enc_pos[:buf])[None].expand(B, buf, -1)     # [B,buf,W]
        x = self.z_proj_ln(torch.cat([b, x], dim=1))
        for blk in self.encoder_blocks:
            x = blk(x)
        return self.encoder_norm(x)

    def fill(self, x_con, con):
        """Value of every decoder slot before the visible ones are scattered in (docs/model.md §2.2 step 3,
        4.4): mask_token for text-to-image (con=0), decoder_embed(x_con) for editing (con=1).
        x_con [B, buf+L, W] (MAR encoder output of the source image, all tokens visible), con [B]."""
        c = con.to(x_con.dtype)[:, None, None]
        return c * self.decoder_embed(x_con) + (1 - c) * self.mask_token

    def decode(self, x_enc, vis_idx, fill, dec_pos, diff_pos, pred_idx=None):
        """x_enc [B,buf+V,W] (after the proj_out residual), vis_idx [B,V], fill [B,buf+L,W],
        dec_pos [buf+L,W], diff_pos [L,W], pred_idx [B,n] -> z [B,n,W] (or [B,L,W] without pred_idx)."""
        buf = self.cfg.buffer_tokens
        B, W = x_enc.shape[0], x_enc.shape[2]
        x = self.decoder_embed(x_enc)
        slots = torch.cat([torch.arange(buf, dtype=torch.int64, device=vis_idx.device)[None].expand(B, buf), vis_idx + buf], dim=1)
        x = fill.scatter(1, slots[..., None].expand(B, slots.shape[1], W), x.to(fill.dtype))  # [B,buf+L,W]
        x = x + dec_pos
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)[:, buf:] + diff_pos                           # drop buffers, [B,L,W]
        if pred_idx is None:
            return x
        return torch.gather(x, 1, pred_idx[..., None].expand(B, pred_idx.shape[1], W))
