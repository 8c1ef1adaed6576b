#!/usr/bin/env bash
# Post-processing of run cpu14 (after training stopped): fp16 copies, export, evaluations.
#   bash post.sh          fp16 copies, export, the engine's ShapesEval (and generation alone on other cases), the reference sampler's
#   bash post.sh --more   then only the proxy set and the picture failure modes
# It lives three folders under models/ (toolkit/runs/cpu14 while it ran, the records folder since).
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=toolkit/runs/cpu14
export OPENBLAS_NUM_THREADS=1 PYTHONUNBUFFERED=1
PY=/usr/bin/python3
SRC="trained by toolkit.train: 3180 steps on one NVIDIA H200 (runs 1-2), then 1849 steps on 2 CPU cores (run cpu3: canonical layouts, constant lr 3e-4, 250-step cool-down), 2380 more (run cpu4: 24 questions a step, the same schedule), 2414 more (run cpu6: the same recipe, 300-step cool-down), 2400 more (run cpu7: the same recipe), 2600 more (run cpu8: the same recipe), 2400 more (run cpu9: the same recipe), 2800 more (run cpu10: the same recipe), 2600 more (run cpu11: open colours shared per scene), 3000 more (run cpu12: the same recipe), 2600 more (run cpu13: the same recipe) and 2300 more (run cpu14: the same recipe with the changed tokens of edits weighed 3x), EMA weights models/checkpoints/unipic-tiny-ema-fp16.pt; see MODEL_CARD.md"
if [ "${1:-}" != "--more" ]; then
echo "[post] $(date -u +%T) fp16 + export"
$PY - <<PYEOF
import torch
for n in ("ema", "raw"):
    sd = torch.load("$R/%s.pt" % n, map_location="cpu")
    torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}, "$R/%s_fp16.pt" % n)
PYEOF
$PY -m toolkit.train --out $R --export-only --weights $R/ema_fp16.pt --export $R/export-ema --source "$SRC" \
  --sampling '{"temperature":0.7,"steps":32}' --edit-sampling '{"cfg":1.0}' > $R/export.log 2>&1
echo "[post] $(date -u +%T) engine eval"
(cd .. && MODEL_DIR=models/$R/export-ema npx unipic eval --json --n 50 --seeds 4 --questions 300 --edits 300 \
  --repeats 100 --case-seed 20261129 > models/$R/shapes_eval_caseseeds.json 2> models/$R/shapes_eval.err)
echo "[post] $(date -u +%T) engine eval, generation alone on other cases (paired with cpu13's)"
(cd .. && MODEL_DIR=models/$R/export-ema npx unipic eval --json --n 30 --seeds 4 --questions 0 --edits 0 --repeats 0 \
  --case-seed 20261130 > models/$R/shapes_eval_gen_seed20261130.json 2> models/$R/gen3.err)
echo "[post] $(date -u +%T) reference eval"
$PY -m toolkit.evaluate --model-dir $R/export-ema --weights $R/ema_fp16.pt --n-per-category 50 --seeds 4 --questions 300 \
  --edits 300 --repeats 100 --case-seed 20261129 --json > $R/ref_eval.json 2> $R/ref_eval.err
echo "[post] $(date -u +%T) evaluations done"
exit 0
fi
echo "[post] $(date -u +%T) proxy + gen_modes"
$PY -m toolkit.proxy --name cpu14-ema --threads 2 --eval-only $R/ema_fp16.pt --record $R/proxy.jsonl \
  --sampling '{"temperature":0.7,"steps":32}' --edit-sampling '{"cfg":1.0}' > $R/proxy.out 2>&1
$PY -m toolkit.gen_modes --weights $R/ema_fp16.pt --threads 2 > $R/gen_modes.json 2> $R/gen_modes.err
echo "[post] $(date -u +%T) done"
