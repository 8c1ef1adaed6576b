"""Reference sampler: end-to-end runs on the tiny model, replay of recorded draws, schedule logic."""

import numpy as np
import pytest
import torch

from toolkit.sampler import Draws, ReplayDraws, Runner, from_uint8, mask_len_after, to_uint8

P = {"steps": 4, "cfg": 3.0, "cfgSchedule": "constant", "temperature": 1.0, "diffusionSteps": 5}


def test_generate_replay_and_draw_layout(tiny, tok):
    r = Runner(tiny, tok)
    d = Draws(0)
    trace = []
    tokens, pix = r.generate(["a red circle", "a blue square"], d, P, trace=trace)
    assert tokens.shape == (2, 64, 16) and pix.shape == (2, 3, 64, 64)
    rec = d.record
    assert len(rec["orders"]) == 1 and rec["orders"][0].shape == (2, 64)
    # per iteration: 1 initial + (S-1) step noises of [B*n, C]
    ns = [len(t["pred_idx"][0]) for t in trace]
    assert sum(ns) == 64 and len(rec["normals"]) == len(trace) * 5
    assert [x.shape[0] for x in rec["normals"][::5]] == [2 * n for n in ns]
    # every position predicted exactly once, revealed from the end of the order backwards
    order = rec["orders"][0][0]
    seen = np.concatenate([t["pred_idx"][0].numpy() for t in trace])
    assert sorted(seen) == list(range(64))
    assert set(trace[0]["pred_idx"][0].tolist()) == set(order[64 - ns[0]:].tolist())
    assert trace[1]["vis_idx"].shape[1] == ns[0]
    # replaying the record reproduces the run exactly
    t2, _ = Runner(tiny, tok).generate(["a red circle", "a blue square"], ReplayDraws(rec), P)
    assert torch.equal(tokens, t2)


def test_generate_cfg1_and_linear(tiny, tok):
    r = Runner(tiny, tok)
    t1, _ = r.generate(["a red circle"], Draws(3), dict(P, cfg=1.0))
    t2, _ = r.generate(["a red circle"], Draws(3), dict(P, cfgSchedule="linear"))
    assert t1.shape == t2.shape == (1, 64, 16)
    assert not torch.equal(t1, t2)
    with pytest.raises(ValueError):
        r.generate(["a red circle"], Draws(3), dict(P, cfgSchedule="cosine"))


def test_edit_uses_x_con(tiny, tok):
    r = Runner(tiny, tok)
    img = np.zeros((1, 64, 64, 3), dtype=np.uint8)
    img[0, 10:30, 10:30] = (220, 40, 40)
    a, pix = r.edit(from_uint8(img), ["make the square green"], Draws(5), P)
    b, _ = r.edit(from_uint8(255 - img), ["make the square green"], Draws(5), P)
    assert a.shape == (1, 64, 16) and to_uint8(pix).dtype == torch.uint8
    assert not torch.allclose(a, b)  # the source image conditions the result


def test_edit_takes_edit_sampling_overrides(tiny, tok, monkeypatch):
    # cfg.edit_sampling (manifest edit_sampling_defaults) overrides cfg.sampling for edits only,
    # and explicit params still win over both
    monkeypatch.setattr(tiny, "cfg", tiny.cfg.replace(sampling=dict(P), edit_sampling={"cfg": 1.0}))
    r = Runner(tiny, tok)
    img = np.zeros((1, 64, 64, 3), dtype=np.uint8)
    img[0, 10:30, 10:30] = (220, 40, 40)
    x, q = from_uint8(img), ["make the square green"]
    by_default, _ = r.edit(x, q, Draws(5))
    explicit1, _ = r.edit(x, q, Draws(5), dict(P, cfg=1.0))
    explicit3, _ = r.edit(x, q, Draws(5), dict(P, cfg=3.0))
    assert torch.equal(by_default, explicit1)
    assert not torch.allclose(by_default, explicit3)
    gen, _ = r.generate(["a red circle"], Draws(3))
    gen3, _ = r.generate(["a red circle"], Draws(3), dict(P, cfg=3.0))
    assert torch.equal(gen, gen3)  # generation keeps sampling's cfg 3.0


def test_understand_stops_at_eos(tiny, tok, monkeypatch):
    r = Runner(tiny, tok)
    img = np.full((1, 64, 64, 3), 127, dtype=np.uint8)
    ids, text = r.understand(from_uint8(img), "what color is the circle?", max_new_tokens=5)
    assert 1 <= len(ids) <= 5
    # force the LM head to favour <|im_end|> after one token: greedy must stop there
    eos = r.ids["eos"]
    orig = tiny.llm_forward
    calls = []

    def fake(*a):
        h, lg, p = orig(*a)
        lg = lg.clone()
        calls.append(1)
        lg[:, tok.encode(" red")[0] if len(calls) == 1 else eos] = 1e4
        return h, lg, p
    monkeypatch.setattr(tiny, "llm_forward", fake)
    ids, text = r.understand(from_uint8(img), "what color is the circle?", max_new_tokens=8)
    assert ids[-1] == eos and len(ids) == 2 and text == " red"


def test_mask_len_clamps():
    assert mask_len_after(0, 1, 64, 64) == 1          # always leaves one masked token ...
    assert mask_len_after(0, 64, 64, 64) == 63        # ... and reveals at least one
    assert mask_len_after(3, 16, 64, 40) == min(39, int(np.floor(64 * np.cos(np.pi / 2 * 4 / 16))))
