#!/usr/bin/env bash
# The GPU check of issue 13, one command: builds the synthetic UniPic-1.5B checkpoint at full size,
# converts it (fused attention, fp16) and prints JSON lines comparing the engine (webgpu) with the
# torch reference (CUDA fp16) at 512 and 1024 (models/toolkit/gpu_check.py). Without a GPU it says
# so; `--tiny` runs the same steps at small widths on the CPU (the dry run).
#   scripts/gpu-check.sh [--tiny] [--work DIR] [--steps 32] [--diffusion-steps 100] [--batch 4]
set -euo pipefail
cd "$(dirname "$0")/../models"
# the interpreter that has torch: python3 on the GPU image, Debian's /usr/bin/python3 here
PY=python3
if ! python3 -c "import torch, onnx" 2>/dev/null; then PY=/usr/bin/python3; fi
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} PYTHONUNBUFFERED=1
args=("$@")
if [[ " $* " != *" --work "* ]]; then args+=(--work "${TMPDIR:-/tmp}/unipic-gpu-check"); fi
exec "$PY" -m toolkit.gpu_check "${args[@]}"
