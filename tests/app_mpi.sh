#!/usr/bin/env bash
# tests/app_mpi.sh: data-parallel training and evaluation with MPI (docs/distributed.md).
#
#   bash tests/app_mpi.sh MODE DISCDIFF CKPT_COMPARE MPIEXEC WORKDIR
#
# Every run uses one thread per rank; the reference is the one-process run with the same global
# batch (K = 1, one thread). MODE:
#  PARITY  for md4 with dropout (dropout masks of the shard rows), ar (a mean loss: the shard
#          gradient weighted by its share) and genmd4 (two stacked draws, the schedule gradient):
#          20 steps with K = 2 give every checkpoint tensor within 1e-5 (normwise relative,
#          tests/tools/ckpt_compare.cpp) of the K = 1 run, and every logged loss within 1e-5
#          relative; a K = 2 checkpoint at step 10 resumed under K = 1 to step 20 matches the
#          K = 1 run within 1e-5. Also a K = 3 run of md4 (uneven shards of 8 rows).
#  FAULTS  kill -9 of rank 1 mid-run: the job exits non-zero within 10 s with a message naming
#          rank 1; the last checkpoint loads and resuming it under K = 2 ends bit-identical to an
#          uninterrupted K = 2 run. Ranks started with different options stop at start-up with an
#          error naming the differing rank.
#  EVAL    `discdiff eval` under K = 2 prints the same bounds as one process (bit for bit: the
#          per-batch estimates are gathered and added in the one-process order).
# Exit 0 on success; on failure the first failed check is printed.
set -uo pipefail
mode=$1
bin=$2
compare=$3
mpiexec=$4
work=$5
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
# One thread per rank, no binding surprises on a shared 2-core machine.
export OMP_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1
mpi() { local k=$1; shift; "$mpiexec" --oversubscribe --allow-run-as-root --bind-to none -np "$k" "$@"; }

tiny=(--d-model 32 --n-layer 2 --n-head 2 --cond-dim 16 --seq-len 16 --batch 8
      --val-sequences 32 --val-batch 16 --val-every 20 --threads 1 --quiet --lr 1e-3 --warmup 5 --log-every 1)

# losses_match A B: the train lines' loss_nats_per_token agree within 1e-5 relative, step for step.
losses_match() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
def losses(p):
    return {j["step"]: j["loss_nats_per_token"] for j in map(json.loads, open(p)) if j.get("event") == "train"}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
if sorted(a) != sorted(b) or not a:
    sys.exit(f"logged steps differ: {sorted(a)} vs {sorted(b)}")
worst = max(abs(a[s] - b[s]) / max(abs(a[s]), 1e-30) for s in a)
print(f"  {len(a)} logged losses, largest relative difference {worst:.3g}")
sys.exit(0 if worst <= 1e-5 else 1)
EOF
}

case "$mode" in
PARITY)
  for spec in "md4 --dropout 0.1" "ar" "genmd4"; do
    set -- $spec
    obj=$1; shift
    extra=("$@")
    "$bin" train --objective "$obj" --out "$obj-k1" --steps 20 "${tiny[@]}" "${extra[@]}" ||
      fail "$obj: K = 1 train exited with $?"
    mpi 2 "$bin" train --objective "$obj" --out "$obj-k2" --steps 20 "${tiny[@]}" "${extra[@]}" ||
      fail "$obj: K = 2 train exited with $?"
    grep -q '"ranks":2' "$obj-k2/metrics.jsonl" || fail "$obj: the K = 2 log does not record 2 ranks"
    [ "$(grep -c '"event":"train"' "$obj-k2/metrics.jsonl")" = 20 ] ||
      fail "$obj: the K = 2 log must hold 20 train lines, written once (rank 0)"
    echo "== $obj: K = 2 vs K = 1, 20 steps, same global batch"
    "$compare" "$obj-k1/checkpoint.safetensors" "$obj-k2/checkpoint.safetensors" 1e-5 ||
      fail "$obj: the K = 2 checkpoint differs from the K = 1 run by more than 1e-5"
    losses_match "$obj-k1/metrics.jsonl" "$obj-k2/metrics.jsonl" ||
      fail "$obj: the K = 2 losses differ from the K = 1 losses by more than 1e-5"
    # A K = 2 checkpoint resumes under K = 1.
    mpi 2 "$bin" train --objective "$obj" --out "$obj-k2k1" --steps 20 --stop-after 10 "${tiny[@]}" \
      "${extra[@]}" 2> /dev/null || fail "$obj: K = 2 train (stop after 10) exited with $?"
    "$bin" train --resume "$obj-k2k1/checkpoint.safetensors" --steps 20 --quiet ||
      fail "$obj: resuming the K = 2 checkpoint under K = 1 exited with $?"
    echo "== $obj: 10 steps K = 2 + 10 steps K = 1 vs 20 steps K = 1"
    "$compare" "$obj-k1/checkpoint.safetensors" "$obj-k2k1/checkpoint.safetensors" 1e-5 ||
      fail "$obj: K = 2 -> K = 1 resume differs from the K = 1 run by more than 1e-5"
  done
  mpi 3 "$bin" train --objective md4 --out md4-k3 --steps 20 "${tiny[@]}" ||
    fail "md4: K = 3 train exited with $?"
  echo "== md4: K = 3 (shards of 3, 3, 2 rows) vs K = 1"
  "$bin" train --objective md4 --out md4-plain --steps 20 "${tiny[@]}" ||
    fail "md4: K = 1 train without dropout exited with $?"
  "$compare" md4-plain/checkpoint.safetensors md4-k3/checkpoint.safetensors 1e-5 ||
    fail "md4: the K = 3 checkpoint differs from the K = 1 run by more than 1e-5"
  # A global batch smaller than K is refused.
  small=("${tiny[@]}")
  small[11]=2  # --batch 2
  [ "${small[10]}" = --batch ] || fail "test setup: tiny[10] is not --batch"
  mpi 3 "$bin" train --objective md4 --out tiny-batch --steps 2 "${small[@]}" 2> small.err &&
    fail "--batch 2 with 3 ranks must be refused"
  grep -q "smaller than the 3 ranks" small.err || fail "the small-batch error is unclear: $(cat small.err)"
  ;;
