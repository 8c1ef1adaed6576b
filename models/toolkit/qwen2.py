"""Qwen2 decoder, clean-room (docs/model.md 2.1, 2.2 step 2): GQA, RoPE, RMSNorm, QKV bias, tied LM head.

Module names follow the HF checkpoint keys (`llm.model.layers.{i}.self_attn.q_proj` ...) so the
converter copies tensors by name. Attention is written out by hand (torch 1.13 has no
scaled_dot_product_attention) and uses only ops that export to ONNX opset 17 with dynamic
batch / new-token / past lengths.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

NEG = -1e9  # additive mask; finite so a fully masked (pad) query row stays NaN-free


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rope_cos_sin(position_ids, head_dim: int, theta: float):
    """position_ids [B, T] int64 -> cos, sin [B, 1, T, head_dim] (HF 'rotate_half' layout)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=position_ids.device).float() / head_dim))
    freqs = position_ids.float()[..., None] * inv_freq  # [B, T, hd/2]
    emb = torch.cat([freqs, freqs], dim=-1)              # [B, T, hd]
    return emb.cos()[:, None], emb.sin()[:, None]


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.nh, self.nkv, self.hd = cfg.llm_heads, cfg.llm_kv_heads, cfg.llm_head_dim
        H = cfg.llm_hidden
        self.q_proj = nn.Linear(H, self.nh * self.hd, bias=True)
        self.k_proj = nn.Linear(H, self.nkv * self.hd, bias=True)
        self.v_proj = nn.Linear(H, self.nkv * self.hd, bias=True)
        self.o_proj = nn.Linear(self.nh * self.hd, H, bias=False)

    def forward(self, x, cos, sin, bias, past_k, past_v, attention_mask=None):
        """x [B,T,H]; bias [B,1,T,P+T]; past_k/v [B,nkv,P,hd] -> out [B,T,H], k/v [B,nkv,P+T,hd].
        attention_mask [B,P+T] is for fused.FusedQwenAttention, which takes the mask instead of bias."""
        B, T = x.shape[0], x.shape[1]
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)   # [B,nh,T,hd]
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)  # [B,nkv,T,hd]
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = torch.cat([past_k, k], dim=2)  # [B,nkv,P+T,hd]
        v = torch.cat([past_v, v], dim=2)
        rep = self.nh // self.nkv
        # GQA: query head h reads kv head h // rep (HF repeat_kv); expand+reshape exports cleanly
        S = k.shape[2]
        kk = k[:, :, None].expand(B, self.nkv, rep, S, self.hd).reshape(B, self.nh, S, self.hd)
        vv = v[:, :, None].expand(B, self.nkv, rep, S, self.hd).reshape(B, self.nh, S, self.hd)
        att = torch.matmul(q, kk.transpose(2, 3)) * (self.hd ** -0.5) + bias  # [B,nh,T,S]
        att = torch.softmax(att, dim=-1)
        out = torch.matmul(att, vv).transpose(1, 2).reshape(B, T, self.nh * self.hd)
        return self.o_proj(out), k, v


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        H, I = cfg.llm_hidden, cfg.llm_mlp
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.llm_hidden, cfg.rms_eps)
        self.post_attention_layernorm = RMSNorm(cfg.llm_hidden, cfg.rms_eps)

    def forward(self, x, cos, sin, bias, past_k, past_v, attention_mask=None):
        h, k, v = self.self_attn(self.input_layernorm(x), cos, sin, bias, past_k, past_v, attention_mask)
        x = x + h
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, k, v


class Qwen2Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.llm_hidden)
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.llm_layers)])
        self.norm = RMSNorm(cfg.llm_hidden, cfg.rms_eps)

    def forward(self, inputs_embeds, attention_mask, position_ids, past):
        """inputs_embeds [B,T,H]; attention_mask [B,P+T] int64 (1 = real key); position_ids [B,T];
        past: list of (k, v) [B,nkv,P,hd] per layer (P may be 0).
        Returns last_hidden_state [B,T,H] (after the final RMSNorm) and the new per-layer (k, v)."""
        T = inputs_embeds.shape[1]
        P = past[0][0].shape[2]
        # causal over [past | new] with key padding (docs/model.md §2.2 step 2: standard HF causal mask)
        q_pos = torch.arange(T, device=inputs_embeds.device) + P            # [T]
        k_pos = torch.arange(P + T, device=inputs_embeds.device)            # [S]
        causal = k_pos[None, :] <= q_pos[:, None]                           # [T,S]
        allowed = causal[None, None] & (attention_mask[:, None, None, :] > 0)  # [B,1,T,S]
        dev = inputs_embeds.device
        bias = torch.where(allowed, torch.zeros((), dtype=inputs_embeds.dtype, device=dev),
                           torch.full((), NEG, dtype=inputs_embeds.dtype, device=dev))
        cos, sin = rope_cos_sin(position_ids, self.cfg.llm_head_dim, self.cfg.rope_theta)
        x = inputs_embeds
        present = []
        for layer, (pk, pv) in zip(self.layers, past):
            x, k, v = layer(x, cos, sin, bias, pk, pv, attention_mask)
            present.append((k, v))
        return self.norm(x), present


class Qwen2ForCausalLM(nn.Module):
    """`llm.model.*` keys; the LM head is tied to embed_tokens (docs/model.md §2.1), so it has no weights."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Qwen2Model(cfg)

    def empty_past(self, B: int, dtype=torch.float32):
        c = self.cfg
        z = torch.zeros(B, c.llm_kv_heads, 0, c.llm_head_dim, dtype=dtype)
        return [(z, z) for _ in range(c.llm_layers)]

    def logits(self, hidden):
        # F.linear exports as Gemm(transB=1): the tied table is stored once (a
        # folded Transpose would duplicate 151936 x 1536 floats in the 1.5B graph)
        # (torch 1.13 only picks Gemm for a 2D input *with* a bias, hence the zero bias)
        w = self.model.embed_tokens.weight
        return F.linear(hidden, w, torch.zeros(w.shape[0], dtype=w.dtype, device=w.device))
