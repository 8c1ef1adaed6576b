"""Warm starts (toolkit/train.py --init-from): continuing from weights, and growing depth and
buffers as identities so that the grown model begins where its weights were."""

import os

import pytest
import torch

from toolkit import config as C
from toolkit import diagnose
from toolkit import train as T
from toolkit import train_data as D
from toolkit import train_state as TS
from toolkit.evaluate import load_torch, torch_load
from toolkit.model import UniPic
from train_mini import ARGS, dims, MINI, mini_config, run_log  # noqa: F401 (mini_config: autouse fixture)


def test_init_from_warm_start(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    T.main(["--out", a, "--steps", "2"] + ARGS)
    T.main(["--out", b, "--steps", "1", "--init-from", os.path.join(a, "ema.pt")] + ARGS)
    va, vb = torch_load(os.path.join(a, "vae.pt"))["vae"], torch_load(os.path.join(b, "vae.pt"))["vae"]
    assert all(torch.equal(va[k], vb[k]) for k in va)
    assert not [r for r in run_log(b) if r.get("stage") == "vae"]  # stage A skipped


def test_a_warm_start_can_deepen_the_decoder_and_the_llm(tmp_path):
    """--mar-enc-blocks / --mar-dec-blocks / --llm-layers / --head-blocks above the init weights'
    depth: the new blocks start as identities (same z and head output as the weights they grow
    from), then train; loaders read the depth from the weights."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    T.main(["--out", a, "--steps", "2"] + ARGS)
    T.main(["--out", b, "--steps", "2", "--init-from", os.path.join(a, "ema.pt"), "--mar-dec-blocks", "3",
            "--llm-layers", "2", "--mar-enc-blocks", str(MINI.mar_enc_blocks + 1),
            "--head-blocks", str(MINI.head_blocks + 1)] + ARGS)
    T.main(["--out", b, "--steps", "3", "--resume"] + ARGS)  # resumes the grown shapes without the flags
    assert [r["step"] for r in run_log(b) if r.get("stage") == "train"][-1] == 3
    small, grown = torch_load(os.path.join(a, "ema.pt")), torch_load(os.path.join(b, "ema.pt"))
    assert C.fit_to_weights(MINI, small).mar_dec_blocks == 1 and C.fit_to_weights(MINI, grown).mar_dec_blocks == 3
    assert C.fit_to_weights(MINI, small).llm_layers == 1 and C.fit_to_weights(MINI, grown).llm_layers == 2
    enc, hb = MINI.mar_enc_blocks, MINI.head_blocks
    assert (C.fit_to_weights(MINI, grown).mar_enc_blocks, C.fit_to_weights(MINI, grown).head_blocks) == (enc + 1, hb + 1)
    assert float(grown[f"mar.encoder_blocks.{enc}.mlp.fc2.weight"].abs().max()) > 0
    assert float(grown[f"mar.diffloss.net.res_blocks.{hb}.adaLN_modulation.1.weight"].abs().max()) > 0
    assert float(grown["mar.decoder_blocks.2.mlp.fc2.weight"].abs().max()) > 0  # the new blocks trained
    assert float(grown["llm.model.layers.1.mlp.down_proj.weight"].abs().max()) > 0
    m1, m3 = UniPic(MINI), UniPic(MINI.replace(mar_dec_blocks=3, llm_layers=2, mar_enc_blocks=enc + 1,
                                                 head_blocks=hb + 1))
    TS.init_train(m3, 1)
    m1.load_state_dict(small)
    start = TS.grow_blocks(m3, small)
    assert all(float(start[f"mar.decoder_blocks.{i}.{k}"].abs().max()) == 0 for i in (1, 2) for k in TS.RESIDUAL_OUT)
    assert all(float(start[f"llm.model.layers.1.{k}"].abs().max()) == 0 for k in TS.GROWABLE["llm.model.layers."])
    assert all(float(start[f"mar.encoder_blocks.{enc}.{k}"].abs().max()) == 0 for k in TS.RESIDUAL_OUT)
    head_out = TS.GROWABLE["mar.diffloss.net.res_blocks."]
    assert all(float(start[f"mar.diffloss.net.res_blocks.{hb}.{k}"].abs().max()) == 0 for k in head_out)
    m3.load_state_dict(start)
    bd = D.to_device_batch(D.make_batch((3, 0, {**dims(), "cfg_drop": 0.0})), torch.device("cpu"), m1.vae,
                           MINI.vae_scale)
    z1, z3 = diagnose._capture_z(m1.eval(), bd), diagnose._capture_z(m3.eval(), bd)
    assert all(torch.equal(z1[t], z3[t]) for t in z1)
    x, c = torch.randn(5, MINI.latent_channels), torch.randn(5, MINI.mar_width)
    t = torch.randint(0, 1000, (5,))
    assert torch.equal(m1.mar.diffloss.net(x, t, c), m3.mar.diffloss.net(x, t, c))  # the grown head too
    torch.save(grown, tmp_path / "grown.pt")  # evaluation tools build the model the weights need
    grown_cfg = load_torch(None, str(tmp_path / "grown.pt"), "tiny-test").cfg
    assert (grown_cfg.mar_dec_blocks, grown_cfg.llm_layers, grown_cfg.mar_enc_blocks, grown_cfg.head_blocks) == \
        (3, 2, enc + 1, hb + 1)


def test_a_warm_start_can_add_buffers(tmp_path):
    """--buffer-tokens above the init weights' count: the old buffer rows and every image row of
    both positional tables are kept, the new rows start near the old ones, then train; loaders
    read the count from the weights."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    T.main(["--out", a, "--steps", "2"] + ARGS)
    buf = MINI.buffer_tokens
    T.main(["--out", b, "--steps", "2", "--init-from", os.path.join(a, "ema.pt"), "--buffer-tokens", str(buf + 3)] + ARGS)
    small, grown = torch_load(os.path.join(a, "ema.pt")), torch_load(os.path.join(b, "ema.pt"))
    assert C.fit_to_weights(MINI, small).buffer_tokens == buf and C.fit_to_weights(MINI, grown).buffer_tokens == buf + 3
    m = UniPic(MINI.replace(buffer_tokens=buf + 3))
    start = TS.grow_buffers(m, small)
    for k in TS.POS_TABLES:
        old, new = small[k][0], start[k][0]                    # [buf + L, W], [buf + 3 + L, W]
        assert new.shape[0] == old.shape[0] + 3
        assert torch.equal(new[:buf], old[:buf]) and torch.equal(new[buf + 3:], old[buf:])
        copies = new[buf:buf + 3] - old[torch.arange(3) % buf]
        assert 0 < float(copies.abs().max()) < float(old[:buf].abs().max())  # near the old rows, not equal
        assert not torch.equal(grown[k][0, buf:buf + 3], new[buf:buf + 3])     # and trained from there
    same = TS.grow_buffers(UniPic(MINI), small)                                 # nothing to add: unchanged
    assert all(same[k] is small[k] for k in small)
    with pytest.raises(ValueError, match="buffer count"):                     # fewer than the weights hold
        TS.grow_buffers(UniPic(MINI.replace(buffer_tokens=buf - 1)), small)
    with pytest.raises(ValueError, match="buffer count"):                     # no buffer to copy
        TS.grow_buffers(UniPic(MINI), {**small, **{k: small[k][:, buf:] for k in TS.POS_TABLES}})
    torch.save(grown, tmp_path / "grown.pt")
    assert load_torch(None, str(tmp_path / "grown.pt"), "tiny-test").cfg.buffer_tokens == buf + 3