FAULTS)
  long=(--objective md4 --steps 400 --ckpt-every 10 --val-every 0 --d-model 64 --n-layer 2
        --n-head 2 --cond-dim 16 --seq-len 16 --batch 8 --val-sequences 32 --val-batch 16
        --threads 1 --quiet --lr 1e-3 --warmup 5)
  mpi 2 "$bin" train --out killed "${long[@]}" > killed.out 2> killed.err &
  job=$!
  # Wait for the first checkpoint, then kill -9 the rank-1 process.
  for _ in $(seq 1 3000); do
    [ -f killed/checkpoint.safetensors ] && break
    kill -0 "$job" 2> /dev/null || fail "the K = 2 run ended early: $(cat killed.err)"
    sleep 0.01
  done
  [ -f killed/checkpoint.safetensors ] || fail "no checkpoint appeared"
  victim=""
  for pid in $(pgrep -f "train --out killed"); do
    [ "$(tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | grep '^OMPI_COMM_WORLD_RANK=')" = \
      "OMPI_COMM_WORLD_RANK=1" ] && victim=$pid
  done
  [ -n "$victim" ] || fail "rank 1 not found (did the run end already?)"
  kill -9 "$victim"
  t0=$(date +%s.%N)
  for _ in $(seq 1 1000); do kill -0 "$job" 2> /dev/null || break; sleep 0.01; done
  kill -0 "$job" 2> /dev/null && { kill -9 "$job"; fail "the job still runs 10 s after rank 1 died"; }
  wait "$job"
  rc=$?
  dt=$(echo "$(date +%s.%N) - $t0" | bc)
  echo "== kill -9 rank 1: job exit code $rc after ${dt} s"
  [ "$rc" != 0 ] || fail "the job must exit non-zero when a rank dies"
  grep -qiE "rank 1" killed.err || fail "the message does not name rank 1: $(cat killed.err)"
  grep -iE "rank 1" killed.err | head -2
  step=$(python3 -c "import json;print(json.loads(open('killed/metrics.jsonl').readline())['event'])")
  [ "$step" = start ] || fail "metrics.jsonl lost its start line"
  # Resume under K = 2 to the end; the result equals an uninterrupted K = 2 run bit for bit.
  mpi 2 "$bin" train --resume killed/checkpoint.safetensors --steps 400 --quiet 2> resume.err ||
    fail "resuming after the kill exited with $?: $(cat resume.err)"
  mpi 2 "$bin" train --out whole "${long[@]}" || fail "uninterrupted K = 2 run exited with $?"
  "$compare" whole/checkpoint.safetensors killed/checkpoint.safetensors 0 ||
    fail "kill + resume (K = 2) differs from the uninterrupted K = 2 run"
  # Different options on the two ranks are refused at start-up, naming the rank.
  "$mpiexec" --oversubscribe --allow-run-as-root --bind-to none \
    -np 1 "$bin" train --objective md4 --out mismatch --steps 5 "${tiny[@]}" : \
    -np 1 "$bin" train --objective md4 --out mismatch --steps 5 "${tiny[@]}" --seed 7 \
    > mismatch.out 2> mismatch.err && fail "ranks with different --seed must be refused"
  grep -q "configuration (options, data, resumed step) of rank 1 differs from rank 0" mismatch.err ||
    fail "the mismatch error does not name rank 1: $(cat mismatch.err)"
  [ ! -f mismatch/checkpoint.safetensors ] || fail "a mismatched job wrote a checkpoint"
  ;;
EVAL)
  "$bin" train --objective md4 --out ev --steps 10 "${tiny[@]}" || fail "train exited with $?"
  "$bin" train --objective ar --out ev-ar --steps 10 "${tiny[@]}" || fail "ar train exited with $?"
  "$bin" eval -c ev-ar/checkpoint.safetensors --sequences 48 --batch 8 --threads 1 --json a1.json > /dev/null ||
    fail "ar eval exited with $?"
  mpi 2 "$bin" eval -c ev-ar/checkpoint.safetensors --sequences 48 --batch 8 --threads 1 --json a2.json > /dev/null ||
    fail "ar eval under K = 2 exited with $?"
  cmp -s a1.json a2.json || fail "ar eval under K = 2 differs: $(diff a1.json a2.json | head -5)"
  echo "== eval (ar, exact NLL): K = 2 output identical to K = 1"
  for args in "--sequences 48 --batch 8" "--sequences 40 --batch 16 --j-bounds --md4-steps 8"; do
    "$bin" eval -c ev/checkpoint.safetensors $args --threads 1 --json k1.json > k1.out ||
      fail "eval ($args) exited with $?"
    mpi 2 "$bin" eval -c ev/checkpoint.safetensors $args --threads 1 --json k2.json > k2.out ||
      fail "eval under K = 2 ($args) exited with $?"
    [ "$(grep -c 'discdiff eval:' k2.out)" = 1 ] || fail "under K = 2 only rank 0 prints: $(cat k2.out)"
    cmp -s k1.json k2.json || fail "eval under K = 2 ($args) differs: $(diff k1.json k2.json | head -5)"
    echo "== eval $args: K = 2 output identical to K = 1: $(head -c 160 k1.json)"
  done
  ;;
*) fail "unknown mode $mode" ;;
esac
echo "mpi $mode: ok"
