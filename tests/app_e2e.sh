#!/usr/bin/env bash
# tests/app_e2e.sh: end-to-end checks of the `discdiff` program (CTest app.e2e.*).
#
#   bash tests/app_e2e.sh BOUND    DISCDIFF WORKDIR   train a small MD4 model on the synthetic source;
#                                                     the final validation ELBO must lie within 15%
#                                                     of the source's exact entropy per token
#   bash tests/app_e2e.sh RESUME   DISCDIFF WORKDIR   an interrupted (--stop-after, SIGTERM, SIGINT,
#                                                     kill -9) and resumed run ends bit-identical to
#                                                     an uninterrupted one (every tensor's digest)
#   bash tests/app_e2e.sh SAMPLE   DISCDIFF WORKDIR   samples (every sampler) hold only valid tokens;
#                                                     eval and info work; bad input is rejected
#   bash tests/app_e2e.sh FAULTS   DISCDIFF WORKDIR   issue 14: bad input and faults (non-finite
#                                                     bounds, byte samples, the run lock, unwritable
#                                                     outputs, signals, seeds, stale temporaries,
#                                                     kill -9 at 20 points + resume, messages)
#   bash tests/app_e2e.sh LIMITS   DISCDIFF WORKDIR   issue 14 items 7 and 14: the memory estimate
#                                                     and its refusal, out-of-memory errors, options
#                                                     that would be ignored, warm-up warning, sample
#                                                     progress on a terminal, units in metrics keys
#   bash tests/app_e2e.sh OLDCKPT  DISCDIFF WORKDIR   issue 13: checkpoints written before --block (tests/
#                                                     data/old_checkpoints, README there) load and
#                                                     give the samples and bounds the old program
#                                                     wrote, bit for bit; the new time-independent
#                                                     network (adaLN-zero on sbar = 0) lets md4-cached
#                                                     draw md4's samples with fewer evaluations
# Exit 0 on success; on failure the first failed check is printed.
set -uo pipefail
mode=$1
bin=$2
work=$3
fixtures=$(cd "$(dirname "$0")" && pwd)/data/old_checkpoints
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1

fail() { echo "FAIL: $*" >&2; exit 1; }
# The tensors' digests of a checkpoint, one "name digest" per line.
digests() { "$bin" info --digest "$1" | awk '/fnv1a64/ {print $1, $NF}'; }
json_field() {  # json_field FILE EVENT KEY: the KEY of the last EVENT line
  grep "\"event\":\"$2\"" "$1" | tail -n 1 | sed -E "s/.*\"$3\":([-0-9.eE+]+).*/\1/"
}

# expect_error PATTERN CMD...: fails unless CMD exits 1..2 and prints PATTERN
expect_error() {
  local pat=$1; shift
  "$@" >/dev/null 2>err.txt
  local rc=$?
  { [ "$rc" -ge 1 ] && [ "$rc" -le 2 ]; } || fail "'$*' exited with $rc: $(cat err.txt)"
  grep -qi -- "$pat" err.txt || fail "'$*': the message lacks '$pat': $(cat err.txt)"
}
ckpt_step() { "$bin" info "$1/checkpoint.safetensors" | awk '/progress/ {print $3}'; }

tiny=(--d-model 32 --n-layer 1 --n-head 2 --cond-dim 16 --seq-len 16 --batch 8
      --val-sequences 32 --val-batch 16 --threads 2 --quiet)

case "$mode" in
BOUND)
  # About 30 s on 2 idle cores.
  "$bin" train --out bound --steps 600 --val-every 200 --lr 3e-3 --d-model 64 --cond-dim 32 \
    --n-layer 3 --threads 2 --quiet || fail "train exited with $?"
  bpc=$(json_field bound/metrics.jsonl end bpc)
  se=$(json_field bound/metrics.jsonl end bpc_se)
  h=$(json_field bound/metrics.jsonl end window_entropy_bpc)
  echo "final validation ELBO $bpc +- $se bits/token; source entropy $h bits/token"
  awk -v b="$bpc" -v h="$h" 'BEGIN { exit !(b >= h * 0.97 && b <= h * 1.15) }' ||
    fail "the ELBO $bpc is not within [0.97, 1.15] x the source entropy $h"
  # It went down: the first validation is far above the last.
  first=$(grep '"event":"val"' bound/metrics.jsonl | head -n 1 | sed -E 's/.*"bpc":([-0-9.eE+]+).*/\1/')
  awk -v a="$first" -v b="$bpc" 'BEGIN { exit !(a > b * 1.1) }' || fail "no progress: $first -> $bpc"
  ;;
