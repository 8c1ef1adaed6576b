#!/usr/bin/env bash
# Sampling settings measured through the engine (issue #17, item 7: defaults by measurement):
# text-to-image by default, edits with GEN_ARGS that ask for edits only. Each arm runs the cases
# of BASE with the same per-case seeds, only its CLI flags changed, and is paired case by case with
# BASE (toolkit.compare_evals).
#
#     bash toolkit/sampling_sweep.sh OUT BASE "LABEL:FLAGS" ...       (from models/)
#     bash toolkit/sampling_sweep.sh checkpoints/unipic-tiny-runs/cpu15/sweep_gen \
#         checkpoints/unipic-tiny-runs/cpu15/shapes_eval_gen_seed20261130.json \
#         "temp_0.5:--temperature 0.5" "cfg_4:--cfg 4"
#
#   OUT    folder for LABEL.json (the engine's eval) and LABEL.compare.json (paired with BASE)
#   BASE   an eval of the same weights at the manifest's defaults, made with GEN_ARGS
#   FLAGS  `npx unipic eval` image flags: --temperature, --cfg, --cfg-schedule, --steps, --diffusion-steps
#          (they override the manifest's defaults for generation and edits alike)
#
# Knobs (environment): MODEL_DIR (models/unipic-tiny, from the repository root), GEN_ARGS (the
# cases of BASE: post_train.sh's generation-alone set), PYTHON (/usr/bin/python3).
# Prints one JSON line per arm: each score both evals have, with the paired change and its error
# (and paired_se, case by case, where BASE.cases.jsonl exists beside BASE).
set -euo pipefail
cd "$(dirname "$0")/.."                                    # models/
OUT=${1:?output folder}
BASE=${2:?base eval JSON (the same cases at the defaults)}
shift 2
[ "$#" -gt 0 ] || { echo "no arms: give LABEL:FLAGS, e.g. \"temp_0.5:--temperature 0.5\"" >&2; exit 2; }
[ -f "$BASE" ] || { echo "no base eval $BASE" >&2; exit 1; }
PY=${PYTHON:-/usr/bin/python3}
MODEL_DIR=${MODEL_DIR:-models/unipic-tiny}
GEN_ARGS=${GEN_ARGS:-"--n 30 --seeds 4 --questions 0 --edits 0 --repeats 0 --case-seed 20261130"}
N=$(sed -n 's/.*--n \([0-9]*\).*/\1/p' <<<"$GEN_ARGS")   # prompts per category, for the errors
SEEDS=$(sed -n 's/.*--seeds \([0-9]*\).*/\1/p' <<<"$GEN_ARGS")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)                                    # the eval runs from the repository root
for arm in "$@"; do
  label=${arm%%:*}
  flags=${arm#*:}
  [ "$label" != "$arm" ] && [ -n "$label" ] || { echo "arm '$arm': expected LABEL:FLAGS" >&2; exit 2; }
  echo "[sweep] $(date -u +%T) $label: $flags" >&2
  # shellcheck disable=SC2086
  (cd .. && MODEL_DIR="$MODEL_DIR" npx unipic eval --json $GEN_ARGS $flags --results "$OUT/$label.cases.jsonl" \
    > "$OUT/$label.json" 2> "$OUT/$label.err") \
    || { tail -5 "$OUT/$label.err" >&2; exit 1; }
  rm -f "$OUT/$label.err"                                  # a progress bar, once the arm succeeded
  # paired case by case when BASE kept its per-case results (BASE.cases.jsonl, `unipic eval --results`)
  "$PY" -m toolkit.compare_evals "$BASE" "$OUT/$label.json" --n "${N:-50}" --seeds "${SEEDS:-4}" \
    > "$OUT/$label.compare.json"
  "$PY" - "$label" "$flags" "$OUT/$label.compare.json" <<'PYEOF'
import json, sys
label, flags, path = sys.argv[1:4]
cmp = json.load(open(path))
row = {"arm": label, "flags": flags}
for k, v in cmp.items():                                    # every score both evals have
    row[k.removeprefix("generation.")] = {"after": v["after"], "delta": v["delta"], "se": v.get("se"),
                                           **({"paired_se": v["paired_se"]} if "paired_se" in v else {})}
print(json.dumps(row))
PYEOF
done
