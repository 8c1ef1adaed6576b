"""ShapesEval summaries, case files and the cross-language fixtures (split from test_shapes.py).
Run from models/: python3 -m pytest -q toolkit/tests/test_shapes_io.py"""

import base64
import io
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from toolkit import shapes as S

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "test" / "fixtures"


def test_summarize_shape():
    res = [{"task": "generate", "category": "counting", "score": 0.5},
           {"task": "generate", "category": "colors", "score": 1.0},
           {"task": "understand", "score": 1.0}, {"task": "understand", "score": 0.0}]
    out = S.summarize(res)
    assert out == {"generation": {"single_object": None, "two_object": None, "counting": 0.5, "colors": 1.0,
                                  "position": None, "color_attr": None, "region": None, "overall": 0.75},
                   "understanding": 0.5, "editing": None, "editing_forms": None, "kept": None, "repeat": None,
                   "cases": 4}
    assert list(out) == ["generation", "understanding", "editing", "editing_forms", "kept", "repeat", "cases"]
    assert S.summarize([]) == {"generation": None, "understanding": None, "editing": None, "editing_forms": None,
                               "kept": None, "repeat": None, "cases": 0}
    assert S.case_result({"task": "generate", "category": "colors"}, [1, 0, 1, 1]) == \
        {"task": "generate", "category": "colors", "score": 0.75}
    assert S.case_result({"task": "edit", "instruction": "Repeat this image."}, [1], kept=0.5) == \
        {"task": "edit", "score": 1.0, "form": "repeat", "kept": 0.5}
    assert S.case_result({"task": "edit", "instruction": "remove the red circle"}, [0]) == \
        {"task": "edit", "score": 0.0, "form": "remove"}


def test_summarize_leaves_region_out_of_overall_and_repeats_out_of_editing():
    res = [{"task": "generate", "category": "colors", "score": 0.5},
           {"task": "generate", "category": "region", "score": 1.0},
           {"task": "edit", "score": 1.0, "form": "recolor", "kept": 0.5},
           {"task": "edit", "score": 0.0, "form": "recolor"},
           {"task": "edit", "score": 0.5, "form": "move", "kept": 1.0},
           {"task": "edit", "score": 1.0, "form": "repeat", "kept": 0.0},
           {"task": "edit", "score": 0.0, "form": "repeat"}]
    out = S.summarize(res)
    assert out["generation"]["colors"] == 0.5 and out["generation"]["region"] == 1.0
    assert out["generation"]["overall"] == 0.5
    assert out["editing"] == 0.5 and out["kept"] == 0.75 and out["repeat"] == 0.5 and out["cases"] == 7
    assert out["editing_forms"] == {"recolor": 0.5, "remove": None, "add": None, "move": 0.5}
    assert S.summarize(res[1:2])["generation"]["overall"] is None  # region alone: no GenEval figure
    only = S.summarize(res[5:])
    assert (only["editing"], only["editing_forms"], only["kept"], only["repeat"]) == (None, None, None, 0.5)


def test_jsonl_validation_names_line_and_field():
    good = json.dumps({"task": "generate", "category": "counting", "prompt": "three triangles",
                       "expect": {"count": {"shape": "triangle", "n": 3}}})
    assert len(S.parse_cases(good + "\n\n" + good, "x.jsonl")) == 2
    bad = [
        ("{not json", r"x\.jsonl:2: invalid JSON"),
        ('{"task":"paint"}', r"x\.jsonl:2: case\.task: expected one of"),
        ('{"task":"generate","category":"counting","prompt":"x","expect":{"count":{"shape":"triangle","n":"3"}}}',
         r"x\.jsonl:2: case\.expect\.count\.n"),
        ('{"task":"generate","category":"position","prompt":"x","expect":{"objects":[{"shape":"circle"}],"relations":[{"a":0,"rel":"left of","b":1}]}}',
         r"case\.expect\.relations\[0\]\.b: expected an index"),
        ('{"task":"understand","scene":[{"shape":"circle","color":"red","cx":0.3,"cy":0.4}],"question":"q","answer":"a"}',
         r"case\.scene\[0\]\.s: expected a finite number"),
        ('{"task":"edit","scene":[{"shape":"circle","color":"red","cx":0.3,"cy":0.4,"s":0.1}],"instruction":"i","expect":[{"shape":"circle","color":"red","region":"middle"}]}',
         r"case\.expect\[0\]\.region"),
        ('{"task":"generate","category":"region","prompt":"x","expect":{"objects":[{"shape":"circle","regions":[]}]}}',
         r"case\.expect\.objects\[0\]\.regions: expected a non-empty list of region words"),
        ('{"task":"generate","category":"region","prompt":"x","expect":{"objects":[{"shape":"circle","regions":"left"}]}}',
         r"case\.expect\.objects\[0\]\.regions: expected a non-empty list"),
        ('{"task":"generate","category":"region","prompt":"x","expect":{"objects":[{"shape":"circle","regions":["top","middle"]}]}}',
         r"case\.expect\.objects\[0\]\.regions\[1\]"),
    ]
    for line, pat in bad:
        with pytest.raises(ValueError, match=pat):
            S.parse_cases(good + "\n" + line, "x.jsonl")


def test_cli_writes_valid_cases(capsys):
    assert S.main(["cases", "--n-per-category", "3", "--seed", "1"]) == 0
    cases = S.parse_cases(capsys.readouterr().out)
    assert len(cases) == 3 * len(S.GEN_CATEGORIES) + 3 + 3 and {c["task"] for c in cases} == {"generate", "understand", "edit"}


def test_cross_language_fixtures_are_current():
    # The TS tests pin to these files; if this fails, regenerate them:
    #   cd models && python3 -m toolkit.shapes fixtures --out ../test/fixtures
    cases, scored = S.build_fixtures(0)
    assert (FIXTURES / "shapes-cases.jsonl").read_text() == S.dumps_cases(cases)
    saved = json.loads((FIXTURES / "shapes-scored.json").read_text())
    assert len(saved["items"]) == len(scored["items"])
    for a, b in zip(saved["items"], scored["items"]):
        pa = np.array(Image.open(io.BytesIO(base64.b64decode(a["png"]))).convert("RGB"))
        pb = np.array(Image.open(io.BytesIO(base64.b64decode(b["png"]))).convert("RGB"))
        assert (pa == pb).all() and a["detected"] == b["detected"] and a["scores"] == b["scores"], a["name"]
        assert a["kept"] == b["kept"], a["name"]
    assert saved["answers"] == scored["answers"] and saved["summaries"] == scored["summaries"]
    assert saved["samples"] == scored["samples"]
    # The pin covers the new figures: region cases, repeats, partial kept, every summary key.
    assert {c.get("category") for c in cases} >= set(S.GEN_CATEGORIES)
    assert {S.edit_form(c) for c in cases if c["task"] == "edit"} == set(S.EDIT_FORMS) | {"repeat"}
    assert {v for it in saved["items"] for _, v in it["kept"]} >= {None, 0.0, 0.5, 1.0}
    full = saved["summaries"][0]["summary"]
    assert all(full[k] is not None for k in ("generation", "editing", "editing_forms", "kept", "repeat"))
    # Each target render scores 1 under its own case (the pin would be vacuous otherwise).
    for it in saved["items"]:
        if it["name"].endswith("-target"):
            assert dict(it["scores"])[int(it["name"][4:].split("-")[0])] == 1.0
