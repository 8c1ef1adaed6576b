"""Why edits fail: each edit's output sorted into failure modes, per edit form (issue #17, item 2).

    cd models
    /usr/bin/python3 -m toolkit.edit_modes --weights checkpoints/unipic-tiny-ema-fp16.pt --edits 160
    /usr/bin/python3 -m toolkit.edit_modes --weights ... --edits 300 --by objects   # rows "move/3" ...

ShapesEval's edit score is all or nothing: the detected result must equal the expected scene. This
splits a failure into what went wrong, from the same detections, and prints one JSON object with
the share of cases per form in which:

- `done`: the named change happened, whatever else did (recolour: the object, in its place, now has
  the new colour; remove: it is gone; add / move: the object is in the named region);
- `kept`: every object the instruction does not name is still there (shape, colour, place);
- `extra` / `missing`: more / fewer objects detected than expected (a two-coloured object, or the
  debris of a removed one, is detected as an object of its own);
- `source`: the output is the source (every source object found, nothing else): the instruction
  was ignored;
- `old_left` (recolour, move): the object is still there as it was;
- `near_miss`: the change is almost right: recolour, an object of the right shape at the place in any
  colour; remove, no object of that shape left at the place in any colour; add / move, an object of
  the right colour in the region in any shape.

Sampling: the manifest defaults of --model-dir, overridden by --sampling / --edit-sampling.
"""

from __future__ import annotations

import argparse
import json
import random

import torch

from . import shapes as S
from .evaluate import build_cases, load_tokenizer, load_torch, mode_shares, override_sampling, run_cases
from .shapes.cases import ISOLATE_PREFIX
from .shapes.score import _near
from .shapes.world import in_region

MODES = ("score", "done", "kept", "extra", "missing", "source", "old_left", "near_miss")


def _same(o: dict, d: dict) -> bool:
    return d.get("shape") == o["shape"] and d.get("color") == o["color"] and _near(o, d)


def classify(case: dict, detected) -> dict:
    """One edit case (ShapesEval form) and the detections of its output -> {mode: bool} (MODES)."""
    src, exp, form = case["scene"], case["expect"], S.edit_form(case)
    named = [e for e in exp if e not in src]             # the recoloured / added / moved object
    before = [o for o in src if o not in exp]            # the source object the edit touches
    kept = S.score_kept(case, detected)                  # ShapesEval's `kept`; None: nothing to keep
    m = {"score": S.score_edit(case, detected) == 1.0,
         "kept": kept is None or kept == 1.0,
         "extra": len(detected) > len(exp), "missing": len(detected) < len(exp),
         "source": len(detected) == len(src) and all(any(_same(o, d) for d in detected) for o in src),
         "old_left": bool(before) and any(_same(before[0], d) for d in detected)}
    if form == "recolor":
        new = named[0]
        m["done"] = any(_same(new, d) for d in detected)
        m["near_miss"] = any(d.get("shape") == new["shape"] and _near(new, d) for d in detected)
    elif form == "remove":
        m["done"] = not m["old_left"]
        m["near_miss"] = not any(d.get("shape") == before[0]["shape"] and _near(before[0], d) for d in detected)
    elif form in ("add", "move"):
        new = named[0]
        m["done"] = any(d.get("shape") == new["shape"] and d.get("color") == new["color"]
                        and in_region(d, new["region"]) for d in detected)
        m["near_miss"] = any(d.get("color") == new["color"] and in_region(d, new["region"]) for d in detected)
    elif _isolate(case):  # "keep only the square": the object named is the one kept
        m["done"] = m["near_miss"] = any(_same(exp[0], d) for d in detected)
    else:  # repeat / other: nothing is named
        m["done"] = m["near_miss"] = m["source"]
    return m


def _isolate(case: dict) -> bool:
    return case["instruction"].startswith(ISOLATE_PREFIX)


def isolate_cases(n: int, seed: int) -> list[dict]:
    """n cases of the trainer's training-only "keep only the ..." edits (train_args --edit-isolate),
    in ShapesEval's edit form: whether what it trains is learned at all."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        src, instr, target = S.sample_isolate(rng)
        out.append({"task": "edit", "scene": src, "instruction": instr, "expect": target})
    return out


def row_key(case: dict, by: str = "form") -> str:
    """The table row an edit counts in: its form, or its form and the source's object count
    ("move/3"): edits of one object mostly succeed, and the count splits where they fail."""
    if by not in ("form", "objects"):
        raise ValueError(f"by: expected 'form' or 'objects', got {by!r}")
    form = "isolate" if _isolate(case) else S.edit_form(case)
    return form if by == "form" else f"{form}/{len(case['scene'])}"


def summarize(rows) -> dict:
    """[(form, classify(...))] -> {form: {"n": n, mode: share}}."""
    return mode_shares(((form, m, {}) for form, m in rows), MODES)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.edit_modes", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="UniPic state dict / trainer checkpoint")
    ap.add_argument("--model-dir", default="unipic-tiny", help="manifest with the sampling defaults ('' for the config's)")
    ap.add_argument("--edits", type=int, default=160, help="edit cases (the four forms in turn)")
    ap.add_argument("--case-seed", type=int, default=4242, help="as toolkit.proxy's case set")
    ap.add_argument("--draw-seed", type=int, default=7)
    ap.add_argument("--sampling", help="JSON sampling overrides")
    ap.add_argument("--edit-sampling", help="JSON overrides for edits only")
    ap.add_argument("--by", default="form", choices=["form", "objects"],
                    help="rows per edit form, or per form and the source's object count")
    ap.add_argument("--isolate", type=int, default=0,
                    help='also this many training-only "keep only the ..." edits (rows "isolate")')
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = override_sampling(load_torch(a.model_dir or None, a.weights), a.sampling, a.edit_sampling)
    tok = load_tokenizer(a.model_dir or None, model.cfg)
    rows = []
    cases = build_cases(0, 0, a.edits, a.case_seed, 0) + isolate_cases(a.isolate, a.case_seed)
    run_cases(model, tok, cases, draw_seed=a.draw_seed,
              on_output=lambda c, det: rows.append((row_key(c, a.by), classify(c, det))))
    report = summarize(rows)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
