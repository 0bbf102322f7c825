#!/usr/bin/env bash
# tests/plot_test.sh: end-to-end checks of scripts/plot.py on tests/data/plot_fixture.jsonl.
#
#   bash tests/plot_test.sh /path/to/project/root      (CTest passes the source dir)
#
# Checks: PNG written for each --x mode (exists, non-empty, PNG signature, 1440x540 pixels =
# 12x4.5 in at dpi 120), the printed path; --table values recomputed by hand from the fixture
# (final val bpc +- se, bits/byte +- se or '-' for old logs, steps, tokens, mean tokens/s); the debiased EMA against a direct
# formula; and exit status 2 for a malformed line (message names file and line), a missing
# file, a bad --x, a mismatched --labels count, a log without train/val events.
# Uses $PYTHON if set, else /usr/bin/python3 (Debian's, where python3-matplotlib lives).
# Exit 0 on success; on failure prints "FAIL: ..." and exits 1.
set -u

ROOT="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
PY="${PYTHON:-/usr/bin/python3}"
SCRIPT="$ROOT/scripts/plot.py"
FIX="$ROOT/tests/data/plot_fixture.jsonl"

fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
pass() { echo "ok:   $*"; }

[ -f "$SCRIPT" ] || { echo "FAIL: $SCRIPT not found" >&2; exit 1; }
[ -f "$FIX" ] || { echo "FAIL: $FIX not found" >&2; exit 1; }
"$PY" -c 'import matplotlib' 2>/dev/null \
  || { echo "FAIL: $PY cannot import matplotlib (apt-get install python3-matplotlib)" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/plot_test.XXXXXX")" || { echo "FAIL: mktemp" >&2; exit 1; }
trap 'rm -rf "$TMP"' EXIT
export MPLCONFIGDIR="$TMP/mplconfig"

# run_rc EXPECTED NAME ARGS...: run plot.py, check the exit status; output in $TMP/out, $TMP/err.
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

# check_png FILE: non-empty, PNG signature, IHDR width 1440 and height 540.
check_png() {
  local f="$1"
  if [ ! -s "$f" ]; then fail "$f missing or empty"; return; fi
  local sig; sig="$(od -An -tx1 -N8 "$f" | tr -d ' \n')"
  [ "$sig" = "89504e470d0a1a0a" ] || { fail "$f: bad PNG signature $sig"; return; }
  local ihdr; ihdr="$(od -An -tx1 -j12 -N12 "$f" | tr -d ' \n')"
  # "IHDR" then 4-byte big-endian width and height: 1440 = 0x5a0, 540 = 0x21c.
  [ "$ihdr" = "49484452000005a00000021c" ] || { fail "$f: IHDR $ihdr, expected 1440x540"; return; }
  pass "$f is a 1440x540 PNG"
}

# --- plots ---------------------------------------------------------------------------
for x in tokens step time; do
  out="$TMP/plot_$x.png"
  if run_rc 0 "plot --x $x" "$FIX" -o "$out" --x "$x" --title "fixture $x"; then
    check_png "$out"
    [ "$(cat "$TMP/out")" = "$out" ] || fail "plot --x $x printed '$(cat "$TMP/out")', expected '$out'"
  fi
done
# Two logs (the fixture twice -> four runs), labels, no smoothing.
out="$TMP/plot_labels.png"
if run_rc 0 "plot two logs with --labels" "$FIX" "$FIX" -o "$out" --labels a,b,c,d --smooth 0; then
  check_png "$out"
fi
# A log written before the train loss's key named its unit (loss_per_token) plots the same.
sed 's/"loss_nats_per_token"/"loss_per_token"/g' "$FIX" >"$TMP/old_key.jsonl"
if run_rc 0 "plot an old-key log" "$TMP/old_key.jsonl" -o "$TMP/old_key.png"; then
  check_png "$TMP/old_key.png"
fi
if run_rc 0 "--help" --help; then
  grep -q -- "--table" "$TMP/out" || fail "--help does not mention --table"
fi

# --- table ---------------------------------------------------------------------------
# Expected values worked out by hand from the fixture: final val events, max step/tokens,
# mean of tokens_per_s over train events (5400,5600,5500,5700 -> 5550; 1200,1300,1250 -> 1250).
if run_rc 0 "--table" --table "$FIX"; then
  grep -q '^| run | objective | generator | schedule |' "$TMP/out" || fail "table header missing"
  grep -qF '| md4-linear | md4 | absorbing | linear | 400 | 819200 | elbo | 1.6125 +- 0.0125 | - | 5550.0 |' "$TMP/out" \
    || fail "table row md4-linear wrong: $(cat "$TMP/out")"
  grep -qF '| sedd-uniform | sedd | uniform | cosine | 300 | 153600 | dce | 2.0375 +- 0.0250 | - | 1250.0 |' "$TMP/out" \
    || fail "table row sedd-uniform wrong: $(cat "$TMP/out")"
  [ "$(grep -c '^|' "$TMP/out")" -eq 4 ] || fail "table should have 2 header + 2 run lines"
fi
# A log with bits per byte (train's val lines since 2026-12): the column shows the last one.
printf '%s\n' '{"event":"start","run":"bpb","objective":"md4","generator":"absorbing","schedule":"linear"}' \
  '{"event":"train","step":10,"tokens":640,"loss_nats_per_token":2.0,"tokens_per_s":100}' \
  '{"event":"val","step":10,"tokens":640,"bound":"elbo","bpc":3.0,"bpc_se":0.5,"bits_per_byte":1.25,"bits_per_byte_se":0.125,"bytes":1229,"elapsed_s":1}' \
  > "$TMP/bpb.jsonl"
if run_rc 0 "--table with bits/byte" --table "$TMP/bpb.jsonl"; then
  grep -qF '| bpb | md4 | absorbing | linear | 10 | 640 | elbo | 3.0000 +- 0.5000 | 1.2500 +- 0.1250 | 100.0 |' "$TMP/out" \
    || fail "table row with bits/byte wrong: $(cat "$TMP/out")"
fi
if run_rc 0 "--table --labels" --table "$FIX" --labels "first,second"; then
  grep -qF '| first | md4 |' "$TMP/out" && grep -qF '| second | sedd |' "$TMP/out" \
    || fail "--labels not used in the table"
fi

# --- EMA against the closed form: s_t = sum_k (1-a) a^(t-k) x_k / (1 - a^(t+1)) --------
PYTHONDONTWRITEBYTECODE=1 "$PY" - "$ROOT/scripts" <<'EOF' && pass "EMA matches the closed form" || fail "EMA check"
import sys
sys.path.insert(0, sys.argv[1])
import plot
xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0]
for a in (0.0, 0.5, 0.9):
    got = plot.ema(xs, a)
    for t in range(len(xs)):
        num = sum((1 - a) * a ** (t - k) * xs[k] for k in range(t + 1))
        want = num / (1 - a ** (t + 1))
        assert abs(got[t] - want) < 1e-12, (a, t, got[t], want)
