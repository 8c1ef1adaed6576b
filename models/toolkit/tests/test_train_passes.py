"""The two training passes (toolkit/train_losses.py eager, toolkit/train_static.py fixed shapes)
agree, and the edit-loss options (--edit-focus, --edit-focus-on, --edit-uncond) reach both."""


import numpy as np
import pytest
import torch

from toolkit import diagnose
from toolkit import train_data as D
from toolkit import train_losses as TL
from toolkit import train_state as TS
from train_mini import dims, MINI, mini_config, setup_model  # noqa: F401 (mini_config: autouse fixture)


@pytest.mark.parametrize("mask_min", [0.7, 0.2])
def test_static_pass_equals_the_eager_pass(mask_min):
    """The fixed-shape pass (all tokens through encoder and LLM, masked ones hidden as keys, fixed
    prompt pads) gives the diffusion head the same z at the predicted positions as the eager pass,
    and the same understanding loss; so compiling it trains the same model."""
    from toolkit.train_static import StaticObjective, static_pads
    m, _ = setup_model(3)
    m.eval()
    d = {**dims(), "cfg_drop": 0.0, "mask_min": mask_min, "layout": "canonical"}
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
    m, _ = setup_model(4)
    d = dims()
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
    m, _ = setup_model(3)
    m.eval()
    d = {**dims(), "cfg_drop": 0.0, "layout": "canonical"}
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
    d = {**dims(), "cfg_drop": 0.0, "layout": "canonical"}
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
    d = {**dims(), "cfg_drop": 0.0}
    plain, blind = D.make_batch((4, 1, d)), D.make_batch((4, 1, {**d, "edit_uncond": 1.0}))
    assert (plain["edit_src"] == blind["edit_src"]).all() and (plain["edit_img"] == blind["edit_img"]).all()
    changed = [(s != t).any() for s, t in zip(blind["edit_src"], blind["edit_img"])]
    assert any(changed)  # the targets are edits, not copies of the source
    for row_plain, row_blind in zip(plain["edit_ids"], blind["edit_ids"]):
        assert tok.decode(row_blind.tolist()).find("Edit this image.") > 0
        assert "Edit this image." not in tok.decode(row_plain.tolist())
