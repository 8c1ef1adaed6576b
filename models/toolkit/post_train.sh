#!/usr/bin/env bash
# After a CPU run of cpu_train.sh stopped: fp16 copies, the export, the paired evaluations, and the
# comparison with the shipped weights' records (issue #17, item 7: weights ship only when the full
# evaluation improves beyond noise). One script for every run, so a run's record is its command.
#
#     bash toolkit/post_train.sh RUN "WHAT" [STAGE]            (from models/)
#
#   RUN    the run folder, e.g. toolkit/runs/cpu15
#   WHAT   what the run added to the shipped weights, for the export's source line,
#          e.g. "2300 more (run cpu15: the same recipe)"
#   STAGE  evals (default): fp16 copies, export, the engine's ShapesEval (own seeds per case), generation
#                alone on other cases, the reference sampler, then compare.json (~30 min on 2 cores)
#          more: the proxy set and gen_modes (for a run about to ship: its card row)
#          diagnose: toolkit.diagnose --open-colors each and toolkit.edit_modes (why it fails)
#          quick: fp16 copies, export, generation alone on other cases and its comparison
#                (compare_gen.json): a look at a run stopped part way, to be continued later
#          edits: 1,800 edits alone through the engine, six case sets of 300 (EDIT_SEEDS), pooled
#                case by case with the base's (compare_edits.json): editing's paired error is
#                about 0.008 here against 0.0185 on the 300 edits of `evals` (about 18 min)
#
# Knobs (environment): BASE, the records of the shipped weights whose cases and draws are reused
# (default: checkpoints/unipic-tiny-runs/ of the last run the shipped manifest's source names, its
# resampled/ folder where the defaults changed after it shipped);
# REF (1): 0 skips the reference sampler's pass of `evals` (the third pairing, the longest: about a
# third of the stage), for a session that cannot wait for it; PYTHON (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."                                    # models/
R=${1:?run folder (toolkit/runs/cpuN)}
WHAT=${2:?what the run added, e.g. \"2300 more (run cpu15: the same recipe)\"}
STAGE=${3:-evals}
REF=${REF:-1}
NAME=$(basename "$R")
PY=${PYTHON:-/usr/bin/python3}
export OPENBLAS_NUM_THREADS=1 PYTHONUNBUFFERED=1
# The evaluation every record since run cpu13 uses: fixed case seeds, so runs pair case by case.
EVAL_ARGS="--n 50 --seeds 4 --questions 300 --edits 300 --repeats 100 --case-seed 20261129"
GEN_ARGS="--n 30 --seeds 4 --questions 0 --edits 0 --repeats 0 --case-seed 20261130"
# Edits alone on six case sets (stage `edits`): the shipped weights' records are in BASE/edits/ since cpu28.
EDIT_SEEDS=${EDIT_SEEDS:-"20261129 20261131 20261205 20261206 20261207 20261208"}
# A run is exported and measured at the shipped sampling defaults (unipic-tiny/MODEL_CARD.md, "Sampling
# defaults"), read from the shipped manifest so a new sweep's choice is written in one place.
manifest_json() { "$PY" -c 'import json, sys; print(json.dumps(json.load(open("unipic-tiny/manifest.json")).get(sys.argv[1], {})))' "$1"; }
SAMPLING=$(manifest_json sampling_defaults)
EDIT_SAMPLING=$(manifest_json edit_sampling_defaults)
say() { echo "[post $NAME] $(date -u +%T) $*"; }
[ -f "$R/ema.pt" ] || { echo "no $R/ema.pt: has the run saved a checkpoint?" >&2; exit 1; }

# The run's export through the engine: NAME.json (the summary), NAME.cases.jsonl (each case's result)
# and NAME.err (the progress bar) under the run folder; the rest of the arguments are the eval's flags.
engine_eval() {
  local name=$1
  shift
  (cd .. && MODEL_DIR="models/$R/export-ema" npx unipic eval --json "$@" --results "models/$R/$name.cases.jsonl" \
    > "models/$R/$name.json" 2> "models/$R/$name.err")
}

eval_gen() {
  say "engine, generation alone on other cases"
  # shellcheck disable=SC2086
  engine_eval shapes_eval_gen_seed20261130 $GEN_ARGS
}

# The shipped weights' own records (BASE): the last run the shipped source line names.
base_records() {
  local shipped_run
  shipped_run=$("$PY" -c 'import json; print(json.load(open("unipic-tiny/manifest.json"))["source"])' \
    | grep -o '(run cpu[0-9]*' | tail -1 | cut -c6-)
  BASE=${BASE:-checkpoints/unipic-tiny-runs/$shipped_run}
  # Sampling defaults changed after those weights shipped: their records at the new defaults.
  [ -d "$BASE/resampled" ] && BASE="$BASE/resampled"
  return 0
}

# The base's records a stage pairs with, checked before the first minute is spent (each stage its own:
# `edits` once stopped here on the reference sampler's record, which only `evals` reads).
need_base() {
  base_records
  local f
  for f in "$@"; do
    [ -f "$BASE/$f" ] || { echo "no $BASE/$f to pair with (set BASE)" >&2; exit 1; }
  done
}

export_run() {
  # The shipped source line ends "... and N more (run cpuK: ...), EMA weights ...": this run joins the list.
  SHIPPED=$("$PY" -c 'import json; print(json.load(open("unipic-tiny/manifest.json"))["source"])')
  SRC=$("$PY" - "$SHIPPED" "$WHAT" <<'PYEOF'
import sys
runs, tail = sys.argv[1].split(", EMA weights", 1)
head, last = runs.rsplit(" and ", 1)
print(f"{head}, {last} and {sys.argv[2]}, EMA weights{tail}")
PYEOF
)
  say "fp16 + export"
  # fp16 copies of the EMA and raw weights: what ships (tens of MB each, half the float32 size)
  "$PY" - "$R" <<'PYEOF'
import sys, torch
for n in ("ema", "raw"):
    sd = torch.load(f"{sys.argv[1]}/{n}.pt", map_location="cpu")
    torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}, f"{sys.argv[1]}/{n}_fp16.pt")