RESUME)
  for obj in md4 "sedd --generator uniform" genmd4 ar; do
    tag=${obj%% *}
    "$bin" train --objective $obj --out "full-$tag" --steps 24 --val-every 8 --ckpt-every 5 \
      --dropout 0.1 "${tiny[@]}" || fail "$tag: uninterrupted run exited with $?"
    "$bin" train --objective $obj --out "part-$tag" --steps 24 --val-every 8 --ckpt-every 5 \
      --dropout 0.1 --stop-after 11 "${tiny[@]}" 2>/dev/null || fail "$tag: --stop-after run exited with $?"
    step=$("$bin" info "part-$tag/checkpoint.safetensors" | awk '/progress/ {print $3}')
    [ "$step" = 11 ] || fail "$tag: the stopped run's checkpoint is at step $step, not 11"
    "$bin" train --resume "part-$tag/checkpoint.safetensors" --threads 2 --quiet ||
      fail "$tag: resume exited with $?"
    diff <(digests "full-$tag/checkpoint.safetensors") <(digests "part-$tag/checkpoint.safetensors") ||
      fail "$tag: the resumed run differs from the uninterrupted one"
    echo "$tag: stop at 11 + resume == uninterrupted (24 steps)"
  done
  # Options that define the run cannot change on resume.
  "$bin" train --resume part-md4/checkpoint.safetensors --steps 30 --lr 0.5 --quiet 2>err.txt &&
    fail "resume with a different --lr was accepted"
  grep -q -- "--lr" err.txt || fail "the --lr message does not name the option: $(cat err.txt)"
  # Signals at an arbitrary moment: SIGTERM and SIGINT checkpoint and exit 128 + signal; kill -9 leaves
  # the last complete checkpoint. Each then resumes to the uninterrupted result.
  "$bin" train --out full-sig --steps 300 --ckpt-every 1 --val-every 0 "${tiny[@]}" || fail "full-sig"
  for sig in TERM INT KILL; do
    rm -rf "sig-$sig"
    "$bin" train --out "sig-$sig" --steps 300 --ckpt-every 1 --val-every 0 "${tiny[@]}" &
    pid=$!
    for _ in $(seq 1 100); do [ -f "sig-$sig/checkpoint.safetensors" ] && break; sleep 0.05; done
    sleep 0.3
    kill -s "$sig" "$pid"
    wait "$pid"
    rc=$?
    case "$sig" in
      TERM) [ "$rc" = 143 ] || [ "$rc" = 0 ] || fail "SIGTERM: exit code $rc (expected 143)" ;;
      INT) [ "$rc" = 130 ] || [ "$rc" = 0 ] || fail "SIGINT: exit code $rc (expected 130)" ;;
    esac
    "$bin" info "sig-$sig/checkpoint.safetensors" >/dev/null || fail "$sig left an unreadable checkpoint"
    at=$("$bin" info "sig-$sig/checkpoint.safetensors" | awk '/progress/ {print $3}')
    if [ "$at" != 300 ]; then
      "$bin" train --resume "sig-$sig/checkpoint.safetensors" --threads 2 --quiet ||
        fail "$sig: resume exited with $?"
    fi
    diff <(digests full-sig/checkpoint.safetensors) <(digests "sig-$sig/checkpoint.safetensors") ||
      fail "$sig: interrupted at step $at and resumed, the result differs"
    echo "SIG$sig at step $at (exit $rc) + resume == uninterrupted"
  done
  ;;
