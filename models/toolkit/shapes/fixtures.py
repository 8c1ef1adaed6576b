"""The cross-language fixtures (test/fixtures/shapes-cases.jsonl, shapes-scored.json): cases,
renders, detector output, scores and summaries that the TypeScript twin must reproduce."""

from __future__ import annotations

import base64
import io
import random

import numpy as np

from .cases import generate_cases_with_targets
from .detector import detect
from .scenes import sample_scene
from .score import case_result, score_case, score_understand, summarize
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
    """(cases, scored): 40 cases over every category and form, and the detector output plus
    every generate/edit case's score on: each case's target render, each edit's unedited source,
    and perturbed renders. A few images are 128 px so both sizes are pinned."""
    pairs = generate_cases_with_targets(5, seed)
    cases = [c for c, _ in pairs]
    rng = random.Random(seed + 1)
    items = []

    def item(name: str, img: np.ndarray, scene: list[dict] | None = None) -> None:
        det = detect(img)
        scores = [[k, score_case(c, det)] for k, c in enumerate(cases) if c["task"] != "understand"]
        it = {"name": name, "size": int(img.shape[0]), "png": _png_b64(img), "detected": det, "scores": scores}
        if scene is not None:  # unperturbed: the TS renderer must reproduce the PNG from it
            it["scene"] = scene
        items.append(it)

    for k, (c, target) in enumerate(pairs):
        size = 128 if k % 7 == 0 else 64
        if target is not None:
            item(f"case{k}-target", render(target, size), target)
        if c["task"] == "edit":
            item(f"case{k}-source", render(c["scene"], size), c["scene"])
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
    # Uneven per-case scores (thirds, sevenths) so that float summation order is pinned too.
    results = [case_result(c, [rng.choice([0.0, 1.0]) for _ in range(rng.choice([3, 4, 7]))])
               for c in cases]
    summaries = [
        {"results": results, "summary": summarize(results)},
        {"results": results[-10:], "summary": summarize(results[-10:])},
        {"results": results[:7], "summary": summarize(results[:7])},
        {"results": [], "summary": summarize([])},
    ]
    return cases, {"seed": seed, "items": items, "answers": answers, "summaries": summaries}
