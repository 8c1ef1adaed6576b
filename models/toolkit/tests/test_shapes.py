"""ShapesWorld / ShapesEval tests. Run from models/: python3 -m pytest -q toolkit/tests/test_shapes.py"""

import json
import pathlib
import random

import numpy as np
import pytest
from PIL import Image

from toolkit import shapes as S

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "test" / "fixtures"
GOLDEN = FIXTURES / "shapes-golden"


def obj(shape, color, cx, cy, s=0.1):
    return {"shape": shape, "color": color, "cx": cx, "cy": cy, "s": s}


def matches_scene(detected, scene, tol=0.02):
    """Detected objects equal the scene: one to one by shape and colour, centre and size close."""
    if len(detected) != len(scene):
        return False
    left = list(detected)
    for o in scene:
        hit = [d for d in left if d["shape"] == o["shape"] and d["color"] == o["color"]
               and abs(d["cx"] - o["cx"]) <= tol and abs(d["cy"] - o["cy"]) <= tol
               and abs(d["s"] - o["s"]) <= tol]
        if not hit:
            return False
        left.remove(hit[0])
    return True


# --- rendering ----------------------------------------------------------------------------------


def test_golden_renders_match_every_pixel():
    index = json.loads((GOLDEN / "index.json").read_text())
    assert len(index) == 36 and {e["size"] for e in index} == {32, 64, 128}
    for e in index:
        want = np.array(Image.open(GOLDEN / e["file"]).convert("RGB"))
        got = S.render(e["scene"], e["size"])
        assert got.shape == want.shape, e["file"]
        diff = int((got != want).any(-1).sum())
        assert diff == 0, f"{e['file']}: {diff} pixels differ"


def test_rasterisation_rule_on_hand_checked_pixels():
    # 8x8 canvas, centre (4,4), r = 2: the square covers pixel centres 2.5..5.5 (x = 2..5).
    img = S.render([obj("square", "red", 0.5, 0.5, 0.25)], 8)
    assert (img[2:6, 2:6] == S.PALETTE["red"]).all()
    assert int((img != 255).any(-1).sum()) == 16
    tri = S.shape_mask("triangle", 0.5, 0.5, 0.25, 8)
    # Row y=2 (dy=-1.5): |dx| <= 0.25, no pixel centre qualifies; row y=5 (dy=1.5): |dx| <= 1.75.
    assert tri[2].sum() == 0 and list(np.flatnonzero(tri[5])) == [2, 3, 4, 5]
    with pytest.raises(ValueError, match=r"scene\[0\]\.color"):
        S.render([obj("square", "pink", 0.5, 0.5)], 64)
    with pytest.raises(ValueError, match=r"scene\[0\]\.shape"):
        S.render([obj("hexagon", "red", 0.5, 0.5)], 64)


# --- words --------------------------------------------------------------------------------------


def test_regions_and_relations():
    assert S.regions_of(obj("circle", "red", 0.2, 0.5)) == ["left"]
    assert S.regions_of(obj("circle", "red", 0.8, 0.9)) == ["right", "bottom"]
    assert S.regions_of(obj("circle", "red", 0.5, 0.1)) == ["top"]
    assert S.regions_of(obj("circle", "red", 0.5, 0.5)) == ["center"]
    assert S.region_of(obj("circle", "red", 0.1, 0.1)) is None  # left and top: ambiguous
    a, b = obj("circle", "red", 0.2, 0.5, 0.1), obj("square", "blue", 0.35, 0.5, 0.1)
    assert S.relation_holds(a, "left of", b)  # 0.2 < 0.35 - 0.1
    assert S.relation_holds(b, "right of", a)  # 0.35 > 0.2 + 0.1 (B's own half-size)
    a["cx"] = 0.26  # 0.26 < 0.25 fails: too close to be "left of"
    assert not S.relation_holds(a, "left of", b)
    up, down = obj("circle", "red", 0.5, 0.2, 0.1), obj("square", "blue", 0.5, 0.6, 0.1)
    assert S.relation_holds(up, "above", down) and S.relation_holds(down, "below", up)
    assert not S.relation_holds(up, "below", down)
    with pytest.raises(ValueError):
        S.relation_holds(up, "near", down)


def test_sampled_scenes_respect_the_rules():
    rng = random.Random(5)
    for _ in range(300):
        scene = S.sample_scene(rng)
        assert 1 <= len(scene) <= 4
        for i, o in enumerate(scene):
            assert S.S_MIN <= o["s"] <= S.S_MAX
            assert S.fits(o, scene[:i] + scene[i + 1:])


