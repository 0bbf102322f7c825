#!/usr/bin/env bash
# tests/app_backend_parity.sh: the program is backend-independent (issue "One network, every
# backend", apps/backend.hpp).
#
#   bash tests/app_backend_parity.sh DISCDIFF DISCDIFF_THRUST CKPT_COMPARE WORKDIR
#
#  1. For MD4 and CEDD on the synthetic source: 20 training steps with the default build
#     (host backend: OpenMP, BLAS GEMM, SIMD twins) and with the Thrust-OMP build (the portable
#     kernels) from the same options give checkpoints whose every tensor agrees within 1e-5
#     (normwise relative, tests/tools/ckpt_compare.cpp).
#  2. A checkpoint resumes in either build: 10 steps in one build, 10 more in the other, and the
#     result again matches the uninterrupted default run within 1e-5; eval and sample run in both.
# Exit 0 on success; on failure the first failed check is printed.
set -uo pipefail
host=$1
thrust=$2
compare=$3
work=$4
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }

tiny=(--d-model 32 --n-layer 2 --n-head 2 --cond-dim 16 --seq-len 16 --batch 8
      --val-sequences 32 --val-batch 16 --val-every 20 --threads 2 --quiet --lr 1e-3)

for obj in md4 cedd; do
  "$host" train --objective "$obj" --out "$obj-host" --steps 20 "${tiny[@]}" ||
    fail "$obj: default build train exited with $?"
  "$thrust" train --objective "$obj" --out "$obj-thrust" --steps 20 "${tiny[@]}" ||
    fail "$obj: thrust build train exited with $?"
  echo "== $obj: default build vs Thrust-OMP build, 20 steps"
  "$compare" "$obj-host/checkpoint.safetensors" "$obj-thrust/checkpoint.safetensors" 1e-5 ||
    fail "$obj: the Thrust-OMP checkpoint differs from the default build's by more than 1e-5"
  # Cross-build resume: 10 steps in one build, 10 in the other.
  for pair in "host thrust" "thrust host"; do
    set -- $pair
    first=$1 second=$2
    b1=$host; [ "$first" = thrust ] && b1=$thrust
    b2=$host; [ "$second" = thrust ] && b2=$thrust
    "$b1" train --objective "$obj" --out "$obj-$first-$second" --steps 10 "${tiny[@]}" ||
      fail "$obj: $first train (10 steps) exited with $?"
    "$b2" train --resume "$obj-$first-$second/checkpoint.safetensors" --steps 20 --quiet ||
      fail "$obj: resuming a $first checkpoint in the $second build exited with $?"
    echo "== $obj: 10 steps $first + 10 steps $second vs 20 steps default"
    "$compare" "$obj-host/checkpoint.safetensors" "$obj-$first-$second/checkpoint.safetensors" 1e-5 ||
      fail "$obj: $first -> $second resume differs from the default run by more than 1e-5"
  done
  for b in "$host" "$thrust"; do
    "$b" eval -c "$obj-host/checkpoint.safetensors" --sequences 32 --batch 16 > /dev/null ||
      fail "$obj: eval in $b exited with $?"
    "$b" sample -c "$obj-host/checkpoint.safetensors" --n 2 --steps 8 --quiet > /dev/null ||
      fail "$obj: sample in $b exited with $?"
  done
done
"$thrust" train --device cuda --objective md4 --out nodev --steps 1 "${tiny[@]}" 2> nodev.err &&
  fail "--device cuda must be refused by a build without CUDA"
grep -q "device cuda" nodev.err || fail "the --device error does not name the device: $(cat nodev.err)"
echo "backend parity: ok"
