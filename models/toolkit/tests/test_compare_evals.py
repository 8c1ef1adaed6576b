"""toolkit.compare_evals: the paired comparison that decides whether a run's weights ship."""

import json
import math

import pytest

from toolkit.compare_evals import compare, flatten, main, means, paired, pooled, sample_sizes

BEFORE = {"generation": {"counting": 0.44, "colors": 0.99, "region": 0.9, "overall": 0.715}, "understanding": 0.9,
          "editing": 0.45, "editing_forms": {"recolor": 0.55, "move": 0.35}, "kept": 0.82, "repeat": 0.96,
          "cases": 1050}
AFTER = {"generation": {"counting": 0.56, "colors": 0.99, "region": 0.9, "overall": 0.775}, "understanding": 0.9,
         "editing": 0.46, "editing_forms": {"recolor": 0.57, "move": 0.35}, "kept": 0.75, "repeat": 0.97,
         "cases": 1050}


def test_flatten_names_nested_scores_and_drops_counts_and_nulls():
    flat = flatten({"generation": {"overall": 0.5}, "editing": None, "cases": 7, "repeat": 1})
    assert flat == {"generation.overall": 0.5, "repeat": 1.0}


def test_sizes_come_from_the_evaluation_flags():
    s = sample_sizes(50, 4, 300, 300, 100, categories=7, forms=4)
    assert s["generation.overall"] == 1400 and s["generation.*"] == 200
    assert s["editing_forms.*"] == 75 and s["understanding"] == 300 and s["repeat"] == 100


def test_a_large_change_is_beyond_noise_and_a_small_one_is_not():
    sizes = sample_sizes(50, 4, 300, 300, 100, categories=2, forms=2)
    rows = compare(BEFORE, AFTER, sizes)
    count = rows["generation.counting"]
    assert math.isclose(count["delta"], 0.12)
    assert math.isclose(count["se"], math.sqrt((0.44 * 0.56 + 0.56 * 0.44) / 200), abs_tol=1e-4)
    assert count["beyond_2se"] is True
    assert rows["editing"]["beyond_2se"] is False        # +0.01 on 300 edits
    assert rows["generation.colors"]["delta"] == 0.0
    assert "se" not in rows["kept"] and math.isclose(rows["kept"]["delta"], -0.07)


def test_cli_prints_one_json_object(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(BEFORE))
    b.write_text(json.dumps(AFTER))
    main([str(a), str(b), "--n", "30"])
    out = json.loads(capsys.readouterr().out)
    assert set(out) == set(flatten(BEFORE))
    assert math.isclose(out["generation.overall"]["se"],
                        math.sqrt((0.715 * 0.285 + 0.775 * 0.225) / 240), abs_tol=1e-4)


def _cases(scores):
    rows = [{"task": "generate", "score": s, "category": c} for c, s in scores["gen"]]
    rows += [{"task": "understand", "score": s} for s in scores["und"]]
    rows += [{"task": "edit", "score": s, "form": f, "kept": k} for f, s, k in scores["edit"]]
    return [{"case": i, **r} for i, r in enumerate(rows)]


