"""Training pipeline (toolkit/train.py, vae_train.py) and ShapesEval runner (toolkit/evaluate.py).

On the narrowed tiny config of train_mini.py, so that the steps run in seconds on 2 shared cores;
warm starts are in test_train_growth.py, the two training passes in test_train_passes.py.
"""

import contextlib
import json
import os
import random

import numpy as np
import pytest
import torch

from toolkit import diagnose
from toolkit import shapes as S
from toolkit import train as T
from toolkit import train_data as D
from toolkit import train_losses as TL
from toolkit import train_state as TS
from toolkit import vae_train as V
from toolkit.evaluate import main as eval_main
from toolkit.evaluate import torch_load
from toolkit.model import UniPic
from toolkit.sampler import Runner
from train_mini import ARGS, dims, MINI, mini_config, run_log, setup_model  # noqa: F401 (mini_config: autouse fixture)


def test_batch_is_a_function_of_seed_and_step():
    a, b, c = D.make_batch((0, 5, dims())), D.make_batch((0, 5, dims())), D.make_batch((0, 6, dims()))
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
    base, zero = D.make_batch((2, 1, dims())), D.make_batch((2, 1, {**dims(), "edit_isolate": 0.0, "und_where": 0.0}))
    assert all(np.array_equal(base[k], zero[k]) for k in base)
    one = D.make_batch((2, 1, {**dims(), "cfg_drop": 0.0, "edit_isolate": 1.0, "und_where": 1.0}))
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
        base = D.make_batch((4, step, dims()))
        half = D.make_batch((4, step, {**dims(), "article_an": 0.5}))
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
    b = D.make_batch((3, 0, {**dims(), "cfg_drop": 0.0}))
    rng = random.Random("3:0")
    prompt, _ = S.sample_generation(rng)
    r = Runner(UniPic(MINI), tok)
    pre = r.prefill(["<|im_start|>user\nGenerate an image: " + prompt + "<|im_end|>\n<|im_start|>assistant\n"])
    n = int(pre["valid"][0])
    assert b["gen_ids"][0, :n].tolist() == pre["ids"][0, :n].tolist()


def test_training_pass_conditions_the_head_as_the_sampler_does():
    """The z the trainer's diffusion loss sees (batched, right-padded prompts, gather of the visible
    tokens) equals what sampler.Runner.mar_iteration computes for the same tokens, orders and
    prompts, for text-to-image and for editing (source through x_con and the <image> rows). A
    mismatch here would train one model and sample another."""
    m, _ = setup_model(1)
    m.eval()
    tok, _ = D.tiny_tokenizer(MINI.vocab_size)
    b = D.make_batch((7, 2, {**dims(), "cfg_drop": 0.0}))
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
    m, _ = setup_model(2)
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
    m, _ = setup_model(2)
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
    m, obj = setup_model()
    b = D.to_device_batch(D.make_batch((0, 0, dims())), torch.device("cpu"), m.vae, MINI.vae_scale)
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


def test_checkpoint_resume_is_exact(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    T.main(["--out", a, "--steps", "5"] + ARGS)
    os.makedirs(b)
    os.link(os.path.join(a, "vae.pt"), os.path.join(b, "vae.pt"))  # share stage A
    T.main(["--out", b, "--steps", "5", "--stop-after", "3"] + ARGS)
    T.main(["--out", b, "--steps", "5", "--resume"] + ARGS)
    la = {r["step"]: r["loss_step"] for r in run_log(a) if r.get("stage") == "train"}
    lb = {r["step"]: r["loss_step"] for r in run_log(b) if r.get("stage") == "train"}
    assert sorted(lb) == [1, 2, 3, 4, 5]
    for s in (4, 5):  # the steps after the resume
        assert la[s] == lb[s], (s, la[s], lb[s])
    ea, eb = torch_load(os.path.join(a, "ema.pt")), torch_load(os.path.join(b, "ema.pt"))
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    vae_done = [r for r in run_log(a) if r.get("stage") == "vae_done"][0]
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
               "--out", str(tmp_path / "r.json"), "--results", str(tmp_path / "r.cases.jsonl")])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    _check_summary(json.dumps(summary))
    r = json.loads((tmp_path / "r.json").read_text())
    assert len(r["results"]) == 3
    # the per-case lines: case order, the engine's `--results` shape, and they give back the summary
    from toolkit.compare_evals import flatten, means, read_cases
    lines = read_cases(str(tmp_path / "r.cases.jsonl"))
    assert [x["case"] for x in lines] == [0, 1, 2] and [x["task"] for x in lines] == [c["task"] for c in CASES]
    assert means(lines) == pytest.approx({k: v for k, v in flatten(summary).items()})


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
