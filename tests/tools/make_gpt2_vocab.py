#!/usr/bin/env python3
"""Build a GPT-2-format byte-level BPE directory (vocab.json + merges.txt) of GPT-2's exact size.

    python3 tests/tools/make_gpt2_vocab.py OUT_DIR CORPUS [CORPUS ...] [--merges 50000]
                                          [--bytes-per-corpus 600000]

Layout, as in OpenAI's GPT-2 files: ids 0..255 are the 256 byte symbols in GPT-2's
byte-to-unicode order, id 256 + r is the token made by merge r (the line r + 1 of merges.txt,
after the "#version: 0.2" header), and the last id (50256 with the default 50000 merges) is
"<|endoftext|>", a special token. With --merges 50000 the vocabulary has 50257 entries.

The merges are LEARNED, greedily, on a small slice of each corpus (the first --bytes-per-corpus
bytes; .xz and .tar.xz are read with the standard library): the text is pre-tokenised by a
Python `re` approximation of GPT-2's regex (letters = [^\\W\\d_], numbers = \\d), the
pre-tokens are counted, and the most frequent adjacent pair is merged, ties broken by the pair's
text, until --merges merges exist. A pair whose concatenation is already a token is skipped, so
every merge makes a new id (as in GPT-2's files). It need not match Hugging Face's trainer bit
for bit; it only has to give a valid, realistic vocabulary (frequent words become one token,
late merges join whole rare words). If the slices run out of pairs before --merges, the script
stops with an error (give more text), it never pads with made-up merges.

Python standard library only (CI needs nothing new). About 5-10 s for 50000 merges.
"""
import argparse
import collections
import heapq
import io
import json
import lzma
import os
import re
import sys
import tarfile

PRETOKEN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


def byte_symbols():
    """GPT-2's byte-to-unicode map, in GPT-2's id order (printable bytes first)."""
    order = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    sym = {b: chr(b) for b in order}
    n = 0
    for b in range(256):
        if b not in sym:
            sym[b] = chr(256 + n)
            n += 1
            order.append(b)
    return order, sym


def read_slice(path, limit):
    if path.endswith(".tar.xz"):
        out = bytearray()
        with tarfile.open(path, "r:xz") as tar:
            for m in tar:
                if m.isfile() and len(out) < limit:
                    out += tar.extractfile(m).read(limit - len(out))
        return bytes(out)
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rb") as f:
        return f.read(limit)


def learn(texts, n_merges):
    order, sym = byte_symbols()
    vocab = [sym[b] for b in order]            # id -> token text
    ids = {t: i for i, t in enumerate(vocab)}  # token text -> id
    counts = collections.Counter()
    for text in texts:
        s = text.decode("utf-8", errors="replace")
        counts.update(PRETOKEN.findall(s))
    words, freq = [], []
    for w, c in sorted(counts.items()):
        words.append([ids[sym[b]] for b in w.encode("utf-8")])
        freq.append(c)

    pair_count = collections.defaultdict(int)
    where = collections.defaultdict(set)
    for wi, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += freq[wi]
            where[(a, b)].add(wi)
    heap = [(-c, vocab[p[0]], vocab[p[1]], p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    banned = set()
    merges = []
    while len(merges) < n_merges:
        if not heap:
            sys.exit(f"make_gpt2_vocab: only {len(merges)} merges could be learned from the "
                     f"slices; give more text (--bytes-per-corpus or more corpora)")
        negc, _, _, p = heapq.heappop(heap)
        cur = pair_count.get(p, 0)
        if cur <= 0 or p in banned:
            continue
        if cur != -negc:  # stale entry: re-queue with the current count
            heapq.heappush(heap, (-cur, vocab[p[0]], vocab[p[1]], p))
            continue
        a, b = p
        new_text = vocab[a] + vocab[b]
        if new_text in ids:  # would not make a new id: skip this pair for good
            banned.add(p)
            continue
        n = len(vocab)
        vocab.append(new_text)
        ids[new_text] = n
        merges.append((vocab[a], vocab[b]))
        touched = collections.defaultdict(int)
        for wi in list(where[p]):
            w, f = words[wi], freq[wi]
            for q in zip(w, w[1:]):
                pair_count[q] -= f
                touched[q] -= f
                where[q].discard(wi)
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(n)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
            for q in zip(out, out[1:]):
                pair_count[q] += f
                touched[q] += f
                where[q].add(wi)
        for q, d in touched.items():
            if d > 0 and q not in banned:  # a count grew: queue it (decreases are lazy)
                heapq.heappush(heap, (-pair_count[q], vocab[q[0]], vocab[q[1]], q))
        del pair_count[p]
        where.pop(p, None)
    vocab.append("<|endoftext|>")
    return vocab, merges


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("corpora", nargs="+")
    ap.add_argument("--merges", type=int, default=50000)
    ap.add_argument("--bytes-per-corpus", type=int, default=600000)
    args = ap.parse_args()
    texts = [read_slice(c, args.bytes_per_corpus) for c in args.corpora]
    vocab, merges = learn(texts, args.merges)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f)  # ASCII with \\u escapes, as GPT-2's
    with io.open(os.path.join(args.out_dir, "merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    print(f"{len(vocab)} ids ({len(merges)} merges) in {args.out_dir}")


if __name__ == "__main__":
    main()
