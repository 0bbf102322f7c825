#!/usr/bin/env bash
# scripts/experiments/run_one.sh: one experiment run, recorded so that anyone can rerun it.
#
#   run_one.sh GROUP RUN ORDER "TRAIN ARGS" "EVAL ARGS"
#
# Trains with `discdiff train TRAIN ARGS --out build/experiments/GROUP/RUN --force`, evaluates the
# final checkpoint with `discdiff eval -c ... EVAL ARGS --json`, and copies the training log, the
# evaluation and a run.json (commands, commit, wall time, machine, date) into
# experiments/results/GROUP/RUN/. Skips a run whose results already exist unless FORCE=1.
# Environment: DISCDIFF (the program; default build/apps/discdiff).
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
if [ $# -ne 5 ]; then
  echo "usage: $(basename "$0") GROUP RUN ORDER \"TRAIN ARGS\" \"EVAL ARGS\" (see --help)" >&2; exit 2
fi
group=$1 run=$2 order=$3 train_args=$4 eval_args=$5
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin=${DISCDIFF:-build/apps/discdiff}
work=build/experiments/$group/$run
res=experiments/results/$group/$run
if [ -f "$res/run.json" ] && [ "${FORCE:-0}" != 1 ]; then
  echo "== $group/$run: done already ($res)"; exit 0
fi
mkdir -p "$work" "$res"
train_cmd="$bin train $train_args --out $work --force --quiet"
eval_cmd="$bin eval -c $work/checkpoint.safetensors $eval_args --json $work/eval.jsonl"
echo "== $group/$run: $train_cmd"
t0=$(date +%s.%N)
# shellcheck disable=SC2086
$train_cmd
t1=$(date +%s.%N)
# shellcheck disable=SC2086
$eval_cmd > "$work/eval.txt"
cat "$work/eval.txt"
cp "$work/metrics.jsonl" "$work/eval.jsonl" "$work/eval.txt" "$res/"
commit=$(git rev-parse --short HEAD)
dirty=$(git status --porcelain -- include apps | grep -q . && echo "+dirty" || true)
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
/usr/bin/python3 - "$res/run.json" <<PY
import json, sys
json.dump({"run": "$run", "group": "$group", "order": $order,
           "command": "$train_cmd", "eval_command": "$eval_cmd",
           "commit": "$commit$dirty", "wall_s": round($t1 - $t0, 1),
           "machine": "$machine", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"},
          open(sys.argv[1], "w"), indent=1)
PY
