#!/usr/bin/env bash
# bench/compare_torch.sh: one training step (forward + backward + clip + AdamW) of the
# nn/ transformer in C++ (bench/bench_nn_step.cpp) against the same model and step in
# PyTorch (bench/compare_torch.py), with the same thread count, measured side by side:
# the two alternate ROUNDS times, and the ratio of the medians is reported.
#
#   bench/compare_torch.sh [path/to/bench_nn_step]      (default: build-nn/bench/bench_nn_step,
#                                                          else build/bench/bench_nn_step)
# Environment: THREADS (default 2), ROUNDS (default 5), STEPS (timed steps per run, 5),
#              PYTHON (default /usr/bin/python3: Debian's python3-torch),
#              OMP_WAIT_POLICY (default passive, for both: on a shared machine, threads that
#              spin at a barrier steal the core of a descheduled teammate, which slowed both
#              sides several-fold in our runs; set OMP_WAIT_POLICY=active on an idle machine).
# PyTorch must see OpenBLAS (libopenblas0-openmp) through libblas.so.3, not the
# reference BLAS; the script prints which one it finds.
set -euo pipefail
cd "$(dirname "$0")/.."

EXE=${1:-}
if [[ -z "$EXE" ]]; then
  for c in build-nn/bench/bench_nn_step build/bench/bench_nn_step; do
    [[ -x $c ]] && EXE=$c && break
  done
fi
[[ -n "$EXE" && -x "$EXE" ]] || { echo "compare_torch.sh: bench_nn_step not found (build with -DDISCDIFF_BUILD_BENCH=ON)" >&2; exit 1; }
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-5}
STEPS=${STEPS:-5}
PYTHON=${PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo "?")
echo "# machine: $(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# threads: $THREADS, OMP_WAIT_POLICY=$OMP_WAIT_POLICY; libblas.so.3 -> $blas; load: $(cut -d' ' -f1-3 /proc/loadavg)"
case "$blas" in *openblas*) ;; *) echo "# WARNING: PyTorch runs on the reference BLAS; install libopenblas0-openmp" ;; esac
echo "# C++: $EXE; PyTorch: $PYTHON bench/compare_torch.py"

"$EXE" --plain --gemm --steps 1 --warmup 0 | grep '^gemm'

cpp=() py=() ratio=() cratio=()
for r in $(seq 1 "$ROUNDS"); do
  c=$("$EXE" --plain --steps "$STEPS" --warmup 1 | grep '^cpp')
  p=$("$PYTHON" bench/compare_torch.py --threads "$THREADS" --steps "$STEPS" --warmup 1 | grep '^torch')
  ct=$(sed -E 's/.*tokens_per_s=([0-9.]+).*/\1/' <<<"$c")
  pt=$(sed -E 's/.*tokens_per_s=([0-9.]+).*/\1/' <<<"$p")
  cc=$(sed -E 's/.*tokens_per_cpu_s=([0-9.]+).*/\1/' <<<"$c")
  pc=$(sed -E 's/.*tokens_per_cpu_s=([0-9.]+).*/\1/' <<<"$p")
  rr=$(awk -v a="$ct" -v b="$pt" 'BEGIN{printf "%.3f", a/b}')
  cr=$(awk -v a="$cc" -v b="$pc" 'BEGIN{printf "%.3f", a/b}')
  cpp+=("$ct"); py+=("$pt"); ratio+=("$rr"); cratio+=("$cr")
  echo "round $r: $c"
  echo "round $r: $p"
  echo "round $r: ratio C++/PyTorch = $rr (wall), $cr (per CPU second)"
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
mc=$(median "${cpp[@]}")
mp=$(median "${py[@]}")
echo "median tokens/s: C++ $mc, PyTorch $mp (ratio of medians $(awk -v a="$mc" -v b="$mp" 'BEGIN{printf "%.2f", a/b}')x); median of the per-round ratios $(median "${ratio[@]}")x; per-round ratios: ${ratio[*]}"
echo "tokens per CPU second (all threads; less sensitive to the other processes): median ratio $(median "${cratio[@]}")x; per round: ${cratio[*]}"

echo "# per-phase breakdown of the C++ step (ms per step, summed over the blocks):"
"$EXE" --plain --profile --steps "$STEPS" --warmup 1 | grep -E '^(cpp|phase)'
