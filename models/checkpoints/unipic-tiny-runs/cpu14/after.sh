#!/usr/bin/env bash
# After post.sh's evaluations: toolkit.diagnose and toolkit.edit_modes (the proxy set and gen_modes were not run: not shipped).
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=toolkit/runs/cpu14
export OPENBLAS_NUM_THREADS=1 PYTHONUNBUFFERED=1
PY=/usr/bin/python3
echo "[after] $(date -u +%T) diagnose + edit_modes"
$PY -m toolkit.diagnose --weights $R/ema_fp16.pt --open-colors each > $R/diagnose.json 2> $R/diagnose.err
$PY -m toolkit.edit_modes --weights $R/ema_fp16.pt --threads 2 > $R/edit_modes.json 2> $R/edit_modes.err
echo "[after] $(date -u +%T) done"
