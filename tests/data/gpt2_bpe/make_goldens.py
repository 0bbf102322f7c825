#!/usr/bin/env python3
"""Makes the GPT-2 byte-level BPE test data of tests/test_bpe.cpp, once, with Hugging Face
`tokenizers` (PyPI; only this script uses it, CI never runs it):

    python3 -m venv /work/venv-tok && /work/venv-tok/bin/pip install tokenizers
    /work/venv-tok/bin/python tests/data/gpt2_bpe/make_goldens.py ../shared/data tests/data/gpt2_bpe

1. Trains a ByteLevel BPE (GPT-2's byte-to-unicode map, pre-tokenisation regex, no prefix space)
   with a vocabulary of 800 (the 256 byte symbols, the special token <|endoftext|>, 543 merges)
   on the first 400,000 characters of tinyshakespeare, enwik8 and the Gutenberg texts from the
   shared data directory, and writes vocab.json + merges.txt (the standard GPT-2 pair).
2. Reloads the tokenizer from exactly those two files (as discdiff does: BPE.from_file, the
   ByteLevel pre-tokeniser, <|endoftext|> as an added special token) and writes goldens.json:
   edge cases (whitespace runs, Unicode spaces, contractions, digits, non-Latin scripts, emoji,
   the special token at the start, middle and end) and excerpts of each corpus at fixed offsets,
   each with the ids that `tokenizers` gives.
"""
import io
import json
import lzma
import os
import sys
import tarfile

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

VOCAB = 800
SPECIAL = "<|endoftext|>"


def read(path):
    raw = lzma.open(path).read()
    if path.endswith(".tar.xz"):
        tf = tarfile.open(fileobj=io.BytesIO(raw))
        parts = []
        for m in sorted(tf.getmembers(), key=lambda m: m.name):
            if m.isfile() and os.path.basename(m.name) != "README":
                parts.append(tf.extractfile(m).read())
        raw = b"\n".join(parts)
    return raw.decode("utf-8", errors="replace")  # the Gutenberg texts hold a few Latin-1 bytes


def main():
    data_dir, out_dir = sys.argv[1], sys.argv[2]
    texts = {
        "tinyshakespeare": read(os.path.join(data_dir, "tinyshakespeare_input.txt.xz")),
        "enwik8": read(os.path.join(data_dir, "enwik8_prefix_4154400.xz")),
        "gutenberg": read(os.path.join(data_dir, "gutenberg_nltk_13texts.tar.xz")),
        "text8": read(os.path.join(data_dir, "text8_prefix_12549840.xz")),
    }
    train_texts = [texts[k][:400000] for k in ("tinyshakespeare", "enwik8", "gutenberg")]

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, special_tokens=[SPECIAL],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(train_texts, trainer=trainer)
    tok.model.save(out_dir)

    ref = Tokenizer(models.BPE.from_file(os.path.join(out_dir, "vocab.json"),
                                         os.path.join(out_dir, "merges.txt")))
    ref.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    ref.decoder = decoders.ByteLevel()
    ref.add_special_tokens([SPECIAL])

    cases = [
        "", " ", "  ", "   ", "\n", "\n\n", " \n", "\n ", "\t\t x", "a  b", "a   b ", "a\n\nb",
        "hello world", " hello  world  ", "Hello, World!", "trailing space ", "x \n y",
        "don't I'll we've they're he'd you'm it's 'S 'LL", "it''s", "'", "' s",
        "12345 678 9x9 ³½ ٣٤", "3.14159, 2e10; -7", "$100 (50%) #tag @user",
        "naïve café résumé Ünïcödé", "Ελληνικά Русский עברית العربية", "日本語の文章です。中文",
        "emoji 😀🎉 mixed👍🏽text", "a\u00a0b\u3000c\u2028d\u0085e\u200bf\x1cg\x1fh",
        "tabs\tand\u000bvertical\u000cfeed\rreturn", "   leading spaces", "!!!???...",
        "a-b_c/d\\e|f", "<|endoftext|>", "a<|endoftext|>b", " <|endoftext|> x",
        "end<|endoftext|>", "<|endoftext|><|endoftext|>", "<|endoftext", "ǅungla ᾈ ǈ",
        "x" * 300, " " * 40 + "y", "The quick brown fox jumps over the lazy dog. " * 4,
    ]
    goldens = [{"name": f"edge{i}", "text": t} for i, t in enumerate(cases)]
    for name, text in texts.items():
        n = len(text)
        for k in range(6):
            start = (n // 7) * (k + 1) + 13 * k
            goldens.append({"name": f"{name}@{start}", "text": text[start:start + 600]})
    for g in goldens:
        enc = ref.encode(g["text"])
        g["ids"] = enc.ids
        assert ref.decode(enc.ids, skip_special_tokens=False) == g["text"], g["name"]
    with open(os.path.join(out_dir, "goldens.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "tokenizers " + __import__("tokenizers").__version__,
                   "special_tokens": [SPECIAL], "cases": goldens}, f, ensure_ascii=True, indent=0)
    print(f"{len(goldens)} goldens, vocab {ref.get_vocab_size()}")


if __name__ == "__main__":
    main()
