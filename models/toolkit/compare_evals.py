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
passes under both), so `paired_se` is the error to decide on when both files exist. Without
`--cases`, the per-case files beside the summaries (BEFORE.cases.jsonl next to BEFORE.json) are
used where both exist, so every caller pairs when it can.

    python -m toolkit.compare_evals --pool B1.cases.jsonl A1.cases.jsonl [B2.cases.jsonl A2.cases.jsonl ...]

pools several case sets (one before/after pair each, e.g. the same sampling change on three case
seeds) from the per-case results alone: every score's before and after over all of them, the
change and its paired error.
"""
from __future__ import annotations

import argparse
import json
import math
import os


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


def _groups(r: dict) -> list[str]:
    """The scores a case counts towards, as the summary forms them (`kept` aside)."""
    if r["task"] == "generate":
        return [f"generation.{r['category']}"]
    if r["task"] == "understand":
        return ["understanding"]
    if r.get("form") == "repeat":
        return ["repeat"]
    return ["editing", f"editing_forms.{r['form']}"]


def _real_edit(r: dict) -> bool:
    """An edit that changes something: the ones `kept` is measured on (not "Repeat this image.")."""
    return r["task"] == "edit" and r.get("form") != "repeat"


def _check(before: list[dict], after: list[dict], where: str = "--cases") -> None:
    if len(before) != len(after):
        raise ValueError(f"{where}: expected the same cases in both files, got {len(before)} and {len(after)} lines")
    for i, (a, b) in enumerate(zip(before, after)):
        if _key(a) != _key(b):
            raise ValueError(f"{where}: line {i + 1}: expected the same case in both files, got {_key(a)} and {_key(b)}")


def _with_overall(out: dict[str, dict]) -> dict[str, dict]:
    """generation.overall: the mean of the categories other than `region`, so its error adds theirs."""
    cats = [out[k] for k in out if k.startswith("generation.") and k != "generation.region"]
    if cats:
        out["generation.overall"] = {k: sum(c[k] for c in cats) / len(cats) for k in cats[0] if k != "se"}
        if all("se" in c for c in cats):
            out["generation.overall"]["se"] = math.sqrt(sum(c["se"] ** 2 for c in cats)) / len(cats)
    return out


def paired(before: list[dict], after: list[dict]) -> dict[str, dict]:
    """{score name: {"delta", "se"}} from the case-by-case differences of two runs of the same cases.

    Groups as the summary forms them: generation per category and `overall`, understanding,
    editing (real edits), editing_forms per form, repeat, and kept (edits that measured it in both
    runs)."""
    _check(before, after)
    groups: dict[str, list[float]] = {}
    for a, b in zip(before, after):
        for name in _groups(a):
            groups.setdefault(name, []).append(b["score"] - a["score"])
        if _real_edit(a) and "kept" in a and "kept" in b:
            groups.setdefault("kept", []).append(b["kept"] - a["kept"])
    return _with_overall({name: dict(zip(("delta", "se"), _mean_se(d))) for name, d in groups.items()})


def means(rows: list[dict]) -> dict[str, float]:
    """Every score of one run from its per-case results, as the summary gives it."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        for name in _groups(r):
            groups.setdefault(name, []).append(r["score"])
        if _real_edit(r) and "kept" in r:
            groups.setdefault("kept", []).append(r["kept"])
    out = _with_overall({name: {"mean": sum(v) / len(v)} for name, v in groups.items()})
    return {name: v["mean"] for name, v in out.items()}


def pooled(pairs: list[tuple[list[dict], list[dict]]]) -> dict[str, dict]:
    """Several case sets, each run before and after the same change, pooled case by case."""
    before: list[dict] = []
    after: list[dict] = []
    for i, (a, b) in enumerate(pairs):
        _check(a, b, f"--pool pair {i + 1}")
        before += a
        after += b
    mb, ma, d = means(before), means(after), paired(before, after)
    out: dict[str, dict] = {}
    for name in mb:
        if name not in ma or name not in d:
            continue
        out[name] = {"before": round(mb[name], 4), "after": round(ma[name], 4), "delta": round(d[name]["delta"], 4),
                     "paired_se": round(d[name]["se"], 4), "paired_beyond_2se": abs(d[name]["delta"]) > 2 * d[name]["se"]}
    return out


def cases_beside(summary: str) -> str | None:
    """FILE.cases.jsonl beside FILE.json, where the evaluation kept its per-case results."""
    path = summary[:-5] + ".cases.jsonl" if summary.endswith(".json") else None
    return path if path and os.path.exists(path) else None


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
    p.add_argument("before", nargs="?")
    p.add_argument("after", nargs="?")
    p.add_argument("--n", type=int, default=50, help="prompts per generation category")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--questions", type=int, default=300)
    p.add_argument("--edits", type=int, default=300)
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--cases", nargs=2, metavar=("BEFORE_CASES", "AFTER_CASES"),
                   help="per-case results of both runs (npx unipic eval --results): adds paired_se "
                        "(default: the .cases.jsonl files beside the summaries, where both exist)")
    p.add_argument("--pool", nargs="+", metavar="CASES",
                   help="before/after per-case files of several case sets, in pairs: pooled scores and paired errors")
    args = p.parse_args(argv)
    if args.pool:
        if len(args.pool) % 2 or args.before:
            p.error(f"--pool: expected before/after per-case files in pairs and no summaries, got {len(args.pool)} "
                    f"files{' and summaries' if args.before else ''}")
        files = [read_cases(f) for f in args.pool]
        print(json.dumps(pooled(list(zip(files[::2], files[1::2]))), indent=1))
        return
    if not args.after:
        p.error("expected BEFORE.json AFTER.json (or --pool)")
    with open(args.before) as f:
        before = json.load(f)
    with open(args.after) as f:
        after = json.load(f)
    # "overall" averages the six GenEval-style categories; "region" is reported beside it, not in it
    categories = len([k for k in (before.get("generation") or {}) if k not in ("overall", "region")]) or 1
    forms = len(before.get("editing_forms") or {}) or 1
    sizes = sample_sizes(args.n, args.seeds, args.questions, args.edits, args.repeats, categories, forms)
    case_files = args.cases or (cases_beside(args.before), cases_beside(args.after))
    pairs = paired(read_cases(case_files[0]), read_cases(case_files[1])) if all(case_files) else None
    print(json.dumps(compare(before, after, sizes, pairs), indent=1))


if __name__ == "__main__":
    main()
