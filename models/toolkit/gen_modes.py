"""Why pictures fail: each generated image sorted into failure modes, per category (issue #17).

    cd models
    /usr/bin/python3 -m toolkit.gen_modes --weights checkpoints/unipic-tiny-ema-fp16.pt --n 40

ShapesEval's generation score is all or nothing. This splits a failure into what went wrong, from
the same detections, and prints one JSON object with the share of images per category (and per
count for `counting`, as `counting_2` .. `counting_4`) in which:

- `found`: every object the prompt names is there (shape, and colour when named; a count as that
  many), one to one, ignoring places and anything extra;
- `extra` / `missing`: more / fewer objects detected than the prompt asks for;
- `blob`: some detected object fits no shape (the detector's "unknown"): an object whose tokens
  disagree (two colours, or a torn outline) is detected as two such blobs or more;
- `mixed`: the objects whose colour the prompt leaves open do not all share one colour (for the
  weights trained with `--open-colors shared`, which draws them alike).

It also gives `objects`: the mean number of detected objects. Measured on fresh random cases
(`--case-seed`), one seed each, with the manifest's sampling defaults (or --sampling).
"""

from __future__ import annotations

import argparse
import json

import torch

from . import shapes as S
from .evaluate import build_cases, load_tokenizer, load_torch, mode_shares, override_sampling, run_cases
from .proxy import objects_found

MODES = ("score", "found", "extra", "missing", "blob", "mixed")


def _wanted(case: dict) -> list[dict]:
    e = case["expect"]
    return [e["count"]] * e["count"]["n"] if "count" in e else list(e["objects"])


def classify(case: dict, detected) -> dict:
    """One generation case and the detections of its image -> {mode: bool} (MODES)."""
    want = _wanted(case)
    open_colours = {d.get("color") for d in detected if d.get("shape") != "unknown"} \
        if all("color" not in w for w in want) else set()
    return {"score": S.score_generate(case, detected) == 1.0,
            "found": objects_found(case, detected) == 1.0,
            "extra": len(detected) > len(want), "missing": len(detected) < len(want),
            "blob": any(d.get("shape") == "unknown" for d in detected),
            "mixed": len(open_colours) > 1}


def key(case: dict) -> str:
    e = case["expect"]
    return f"counting_{e['count']['n']}" if "count" in e else case["category"]


def summarize(rows) -> dict:
    """[(key, classify(...), n_detected)] -> {key: {"n": n, mode: share, "objects": mean}}."""
    return mode_shares(((k, m, {"objects": n_det}) for k, m, n_det in rows), MODES, ("objects",))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.gen_modes", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="UniPic state dict / trainer checkpoint")
    ap.add_argument("--model-dir", default="unipic-tiny", help="manifest with the sampling defaults ('' for the config's)")
    ap.add_argument("--n", type=int, default=40, help="prompts per generation category")
    ap.add_argument("--categories", default=",".join(S.GEN_CATEGORIES), help="comma-separated")
    ap.add_argument("--case-seed", type=int, default=5)
    ap.add_argument("--draw-seed", type=int, default=0)
    ap.add_argument("--sampling", help="JSON sampling overrides")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cats = [c for c in a.categories.split(",") if c]
    for c in cats:
        if c not in S.GEN_CATEGORIES:
            ap.error(f"--categories: expected names from {list(S.GEN_CATEGORIES)}, got {c!r}")
    model = override_sampling(load_torch(a.model_dir or None, a.weights), a.sampling)
    tok = load_tokenizer(a.model_dir or None, model.cfg)
    # ShapesEval's own case builder; with every category these are exactly its cases for the seed
    cases = [c for c in build_cases(a.n, 0, 0, a.case_seed) if c["category"] in cats]
    rows = []
    run_cases(model, tok, cases, draw_seed=a.draw_seed,
              on_output=lambda c, det: rows.append((key(c), classify(c, det), len(det))))
    report = summarize(rows)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
