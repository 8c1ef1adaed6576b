"""ShapesEval scoring: a case against detected objects (or an answer), and the summary of results
(shapes-world.md sections 3 and 5). Summaries must agree with the TypeScript twin to the last bit."""

from __future__ import annotations

from typing import Sequence

from .world import COUNT_WORDS, EDIT_TOLERANCE, GEN_CATEGORIES, in_region, relation_holds


# ---------------------------------------------------------------------------------------------
# Scoring (spec section 3 and 5). `detected` is detect()'s output, or any scene-like dicts.


def _assign(expected: Sequence[dict], detected: Sequence[dict], ok, used=None, acc=None):
    """Backtracking one-to-one assignment of expected objects to detected ones.

    `ok(exp_index, det)` filters candidates; returns the first full assignment whose final check
    passes, via ok(None, assignment). Scenes hold at most a handful of objects, so this is cheap.
    """
    used = used if used is not None else set()
    acc = acc if acc is not None else []
    k = len(acc)
    if k == len(expected):
        return list(acc) if ok(None, acc) else None
    for j, d in enumerate(detected):
        if j in used or not ok(k, d):
            continue
        used.add(j)
        acc.append(j)
        found = _assign(expected, detected, ok, used, acc)
        acc.pop()
        used.discard(j)
        if found is not None:
            return found
    return None


def _attrs_match(e: dict, d: dict) -> bool:
    return d.get("shape") == e["shape"] and ("color" not in e or d.get("color") == e["color"])


def score_generate(case: dict, detected: Sequence[dict]) -> float:
    """1.0 when the detected scene satisfies the generate case, else 0.0."""
    expect = case["expect"]
    if "count" in expect:
        c = expect["count"]
        n = sum(1 for d in detected if _attrs_match(c, d))
        if n != c["n"]:
            return 0.0
    objs = expect.get("objects", [])
    rels = expect.get("relations", [])

    def check(k, d_or_assignment):
        if k is not None:  # candidate filter for expected object k
            return _attrs_match(objs[k], d_or_assignment)
        a = d_or_assignment  # full assignment: expected index -> detected index
        return all(relation_holds(detected[a[r["a"]]], r["rel"], detected[a[r["b"]]]) for r in rels)

    return 1.0 if _assign(objs, detected, check) is not None else 0.0


def _normalize(answer: str) -> str:
    a = answer.strip().lower()
    if a.endswith("."):
        a = a[:-1]
    return a.strip()


def score_understand(case: dict, answer: str) -> float:
    """Exact match after lower-casing and trimming a final period; a digit counts as a number."""
    if not isinstance(answer, str):
        raise ValueError(f"answer: expected a string, got {type(answer).__name__}")
    got, want = _normalize(answer), _normalize(case["answer"])
    if got.isascii() and got.isdigit() and 1 <= int(got) <= len(COUNT_WORDS):
        got = COUNT_WORDS[int(got) - 1]
    return 1.0 if got == want else 0.0


def score_edit(case: dict, detected: Sequence[dict]) -> float:
    """1.0 when the detected result equals the expected scene (spec section 3), else 0.0."""
    expect = case["expect"]
    if len(detected) != len(expect):
        return 0.0

    def ok(k, d):
        if k is None:
            return True
        e = expect[k]
        if not _attrs_match(e, d) or d.get("color") != e["color"]:
            return False
        if "region" in e:
            return in_region(d, e["region"])
        # Squared distances, not math.hypot: hypot's last-bit rounding differs between Python and
        # JavaScript, and a boundary case must score the same in both.
        dx, dy = d["cx"] - e["cx"], d["cy"] - e["cy"]
        return dx * dx + dy * dy <= EDIT_TOLERANCE * EDIT_TOLERANCE

    return 1.0 if _assign(expect, detected, ok) is not None else 0.0


def score_case(case: dict, output) -> float:
    """Dispatch: output is the detected objects (generate, edit) or the answer text (understand)."""
    task = case["task"]
    if task == "generate":
        return score_generate(case, output)
    if task == "understand":
        return score_understand(case, output)
    if task == "edit":
        return score_edit(case, output)
    raise ValueError(f"unknown task {task!r}")


def _mean(xs: Sequence[float]) -> float | None:
    # A plain left-to-right sum: Python 3.12's sum() compensates rounding, JavaScript's reduce
    # does not, and summaries from both languages must agree to the last bit.
    if not xs:
        return None
    total = 0.0
    for x in xs:
        total += x
    return total / len(xs)


def case_result(case: dict, scores: Sequence[float]) -> dict:
    """One summarize() entry for a case judged on several samples (GenEval: 4 seeds)."""
    if not scores:
        raise ValueError("case_result: no scores")
    r = {"task": case["task"], "score": _mean([float(x) for x in scores])}
    if case["task"] == "generate":
        r["category"] = case["category"]
    return r


def summarize(results: Sequence[dict]) -> dict:
    """The `unipic eval --json` object from per-case results {task, category?, score}.

    A category score is the mean of its cases; `overall` the mean of the categories present;
    a task (or generation category) absent from the results is null.
    """
    mean = _mean

    gen = [r for r in results if r["task"] == "generate"]
    generation = None
    if gen:
        generation = {c: mean([r["score"] for r in gen if r["category"] == c]) for c in GEN_CATEGORIES}
        generation["overall"] = mean([v for v in generation.values() if v is not None])
    return {
        "generation": generation,
        "understanding": mean([r["score"] for r in results if r["task"] == "understand"]),
        "editing": mean([r["score"] for r in results if r["task"] == "edit"]),
        "cases": len(results),
    }
