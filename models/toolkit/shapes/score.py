"""ShapesEval scoring: a case against detected objects (or an answer), and the summary of results
(docs/shapesworld.md sections 3 and 5). Summaries must agree with the TypeScript twin to the last bit."""

from __future__ import annotations

from typing import Sequence

from .world import (COUNT_WORDS, EDIT_FORMS, EDIT_TOLERANCE, GEN_CATEGORIES, GENEVAL_CATEGORIES, in_region,
                    relation_holds)

REPEAT_INSTRUCTION = "Repeat this image."  # the edit CFG negative; as a case, target = source
_EDIT_VERBS = {"make": "recolor", "remove": "remove", "add": "add", "move": "move"}


# ---------------------------------------------------------------------------------------------
# Scoring (docs/shapesworld.md sections 3 and 5). `detected` is detect()'s output, or any scene-like dicts.


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
        if k is not None:  # candidate filter for expected object k (and its named regions)
            e = objs[k]
            return _attrs_match(e, d_or_assignment) and all(in_region(d_or_assignment, r) for r in e.get("regions", ()))
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
    """1.0 when the detected result equals the expected scene (docs/shapesworld.md section 3), else 0.0."""
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
        return _near(e, d)

    return 1.0 if _assign(expect, detected, ok) is not None else 0.0


def edit_form(case: dict) -> str:
    """recolor / remove / add / move from the instruction's verb; "repeat" for "Repeat this image.";
    "other" for anything else (cases from a file may say anything)."""
    instr = case["instruction"].strip().lower()
    if instr.rstrip(".") == REPEAT_INSTRUCTION.lower().rstrip("."):
        return "repeat"
    words = instr.split()
    return _EDIT_VERBS.get(words[0], "other") if words else "other"


def _near(e: dict, d: dict) -> bool:
    dx, dy = d["cx"] - e["cx"], d["cy"] - e["cy"]
    return dx * dx + dy * dy <= EDIT_TOLERANCE * EDIT_TOLERANCE


def score_kept(case: dict, detected: Sequence[dict]) -> float | None:
    """Of the source objects the edit does not touch (expected unchanged: same shape, colour and
    place), the fraction found in the result: same shape and colour, centre within the tolerance.
    One to one, greedily in expect order. None when the edit touches every object."""
    src = case["scene"]
    keep = [e for e in case["expect"] if "region" not in e and any(
        o["shape"] == e["shape"] and o["color"] == e["color"] and o["cx"] == e["cx"] and o["cy"] == e["cy"]
        for o in src)]
    if not keep:
        return None
    left = list(detected)
    hit = 0
    for e in keep:
        for j, d in enumerate(left):
            if d.get("shape") == e["shape"] and d.get("color") == e["color"] and _near(e, d):
                hit += 1
                del left[j]
                break
    return hit / len(keep)


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


def case_result(case: dict, scores: Sequence[float], kept: float | None = None) -> dict:
    """One summarize() entry for a case judged on several samples (GenEval: 4 seeds). Edits also
    carry their form and, when given, score_kept's fraction."""
    if not scores:
        raise ValueError("case_result: no scores")
    r = {"task": case["task"], "score": _mean([float(x) for x in scores])}
    if case["task"] == "generate":
        r["category"] = case["category"]
    if case["task"] == "edit":
        r["form"] = edit_form(case)
        if kept is not None:
            r["kept"] = float(kept)
    return r


def summarize(results: Sequence[dict]) -> dict:
    """The `unipic eval --json` object from per-case results {task, category?, score}.

    A category score is the mean of its cases; `overall` the mean of the GenEval categories present
    (not "region", ShapesEval's own); a task (or generation category) absent from the results is null.
    "editing" is the mean over real edits; "Repeat this image." cases are reported as "repeat"
    (the fraction reproduced), the forms as "editing_forms", score_kept's mean as "kept".
    """
    mean = _mean

    gen = [r for r in results if r["task"] == "generate"]
    generation = None
    if gen:
        generation = {c: mean([r["score"] for r in gen if r["category"] == c]) for c in GEN_CATEGORIES}
        generation["overall"] = mean([generation[c] for c in GENEVAL_CATEGORIES if generation[c] is not None])
    edits = [r for r in results if r["task"] == "edit" and r.get("form") != "repeat"]
    forms = None
    if edits:
        forms = {f: mean([r["score"] for r in edits if r.get("form") == f]) for f in EDIT_FORMS}
    return {
        "generation": generation,
        "understanding": mean([r["score"] for r in results if r["task"] == "understand"]),
        "editing": mean([r["score"] for r in edits]),
        "editing_forms": forms,
        "kept": mean([r["kept"] for r in edits if r.get("kept") is not None]),
        "repeat": mean([r["score"] for r in results if r["task"] == "edit" and r.get("form") == "repeat"]),
        "cases": len(results),
    }
