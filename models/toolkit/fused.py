"""Fused-attention export (issue 13, item 1): the LLM's attention as com.microsoft GroupQueryAttention
with its KV cache, the MAR blocks' as com.microsoft MultiHeadAttention.

`fuse(model)` returns a copy of a UniPic whose attention modules are swapped for exporters of those
contrib ops; the weights are shared, nothing else changes. In torch the swapped modules compute the
same attention as the plain ones (they only matter while tracing); in onnxruntime the contrib
kernels run instead of the written-out MatMul/Softmax chain, which on a GPU is where a plain export
loses most of its time at long sequences (docs/stack.md section 4).

GroupQueryAttention's contract differs from the plain graph's in two ways the manifest states
(`kv_cache.attention`, models/README.md):
- Keys are *left-packed*: a row's valid keys are the first sum(attention_mask) of [past | new]
  (seqlens_k = sum - 1). New tokens are written right after the row's valid past, over its pads.
  The engine's masks ([prompt mask | ones]) and cache handling give exactly that.
- onnxruntime refuses T > 1 new tokens with a non-empty past for more than one row ("batch_size must
  be 1 when sequence_length > 1 and past context is given", group_query_attention_helper.h, checked
  for every execution provider), so such calls go one row at a time (`rows_with_past: 1`).
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from .qwen2 import NEG, rotate_half

MS_DOMAIN = "com.microsoft"


def _plain_attention(q, k, v, bias):
    """q [B,h,T,hd], k/v [B,h,S,hd], bias None or broadcastable to [B,h,T,S] -> [B,h,T,hd]."""
    att = torch.matmul(q, k.transpose(2, 3)) * (q.shape[-1] ** -0.5)
    if bias is not None:
        att = att + bias
    return torch.matmul(torch.softmax(att, dim=-1), v)


class _GroupQueryAttention(torch.autograd.Function):
    """q [B,T,nh*hd], k/v [B,T,kv*hd], past_k/v [B,kv,P,hd], attention_mask [B,P+T] int64 (left-packed)
    -> out [B,T,nh*hd], present_k/v [B,kv,P+T,hd]."""

    @staticmethod
    def forward(ctx, q, k, v, past_k, past_v, attention_mask, nh, nkv):
        B, T = q.shape[0], q.shape[1]
        hd = q.shape[2] // nh
        kk = torch.cat([past_k, k.view(B, T, nkv, hd).transpose(1, 2)], dim=2)
        vv = torch.cat([past_v, v.view(B, T, nkv, hd).transpose(1, 2)], dim=2)
        # Reference semantics for tracing: the plain causal + key-mask attention (the same numbers
        # as GQA whenever the mask has no pads in the middle, as during export).
        P = past_k.shape[2]
        S = P + T
        causal = torch.arange(S)[None, :] <= (torch.arange(T) + P)[:, None]
        allowed = causal[None, None] & (attention_mask[:, None, None, :] > 0)
        bias = torch.where(allowed, torch.zeros((), dtype=q.dtype), torch.full((), NEG, dtype=q.dtype))
        rep = nh // nkv
        ke = kk[:, :, None].expand(B, nkv, rep, S, hd).reshape(B, nh, S, hd)
        ve = vv[:, :, None].expand(B, nkv, rep, S, hd).reshape(B, nh, S, hd)
        out = _plain_attention(q.view(B, T, nh, hd).transpose(1, 2), ke, ve, bias)
        return out.transpose(1, 2).reshape(B, T, nh * hd), kk, vv

    @staticmethod
    def symbolic(g, q, k, v, past_k, past_v, attention_mask, nh, nkv):
        one = g.op("Constant", value_t=torch.tensor([1], dtype=torch.int64))
        # seqlens_k [B] int32 = valid keys per row - 1; total_sequence_length = P+T, a scalar int32
        valid = g.op("ReduceSum", attention_mask, one, keepdims_i=0)
        seqlens = g.op("Cast", g.op("Sub", valid, g.op("Constant", value_t=torch.tensor(1, dtype=torch.int64))),
                       to_i=6)
        total = g.op("Cast", g.op("Squeeze", g.op("Shape", attention_mask, start_i=1, end_i=2),
                                  g.op("Constant", value_t=torch.tensor([0], dtype=torch.int64))), to_i=6)
        return g.op(f"{MS_DOMAIN}::GroupQueryAttention", q, k, v, past_k, past_v, seqlens, total,
                    num_heads_i=nh, kv_num_heads_i=nkv, outputs=3)


class _MultiHeadAttention(torch.autograd.Function):
    """q/k/v [B,N,W] -> [B,N,W], bidirectional, no mask (the MAR blocks at inference)."""

    @staticmethod
    def forward(ctx, q, k, v, heads):
        B, N, W = q.shape
        hd = W // heads
        split = lambda x: x.view(B, N, heads, hd).transpose(1, 2)  # noqa: E731  [B,h,N,hd]
        return _plain_attention(split(q), split(k), split(v), None).transpose(1, 2).reshape(B, N, W)

    @staticmethod
    def symbolic(g, q, k, v, heads):
        return g.op(f"{MS_DOMAIN}::MultiHeadAttention", q, k, v, num_heads_i=heads)


class FusedQwenAttention(nn.Module):
    """qwen2.Attention with GroupQueryAttention; RoPE stays outside the op (position ids continue
    after each row's unpadded prompt, which the op's own rotary cannot express for several rows)."""

    def __init__(self, attn):
        super().__init__()
        self.inner = attn

    def forward(self, x, cos, sin, bias, past_k, past_v, attention_mask=None):
        a = self.inner
        B, T = x.shape[0], x.shape[1]
        q = a.q_proj(x).view(B, T, a.nh, a.hd).transpose(1, 2)   # [B,nh,T,hd]
        k = a.k_proj(x).view(B, T, a.nkv, a.hd).transpose(1, 2)  # [B,nkv,T,hd]
        q = (q * cos + rotate_half(q) * sin).transpose(1, 2).reshape(B, T, a.nh * a.hd)
        k = (k * cos + rotate_half(k) * sin).transpose(1, 2).reshape(B, T, a.nkv * a.hd)
        v = a.v_proj(x)                                            # [B,T,nkv*hd]
        out, pk, pv = _GroupQueryAttention.apply(q, k, v, past_k, past_v, attention_mask, a.nh, a.nkv)
        return a.o_proj(out), pk, pv


class FusedViTAttention(nn.Module):
    def __init__(self, attn):
        super().__init__()
        self.inner = attn

    def forward(self, x, bias=None):  # x [B,N,W]
        if bias is not None:
            raise ValueError("the fused MAR attention has no key mask (inference never passes one)")
        a = self.inner
        q, k, v = a.qkv(x).chunk(3, dim=-1)  # qkv's output is laid out (3, heads, hd)
        return a.proj(_MultiHeadAttention.apply(q, k, v, a.heads))


def fuse(model):
    """A shallow copy of `model` with fused attention modules (weights shared, the original untouched)."""
    fused = copy.copy(model)
    fused._modules = dict(model._modules)
    fused._modules["llm"] = _swap_llm(model.llm)
    fused._modules["mar"] = _swap_mar(model.mar)
    return fused


def _copy_module(m):
    c = copy.copy(m)
    c._modules = dict(m._modules)
    return c


def _swap_llm(llm):
    llm = _copy_module(llm)
    inner = _copy_module(llm.model)
    layers = []
    for layer in inner.layers:
        nl = _copy_module(layer)
        nl._modules["self_attn"] = FusedQwenAttention(layer.self_attn)
        layers.append(nl)
    inner._modules["layers"] = nn.ModuleList(layers)
    llm._modules["model"] = inner
    return llm


def _swap_mar(mar):
    mar = _copy_module(mar)
    for key in ("encoder_blocks", "decoder_blocks"):
        blocks = []
        for blk in getattr(mar, key):
            nb = _copy_module(blk)
            nb._modules["attn"] = FusedViTAttention(blk.attn)
            blocks.append(nb)
        mar._modules[key] = nn.ModuleList(blocks)
    return mar
