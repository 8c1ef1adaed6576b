"""Canonical layouts (toolkit/shapes/layouts.py): the trainer's targets must satisfy their own
prompts as ShapesEval judges them, through the renderer and the detector, not only as scenes.
Run from models/: python3 -m pytest -q toolkit/tests/test_layouts.py"""

import random

import pytest

from toolkit import shapes as S

N = 50  # per category / form; the slots are fixed, so jitter and colours are what varies


@pytest.mark.parametrize("category", S.GEN_CATEGORIES)
def test_canonical_generation_targets_score_one_after_detection(category):
    rng = random.Random(f"gen-{category}")
    for _ in range(N):
        case, scene = S._gen_case(rng, category, "canonical")
        S.validate_case(case)
        det = S.detect(S.render(scene, 64))
        assert S.score_generate(case, det) == 1.0, (case, scene, det)


@pytest.mark.parametrize("form", S.EDIT_FORMS)
def test_canonical_edit_targets_score_one_after_detection(form):
    rng = random.Random(f"edit-{form}")
    for _ in range(N):
        case, target = S._edit_case(rng, form, "canonical")
        S.validate_case(case)
        det = S.detect(S.render(target, 64))
        assert S.score_edit(case, det) == 1.0, (case, target, det)
        # Nothing the edit should leave alone moves in the canonical target either.
        assert S.score_kept(case, det) in (None, 1.0), (case, target, det)


@pytest.mark.parametrize("category", S.GEN_CATEGORIES)
def test_shared_open_colours_still_score_one_and_agree(category):
    """open_colors="shared": the objects whose colour the prompt leaves open all take one colour
    (drawn per scene, so scenes still vary); named colours stay as named; targets still pass."""
    rng = random.Random(f"shared-{category}")
    seen = set()
    for _ in range(N):
        case, scene = S._gen_case(rng, category, "canonical", "shared")
        det = S.detect(S.render(scene, 64))
        assert S.score_generate(case, det) == 1.0, (case, scene, det)
        named = [o.get("color") for o in case["expect"].get("objects", [])]
        open_colours = {o["color"] for o, c in zip(scene, named or [None] * len(scene)) if c is None}
        assert len(open_colours) <= 1, (case, scene)
        seen |= open_colours
    if category in ("single_object", "two_object", "counting", "position"):
        assert len(seen) >= 4, seen  # one draw per scene, not one colour for ever


def test_open_colours_default_keeps_each_object_drawn_alone():
    rng = random.Random(3)
    mixed = 0
    for _ in range(N):
        _, scene = S._gen_case(rng, "counting", "canonical")
        mixed += len({o["color"] for o in scene}) > 1
    assert mixed > N // 2
    with pytest.raises(ValueError, match="open_colors"):
        S._gen_case(random.Random(0), "counting", "canonical", "all")


def test_canonical_slots_are_the_documented_ones():
    rng = random.Random(0)
    for phrase, (words, (x, y)) in S.REGION_PHRASES.items():
        scene = S.canonical_scene(rng, [("circle", "red")], S.generation_slots("region", 1, phrase=phrase))
        o = scene[0]
        # jitter 0.02, then rounded to 3 decimals
        assert abs(o["cx"] - x) <= 0.021 and abs(o["cy"] - y) <= 0.021, phrase
        assert set(words) <= set(S.regions_of(o)), phrase
    # One object centred, two side by side with the first named on the left.
    assert S.generation_slots("colors", 1) == ((0.5, 0.5),)
    assert S.generation_slots("two_object", 2) == ((0.3, 0.5), (0.7, 0.5))
    assert S.generation_slots("position", 2, "right of") == ((0.7, 0.5), (0.3, 0.5))


def test_layout_is_checked():
    with pytest.raises(ValueError, match="layout"):
        S._gen_case(random.Random(0), "colors", "grid")
    with pytest.raises(ValueError, match="layout"):
        S._edit_case(random.Random(0), "add", "grid")


@pytest.mark.parametrize("layout", ["canonical", "fixed"])
def test_edits_of_drawn_pictures(layout):
    """With drawn_share 1 every edit source is a canonical generation target (what the model
    itself draws), and the edit's target still scores 1.0; with 0 the sources stay random."""
    rng = random.Random(f"drawn-{layout}")
    slots = {xy for n in (1, 2, 3, 4) for xy in S.generation_slots("counting", n)}
    slots |= {xy for rel in S.RELATIONS for xy in S.generation_slots("position", 2, rel)}
    slots |= {xy for _, xy in S.REGION_PHRASES.values()}
    for _ in range(N):
        src, instr, target = S.sample_edit(rng, None, layout, drawn_share=1.0)
        assert all(any(abs(o["cx"] - x) <= 0.021 and abs(o["cy"] - y) <= 0.021 for x, y in slots) for o in src), src
        case = {"task": "edit", "scene": src, "instruction": instr, "expect": target}
        assert S.score_edit(case, S.detect(S.render(target, 64))) == 1.0, (src, instr, target)
    random_src = [S.sample_edit(rng, "recolor", layout)[0] for _ in range(N)]
    assert any(abs(o["cx"] - 0.5) > 0.05 for sc in random_src for o in sc if len(sc) == 1)


def test_edit_sources_can_start_at_several_objects():
    """min_objects raises the floor of a random source's object count (the targets still score
    1.0); the default keeps the evaluation's 1 to MAX_OBJECTS and the same data stream."""
    rng = random.Random("min-objects")
    counts = set()
    for _ in range(N):
        src, instr, target = S.sample_edit(rng, None, "canonical", min_objects=3)
        counts.add(len(src))
        case = {"task": "edit", "scene": src, "instruction": instr, "expect": target}
        assert S.score_edit(case, S.detect(S.render(target, 64))) == 1.0, (src, instr, target)
    assert counts == {3, S.MAX_OBJECTS}
    a, b = random.Random(1), random.Random(1)
    assert [S.sample_edit(a, None, "canonical") for _ in range(20)] == \
        [S.sample_edit(b, None, "canonical", min_objects=1) for _ in range(20)]
    assert {len(S.sample_edit(a, "recolor", "canonical")[0]) for _ in range(N)} >= {1, 2}
    with pytest.raises(ValueError, match="min_objects"):
        S.sample_edit(rng, None, "canonical", min_objects=S.MAX_OBJECTS)


def test_isolate_edits_name_one_object_among_several():
    """"keep only the ..." (training only): 2 to MAX_OBJECTS sources, the one object named uniquely
    (by shape alone or by colour and shape), and the rendered target scores 1.0 against it."""
    rng = random.Random("isolate")
    counts, by_shape = set(), 0
    for _ in range(N):
        src, instr, target = S.sample_isolate(rng)
        counts.add(len(src))
        assert len(target) == 1 and target[0] in src
        name = instr.removeprefix("keep only the ").split()
        o = target[0]
        assert name[-1] == o["shape"] and (len(name) == 1 or name[0] == o["color"])
        twins = [x for x in src if x["shape"] == o["shape"] and (len(name) == 1 or x["color"] == o["color"])]
        assert twins == [o], (src, instr)
        by_shape += len(name) == 1
        case = {"task": "edit", "scene": src, "instruction": instr, "expect": target}
        assert S.score_edit(case, S.detect(S.render(target, 64))) == 1.0, (src, instr, target)
    assert counts == set(range(2, S.MAX_OBJECTS + 1)) and 0 < by_shape < N
