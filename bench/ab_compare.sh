#!/usr/bin/env bash
# bench/ab_compare.sh: two builds of one benchmark measured alternately in one run (A, B,
# A, B, ...), so that the machine's load affects both alike; prints every round and the
# median of each side and their ratio B/A.
#
#   bench/ab_compare.sh OLD_EXE NEW_EXE [ARGS...]
#
# bench_nn_step --plain ...: the metric is tokens_per_s (higher is better). Any Google
# Benchmark binary: ARGS should select one benchmark (--benchmark_filter=...); the metric is
# the real time per iteration of the first matching line (lower is better).
# Environment: ROUNDS (default 5).
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
A=$1 B=$2
shift 2
ROUNDS=${ROUNDS:-5}
for e in "$A" "$B"; do [[ -x $e ]] || { echo "ab_compare.sh: $e is not an executable" >&2; exit 2; }; done

metric() {  # exe args...
  local out
  out=$("$@" 2>/dev/null)
  if grep -q 'tokens_per_s=' <<<"$out"; then
    sed -nE 's/.*tokens_per_s=([0-9.]+).*/\1/p' <<<"$out" | head -n 1
  else
    # Google Benchmark console line: name  time unit  cpu unit  iterations
    awk '$3 ~ /^(ns|us|ms|s)$/ && $2 ~ /^[0-9.]+$/ {print $2; exit}' <<<"$out"
  fi
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "# machine: $(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# A: $A   B: $B   args: $*"
as=() bs=()
for r in $(seq 1 "$ROUNDS"); do
  a=$(metric "$A" "$@")
  b=$(metric "$B" "$@")
  as+=("$a"); bs+=("$b")
  echo "round $r: A $a  B $b"
done
ma=$(median "${as[@]}")
mb=$(median "${bs[@]}")
echo "median: A $ma  B $mb  ratio B/A $(awk -v a="$ma" -v b="$mb" 'BEGIN{printf "%.3f", b/a}')"
