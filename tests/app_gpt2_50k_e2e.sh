#!/usr/bin/env bash
# tests/app_gpt2_50k_e2e.sh: the program at GPT-2's vocabulary size, V = 50257 (CTest
# app.e2e.gpt2_50k).
#
#   bash tests/app_gpt2_50k_e2e.sh DISCDIFF WORKDIR SOURCE_DIR SHARED_DATA_DIR
#
# 1. tests/tools/make_gpt2_vocab.py learns a GPT-2-format vocabulary of exactly 50257 ids
#    (256 byte symbols + 50000 merges + <|endoftext|> = 50256) on 1 MB slices of three shared
#    corpora (python3, standard library only; about 3 s of CPU).
# 2. With it, on a 300 kB slice of enwik8 (generic name: 90/5/5 byte splits):
#    * `tokenize` writes a token file whose header says uint16 ids (2 bytes), N = 50257 and the
#      exact file size; an independent Python decoder (vocab.json + GPT-2's byte map) turns the
#      three splits back into the slice's bytes [0, 0.9 n), [0.9 n, 0.95 n), [0.95 n, n);
#    * `train` (1 layer, d 16, L 32, batch 8) for md4, sedd and cedd: the checkpoint has
#      50258 embedding rows (50257 + MASK) and 50257 output rows (md4, cedd) or 50258 (sedd's
#      score head); md4 trained on the token file == md4 trained on the raw text, bit for bit;
#    * `sample -o`: every id < 50257 and the program's text == the Python decoding of the ids;
#    * `eval --json`: every line finite, bits_per_byte == bits/token x 256 / bytes, and bytes ==
#      the Python-decoded length of the first 8 x 32 valid ids of the token file;
#    * `info`: "vocabulary gpt2, 50257 symbols".
# 3. The real GPT-2 files (tests/data/gpt2_real, OpenAI's encoder.json + vocab.bpe names):
#    `tokenize --tokenizer gpt2:tests/data/gpt2_real` of the slice decodes back exactly through
#    encoder.json in Python, with N = 50257 in the header; a 4-step md4 model's samples decode
#    through encoder.json to the program's text.
set -uo pipefail
bin=$1
work=$2
src=$3
shared=$4
py=${PYTHON:-python3}
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v "$py" > /dev/null || fail "no $py (the vocabulary builder needs python3, standard library only)"
t0=$(date +%s)

# --- 1. the 50257-id vocabulary ---------------------------------------------------------------
"$py" "$src/tests/tools/make_gpt2_vocab.py" bpe50k "$shared/tinyshakespeare_input.txt.xz" \
  "$shared/enwik8_prefix_4154400.xz" "$shared/gutenberg_nltk_13texts.tar.xz" \
  --bytes-per-corpus 1000000 > mk.txt || fail "make_gpt2_vocab.py: $(cat mk.txt)"
[ "$(wc -l < bpe50k/merges.txt)" = 50001 ] || fail "merges.txt: $(wc -l < bpe50k/merges.txt) lines (50001 expected)"
echo "vocabulary: $(cat mk.txt) ($(( $(date +%s) - t0 )) s)"

# The corpus slice (a generic name: 90/5/5 byte splits).
"$py" - "$shared/enwik8_prefix_4154400.xz" slice.txt <<'EOF' || fail "slice"
import lzma, sys
with lzma.open(sys.argv[1], "rb") as f:
    data = f.read(300000)
open(sys.argv[2], "wb").write(data)
EOF

# The independent decoder of the checks below (a module in the work directory): GPT-2's
# byte-to-unicode map written out independently of the program, and id -> bytes of a vocab.json.
cat > gpt2dec.py <<'EOF'
import json
ORDER = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
_sym, _k = {b: chr(b) for b in ORDER}, 0
for _b in range(256):
    if _b not in _sym:
        _sym[_b] = chr(256 + _k); _k += 1
INV = {c: b for b, c in _sym.items()}

def token_bytes(vocab_path):  # {id: bytes} of a GPT-2 vocab.json / encoder.json
    vocab = json.load(open(vocab_path, encoding="utf-8"))
    return {i: (bytes(INV[c] for c in t) if all(c in INV for c in t) else t.encode("utf-8"))
            for t, i in vocab.items()}
