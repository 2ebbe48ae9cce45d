"""Where sentence-level origin should start: identical sentences between distinct documents, by length.

For each shared corpus every document is split into sentences (retrieval.origin, NLTK Punkt) and
each sentence hashed by its words. A sentence whose hash also occurs in another document is what
the sentence-origin rule would call a copy if the two documents came from different people: the
false refusals a minimum length must keep rare. It prints, for minimum lengths 3 to 12 words:
the share of the corpus's words such a rule protects (words in sentences at least that long),
the share of those sentences shared with another document, and the share of documents that
would lose a sentence, or be refused whole (every fact-carrying sentence shared).

    .venv/bin/python bench/sentence_origin.py [--data ../shared/data] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.origin import sentence_hash, sentences

CORPORA = ["scifact", "hotpotqa-dev", "squad2-dev-5", "locomo-dev"]
LENGTHS = [3, 4, 5, 6, 8, 10, 12]


def measure(path: Path, limit: int | None) -> list[tuple[int, float, float, float, float, int]]:
    docs: list[list[tuple[int, str]]] = []
    with path.open() as f:
        for n, line in enumerate(f):
            if limit is not None and n >= limit:
                break
            text = json.loads(line).get("text", "")
            docs.append([(s.words, sentence_hash(s.text)) for s in sentences(text)])
    where: dict[str, set[int]] = defaultdict(set)
    for i, doc in enumerate(docs):
        for _, h in doc:
            where[h].add(i)
    total_words = sum(w for doc in docs for w, _ in doc) or 1
    rows = []
    for k in LENGTHS:
        long = [(i, w, h) for i, doc in enumerate(docs) for w, h in doc if w >= k]
        shared = [(i, h) for i, _, h in long if len(where[h]) > 1]
        touched = {i for i, _ in shared}
        whole = sum(1 for i, doc in enumerate(docs)
                    if any(w >= k for w, _ in doc) and all(len(where[h]) > 1 for w, h in doc if w >= k))
        rows.append((k, sum(w for _, w, _ in long) / total_words, len(shared) / max(len(long), 1),
                     len(touched) / max(len(docs), 1), whole / max(len(docs), 1), len(long)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--smoke", action="store_true", help="the first 200 documents of each corpus")
    args = parser.parse_args()
    for name in CORPORA:
        path = args.data / name / "corpus.jsonl"
        if not path.exists():
            print(f"{name}: no {path}")
            continue
        print(f"\n{name}")
        print("min words | words covered | sentences shared with another doc | docs losing a sentence | docs refused whole | sentences")
        for k, covered, shared, touched, whole, count in measure(path, 200 if args.smoke else None):
            print(f"{k:9d} | {covered:13.3f} | {shared:33.5f} | {touched:22.5f} | {whole:18.5f} | {count}")


if __name__ == "__main__":
    main()
