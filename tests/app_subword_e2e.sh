#!/usr/bin/env bash
# tests/app_subword_e2e.sh: subword tokenizers end to end (CTest app.e2e.subword).
#
#   bash tests/app_subword_e2e.sh DISCDIFF WORKDIR TESTDATA CORPUS
#
# TESTDATA: tests/data (its gpt2_bpe/ holds a small GPT-2 style vocab.json + merges.txt);
# CORPUS: a text corpus (tinyshakespeare). Checks:
#   * tokenize writes a token file; training on it gives bit-identical tensors to training on the
#     raw text with the same tokenizer; no progress bar when stderr is not a terminal;
#   * a GPT-2 BPE checkpoint is self-contained: sample / eval / info need no tokenizer files;
#   * eval's bits per byte = bits per token x tokens / bytes (JSON), and = bits per token for a
#     one-byte-per-token vocabulary;
#   * training's validation (metrics.jsonl val/end events, the printed line) gives bits per byte
#     too: = bits per token x tokens / bytes, the bytes being those eval counts for the same
#     windows; = bits per token for a chars vocabulary;
#   * a token file of another tokenizer, a truncated token file, a malformed merges.txt and a
#     token file without --tokenizer are clear errors (exit 2) naming the file (and line);
#   * SentencePiece (if built in): tokenizer train, train --tokenizer spm:FILE, sample, eval;
#     else the "built without SentencePiece" message.
set -uo pipefail
bin=$1
work=$2
testdata=$3
corpus=$4
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1

fail() { echo "FAIL: $*" >&2; exit 1; }
digests() { "$bin" info --digest "$1" | awk '/fnv1a64/ {print $1, $NF}'; }
expect_error() {  # expect_error PATTERN CMD...
  local pat=$1; shift
  "$@" >/dev/null 2>err.txt
  local rc=$?
  [ "$rc" = 2 ] || fail "'$*' exited with $rc (expected 2): $(cat err.txt)"
  grep -qF -- "$pat" err.txt || fail "'$*': the message lacks '$pat': $(cat err.txt)"
  [ "$(wc -l < err.txt)" = 1 ] || fail "'$*': more than one line: $(cat err.txt)"
}
json_num() { sed -E "s/.*\"$2\":([-0-9.eE+]+).*/\1/" <<< "$1"; }

gpt2="gpt2:$testdata/gpt2_bpe"
tiny=(--d-model 32 --n-layer 1 --n-head 2 --cond-dim 16 --seq-len 32 --batch 8
      --val-sequences 16 --val-batch 8 --threads 2 --quiet)

# --- token file vs raw text ------------------------------------------------------------------
"$bin" tokenize --tokenizer "$gpt2" -o c.tok "$corpus" > tok.txt 2> tok.err || fail "tokenize: $(cat tok.err)"
[ -s tok.err ] && fail "tokenize wrote to a non-terminal stderr: $(cat tok.err)"
grep -q "bytes/token" tok.txt || fail "tokenize output: $(cat tok.txt)"
"$bin" train --data c.tok --tokenizer "$gpt2" --out from-tok --steps 12 --val-every 6 "${tiny[@]}" ||
  fail "train on the token file"
"$bin" train --data "$corpus" --tokenizer "$gpt2" --out from-text --steps 12 --val-every 6 "${tiny[@]}" ||
  fail "train on the raw text"
diff <(digests from-tok/checkpoint.safetensors) <(digests from-text/checkpoint.safetensors) ||
  fail "training on the token file and on the raw text differ"
echo "token file == raw text (12 steps, bit-identical tensors)"

