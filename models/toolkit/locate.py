"""Does the model know where the object an edit names is? (issue #17, item 2)

    cd models
    /usr/bin/python3 -m toolkit.locate --weights checkpoints/unipic-tiny-ema-fp16.pt

Edits fail with the number of objects in the source (docs/training.md section 1). An edit of one
object among several has to find it, and the LLM reads the instruction against the source picture;
so this asks, of the same weights and greedily as the evaluation does:

- `understanding`: answer accuracy per question form and source object count ("where/3"), on
  `--questions` fresh questions of `--case-seed`. "what color is the square?" names an object by
  shape alone; "where is the green square?" asks for its region.
- `edits_by_where`: for each edit of `--edits` cases (the same cases as toolkit.edit_modes) that
  touches one object of a source of two or more, in a region of its own, the question "where is
  the <colour> <shape>?" of that object on the source; then the edit's score among the edits whose
  object the model locates and among those it does not. If edits failed because the LLM cannot
  find the object, the second share would hold nearly all the failures.
- `slots`: whether the decoder's masked slots know which tokens the edit is about, at the first
  MAR iteration (nothing of the target visible, where the sampler decides its first tokens). On
  `--probe` edits that touch one object among several, a least-squares linear map from each slot's
  z to "this slot covers the touched object" is fit on 3/4 of them; on the rest, per object count,
  `top_k_hit` is the share of the object's k slots among the k highest-scoring slots. Under
  "Repeat this image." (`repeat`) the map can find objects but not which one is named: the
  baseline the instruction should rise above.

Prints one JSON object. Sampling: the manifest defaults of --model-dir.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict

import numpy as np
import torch

from . import shapes as S
from .evaluate import build_cases, load_tokenizer, load_torch, run_cases
from .sampler import Runner, from_uint8
from .shapes.cases import _edit_case
from .shapes.world import region_of
from .tokenizer import EDIT_NEGATIVE, EDIT_POSITIVE, IMAGE, chat

FORM_WORDS = {"what color": "color", "how many": "count", "what shape": "shape", "is there": "exists",
              "where is": "where"}


def question_form(question: str) -> str:
    """The understanding form of a ShapesEval question, from its first two words."""
    return FORM_WORDS.get(" ".join(question.split()[:2]), "other")


def touched_among_several(edit: dict) -> dict | None:
    """The one source object an edit touches (recoloured, removed or moved) when the source holds
    others beside it, else None (an add, or a source of one object)."""
    touched = [o for o in edit["scene"] if o not in edit["expect"]]
    return touched[0] if len(edit["scene"]) >= 2 and len(touched) == 1 else None


def where_question(edit: dict) -> dict | None:
    """The "where is ...?" case of touched_among_several(edit), or None: none, or an object between
    regions."""
    o = touched_among_several(edit)
    if o is None or region_of(o) is None:
        return None
    return {"task": "understand", "scene": edit["scene"], "question": f"where is the {o['color']} {o['shape']}?",
            "answer": region_of(o)}


def by_key(pairs) -> dict:
    """[(key, score)] -> {key: {"n": count, "score": mean}}, keys sorted."""
    acc = defaultdict(list)
    for k, s in pairs:
        acc[k].append(s)
    return {k: {"n": len(v), "score": round(sum(v) / len(v), 3)} for k, v in sorted(acc.items())}


def object_slots(obj: dict, size: int, grid: int, share: float = 0.15) -> np.ndarray:
    """[grid*grid] bool: the tokens whose patch of a size x size picture the object covers by more
    than `share` (raster order, as the MAR slots)."""
    ink = (S.render([obj], size) != S.render([], size)).any(-1)                      # [size, size]
    p = size // grid
    return ink.reshape(grid, p, grid, p).mean((1, 3)).reshape(-1) > share


def top_k_hit(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of the k labelled slots among the k highest scores (k = labels.sum() > 0)."""
    k = int(labels.sum())
    return float(labels[np.argsort(-scores, kind="stable")[:k]].mean())