assert all(abs(v - 2.5) < 1e-12 for v in plot.ema([2.5] * 5, 0.9))  # debiased: no pull towards 0
EOF

# --- errors: exit status 2 -----------------------------------------------------------
bad="$TMP/malformed.jsonl"
{ head -n 3 "$FIX"; echo '{"event":"train","step":500,"loss":'; tail -n +4 "$FIX"; } >"$bad"
if run_rc 2 "malformed line" "$bad" -o "$TMP/m.png"; then
  grep -q "malformed.jsonl:4" "$TMP/err" || fail "malformed message does not name file:line: $(cat "$TMP/err")"
  [ ! -e "$TMP/m.png" ] || fail "malformed log still wrote a PNG"
fi
if run_rc 2 "malformed line (--table)" --table "$bad"; then
  grep -q "malformed.jsonl:4" "$TMP/err" || fail "--table malformed message does not name file:line"
fi
printf '{"event":"train","step":1,"tokens":1,"loss_nats_per_token":NaN}\n' >"$TMP/nan.jsonl"
run_rc 2 "NaN constant is malformed" "$TMP/nan.jsonl" -o "$TMP/n.png"
printf '[1,2,3]\n' >"$TMP/array.jsonl"
run_rc 2 "non-object line" "$TMP/array.jsonl" -o "$TMP/a.png"

run_rc 2 "missing file" "$TMP/does_not_exist.jsonl" -o "$TMP/x.png" \
  && { grep -q "does_not_exist.jsonl" "$TMP/err" || fail "missing-file message does not name the file"; }
run_rc 2 "bad --x" "$FIX" -o "$TMP/x.png" --x epochs
run_rc 2 "mismatched --labels" "$FIX" -o "$TMP/x.png" --labels only_one
run_rc 2 "bad --smooth" "$FIX" -o "$TMP/x.png" --smooth 1.0
run_rc 2 "no -o" "$FIX"

head -n 1 "$FIX" >"$TMP/start_only.jsonl"
run_rc 2 "no train/val events" "$TMP/start_only.jsonl" -o "$TMP/x.png"
: >"$TMP/empty.jsonl"
run_rc 2 "empty log" "$TMP/empty.jsonl" -o "$TMP/x.png"
printf '{"event":"train","step":1,"tokens":1,"loss_nats_per_token":1.0}\n' >"$TMP/no_time.jsonl"
run_rc 2 "missing x key (--x time)" "$TMP/no_time.jsonl" -o "$TMP/x.png" --x time \
  && { grep -q "no_time.jsonl:1" "$TMP/err" || fail "missing-key message does not name file:line"; }

if [ "$fails" -ne 0 ]; then
  echo "plot_test: $fails check(s) failed" >&2
  exit 1
fi
echo "plot_test: all checks passed"
exit 0
