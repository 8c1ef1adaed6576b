"""toolkit.edit_modes: the failure modes of an edit, from the detections of rendered outputs."""

import random

import pytest

from toolkit import shapes as S
from toolkit.edit_modes import MODES, classify, row_key, summarize
from toolkit.shapes.cases import _edit_case

SIZE = 64


def _case(form, seed):
    return _edit_case(random.Random(seed), form)


def _det(scene):
    return S.detect(S.render(scene, SIZE))


def test_the_right_output_is_done_kept_and_scores():
    for form in ("recolor", "remove", "add", "move"):
        for seed in range(6):
            case, target = _case(form, seed)
            m = classify(case, _det(target))
            assert set(m) == set(MODES)
            assert m["score"] and m["done"] and m["kept"] and m["near_miss"], (form, seed, m)
            assert not (m["extra"] or m["missing"] or m["source"] or m["old_left"]), (form, seed, m)


def test_the_source_returned_is_an_ignored_instruction():
    for form in ("recolor", "remove", "move"):
        for seed in range(6):
            case, _ = _case(form, seed)
            m = classify(case, _det(case["scene"]))
            assert m["source"] and m["old_left"] and m["kept"], (form, seed, m)
            assert not (m["score"] or m["done"]), (form, seed, m)
    case, _ = _case("add", 0)
    m = classify(case, _det(case["scene"]))
    assert m["source"] and m["missing"] and not m["done"]


def test_a_two_coloured_recolour_fails_as_an_extra_object():
    case, target = _case("recolor", 3)
    new = next(o for o in target if o not in case["scene"])
    old = next(o for o in case["scene"] if o not in target)
    # the object half in its old colour, half in the new one, as tokens that disagree draw it
    halves = [dict(old, s=new["s"] / 2, cx=new["cx"] - new["s"] / 2), dict(new, s=new["s"] / 2, cx=new["cx"] + new["s"] / 2)]
    m = classify(case, _det([o for o in target if o is not new] + halves))
    assert not m["score"]
    assert m["extra"] and m["kept"] and not m["missing"]


def test_summary_is_shares_per_form():
    case, target = _case("recolor", 1)
    rows = [("recolor", classify(case, _det(target))), ("recolor", classify(case, _det(case["scene"])))]
    s = summarize(rows)
    assert s["recolor"]["n"] == 2
    assert s["recolor"]["score"] == 0.5 and s["recolor"]["source"] == 0.5 and s["recolor"]["kept"] == 1.0


class _ExactVAE:
    """A stand-in for UniPic whose 'VAE' is space-to-depth: every token is exactly its own 8x8
    patch, so a latent moves only where pixels change and decoding is lossless."""
    from toolkit.config import TINY as cfg

    def vae_encode(self, x):                   # [B,3,64,64] -> [B,192,8,8]
        B = x.shape[0]
        return x.reshape(B, 3, 8, 8, 8, 8).permute(0, 1, 3, 5, 2, 4).reshape(B, 192, 8, 8)

    def vae_decode(self, z):                   # [B,192,8,8] -> [B,3,64,64]
        B = z.shape[0]
        return z.reshape(B, 3, 8, 8, 8, 8).permute(0, 1, 4, 2, 5, 3).reshape(B, 3, 64, 64)


def test_edit_oracle_scores_targets_and_copies_on_a_lossless_vae():
    """With a VAE that is exact and local, the true target scores 1, the source 0, copying the
    (here absent) spread costs nothing, and copying the smallest changes never beats the target."""
    import torch
    from toolkit.edit_oracle import SHARES, _smallest, form_report
    rep = form_report(_ExactVAE(), "recolor", 6, random.Random(3), torch.Generator().manual_seed(0))
    assert rep["target"] == 1.0 and rep["source"] == 0.0 and rep["copy_context"] == 1.0
    assert 0 < rep["patch_changed"] and rep["latent_changed"] <= rep["patch_changed"]
    assert all(0.0 <= rep[f"copy_random_{p}"] <= 1.0 and rep[f"copy_smallest_{p}"] <= 1.0 for p in SHARES)
    lat = torch.tensor([[0.5, 0.1, 0.9, 0.2], [0.3, 0.0, 0.0, 0.0]])
    changed = torch.tensor([[True, True, True, False], [True, False, False, False]])
    assert _smallest(lat, changed, 0.34).tolist() == [[False, True, False, False], [False, False, False, False]]


def test_rows_split_by_form_or_by_form_and_object_count():
    case, _ = _case("move", 2)
    assert row_key(case) == "move"
    assert row_key(case, "objects") == f"move/{len(case['scene'])}"
    with pytest.raises(ValueError, match="by: expected"):
        row_key(case, "colour")


def test_isolate_edits_have_their_own_rows():
    """The trainer's "keep only the ..." edits: done when the named object is there as it was,
    scored like any edit (the other objects gone)."""
    from toolkit.edit_modes import isolate_cases
    cases = isolate_cases(8, seed=3)
    assert cases == isolate_cases(8, seed=3) and {row_key(c) for c in cases} == {"isolate"}
    assert {row_key(c, "objects") for c in cases} <= {f"isolate/{n}" for n in range(2, S.MAX_OBJECTS + 1)}
    for c in cases:
        right, source = classify(c, _det(c["expect"])), classify(c, _det(c["scene"]))
        assert right["score"] and right["done"] and not right["extra"], (c, right)
        assert source["done"] and source["extra"] and source["source"] and not source["score"], (c, source)