SAMPLE)
  "$bin" train --out m --steps 30 --val-every 0 "${tiny[@]}" || fail "train md4"
  "$bin" train --objective sedd --out s --steps 10 --val-every 0 "${tiny[@]}" || fail "train sedd"
  "$bin" train --objective ar --out a --steps 30 --val-every 0 "${tiny[@]}" || fail "train ar"
  "$bin" train --objective genmd4 --out g --steps 10 --val-every 0 "${tiny[@]}" || fail "train genmd4"
  check_samples() {  # check_samples FILE N LEN: N lines of exactly LEN text8 characters
    local n
    n=$(grep -cE "^[a-z ]{$3}\$" "$1")
    [ "$n" = "$2" ] || fail "$1: $n of $2 samples are $3 valid characters: $(head -n 3 "$1")"
  }
  for s in md4 md4-cached euler analytic; do
    "$bin" sample -c m/checkpoint.safetensors --sampler $s --steps 16 --n 5 --batch 3 --quiet > "m-$s.txt" ||
      fail "sample md4 --sampler $s"
    check_samples "m-$s.txt" 5 16
  done
  "$bin" sample -c m/checkpoint.safetensors --sampler uniformization --steps 20 --n 3 --quiet > m-unif.txt ||
    fail "sample md4 --sampler uniformization"
  check_samples m-unif.txt 3 16
  # Semi-autoregressive continuation: 3 windows of 16 with stride 8 give 16 + 2 * 8 = 32 tokens.
  "$bin" sample -c m/checkpoint.safetensors --steps 8 --n 2 --windows 3 --stride 8 --prefix "ab" --quiet > w.txt ||
    fail "sample --windows"
  [ "$(grep -cE '^ab[a-z ]{30}$' w.txt)" = 2 ] || fail "semi-autoregressive samples: $(cat w.txt)"
  for s in euler analytic; do
    "$bin" sample -c s/checkpoint.safetensors --sampler $s --steps 16 --n 3 --quiet > "s-$s.txt" || fail "sample sedd $s"
    check_samples "s-$s.txt" 3 16
  done
  "$bin" sample -c g/checkpoint.safetensors --steps 16 --n 3 --quiet > g.txt || fail "sample genmd4"
  check_samples g.txt 3 16
  "$bin" sample -c a/checkpoint.safetensors --n 3 --top-p 0.9 --quiet > a.txt || fail "sample ar"
  check_samples a.txt 3 16
  # Conditioning keeps the fixed characters.
  "$bin" sample -c m/checkpoint.safetensors --steps 8 --n 2 --prefix "abc" --quiet > p.txt || fail "prefix"
  [ "$(grep -c '^abc' p.txt)" = 2 ] || fail "prefix not kept: $(cat p.txt)"
  "$bin" sample -c m/checkpoint.safetensors --steps 8 --n 2 --infill "ab______________" --quiet > i.txt ||
    fail "infill"
  [ "$(grep -cE '^ab[a-z ]{14}$' i.txt)" = 2 ] || fail "infill not kept: $(cat i.txt)"
  # Same seed, same samples; JSONL output and generative perplexity under the AR model.
  "$bin" sample -c m/checkpoint.safetensors --steps 8 --n 4 --seed 7 --quiet > r1.txt
  "$bin" sample -c m/checkpoint.safetensors --steps 8 --n 4 --seed 7 --quiet > r2.txt
  cmp -s r1.txt r2.txt || fail "the same seed gave different samples"
  "$bin" sample -c m/checkpoint.safetensors --steps 8 --n 6 -o samples.jsonl -q 2>/dev/null || fail "sample -o"
  [ "$(wc -l < samples.jsonl)" = 6 ] || fail "samples.jsonl does not hold 6 lines"
  "$bin" eval --samples samples.jsonl --ar a/checkpoint.safetensors > genppl.txt || fail "genppl"
  grep -q "generative perplexity of 6 samples" genppl.txt || fail "genppl output: $(cat genppl.txt)"
  # eval on the test split with the discrete-time ELBO and J bounds; info.
  "$bin" eval -c m/checkpoint.safetensors --split test --sequences 64 --batch 16 --md4-steps 8 \
    --md4-steps 4 --j-bounds --eps 1e-3 --verbose --json ev.jsonl > ev.txt || fail "eval md4"
  grep -q "J cut-off eps = 0.001" ev.txt || fail "eval --eps 1e-3: $(cat ev.txt)"
  for b in elbo elbo-T8 j1 j2; do grep -q "\"bound\":\"$b\"" ev.jsonl || fail "eval lacks $b"; done
  # --verbose: J2 = J1 + EH beside the direct estimate (docs/math/bounds.md).
  grep -q "j2 direct" ev.txt || fail "eval --verbose lacks the direct J2"
  grep -q '"event":"eval_j_detail"' ev.jsonl || fail "eval --verbose json lacks eval_j_detail"
  "$bin" eval -c s/checkpoint.safetensors --sequences 32 --batch 16 > /dev/null || fail "eval sedd"
  "$bin" eval -c a/checkpoint.safetensors --sequences 32 --batch 16 > /dev/null || fail "eval ar"
  "$bin" eval -c g/checkpoint.safetensors --sequences 32 --batch 16 > /dev/null || fail "eval genmd4"
  # --convention (docs/math/bounds.md, "Conventions of the public codes"): every row and JSON line
  # names its convention, and on the same draws the value is the exact one transformed by the
  # documented constants (md4: minus L alpha(1) log N; pbrc J1: (J1 - L KL_prior)/(1 - eps)).
  ev=(--sequences 32 --batch 16 --threads 2)
  "$bin" eval -c m/checkpoint.safetensors "${ev[@]}" --json m-exact.jsonl > /dev/null || fail "eval md4 exact"
  "$bin" eval -c m/checkpoint.safetensors "${ev[@]}" --convention md4 --verbose --json m-md4.jsonl > m-md4.txt ||
    fail "eval --convention md4"
  grep -qE '^  elbo +md4 ' m-md4.txt || fail "the md4 row does not name its convention: $(cat m-md4.txt)"
  grep '"event":"eval"' m-md4.jsonl | grep -q '"convention":"md4"' || fail "the md4 JSON lacks its convention"
  a=$(json_field m-exact.jsonl eval nats_per_token)
  b=$(json_field m-md4.jsonl eval nats_per_token)
  awk -v a="$a" -v b="$b" 'BEGIN { d = a - b - 1e-4 * log(27); exit !(d < 1e-9 && d > -1e-9) }' ||
    fail "md4 convention: $b is not the exact ELBO $a minus alpha(1) log N = 1e-4 log 27"
  "$bin" eval -c s/checkpoint.safetensors "${ev[@]}" --convention pbrc --verbose --json s-pbrc.jsonl > s-pbrc.txt ||
    fail "eval --convention pbrc"
  [ "$(grep '"event":"eval"' s-pbrc.jsonl | grep -c '"convention":"pbrc"')" = 2 ] || fail "pbrc: not two J rows"
  grep -q "prior KL omitted" s-pbrc.txt || fail "pbrc --verbose lacks the convention terms"
  j1p=$(grep '"bound":"j1"' s-pbrc.jsonl | sed -E 's/.*"nats_per_token":([-0-9.eE+]+).*/\1/')
  j1x=$(json_field s-pbrc.jsonl eval_j_detail j1_bpc)
  kl=$(json_field s-pbrc.jsonl eval_j_detail prior_kl_nats)
  awk -v p="$j1p" -v x="$j1x" -v k="$kl" 'BEGIN { w = (x * log(2) - k / 16) / (1 - 1e-4);
      exit !((p - w) < 1e-9 * w && (w - p) < 1e-9 * w) }' ||
    fail "pbrc J1 $j1p is not (J1 - L KL)/(1 - eps) from J1 $j1x bits and KL $kl nats"
  "$bin" eval -c s/checkpoint.safetensors "${ev[@]}" --convention sedd --json s-sedd.jsonl > /dev/null ||
    fail "eval --convention sedd"
  grep '"event":"eval"' s-sedd.jsonl | grep '"bound":"j1"' | grep '"convention":"sedd"' | grep -q '"eps":0.001' ||
    fail "sedd: no j1 row at eps 1e-3: $(cat s-sedd.jsonl)"
  grep -q '"bound":"j2"' s-sedd.jsonl && fail "sedd convention printed a J2 (SEDD's code has none)"
  "$bin" info m/checkpoint.safetensors > info.txt || fail "info"
  grep -q "S-LIN-MD4" info.txt || fail "info does not name the schedule"
  # Bad input: clear errors with a non-zero exit code, never a crash.
  expect_error "objective" "$bin" train --objective foo --out x
  expect_error "md4 needs the absorbing" "$bin" train --generator uniform --out x
  expect_error "seq-len" "$bin" train --seq-len 1 --out x
  expect_error "exists" "$bin" train --out m --steps 5 --quiet
  head -c 1000 m/checkpoint.safetensors > trunc.safetensors
  expect_error "trunc.safetensors" "$bin" info trunc.safetensors
  expect_error "trunc.safetensors" "$bin" sample -c trunc.safetensors
  printf 'Hello, World! ' > upper.txt
  for _ in $(seq 1 12); do cat upper.txt upper.txt > u2.txt; mv u2.txt upper.txt; done
  expect_error "vocabulary" "$bin" eval -c m/checkpoint.safetensors --data upper.txt
  expect_error "sampler" "$bin" sample -c s/checkpoint.safetensors --sampler md4
  expect_error "masked-diffusion checkpoint" "$bin" eval -c s/checkpoint.safetensors --convention md4
  expect_error "convention exact" "$bin" eval -c a/checkpoint.safetensors --convention pbrc
  expect_error "md4-steps" "$bin" eval -c m/checkpoint.safetensors --convention sedd --md4-steps 8
  expect_error "convention" "$bin" eval -c m/checkpoint.safetensors --convention paper
  expect_error "cut-off" "$bin" eval -c m/checkpoint.safetensors --convention md4 --eps 1e-3
  expect_error "longer\|length" "$bin" sample -c m/checkpoint.safetensors --prefix "$(printf 'a%.0s' $(seq 1 40))"
  echo "samples, eval, info and errors OK"
  ;;
