"""Training pipeline (toolkit/train.py, vae_train.py) and ShapesEval runner (toolkit/evaluate.py).

Uses a narrowed copy of the tiny config (same vocabulary, latent, grid and buffers; smaller widths
and depths) so that the steps run in seconds on 2 shared cores.
"""

import contextlib
import json
import os
import random

import numpy as np
import pytest
import torch

from toolkit import config as C
from toolkit import diagnose
from toolkit import shapes as S
from toolkit import train as T
from toolkit import train_data as D
from toolkit import train_losses as TL
from toolkit import train_state as TS
from toolkit import vae_train as V
from toolkit.evaluate import main as eval_main
from toolkit.evaluate import load_torch, torch_load
from toolkit.model import UniPic
from toolkit.sampler import Runner

MINI = C.TINY.replace(name="tiny-test", llm_hidden=64, llm_layers=1, llm_heads=2, llm_kv_heads=1,
                      llm_head_dim=32, llm_mlp=128, mar_width=64, mar_heads=2, mar_enc_blocks=1,
                      mar_dec_blocks=1, head_width=64, head_blocks=1, vae_ch=32, vae_ch_mult=(1, 1, 1, 1),
                      sampling={"steps": 2, "cfg": 2.0, "cfgSchedule": "constant", "temperature": 1.0,
                                "diffusionSteps": 2})


@pytest.fixture(autouse=True)
def _mini_config(monkeypatch):
    monkeypatch.setitem(C.CONFIGS, "tiny-test", MINI)


def _dims(bg=4, be=3, bu=3):
    return {"size": 64, "L": 64, "img_tokens": 68, "cfg_drop": 0.1, "vocab_size": MINI.vocab_size,
            "batch_gen": bg, "batch_edit": be, "batch_und": bu}


def test_batch_is_a_function_of_seed_and_step():
    a, b, c = D.make_batch((0, 5, _dims())), D.make_batch((0, 5, _dims())), D.make_batch((0, 6, _dims()))
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert not np.array_equal(a["gen_img"], c["gen_img"])
    # MAR masking: one ratio per batch in [0.7, 1], vis and pred partition 0..L-1 per row
    n = a["gen_pred"].shape[1]
    assert 0.7 * 64 <= n <= 64
    for v, p in zip(a["gen_vis"], a["gen_pred"]):
        assert sorted(list(v) + list(p)) == list(range(64))
    # understanding labels: the last label of each row is <|im_end|>
    tok, ids = D.tiny_tokenizer(MINI.vocab_size)
    rows, cols = a["und_rows"], a["und_cols"]
    for r in range(3):
        last = cols[rows == r].max()
        assert a["und_ids"][r, last + 1] == ids["eos"]
    # the <image> rows sit right after USER_PREFIX in every edit / understanding prompt (Objective.embed)
    start = TL.Objective(UniPic(MINI), "cpu").img_start
    for k in ("edit_ids", "und_ids"):
        assert (a[k][:, start:start + 68] == ids["image"]).all()
        assert (a[k] == ids["image"]).sum() == 68 * a[k].shape[0]


def test_isolate_and_where_shares_reach_the_batch_and_default_to_the_old_stream():
    """--edit-isolate / --und-where at 0 draw nothing extra (the same batch as without them); at 1
    every edit prompt is a "keep only the ..." and every question a "where is the ...?"."""
    tok, _ = D.tiny_tokenizer(MINI.vocab_size)
    base, zero = D.make_batch((2, 1, _dims())), D.make_batch((2, 1, {**_dims(), "edit_isolate": 0.0, "und_where": 0.0}))
    assert all(np.array_equal(base[k], zero[k]) for k in base)
    one = D.make_batch((2, 1, {**_dims(), "cfg_drop": 0.0, "edit_isolate": 1.0, "und_where": 1.0}))
    assert all("keep only the " in tok.decode(r.tolist()) for r in one["edit_ids"])
    assert all("where is the " in tok.decode(r.tolist()) for r in one["und_ids"])
    assert not any("keep only" in tok.decode(r.tolist()) for r in base["edit_ids"])


