"""ShapesEval of a UniPic model with the reference sampler (docs/shapesworld.md section 5 output).

    cd models
    /usr/bin/python3 -m toolkit.evaluate --model-dir unipic-tiny --json                 # ONNX graphs
    /usr/bin/python3 -m toolkit.evaluate --model-dir unipic-tiny --weights runs/tiny/ema.pt --json
    /usr/bin/python3 -m toolkit.evaluate --model-dir unipic-tiny --cases my.jsonl --json

Backends: with `--weights` (a UniPic state dict, e.g. the trainer's ema.pt) the torch modules run
(on --device; fast); without it, the exported ONNX graphs of --model-dir run in onnxruntime-node
(ortnode.OnnxUniPic: exactly the graphs the TypeScript engine runs; slower, per-call IPC). Either
way the loop is sampler.Runner, and the sampling parameters are the manifest's
`sampling_defaults` (override with --sampling '{"cfg": 2}').

Cases: fresh random ones (`--n-per-category` prompts per generation category, each sampled with
`--seeds` seeds as GenEval does, `--questions` understanding and `--edits` edit cases, drawn from
`--case-seed`), or a JSONL file (`--cases`), each generation case then sampled `--seeds` times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time

import numpy as np
import torch

from . import shapes as S
from .config import fit_to_weights, get_config
from .sampler import Draws, Runner, from_uint8, to_uint8
from .tokenizer import ByteLevelBPE


# ---------------------------------------------------------------------------------------------
# cases


def build_cases(n_per_category: int, questions: int, edits: int, seed: int = 0, repeats: int = 0) -> list[dict]:
    """Fresh random cases in the section 5 format (generation categories in order, then the
    understanding forms and edit forms cycled, then `repeats` "Repeat this image." edits)."""
    rng = random.Random(seed)
    out = []
    for cat in S.GEN_CATEGORIES:
        out += [S._gen_case(rng, cat)[0] for _ in range(n_per_category)]
    out += [S._und_case(rng, S.UNDERSTAND_FORMS[k % len(S.UNDERSTAND_FORMS)]) for k in range(questions)]
    out += [S._edit_case(rng, S.EDIT_FORMS[k % len(S.EDIT_FORMS)])[0] for k in range(edits)]
    out += [S._repeat_case(rng)[0] for _ in range(repeats)]
    return out


# ---------------------------------------------------------------------------------------------
# a torch UniPic on any device, seen by the (CPU) reference sampler


class DeviceModel:
    """Role functions of a torch UniPic living on `device`: inputs move there, outputs come back to
    the CPU, so sampler.Runner (written for CPU tensors) drives a CUDA model unchanged."""

    def __init__(self, model, device, autocast: bool = False):
        self.m, self.dev, self.cfg = model, torch.device(device), model.cfg
        self.autocast = autocast and self.dev.type == "cuda"
        self.llm = self
        self.mar = self

    def _go(self, fn, *args):
        a = [x.to(self.dev) if isinstance(x, torch.Tensor) else x for x in args]
        ac = torch.autocast("cuda", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()
        with torch.no_grad(), ac:
            r = fn(*a)
        return r

    @staticmethod
    def _back(x):
        return x.float().cpu()

    def pos_tables(self, h, w):
        return tuple(t.cpu() for t in self.m.mar.pos_tables(h, w))

    def empty_past(self, B):
        c = self.cfg
        z = torch.zeros(B, c.llm_kv_heads, 0, c.llm_head_dim)
        return [(z, z) for _ in range(c.llm_layers)]

    def vae_encode(self, px):
        return self._back(self._go(self.m.vae_encode, px))

    def vae_decode(self, z):
        return self._back(self._go(self.m.vae_decode, z))

    def mar_encoder(self, lat, idx, pos):
        return tuple(self._back(t) for t in self._go(self.m.mar_encoder, lat, idx, pos))

    def mar_fill(self, x, c):
        return self._back(self._go(self.m.mar_fill, x, c))

    def mar_decoder(self, *a):
        return self._back(self._go(self.m.mar_decoder, *a))

    def diffusion_head(self, x, t, c):
        return self._back(self._go(self.m.diffusion_head, x, t, c))

    def llm_forward(self, ids, emb, emask, attn, pos, past):
        past = [(k.to(self.dev), v.to(self.dev)) for k, v in past]
        h, lg, pres = self._go(self.m.llm_forward, ids, emb, emask, attn, pos, past)
        return self._back(h), self._back(lg), [(self._back(k), self._back(v)) for k, v in pres]


# ---------------------------------------------------------------------------------------------
# running the cases


def _chunks(xs, n):
    for i in range(0, len(xs), n):
        yield i, xs[i:i + n]


def mode_shares(rows, modes, means=()) -> dict:
    """Failure-mode tables of toolkit.gen_modes and toolkit.edit_modes: rows [(key, {mode: bool},
    {name: number})] -> {key: {"n": rows, mode: share of rows where it holds (modes), name: mean
    (means)}}, keys sorted."""
    acc: dict = {}
    for k, flags, values in rows:
        c = acc.setdefault(k, dict.fromkeys(("n", *modes, *means), 0))
        c["n"] += 1
        for m in modes:
            c[m] += int(flags[m])
        for m in means:
            c[m] += values[m]
    return {k: {"n": c["n"], **{m: round(c[m] / c["n"], 3) for m in modes},
                **{m: round(c[m] / c["n"], 2) for m in means}} for k, c in sorted(acc.items())}


def run_cases(model, tok, cases, seeds: int = 1, params: dict | None = None, batch: int = 64,
              size: int | None = None, draw_seed: int = 0, progress=None,
              on_output=None) -> tuple[dict, list[dict]]:
    """model: UniPic, DeviceModel or ortnode.OnnxUniPic. -> (summary, per-case results).
    Generation cases are sampled `seeds` times (draws seeded draw_seed + 1000*s + chunk index),
    edits once, understanding greedily. on_output(case, detected), if given, sees every generated
    or edited image's detections (extra diagnostics, e.g. toolkit.proxy's partial credit)."""
    runner = Runner(model, tok, size)
    res = size or model.cfg.default_resolution
    results: list[dict | None] = [None] * len(cases)
    gen = [(i, c) for i, c in enumerate(cases) if c["task"] == "generate"]
    und = [(i, c) for i, c in enumerate(cases) if c["task"] == "understand"]
    edi = [(i, c) for i, c in enumerate(cases) if c["task"] == "edit"]
    scores = {i: [] for i, _ in gen}
    for s in range(seeds):
        for k, chunk in _chunks(gen, batch):
            _, px = runner.generate([c["prompt"] for _, c in chunk], Draws(draw_seed + 1000 * s + k), params)
            for (i, c), img in zip(chunk, to_uint8(px).numpy()):
                det = S.detect(img)
                scores[i].append(S.score_generate(c, det))
                if on_output:
                    on_output(c, det)
            if progress:
                progress(f"generate seed {s}: {min(k + batch, len(gen))}/{len(gen)}")
    for i, c in gen:
        results[i] = S.case_result(c, scores[i])
    for k, chunk in _chunks(edi, batch):
        src = np.stack([S.render(c["scene"], res) for _, c in chunk])
        _, px = runner.edit(from_uint8(src), [c["instruction"] for _, c in chunk],
                            Draws(draw_seed + 777_000 + k), params)
        for (i, c), img in zip(chunk, to_uint8(px).numpy()):
            det = S.detect(img)
            results[i] = S.case_result(c, [S.score_edit(c, det)], kept=S.score_kept(c, det))
            if on_output:
                on_output(c, det)
        if progress:
            progress(f"edit: {min(k + batch, len(edi))}/{len(edi)}")
    for i, c in und:
        img = S.render(c["scene"], res)[None]
        _, text = runner.understand(from_uint8(img), c["question"])
        results[i] = S.case_result(c, [S.score_understand(c, text)])
    return S.summarize(results), results


# ---------------------------------------------------------------------------------------------
# loading


def load_torch(model_dir: str | None, weights: str, config: str = "tiny"):
    """UniPic with a state dict (fp32 or fp16), sampling defaults from the manifest when given."""
    from .model import UniPic
    man = _manifest(model_dir)
    sd = torch_load(weights)
    if isinstance(sd, dict) and "ema" in sd and "model" in sd:  # a trainer checkpoint
        sd = sd["ema"]
    cfg = fit_to_weights(_cfg_from_manifest(get_config(man["config"] if man else config), man), sd)
    model = UniPic(cfg)
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return model.eval()


def torch_load(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # very old torch without weights_only
        return torch.load(path, map_location="cpu")


def _manifest(model_dir):
    if not model_dir:
        return None
    with open(os.path.join(model_dir, "manifest.json")) as f:
        return json.load(f)


def _cfg_from_manifest(cfg, man):
    if not man:
        return cfg
    return cfg.replace(sampling=dict(man["sampling_defaults"]),
                       edit_sampling=dict(man.get("edit_sampling_defaults") or {}),
                       max_new_tokens=man["understanding_defaults"]["max_new_tokens"])


def override_sampling(model, sampling: str | None = None, edit_sampling: str | None = None):
    """Sampling overrides (JSON text, e.g. from a --sampling flag) over the model's defaults, in place:
    `sampling` over cfg.sampling, `edit_sampling` over the edit-only cfg.edit_sampling."""
    if sampling:
        model.cfg = model.cfg.replace(sampling={**model.cfg.sampling, **json.loads(sampling)})
    if edit_sampling:
        model.cfg = model.cfg.replace(edit_sampling={**model.cfg.edit_sampling, **json.loads(edit_sampling)})
    return model


def load_tokenizer(model_dir: str | None, cfg=None) -> ByteLevelBPE:
    if model_dir:
        return ByteLevelBPE.from_file(os.path.join(model_dir, "tokenizer.json"))
    from .tokenizer import build_tiny_tokenizer
    return ByteLevelBPE(build_tiny_tokenizer((cfg or get_config("tiny")).vocab_size))


def pick_device(name: str = "auto") -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", help="exported folder (manifest.json, graphs, tokenizer.json)")
    ap.add_argument("--weights", help="UniPic state dict / trainer checkpoint: run the torch modules")
    ap.add_argument("--config", default="tiny", help="without --model-dir")
    ap.add_argument("--cases", help="JSONL case file (docs/shapesworld.md section 5) instead of fresh cases")
    ap.add_argument("--n-per-category", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--edits", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=100, help='"Repeat this image." cases (reported as "repeat")')
    ap.add_argument("--case-seed", type=int, default=20261127)
    ap.add_argument("--sampling", help="JSON object overriding sampling_defaults, e.g. '{\"cfg\": 2}'")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", action="store_true", help="print only the summary JSON on stdout")
    ap.add_argument("--out", help="also write {summary, results, ...} to this file")
    ap.add_argument("--results", help="also write each case's result, one JSON line a case in case order "
                                      "(as `npx unipic eval --results`; toolkit.compare_evals pairs them)")
    a = ap.parse_args(argv)
    if not a.model_dir and not a.weights:
        ap.error("give --model-dir (ONNX) and/or --weights (torch)")
    if torch.get_num_threads() > 1 and os.environ.get("OPENBLAS_NUM_THREADS") is None:
        torch.set_num_threads(1)
    t0 = time.time()
    server = None
    if a.weights:
        model = load_torch(a.model_dir, a.weights, a.config)
        dev = pick_device(a.device)
        runnable = DeviceModel(model.to(dev), dev) if dev != "cpu" else model
        cfg = model.cfg
        backend = f"torch ({dev})"
    else:
        from .ortnode import OnnxUniPic, OrtServer, node_available
        if not node_available():
            sys.exit("evaluate: the ONNX backend needs node and onnxruntime-node (../node_modules); "
                     "or pass --weights for the torch backend")
        man = _manifest(a.model_dir)
        cfg = _cfg_from_manifest(get_config(man["config"]), man)
        server = OrtServer()
        runnable = OnnxUniPic(a.model_dir, cfg, server)
        backend = "onnxruntime-node"
    tok = load_tokenizer(a.model_dir, cfg)
    if a.cases:
        with open(a.cases, encoding="utf-8") as f:
            cases = S.parse_cases(f.read(), a.cases)
    else:
        cases = build_cases(a.n_per_category, a.questions, a.edits, a.case_seed, a.repeats)
    params = json.loads(a.sampling) if a.sampling else None
    prog = None if a.json else (lambda m: print(f"[evaluate] {m}", file=sys.stderr, flush=True))
    try:
        summary, results = run_cases(runnable, tok, cases, seeds=a.seeds, params=params, batch=a.batch,
                                     progress=prog)
    finally:
        if server is not None:
            server.close()
    dt = time.time() - t0
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"summary": summary, "backend": backend, "seeds": a.seeds, "seconds": round(dt, 1),
                       "sampling": {**cfg.sampling, **(params or {})}, "results": results}, f)
    if a.results:
        with open(a.results, "w") as f:
            f.writelines(json.dumps({"case": i, **r}) + "\n" for i, r in enumerate(results))
    print(json.dumps(summary))
    if not a.json:
        print(f"[evaluate] {len(cases)} cases, backend {backend}, {dt:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
