"""Where to put the near-duplicate threshold: cosine of light copies vs distinct neighbours.

Takes N SciFact abstracts (first 200 word pieces, as a chunk), makes copies a plagiarist
would (a few words swapped for synonyms, a sentence dropped, punctuation and case changed,
a sentence reordered), and prints the cosine distribution of copy-to-original and of each
original to its nearest *other* abstract. A good threshold sits above nearly every
distinct pair and below most light copies.

    .venv/bin/python bench/near_duplicates.py [--n 300]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.embedder import load_embedder
from retrieval.settings import RetrievalSettings

SWAPS = {"increase": "rise", "increased": "raised", "decrease": "drop", "significant": "notable",
         "patients": "subjects", "study": "analysis", "results": "findings", "however": "but",
         "showed": "demonstrated", "associated": "linked", "role": "function", "using": "with"}


def edits(text: str, rng: random.Random) -> dict[str, str]:
    sentences = re.split(r"(?<=[.!?])\s+", text)
    words = text.split()
    swapped = " ".join(SWAPS.get(w.lower(), w) for w in words)
    if swapped == text:  # make sure at least one word changes
        i = rng.randrange(len(words))
        swapped = " ".join(words[:i] + ["notably"] + words[i:])
    out = {
        "synonyms swapped": swapped,
        "case and punctuation": re.sub(r"[,;:]", "", text).upper(),
        "one sentence dropped": " ".join(s for i, s in enumerate(sentences) if i != len(sentences) // 2) or text,
        "sentences reordered": " ".join(sentences[1:] + sentences[:1]),
        "a sentence appended": text + " This summary was prepared for a course.",
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"))
    args = ap.parse_args()
    rng = random.Random(7)
    embedder = load_embedder(RetrievalSettings())
    with open(Path(args.data) / "corpus.jsonl") as f:
        docs = [json.loads(line) for line in f]
    rng.shuffle(docs)
    texts = []
    for d in docs[: args.n]:
        ids = embedder.token_ids(d["text"])[:200]
        texts.append(embedder.tokenizer.decode(ids) if len(ids) == 200 else d["text"])
    originals = embedder.embed(texts)
    sims = originals @ originals.T
    np.fill_diagonal(sims, -1)
    nearest_other = sims.max(axis=1)
    print(f"# {args.n} SciFact abstracts, {embedder.name}")
    qs = [0.5, 0.9, 0.99, 1.0]
    print("nearest distinct abstract: " + "  ".join(f"q{int(q * 100)} {np.quantile(nearest_other, q):.3f}" for q in qs))
    variants: dict[str, list[str]] = {}
    for t in texts:
        for name, v in edits(t, rng).items():
            variants.setdefault(name, []).append(v)
    for threshold in (0.90, 0.93, 0.95, 0.97):
        print(f"threshold {threshold:.2f}: distinct pairs refused {np.mean(nearest_other >= threshold):.3%}")
    for name, vs in variants.items():
        cos = np.sum(embedder.embed(vs) * originals, axis=1)
        caught = "  ".join(f"caught@{t:.2f} {np.mean(cos >= t):.0%}" for t in (0.90, 0.93, 0.95, 0.97))
        print(f"copy: {name:22s} median cos {np.median(cos):.3f}  min {cos.min():.3f}  {caught}")


if __name__ == "__main__":
    main()
