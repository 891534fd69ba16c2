#!/usr/bin/python3
"""scripts/ref_bpe_train.py -- an obviously-correct byte-level BPE trainer, the
independent reference for src/core/bpe_train.c, and the generator of the merge
fixtures in tests/fixtures/bpe_train/ (tests/spec/bpe_train_spec.lua compares).

The rule, as src/core/bpe_train.c states it and as written out here:
  1. Split every text into pieces with the pre-tokenizer pattern; a piece starts
     as its UTF-8 bytes, ids 0..255 = byte values. Identical pieces are counted.
  2. Count every adjacent pair of ids in every piece, weighted by the piece's
     count (overlapping occurrences count: "aaa" has the pair (a, a) twice).
  3. The pair to merge is the most frequent one; among equally frequent pairs,
     the smallest (left id, right id), compared left id first. Stop when no pair
     occurs min_frequency times or more.
  4. The merged token's bytes are left + right. If a token with those bytes
     already exists (made from another split), it keeps its id; else it gets
     the next id. The merge is recorded either way.
  5. Replace the pair in every piece, scanning left to right without overlap.
  6. Repeat until 256 + merges tokens + specials fill vocab_size (or 2 x that
     many merges were recorded).
Quadratic on purpose: every round recounts everything from scratch.

Pre-tokenizers: "gpt2" is GPT-2's pattern; this script only uses it on ASCII
text, where \\p{L} is [A-Za-z] and \\p{N} is [0-9], so Python's re gives the
same pieces. Other cases pass a pattern both PCRE2 and re read alike.

Usage: /usr/bin/python3 scripts/ref_bpe_train.py   (writes the fixtures; stdlib only)
"""
import json
import os
import random
import re
from collections import Counter

GPT2_ASCII = r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"""


def bytes_to_unicode():
    """GPT-2's byte <-> printable character table (the ByteLevel alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()


def bytelevel(bs):
    return "".join(B2U[b] for b in bs)


def train(texts, pattern, vocab_size, min_frequency, n_special=0):
    regex = re.compile(GPT2_ASCII if pattern == "gpt2" else pattern)
    pieces = Counter()
    for t in texts:
        for m in regex.finditer(t):
            if m.group(0):
                pieces[tuple(m.group(0).encode("utf-8"))] += 1
    words = [[list(p), c] for p, c in pieces.items()]
    tokens = [bytes([b]) for b in range(256)]           # id -> bytes
    max_merges = vocab_size - 256 - n_special
    merges, reused = [], 0
    while len(tokens) < 256 + max_merges and len(merges) < 2 * max_merges:
        counts = Counter()
        for sym, c in words:
            for a, b in zip(sym, sym[1:]):
                counts[(a, b)] += c
        if not counts:
            break
        best = max(counts.values())
        if best < min_frequency:
            break
        a, b = min(p for p, c in counts.items() if c == best)
        new = tokens[a] + tokens[b]
        if new in tokens[256:]:
            tid = 256 + tokens[256:].index(new)
            reused += 1
        else:
            tid = len(tokens)
            tokens.append(new)
        merges.append((a, b))
        for w in words:
            sym, out, k = w[0], [], 0
            while k < len(sym):
                if k + 1 < len(sym) and sym[k] == a and sym[k + 1] == b:
                    out.append(tid)
                    k += 2
                else:
                    out.append(sym[k])
                    k += 1
            w[0] = out
    return {
        "merges": [[bytelevel(tokens[a]), bytelevel(tokens[b])] for a, b in merges],
        "vocab": {bytelevel(t): i for i, t in enumerate(tokens)},
        "reused": reused,
    }


# ---- corpora ----

WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which but have an "
         "they you were her she there been one all we their has would when if so no what can more will up out "
         "about into than them only other new some could these two may first then do any like my now over such "
         "our man me even most made after also did many before must through back years where much your way "
         "well down should because each just those people how too little state good very make world still own "
         "see men work long get here between both life being under never day same another know while last").split()


def english(rng, n):
    out = []
    for _ in range(n):
        k = rng.randint(4, 14)
        s = " ".join(rng.choice(WORDS) for _ in range(k))
        s = s[0].upper() + s[1:]
        if rng.random() < 0.3:
            s += ", " + str(rng.randint(0, 2026))
        out.append(s + rng.choice([".", "!", "?", "'s", " -- ok."]) + rng.choice(["", "\n", "\n\n", "  "]))
    return out


def ties(rng):
    # every letter pair of a few two-letter words occurs equally often; runs overlap
    out = []
    for w in ["ab", "cd", "ef", "gh", "ba", "dc", "fe", "hg", "aaaa", "bbbb", "abab"]:
        out.append((" " + w) * 3)
    out.append("xyz zyx yxz")
    return out


def utf8(rng):
    syll = ["ka", "ré", "mö", "ñu", "ça", "δα", "λο", "жи", "ша", "日本", "語", "中文", "😀", "🚀", "é", "ß"]
    out = []
    for _ in range(120):
        words = []
        for _ in range(rng.randint(2, 7)):
            words.append("".join(rng.choice(syll) for _ in range(rng.randint(1, 3))))
            if rng.random() < 0.15:
                words.append(str(rng.randint(0, 999)))
        out.append(" ".join(words) + rng.choice(["", "\n", " "]))
    return out


def abc(rng):
    return ["".join(rng.choice("abc") for _ in range(rng.randint(3, 12))) for _ in range(150)]


def main():
    rng = random.Random(17)
    cases = [
        {"name": "english-gpt2", "texts": english(rng, 200), "pattern": "gpt2", "vocab_size": 500,
         "min_frequency": 2},
        {"name": "ties-gpt2", "texts": ties(rng), "pattern": "gpt2", "vocab_size": 290, "min_frequency": 1},
        {"name": "utf8-custom", "texts": utf8(rng), "pattern": r" ?[^\s0-9]+| ?[0-9]+|\s+", "vocab_size": 400,
         "min_frequency": 2},
        {"name": "abc-deep", "texts": abc(rng), "pattern": r"[^\s]+|\s+", "vocab_size": 256 + 80,
         "min_frequency": 1},
        {"name": "specials-min-frequency", "texts": english(rng, 30), "pattern": "gpt2", "vocab_size": 400,
         "min_frequency": 5, "special": ["<|endoftext|>", "<|pad|>"]},
    ]
    for c in cases:
        c.update(train(c["texts"], c["pattern"], c["vocab_size"], c["min_frequency"], len(c.get("special", []))))
    assert len(cases[4]["merges"]) < 400 - 258, "min_frequency should end the specials case early"
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    d = os.path.join(root, "tests", "fixtures", "bpe_train")
    os.makedirs(d, exist_ok=True)
    for c in cases:
        with open(os.path.join(d, c["name"] + ".json"), "w", encoding="utf-8") as f:
            json.dump(c, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print("%-24s %4d merges, %d reused ids, vocab %d" % (c["name"], len(c["merges"]), c["reused"],
                                                            len(c["vocab"])))


if __name__ == "__main__":
    main()