def test_article_share_writes_an_before_vowels_and_moves_nothing_else():
    """--article-an: "a orange" becomes "an orange" in that share of texts, every other token and
    every image of the batch as without it (its draws are a stream of their own)."""
    assert D.with_articles(["a orange circle and a red square"], 1.0, random.Random(0)) == \
        ["an orange circle and a red square"]
    assert D.with_articles(["a red circle", "Generate an image: a orange square"], 1.0, random.Random(0)) == \
        ["a red circle", "Generate an image: an orange square"]
    tok, _ = D.tiny_tokenizer(MINI.vocab_size)
    texts = lambda b: [tok.decode(r.tolist()) for k in ("gen_ids", "edit_ids", "und_ids") for r in b[k]]
    seen_an = seen_orange = 0
    for step in range(12):
        base = D.make_batch((4, step, _dims()))
        half = D.make_batch((4, step, {**_dims(), "article_an": 0.5}))
        for k in base:
            if not k.endswith(("_ids", "_mask")):
                assert np.array_equal(base[k], half[k]), k
        for a, b in zip(texts(base), texts(half)):
            assert b in (a, a.replace("a orange", "an orange")), (a, b)
            seen_orange += "a orange" in a
            seen_an += "an orange" in b
        assert not any("an orange" in t for t in texts(base))
    assert 0 < seen_an < seen_orange, (seen_an, seen_orange)


def test_training_prompts_match_the_sampler():
    """The trainer's t2i prompt ids are exactly what sampler.Runner feeds the LLM."""
    tok, ids = D.tiny_tokenizer(MINI.vocab_size)
    b = D.make_batch((3, 0, {**_dims(), "cfg_drop": 0.0}))
    rng = random.Random("3:0")
    prompt, _ = S.sample_generation(rng)
    r = Runner(UniPic(MINI), tok)
    pre = r.prefill(["<|im_start|>user\nGenerate an image: " + prompt + "<|im_end|>\n<|im_start|>assistant\n"])
    n = int(pre["valid"][0])
    assert b["gen_ids"][0, :n].tolist() == pre["ids"][0, :n].tolist()


def _setup(seed=0):
    torch.manual_seed(seed)
    m = TS.init_train(UniPic(MINI), seed)
    for p in m.vae.parameters():
        p.requires_grad_(False)
    obj = TL.Objective(m, "cpu", mul=2)
    obj.ids = D.tiny_tokenizer(MINI.vocab_size)[1]
    return m, obj


def test_training_pass_conditions_the_head_as_the_sampler_does():
    """The z the trainer's diffusion loss sees (batched, right-padded prompts, gather of the visible
    tokens) equals what sampler.Runner.mar_iteration computes for the same tokens, orders and
    prompts, for text-to-image and for editing (source through x_con and the <image> rows). A
    mismatch here would train one model and sample another."""
    m, _ = _setup(1)
    m.eval()
    tok, _ = D.tiny_tokenizer(MINI.vocab_size)
    b = D.make_batch((7, 2, {**_dims(), "cfg_drop": 0.0}))
    bd = D.to_device_batch(b, torch.device("cpu"), m.vae, MINI.vae_scale)
    z = diagnose._capture_z(m, bd)
    assert z["gen"].shape == (4 * b["gen_pred"].shape[1], MINI.mar_width)
    assert float((z["gen"][:8] - z["edit"][:8]).abs().max()) > 1e-3  # not trivially equal (e.g. all zero)
    d = diagnose.parity(m, tok, b, bd, z)
    assert d["gen"] < 1e-5 and d["edit"] < 1e-5, d


def _any_change(monkeypatch):
    # an untrained VAE moves the tokens of an edit far less than CHANGED_MSE: count any change
    monkeypatch.setattr(diagnose, "changed_tokens", lambda src, tgt: ((src - tgt) ** 2).mean(-1) > 1e-10)