# --- the checkpoint is self-contained -------------------------------------------------------
mkdir elsewhere && cp from-tok/checkpoint.safetensors elsewhere/ck.safetensors
(cd elsewhere && "$bin" sample -c ck.safetensors --n 2 --steps 8 --quiet > s.txt) || fail "sample"
[ -s elsewhere/s.txt ] || fail "no samples"
"$bin" info elsewhere/ck.safetensors | grep -q "vocabulary gpt2, 800 symbols" || fail "info: $("$bin" info elsewhere/ck.safetensors)"
"$bin" eval -c elsewhere/ck.safetensors --data c.tok --sequences 8 --json ev.jsonl > ev.txt || fail "eval"
grep -q "bits/byte" ev.txt || fail "eval text output lacks bits/byte: $(cat ev.txt)"
line=$(head -n 1 ev.jsonl)
bpt=$(json_num "$line" bpc); bpb=$(json_num "$line" bits_per_byte); bytes=$(json_num "$line" bytes)
# 8 sequences x 32 tokens over `bytes` bytes of decoded text.
awk -v t="$bpt" -v b="$bpb" -v n="$bytes" 'BEGIN { r = t * 256 / n; exit !(n > 256 && (b - r) ^ 2 < 1e-12 * r * r) }' ||
  fail "bits/byte $bpb != bits/token $bpt x 256 tokens / $bytes bytes"
echo "eval: $bpt bits/token = $bpb bits/byte over $bytes bytes"

# Training's validation: the same windows (16 x 32 tokens of the valid split) as
# `eval --sequences 16`, so the same bytes; bits per byte = bits per token x 512 / bytes.
"$bin" eval -c from-tok/checkpoint.safetensors --data c.tok --split valid --sequences 16 --json ev16.jsonl \
  > /dev/null || fail "eval --sequences 16"
ebytes=$(json_num "$(head -n 1 ev16.jsonl)" bytes)
for ev in val end; do
  line=$(grep "\"event\":\"$ev\"" from-tok/metrics.jsonl | tail -n 1)
  bpt=$(json_num "$line" bpc); bpb=$(json_num "$line" bits_per_byte); tbytes=$(json_num "$line" bytes)
  se=$(json_num "$line" bpc_se); bse=$(json_num "$line" bits_per_byte_se)
  [ "$tbytes" = "$ebytes" ] || fail "train's $ev line counts $tbytes bytes, eval of the same windows $ebytes: $line"
  awk -v t="$bpt" -v b="$bpb" -v s="$se" -v bs="$bse" -v n="$tbytes" 'BEGIN { r = t * 512 / n; q = s * 512 / n;
    exit !(n > 512 && (b - r) ^ 2 < 1e-12 * r * r && (bs - q) ^ 2 < 1e-12 * q * q) }' ||
    fail "train $ev: bits/byte $bpb +- $bse != ($bpt +- $se) x 512 tokens / $tbytes bytes"
done
# Training on the raw text logs the same validation numbers.
a=$(grep '"event":"end"' from-tok/metrics.jsonl); b=$(grep '"event":"end"' from-text/metrics.jsonl)
for k in bpc bpc_se bytes bits_per_byte bits_per_byte_se; do
  [ "$(json_num "$a" $k)" = "$(json_num "$b" $k)" ] || fail "end $k: token file $(json_num "$a" $k), raw text $(json_num "$b" $k)"
done
echo "train: validation $bpt bits/token = $bpb bits/byte over $tbytes bytes (eval counts the same bytes)"

# A byte-level vocabulary: bits per byte == bits per token (in training's validation too; this
# run prints its lines: all of tiny but --quiet).
"$bin" train --data "$corpus" --tokenizer chars --out chars --steps 4 --val-every 0 "${tiny[@]:0:${#tiny[@]}-1}" \
  > chars.txt || fail "train chars"
line=$(grep '"event":"val"' chars/metrics.jsonl | tail -n 1)
[ "$(json_num "$line" bpc)" = "$(json_num "$line" bits_per_byte)" ] || fail "chars: training's bpc != bits/byte: $line"
grep -Eq "step 4/4  val elbo [0-9.]+ \+- [0-9.]+ bits/token, [0-9.]+ \+- [0-9.]+ bits/byte" chars.txt ||
  fail "train's validation line lacks bits/byte: $(cat chars.txt)"
