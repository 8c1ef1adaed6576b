"""MODEL_CARD figures from a training run: `python -m toolkit.card --eval shapes_eval.json --log log.jsonl`.

Prints markdown (training facts from the trainer's log.jsonl, ShapesEval per category from
evaluate.py --out) to paste into models/unipic-tiny/MODEL_CARD.md; nothing is invented: a figure
missing from the inputs is printed as "n/a".

`--examples WEIGHTS --sheet PNG` draws the card's example sheet with the reference sampler at the
manifest's defaults (`--model-dir`): one row per prompt of EXAMPLE_PROMPTS (4 seeds), then one row
per edit of EXAMPLE_EDITS (source, then 3 seeds), upscaled 2x, unfiltered: failures included.
"""

from __future__ import annotations

import argparse
import json

from .shapes import EDIT_FORMS, GEN_CATEGORIES

FLOOR = {"overall": 0.80, "category": 0.50, "understanding": 0.90, "editing": 0.70, "form": 0.50,
         "repeat": 0.95}


def _f(x):
    return "n/a" if x is None else f"{x:.3f}"


def figures(eval_path: str | None, log_path: str | None) -> str:
    lines = []
    if log_path:
        recs = [json.loads(x) for x in open(log_path) if x.strip()]
        vae = [r for r in recs if r.get("stage") == "vae_done"]
        tr = [r for r in recs if r.get("stage") == "train"]
        evs = [r for r in recs if r.get("stage") == "eval"]
        lines.append("## Training run (from log.jsonl)\n")
        if vae:
            v = vae[-1]
            lines.append(f"- VAE: {v.get('steps')} steps, {v.get('minutes')} min; detector agreement of "
                         f"reconstructions {_f(v.get('detector_agreement'))} on {v.get('n')} fresh scenes, "
                         f"mean abs error {v.get('mae_uint8', 0):.2f}/255")
        if tr:
            last = tr[-1]
            lines.append(f"- UniPic: {last['step']} steps, {last['elapsed_s'] / 60:.1f} min of training, "
                         f"{last['s_per_step']:.3f} s/step; final losses gen {last.get('gen', 0):.4f}, "
                         f"edit {last.get('edit', 0):.4f}, und {last.get('und', 0):.4f}")
        if evs:
            lines.append("\n| step | gen overall | understanding | editing | kept | repeat |\n"
                         "| ---: | ---: | ---: | ---: | ---: | ---: |")
            for e in evs:
                g = (e.get("generation") or {}).get("overall")
                lines.append(f"| {e['step']} | {_f(g)} | {_f(e.get('understanding'))} | {_f(e.get('editing'))} "
                             f"| {_f(e.get('kept'))} | {_f(e.get('repeat'))} |")
        lines.append("")
    if eval_path:
        d = json.load(open(eval_path))
        s = d.get("summary", d)
        g = s.get("generation") or {}
        lines.append(f"## ShapesEval ({s.get('cases')} cases, {d.get('seeds', '?')} seeds per prompt, "
                     f"backend {d.get('backend', '?')}, sampling {json.dumps(d.get('sampling'))})\n")
        lines.append("| metric | score | floor |\n| --- | ---: | ---: |")
        for c in GEN_CATEGORIES:
            lines.append(f"| generation / {c} | {_f(g.get(c))} | {FLOOR['category']:.2f} |")
        lines.append(f"| **generation overall** | {_f(g.get('overall'))} | {FLOOR['overall']:.2f} |")
        lines.append(f"| **understanding** (exact match) | {_f(s.get('understanding'))} | {FLOOR['understanding']:.2f} |")
        lines.append(f"| **editing** | {_f(s.get('editing'))} | {FLOOR['editing']:.2f} |")
        forms = s.get("editing_forms") or {}
        for f in EDIT_FORMS:
            lines.append(f"| editing / {f} | {_f(forms.get(f))} | {FLOOR['form']:.2f} |")
        lines.append(f"| edits keep the objects they do not name (`kept`) | {_f(s.get('kept'))} | |")
        lines.append(f"| \"Repeat this image.\" reproduces the source (`repeat`) | {_f(s.get('repeat'))} "
                     f"| {FLOOR['repeat']:.2f} |")
    return "\n".join(lines) + "\n"


# One prompt per generation category (and the region phrase), and the README's conversation edit.
EXAMPLE_PROMPTS = ["a red circle", "a blue square and a green triangle", "three circles", "a yellow triangle",
                   "a circle to the left of a square", "a red square and a blue circle",
                   "a green circle in the top left"]
EXAMPLE_EDITS = [([{"shape": "circle", "color": "red", "cx": 0.5, "cy": 0.5, "s": 0.14}], "make the circle blue"),
                 ([{"shape": "square", "color": "green", "cx": 0.3, "cy": 0.5, "s": 0.14},
                   {"shape": "circle", "color": "red", "cx": 0.7, "cy": 0.5, "s": 0.14}], "remove the red circle"),
                 ([{"shape": "triangle", "color": "blue", "cx": 0.5, "cy": 0.5, "s": 0.14}], "Repeat this image.")]


def example_sheet(weights: str, model_dir: str | None, out: str, seeds: int = 4) -> None:
    """A PNG grid [rows x seeds] of 64x64 samples (2x), generation rows then edit rows."""
    import numpy as np
    from PIL import Image

    from . import shapes as S
    from .evaluate import load_tokenizer, load_torch
    from .sampler import Draws, Runner, from_uint8, to_uint8
    model = load_torch(model_dir, weights)
    runner = Runner(model, load_tokenizer(model_dir, model.cfg))
    size = model.cfg.default_resolution
    rows = []
    for p in EXAMPLE_PROMPTS:
        _, px = runner.generate([p] * seeds, Draws(11))
        rows.append(list(to_uint8(px).numpy()))
    for scene, instr in EXAMPLE_EDITS:
        src = S.render(scene, size)
        _, px = runner.edit(from_uint8(np.stack([src] * (seeds - 1))), [instr] * (seeds - 1), Draws(12))
        rows.append([src, *to_uint8(px).numpy()])
    gap = 4
    sheet = np.full((len(rows) * (2 * size + gap), seeds * (2 * size + gap), 3), 128, np.uint8)
    for r, imgs in enumerate(rows):
        for c, img in enumerate(imgs):
            y, x = r * (2 * size + gap), c * (2 * size + gap)
            sheet[y:y + 2 * size, x:x + 2 * size] = img.repeat(2, 0).repeat(2, 1)
    Image.fromarray(sheet).save(out, optimize=True)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.card", description=__doc__.split("\n")[0])
    ap.add_argument("--eval", help="evaluate.py --out file")
    ap.add_argument("--log", help="trainer log.jsonl")
    ap.add_argument("--examples", metavar="WEIGHTS", help="draw the example sheet of these weights")
    ap.add_argument("--model-dir", default="unipic-tiny", help="with --examples: manifest (sampling defaults, tokenizer)")
    ap.add_argument("--sheet", default="examples.png", help="with --examples: the PNG to write")
    a = ap.parse_args(argv)
    if a.examples:
        example_sheet(a.examples, a.model_dir, a.sheet)
        return
    print(figures(a.eval, a.log), end="")


if __name__ == "__main__":
    main()
