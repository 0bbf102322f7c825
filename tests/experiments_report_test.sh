#!/usr/bin/env bash
# tests/experiments_report_test.sh: end-to-end checks of scripts/experiments/report.py on the
# hand-written results tree tests/data/experiments/results (copied to a temp dir).
#
#   bash tests/experiments_report_test.sh /path/to/project/root
#
# Fixture: group text8 with md4-base (eval.jsonl: elbo, j1, j2; run.json order 2), sedd-noeval
# (no eval.jsonl: headline from the "end" event; interrupted and resumed, steps 30 -> 40; order 1),
# ar-zz (no run.json, so sorted last; eval.jsonl with a genppl line, a valid and a test split);
# group synthetic with md4-syn and cedd-syn (window entropy 1.25, rate 1.2 bits/token).
# Checks: every table row against values worked out by hand (below), row order, the footer, the
# synthetic columns; the PNGs (PNG signature, 1200x600 = 10x5 in at 120 dpi); --groups; the
# "(last val)" fallback; exit status 2 with a clear message for a missing results dir, no groups,
# unknown --groups, a run dir without metrics.jsonl, malformed JSON in metrics.jsonl / eval.jsonl /
# run.json (file:line), a NaN, a non-numeric bpc, an unknown option.
# Sample sets (tests/data/experiments/samples, placed beside the results tree): the genppl table
# rows and order, the reference line, the samples page, the PNG, a set without genppl.jsonl.
# Uses $PYTHON if set, else /usr/bin/python3. Exit 0 on success; "FAIL: ..." and exit 1 otherwise.
set -u

ROOT="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
PY="${PYTHON:-/usr/bin/python3}"
SCRIPT="$ROOT/scripts/experiments/report.py"
FIX="$ROOT/tests/data/experiments/results"

fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
pass() { echo "ok:   $*"; }