PYEOF
  "$PY" -m toolkit.train --out "$R" --export-only --weights "$R/ema_fp16.pt" --export "$R/export-ema" \
    --source "$SRC" --sampling "$SAMPLING" --edit-sampling "$EDIT_SAMPLING" > "$R/export.log" 2>&1
}

case "$STAGE" in
evals)
  # shellcheck disable=SC2046
  need_base shapes_eval_caseseeds.json shapes_eval_gen_seed20261130.json $([ "$REF" = 0 ] || echo ref_eval.json)
  export_run
  say "engine ShapesEval"
  # shellcheck disable=SC2086
  engine_eval shapes_eval_caseseeds $EVAL_ARGS
  eval_gen
  if [ "$REF" != 0 ]; then
    say "reference sampler"
    # shellcheck disable=SC2086
    "$PY" -m toolkit.evaluate --model-dir "$R/export-ema" --weights "$R/ema_fp16.pt" \
      --n-per-category 50 --seeds 4 --questions 300 --edits 300 --repeats 100 --case-seed 20261129 \
      --results "$R/ref_eval.cases.jsonl" --json > "$R/ref_eval.json" 2> "$R/ref_eval.err"
  fi
  say "compare with $BASE"
  {
    echo "{\"base\": \"$BASE\", \"engine\":"
    # paired case by case where both keep their per-case results (*.cases.jsonl, since 2026-12-04)
    "$PY" -m toolkit.compare_evals "$BASE/shapes_eval_caseseeds.json" "$R/shapes_eval_caseseeds.json"
    echo ", \"engine_gen_seed20261130\":"
    "$PY" -m toolkit.compare_evals "$BASE/shapes_eval_gen_seed20261130.json" "$R/shapes_eval_gen_seed20261130.json" --n 30
    if [ "$REF" != 0 ]; then
      echo ", \"reference\":"
      "$PY" -m toolkit.compare_evals "$BASE/ref_eval.json" "$R/ref_eval.json"
    fi
    echo "}"
  } > "$R/compare.json"
  ;;
quick)
  need_base shapes_eval_gen_seed20261130.json
  export_run
  eval_gen
  say "compare generation with $BASE"
  "$PY" -m toolkit.compare_evals "$BASE/shapes_eval_gen_seed20261130.json" "$R/shapes_eval_gen_seed20261130.json" \
    --n 30 > "$R/compare_gen.json"
  ;;
edits)
  # shellcheck disable=SC2046
  need_base $(for s in $EDIT_SEEDS; do echo "edits/s$s.cases.jsonl"; done)
  [ -f "$R/export-ema/manifest.json" ] || export_run
  mkdir -p "$R/edits"
  POOL=()
  for s in $EDIT_SEEDS; do
    say "engine, 300 edits of case seed $s"
    engine_eval "edits/s$s" --n 0 --seeds 1 --questions 0 --edits 300 --repeats 0 --case-seed "$s"
    rm -f "$R/edits/s$s.err"                                 # a progress bar, once the eval succeeded
    POOL+=("$BASE/edits/s$s.cases.jsonl" "$R/edits/s$s.cases.jsonl")
  done
  say "pool with $BASE/edits"
  "$PY" -m toolkit.compare_evals --pool "${POOL[@]}" > "$R/compare_edits.json"
  ;;
more)
  say "proxy set + gen_modes"
  "$PY" -m toolkit.proxy --name "$NAME-ema" --threads 2 --eval-only "$R/ema_fp16.pt" --record "$R/proxy.jsonl" \
    --sampling "$SAMPLING" --edit-sampling "$EDIT_SAMPLING" > "$R/proxy.out" 2>&1
  "$PY" -m toolkit.gen_modes --weights "$R/ema_fp16.pt" --threads 2 > "$R/gen_modes.json" 2> "$R/gen_modes.err"
  ;;
diagnose)
  say "diagnose + edit_modes"
  "$PY" -m toolkit.diagnose --weights "$R/ema_fp16.pt" --open-colors each > "$R/diagnose.json" 2> "$R/diagnose.err"
  "$PY" -m toolkit.edit_modes --weights "$R/ema_fp16.pt" --threads 2 > "$R/edit_modes.json" 2> "$R/edit_modes.err"
  ;;
*) echo "unknown stage '$STAGE' (evals | quick | edits | more | diagnose)" >&2; exit 2 ;;
esac
say "done"