FAULTS)
  # One thread: on a loaded machine, OpenMP's spinning threads can slow tiny runs 50-fold.
  small=(--synthetic-tokens 20000 --d-model 32 --n-layer 1 --n-head 2 --cond-dim 16 --seq-len 16
         --batch 8 --val-sequences 32 --val-batch 16 --threads 1 --quiet)
  # 3. A diverging run stops at the first non-finite bound with exit 2, keeps its last checkpoint
  # and logs no NaN; eval of diverged weights names the bound instead of printing NaN.
  "$bin" train --objective cedd --lr 10 --warmup 0 --steps 20 --val-every 0 --ckpt-every 1 \
    --out nan "${small[@]}" 2>err.txt
  rc=$?
  [ "$rc" = 2 ] || fail "a diverging cedd run exited with $rc: $(cat err.txt)"
  grep -q "discdiff train: error: validation j2 at step 20 .*not finite" err.txt || fail "divergence message: $(cat err.txt)"
  grep -qE ':(null|-?nan|NaN)[,}]' nan/metrics.jsonl && fail "metrics.jsonl holds a NaN: $(grep -E ':null' nan/metrics.jsonl | head -n 2)"
  grep -q '"event":"error"' nan/metrics.jsonl || fail "no error line in metrics.jsonl"
  [ "$(ckpt_step nan)" = 19 ] || fail "the last good checkpoint (step 19) was not kept: $(ckpt_step nan)"
  "$bin" eval -c nan/checkpoint.safetensors --raw --sequences 32 --batch 16 >ev.txt 2>err.txt
  rc=$?
  [ "$rc" = 2 ] || fail "eval of a diverged model exited with $rc: $(cat ev.txt err.txt)"
  grep -qiw nan ev.txt && fail "eval printed NaN: $(cat ev.txt)"
  grep -q "j2 bound is not finite" err.txt || fail "eval does not name the bound: $(cat err.txt)"
  expect_error "diverged at step" "$bin" train --lr 1e30 --steps 20 --out big "${small[@]}"
  echo "3: non-finite bounds stop train and eval with exit 2"

  # 1. A byte-level model's samples are written losslessly ("text_hex"), atomically, and an
  # existing file is kept without --force.
  LC_ALL=C awk 'BEGIN { srand(1); for (i = 0; i < 30000; i++) printf "%c", int(rand() * 256) }' > bytes.bin
  "$bin" train --data bytes.bin --tokenizer bytes --steps 3 --val-every 0 --out by "${small[@]}" || fail "train bytes"
  "$bin" train --objective ar --data bytes.bin --tokenizer bytes --steps 3 --val-every 0 --out by-ar "${small[@]}" ||
    fail "train bytes ar"
  echo keep > by.jsonl
  expect_error "exists.*--force" "$bin" sample -c by/checkpoint.safetensors --steps 4 --n 5 -o by.jsonl
  [ "$(cat by.jsonl)" = keep ] || fail "sample -o changed an existing file without --force"
  "$bin" sample -c by/checkpoint.safetensors --steps 4 --n 5 -o by.jsonl --force -q || fail "sample -o bytes"
  [ "$(wc -l < by.jsonl)" = 5 ] || fail "by.jsonl holds $(wc -l < by.jsonl) lines, not 5"
  while read -r line; do
    hx=$(sed -E 's/.*"text_hex":"([0-9a-f]*)".*/\1/' <<<"$line")
    tk=$(sed -E 's/.*"tokens":\[([0-9,]*)\].*/\1/' <<<"$line" | awk -F, '{ for (i = 1; i <= NF; i++) printf "%02x", $i }')
    [ -n "$tk" ] && [ "$hx" = "$tk" ] || fail "text_hex is not the sample's bytes: $line"
  done < by.jsonl
  ls by.jsonl.tmp.* >/dev/null 2>&1 && fail "sample left a temporary file"
  "$bin" eval --samples by.jsonl --ar by-ar/checkpoint.safetensors > gp.txt || fail "genppl of byte samples"
  grep -q "of 5 samples (80 tokens)" gp.txt || fail "genppl of byte samples: $(cat gp.txt)"
  echo "1: byte samples written losslessly and atomically; no overwrite without --force"

  # 2. One run per directory: a second train of a busy directory exits 2 naming the holder.
  "$bin" train --out busy --steps 100000 --val-every 0 --ckpt-every 0 "${small[@]}" &
  pid=$!
  for _ in $(seq 1 200); do grep -q '"event":"train"' busy/metrics.jsonl 2>/dev/null && break; sleep 0.05; done
  "$bin" train --out busy --force --steps 5 "${small[@]}" 2>err.txt
  rc=$?
  kill -TERM "$pid"
  wait "$pid"
  [ "$rc" = 2 ] || fail "a second train of a busy directory exited with $rc"
  grep -q "in use by .*pid $pid" err.txt || fail "the lock message does not name the holder: $(cat err.txt)"
  [ "$(grep -c '"event":"start"' busy/metrics.jsonl)" = 1 ] || fail "two runs wrote busy/metrics.jsonl"
  echo "2: the run directory is locked"

  # 11. Outputs are checked before the first step.
  mkdir -p isdir/checkpoint.safetensors
  expect_error "is a directory" "$bin" train --out isdir --force --steps 5 "${small[@]}"
  [ -e isdir/metrics.jsonl ] && fail "train with an unwritable checkpoint path started"
  if [ "$(id -u)" != 0 ]; then  # root writes into read-only directories
    mkdir ro && chmod 555 ro
    expect_error "cannot write" "$bin" train --out ro --steps 5 "${small[@]}"
    chmod 755 ro
  fi
  echo "11: unwritable outputs are refused before the first step"

  # 12. SIGHUP and SIGPIPE checkpoint like SIGTERM; sample survives a closed stdout pipe.
  for sig in HUP PIPE; do
    "$bin" train --out "sig-$sig" --steps 100000 --val-every 0 --ckpt-every 0 "${small[@]}" &
    pid=$!
    for _ in $(seq 1 200); do grep -q '"event":"train"' "sig-$sig/metrics.jsonl" 2>/dev/null && break; sleep 0.05; done
    kill -s "$sig" "$pid"
    wait "$pid"
    rc=$?
    want=$((128 + $(kill -l "$sig")))
    [ "$rc" = "$want" ] || fail "SIG$sig: exit code $rc (expected $want)"
    "$bin" info "sig-$sig/checkpoint.safetensors" > /dev/null || fail "SIG$sig left no checkpoint"
    grep -q '"event":"interrupted"' "sig-$sig/metrics.jsonl" || fail "SIG$sig: no interrupted line"
  done
  "$bin" sample -c by/checkpoint.safetensors --steps 2 --n 3000 --batch 1000 | head -c 10 > /dev/null
  rc=${PIPESTATUS[0]}
  [ "$rc" = 141 ] && fail "sample died of SIGPIPE"
  echo "12: SIGHUP and SIGPIPE checkpoint (exit 129, 141); no death by SIGPIPE"

  # 5. Seeds: one parser and one rule for the command line and the config file.
  expect_error "seed = -5: must be an integer in \[0, 18446744073709551615\]" "$bin" train --seed -5 --out x --steps 1 "${small[@]}"
  expect_error "must be an integer" "$bin" train --seed 18446744073709551616 --out x --steps 1 "${small[@]}"
  expect_error "must be an integer" "$bin" sample -c by/checkpoint.safetensors --seed -1 --steps 2
  expect_error "must be an integer" "$bin" eval -c by/checkpoint.safetensors --seed 99999999999999999999 --sequences 4
  printf 'seed = -7\n' > seed.cfg
  expect_error "seed = -7: must be an integer" "$bin" train --config seed.cfg --out x
  echo "5: out-of-range seeds are errors"

  # 8, 9. kill -9 at 20 random points of a run with --ckpt-every 1, resumed each time: the same
  # tensors as an uninterrupted run, no temporary file left, each step once in metrics.jsonl.
  # (--ckpt-every does not change the run: the reference and the last session write one at the end.)
  run=(--steps 600 --val-every 50 --log-every 1 "${small[@]}")
  "$bin" train --out ref --ckpt-every 0 "${run[@]}" || fail "uninterrupted run"
  # Each session is killed at a random moment of its 1st or 2nd step after the last one logged
  # (--log-every 1), so all 20 kills land before the end whatever the machine's speed.
  RANDOM=14
  last=0
  for kill in $(seq 1 20); do
    if [ -f kill9/checkpoint.safetensors ]; then
      "$bin" train --resume kill9/checkpoint.safetensors --threads 1 --quiet &
    else
      "$bin" train --out kill9 --ckpt-every 1 "${run[@]}" &
    fi
    pid=$!
    target=$((last + 1 + RANDOM % 2))
    for _ in $(seq 1 5000); do
      grep -q "\"step\":$target,\"step_s\"" kill9/metrics.jsonl 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.002
    done
    sleep "0.00$((RANDOM % 10))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    last=$(grep -o '"step":[0-9]*,"step_s"' kill9/metrics.jsonl | tail -n 1 | grep -o '[0-9][0-9]*')
    last=${last:-0}
  done
  [ "$(ckpt_step kill9)" -lt 600 ] || fail "the run ended before 20 kills"
  "$bin" train --resume kill9/checkpoint.safetensors --ckpt-every 0 --threads 1 --quiet ||
    fail "the last resume failed"
  [ "$(ckpt_step kill9)" = 600 ] || fail "after 20 kills the run did not reach step 600"
  ls kill9 | grep -q '\.tmp\.' && fail "temporary files left: $(ls kill9)"
  diff <(digests ref/checkpoint.safetensors) <(digests kill9/checkpoint.safetensors) ||
    fail "killed 20 times and resumed, the run differs from the uninterrupted one"
  dup=$(grep -E '"event":"(train|val)"' kill9/metrics.jsonl | sed -E 's/.*"event":"([a-z]+)".*"step":([0-9]+).*/\1 \2/' | sort | uniq -d)
  [ -z "$dup" ] || fail "metrics.jsonl repeats steps: $(echo $dup | head -c 200)"
  n=$(grep -c '"event":"train"' kill9/metrics.jsonl)
  [ "$n" = "$(grep -c '"event":"train"' ref/metrics.jsonl)" ] || fail "metrics.jsonl has $n train lines"
  echo "8, 9: 20 x kill -9 (the last at step $last) + resume == uninterrupted; no temporary left; each step logged once"
  # --log-every is stored and resumed. A temporary file of a dead writer is removed at the
  # start, a live process's is not.
  "$bin" train --out le --steps 12 --log-every 4 --val-every 0 --stop-after 5 "${small[@]}" 2>/dev/null
  dead=4000000
  while kill -0 "$dead" 2>/dev/null; do dead=$((dead + 1)); done
  touch "le/checkpoint.safetensors.tmp.$dead" "le/other.tmp.$$"
  "$bin" train --resume le/checkpoint.safetensors --threads 1 --quiet || fail "resume le"
  [ -e "le/checkpoint.safetensors.tmp.$dead" ] && fail "a dead writer's temporary file was kept"
  [ -e "le/other.tmp.$$" ] || fail "a live process's temporary file was removed"
  steps=$(grep '"event":"train"' le/metrics.jsonl | sed -E 's/.*"step":([0-9]+).*/\1/' | tr '\n' ' ')
  [ "$steps" = "1 4 6 8 12 " ] || fail "--log-every 4 was not resumed: train lines at $steps"

  # 10. A --force run starts over at once: a failing one leaves no old checkpoint behind.
  "$bin" train --out forced --steps 3 --val-every 0 "${small[@]}" || fail "forced: first run"
  "$bin" train --out forced --force --objective cedd --lr 10 --warmup 0 --steps 20 --val-every 0 \
    --ckpt-every 0 "${small[@]}" 2>/dev/null && fail "the diverging --force run succeeded"
  [ -e forced/checkpoint.safetensors ] && fail "a failed --force run kept the old run's checkpoint"
  echo "10: --force removes the old checkpoint"

  # 13. Messages: one line 'discdiff <cmd>: error: ...', suggestions, readable ranges.
  expect_error "did you mean 'train'" "$bin" trian
  expect_error "discdiff sample: error: --top-p: must lie in (0, 1\], not 0" "$bin" sample -c by/checkpoint.safetensors --top-p 0
  expect_error "must be >= 0, not -1" "$bin" sample -c by/checkpoint.safetensors --threads -1
  expect_error "discdiff train: error: .*--bogus" "$bin" train --bogus
  head -c 4000 "$bin" > binary.cfg
  expect_error "not a text file" "$bin" train --config binary.cfg --out x
  [ "$(wc -c < err.txt)" -lt 300 ] || fail "a binary config file was echoed"

  # 4. A short validation split: the standard error of validation is finite (eval's rule).
  for _ in $(seq 1 100); do printf 'abc def ghi '; done > short.txt
  "$bin" train --data short.txt --out short --steps 2 --val-every 0 "${small[@]}" 2>/dev/null || fail "train short"
  grep '"event":"val"' short/metrics.jsonl | grep -qE '"bpc_se":[0-9]' ||
    fail "validation on a short split has no standard error: $(grep '"event":"val"' short/metrics.jsonl)"
  echo "4, 13: short splits and messages OK"

  # 6. Resume checks the data's size and digest, and finds it by its absolute path from
  # another working directory.
  for _ in $(seq 1 100); do printf 'the cat sat on the mat '; done > cats.txt
  "$bin" train --data cats.txt --out cats --steps 6 --val-every 0 --stop-after 2 "${small[@]}" 2>/dev/null ||
    fail "train cats"
  mkdir -p elsewhere
  (cd elsewhere && "$bin" train --resume ../cats/checkpoint.safetensors --steps 4 --out ../cats \
    --threads 1 --quiet) || fail "resume from another directory"
  printf 'the mat sat on the cat ' >> cats.txt
  expect_error "not the one the checkpoint was trained on" \
    "$bin" train --resume cats/checkpoint.safetensors --steps 6 --threads 1 --quiet
  "$bin" train --resume cats/checkpoint.safetensors --steps 6 --allow-data-change --threads 1 --quiet ||
    fail "--allow-data-change"
  echo "6: resume checks the data"
  ;;
