"""Shapes of every module (tiny) and the released parameter counts (docs/model.md 9.1) at full width."""

import pytest
import torch

from toolkit.config import TINY, UNIPIC_1_5B, get_config
from toolkit.diffhead import SimpleMLPAdaLN, timestep_sinusoid
from toolkit.mar import Block, resize_table
from toolkit.model import UniPic, param_count
from toolkit.qwen2 import DecoderLayer
from toolkit.vae import AutoencoderKL


def test_configs():
    c = get_config("unipic-1.5b")
    assert (c.llm_hidden, c.llm_layers, c.llm_heads, c.llm_kv_heads, c.llm_head_dim, c.llm_mlp) == (1536, 28, 12, 2, 128, 8960)
    assert (c.mar_width, c.mar_heads, c.mar_enc_blocks, c.mar_dec_blocks, c.buffer_tokens, c.native_grid) == (1280, 16, 20, 20, 64, 32)
    assert (c.head_width, c.head_blocks, c.vae_stride, c.vae_scale, c.vocab_size) == (1536, 12, 16, 0.2325, 151936)
    assert c.rope_theta == 1e6 and c.grid(1024) == 64 and TINY.grid(64) == 8
    with pytest.raises(ValueError):
        c.grid(1000)
    with pytest.raises(KeyError):
        get_config("nope")


def test_released_param_counts():
    c = UNIPIC_1_5B
    emb = c.vocab_size * c.llm_hidden
    layer = param_count(DecoderLayer(c))
    assert emb + 28 * layer + 1536 == 1_543_714_304            # Qwen2.5-1.5B, tied
    blk = param_count(Block(1280, 16, 4.0, 1e-6))
    W, buf = 1280, 64
    enc = (16 * W + W) + 2 * W + (buf + 1024) * W + 20 * blk + 2 * W
    assert enc == 394_968_320                                  # MAR encoder
    dec = (W * W + W) + W + (buf + 1024) * W + 20 * blk + 2 * W + 1024 * W
    assert dec == 397_895_680                                  # MAR decoder
    assert param_count(SimpleMLPAdaLN(c)) == 151_206_944       # diffusion MLP
    vae = AutoencoderKL(c)
    assert param_count(vae.encoder) + param_count(vae.quant_conv) == pytest.approx(28.3e6, abs=0.06e6)
    assert param_count(vae.decoder) + param_count(vae.post_quant_conv) == pytest.approx(38.2e6, abs=0.06e6)


def test_checkpoint_key_names(tiny):
    keys = set(tiny.state_dict())
    for k in ("llm.model.embed_tokens.weight", "llm.model.layers.0.self_attn.q_proj.bias",
              "llm.model.layers.3.mlp.gate_proj.weight", "llm.model.norm.weight",
              "mar.z_proj_ln.bias", "mar.encoder_pos_embed_learned", "mar.encoder_blocks.1.attn.qkv.weight",
              "mar.decoder_blocks.0.mlp.fc2.bias", "mar.mask_token", "mar.fake_latent",
              "mar.diffusion_pos_embed_learned", "mar.diffloss.net.time_embed.mlp.2.weight",
              "mar.diffloss.net.res_blocks.2.adaLN_modulation.1.weight",
              "mar.diffloss.net.final_layer.adaLN_modulation.1.bias", "proj_in.0.weight", "proj_out.2.bias",
              "vae.encoder.down.3.attn.0.q.weight", "vae.encoder.down.0.downsample.conv.weight",
              "vae.decoder.up.0.block.1.conv2.weight", "vae.decoder.up.1.upsample.conv.weight",
              "vae.decoder.mid.attn_1.proj_out.weight", "vae.quant_conv.weight", "vae.post_quant_conv.bias"):
        assert k in keys, k
    assert not any("final_layer.norm_final" in k or "lm_head" in k for k in keys)
    assert not any(k.startswith("vae.decoder.up.") and ".attn." in k for k in keys)


