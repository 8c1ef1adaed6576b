"""toolkit.locate: the questions it asks of an edit's source, and its tables."""

import random

from toolkit import shapes as S
import numpy as np

from toolkit.locate import by_key, object_slots, question_form, slot_probe, top_k_hit, where_question
from toolkit.shapes.cases import _edit_case
from toolkit.shapes.world import UNDERSTAND_FORMS, region_of


def test_every_question_form_is_recognised():
    rng = random.Random(0)
    seen = {question_form(S._und_case(rng, f)["question"]) for f in UNDERSTAND_FORMS for _ in range(5)}
    assert seen == set(UNDERSTAND_FORMS)
    assert question_form("draw me a cat") == "other"


def test_the_where_question_is_about_the_object_the_edit_touches():
    asked = 0
    for seed in range(200):
        form = ("recolor", "remove", "add", "move")[seed % 4]
        case, _ = _edit_case(random.Random(seed), form)
        q = where_question(case)
        touched = [o for o in case["scene"] if o not in case["expect"]]
        if form == "add" or len(case["scene"]) < 2:
            assert q is None
            continue
        if q is None:
            assert region_of(touched[0]) is None
            continue
        asked += 1
        o = touched[0]
        assert q["question"] == f"where is the {o['color']} {o['shape']}?" and q["scene"] is case["scene"]
        assert S.score_understand(q, region_of(o)) == 1.0
    assert asked > 30


def test_tables_are_means_per_key():
    assert by_key([("a", 1.0), ("b", 0.0), ("a", 0.0)]) == {"a": {"n": 2, "score": 0.5}, "b": {"n": 1, "score": 0.0}}


def test_object_slots_are_the_patches_the_object_covers():
    o = {"shape": "square", "color": "red", "cx": 0.25, "cy": 0.25, "s": 0.12}
    slots = object_slots(o, 64, 8).reshape(8, 8)
    assert slots[2, 2] and not slots[6, 6] and slots.sum() < 16
    assert slots[:4, :4].sum() == slots.sum()  # all in the top-left quarter


def test_top_k_hit_counts_the_labelled_slots_ranked_first():
    y = np.array([0, 1, 1, 0], bool)
    assert top_k_hit(np.array([0.0, 0.9, 0.8, 0.1]), y) == 1.0
    assert top_k_hit(np.array([0.9, 0.8, 0.1, 0.0]), y) == 0.5


def test_slot_probe_runs_on_random_weights(tiny, tok):
    """Random weights: the report's shape (both prompts, rows per object count, shares in [0, 1])."""
    out = slot_probe(tiny, tok, n=16, seed=1, batch=8)
    assert set(out) == {"instruction", "repeat"}
    for rows in out.values():
        assert rows and set(rows) <= {"top_k_hit/2", "top_k_hit/3", "top_k_hit/4"}
        assert all(0.0 <= r["score"] <= 1.0 for r in rows.values())