LIMITS)
  small=(--synthetic-tokens 20000 --d-model 32 --n-layer 1 --n-head 2 --cond-dim 16 --seq-len 16
         --batch 8 --val-sequences 32 --val-batch 16 --threads 1 --quiet)
  # 7. Memory: an impossible shape is refused before anything is allocated, with the estimate;
  # a limit the estimate does not see (--max-memory overrides the check) ends as one clear
  # line, with an error event in the log; the estimate is near the measured peak.
  expect_error "needs about .* TiB (training activations (65536 x 65536)" \
    "$bin" train --seq-len 65536 --batch 65536 --out huge --steps 2 "${small[@]:0:10}" --quiet
  [ -e huge/metrics.jsonl ] && fail "a refused run wrote metrics"
  (ulimit -v 2000000; "$bin" train --seq-len 1024 --batch 256 --out lim --steps 2 --quiet) 2>err.txt
  [ $? = 2 ] && grep -q "it may take (the address-space limit (ulimit -v))" err.txt ||
    fail "ulimit -v was not read: $(cat err.txt)"
  (ulimit -v 2000000; "$bin" train --seq-len 1024 --batch 256 --out oom --steps 2 --quiet --max-memory 1T) 2>err.txt
  rc=$?
  [ "$rc" = 2 ] || fail "an out-of-memory run exited with $rc: $(cat err.txt)"
  grep -q "discdiff train: error: out of memory" err.txt || fail "the out-of-memory message: $(cat err.txt)"
  grep -q '"event":"error","message":"out of memory' oom/metrics.jsonl || fail "no error event for out of memory"
  expect_error "max-memory: '12X' is not a size" "$bin" train --max-memory 12X --out x --steps 1 "${small[@]}"
  expect_error "needs about .* more than the 1 MiB it may take (--max-memory)" \
    "$bin" train --max-memory 1M --out x --steps 1 "${small[@]}"
  for obj in md4 ar genmd4; do
    "$bin" train --objective "$obj" --steps 2 --seq-len 256 --batch 32 --d-model 64 --n-head 4 --n-layer 2 \
      --val-sequences 64 --val-batch 32 --warmup 1 --val-every 0 --threads 1 --out "mem-$obj" --quiet ||
      fail "train mem-$obj"
    est=$(json_field "mem-$obj/metrics.jsonl" start memory_estimate_bytes)
    peak=$(json_field "mem-$obj/metrics.jsonl" end peak_rss_bytes)
    # The estimate counts the large buffers (not the program and the corpus, ~25 MiB here) and
    # every buffer in full (some are never touched): peak - 64 MiB <= estimate <= 1.5 peak.
    awk -v e="$est" -v p="$peak" 'BEGIN { exit !(p - 64 * 2^20 <= e && e <= 1.5 * p) }' ||
      fail "$obj: memory estimate $est bytes against a peak of $peak bytes"
    echo "7: $obj estimate $(awk -v e="$est" 'BEGIN { printf "%.0f", e / 2^20 }') MiB, peak $(awk -v p="$peak" 'BEGIN { printf "%.0f", p / 2^20 }') MiB"
  done
  "$bin" sample -c mem-md4/checkpoint.safetensors --max-memory 1M --steps 2 2>err.txt >/dev/null
  [ $? = 2 ] && grep -q "lower --batch or --length" err.txt || fail "sample memory check: $(cat err.txt)"
  "$bin" eval -c mem-md4/checkpoint.safetensors --max-memory 1M --sequences 4 2>err.txt >/dev/null
  [ $? = 2 ] && grep -q "lower --batch" err.txt || fail "eval memory check: $(cat err.txt)"
  echo "7: memory estimate, refusal and out-of-memory errors"

  # 14. Friction. --warmup beyond --steps is a warning (also with --quiet).
  "$bin" train --steps 4 --warmup 10 --val-every 0 --out wu "${small[@]}" 2>err.txt || fail "train wu"
  grep -q "warning: --warmup 10 exceeds --steps 4: .* peaks at 0.000400" err.txt || fail "no warm-up warning: $(cat err.txt)"
  "$bin" train --steps 10 --warmup 10 --val-every 0 --out wu2 "${small[@]}" 2>err.txt || fail "train wu2"
  [ -s err.txt ] && fail "a warm-up of exactly --steps warned: $(cat err.txt)"
  # The train loss names its unit; bits = nats / ln 2.
  grep '"event":"train"' wu/metrics.jsonl | head -n 1 | grep -q '"loss_nats_per_token"' || fail "no loss_nats_per_token"
  grep -q '"loss_per_token"' wu/metrics.jsonl && fail "the unitless loss_per_token key is still written"
  n=$(json_field wu/metrics.jsonl train loss_nats_per_token)
  b=$(json_field wu/metrics.jsonl train loss_bits_per_token)
  awk -v n="$n" -v b="$b" 'BEGIN { d = n / log(2) - b; exit !(d < 1e-9 && d > -1e-9) }' || fail "bits $b != nats $n / ln 2"
  # Options a sampler does not read are errors naming them.
  "$bin" train --objective ar --steps 2 --val-every 0 --out ar "${small[@]}" || fail "train ar"
  "$bin" train --objective sedd --steps 2 --val-every 0 --out sedd "${small[@]}" || fail "train sedd"
  m=wu/checkpoint.safetensors
  expect_error "\-\-steps does nothing with the autoregressive sampler" "$bin" sample -c ar/checkpoint.safetensors --steps 64
  expect_error "\-\-top-p does nothing with the tau-leaping sampler analytic" "$bin" sample -c sedd/checkpoint.safetensors --top-p 0.9
  expect_error "\-\-top-p and --top-k do nothing with the tau-leaping sampler euler" "$bin" sample -c $m --sampler euler --top-p 0.9 --top-k 3
  expect_error "\-\-grid and --top-k do nothing with --sampler uniformization" "$bin" sample -c $m --sampler uniformization --grid uniform --top-k 3
  expect_error "\-\-stride does nothing without --windows > 1" "$bin" sample -c $m --stride 4
  expect_error "\-\-blank does nothing without --infill" "$bin" sample -c $m --blank '#'
  "$bin" sample -c $m --top-p 0.9 --top-k 5 --steps 4 --n 2 -q > /dev/null || fail "top-p with md4 refused"
  "$bin" sample -c ar/checkpoint.safetensors --top-p 0.9 --n 2 -q > /dev/null || fail "top-p with ar refused"
  expect_error "\-\-md4-steps (the discrete-time MD4 ELBO) needs a masked-diffusion checkpoint" \
    "$bin" eval -c sedd/checkpoint.safetensors --md4-steps 10 --sequences 8
  expect_error "\-\-j-bounds .* needs a masked-diffusion checkpoint" \
    "$bin" eval -c ar/checkpoint.safetensors --j-bounds --sequences 8
  # eval --data names the split it evaluates: a file whose training part has a character the
  # checkpoint lacks evaluates its validation part, and a bad validation part is named.
  for _ in $(seq 1 200); do printf 'abc def ghi '; done > v.txt
  "$bin" train --data v.txt --tokenizer chars --steps 2 --val-every 0 --out v "${small[@]}" || fail "train v"
  { printf 'Z'; head -c 2300 v.txt; } > trainbad.txt
  "$bin" eval -c v/checkpoint.safetensors --data trainbad.txt --sequences 4 > /dev/null 2>err.txt ||
    fail "eval --split valid read the training part: $(cat err.txt)"
  { head -c 2150 v.txt; printf 'Z'; head -c 149 v.txt; } > validbad.txt  # 2300 bytes: valid [2070, 2185)
  expect_error "the valid split of 'validbad.txt' does not fit" "$bin" eval -c v/checkpoint.safetensors --data validbad.txt --sequences 4
  expect_error "the train split of 'trainbad.txt' does not fit" "$bin" eval -c v/checkpoint.safetensors --data trainbad.txt --split train --sequences 4
  # sample shows progress on a terminal (stderr), not when stderr is a file or with --quiet.
  script -qec "'$bin' sample -c $m --steps 400 --n 2 --batch 1 -o prog.jsonl" /dev/null > tty.txt 2>&1 ||
    fail "sample under a terminal: $(cat tty.txt)"
  grep -q "\[samples 2-2 of 2\] 100%" tty.txt || fail "no progress line on a terminal: $(head -c 300 tty.txt)"
  "$bin" sample -c $m --steps 400 --n 2 --batch 1 -o prog2.jsonl --force 2>err.txt || fail "sample to a file"
  grep -q "\[samples" err.txt && fail "a progress line went to a file"
  cmp -s <(sed 's/.*"tokens"//' prog.jsonl) <(sed 's/.*"tokens"//' prog2.jsonl) || fail "progress changed the samples"
  # A temporary of a killed `sample -o FILE` (FILE.tmp.<dead pid>) goes at the next one; another
  # file's and a live process's stay.
  dead=4000000
  while kill -0 "$dead" 2>/dev/null; do dead=$((dead + 1)); done
  touch "s3.jsonl.tmp.$dead" "s3.jsonl.tmp.$$" "other.jsonl.tmp.$dead"
  "$bin" sample -c $m --steps 2 --n 1 -o s3.jsonl 2>err.txt || fail "sample s3"
  [ -e "s3.jsonl.tmp.$dead" ] && fail "sample -o kept a dead writer's temporary"
  grep -q "removed 's3.jsonl.tmp.$dead'" err.txt || fail "the removal was not reported: $(cat err.txt)"
  [ -e "s3.jsonl.tmp.$$" ] && [ -e "other.jsonl.tmp.$dead" ] || fail "sample -o removed a temporary not its own"
  echo "14: warm-up warning, loss units, ignored options refused, eval names its split, sample progress"
  ;;