EOF
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# check_tokfile FILE VOCAB_JSON TEXT: the header (uint16, N = 50257, sizes) and the three splits
# decoded by an independent decoder equal the text's byte splits.
check_tokfile() {
  "$py" - "$@" <<'EOF'
import struct, sys
from gpt2dec import token_bytes
path, vocab_path, text_path = sys.argv[1:4]
raw = open(path, "rb").read()
text = open(text_path, "rb").read()
magic, version, width, n_sym, _res, _hash, n_tr, n_va, n_te = struct.unpack_from("<8sIIIIQQQQ", raw, 0)
assert magic == b"DDTOKENS", magic
assert width == 2, f"bytes per id {width}, expected 2 (uint16) for N = {n_sym}"
assert n_sym == 50257, n_sym
assert len(raw) == 56 + 2 * (n_tr + n_va + n_te), (len(raw), n_tr, n_va, n_te)
ids = struct.unpack_from(f"<{n_tr + n_va + n_te}H", raw, 56)
assert max(ids) < n_sym
tok = token_bytes(vocab_path)
assert sorted(tok) == list(range(n_sym)), "vocabulary ids are not 0..N-1"
dec = lambda seq: b"".join(tok[i] for i in seq)
n = len(text); a = n * 90 // 100; b = n * 95 // 100
assert dec(ids[:n_tr]) == text[:a], "train split does not decode to the text"
assert dec(ids[n_tr:n_tr + n_va]) == text[a:b], "valid split does not decode to the text"
assert dec(ids[n_tr + n_va:]) == text[b:], "test split does not decode to the text"
print(f"{path}: uint16, N = {n_sym}, {len(ids)} ids for {n} bytes ({n / len(ids):.2f} bytes/token); splits decode exactly")
EOF
}

# check_samples JSONL VOCAB_JSON: 2 samples of 32 ids, every id < 50257, and the program's text
# (text_hex when present) == the ids decoded by an independent decoder.
check_samples() {
  "$py" - "$@" <<'EOF'
import json, sys
from gpt2dec import token_bytes
tok = token_bytes(sys.argv[2])
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert len(lines) == 2, len(lines)
for s in lines:
    ids = s["tokens"]
    assert len(ids) == 32 and all(0 <= i < 50257 for i in ids), ids
    want = b"".join(tok[i] for i in ids)
    got = bytes.fromhex(s["text_hex"]) if "text_hex" in s else s["text"].encode("utf-8")
    assert got == want, (got[:80], want[:80])
EOF
}

gpt2="gpt2:$work/bpe50k"
"$bin" tokenize --tokenizer "$gpt2" -o c.tok slice.txt > tok.txt 2> tok.err || fail "tokenize: $(cat tok.err)"
check_tokfile c.tok bpe50k/vocab.json slice.txt || fail "token file check"

# --- 2. train / sample / eval / info at V = 50257 ---------------------------------------------
tiny=(--d-model 16 --n-layer 1 --n-head 2 --cond-dim 16 --seq-len 32 --batch 8 --steps 4 --warmup 1 --lr 3e-3
      --val-every 0 --val-batch 8 --val-sequences 16 --threads 2 --quiet)
digests() { "$bin" info --digest "$1" | awk '/fnv1a64/ {print $1, $NF}'; }
"$bin" train --data c.tok --tokenizer "$gpt2" --objective md4 --out md4 "${tiny[@]}" || fail "train md4 (token file)"
"$bin" train --data slice.txt --tokenizer "$gpt2" --objective md4 --out md4-text "${tiny[@]}" || fail "train md4 (raw text)"
diff <(digests md4/checkpoint.safetensors) <(digests md4-text/checkpoint.safetensors) > /dev/null ||
  fail "md4 on the token file and on the raw text differ"
[ "$(digests md4/checkpoint.safetensors | wc -l)" -gt 10 ] || fail "no tensor digests: $(digests md4/checkpoint.safetensors)"
echo "md4: token file == raw text (4 steps, bit-identical tensors)"
for obj in sedd cedd; do
  "$bin" train --data c.tok --tokenizer "$gpt2" --objective $obj --out $obj "${tiny[@]}" || fail "train $obj"
done
# The start-up memory estimate covers the peak at this vocabulary (logits, their gradient, the
# validation's logits, the GEMM work buffers; apps/memory_check.hpp): peak - 64 MiB <= estimate
# <= 1.5 peak, as app.e2e.limits requires at a character vocabulary.
for obj in md4 sedd cedd; do
  est=$(grep -o '"memory_estimate_bytes":[0-9.e+]*' $obj/metrics.jsonl | head -n 1 | cut -d: -f2)
  peak=$(grep -o '"peak_rss_bytes":[0-9.e+]*' $obj/metrics.jsonl | tail -n 1 | cut -d: -f2)
  [ -n "$est" ] && [ -n "$peak" ] || fail "$obj: no memory_estimate_bytes / peak_rss_bytes in metrics.jsonl"
  awk -v e="$est" -v p="$peak" 'BEGIN { exit !(p - 64 * 2^20 <= e && e <= 1.5 * p) }' ||
    fail "$obj: memory estimate $est bytes vs peak RSS $peak"
  echo "$obj: memory estimate $(awk -v e="$est" 'BEGIN{printf "%.0f", e/2^20}') MiB, peak RSS $(awk -v p="$peak" 'BEGIN{printf "%.0f", p/2^20}') MiB"
