"""Times the reference sampler on the same weights and parameters as the TypeScript engine, for
`npm run bench` (torch_reference_ms, speedup_vs_torch). Prints one JSON object on stdout.

    cd models && OPENBLAS_NUM_THREADS=1 /usr/bin/python3 -m toolkit.bench --steps 16 --cfg 3 \
        --diffusion-steps 25 --runs 5 [--weights runs/tiny/ema.pt | --random-seed 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from .fixtures import build_model
from .sampler import Draws, Runner


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m toolkit.bench")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--cfg", type=float, required=True)
    ap.add_argument("--cfg-schedule", default="constant")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--diffusion-steps", type=int, required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--random-seed", type=int, default=0)
    ap.add_argument("--weights")
    ap.add_argument("--prompt", default="a red circle")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, tok = build_model("tiny", a.random_seed, a.weights)
    runner = Runner(model, tok)
    params = {"steps": a.steps, "cfg": a.cfg, "cfgSchedule": a.cfg_schedule, "temperature": a.temperature,
              "diffusionSteps": a.diffusion_steps}
    runner.generate([a.prompt], Draws(0), params)  # warm-up
    times = []
    for i in range(a.runs):
        t0 = time.perf_counter()
        runner.generate([a.prompt], Draws(i + 1), params)
        times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"metric": "torch_reference_ms", "value": statistics.median(times), "runs": a.runs,
                      "threads": a.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
