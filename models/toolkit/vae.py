"""KL autoencoder with the module layout of MAR's KL-16 (docs/model.md 9.3 key list, 9.4 details).

Keys (no prefix, as in kl16.ckpt["model"]): encoder.*, decoder.*, quant_conv, post_quant_conv.
Attention: encoder at the lowest level (after each res block) and in mid; decoder in mid only.
`encode` returns the posterior *mean* (logvar unused at inference); scaling by vae_scale is the
caller's job (the engine reads vae_scale from the manifest).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def norm(ch):
    return nn.GroupNorm(32, ch, eps=1e-6, affine=True)


def swish(x):
    return x * torch.sigmoid(x)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head attention over the C channels of every pixel, scale C^-1/2."""

    def __init__(self, ch):
        super().__init__()
        self.norm = norm(ch)
        self.q = nn.Conv2d(ch, ch, 1)
        self.k = nn.Conv2d(ch, ch, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x):  # [B, C, h, w]
        B, C, H, W = x.shape
        y = self.norm(x)
        q = self.q(y).reshape(B, C, -1).transpose(1, 2)   # [B, hw, C]
        k = self.k(y).reshape(B, C, -1)                   # [B, C, hw]
        v = self.v(y).reshape(B, C, -1)                   # [B, C, hw]
        att = torch.softmax(torch.bmm(q, k) * (C ** -0.5), dim=2)     # [B, hw(q), hw(k)]
        h = torch.bmm(v, att.transpose(1, 2)).reshape(B, C, H, W)
        return x + self.proj_out(h)


class Downsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # pad right/bottom by 1 (docs/model.md §9.4)


class Upsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    pass


class Mid(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.block_1 = ResnetBlock(ch, ch)
        self.attn_1 = AttnBlock(ch)
        self.block_2 = ResnetBlock(ch, ch)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, ch, ch_mult, nres, z):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin = ch
        for i, m in enumerate(ch_mult):
            lv = Level()
            lv.block = nn.ModuleList()
            lv.attn = nn.ModuleList()
            for _ in range(nres):
                lv.block.append(ResnetBlock(cin, ch * m))
                cin = ch * m
                if i == len(ch_mult) - 1:  # KL-16: attn_resolutions=(16,) = the lowest level
                    lv.attn.append(AttnBlock(cin))
            if i != len(ch_mult) - 1:
                lv.downsample = Downsample(cin)
            self.down.append(lv)
        self.mid = Mid(cin)
        self.norm_out = norm(cin)
        self.conv_out = nn.Conv2d(cin, 2 * z, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for i, lv in enumerate(self.down):
            for j, blk in enumerate(lv.block):
                h = blk(h)
                if len(lv.attn):
                    h = lv.attn[j](h)
            if hasattr(lv, "downsample"):
                h = lv.downsample(h)
        h = self.mid(h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, ch, ch_mult, nres, z):
        super().__init__()
        cin = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z, cin, 3, padding=1)
        self.mid = Mid(cin)
        ups = []
        for i in reversed(range(len(ch_mult))):
            lv = Level()
            lv.block = nn.ModuleList()
            lv.attn = nn.ModuleList()  # decoder: no attention outside mid (attn_resolutions=())
            for _ in range(nres + 1):
                lv.block.append(ResnetBlock(cin, ch * ch_mult[i]))
                cin = ch * ch_mult[i]
            if i != 0:
                lv.upsample = Upsample(cin)
            ups.insert(0, lv)
        self.up = nn.ModuleList(ups)  # up[0] is the highest resolution, as in the checkpoint
        self.norm_out = norm(cin)
        self.conv_out = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            lv = self.up[i]
            for blk in lv.block:
                h = blk(h)
            if hasattr(lv, "upsample"):
                h = lv.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        z = cfg.latent_channels
        self.encoder = Encoder(cfg.vae_ch, cfg.vae_ch_mult, cfg.vae_res_blocks, z)
        self.decoder = Decoder(cfg.vae_ch, cfg.vae_ch_mult, cfg.vae_res_blocks, z)
        self.quant_conv = nn.Conv2d(2 * z, 2 * z, 1)
        self.post_quant_conv = nn.Conv2d(z, z, 1)
        self.z = z

    def encode(self, pixels):
        """pixels [B,3,H,W] in [-1,1] -> posterior mean [B,C,H/s,W/s] (unscaled)."""
        return self.quant_conv(self.encoder(pixels))[:, :self.z]

    def decode(self, latent):
        """latent [B,C,h,w] (= tokens / vae_scale) -> pixels [B,3,H,W], roughly [-1,1]."""
        return self.decoder(self.post_quant_conv(latent))