def test_diagnose_report(tmp_path, capsys, monkeypatch):
    _any_change(monkeypatch)
    m, _ = _setup(2)
    torch.save(m.state_dict(), tmp_path / "w.pt")
    diagnose.main(["--model-dir", "", "--config", "tiny-test", "--weights", str(tmp_path / "w.pt"),
                   "--batches", "2", "--threads", "1"])
    r = json.loads(capsys.readouterr().out)
    assert r["parity"]["gen"] < 1e-5 and r["parity"]["edit"] < 1e-5
    assert set(r["head_x0_mse"]["edit"]) == {"200", "500", "800", "900", "950"}
    split = r["edit_x0_mse"]
    assert set(split) == {"changed", "unchanged"} and set(split["changed"]) == {"500", "800", "900", "950"}
    assert any(v is not None and v > 0 for part in split.values() for v in part.values())
    assert r["probe"]["edit"]["all"] > 0 and 0 <= r["probe"]["edit"]["changed_share"] <= 1
    assert all(0 <= v <= 1 for v in r["decoder_noise"].values())  # an untrained VAE: no floor here
    modes = r["edit_sampled_modes"]
    assert modes and all(set(per) <= {"alone", "half_shown"} for per in modes.values())
    assert all(0 <= v["copied"] <= 1 and 0 <= v["whole"] <= 1 and v["tokens"] > 0
               for per in modes.values() for v in per.values())


def test_edit_sampled_modes_count_copies_and_whole_objects(monkeypatch):
    """A head that samples the target copies nothing and leaves every object whole; one that samples
    the source copies every clearly changed token; showing half the changed tokens predicts fewer."""
    _any_change(monkeypatch)
    m, _ = _setup(2)
    tok, _ = D.tiny_tokenizer(MINI.vocab_size)
    seen, real_targets = {}, diagnose._targets

    def targets(bd, task, background):
        seen["x0"], seen["src"], bg = real_targets(bd, task, background)
        return seen["x0"], seen["src"], bg

    monkeypatch.setattr(diagnose, "_targets", targets)
    for sample, copied, whole in (("x0", 0.0, 1.0), ("src", 1.0, 0.0)):
        monkeypatch.setattr(diagnose.Runner, "diffuse", lambda self, z, *a, s=sample: seen[s].clone())
        out = diagnose.edit_sampled_modes(m.eval(), tok, 3, batches=1)
        assert out and all(v["copied"] == copied and v["whole"] == whole for per in out.values() for v in per.values())
        assert all(per["half_shown"]["tokens"] < per["alone"]["tokens"] for per in out.values() if "half_shown" in per)


