#!/usr/bin/env bash
# Long training of unipic-tiny on the CPU, in the background, resumable (issue #17, item 6).
#
#     bash models/toolkit/cpu_train.sh            # start, or continue where the last one stopped
#     tail -f models/toolkit/runs/cpu/train.err   # progress; evaluations land in eval.jsonl
#     kill "$(cat models/toolkit/runs/cpu/pid)"    # stop (the next start resumes from ckpt.pt)
#
# The first start warm-starts from the committed weights (INIT, VAE included); every later start
# resumes RUN/ckpt.pt exactly (model, EMA, AdamW, step, RNG), so runs of any length add up. The
# recipe is the one the CPU proxy chose (docs/training.md); the learning rate is constant, so an
# interrupted run loses nothing but the steps since its last checkpoint (CKPT_MIN minutes).
# A run longer than a session: size it to the session instead (run folders do not outlive the machine,
# and weights are committed only when the full evaluation improves beyond noise, issue #17). Every
# run's env.txt holds its command, and its seed replays its data stream, so an unshipped run is
# replayed, not continued; cpu16 once committed part-ema-fp16.pt to continue across sessions.
# Every EVAL_MIN minutes the EMA weights go through the small fixed ShapesEval (eval.jsonl).
# Each run draws its own data stream: the first start writes its seed to RUN/seed (SEED, or one from
# the clock) and later starts reuse it. Runs cpu3 to cpu24 all trained on seed 0's stream from its
# first batch, so every run replayed the batches the weights had already seen (run cpu25's record).
# Knobs (environment): RUN, INIT, SEED, THREADS (2), BATCHES ("36 40 12" since run cpu37, which shipped with editing +0.016 at a paired error of 0.0069 and gave text-to-image back what a third run of the lean had cost counting, and cpu38 the same mix again shipped with +0.022 and generation up too; "28 48 12" in cpu34 to cpu36; "32 40 16" in cpu31; "40 24 24" from cpu4 to cpu30), LR (1e-4 since run cpu28; 3e-4 before: at 3e-4 every run re-heated the losses to one level, docs/training.md), EMA (0.999),
# EVAL_MIN (30), CKPT_MIN (5), MASK_MIN (0.5), TRAIN_ARGS (more toolkit.train flags), PYTHON (/usr/bin/python3).
# A tenth of edit sources are canonical pictures (--edit-drawn 0.1 since cpu34; 0.2 in cpu31, 0.5 before): the rest are random
# scenes, as the evaluation draws them. TRAIN_ARGS="--edit-drawn X" overrides it (the last flag wins).
set -euo pipefail
cd "$(dirname "$0")/.."                                    # models/
RUN=${RUN:-toolkit/runs/cpu}
INIT=${INIT:-checkpoints/unipic-tiny-ema-fp16.pt}
PY=${PYTHON:-/usr/bin/python3}
read -r BG BE BU <<<"${BATCHES:-36 40 12}"
mkdir -p "$RUN"
[ -f "$RUN/seed" ] || echo "${SEED:-$(( $(date +%s) % 100000 ))}" >"$RUN/seed"
if [ -f "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
  echo "already running (pid $(cat "$RUN/pid")) in $RUN"; exit 1
fi
# Where the CPU multiplies bf16 (AVX512-BF16 or AMX; toolkit.train's `--bf16 auto`), the matmuls run in
# oneDNN on torch's threads, so OpenBLAS gets one. Without it the matmuls are fp32 OpenBLAS calls, one at a
# time: BLAS gets the cores and torch's other ops one thread (2-core AVX2 EPYC, 2026-12-04, steps 2-6 alone:
# 7.1 s a step against 8.4 the other way round, and 12 with both at 2, as the two pools fight).
if grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
  TORCH_THREADS=${THREADS:-2} BLAS_THREADS=1
else
  TORCH_THREADS=1 BLAS_THREADS=${THREADS:-2}
fi
export OPENBLAS_NUM_THREADS=$BLAS_THREADS PYTHONUNBUFFERED=1
# shellcheck disable=SC2086
nohup nice -n 5 "$PY" -m toolkit.train --out "$RUN" --resume --init-from "$INIT" --device cpu \
    --threads "$TORCH_THREADS" --seed "$(cat "$RUN/seed")" --steps 10000000 --schedule constant --warmup 50 --lr "${LR:-1e-4}" \
    --ema "${EMA:-0.999}" --batch-gen "$BG" --batch-edit "$BE" --batch-und "$BU" \
    --layout canonical --open-colors shared --mask-min "${MASK_MIN:-0.5}" --edit-drawn 0.1 --w-und 1.0 --article-an 0.5 --snr-gamma 5 --eval-every 0 --eval-minutes "${EVAL_MIN:-30}" --ckpt-every 0 \
    --ckpt-minutes "${CKPT_MIN:-5}" --log-every 25 --no-final-eval --no-export ${TRAIN_ARGS:-} \
    >>"$RUN/eval.jsonl" 2>>"$RUN/train.err" &
echo $! >"$RUN/pid"
echo "training in the background: pid $!, run folder $RUN"
