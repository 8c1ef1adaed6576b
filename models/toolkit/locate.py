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

Prints one JSON object. Sampling: the manifest defaults of --model-dir.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import torch

from .evaluate import build_cases, load_tokenizer, load_torch, run_cases
from .shapes.world import region_of

FORM_WORDS = {"what color": "color", "how many": "count", "what shape": "shape", "is there": "exists",
              "where is": "where"}


def question_form(question: str) -> str:
    """The understanding form of a ShapesEval question, from its first two words."""
    return FORM_WORDS.get(" ".join(question.split()[:2]), "other")


def where_question(edit: dict) -> dict | None:
    """The "where is ...?" case of the one source object an edit touches (recoloured, removed or
    moved), or None: an add, a source of one object, or an object between regions."""
    src, exp = edit["scene"], edit["expect"]
    touched = [o for o in src if o not in exp]
    if len(src) < 2 or len(touched) != 1 or region_of(touched[0]) is None:
        return None
    o = touched[0]
    return {"task": "understand", "scene": src, "question": f"where is the {o['color']} {o['shape']}?",
            "answer": region_of(o)}


def by_key(pairs) -> dict:
    """[(key, score)] -> {key: {"n": count, "score": mean}}, keys sorted."""
    acc = defaultdict(list)
    for k, s in pairs:
        acc[k].append(s)
    return {k: {"n": len(v), "score": round(sum(v) / len(v), 3)} for k, v in sorted(acc.items())}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.locate", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="UniPic state dict / trainer checkpoint")
    ap.add_argument("--model-dir", default="unipic-tiny", help="manifest with the sampling defaults ('' for the config's)")
    ap.add_argument("--questions", type=int, default=600)
    ap.add_argument("--edits", type=int, default=300)
    ap.add_argument("--case-seed", type=int, default=20261203, help="toolkit.edit_modes' case set of the records")
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
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