OLDCKPT)
  # Fixtures of the program at commit 6dfebc0 (before --block): --time-cond 0 then built plain
  # pre-norm blocks (now --block plain), --time-cond 1 adaLN-zero blocks.
  # eval lines without the checkpoint path and the keys added since (bits per byte, issue 15)
  strip() { sed -E 's/"checkpoint":"[^"]*",//; s/"bits_per_byte(_se)?":[^,]*,//g; s/"bytes":[0-9]+,//' "$1"; }
  for k in plain adaln; do
    ck=$fixtures/$k/checkpoint.safetensors
    "$bin" sample -c "$ck" --sampler md4 --steps 16 --n 4 --seed 3 --threads 1 --quiet \
      -o "$k.samples.jsonl" || fail "$k: sample exited with $?"
    cmp -s "$k.samples.jsonl" "$fixtures/$k/samples.jsonl" || fail "$k: the samples differ from the old program's"
    "$bin" eval -c "$ck" --sequences 32 --batch 16 --threads 1 --json "$k.eval.jsonl" > /dev/null ||
      fail "$k: eval exited with $?"
    [ "$(strip "$k.eval.jsonl")" = "$(strip "$fixtures/$k/eval.jsonl")" ] ||
      fail "$k: eval differs from the old program's: $(cat "$k.eval.jsonl")"
  done
  "$bin" sample -c "$fixtures/plain/checkpoint.safetensors" --sampler md4-cached --steps 64 --n 4 \
    --batch 1 --seed 3 --threads 1 --quiet -o plain.cached.jsonl || fail "md4-cached exited with $?"
  cmp -s plain.cached.jsonl "$fixtures/plain/samples_cached.jsonl" || fail "plain: md4-cached samples differ"
  "$bin" info "$fixtures/plain/checkpoint.safetensors" | grep -q "plain pre-norm blocks" ||
    fail "info does not name the plain blocks"
  "$bin" info "$fixtures/adaln/checkpoint.safetensors" | grep -q "time-conditioned" ||
    fail "info does not name the time-conditioned network"
  echo "1: old checkpoints give the old program's samples and bounds"
  # The new time-independent network: adaLN-zero on the constant sbar = 0. Its output does not
  # depend on the noise level, so md4-cached (one sample per batch) draws exactly md4's samples.
  "$bin" train --out notime --objective md4 --time-cond 0 --steps 40 --warmup 5 --val-every 0 \
    --ckpt-every 0 "${tiny[@]}" || fail "train --time-cond 0 exited with $?"
  "$bin" info notime/checkpoint.safetensors | grep -q "adaLN-zero on sbar = 0" ||
    fail "info does not name the adaLN-zero time-independent network"
  for s in md4 md4-cached; do
    "$bin" sample -c notime/checkpoint.safetensors --sampler $s --steps 256 --n 3 --batch 1 --seed 5 \
      --threads 1 --quiet -o "notime.$s.jsonl" || fail "sample --sampler $s exited with $?"
  done
  texts() { sed -E 's/.*"text":"([^"]*)".*/\1/' "$1"; }
  nfe() { sed -E 's/.*"nfe":([0-9]+).*/\1/' "$1" | awk '{ s += $1 } END { print s }'; }
  [ "$(texts notime.md4.jsonl)" = "$(texts notime.md4-cached.jsonl)" ] ||
    fail "md4-cached samples differ from md4's on the time-independent network"
  [ "$(nfe notime.md4-cached.jsonl)" -lt "$(nfe notime.md4.jsonl)" ] ||
    fail "md4-cached saved no evaluations ($(nfe notime.md4-cached.jsonl) vs $(nfe notime.md4.jsonl))"
  echo "2: md4-cached = md4 on the adaLN-zero time-independent network, $(nfe notime.md4-cached.jsonl) of $(nfe notime.md4.jsonl) evaluations"
  # plain blocks have no noise-level input: --block plain needs --time-cond 0
  expect_error "use it with --time-cond 0" "$bin" train --out bad --block plain --steps 2 "${tiny[@]}"
  expect_error "must be adaln or plain" "$bin" train --out bad --block dense --steps 2 "${tiny[@]}"
  echo "3: --block is checked"
  ;;
*)
  fail "unknown mode $mode"
  ;;
esac
echo "PASS $mode"
