"""toolkit.locate: the questions it asks of an edit's source, and its tables."""

import random

from toolkit import shapes as S
from toolkit.locate import by_key, question_form, where_question
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
