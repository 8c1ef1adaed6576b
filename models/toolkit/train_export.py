"""Export of trained unipic-tiny weights (toolkit.train): the sampling-defaults sweep and the
models/<name> export through toolkit.export."""

from __future__ import annotations

import torch

from .config import fit_to_weights
from .evaluate import DeviceModel, build_cases, run_cases
from .model import UniPic
from .tokenizer import tiny_serving_tokenizer
from .train_data import tiny_tokenizer


# ---------------------------------------------------------------------------------------------
# export


def export_weights(weights_sd, out_dir, cfg, source, sampling=None, edit_sampling=None, preview_n=64):
    """EMA weights -> models/<name> via toolkit.export (the unchanged ONNX contract). sampling /
    edit_sampling: the manifest's sampling_defaults (whole) and edit_sampling_defaults (overrides)."""
    from .export import export
    cfg = fit_to_weights(cfg, weights_sd)
    if sampling:
        cfg = cfg.replace(sampling=dict(sampling))
    if edit_sampling:
        cfg = cfg.replace(edit_sampling=dict(edit_sampling))
    m = UniPic(cfg)
    m.load_state_dict({k: v.float().cpu() for k, v in weights_sd.items()}, strict=True)
    m.eval()
    import warnings
    with warnings.catch_warnings():  # torch.onnx tracer chatter (expected, see tests/conftest.py)
        warnings.simplefilter("ignore")
        man = export(m, tiny_serving_tokenizer(cfg.vocab_size), out_dir, name=f"unipic-{cfg.name}", source=source)
    return man


def sweep_sampling(weights_sd, cfg, device, n_gen=8, n_edit=40, seed=99, log=None):
    """Small sweep of cfg / temperature on fresh cases; score = mean(generation overall, editing)."""
    m = UniPic(fit_to_weights(cfg, weights_sd))
    m.load_state_dict({k: v.float().cpu() for k, v in weights_sd.items()})
    m.eval()
    dev = torch.device(device)
    runnable = DeviceModel(m.to(dev), dev) if dev.type == "cuda" else m
    tok, _ = tiny_tokenizer(cfg.vocab_size)
    cases = build_cases(n_gen, 0, n_edit, seed=seed)
    best, rows = None, []
    for c in (1.5, 3.0, 5.0):
        for temp in (0.7, 1.0):
            for sched in ("constant", "linear"):
                p = {"cfg": c, "temperature": temp, "cfgSchedule": sched}
                s, _ = run_cases(runnable, tok, cases, seeds=1, params=p, batch=64, draw_seed=seed)
                score = ((s["generation"] or {}).get("overall", 0) + (s["editing"] or 0)) / 2
                rows.append({**p, "score": score, "generation": s["generation"]["overall"], "editing": s["editing"]})
                if log:
                    log(f"[sweep] {p} -> gen {s['generation']['overall']:.3f} edit {s['editing']:.3f}")
                if best is None or score > best[0]:
                    best = (score, p)
    return {**cfg.sampling, **best[1]}, rows