def test_paired_error_is_the_spread_of_case_differences(tmp_path, capsys):
    before = _cases({"gen": [("counting", 0.5), ("counting", 1.0), ("colors", 1.0), ("region", 0.0)],
                     "und": [1, 0], "edit": [("move", 0, 0.5), ("move", 1, 1.0), ("repeat", 1, 1.0)]})
    after = _cases({"gen": [("counting", 0.75), ("counting", 1.0), ("colors", 1.0), ("region", 1.0)],
                    "und": [1, 1], "edit": [("move", 1, 1.0), ("move", 1, 1.0), ("repeat", 0, 1.0)]})
    pairs = paired(before, after)
    # counting differences 0.25 and 0: mean 0.125, sd 0.1768, se 0.125
    assert math.isclose(pairs["generation.counting"]["delta"], 0.125)
    assert math.isclose(pairs["generation.counting"]["se"], 0.125)
    # overall: counting and colours (region left out), errors added in quadrature
    assert math.isclose(pairs["generation.overall"]["delta"], 0.0625)
    assert math.isclose(pairs["generation.overall"]["se"], 0.0625)
    assert pairs["editing"]["delta"] == 0.5 and pairs["editing_forms.move"]["delta"] == 0.5
    assert pairs["repeat"] == {"delta": -1.0, "se": 0.0} and math.isclose(pairs["kept"]["delta"], 0.25)
    assert math.isclose(pairs["understanding"]["delta"], 0.5)
    # A case that agrees in both runs adds nothing to the paired error; the unpaired one counts it.
    files = {}
    for name, rows, summary in (("a", before, BEFORE), ("b", after, AFTER)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (tmp_path / f"{name}.json").write_text(json.dumps(summary))
        files[name] = str(tmp_path / name)
    main([files["a"] + ".json", files["b"] + ".json", "--cases", files["a"] + ".jsonl", files["b"] + ".jsonl"])
    out = json.loads(capsys.readouterr().out)
    assert math.isclose(out["generation.counting"]["paired_se"], 0.125)
    assert out["editing"]["paired_beyond_2se"] is False and "paired_se" in out["kept"]


def test_paired_refuses_different_cases():
    a = _cases({"gen": [("counting", 1.0)], "und": [], "edit": []})
    b = _cases({"gen": [("colors", 1.0)], "und": [], "edit": []})
    with pytest.raises(ValueError, match=r"line 1: expected the same case"):
        paired(a, b)
    with pytest.raises(ValueError, match=r"expected the same cases in both files, got 1 and 2"):
        paired(a, a + a)


def _write(tmp_path, name, rows, summary=None):
    (tmp_path / f"{name}.cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if summary is not None:
        (tmp_path / f"{name}.json").write_text(json.dumps(summary))
    return str(tmp_path / name)


SET1 = ({"gen": [("counting", 0.5), ("colors", 1.0)], "und": [1, 0], "edit": [("move", 0, 0.5), ("recolor", 1, 1.0)]},
        {"gen": [("counting", 1.0), ("colors", 1.0)], "und": [1, 1], "edit": [("move", 1, 1.0), ("recolor", 1, 1.0)]})
SET2 = ({"gen": [("counting", 0.0)], "und": [1], "edit": [("move", 1, 1.0), ("repeat", 1, 0.0)]},
        {"gen": [("counting", 0.25)], "und": [0], "edit": [("move", 0, 0.0), ("repeat", 1, 0.0)]})


def test_means_give_the_summary_scores_from_the_cases():
    m = means(_cases(SET1[0]) + _cases(SET2[0]))
    assert math.isclose(m["generation.counting"], 0.25) and m["generation.colors"] == 1.0
    assert math.isclose(m["generation.overall"], 0.625)      # the mean of the categories' means
    assert math.isclose(m["understanding"], 2 / 3) and math.isclose(m["editing"], 2 / 3)
    assert m["editing_forms.move"] == 0.5 and m["repeat"] == 1.0
    assert math.isclose(m["kept"], 2.5 / 3)                   # real edits only, not the repeat's


def test_the_per_case_files_beside_the_summaries_are_paired_without_asking(tmp_path, capsys):
    a = _write(tmp_path, "a", _cases(SET1[0]), BEFORE)
    b = _write(tmp_path, "b", _cases(SET1[1]), AFTER)
    main([a + ".json", b + ".json"])
    out = json.loads(capsys.readouterr().out)
    assert "paired_se" in out["editing"] and "paired_se" in out["understanding"]
    (tmp_path / "b.cases.jsonl").unlink()                     # one side without: the unpaired bound only
    main([a + ".json", b + ".json"])
    out = json.loads(capsys.readouterr().out)
    assert "paired_se" not in out["editing"] and "se" in out["editing"]


def test_pool_adds_case_sets_case_by_case(tmp_path, capsys):
    sets = [(_cases(x), _cases(y)) for x, y in (SET1, SET2)]
    rows = pooled(sets)
    whole = paired(sets[0][0] + sets[1][0], sets[0][1] + sets[1][1])
    assert rows["editing"]["before"] == round(2 / 3, 4) and rows["editing"]["after"] == round(2 / 3, 4)
    assert rows["editing"]["delta"] == 0.0 and rows["editing"]["paired_se"] == round(whole["editing"]["se"], 4)
    assert rows["generation.counting"]["delta"] == round(whole["generation.counting"]["delta"], 4) == 0.375
    files = [_write(tmp_path, f"{n}{i}", r) + ".cases.jsonl" for i, pair in enumerate(sets) for n, r in zip("ba", pair)]
    main(["--pool", *files])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(rows))
    with pytest.raises(SystemExit):
        main(["--pool", *files[:3]])
    assert "in pairs" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"--pool pair 2: expected the same cases in both files, got 4 and 6"):
        pooled([sets[0], (sets[1][0], sets[0][0])])
