"""The command-line flags of toolkit.train (every knob of the recipe, with its default and why).

Split from train.py so the trainer reads as the training loop; `toolkit.train.parse_args` is this.
"""

from __future__ import annotations

import argparse

DESCRIPTION = "Train unipic-tiny on ShapesWorld: stage A the KL VAE, stage B UniPic on all three tasks."


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.train", description=DESCRIPTION)
    ap.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, ema.pt")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="stage B steps (schedule length); default 30000 "
                    "unless --minutes is given, then the length is fitted to the measured speed")
    ap.add_argument("--minutes", type=float, default=None, help="stage B wall-clock budget (training time)")
    ap.add_argument("--reserve-minutes", type=float, default=0.0,
                    help="with --minutes and no --steps: end the cosine this much before the budget")
    ap.add_argument("--batch-gen", type=int, default=64)
    ap.add_argument("--batch-edit", type=int, default=48)
    ap.add_argument("--batch-und", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-mar", type=float, default=1.0,
                    help="the image side (MAR encoder, decoder, diffusion head, projectors) trains at this many "
                    "times --lr: an edit's binding is learned there, while the LLM slides at rates above 3e-4")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--schedule", default="constant", choices=["constant", "cosine"],
                    help="constant: warm-up, constant lr, --cooldown at the end (runs continue cleanly); "
                    "cosine: warm-up, cosine to 0.1x (how the first GPU weights were trained)")
    ap.add_argument("--cooldown", type=int, default=0,
                    help="with --schedule constant: steps of linear decay to 0.1x before the end (0: none)")
    ap.add_argument("--wd", type=float, default=0.02)
    ap.add_argument("--clip", type=float, default=2.0)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--w-gen", type=float, default=1.0)
    ap.add_argument("--w-edit", type=float, default=1.0)
    ap.add_argument("--w-und", type=float, default=0.5)
    ap.add_argument("--edit-focus", type=float, default=0.0,
                    help="extra loss weight on the edit target tokens that differ from the source (0: plain mean)")
    ap.add_argument("--edit-focus-on", default="latent", choices=["latent", "pixels", "objects"],
                    help="which tokens --edit-focus weighs: those whose latent moves (the VAE spreads a change "
                    "to neighbours), those whose own patch of pixels changes, or every token an object "
                    "covers in the source or the target (the change and the objects it keeps)")
    ap.add_argument("--diff-mul", type=int, default=4, help="diffusion_batch_mul")
    ap.add_argument("--snr-gamma", type=float, default=0.0,
                    help="Min-SNR weighting of the eps loss (e.g. 5); 0 = uniform over t")
    ap.add_argument("--layout", default="random", choices=["random", "canonical", "fixed"],
                    help="training targets: any scene that fits the prompt, or the slots of shapes/layouts.py "
                    "with small jitter (canonical) or exactly (fixed)")
    ap.add_argument("--open-colors", default="each", choices=["each", "shared"],
                    help="canonical targets: colours a prompt leaves open drawn for each object, or one "
                    "shared by the scene's open objects")
    # Shares of the batch drawn another way, each 0 by default (and then the data stream is as before)
    for flag, what in (
            ("--edit-drawn", "edit sources drawn like the model's own pictures (canonical layouts) instead of "
                             "random scenes"),
            ("--edit-uncond", 'edit samples trained with UniPic\'s unconditional "Edit this image." and the edit '
                              "target kept, so the change can only be read from the visible target tokens"),
            ("--edit-isolate", 'edit samples that are the training-only "keep only the square" on 2-4 objects: every '
                               "object's tokens depend on finding the one named (docs/training.md)"),
            ("--und-where", 'questions that ask "where is the <colour> <shape>?": locating a named object among '
                            "several is the understanding an edit needs and the one that weakens (docs/training.md)"),
            ("--article-an", 'texts whose "a orange" is written "an orange", as users write it: ShapesWorld\'s '
                             "templates say \"a\" before every colour, so a model trained on them alone reads "
                             "\"an orange\" worse (docs/training.md)")):
        ap.add_argument(flag, type=float, default=0.0, help=f"share of {what}")
    ap.add_argument("--edit-min-objects", type=int, default=1,
                    help="random edit sources hold this many objects or more (up to the world's 4): edits of "
                    "one object already succeed, several objects is where they fail (docs/training.md)")
    ap.add_argument("--mask-min", type=float, default=0.7,
                    help="lower bound of the truncnorm(1, 0.25) mask ratio (MAR: 0.7; lower shows more visible tokens)")
    ap.add_argument("--cfg-drop", type=float, default=0.1, help="prompt dropout to the CFG negative")
    # Depths a warm start may grow (train.GROWN_FIELDS): new blocks start as identities, so the grown
    # model begins where its weights were. Default: what the --init-from weights hold, else the config's.
    for flag, what in (("--mar-enc-blocks", "MAR encoder depth (it reads an edit's source and every visible token)"),
                       ("--mar-dec-blocks", "MAR decoder depth"),
                       ("--head-blocks", "diffusion-head depth (AdaLN residual blocks)"),
                       ("--llm-layers", "LLM depth")):
        ap.add_argument(flag, type=int, default=None,
                        help=f"{what}; above the --init-from weights' depth the new blocks start as identities "
                        "(default: the weights' depth, else the config's)")
    ap.add_argument("--buffer-tokens", type=int, default=None,
                    help="MAR buffer tokens (the LLM's slots that condition every masked token); above the "
                    "--init-from weights' count the new ones start as copies of the old (default: the weights')")
    ap.add_argument("--bf16", default="auto", choices=["auto", "on", "off"])
    ap.add_argument("--static", default="auto", choices=["auto", "on", "off"],
                    help="fixed-shape training pass (train_static.py); auto: on CUDA")
    ap.add_argument("--compile", default="auto", choices=["auto", "on", "off"],
                    help="torch.compile the static pass, kept only if it measures faster; auto: on CUDA")
    ap.add_argument("--compile-mode", default="reduce-overhead",
                    help="torch.compile mode (reduce-overhead = CUDA graphs)")
    ap.add_argument("--compile-probe", type=int, default=10,
                    help="steps timed eager and compiled before choosing (after up to 3 warm-up steps)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU); default 1")
    ap.add_argument("--workers", type=int, default=None, help="data processes (default: 0 on CPU, up to 12 on CUDA)")
    # stage A
    ap.add_argument("--vae-steps", type=int, default=4000)
    ap.add_argument("--vae-minutes", type=float, default=None)
    ap.add_argument("--vae-batch", type=int, default=64)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-agree-n", type=int, default=200)
    ap.add_argument("--vae-stats-n", type=int, default=512, help="scenes for the latent standardisation")
    # logging / eval / checkpoints
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=1000, help="0: no periodic evaluation")
    ap.add_argument("--eval-minutes", type=float, default=None,
                    help="also evaluate every N minutes of wall clock (when the step rate is unknown ahead)")
    ap.add_argument("--no-final-eval", dest="final_eval", action="store_false")
    ap.add_argument("--eval-gen", type=int, default=12, help="prompts per generation category (1 seed)")
    ap.add_argument("--eval-und", type=int, default=60)
    ap.add_argument("--eval-edit", type=int, default=60)
    ap.add_argument("--eval-repeat", type=int, default=12, help='"Repeat this image." cases')
    ap.add_argument("--eval-seed", type=int, default=31337)
    ap.add_argument("--eval-batch", type=int, default=72)
    ap.add_argument("--ckpt-every", type=int, default=500)
    ap.add_argument("--ckpt-minutes", type=float, default=10.0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init-from", help="warm start: UniPic weights (e.g. an earlier run's ema.pt / ema_fp16.pt, "
                    "VAE included) with a fresh optimizer and schedule; use another --seed to see new data")
    ap.add_argument("--stop-after", type=int, default=None, help="stop this invocation after N steps (resume later)")
    # export
    ap.add_argument("--export", default=None, help="export the EMA weights here (default OUT/unipic-tiny)")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--export-only", action="store_true", help="export OUT/ema.pt (or --weights) and stop")
    ap.add_argument("--weights", help="with --export-only: a UniPic state dict to export instead of OUT/ema.pt")
    ap.add_argument("--source", help="with --export-only: the manifest's `source` text (how the weights were made)")
    ap.add_argument("--sweep", action="store_true", help="tune sampling_defaults by a small sweep before export")
    ap.add_argument("--sampling", help='JSON over the config\'s sampling defaults for the manifest, e.g. \'{"steps": 32}\'')
    ap.add_argument("--edit-sampling", help="JSON: the manifest's edit_sampling_defaults (edit-only overrides)")
    a = ap.parse_args(argv)
    if a.steps is None and a.minutes is None:
        a.steps = 30000
    return a
