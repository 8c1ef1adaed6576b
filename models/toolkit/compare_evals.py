"""Paired comparison of two ShapesEval results (docs/shapesworld.md section 5 JSON).

    python -m toolkit.compare_evals BEFORE.json AFTER.json [--n 50 --seeds 4 --questions 300 --edits 300 --repeats 100]

Prints one JSON object: for every score both figures, the change and a rough standard error of the
change, so a run is shipped only when it moves beyond noise (issue #17, item 7). The two files must
come from the same cases and draws (the same --case-seed and counts); the error is the binomial one
of two independent proportions, an upper bound for paired cases, which share their prompts. The
counts behind each score are not in the JSON, so they come from the evaluation's own flags; `kept`
counts objects, whose number the JSON does not give, so it has no error.
"""
from __future__ import annotations

import argparse
import json
import math


def flatten(result: dict, prefix: str = "") -> dict[str, float]:
    """{"generation": {"overall": .7}} -> {"generation.overall": .7}; nulls and counts left out."""
    out: dict[str, float] = {}
    for key, value in result.items():
        name = prefix + key
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key != "cases":
            out[name] = float(value)
    return out


def sample_sizes(n: int, seeds: int, questions: int, edits: int, repeats: int,
                 categories: int, forms: int) -> dict[str, int]:
    """How many trials each score averages, from the evaluation's flags."""
    per_category = n * seeds
    return {
        "generation.overall": per_category * categories,
        "understanding": questions,
        "editing": edits,
        "repeat": repeats,
        "generation.*": per_category,
        "editing_forms.*": max(edits // forms, 1),
    }


def trials(name: str, sizes: dict[str, int]) -> int | None:
    if name in sizes:
        return sizes[name]
    group = name.split(".")[0] + ".*"
    return sizes.get(group)


def compare(before: dict, after: dict, sizes: dict[str, int]) -> dict[str, dict]:
    a, b = flatten(before), flatten(after)
    out: dict[str, dict] = {}
    for name in a:
        if name not in b:
            continue
        row = {"before": round(a[name], 4), "after": round(b[name], 4), "delta": round(b[name] - a[name], 4)}
        n = trials(name, sizes)
        if n and name != "kept":
            se = math.sqrt((a[name] * (1 - a[name]) + b[name] * (1 - b[name])) / n)
            row["se"] = round(se, 4)
            row["beyond_2se"] = abs(row["delta"]) > 2 * se
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--n", type=int, default=50, help="prompts per generation category")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--questions", type=int, default=300)
    p.add_argument("--edits", type=int, default=300)
    p.add_argument("--repeats", type=int, default=100)
    args = p.parse_args(argv)
    with open(args.before) as f:
        before = json.load(f)
    with open(args.after) as f:
        after = json.load(f)
    # "overall" averages the six GenEval-style categories; "region" is reported beside it, not in it
    categories = len([k for k in (before.get("generation") or {}) if k not in ("overall", "region")]) or 1
    forms = len(before.get("editing_forms") or {}) or 1
    sizes = sample_sizes(args.n, args.seeds, args.questions, args.edits, args.repeats, categories, forms)
    print(json.dumps(compare(before, after, sizes), indent=1))


if __name__ == "__main__":
    main()
