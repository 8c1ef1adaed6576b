"""Converter on a synthetic checkpoint with the released key names and file layout (docs/model.md 9.2, 9.3)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from toolkit.convert import CheckpointError, convert
from toolkit.ortnode import node_available
from toolkit.parity import parity
from toolkit.synthetic import SYNTH, write_synthetic_checkpoint

MODELS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    ck = str(tmp_path_factory.mktemp("ckpt"))
    ref = write_synthetic_checkpoint(ck, seed=1)
    out = str(tmp_path_factory.mktemp("converted"))
    res = convert(ck, out, resolutions=(64, 128), log=lambda *a: None)
    return ck, out, ref, res


def test_weights_and_config(converted):
    ck, out, ref, res = converted
    m = res["model"]
    assert m.cfg.mar_width == SYNTH.mar_width and m.cfg.buffer_tokens == SYNTH.buffer_tokens
    assert m.cfg.vae_ch_mult == SYNTH.vae_ch_mult and m.cfg.llm_kv_heads == 2 and m.cfg.native_grid == 4
    a, b = ref.state_dict(), m.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert {"llm.lm_head.weight", "mar.class_emb.weight"} <= set(res["ignored"])


def test_manifest_and_tokenizer(converted):
    _, out, _, res = converted
    man = json.load(open(os.path.join(out, "manifest.json")))
    assert [r["size"] for r in man["resolutions"]] == [64, 128]
    assert [r["grid"] for r in man["resolutions"]] == [[4, 4], [8, 8]]
    assert man["resolutions"][1]["image_prompt_tokens"] == 64 + SYNTH.buffer_tokens
    assert man["sampling_defaults"]["steps"] == 32 and man["sampling_defaults"]["diffusionSteps"] == 100
    ref_tabs = res["model"].mar.pos_tables(8, 8)
    pt = man["resolutions"][1]["pos_tables"]
    raw = np.fromfile(os.path.join(out, pt["file"]), dtype="<f4")
    for name, t in zip(("enc_pos", "dec_pos", "diff_pos"), ref_tabs):
        e = pt[name]
        got = raw[e["offset"] // 4: e["offset"] // 4 + t.numel()].reshape(e["shape"])
        assert np.array_equal(got, t.numpy())
    tok = json.load(open(os.path.join(out, "tokenizer.json")))
    img = [t for t in tok["added_tokens"] if t["content"] == "<image>"]
    assert len(img) == 1 and img[0]["id"] == man["tokenizer"]["image_token_id"]
    assert img[0]["id"] == max(t["id"] for t in tok["added_tokens"])


@pytest.mark.skipif(not node_available(), reason="node + onnxruntime-node not installed")
@pytest.mark.parametrize("role", ["vae_encoder", "vae_decoder", "mar_encoder", "mar_fill", "mar_decoder",
                                  "llm", "diffusion_head"])
def test_converted_parity(converted, role):
    _, out, ref, _ = converted
    for res in (64, 128):  # 128 uses the bilinearly resized positional tables
        d = parity(ref, out, role, f"synthetic/{role}", resolution=res, seed=res, B=2, V=3, n=2, P=3, T=2)
        assert d < 1e-4, (role, res, d)


def _broken(tmp_path, ck, edit):
    bad = tmp_path / "bad"
    os.makedirs(bad / "Qwen2.5-1.5B-Instruct")
    for f in ("config.json", "tokenizer.json"):
        os.link(os.path.join(ck, "Qwen2.5-1.5B-Instruct", f), bad / "Qwen2.5-1.5B-Instruct" / f)
    sd = torch.load(os.path.join(ck, "pytorch_model.bin"))
    vae = torch.load(os.path.join(ck, "kl16.ckpt"))
    edit(sd, vae)
    torch.save(sd, bad / "pytorch_model.bin")
    torch.save(vae, bad / "kl16.ckpt")
    return str(bad)


@pytest.mark.parametrize("edit,msg", [
    (lambda sd, v: sd.pop("mar.mask_token"), "missing key 'mar.mask_token'"),
    (lambda sd, v: sd.pop("llm.model.layers.1.self_attn.k_proj.bias"), "llm.model.layers.1.self_attn.k_proj.bias"),
    (lambda sd, v: sd.__setitem__("proj_out.2.weight", torch.zeros(3, 3)), "'proj_out.2.weight' has shape (3, 3)"),
    (lambda sd, v: v["model"].pop("decoder.mid.attn_1.q.bias"), "kl16.ckpt[\"model\"]: missing key 'decoder.mid.attn_1.q.bias'"),
    (lambda sd, v: v.pop("model"), "VAE under \"model\""),
    (lambda sd, v: sd.pop("mar.z_proj.weight"), "missing key 'mar.z_proj.weight'"),
])
def test_bad_checkpoints(converted, tmp_path, edit, msg):
    ck = converted[0]
    bad = _broken(tmp_path, ck, edit)
    with pytest.raises(CheckpointError) as e:
        convert(bad, str(tmp_path / "out"), resolutions=(64,), log=lambda *a: None)
    assert msg in str(e.value)


def test_cli_missing_file(tmp_path):
    r = subprocess.run([sys.executable, "-m", "toolkit.convert", str(tmp_path), str(tmp_path / "o")],
                       cwd=MODELS, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "missing file" in r.stderr and "config.json" in r.stderr


class _S:
    """Stands in for a tensor where only the shape is read."""

    def __init__(self, *shape):
        self.shape = torch.Size(shape)


def test_infer_config_at_released_size():
    """The dims the converter reads from a full-size release equal the unipic-1.5b config."""
    from toolkit.config import UNIPIC_1_5B as c
    from toolkit.convert import infer_config
    from toolkit.vae import AutoencoderKL
    main = {"mar.z_proj.weight": _S(1280, 16), "mar.encoder_pos_embed_learned": _S(1, 1088, 1280),
            "mar.diffusion_pos_embed_learned": _S(1, 1024, 1280),
            "mar.diffloss.net.input_proj.weight": _S(1536, 16)}
    for i in range(20):
        main[f"mar.encoder_blocks.{i}.norm1.weight"] = _S(1280)
        main[f"mar.encoder_blocks.{i}.mlp.fc1.weight"] = _S(5120, 1280)
        main[f"mar.decoder_blocks.{i}.norm1.weight"] = _S(1280)
    for i in range(12):
        main[f"mar.diffloss.net.res_blocks.{i}.in_ln.weight"] = _S(1536)
    vae = {k: _S(*v.shape) for k, v in AutoencoderKL(c.replace(vae_ch=32)).state_dict().items()}
    vae["encoder.conv_in.weight"] = _S(128, 3, 3, 3)
    for i, m in enumerate(c.vae_ch_mult):
        vae[f"encoder.down.{i}.block.0.conv1.weight"] = _S(128 * m, 128 if i == 0 else 128 * c.vae_ch_mult[i - 1], 3, 3)
    qwen = {"hidden_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
            "intermediate_size": 8960, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "vocab_size": 151936}
    got = infer_config(main, vae, qwen)
    for f in ("vocab_size", "llm_hidden", "llm_layers", "llm_heads", "llm_kv_heads", "llm_head_dim", "llm_mlp",
              "rms_eps", "rope_theta", "latent_channels", "mar_width", "mar_heads", "mar_enc_blocks",
              "mar_dec_blocks", "mar_mlp_ratio", "buffer_tokens", "native_grid", "head_width", "head_blocks",
              "vae_ch", "vae_ch_mult", "vae_res_blocks"):
        assert getattr(got, f) == getattr(c, f), f