def first_iteration_z(runner: Runner, scenes, texts) -> torch.Tensor:
    """z [B, L, W] of every slot at an edit's first MAR iteration (no target token visible)."""
    m, L = runner.m, runner.L
    pixels = from_uint8(np.stack([S.render(sc, m.cfg.default_resolution) for sc in scenes]))
    _, x_con, z_enc = runner.encode_image(pixels)
    pre = runner.prefill([chat(t) for t in texts], z_enc)
    B = len(scenes)
    with torch.no_grad():
        return runner.mar_iteration(torch.zeros(B, L, m.cfg.latent_channels), torch.zeros(B, 0, dtype=torch.int64),
                                    torch.arange(L)[None].expand(B, L), pre, m.mar_fill(x_con, torch.ones(B)))


def slot_probe(model, tok, n: int, seed: int, batch: int = 64) -> dict:
    """`slots` of the report (module docstring): {"instruction" | "repeat": {"top_k_hit/N": share}}."""
    runner, rng, cases = Runner(model, tok), random.Random(seed), []
    grid = int(round(runner.L ** 0.5))
    while len(cases) < n:
        c, _ = _edit_case(rng, rng.choice(["recolor", "remove", "move"]))
        touched = touched_among_several(c)
        if touched is not None:
            cases.append((c, object_slots(touched, model.cfg.default_resolution, grid)))
    img = IMAGE * (runner.L + model.cfg.buffer_tokens)
    Y = torch.from_numpy(np.stack([y for _, y in cases])).float()                    # [n, L]
    k = n * 3 // 4
    out = {}
    for name, text in (("instruction", lambda c: EDIT_POSITIVE.format(image=img, instruction=c["instruction"])),
                       ("repeat", lambda c: EDIT_NEGATIVE.format(image=img))):
        z = torch.cat([first_iteration_z(runner, [c["scene"] for c, _ in cases[i:i + batch]],
                                         [text(c) for c, _ in cases[i:i + batch]]) for i in range(0, n, batch)])
        X = torch.cat([z, torch.ones(*z.shape[:2], 1)], -1)                          # [n, L, W+1]
        w = torch.linalg.lstsq(X[:k].reshape(-1, X.shape[-1]), Y[:k].reshape(-1, 1)).solution
        scores = (X[k:] @ w)[..., 0].numpy()                                          # [n-k, L]
        out[name] = by_key((f"top_k_hit/{len(c['scene'])}", top_k_hit(s, y))
                           for (c, y), s in zip(cases[k:], scores) if y.any())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.locate", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="UniPic state dict / trainer checkpoint")
    ap.add_argument("--model-dir", default="unipic-tiny", help="manifest with the sampling defaults ('' for the config's)")
    ap.add_argument("--questions", type=int, default=600)
    ap.add_argument("--edits", type=int, default=300)
    ap.add_argument("--case-seed", type=int, default=20261203, help="toolkit.edit_modes' case set of the records")
    ap.add_argument("--probe", type=int, default=768, help="edits for the slot probe (0: skip it)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_torch(a.model_dir or None, a.weights)
    tok = load_tokenizer(a.model_dir or None, model.cfg)
    questions = build_cases(0, a.questions, 0, a.case_seed, 0)
    _, qres = run_cases(model, tok, questions)
    report = {"understanding": by_key((f"{question_form(c['question'])}/{len(c['scene'])}", r["score"])
                                      for c, r in zip(questions, qres))}
    edits = build_cases(0, 0, a.edits, a.case_seed, 0)
    pairs = [(k, q) for k, q in ((k, where_question(c)) for k, c in enumerate(edits)) if q is not None]
    _, eres = run_cases(model, tok, [edits[k] for k, _ in pairs])
    _, wres = run_cases(model, tok, [q for _, q in pairs])
    report["edits_by_where"] = by_key(("located" if w["score"] == 1.0 else "not located", e["score"])
                                      for e, w in zip(eres, wres))
    if a.probe:
        report["slots"] = slot_probe(model, tok, a.probe, a.case_seed)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
