"""Does the wording "an orange" cost anything? ShapesEval cases as written ("a orange circle") against
the same cases as users write them ("an orange circle"), same weights, same draws (issue #17).

    cd models
    /usr/bin/python3 -m toolkit.articles --weights checkpoints/unipic-tiny-ema-fp16.pt

ShapesWorld's templates put "a" before every colour, so until run cpu21 the model read only
"a orange"; a user types "an orange". This keeps the fresh random cases (`--case-seed`) whose
prompt, instruction or question says "a orange", scores them as written and with "an", and prints
one JSON object: per wording, the ShapesEval summary of those cases. The gap between the two is
what the training knob `--article-an` (docs/training.md) is meant to close. With `--served` the texts
go through the exported tokenizer.json, whose normalizer reads "an orange" as "a orange"
(toolkit/tokenizer.py, SERVING_RULES): what a user of the engine gets.
"""

from __future__ import annotations

import argparse
import copy
import json

import torch

from .evaluate import build_cases, load_tokenizer, load_torch, run_cases
from .train_data import an_before_vowels

TEXT_FIELD = {"generate": "prompt", "edit": "instruction", "understand": "question"}


def orange_cases(n: int, edits: int, questions: int, case_seed: int) -> list[dict]:
    """Up to n generation cases, `edits` edits and `questions` questions saying "a orange"."""
    pool = build_cases(max(n, 50) * 4, questions * 8, edits * 8, case_seed)
    want = {"generate": n, "edit": edits, "understand": questions}
    out = []
    for c in pool:
        field = TEXT_FIELD.get(c["task"])
        if field and want[c["task"]] > 0 and "a orange" in c[field]:
            out.append(c)
            want[c["task"]] -= 1
    return out


def reworded(cases: list[dict]) -> list[dict]:
    """The same cases with every "a" before a vowel written "an"."""
    out = copy.deepcopy(cases)
    for c in out:
        field = TEXT_FIELD[c["task"]]
        c[field] = an_before_vowels(c[field])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.articles", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="UniPic state dict / trainer checkpoint")
    ap.add_argument("--model-dir", default="unipic-tiny", help="manifest (sampling defaults) and tokenizer")
    ap.add_argument("--n", type=int, default=60, help="generation cases")
    ap.add_argument("--seeds", type=int, default=2, help="draws per generation case")
    ap.add_argument("--edits", type=int, default=60)
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--case-seed", type=int, default=20261204)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--served", action="store_true",
                    help="read the texts through --model-dir's tokenizer.json, as the engine does (its "
                         "normalizer rewrites \"an orange\"); default: the training tokenizer, which "
                         "measures the weights themselves")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_torch(a.model_dir, a.weights)
    tok = load_tokenizer(a.model_dir if a.served else None, model.cfg)
    cases = orange_cases(a.n, a.edits, a.questions, a.case_seed)
    out = {"weights": a.weights, "case_seed": a.case_seed, "cases": len(cases)}
    for name, cs in (("a", cases), ("an", reworded(cases))):
        summary, _ = run_cases(model, tok, cs, seeds=a.seeds)
        out[name] = summary
    print(json.dumps(out))


if __name__ == "__main__":
    main()
