#!/usr/bin/env bash
# scripts/demo.sh: the main job of `make demo`. Trains a small MD4 model (3 blocks, d 64) on the
# built-in synthetic source on the CPU (about a minute on 2 cores), prints its validation ELBO
# next to the source's exact entropy, draws samples, evaluates them, and plots the curves.
#
#   scripts/demo.sh [BUILD_DIR]     (default: build; expects BUILD_DIR/apps/discdiff)
set -euo pipefail
build=${1:-build}
bin=$build/apps/discdiff
out=$build/demo
[ -x "$bin" ] || { echo "demo: $bin not found; build it first (make demo)" >&2; exit 1; }

echo "==== 1. train MD4 on the synthetic Markov source (its exact entropy is known)"
"$bin" train --out "$out" --force --steps 1200 --val-every 200 --lr 3e-3 \
  --d-model 64 --cond-dim 32 --n-layer 3 --threads 2
echo
echo "==== 2. samples (MD4 ancestral, 64 steps; the source's text is letters and spaces)"
"$bin" sample -c "$out/checkpoint.safetensors" --n 4 --steps 64 --seed 1 --quiet
echo
echo "==== 3. bounds on the test split: continuous-time ELBO, discrete T = 16, J1 and J2"
"$bin" eval -c "$out/checkpoint.safetensors" --split test --sequences 512 --md4-steps 16 --j-bounds
echo
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 scripts/plot.py "$out/metrics.jsonl" -o "$out/curves.png" --title "make demo: MD4 on the synthetic source"
else
  echo "(python3-matplotlib is missing: no plot)"
fi
echo "checkpoint, metrics and plot are in $out/ (docs/usage.md explains every command)"