def test_few_steps_lower_the_loss():
    m, obj = _setup()
    b = D.to_device_batch(D.make_batch((0, 0, _dims())), torch.device("cpu"), m.vae, MINI.vae_scale)
    opt = torch.optim.AdamW([p for _, p in TS.trainable(m)], lr=2e-3, betas=(0.9, 0.95))
    losses = []
    for s in range(30):
        L = obj.losses(b, TS.step_generator(0, s % 3, "cpu"))  # the same 3 noise draws, cycled
        loss = L["gen"] + L["edit"] + 0.5 * L["und"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    first, last = np.mean(losses[:6]), np.mean(losses[-6:])
    assert last < 0.8 * first, (first, last, losses)


def test_diffusion_loss_parts():
    """MSE is ~1 for a zero-output head; the VLB term is finite and >= 0."""
    dl = TL.DiffusionLoss("cpu")
    head = lambda x, t, c: torch.zeros(x.shape[0], 2 * x.shape[1])  # noqa: E731
    g = torch.Generator().manual_seed(0)
    loss, mse = dl(head, torch.zeros(500, 8), torch.randn(500, 16, generator=g), 2, g, contextlib.nullcontext)
    assert 0.9 < float(mse) < 1.1
    assert torch.isfinite(loss) and float(loss) >= float(mse)


def test_min_snr_weighting():
    """--snr-gamma 5: weight min(SNR, 5)/SNR on each row's eps MSE, so 1 at high noise, < 1 where
    SNR > 5 (low noise); with the same draws the weighted loss is below the uniform one."""
    uni, msnr = TL.DiffusionLoss("cpu"), TL.DiffusionLoss("cpu", snr_gamma=5.0)
    ac = uni.sqrt_ac ** 2
    snr = ac / (1 - ac)
    assert torch.all(uni.w_eps == 1)
    assert torch.allclose(msnr.w_eps[snr <= 5], torch.ones(int((snr <= 5).sum())))
    low = snr > 5
    assert 100 < int(low.sum()) < 500  # the low-noise quarter or so of the cosine schedule
    assert torch.allclose(msnr.w_eps[low], 5 / snr[low], rtol=1e-3)  # snr from fp32 tables
    head = lambda x, t, c: torch.zeros(x.shape[0], 2 * x.shape[1])  # noqa: E731
    x0 = torch.randn(400, 16, generator=torch.Generator().manual_seed(1))
    runs = [dl(head, torch.zeros(400, 8), x0, 2, torch.Generator().manual_seed(3), contextlib.nullcontext)
            for dl in (uni, msnr)]
    assert float(runs[0][1]) == float(runs[1][1])          # same draws, same unweighted MSE
    assert float(runs[1][0]) < float(runs[0][0]) - 0.1     # ~26% of rows weighted down


def test_bf16_matmuls_only_where_the_cpu_has_bf16_instructions():
    epyc = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\nprocessor\t: 1\nflags\t\t: fpu sse2 avx avx2 fma\n"
    xeon = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n"
    assert not TL.fast_cpu_bf16(epyc)
    assert TL.fast_cpu_bf16(xeon)
    assert TL.fast_cpu_bf16("flags : avx2 amx_bf16 amx_tile")
    assert not TL.fast_cpu_bf16("")


def test_vae_standardize_is_exact():
    torch.manual_seed(0)
    from toolkit.vae import AutoencoderKL
    vae = AutoencoderKL(MINI).eval()
    px = V.pixels(V.scene_batch(0, 0, 4, 64), "cpu")
    with torch.no_grad():
        before = vae.decode(vae.encode(px))
        V.standardize(vae, 64, MINI.vae_scale, "cpu", n=16)
        after = vae.decode(vae.encode(px))
        mu, sd = V.latent_stats(vae, 64, "cpu", n=16)
    assert torch.allclose(before, after, atol=1e-4)
    assert float(mu.abs().max()) < 1e-3
    assert torch.allclose(sd, torch.full_like(sd, 1 / MINI.vae_scale), rtol=1e-3)


ARGS = ["--config", "tiny-test", "--vae-steps", "2", "--vae-batch", "4", "--vae-agree-n", "4",
        "--vae-stats-n", "8", "--batch-gen", "3", "--batch-edit", "2", "--batch-und", "2", "--diff-mul", "2",
        "--warmup", "2", "--log-every", "1", "--eval-every", "0", "--no-final-eval", "--no-export",
        "--bf16", "off"]


def _log(out):
    with open(os.path.join(out, "log.jsonl")) as f:
        return [json.loads(x) for x in f]


def test_checkpoint_resume_is_exact(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    T.main(["--out", a, "--steps", "5"] + ARGS)
    os.makedirs(b)
    os.link(os.path.join(a, "vae.pt"), os.path.join(b, "vae.pt"))  # share stage A
    T.main(["--out", b, "--steps", "5", "--stop-after", "3"] + ARGS)
    T.main(["--out", b, "--steps", "5", "--resume"] + ARGS)
    la = {r["step"]: r["loss_step"] for r in _log(a) if r.get("stage") == "train"}
    lb = {r["step"]: r["loss_step"] for r in _log(b) if r.get("stage") == "train"}
    assert sorted(lb) == [1, 2, 3, 4, 5]
    for s in (4, 5):  # the steps after the resume
        assert la[s] == lb[s], (s, la[s], lb[s])
    ea, eb = torch_load(os.path.join(a, "ema.pt")), torch_load(os.path.join(b, "ema.pt"))
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    vae_done = [r for r in _log(a) if r.get("stage") == "vae_done"][0]
    assert 0.0 <= vae_done["detector_agreement"] <= 1.0


def test_lr_mar_gives_the_image_side_a_rate_of_its_own():
    """--lr-mar K: MAR and projector parameters in groups at K x the rate; at 1 the two groups of
    old (weight decay or not), so checkpoints written before the flag still resume."""
    from types import SimpleNamespace
    m = UniPic(MINI)
    names = {id(p): n for n, p in TS.trainable(m)}

    def groups(k):
        return T.Trainer.optimizer(SimpleNamespace(a=SimpleNamespace(lr=1e-3, wd=0.05, lr_mar=k), cuda=False), m).param_groups

    fast = groups(3.0)
    assert len(fast) == 4 and sum(len(g["params"]) for g in fast) == len(names)
    for g in fast:
        image = {names[id(p)].startswith(("mar.", "proj_")) for p in g["params"]}
        assert image == {g["lr_mult"] == 3.0}, (g["lr_mult"], image)
    assert [g["lr_mult"] for g in groups(1.0)] == [1.0, 1.0]


def test_init_from_warm_start(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    T.main(["--out", a, "--steps", "2"] + ARGS)
    T.main(["--out", b, "--steps", "1", "--init-from", os.path.join(a, "ema.pt")] + ARGS)
    va, vb = torch_load(os.path.join(a, "vae.pt"))["vae"], torch_load(os.path.join(b, "vae.pt"))["vae"]
    assert all(torch.equal(va[k], vb[k]) for k in va)
    assert not [r for r in _log(b) if r.get("stage") == "vae"]  # stage A skipped


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
    assert [r["step"] for r in _log(b) if r.get("stage") == "train"][-1] == 3
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
    bd = D.to_device_batch(D.make_batch((3, 0, {**_dims(), "cfg_drop": 0.0})), torch.device("cpu"), m1.vae,
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


CASES = [
    {"task": "generate", "category": "colors", "prompt": "a red circle",
     "expect": {"objects": [{"shape": "circle", "color": "red"}]}},
    {"task": "understand", "scene": [{"shape": "circle", "color": "red", "cx": 0.3, "cy": 0.45, "s": 0.12}],
     "question": "what color is the circle?", "answer": "red"},
    {"task": "edit", "scene": [{"shape": "square", "color": "blue", "cx": 0.6, "cy": 0.3, "s": 0.11}],
     "instruction": "make the square green",
     "expect": [{"shape": "square", "color": "green", "cx": 0.6, "cy": 0.3, "s": 0.11}]},
]


def _check_summary(text):
    s = json.loads(text.strip().splitlines()[-1])
    assert list(s) == ["generation", "understanding", "editing", "editing_forms", "kept", "repeat", "cases"]
    assert s["cases"] == 3
    assert set(s["generation"]) == set(S.GEN_CATEGORIES) | {"overall"}
    assert s["generation"]["single_object"] is None and 0 <= s["generation"]["colors"] <= 1
    assert 0 <= s["understanding"] <= 1 and 0 <= s["editing"] <= 1


def test_evaluate_torch_end_to_end(tmp_path, capsys):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(S.dumps_cases(CASES))
    w = tmp_path / "w.pt"
    torch.save(TS.init_train(UniPic(MINI), 0).state_dict(), w)
    eval_main(["--weights", str(w), "--config", "tiny-test", "--cases", str(cases), "--seeds", "2", "--json",
               "--out", str(tmp_path / "r.json")])
    _check_summary(capsys.readouterr().out)
    r = json.loads((tmp_path / "r.json").read_text())
    assert len(r["results"]) == 3


def test_evaluate_onnx_end_to_end(tiny_export, tmp_path, capsys):
    from toolkit.ortnode import node_available
    if not node_available():
        pytest.skip("node / onnxruntime-node not available")
    out, _ = tiny_export
    cases = tmp_path / "cases.jsonl"
    cases.write_text(S.dumps_cases(CASES))
    eval_main(["--model-dir", out, "--cases", str(cases), "--seeds", "1", "--json",
               "--sampling", json.dumps({"steps": 2, "diffusionSteps": 2})])
    _check_summary(capsys.readouterr().out)


def test_device_adapter_matches_plain_model():
    """evaluate.DeviceModel (how CUDA models are evaluated) gives the same samples as the module."""
    from toolkit.evaluate import DeviceModel, run_cases
    m = TS.init_train(UniPic(MINI), 1).eval()
    tok = D.tiny_tokenizer(MINI.vocab_size)[0]
    a = run_cases(m, tok, CASES, seeds=1)[1]
    b = run_cases(DeviceModel(m, "cpu"), tok, CASES, seeds=1)[1]
    assert a == b


@pytest.mark.parametrize("mask_min", [0.7, 0.2])
def test_static_pass_equals_the_eager_pass(mask_min):
    """The fixed-shape pass (all tokens through encoder and LLM, masked ones hidden as keys, fixed
    prompt pads) gives the diffusion head the same z at the predicted positions as the eager pass,
    and the same understanding loss; so compiling it trains the same model."""
    from toolkit.train_static import StaticObjective, static_pads
    m, _ = _setup(3)
    m.eval()
    d = {**_dims(), "cfg_drop": 0.0, "mask_min": mask_min, "layout": "canonical"}
    b = D.make_batch((5, 1, d))
    pads = static_pads(D.make_batch, d, probes=1)
    bs = D.make_batch((5, 1, {**d, "static": True, "pads": pads}))
    assert bs["gen_ids"].shape[1] == pads["gen"] > b["gen_ids"].shape[1]
    assert (bs["gen_pmask"].sum(1) == b["gen_pred"].shape[1]).all()
    cpu = torch.device("cpu")
    z_eager = diagnose._capture_z(m, D.to_device_batch(b, cpu, m.vae, MINI.vae_scale))
    st = StaticObjective(m, "cpu", mul=1)
    st.ids = D.tiny_tokenizer(MINI.vocab_size)[1]
    seen = []
    st.diff = lambda head, z, x0, mul, gen, ctx, weight, t, noise: (seen.append(z[weight > 0]),
                                                                      (torch.zeros(()),) * 2)[1]
    bsd = D.to_device_batch(bs, cpu, m.vae, MINI.vae_scale)
    with torch.no_grad():
        out = st.losses(bsd, None, {"gen": (None, None), "edit": (None, None)})
    for task, z in zip(("gen", "edit"), seen):
        assert z.shape == z_eager[task].shape
        assert float((z - z_eager[task]).abs().max()) < 2e-5, task
    eager = TL.Objective(m, "cpu")
    eager.ids = st.ids
    with torch.no_grad():
        ref = eager.losses(D.to_device_batch({k: v for k, v in b.items() if k.startswith("und")}, cpu, m.vae,
                                             MINI.vae_scale), torch.Generator().manual_seed(0))
    assert abs(float(out["und"]) - float(ref["und"])) < 1e-5
    assert abs(float(out["und_acc"]) - float(ref["und_acc"])) < 1e-6


def test_static_training_step_runs_and_the_chooser_stays_eager_without_compile():
    from toolkit.train_static import StaticObjective, StepChooser, static_pads
    m, _ = _setup(4)
    d = _dims()
    pads = static_pads(D.make_batch, d, probes=1)
    st = StaticObjective(m, "cpu", mul=2)
    st.ids = D.tiny_tokenizer(MINI.vocab_size)[1]
    ch = StepChooser(lambda b, dr: st.losses(b, None, dr), enabled=False)
    bd = D.to_device_batch(D.make_batch((0, 0, {**d, "static": True, "pads": pads})), torch.device("cpu"),
                           m.vae, MINI.vae_scale)
    L = ch(bd, st.draws(bd, TS.step_generator(0, 0, "cpu")))
    (L["gen"] + L["edit"] + L["und"]).backward()
    ch.step_done()
    assert all(torch.isfinite(L[k]) for k in ("gen", "edit", "und"))
    assert ch.record()["compile"] == "off" and ch.fn is ch.eager
    grads = [p.grad for _, p in TS.trainable(m) if p.grad is not None]
    assert len(grads) > 10 and all(torch.isfinite(g).all() for g in grads)


def test_edit_focus_weights_the_changed_tokens_alike_in_both_passes():
    """--edit-focus K: the edit loss weighs the target tokens that differ from the source by 1 + K,
    the rest by 1, at the same positions in the eager and the static pass; generation is unweighted."""
    from toolkit.train_static import StaticObjective, static_pads
    m, _ = _setup(3)
    m.eval()
    d = {**_dims(), "cfg_drop": 0.0, "layout": "canonical"}
    b = D.make_batch((7, 2, d))
    pads = static_pads(D.make_batch, d, probes=1)
    bs = D.make_batch((7, 2, {**d, "static": True, "pads": pads}))
    cpu = torch.device("cpu")
    ids = D.tiny_tokenizer(MINI.vocab_size)[1]
    seen_e, seen_s = [], []
    eager = TL.Objective(m, "cpu", mul=1, edit_focus=3.0)
    eager.ids = ids
    eager.diff = lambda head, z, x0, mul, gen, ctx, weight=None: (seen_e.append(weight), (torch.zeros(()),) * 2)[1]
    st = StaticObjective(m, "cpu", mul=1, edit_focus=3.0)
    st.ids = ids
    st.diff = lambda head, z, x0, mul, gen, ctx, weight, t, noise: (seen_s.append(weight[weight > 0]),
                                                                      (torch.zeros(()),) * 2)[1]
    bd = D.to_device_batch(b, cpu, m.vae, MINI.vae_scale)
    with torch.no_grad():
        eager.losses(bd, torch.Generator().manual_seed(0))
        st.losses(D.to_device_batch(bs, cpu, m.vae, MINI.vae_scale), None, {"gen": (None, None), "edit": (None, None)})
    gen_w, edit_w = seen_e
    assert gen_w is None
    changed = TL.changed_tokens(bd["edit_src_tok"], bd["edit_tok"])              # [B,L]
    assert torch.equal(edit_w, 1 + 3 * torch.gather(changed, 1, bd["edit_pred"]).reshape(-1).float())
    assert torch.equal(edit_w, seen_s[1])
    # the rule itself, on tokens with one changed position: weights 1 + K there, 1 elsewhere
    src = torch.zeros(2, 4, 3)
    tgt = src.clone()
    tgt[1, 2] = 1.0
    assert TL.edit_weights(src, tgt, 3.0).tolist() == [[1.0] * 4, [1.0, 1.0, 4.0, 1.0]]
    assert TL.edit_weights(src, tgt, 0.0) is None


def test_edit_focus_on_pixels_weighs_the_repainted_patches():
    """--edit-focus-on pixels: the changed tokens are those whose own patch of pixels differs
    (patch_changes), not those whose latent moves; "objects" adds the patches of the objects an
    edit keeps (patch_objects); the batch carries the share asked for."""
    src = np.full((1, 16, 16, 3), 255, np.uint8)
    tgt = src.copy()
    tgt[0, 4:8, 8:12] = (255, 0, 0)      # a quarter of patch (0, 1) of a 2x2 grid of 8 px patches
    tgt[0, 15, 15] = (250, 250, 250)      # anti-aliasing sized: not a change
    assert D.patch_changes(src, tgt, 2).tolist() == [[0.0, 0.25, 0.0, 0.0]]
    src[0, 8:16, 0:8] = (0, 0, 255)          # an object the edit keeps, in patch (1, 0)
    tgt[0, 8:16, 0:8] = (0, 0, 255)
    assert D.patch_changes(src, tgt, 2).tolist() == [[0.0, 0.25, 0.0, 0.0]]
    assert D.patch_objects(src, tgt, 2).tolist() == [[0.0, 0.25, 1.0, 0.0]]
    lat_src, lat_tgt = torch.zeros(1, 4, 3), torch.zeros(1, 4, 3)
    lat_tgt[0, 2] = 1.0                   # the latent moved at a neighbour, not at the patch
    pix = torch.tensor([[0.0, 0.25, 0.0, 0.0]])
    assert TL.edit_weights(lat_src, lat_tgt, 3.0, pix).tolist() == [[1.0, 4.0, 1.0, 1.0]]
    assert TL.edit_weights(lat_src, lat_tgt, 3.0).tolist() == [[1.0, 1.0, 4.0, 1.0]]
    # the batch carries the shares --edit-focus-on names, and only then; the data stay the same
    d = {**_dims(), "cfg_drop": 0.0, "layout": "canonical"}
    g = int(np.sqrt(d["L"]))
    b = {on: D.make_batch((7, 2, {**d, "edit_focus_on": on})) for on in ("latent", "pixels", "objects")}
    assert "edit_patches" not in b["latent"] and "edit_patches" not in D.make_batch((7, 2, d))
    assert all(np.array_equal(b[on]["edit_img"], b["latent"]["edit_img"]) for on in ("pixels", "objects"))
    changes, objects = b["pixels"]["edit_patches"], b["objects"]["edit_patches"]
    assert changes.shape == (d["batch_edit"], d["L"])
    assert np.array_equal(changes, D.patch_changes(b["latent"]["edit_src"], b["latent"]["edit_img"], g))
    assert np.array_equal(objects, D.patch_objects(b["latent"]["edit_src"], b["latent"]["edit_img"], g))
    assert (changes > 0).any() and ((objects > 0) >= (changes > 0)).all()
    # Objective.edit_w weighs the batch's shares when it has them, else the moved latents
    from types import SimpleNamespace
    obj = SimpleNamespace(edit_focus=3.0)
    bt = {"edit_src_tok": lat_src, "edit_tok": lat_tgt}
    assert TL.Objective.edit_w(obj, bt).tolist() == [[1.0, 1.0, 4.0, 1.0]]
    assert TL.Objective.edit_w(obj, {**bt, "edit_patches": pix}).tolist() == [[1.0, 4.0, 1.0, 1.0]]


def test_edit_uncond_drops_the_instruction_and_keeps_the_target():
    """--edit-uncond: the prompt becomes UniPic's "Edit this image." while source and target stay
    those of the instruction's edit (the same data stream as without it)."""
    tok, _ = D.tiny_tokenizer(MINI.vocab_size)
    d = {**_dims(), "cfg_drop": 0.0}
    plain, blind = D.make_batch((4, 1, d)), D.make_batch((4, 1, {**d, "edit_uncond": 1.0}))
    assert (plain["edit_src"] == blind["edit_src"]).all() and (plain["edit_img"] == blind["edit_img"]).all()
    changed = [(s != t).any() for s, t in zip(blind["edit_src"], blind["edit_img"])]
    assert any(changed)  # the targets are edits, not copies of the source
    for row_plain, row_blind in zip(plain["edit_ids"], blind["edit_ids"]):
        assert tok.decode(row_blind.tolist()).find("Edit this image.") > 0
        assert "Edit this image." not in tok.decode(row_plain.tolist())
