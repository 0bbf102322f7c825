#!/usr/bin/env bash
# scripts/experiments/text8.sh: the objectives compared on the text8 prefix in ../shared/data
# (train / valid split of data/SOURCES.md), same network and the same budget for every run:
# 4 blocks, d 192, 6 heads (about 2.1M parameters), L 256, batch 16, STEPS steps (default 600,
# i.e. 2.46M training tokens), cosine learning rate 1e-3 with 50 warm-up steps; validation every
# 100 steps on 128 windows; final bounds on 512 validation windows of 256 characters.
# genmd4 runs two network passes per step (its two masked draws), so it gets twice the compute;
# RUNS="md4-linear-2x genmd4-half" adds the two equal-compute comparisons, RUNS=md4-linear-notime
# MD4 without time input (adaLN-zero blocks on the constant noise level 0, as MDLM) and
# RUNS=md4-linear-notime-plain the same with plain pre-norm blocks (--block plain; not in the
# default list).
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
if [ $# -gt 0 ]; then
  echo "$(basename "$0"): takes no arguments (settings come from the environment; see --help)" >&2; exit 2
fi
here=$(dirname "$0")
steps=${STEPS:-600}
data=${TEXT8:-../shared/data/text8_prefix_12549840.xz}
netof() { echo "--data $data --d-model 192 --n-head 6 --cond-dim 64 --n-layer 4 --seq-len 256 --batch 16 --steps $1 --lr 1e-3 --warmup 50 --val-every 100 --val-sequences 128 --val-batch 32 --threads 2 --seed 0"; }
ev="--sequences 512 --batch 32 --threads 2"
all="ar md4-linear md4-cosine sedd-absorbing cedd-absorbing ceddstar-absorbing sedd-uniform cedd-uniform sedd-roulette cedd-roulette genmd4 md4-linear-2x genmd4-half md4-linear-notime md4-linear-notime-plain"
# run NAME TRAIN-ARGS EVAL-ARGS [STEPS]; the table order is the position in $all
run() {
  local i=0 n
  for n in $all; do i=$((i + 1)); [ "$n" = "$1" ] && break; done
  "$here/run_one.sh" text8 "$1" $i "$2 $(netof "${4:-$steps}")" "$3 $ev"
}
for r in ${RUNS:-ar md4-linear md4-cosine sedd-absorbing cedd-absorbing ceddstar-absorbing sedd-uniform cedd-uniform sedd-roulette cedd-roulette genmd4}; do
  case $r in
    ar)                 run ar                 "--objective ar" "" ;;
    md4-linear)         run md4-linear         "--objective md4 --schedule linear" "--md4-steps 100 --j-bounds" ;;
    md4-cosine)         run md4-cosine         "--objective md4 --schedule cosine" "--md4-steps 100" ;;
    sedd-absorbing)     run sedd-absorbing     "--objective sedd --generator absorbing" "" ;;
    cedd-absorbing)     run cedd-absorbing     "--objective cedd --generator absorbing" "" ;;
    ceddstar-absorbing) run ceddstar-absorbing "--objective cedd-star --generator absorbing" "" ;;
    sedd-uniform)       run sedd-uniform       "--objective sedd --generator uniform" "" ;;
    cedd-uniform)       run cedd-uniform       "--objective cedd --generator uniform" "" ;;
    sedd-roulette)      run sedd-roulette      "--objective sedd --generator roulette --p-m 0.95" "" ;;
    cedd-roulette)      run cedd-roulette      "--objective cedd --generator roulette --p-m 0.95" "" ;;
    genmd4)             run genmd4             "--objective genmd4" "" ;;
    # equal compute with GenMD4 (two network passes per step): MD4 with twice the steps, and
    # GenMD4 with half of them
    md4-linear-2x)      run md4-linear-2x      "--objective md4 --schedule linear" "--md4-steps 100" $((2 * steps)) ;;
    genmd4-half)        run genmd4-half        "--objective genmd4" "" $((steps / 2)) ;;
    # MD4 without the noise-level input (what cached ancestral sampling needs)
    md4-linear-notime)  run md4-linear-notime  "--objective md4 --schedule linear --time-cond 0" "--md4-steps 100" ;;
    md4-linear-notime-plain) run md4-linear-notime-plain "--objective md4 --schedule linear --time-cond 0 --block plain" "--md4-steps 100" ;;
    *) echo "unknown run $r" >&2; exit 2 ;;
  esac
done