[ -f "$SCRIPT" ] || { echo "FAIL: $SCRIPT not found" >&2; exit 1; }
[ -d "$FIX" ] || { echo "FAIL: $FIX not found" >&2; exit 1; }
"$PY" -c 'import matplotlib' 2>/dev/null \
  || { echo "FAIL: $PY cannot import matplotlib (apt-get install python3-matplotlib)" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/experiments_report_test.XXXXXX")" || { echo "FAIL: mktemp" >&2; exit 1; }
trap 'rm -rf "$TMP"' EXIT
export MPLCONFIGDIR="$TMP/mplconfig"

# fresh_tree NAME: a copy of the fixture tree at $TMP/NAME/results; prints that path.
fresh_tree() {
  mkdir -p "$TMP/$1" && cp -R "$FIX" "$TMP/$1/results" && echo "$TMP/$1/results"
}

# run_rc EXPECTED NAME ARGS...: run report.py; check the exit status; output in $TMP/out, $TMP/err.
run_rc() {
  local want="$1" name="$2"; shift 2
  "$PY" "$SCRIPT" "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    fail "$name: exit status $rc, expected $want; stderr: $(head -c 400 "$TMP/err")"
    return 1
  fi
  pass "$name (exit $rc)"
  return 0
}

# expect_err NAME TEXT: stderr of the last run contains TEXT.
expect_err() {
  if grep -qF -- "$2" "$TMP/err"; then pass "$1: message names '$2'"
  else fail "$1: stderr lacks '$2': $(head -c 400 "$TMP/err")"; fi
}

# has_line FILE LINE: FILE holds LINE exactly.
has_line() {
  if grep -qxF -- "$2" "$1"; then pass "$(basename "$1"): $(echo "$2" | cut -c1-60)..."
  else fail "$(basename "$1") lacks the line: $2"; echo "---- $1:" >&2; cat "$1" >&2; fi
}

# check_png FILE: non-empty, PNG signature, IHDR 1200 x 600.
check_png() {
  local f="$1"
  if [ ! -s "$f" ]; then fail "$f missing or empty"; return; fi
  local sig; sig="$(od -An -tx1 -N8 "$f" | tr -d ' \n')"
  [ "$sig" = "89504e470d0a1a0a" ] || { fail "$f: bad PNG signature $sig"; return; }
  local ihdr; ihdr="$(od -An -tx1 -j12 -N12 "$f" | tr -d ' \n')"
  # "IHDR", then big-endian width 1200 = 0x4b0 and height 600 = 0x258.
  [ "$ihdr" = "49484452000004b000000258" ] || { fail "$f: IHDR $ihdr, expected 1200x600"; return; }
  pass "$(basename "$f") is a 1200x600 PNG"
}

# --- the full report -----------------------------------------------------------------------
R="$(fresh_tree full)"
OUT="$TMP/full/out"
if run_rc 0 "report on the fixture tree" --results "$R" --out "$OUT"; then
  for f in synthetic_table.md synthetic_bounds.png text8_table.md text8_bounds.png; do
    grep -qxF "$OUT/$f" "$TMP/out" || fail "the output does not list $OUT/$f: $(cat "$TMP/out")"
  done
  [ "$(wc -l <"$TMP/out")" -eq 4 ] || fail "expected 4 printed paths, got: $(cat "$TMP/out")"
  check_png "$OUT/text8_bounds.png"
  check_png "$OUT/synthetic_bounds.png"

  T="$OUT/text8_table.md"
  has_line "$T" "| run | objective | generator | schedule | params | steps | train tokens | headline bound | bpc (+- se) | other bounds | ms/step | tokens/s | wall time |"
  # md4-base: headline = first eval line (elbo 1.2345 +- 0.0100), then j1 and j2.
  #   steps 100, 10% = 10: train events with step > 10 are 50 (0.2 s) and 100 (0.3 s): mean
  #   0.25 s = 250.0 ms/step; batch 16 x seq_len 128 = 2048 tokens / 0.25 s = 8192 tokens/s.
  #   wall 83.4 s -> 1m23s; tokens 100 x 2048 = 204,800.
  has_line "$T" "| md4-base | md4 | absorbing | linear | 413,025 | 100 | 204,800 | elbo | 1.2345 +- 0.0100 | j1 1.6200 +- 0.0100; j2 1.7000 +- 0.0200 | 250.0 | 8192 | 1m23s |"
  # sedd-noeval: no eval.jsonl -> end event (j1 1.5 +- 0.025; bpc_j2 1.55 +- 0.03), marked (val).
  #   resumed with steps 40 -> 10% = 4: steps 20 (0.1), 21 (0.9), 40 (0.2); step 4 is not > 4.
  #   mean 0.4 s = 400.0 ms/step; 8 x 64 = 512 tokens / 0.4 s = 1280 tokens/s.
  #   wall 3725.2 s = 1 h 2 min 5 s -> 1h2m.
  has_line "$T" "| sedd-noeval | sedd | uniform | geometric | 12,345 | 40 | 20,480 | j1 (val) | 1.5000 +- 0.0250 | j2 1.5500 +- 0.0300 | 400.0 | 1280 | 1h2m |"
  # ar-zz: the genppl line is skipped; headline nll valid 1.4 +- 0.005, other: the test split.
  #   steps 10, 10% = 1: only step 10 (0.05 s) -> 50.0 ms/step; 4 x 32 = 128 / 0.05 = 2560.
  #   no run.json -> wall "-".
  has_line "$T" "| ar-zz | ar | none | none | 1,000,000 | 10 | 1,280 | nll | 1.4000 +- 0.0050 | test nll 1.4100 +- 0.0060 | 50.0 | 2560 | - |"
  # Order: run.json "order" 1 (sedd-noeval), 2 (md4-base), then no order (ar-zz).
  order="$(grep -o '^| [a-z0-9-]* |' "$T" | tr -d '| ' | tr '\n' ' ')"
  [ "$order" = "run sedd-noeval md4-base ar-zz " ] && pass "text8 row order by run.json order" \
    || fail "text8 row order: '$order'"
  grep -q '^Commands: see run.json of each run; commit(s): def5678+dirty, abc1234; machine: 2 cores, Test CPU, 8 GiB' "$T" \
    && pass "text8 footer" || fail "text8 footer: $(tail -n 1 "$T")"
  tail -n 1 "$T" | grep -qF '"(val)"' && pass "text8 footer explains (val)" \
    || fail "text8 footer does not explain (val)"

  S="$OUT/synthetic_table.md"
  has_line "$S" "| run | objective | generator | schedule | params | steps | train tokens | headline bound | bpc (+- se) | source bits/token | gap % | other bounds | ms/step | tokens/s | wall time |"
  # md4-syn: gap = 100 (1.375 / 1.25 - 1) = 10.0 %; steps 20, 10% = 2: steps 10 (0.125) and
  #   20 (0.375): 250.0 ms/step; 32 x 64 = 2048 / 0.25 = 8192; wall 59.6 -> 60 s -> 1m0s.
  has_line "$S" "| md4-syn | md4 | absorbing | cosine | 200,000 | 20 | 40,960 | elbo | 1.3750 +- 0.0125 | 1.2500 | 10.0 | elbo-T100 1.4000 +- 0.0130 | 250.0 | 8192 | 1m0s |"
  # cedd-syn: headline j2 (first eval line) 1.5 -> gap 100 (1.5 / 1.25 - 1) = 20.0 %;
  #   only step 20 (0.512 s) -> 512.0 ms/step; 2048 / 0.512 = 4000; wall 7261 s -> 2h1m.
  has_line "$S" "| cedd-syn | cedd | absorbing | loglinear | 200,000 | 20 | 40,960 | j2 | 1.5000 +- 0.0200 | 1.2500 | 20.0 | j1 1.4000 +- 0.0100 | 512.0 | 4000 | 2h1m |"
  has_line "$S" "Commands: see run.json of each run; commit(s): abc1234; machine: 2 cores, Test CPU, 8 GiB"
fi

# --- --groups, the default output names ------------------------------------------------------
OUT2="$TMP/groups_out"
if run_rc 0 "--groups synthetic" --results "$R" --out "$OUT2" --groups synthetic; then
  [ -f "$OUT2/synthetic_table.md" ] && [ ! -e "$OUT2/text8_table.md" ] && [ ! -e "$OUT2/text8_bounds.png" ] \
    && pass "--groups synthetic writes only that group" || fail "--groups synthetic: $(ls "$OUT2")"
  check_png "$OUT2/synthetic_bounds.png"
fi
if run_rc 0 "--groups text8,absent (absent group skipped)" --results "$R" --out "$TMP/g3" --groups text8,absent; then
  expect_err "--groups with an absent group" "absent"
  [ -f "$TMP/g3/text8_table.md" ] || fail "--groups text8,absent did not write text8_table.md"
fi

# --- fallback to the last val event (no eval.jsonl, no end event) ----------------------------
R2="$(fresh_tree lastval)"
grep -v '"event":"end"' "$R2/text8/sedd-noeval/metrics.jsonl" >"$TMP/m" && cp "$TMP/m" "$R2/text8/sedd-noeval/metrics.jsonl"
if run_rc 0 "run without end event" --results "$R2" --out "$TMP/lastval/out" --groups text8; then
  # The last val event (step 40): j1 1.5 +- 0.025, bpc_j2 1.55 +- 0.03.
  has_line "$TMP/lastval/out/text8_table.md" "| sedd-noeval | sedd | uniform | geometric | 12,345 | 40 | 20,480 | j1 (last val) | 1.5000 +- 0.0250 | j2 1.5500 +- 0.0300 | 400.0 | 1280 | 1h2m |"
fi

# --- sample sets: generative perplexity ------------------------------------------------------
R5="$(fresh_tree samples)"
cp -R "$ROOT/tests/data/experiments/samples" "$TMP/samples/samples"
cp -R "$R5/text8/ar-zz" "$R5/text8/ar"   # the scorer's run: its nll (1.4 bits) is the reference
if run_rc 0 "report with sample sets (default --samples beside --results)" --results "$R5" --out "$TMP/samples/out"; then
  G="$TMP/samples/out/text8_genppl.md"
  for f in text8_genppl.md text8_samples.md text8_genppl.png; do
    grep -qxF "$TMP/samples/out/$f" "$TMP/out" || fail "the output does not list $f: $(cat "$TMP/out")"
  done
  check_png "$TMP/samples/out/text8_genppl.png"
  has_line "$G" "| model | sampler | steps | NFE per sample | generative perplexity (+- se) | bits/char | character entropy | wall time |"
  # md4 at 4 steps: nats 2.0 +- 0.05 -> ppl e^2 = 7.389, se 7.389 x 0.05 = 0.369;
  #   bits 2 / ln 2 = 2.885, se 0.05 / ln 2 = 0.072; nfe 4, 4; wall 75 s -> 1m15s; characters of
  #   "four steps" + "x": s twice, 9 others once: (2/11) log2(11/2) + (9/11) log2 11 = 3.278.
  has_line "$G" "| md4-base | md4 | 4 | 4 | 7.39 +- 0.37 | 2.885 +- 0.072 | 3.278 | 1m15s |"
  # md4-cached at 16 steps: nats 1.5 +- 0 -> e^1.5 = 4.482; bits 2.164; nfe (10 + 13) / 2 = 11.5;
  #   characters of "cached | sixteen" + "y" (17): entropy 3.572 (worked out with Counter).
  has_line "$G" "| md4-base | md4-cached | 16 | 11.5 | 4.48 +- 0.00 | 2.164 +- 0.000 | 3.572 | 5s |"
  # ar: steps shown as "-"; nats 1 +- 0.1 -> e = 2.718 +- 0.272; bits 1.443 +- 0.144;
  #   "the ar text" + "more": entropy 3.006.
  has_line "$G" "| ar | ar | - | 255 | 2.72 +- 0.27 | 1.443 +- 0.144 | 3.006 | 30s |"
  # Order: md4-base (run.json order 2), then ar (its results run has no run.json: last).
  order="$(grep -o '^| [a-z0-9-]* | [a-z0-9-]* |' "$G" | tr -d ' ' | tr '\n' ' ')"
  [ "$order" = "|model|sampler| |md4-base|md4| |md4-base|md4-cached| |ar|ar| " ] \
    && pass "genppl row order" || fail "genppl row order: '$order'"
  # Reference: results/text8/ar/eval.jsonl, nll 1.4 bits -> perplexity 2^1.4 = 2.639.
  tail -n 1 "$G" | grep -qF "Validation text under the AR model: perplexity 2.64 (1.4000 bits/char); commands: run.json of each set; commit(s): abc1234, def5678; machine: 2 cores, Test CPU" \
    && pass "genppl footer" || fail "genppl footer: $(tail -n 1 "$G")"
  SM="$TMP/samples/out/text8_samples.md"
  has_line "$SM" "**md4-base, md4-cached, 16 steps** (generative perplexity 4.5):"
  has_line "$SM" "cached | sixteen"
  has_line "$SM" "**AR model, ancestral** (generative perplexity 2.7):"
fi
rm "$TMP/samples/samples/text8/md4-base.md4.4/genppl.jsonl"
run_rc 2 "sample set without genppl.jsonl" --results "$R5" --out "$TMP/e" \
  && expect_err "sample set without genppl.jsonl" "md4-base.md4.4: sample set without genppl.jsonl"

# --- errors (exit 2) -----------------------------------------------------------------------
run_rc 2 "missing results dir" --results "$TMP/nonexistent" --out "$TMP/e" && expect_err "missing results dir" "does not exist"
mkdir -p "$TMP/empty/results/text8"   # a group directory without runs is no group
run_rc 2 "no groups" --results "$TMP/empty/results" --out "$TMP/e" && expect_err "no groups" "no groups found"
run_rc 2 "--groups naming no present group" --results "$R" --out "$TMP/e" --groups nosuch \
  && expect_err "--groups nosuch" "no groups found"
run_rc 2 "--genppl (no such option)" --genppl && expect_err "--genppl" "unrecognized arguments"

R3="$(fresh_tree nometrics)"
mkdir -p "$R3/text8/unfinished"
run_rc 2 "run dir without metrics.jsonl" --results "$R3" --out "$TMP/e" \
  && expect_err "run dir without metrics.jsonl" "text8/unfinished: run directory without metrics.jsonl"

R4="$(fresh_tree badmetrics)"
sed -i '3s/.*/{"event":"train","step":10,/' "$R4/text8/md4-base/metrics.jsonl"
run_rc 2 "malformed metrics.jsonl line" --results "$R4" --out "$TMP/e" \
  && expect_err "malformed metrics.jsonl" "md4-base/metrics.jsonl:3: malformed JSON"

R5="$(fresh_tree badeval)"
sed -i '2s/.*/not json/' "$R5/synthetic/cedd-syn/eval.jsonl"
run_rc 2 "malformed eval.jsonl line" --results "$R5" --out "$TMP/e" \
  && expect_err "malformed eval.jsonl" "cedd-syn/eval.jsonl:2: malformed JSON"

R6="$(fresh_tree badrunjson)"
sed -i '4s/.*/ "order": 2,,/' "$R6/text8/md4-base/run.json"
run_rc 2 "malformed run.json" --results "$R6" --out "$TMP/e" \
  && expect_err "malformed run.json" "md4-base/run.json:4: malformed JSON"

R7="$(fresh_tree nan)"
sed -i '6s/"bpc":2.0/"bpc":NaN/' "$R7/text8/md4-base/metrics.jsonl"   # line 6: the step-50 val
run_rc 2 "NaN in metrics.jsonl" --results "$R7" --out "$TMP/e" \
  && expect_err "NaN in metrics.jsonl" "md4-base/metrics.jsonl:6: malformed JSON"

R8="$(fresh_tree strbpc)"
sed -i '1s/"bpc":1.2345/"bpc":"1.2345"/' "$R8/text8/md4-base/eval.jsonl"
run_rc 2 "non-numeric bpc in eval.jsonl" --results "$R8" --out "$TMP/e" \
  && expect_err "non-numeric bpc" "md4-base/eval.jsonl:1: \"bpc\" must be a number"

if [ "$fails" -ne 0 ]; then
  echo "experiments_report_test: $fails failure(s)" >&2
  exit 1
fi
echo "experiments_report_test: all checks passed"
exit 0
