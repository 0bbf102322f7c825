#!/usr/bin/env bash
# scripts/experiments/shakespeare.sh: sampling quality on Tiny Shakespeare (../shared/data; the
# nanoGPT shakespeare_char split, 90% train / 10% valid; 65 characters).
#
# Phase 1 (train): an autoregressive scorer and the diffusion models, with the network and budget
# of text8.sh: 4 blocks, d 192, 6 heads (about 2.1M parameters), L 256, batch 16, STEPS steps
# (default 300, i.e. 1.23M training tokens, 1.2 epochs), cosine learning rate 1e-3 with 50 warm-up
# steps. MD4 is trained without time input (--time-cond 0; absorbing diffusion needs none), so that
# cached ancestral sampling can reuse network outputs while nothing changes (adaLN-zero blocks on
# the constant noise level 0, as MDLM); md4-linear-timecond is the same model with the noise-level
# input, for comparison, and md4-linear-plain the time-independent network with plain pre-norm
# blocks (--block plain; not in the default MODELS).
#
# Phase 2 (sample): N samples (default 4) of 256 characters from every diffusion model with each
# sampler that fits it, at 64, 256 and 1024 steps, one seed; each set scored under the AR model
# (`discdiff eval --samples --ar`: generative perplexity) and recorded with its network-evaluation
# count and wall time in experiments/samples/shakespeare/<model>.<sampler>.<steps>/
# (samples.jsonl, genppl.jsonl, run.json); scripts/experiments/report.py tabulates and plots them.
# The AR model's own samples are the reference.
# Environment: PHASES ("train sample"), MODELS (default: the seven above, md4-linear-plain left out), STEPS (300), N (4),
# SAMPLE_STEPS ("64 256 1024"), SHAKESPEARE (the corpus), DISCDIFF (the program), FORCE=1
# (redo recorded work).
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
if [ $# -gt 0 ]; then
  echo "$(basename "$0"): takes no arguments (settings come from the environment; see --help)" >&2; exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
bin=${DISCDIFF:-build/apps/discdiff}
steps=${STEPS:-300}
nsamp=${N:-4}
data=${SHAKESPEARE:-../shared/data/tinyshakespeare_input.txt.xz}
net="--data $data --d-model 192 --n-head 6 --cond-dim 64 --n-layer 4 --seq-len 256 --batch 16 --steps $steps --lr 1e-3 --warmup 50 --val-every 100 --val-sequences 128 --val-batch 32 --threads 2 --seed 0"
ev="--sequences 512 --batch 32 --threads 2"
all="ar md4-linear md4-linear-timecond sedd-absorbing cedd-absorbing cedd-roulette genmd4 md4-linear-plain"
models="${MODELS:-${all% md4-linear-plain}}"

train() {
  local i n r
  for r in $models; do
    i=0
    for n in $all; do i=$((i + 1)); [ "$n" = "$r" ] && break; done   # table order: position in $all
    case $r in
      ar)             a="--objective ar" e="" ;;
      md4-linear)     a="--objective md4 --schedule linear --time-cond 0" e="--md4-steps 100" ;;
      md4-linear-timecond) a="--objective md4 --schedule linear" e="--md4-steps 100" ;;
      sedd-absorbing) a="--objective sedd --generator absorbing" e="" ;;
      cedd-absorbing) a="--objective cedd --generator absorbing" e="" ;;
      cedd-roulette)  a="--objective cedd --generator roulette --p-m 0.95" e="" ;;
      genmd4)         a="--objective genmd4" e="" ;;
      md4-linear-plain) a="--objective md4 --schedule linear --time-cond 0 --block plain" e="--md4-steps 100" ;;
      *) echo "unknown run $r" >&2; exit 2 ;;
    esac
    "$here/run_one.sh" shakespeare "$r" $i "$a $net" "$e $ev"
  done
}

# samplers that fit each model (md4-cached reuses outputs of the time-independent MD4 network;
# uniformization simulates the reverse chain exactly, --steps being its number of intervals: its
# network evaluations do not depend on them, about 2,500 per batch here, so it runs on one model)
samplers_of() {
  case $1 in
    ar)             echo "ar" ;;
    md4-linear|md4-linear-plain) echo "md4 md4-cached euler" ;;
    md4-linear-timecond) echo "md4" ;;
    sedd-absorbing) echo "euler analytic" ;;
    cedd-absorbing) echo "md4 euler analytic uniformization" ;;
    cedd-roulette)  echo "euler analytic" ;;
    genmd4)         echo "genmd4" ;;
  esac
}

sample_one() {  # model sampler steps
  local m=$1 s=$2 k=$3
  local res=experiments/samples/shakespeare/$m.$s.$k
  local ck=build/experiments/shakespeare/$m/checkpoint.safetensors
  local ar=build/experiments/shakespeare/ar/checkpoint.safetensors
  if [ -f "$res/run.json" ] && [ "${FORCE:-0}" != 1 ]; then echo "== $m.$s.$k: done already"; return; fi
  mkdir -p "$res"
  # md4-cached skips a step only when no row of the batch changes: one sample per batch makes its
  # count the per-sample network evaluations. Every sampler of that model runs with one sample
  # per batch, so that md4 and md4-cached draw the same samples (the seeds follow the batch).
  local batch=$nsamp
  case $m in md4-linear|md4-linear-plain) batch=1 ;; esac
  local steps="--steps $k"
  [ "$s" = ar ] && steps=""  # AR sampling takes one step per token (discdiff refuses --steps)
  local scmd="$bin sample -c $ck --sampler $s $steps --n $nsamp --batch $batch --seed 0 --threads 2 --quiet -o $res/samples.jsonl"
  local gcmd="$bin eval --samples $res/samples.jsonl --ar $ar --threads 2 --json $res/genppl.jsonl"
  echo "== $m.$s.$k: $scmd"
  local t0 t1
  t0=$(date +%s.%N)
  $scmd > /dev/null
  t1=$(date +%s.%N)
  rm -f "$res/genppl.jsonl"
  $gcmd
  local commit machine
  commit=$(git rev-parse --short HEAD)
  machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  /usr/bin/python3 - "$res/run.json" <<PY
import json, sys
json.dump({"model": "$m", "sampler": "$s", "steps": $k, "samples": $nsamp,
           "command": "$scmd", "genppl_command": "$gcmd", "commit": "$commit",
           "wall_s": round($t1 - $t0, 1), "machine": "$machine",
           "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}, open(sys.argv[1], "w"), indent=1)
PY
}

sample() {
  local m s k
  sample_one ar ar 256   # the reference: ancestral AR sampling, one evaluation per token
  for k in ${SAMPLE_STEPS:-64 256 1024}; do
    for m in $models; do
      [ "$m" = ar ] && continue
      for s in $(samplers_of "$m"); do sample_one "$m" "$s" "$k"; done
    done
  done
}

for ph in ${PHASES:-train sample}; do
  case $ph in
    train) train ;;
    sample) sample ;;
    *) echo "unknown phase $ph" >&2; exit 2 ;;
  esac
done