# --- detector -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size,n", [(64, 500), (128, 150)])
def test_detector_is_exact_on_random_renders(size, n):
    rng = random.Random(size)
    bad = [sc for sc in (S.sample_scene(rng) for _ in range(n)) if not matches_scene(S.detect(S.render(sc, size)), sc)]
    assert bad == [], f"{len(bad)}/{n} scenes misdetected at {size}px, first: {bad[:1]}"


def test_detector_smallest_shapes_at_every_subpixel_offset():
    # s = 0.09 at 64 px is 11.5 px across; sweep the centre over one pixel in 1/8 px steps.
    for shape in S.SHAPES:
        for k in range(64):
            cx, cy = 0.5 + (k % 8) / 8 / 64, 0.5 + (k // 8) / 8 / 64
            sc = [obj(shape, "orange", cx, cy, 0.09)]
            assert matches_scene(S.detect(S.render(sc, 64)), sc), (shape, cx, cy)


def test_detector_at_32px_is_mostly_right():
    # At 32 px a 0.02 gap is under a pixel (same-colour objects can touch) and an s = 0.09
    # circle can rasterise as a full 5x5 square, so 32 px cannot be exact (docs/shapesworld.md section 1).
    rng = random.Random(32)
    scenes = [S.sample_scene(rng) for _ in range(300)]
    ok = sum(matches_scene(S.detect(S.render(sc, 32)), sc, tol=0.04) for sc in scenes)
    assert ok / len(scenes) >= 0.97, ok


def test_detector_ignores_specks_and_reports_blobs():
    img = S.render([obj("circle", "blue", 0.3, 0.3, 0.12)], 64)
    img[60, 60] = S.PALETTE["red"]  # 1 px speck
    img[50:53, 5:8] = S.PALETTE["green"]  # 9 px: under MIN_COMPONENT
    img[0:3, 40:63] = (0, 0, 0)  # black: far from every palette colour
    det = S.detect(img)
    assert [(d["shape"], d["color"]) for d in det] == [("circle", "blue")]
    bar = np.full((64, 64, 3), 255, np.uint8)
    bar[10:14, 5:40] = S.PALETTE["red"]
    assert [d["shape"] for d in S.detect(bar)] == ["unknown"]
    ell = np.full((64, 64, 3), 255, np.uint8)
    ell[20:40, 20:40] = S.PALETTE["green"]
    ell[20:30, 30:40] = 255  # an L: 0.75 of its box, no shape fits it well
    assert [d["shape"] for d in S.detect(ell)] == ["unknown"]
    tinted = np.clip(S.render([obj("triangle", "purple", 0.6, 0.6, 0.1)], 64).astype(int) - 20, 0, 255)
    assert [(d["shape"], d["color"]) for d in S.detect(tinted.astype(np.uint8))] == [("triangle", "purple")]
    with pytest.raises(ValueError, match="square RGB"):
        S.detect(np.zeros((64, 32, 3), np.uint8))


# --- cases and scoring --------------------------------------------------------------------------


def test_every_generated_case_is_valid_and_its_target_scores_one():
    pairs = S.generate_cases_with_targets(12, seed=3)
    cats = {c.get("category") for c, _ in pairs if c["task"] == "generate"}
    assert cats == set(S.GEN_CATEGORIES)
    for c, target in pairs:
        S.validate_case(c)
        if c["task"] == "understand":
            assert S.score_understand(c, c["answer"]) == 1.0
            continue
        det = S.detect(S.render(target, 64))
        assert S.score_case(c, det) == 1.0, (c, target, det)
        if c["task"] == "edit":  # doing nothing is never a correct edit
            assert S.score_edit(c, S.detect(S.render(c["scene"], 64))) == 0.0, c


def test_generate_prompts_follow_the_spec_forms():
    rng = random.Random(1)
    forms = {
        "single_object": r"a (circle|square|triangle)",
        "two_object": r"a (\w+) and a (\w+)",
        "counting": r"(two|three|four) (circle|square|triangle)s",
        "colors": r"a (red|green|blue|yellow|purple|orange) (circle|square|triangle)",
        "position": r"a (\w+) (left of|right of|above|below) a (\w+)",
        "color_attr": r"a (\w+) (\w+) and a (\w+) (\w+)",
        "region": r"a (red|green|blue|yellow|purple|orange) (circle|square|triangle) (%s)" % "|".join(S.REGION_PHRASES),
    }
    import re

    for cat, pat in forms.items():
        for _ in range(20):
            c, _ = S._gen_case(rng, cat)
            assert re.fullmatch(pat, c["prompt"]), c["prompt"]
    assert set(S.GEN_CATEGORIES) == set(forms) and S.GEN_CATEGORIES[:6] == S.GENEVAL_CATEGORIES


def test_region_prompts_expect_their_phrase_and_every_phrase_comes_up():
    rng = random.Random(8)
    seen = set()
    for _ in range(120):
        c, target = S._gen_case(rng, "region")
        phrase = next(p for p in S.REGION_PHRASES if c["prompt"].endswith(" " + p))
        seen.add(phrase)
        _, color, shape = c["prompt"].split()[:3]
        assert c["expect"] == {"objects": [{"shape": shape, "color": color, "regions": list(S.REGION_PHRASES[phrase][0])}]}
        assert set(S.REGION_PHRASES[phrase][0]) <= set(S.regions_of(target[0]))
    assert seen == set(S.REGION_PHRASES)


def test_region_scoring_needs_every_named_region():
    case = {"task": "generate", "category": "region", "prompt": "a red circle in the top left",
            "expect": {"objects": [{"shape": "circle", "color": "red", "regions": ["top", "left"]}]}}
    assert S.score_generate(case, S.detect(S.render([obj("circle", "red", 0.2, 0.2)], 64))) == 1.0
    assert S.score_generate(case, [obj("circle", "red", 0.5, 0.2)]) == 0.0  # top, not left
    assert S.score_generate(case, [obj("circle", "red", 0.2, 0.5)]) == 0.0  # left, not top
    assert S.score_generate(case, [obj("circle", "blue", 0.2, 0.2)]) == 0.0  # right place, wrong colour
    # a misplaced red circle does not hide a well placed one; extra objects are allowed
    assert S.score_generate(case, [obj("circle", "red", 0.8, 0.8), obj("circle", "red", 0.2, 0.2)]) == 1.0


def test_wrong_generation_scores_zero():
    case = {"task": "generate", "category": "position", "prompt": "a circle left of a square",
            "expect": {"objects": [{"shape": "circle"}, {"shape": "square"}],
                       "relations": [{"a": 0, "rel": "left of", "b": 1}]}}
    good = [obj("circle", "red", 0.2, 0.5), obj("square", "blue", 0.7, 0.5)]
    swapped = [obj("circle", "red", 0.7, 0.5), obj("square", "blue", 0.2, 0.5)]
    assert S.score_generate(case, S.detect(S.render(good, 64))) == 1.0
    assert S.score_generate(case, S.detect(S.render(swapped, 64))) == 0.0
    count = {"task": "generate", "category": "counting", "prompt": "two squares",
             "expect": {"count": {"shape": "square", "n": 2}}}
    three = [obj("square", "red", 0.2, 0.2), obj("square", "red", 0.7, 0.2), obj("square", "blue", 0.5, 0.7)]
    assert S.score_generate(count, three) == 0.0 and S.score_generate(count, three[:2]) == 1.0
    attr = {"task": "generate", "category": "color_attr", "prompt": "a red circle and a blue square",
            "expect": {"objects": [{"shape": "circle", "color": "red"}, {"shape": "square", "color": "blue"}]}}
    assert S.score_generate(attr, [obj("circle", "blue", 0.2, 0.2), obj("square", "red", 0.7, 0.7)]) == 0.0
    assert S.score_generate(attr, [obj("circle", "red", 0.2, 0.2), obj("square", "blue", 0.7, 0.7)]) == 1.0
    # one object cannot serve two expected ones
    two = {"task": "generate", "category": "two_object", "prompt": "a circle and a circle",
           "expect": {"objects": [{"shape": "circle"}, {"shape": "circle"}]}}
    assert S.score_generate(two, [obj("circle", "red", 0.2, 0.2)]) == 0.0


def test_understanding_answers_are_right_about_their_scene():
    rng = random.Random(11)
    for _ in range(200):
        scene, q, a = S.sample_understanding(rng)
        words = q.rstrip("?").split()
        if q.startswith("what color is the"):
            assert [o["color"] for o in scene if o["shape"] == words[-1]] == [a]
        elif q.startswith("how many"):
            assert S.COUNT_WORDS[sum(o["shape"] + "s" == words[2] for o in scene) - 1] == a
        elif q.startswith("what shape"):
            assert [o["shape"] for o in scene if o["color"] == words[4]] == [a]
        elif q.startswith("is there"):
            present = any(o["color"] == words[3] and o["shape"] == words[4] for o in scene)
            assert a == ("yes" if present else "no")
        else:
            hit = [o for o in scene if o["color"] == words[3] and o["shape"] == words[4]]
            assert len(hit) == 1 and S.regions_of(hit[0]) == [a]


def test_understanding_scoring_normalises():
    c = {"task": "understand", "scene": [obj("circle", "red", 0.5, 0.5)], "question": "how many circles are there?", "answer": "two"}
    assert [S.score_understand(c, a) for a in ("two", "Two.", " TWO ", "2", "3", "two..", "twoo")] == [1, 1, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError):
        S.score_understand(c, 2)


def test_edit_scoring_tolerance_and_regions():
    case = {"task": "edit", "scene": [obj("square", "blue", 0.6, 0.3, 0.11)], "instruction": "add a red circle on the left",
            "expect": [obj("square", "blue", 0.6, 0.3, 0.11), {"shape": "circle", "color": "red", "region": "left"}]}
    ok = [obj("square", "blue", 0.65, 0.35, 0.11), obj("circle", "red", 0.2, 0.8)]
    assert S.score_edit(case, ok) == 1.0
    assert S.score_edit(case, [ok[0], obj("circle", "red", 0.5, 0.8)]) == 0.0  # not on the left
    assert S.score_edit(case, [obj("square", "blue", 0.7, 0.3), ok[1]]) == 0.0  # drifted 0.1 > 0.08
    assert S.score_edit(case, ok + [obj("triangle", "red", 0.8, 0.8)]) == 0.0  # extra object
    assert S.score_edit(case, [obj("square", "green", 0.6, 0.3), ok[1]]) == 0.0  # wrong colour


def test_score_kept_counts_untouched_objects_one_to_one():
    scene = [obj("square", "blue", 0.6, 0.3), obj("circle", "red", 0.2, 0.7), obj("circle", "red", 0.8, 0.8)]
    recolor = {"task": "edit", "scene": scene, "instruction": "make the square green",
               "expect": [obj("square", "green", 0.6, 0.3)] + [dict(o) for o in scene[1:]]}
    assert S.score_kept(recolor, scene) == 1.0  # the edit itself is not kept's business
    assert S.score_kept(recolor, [obj("circle", "red", 0.25, 0.75)]) == 0.5  # drift 0.05 <= 0.08
    assert S.score_kept(recolor, [obj("circle", "red", 0.3, 0.7), obj("circle", "blue", 0.8, 0.8)]) == 0.0
    assert S.score_kept(recolor, []) == 0.0
    pair = [obj("circle", "red", 0.2, 0.5, 0.05), obj("circle", "red", 0.32, 0.5, 0.05)]
    remove = {"task": "edit", "scene": pair + scene[:1], "instruction": "remove the blue square", "expect": pair}
    assert S.score_kept(remove, [obj("circle", "red", 0.26, 0.5, 0.05)]) == 0.5  # within reach of both: once
    move = {"task": "edit", "scene": scene[:1], "instruction": "move the blue square to the left",
            "expect": [{"shape": "square", "color": "blue", "region": "left"}]}
    assert S.score_kept(move, [obj("square", "blue", 0.2, 0.5)]) is None  # nothing left untouched
    rng = random.Random(2)
    for _ in range(10):  # a repeat keeps everything; a real edit's own target keeps what it should
        c, target = S._repeat_case(rng)
        assert c["instruction"] == S.REPEAT_INSTRUCTION and target == c["scene"] == c["expect"]
        det = S.detect(S.render(c["scene"], 64))
        assert S.score_edit(c, det) == 1.0 and S.score_kept(c, det) == 1.0
        for form in S.EDIT_FORMS:
            c, target = S._edit_case(rng, form)
            assert S.score_kept(c, S.detect(S.render(target, 64))) in (None, 1.0)


def test_edit_form_reads_the_verb_and_spots_repeats():
    def form(instruction):
        return S.edit_form({"task": "edit", "instruction": instruction})

    assert [form(i) for i in ("make the square green", "Remove the red circle", "add a red circle on the left",
                              "move it to the top")] == ["recolor", "remove", "add", "move"]
    assert [form(i) for i in ("Repeat this image.", " repeat this image ", "REPEAT THIS IMAGE..",
                              "repeat this image please")] == ["repeat", "repeat", "repeat", "other"]
    assert [form(i) for i in ("", "   ", "paint the square", "make, the square")] == ["other"] * 4
    rng = random.Random(4)
    for f in S.EDIT_FORMS:
        assert S.edit_form(S._edit_case(rng, f)[0]) == f


def test_samplers_for_training():
    rng = random.Random(0)
    for cat in S.GEN_CATEGORIES:
        prompt, scene = S.sample_generation(rng, cat)
        assert isinstance(prompt, str) and 1 <= len(scene) <= 4
    for form in S.EDIT_FORMS:
        src, instr, tgt = S.sample_edit(rng, form)
        assert instr.split()[0] in ("make", "remove", "add", "move") and src != tgt
        assert all("cx" in o for o in tgt)  # concrete, renderable target
    for form in S.UNDERSTAND_FORMS:
        scene, q, a = S.sample_understanding(rng, form)
        assert q.endswith("?") and a