def test_role_shapes(tiny):
    c = TINY
    B, V, n, L, buf, C, W, H = 2, 5, 3, 64, c.buffer_tokens, 16, c.mar_width, c.llm_hidden
    enc_pos, dec_pos, diff_pos = tiny.mar.pos_tables(8, 8)
    assert enc_pos.shape == (buf + L, W) and diff_pos.shape == (L, W)
    with torch.no_grad():
        px = torch.rand(B, 3, 64, 64) * 2 - 1
        lat = tiny.vae_encode(px)
        assert lat.shape == (B, C, 8, 8)
        assert tiny.vae_decode(lat).shape == (B, 3, 64, 64)
        idx = torch.stack([torch.randperm(L)[:V].sort().values for _ in range(B)])
        x_enc, llm_in = tiny.mar_encoder(torch.randn(B, V, C), idx, enc_pos)
        assert x_enc.shape == (B, buf + V, W) and llm_in.shape == (B, V + buf, H)
        fill = tiny.mar_fill(torch.randn(B, buf + L, W), torch.tensor([0.0, 1.0]))
        assert torch.allclose(fill[0], tiny.mar.mask_token[0].expand(buf + L, W))
        past = tiny.llm.empty_past(B)
        hid, logits, pres = tiny.llm_forward(torch.zeros(B, V + buf, dtype=torch.int64), llm_in,
                                             torch.ones(B, V + buf), torch.ones(B, V + buf, dtype=torch.int64),
                                             torch.arange(V + buf)[None].expand(B, -1), past)
        assert hid.shape == (B, V + buf, H) and logits.shape == (B, c.vocab_size)
        assert pres[0][0].shape == (B, c.llm_kv_heads, V + buf, c.llm_head_dim) and len(pres) == c.llm_layers
        pred = torch.stack([torch.arange(n), torch.arange(n) + 10])
        z = tiny.mar_decoder(x_enc, hid, idx, fill, dec_pos, diff_pos, pred)
        assert z.shape == (B, n, W)
        zall = tiny.mar_decoder(x_enc, hid, idx, fill, dec_pos, diff_pos)
        assert torch.allclose(zall[1, 10:10 + n], z[1], atol=1e-6)
        out = tiny.diffusion_head(torch.randn(7, C), torch.randint(0, 1000, (7,)), torch.randn(7, W))
        assert out.shape == (7, 2 * C)


def test_timestep_sinusoid_cos_first():
    e = timestep_sinusoid(torch.tensor([0, 5]))
    assert torch.allclose(e[0, :128], torch.ones(128)) and torch.allclose(e[0, 128:], torch.zeros(128))
    assert e[1, 0] == pytest.approx(torch.cos(torch.tensor(5.0)).item(), abs=1e-6)


def test_resize_table():
    t = torch.randn(4 + 16, 8)
    assert resize_table(t, 4, 4, 4, 4) is t
    r = resize_table(t, 4, 4, 8, 8)
    assert r.shape == (4 + 64, 8) and torch.equal(r[:4], t[:4])
    # bilinear, align_corners=False: a constant image stays constant
    c = torch.cat([torch.zeros(2, 3), torch.ones(9, 3)])
    assert torch.allclose(resize_table(c, 2, 3, 5, 5)[2:], torch.ones(25, 3))


def test_kv_cache_equals_full_recompute(tiny):
    c = TINY
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 700, (1, 9), generator=g)
    emb = torch.randn(1, 9, c.llm_hidden, generator=g)
    em = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 0, 0]], dtype=torch.float32)
    pos = torch.arange(9)[None]
    with torch.no_grad():
        full, lg, _ = tiny.llm_forward(ids, emb, em, torch.ones(1, 9, dtype=torch.int64), pos, tiny.llm.empty_past(1))
        h1, _, past = tiny.llm_forward(ids[:, :5], emb[:, :5], em[:, :5], torch.ones(1, 5, dtype=torch.int64),
                                       pos[:, :5], tiny.llm.empty_past(1))
        h2, lg2, _ = tiny.llm_forward(ids[:, 5:], emb[:, 5:], em[:, 5:], torch.ones(1, 9, dtype=torch.int64),
                                      pos[:, 5:], past)
    assert torch.allclose(torch.cat([h1, h2], 1), full, atol=2e-5)
    assert torch.allclose(lg, lg2, atol=2e-5)


def test_right_padding_is_harmless(tiny):
    """A padded prompt row gives the same hidden states for its real tokens (docs/model.md §3.2)."""
    c = TINY
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    emb = torch.zeros(1, 5, c.llm_hidden)
    with torch.no_grad():
        a, _, _ = tiny.llm_forward(ids[:, :3], emb[:, :3], torch.zeros(1, 3), torch.ones(1, 3, dtype=torch.int64),
                                   torch.arange(3)[None], tiny.llm.empty_past(1))
        b, _, _ = tiny.llm_forward(ids, emb, torch.zeros(1, 5), torch.tensor([[1, 1, 1, 0, 0]]),
                                   torch.arange(5)[None], tiny.llm.empty_past(1))
    assert torch.allclose(a, b[:, :3], atol=1e-5)