done

# shape_of CK TENSOR: the tensor's shape as "a,b"
shape_of() {
  "$bin" info --json "$1" | "$py" -c '
import json, sys
d = json.load(sys.stdin)
ts = d["tensors"]
items = ts.items() if isinstance(ts, dict) else [(t["name"], t) for t in ts]
for name, t in items:
    if name == sys.argv[1]:
        print(",".join(str(x) for x in t["shape"]))' "$2"
}

for obj in md4 sedd cedd; do
  ck=$obj/checkpoint.safetensors
  "$bin" info "$ck" | grep -q "vocabulary gpt2, 50257 symbols" || fail "$obj info: $("$bin" info "$ck" | grep vocabulary)"
  emb=$(shape_of "$ck" vocab_embed.embedding); out=$(shape_of "$ck" output_layer.linear.weight)
  want_out=50257; [ $obj = sedd ] && want_out=50258
  [ "$emb" = "50258,16" ] || fail "$obj: vocab_embed.embedding is [$emb], expected [50258,16]"
  [ "$out" = "$want_out,16" ] || fail "$obj: output_layer.linear.weight is [$out], expected [$want_out,16]"

  "$bin" sample -c "$ck" --n 2 --steps 8 --quiet -o s-$obj.jsonl > /dev/null || fail "sample $obj"
  check_samples s-$obj.jsonl bpe50k/vocab.json || fail "$obj samples"

  "$bin" eval -c "$ck" --data c.tok --sequences 8 --json ev-$obj.jsonl > ev-$obj.txt || fail "eval $obj"
  grep -q "bits/byte" ev-$obj.txt || fail "eval $obj text output lacks bits/byte: $(cat ev-$obj.txt)"
  "$py" - ev-$obj.jsonl c.tok bpe50k/vocab.json <<'EOF' || fail "$obj eval JSON"
import json, math, struct, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in rows if "bits_per_byte" in r]
assert rows, "no eval line with bits_per_byte"
raw = open(sys.argv[2], "rb").read()
n_tr, n_va = struct.unpack_from("<QQ", raw, 32)
valid = struct.unpack_from(f"<{8 * 32}H", raw, 56 + 2 * n_tr)  # the first 8 windows of 32
from gpt2dec import token_bytes
tok = token_bytes(sys.argv[3])
nbytes = len(b"".join(tok[i] for i in valid))
for r in rows:
    bpt, bpb, nb = r["bpc"], r["bits_per_byte"], r["bytes"]
    assert all(math.isfinite(x) for x in (bpt, bpb, r["bits_per_byte_se"])), r
    assert 0 < bpt < 2 * math.log2(50258), r  # near log2 V for an untrained net, never absurd
    assert nb == nbytes, (nb, nbytes)
    assert abs(bpb - bpt * 256 / nb) <= 1e-9 * bpb, r
    print(f"  {r.get('bound', r.get('name', '?'))}: {bpt:.4f} bits/token = {bpb:.4f} bits/byte over {nb} bytes")
EOF
  echo "$obj: info, sample, eval checked"
done

# --- 3. the real GPT-2 files, under OpenAI's names --------------------------------------------
real="$src/tests/data/gpt2_real"
"$bin" tokenize --tokenizer "gpt2:$real" -o real.tok slice.txt > /dev/null 2> real.err || fail "tokenize (real GPT-2): $(cat real.err)"
check_tokfile real.tok "$real/encoder.json" slice.txt || fail "real GPT-2 token file check"
"$bin" train --data real.tok --tokenizer "gpt2:$real" --objective md4 --out real "${tiny[@]}" ||
  fail "train md4 (real GPT-2)"
"$bin" sample -c real/checkpoint.safetensors --n 2 --steps 8 --quiet -o s-real.jsonl > /dev/null || fail "sample (real GPT-2)"
check_samples s-real.jsonl "$real/encoder.json" || fail "real GPT-2 samples"
echo "real GPT-2 (encoder.json + vocab.bpe): tokenize, train, sample checked"
echo "OK ($(( $(date +%s) - t0 )) s)"
