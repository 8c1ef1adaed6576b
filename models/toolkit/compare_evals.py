"""Paired comparison of two ShapesEval results (docs/shapesworld.md section 5 JSON).

    python -m toolkit.compare_evals BEFORE.json AFTER.json [--n 50 --seeds 4 --questions 300 --edits 300 --repeats 100]

Prints one JSON object: for every score both figures, the change and a rough standard error of the
change, so a run is shipped only when it moves beyond noise (issue #17, item 7). The two files must
come from the same cases and draws (the same --case-seed and counts); the error is the binomial one
of two independent proportions, an upper bound for paired cases, which share their prompts. The
counts behind each score are not in the JSON, so they come from the evaluation's own flags; `kept`
counts objects, whose number the JSON does not give, so it has no error.

    ... --cases BEFORE.cases.jsonl AFTER.cases.jsonl

adds the paired error from the per-case results (`npx unipic eval --results`): the spread of the
case-by-case differences, which leaves out what two weights share on the same case (an easy case
passes under both), so `paired_se` is the error to decide on when both files exist.
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


def read_cases(path: str) -> list[dict]:
    """Per-case results, one JSON object a line, as `npx unipic eval --results` writes them."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _key(r: dict) -> tuple:
    return r.get("task"), r.get("category"), r.get("form")


def _mean_se(d: list[float]) -> tuple[float, float]:
    n = len(d)
    m = sum(d) / n
    var = sum((x - m) ** 2 for x in d) / (n - 1) if n > 1 else 0.0
    return m, math.sqrt(var / n)


def paired(before: list[dict], after: list[dict]) -> dict[str, dict]:
    """{score name: {"delta", "se"}} from the case-by-case differences of two runs of the same cases.

    Groups as the summary forms them: generation per category and `overall` (the mean of the
    categories other than `region`, so its error adds theirs), understanding, editing (real edits),
    editing_forms per form, repeat, and kept (edits that measured it in both runs)."""
    if len(before) != len(after):
        raise ValueError(f"--cases: expected the same cases in both files, got {len(before)} and {len(after)} lines")
    for i, (a, b) in enumerate(zip(before, after)):
        if _key(a) != _key(b):
            raise ValueError(f"--cases: line {i + 1}: expected the same case in both files, got {_key(a)} and {_key(b)}")
    groups: dict[str, list[float]] = {}
    for a, b in zip(before, after):
        d = b["score"] - a["score"]
        if a["task"] == "generate":
            groups.setdefault(f"generation.{a['category']}", []).append(d)
        elif a["task"] == "understand":
            groups.setdefault("understanding", []).append(d)
        elif a.get("form") == "repeat":
            groups.setdefault("repeat", []).append(d)
        else:
            groups.setdefault("editing", []).append(d)
            groups.setdefault(f"editing_forms.{a['form']}", []).append(d)
            if "kept" in a and "kept" in b:
                groups.setdefault("kept", []).append(b["kept"] - a["kept"])
    out = {name: dict(zip(("delta", "se"), _mean_se(d))) for name, d in groups.items()}
    cats = [out[k] for k in out if k.startswith("generation.") and k != "generation.region"]
    if cats:
        out["generation.overall"] = {"delta": sum(c["delta"] for c in cats) / len(cats),
                                     "se": math.sqrt(sum(c["se"] ** 2 for c in cats)) / len(cats)}
    return out


def compare(before: dict, after: dict, sizes: dict[str, int], pairs: dict[str, dict] | None = None) -> dict[str, dict]:
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
        if pairs and name in pairs:
            row["paired_se"] = round(pairs[name]["se"], 4)
            row["paired_beyond_2se"] = abs(row["delta"]) > 2 * pairs[name]["se"]
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
    p.add_argument("--cases", nargs=2, metavar=("BEFORE_CASES", "AFTER_CASES"),
                   help="per-case results of both runs (npx unipic eval --results): adds paired_se")
    args = p.parse_args(argv)
    with open(args.before) as f:
        before = json.load(f)
    with open(args.after) as f:
        after = json.load(f)
    # "overall" averages the six GenEval-style categories; "region" is reported beside it, not in it
    categories = len([k for k in (before.get("generation") or {}) if k not in ("overall", "region")]) or 1
    forms = len(before.get("editing_forms") or {}) or 1
    sizes = sample_sizes(args.n, args.seeds, args.questions, args.edits, args.repeats, categories, forms)
    pairs = paired(read_cases(args.cases[0]), read_cases(args.cases[1])) if args.cases else None
    print(json.dumps(compare(before, after, sizes, pairs), indent=1))


if __name__ == "__main__":
    main()
