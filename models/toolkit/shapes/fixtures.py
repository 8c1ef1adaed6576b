"""The cross-language fixtures (test/fixtures/shapes-cases.jsonl, shapes-scored.json): cases,
renders, detector output, scores and summaries that the TypeScript twin must reproduce."""

from __future__ import annotations

import base64
import io
import random

import numpy as np

from .cases import _repeat_case, generate_cases_with_targets
from .detector import detect
from .scenes import sample_scene
from .score import case_result, edit_form, score_case, score_kept, score_understand, summarize
from .world import COLORS, COUNT_WORDS, PALETTE, render


# ---------------------------------------------------------------------------------------------
# Cross-language fixtures (test/fixtures): the TS detector and scorer must reproduce these.


def _png_b64(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _perturb(rng: random.Random, img: np.ndarray) -> np.ndarray:
    """Off-model noise the detector must shrug off or report: specks, off-palette tints, a bar."""
    img = img.copy()
    n = img.shape[0]
    for _ in range(6):  # isolated specks of palette colour: below MIN_COMPONENT
        img[rng.randrange(n), rng.randrange(n)] = PALETTE[rng.choice(COLORS)]
    tint = np.clip(img.astype(np.int32) + rng.randint(-25, 25), 0, 255).astype(np.uint8)
    return tint


def build_fixtures(seed: int = 0) -> tuple[list[dict], dict]:
    """(cases, scored): 48 cases over every category and form (3 of them "Repeat this image."), and
    the detector output plus every generate/edit case's score (and every edit's score_kept) on:
    each case's target render, each edit's unedited source and its target less one untouched
    object, each region case's target mirrored to the opposite corner, and perturbed renders. A few images are 128 px so both sizes are pinned."""
    pairs = generate_cases_with_targets(5, seed)
    rrng = random.Random(seed + 2)  # its own stream: the repeats leave the other draws alone
    pairs += [_repeat_case(rrng) for _ in range(3)]
    cases = [c for c, _ in pairs]
    rng = random.Random(seed + 1)
    items = []

    def item(name: str, img: np.ndarray, scene: list[dict] | None = None) -> None:
        det = detect(img)
        scores = [[k, score_case(c, det)] for k, c in enumerate(cases) if c["task"] != "understand"]
        kept = [[k, score_kept(c, det)] for k, c in enumerate(cases) if c["task"] == "edit"]
        it = {"name": name, "size": int(img.shape[0]), "png": _png_b64(img), "detected": det, "scores": scores,
              "kept": kept}
        if scene is not None:  # unperturbed: the TS renderer must reproduce the PNG from it
            it["scene"] = scene
        items.append(it)

    for k, (c, target) in enumerate(pairs):
        size = 128 if k % 7 == 0 else 64
        if target is not None:
            item(f"case{k}-target", render(target, size), target)
        if c["task"] == "edit" and edit_form(c) != "repeat":  # a repeat's source is its target
            item(f"case{k}-source", render(c["scene"], size), c["scene"])
        if c.get("category") == "region":  # the right object in the wrong place (but the centre)
            mirrored = [{**o, "cx": round(1 - o["cx"], 3), "cy": round(1 - o["cy"], 3)} for o in target]
            item(f"case{k}-mirrored", render(mirrored, size), mirrored)
        if c["task"] == "edit":  # one untouched object lost: score_kept's partial credit
            kept = [o for o in target if any(o == s for s in c["scene"])]
            if len(kept) >= 2:
                dropped = [o for o in target if o is not kept[0]]
                item(f"case{k}-dropped", render(dropped, size), dropped)
    for k in range(6):
        img = render(sample_scene(rng), 64)
        if k == 0:
            img[10:14, 5:40] = PALETTE["red"]  # a bar: too elongated, reported as "unknown"
        if k == 1:
            img[40:60, 40:60] = PALETTE["blue"]  # a blob with a notch: poor fit, "unknown"
            img[40:50, 50:60] = 255
        item(f"perturbed{k}", _perturb(rng, img))
    answers = []
    for k, c in enumerate(cases):
        if c["task"] != "understand":
            continue
        a = c["answer"]
        variants = [a, a.upper() + ".", f" {a}. ", "purple" if a != "purple" else "red", a + ".."]
        if a in COUNT_WORDS:
            variants += [str(COUNT_WORDS.index(a) + 1), "7"]
        answers += [[k, v, score_understand(c, v)] for v in variants]
    # Uneven per-case scores (thirds, sevenths) and kept fractions so that float summation order
    # is pinned too; "samples" lets the TS case_result rebuild the results from the cases.
    samples = []
    for k, c in enumerate(cases):
        scores = [rng.choice([0.0, 1.0]) for _ in range(rng.choice([3, 4, 7]))]
        kept = None  # unmeasured for every third case: case_result then leaves "kept" out
        if c["task"] == "edit" and k % 3:
            kept = rng.choice([0.0, 1 / 3, 0.5, 2 / 3, 1.0])
        samples.append([scores, kept])
    results = [case_result(c, s, kept) for c, (s, kept) in zip(cases, samples)]
    subsets = [
        results, results[-10:], results[:7], [],
        [r for r in results if r.get("category") == "region"],  # generation without a GenEval category
        [r for r in results if r.get("form") == "repeat"],  # repeats without real edits
        [r for r in results if r.get("form") in ("add", "move")],  # edit forms left out
        [r for r in results if r["task"] == "edit" and "kept" not in r],  # edits, kept never measured
    ]
    summaries = [{"results": rs, "summary": summarize(rs)} for rs in subsets]
    return cases, {"seed": seed, "items": items, "answers": answers, "samples": samples, "summaries": summaries}
