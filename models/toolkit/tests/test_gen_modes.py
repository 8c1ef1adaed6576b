"""toolkit.gen_modes: the failure modes of a generated picture, from the detections of rendered scenes."""

import random

from toolkit import shapes as S
from toolkit.gen_modes import MODES, classify, key, summarize


def _det(scene):
    return S.detect(S.render(scene, 64))


def test_a_target_scene_is_found_and_scores():
    for cat in S.GEN_CATEGORIES:
        rng = random.Random(cat)
        for _ in range(4):
            case, scene = S._gen_case(rng, cat, "canonical", "shared")
            m = classify(case, _det(scene))
            assert set(m) == set(MODES)
            assert m["score"] and m["found"], (case, m)
            assert not (m["extra"] or m["missing"] or m["blob"] or m["mixed"]), (case, m)


def test_a_count_torn_into_blobs_is_extra_and_blob_not_found():
    case = {"task": "generate", "category": "counting", "prompt": "three circles",
            "expect": {"count": {"shape": "circle", "n": 3}}}
    whole = [{"shape": "circle", "color": c, "cx": x, "cy": 0.5, "s": 0.12}
             for c, x in (("red", 0.2), ("red", 0.5), ("blue", 0.8))]
    m = classify(case, whole)
    assert m["score"] and m["found"] and m["mixed"] and not (m["blob"] or m["extra"])
    torn = whole[:2] + [{"shape": "unknown", "color": "blue", "cx": 0.78, "cy": 0.5, "s": 0.06},
                        {"shape": "unknown", "color": "green", "cx": 0.84, "cy": 0.5, "s": 0.06}]
    m = classify(case, torn)
    assert m["blob"] and m["extra"] and not (m["score"] or m["found"] or m["missing"])
    assert key(case) == "counting_3"


def test_named_colours_are_never_mixed_and_summary_shares():
    case = {"task": "generate", "category": "color_attr", "prompt": "a red circle and a blue square",
            "expect": {"objects": [{"shape": "circle", "color": "red"}, {"shape": "square", "color": "blue"}]}}
    det = [{"shape": "circle", "color": "red", "cx": 0.3, "cy": 0.5, "s": 0.14}]
    m = classify(case, det)
    assert m["missing"] and not (m["mixed"] or m["found"] or m["score"])
    rep = summarize([("color_attr", m, 1), ("color_attr", {**m, "missing": False}, 2)])
    assert rep["color_attr"]["n"] == 2 and rep["color_attr"]["missing"] == 0.5 and rep["color_attr"]["objects"] == 1.5