"$bin" eval -c chars/checkpoint.safetensors --sequences 4 --json ev-chars.jsonl > /dev/null || fail "eval chars"
line=$(head -n 1 ev-chars.jsonl)
[ "$(json_num "$line" bpc)" = "$(json_num "$line" bits_per_byte)" ] || fail "chars: bpc != bits/byte: $line"

# --- errors -----------------------------------------------------------------------------------
"$bin" tokenize --tokenizer bytes -o bytes.tok "$corpus" > /dev/null || fail "tokenize bytes"
expect_error "bytes.tok was tokenized with another tokenizer (N = 256" \
  "$bin" eval -c from-tok/checkpoint.safetensors --data bytes.tok
expect_error "c.tok was tokenized with another tokenizer" \
  "$bin" train --data c.tok --tokenizer bytes --out bad1 --steps 1 "${tiny[@]}"
expect_error "'c.tok' is a token file: pass the --tokenizer" \
  "$bin" train --data c.tok --out bad2 --steps 1 "${tiny[@]}"
head -c 5000 c.tok > cut.tok
expect_error "cut.tok: truncated token file: 5000 bytes" \
  "$bin" eval -c from-tok/checkpoint.safetensors --data cut.tok
mkdir badbpe && cp "$testdata/gpt2_bpe/vocab.json" badbpe/ && { head -n 5 "$testdata/gpt2_bpe/merges.txt"; echo "Ġt"; } > badbpe/merges.txt
expect_error "badbpe/merges.txt:6: expected two tokens separated by one space" \
  "$bin" train --data "$corpus" --tokenizer gpt2:badbpe --out bad3 --steps 1 "${tiny[@]}"
{ echo '{"a": 0,'; echo '"b" 1}'; } > badbpe/vocab.json
expect_error "badbpe/vocab.json:2:5: expected ':'" \
  "$bin" tokenize --tokenizer gpt2:badbpe -o x.tok "$corpus"
# A corpus that does not fit the tokenizer: tokenize fails and leaves -o as it was, with no
# temporary file beside it (the ids are written to FILE.tmp.<pid>, renamed at the end).
for i in $(seq 50); do echo 'hello {world}'; done > odd.txt
echo "an older file" > keep.tok
expect_error "the train split of 'odd.txt' does not fit the tokenizer" \
  "$bin" tokenize --checkpoint chars/checkpoint.safetensors -o keep.tok odd.txt
[ "$(cat keep.tok)" = "an older file" ] || fail "a failed tokenize changed its -o file"
ls keep.tok.tmp.* 2>/dev/null && fail "a failed tokenize left a temporary file"
echo "errors: tokenizer mismatch, truncated token file, malformed merges/vocab, a corpus outside the vocabulary"

# --- SentencePiece ----------------------------------------------------------------------------
if "$bin" tokenizer train --type bpe --vocab-size 400 -o m.model "$corpus" > spm.txt 2> spm.err; then
  "$bin" train --data "$corpus" --tokenizer spm:m.model --out spm --steps 8 --val-every 0 "${tiny[@]}" ||
    fail "train spm"
  rm m.model  # the checkpoint holds the model
  "$bin" sample -c spm/checkpoint.safetensors --n 2 --steps 8 --quiet > spm-s.txt || fail "sample spm"
  "$bin" eval -c spm/checkpoint.safetensors --sequences 4 --json ev-spm.jsonl > /dev/null || fail "eval spm"
  grep -q '"bits_per_byte"' ev-spm.jsonl || fail "eval spm JSON: $(cat ev-spm.jsonl)"
  "$bin" info spm/checkpoint.safetensors | grep -q "vocabulary spm, 400 symbols" || fail "info spm"
  echo "SentencePiece: train / sample / eval from the checkpoint alone"
else
  grep -q "built without SentencePiece" spm.err || fail "tokenizer train failed: $(cat spm.err)"
  echo "SentencePiece: not built in (message checked)"
fi
echo "OK"
