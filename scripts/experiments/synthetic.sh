#!/usr/bin/env bash
# scripts/experiments/synthetic.sh: every objective on the built-in synthetic Markov source
# (order 1, 27 symbols, branching 3; exact entropy known), same network and budget:
# 3 blocks, d 64 (about 0.2M parameters), L 64, batch 32, 1200 steps (2.46M training tokens),
# validation every 100 steps on 256 windows; final bounds on 1024 validation windows.
# About 1-2 minutes per run on 2 idle cores (genmd4: two network passes per step).
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
if [ $# -gt 0 ]; then
  echo "$(basename "$0"): takes no arguments (settings come from the environment; see --help)" >&2; exit 2
fi
here=$(dirname "$0")
net="--d-model 64 --cond-dim 32 --n-layer 3 --seq-len 64 --batch 32 --steps 1200 --lr 3e-3 --val-every 100 --threads 2 --seed 0"
ev="--sequences 1024 --batch 64 --threads 2"
i=0
run() { i=$((i + 1)); "$here/run_one.sh" synthetic "$1" $i "$2 $net" "$3 $ev"; }
run ar              "--objective ar"                                   ""
run md4-linear      "--objective md4 --schedule linear"                "--md4-steps 100 --j-bounds"
run md4-cosine      "--objective md4 --schedule cosine"                "--md4-steps 100"
run genmd4          "--objective genmd4"                               ""
run sedd-absorbing  "--objective sedd --generator absorbing"           ""
run cedd-absorbing  "--objective cedd --generator absorbing"           ""
run ceddstar-absorbing "--objective cedd-star --generator absorbing"   ""
run sedd-uniform    "--objective sedd --generator uniform"             ""
run cedd-uniform    "--objective cedd --generator uniform"             ""
run sedd-roulette   "--objective sedd --generator roulette --p-m 0.95" ""
run cedd-roulette   "--objective cedd --generator roulette --p-m 0.95" ""
run md4-linear-notime "--objective md4 --schedule linear --time-cond 0" "--md4-steps 100"
# the earlier time-independent network: plain pre-norm blocks (no adaLN, no zero-initialised gates)
run md4-linear-notime-plain "--objective md4 --schedule linear --time-cond 0 --block plain" "--md4-steps 100"
