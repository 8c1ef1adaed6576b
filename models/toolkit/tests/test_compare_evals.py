"""toolkit.compare_evals: the paired comparison that decides whether a run's weights ship."""

import json
import math

from toolkit.compare_evals import compare, flatten, main, sample_sizes

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
