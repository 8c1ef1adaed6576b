"""The CPU proxy: a short fixed-budget fine-tune and a fixed evaluation, one JSON line (issue #17).

    cd models
    /usr/bin/python3 -m toolkit.proxy --name canonical -- --layout canonical
    /usr/bin/python3 -m toolkit.proxy --name base                       # today's recipe, same budget
    /usr/bin/python3 -m toolkit.proxy --name ckpt --eval-only checkpoints/unipic-tiny-ema-fp16.pt

Every recipe change is measured here before GPU time is spent on it. An arm warm-starts from the
committed weights (`--init`), trains `--steps` steps of toolkit.train with the proxy's defaults
(below) plus whatever follows `--`, then runs the EMA weights through the reference sampler on a
fixed case set: `--gen` prompts per generation category (one seed), `--edits` edits (the four
forms in turn), `--questions` questions and `--repeats` "Repeat this image." cases, all from
`--case-seed`, sampled with fixed draws. So two arms differ only in their recipe. The line has the
ShapesEval summary (with the edit forms, the kept-object fraction and the repeat rate), the last
logged losses, steps, samples and minutes; it is printed and appended to `--record`.

Budget: about 10 minutes of training and 2 of evaluation on 2 cores. Differences below about
0.05 on the generation overall (168 images) are within noise; read the categories and
`gen_objects` (partial credit: the named objects found, which moves before the score does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from . import train as T
from .evaluate import build_cases, load_torch, override_sampling, run_cases
from .tokenizer import ByteLevelBPE, build_tiny_tokenizer

# The proxy's training defaults (any of them can be overridden after `--`): a warm start at a
# constant learning rate, with an EMA short enough to follow a 400-step run.
TRAIN_DEFAULTS = ["--batch-gen", "32", "--batch-edit", "16", "--batch-und", "8", "--lr", "3e-4",
                  "--schedule", "constant", "--warmup", "20", "--ema", "0.99", "--eval-every", "0", "--no-final-eval", "--no-export",
                  "--log-every", "25", "--ckpt-every", "0", "--ckpt-minutes", "1000"]


def _last_losses(log_path: str) -> dict:
    last = {}
    if os.path.exists(log_path):
        with open(log_path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("stage") == "train":
                    last = r
    return {k: round(last[k], 4) for k in ("gen", "edit", "und", "und_acc") if k in last}


def objects_found(case: dict, detected) -> float:
    """Partial credit for a generated image: the fraction of the objects the prompt names (by
    shape, and colour when named; a count as that many) found, one to one, ignoring places and
    extra objects. It moves long before the all-or-nothing ShapesEval score does."""
    e = case["expect"]
    want = [e["count"]] * e["count"]["n"] if "count" in e else list(e["objects"])
    left, hit = list(detected), 0
    for w in want:
        for j, d in enumerate(left):
            if d.get("shape") == w["shape"] and ("color" not in w or d.get("color") == w["color"]):
                hit += 1
                del left[j]
                break
    return hit / len(want)


def evaluate_weights(weights: str, a, cfg_name: str = "tiny") -> dict:
    model = override_sampling(load_torch(None, weights, cfg_name), a.sampling, a.edit_sampling)
    tok = ByteLevelBPE(build_tiny_tokenizer(model.cfg.vocab_size))
    cases = build_cases(a.gen, a.questions, a.edits, a.case_seed, a.repeats)
    found = []
    summary, _ = run_cases(model, tok, cases, seeds=1, batch=a.eval_batch, draw_seed=a.draw_seed,
                           on_output=lambda c, det: found.append(objects_found(c, det))
                           if c["task"] == "generate" else None)
    summary["gen_objects"] = sum(found) / len(found) if found else None
    return summary


def _round(x):
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    return round(x, 4) if isinstance(x, float) else x


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(prog="python -m toolkit.proxy", description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True, help="the arm's name (its run folder and record key)")
    ap.add_argument("--init", default="checkpoints/unipic-tiny-ema-fp16.pt", help="warm start weights")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", default="toolkit/runs/proxy", help="run folders go here")
    ap.add_argument("--record", default="toolkit/runs/proxy.jsonl", help="JSON lines are appended here")
    ap.add_argument("--eval-only", metavar="WEIGHTS", help="skip training: evaluate these weights")
    ap.add_argument("--gen", type=int, default=24, help="prompts per generation category")
    ap.add_argument("--edits", type=int, default=64)
    ap.add_argument("--questions", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=16)
    ap.add_argument("--case-seed", type=int, default=4242)
    ap.add_argument("--draw-seed", type=int, default=7)
    ap.add_argument("--eval-batch", type=int, default=64)
    ap.add_argument("--sampling", help="JSON sampling overrides for the evaluation")
    ap.add_argument("--edit-sampling", help="JSON overrides for edits only (a manifest's edit_sampling_defaults)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    rec = {"name": a.name, "args": extra}
    if a.eval_only:
        weights = a.eval_only
        rec["init"] = a.eval_only
    else:
        out = os.path.join(a.runs, a.name)
        if os.path.exists(os.path.join(out, "log.jsonl")):
            os.remove(os.path.join(out, "log.jsonl"))
        targs = T.parse_args(["--out", out, "--init-from", a.init, "--steps", str(a.steps), "--device", "cpu",
                              "--threads", str(a.threads), *TRAIN_DEFAULTS, *extra])
        tr = T.Trainer(targs)
        vae_sd = tr.stage_vae()
        model, ema, state, _ = tr.stage_unipic(vae_sd)
        weights = os.path.join(out, "ema.pt")
        per_step = sum(getattr(targs, k) for k in ("batch_gen", "batch_edit", "batch_und"))
        rec.update({"init": a.init, "steps": state["step"], "samples": state["step"] * per_step,
                    "train_min": round(state["elapsed"] / 60, 2), "losses": _last_losses(tr.log.path)})
    t1 = time.time()
    rec["eval"] = _round(evaluate_weights(weights, a))
    rec["eval_min"] = round((time.time() - t1) / 60, 2)
    rec["sampling"] = json.loads(a.sampling) if a.sampling else None
    rec["edit_sampling"] = json.loads(a.edit_sampling) if a.edit_sampling else None
    rec["total_min"] = round((time.time() - t0) / 60, 2)
    line = json.dumps(rec)
    print(line, flush=True)
    if a.record:
        os.makedirs(os.path.dirname(a.record) or ".", exist_ok=True)
        with open(a.record, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
