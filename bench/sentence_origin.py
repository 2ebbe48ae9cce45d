"""Where sentence-level origin should start: identical sentences between distinct documents, by length.

For each shared corpus every document is split into sentences (retrieval.origin, NLTK Punkt) and
each sentence hashed by its words. A sentence whose hash also occurs in another document is what
the sentence-origin rule would call a copy if the two documents came from different people: the
false refusals a minimum length must keep rare. It prints, for minimum lengths 3 to 12 words:
the share of the corpus's words such a rule protects (words in sentences at least that long),
the share of those sentences shared with another document, and the share of documents that
would lose a sentence, or be refused whole (every fact-carrying sentence shared).

``--stretches`` measures origin by word stretches instead (retrieval.origin ``fingerprints``,
``copied_sentences``). First, for n = 8..16, how often distinct documents share an n-word run
and which runs are shared most (boilerplate, quotations, titles). Then a labelled set: from a
sentence of a document, copies of six kinds (verbatim, wrapped in other words, trimmed by a word
or two, one word swapped, a clause of 8-14 words inside another sentence, two sentences merged
into one, one split in two), each between two sentences of an independent document, checked the
way intake checks them (documents stored in order, each the origin of what it stored first;
winnowed fingerprints looked up, the best ``MAX_ORIGIN_CHUNKS`` origins aligned word for word).
A copy is caught when every sentence of the copier that holds it is taken out; independent texts
are the documents themselves, each checked against the documents before it, and the independent
sentences around each copy. Parameters are tuned on the even-indexed documents (``--half even``)
and reported on the odd ones; the exact-sentence rule is shown beside them as the baseline.
Then what answers do with the copies the intake keeps (``retrieval.first_writers``): the sentence
holding each kept copy quoted and credited to the copier, how often its first writer is paid
(fingerprints alone, then with a BM25 search and runs of ``--answer-run`` words), and each
independent sentence quoted from its own document, how often it would pay an older one.

    .venv/bin/python bench/sentence_origin.py [--data ../shared/data] [--smoke]
    .venv/bin/python bench/sentence_origin.py --stretches [--half even|odd] [--smoke] [--limit N]
        [--sizes 9,10,11] [--shares 0,0.5] [--longs 20] [--window 4] [--no-runs] [--answer-run 8]

``--paraphrases`` measures the paraphrase rule (retrieval.paraphrase): the documents of one half
are stored in order (each one's vector and its sentences' vectors, embedded as the intake embeds
them); from each, one sentence carrying particulars is reworded (bench/support_set.py's
``paraphrase``: leading phrase moved, clauses swapped, passive/active, WordNet synonyms) and
checked as a sentence of another contributor's text (its vector against the nearest
``CANDIDATE_CHUNKS`` stored documents' sentences). Independent: each document's sentences
against the documents of other contributors stored before it (locomo: a speaker of a
conversation is one contributor). Printed per cosine threshold: paraphrases caught, independent
sentences and documents that would lose a sentence.

    .venv/bin/python bench/sentence_origin.py --paraphrases [--half even|odd] [--smoke] [--limit N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.first_writers import QUOTED_RUN
from retrieval.lexical import FtsIndex, analyse
from retrieval.origin import (
    LONG_COPY,
    MAX_ORIGIN_CHUNKS,
    MIN_WORDS,
    ORIGIN_SHARE,
    STRETCH_WORDS,
    WINNOW,
    Split,
    copied_sentences,
    fingerprints,
    first_written,
    sentence_hash,
    sentences,
    split,
    stretch_hashes,
    words,
)

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


def distinct_texts(path: Path, limit: int | None) -> list[str]:
    """The corpus's documents, each distinct text once (an identical document is a chunk-level duplicate)."""
    return [d.text for d in corpus_docs(path, limit)]


def corpora(data: Path) -> Iterator[tuple[str, Path]]:
    """Each shared corpus present under ``data`` with its corpus file; a missing one is named."""
    for name in CORPORA:
        path = data / name / "corpus.jsonl"
        if path.exists():
            yield name, path
        else:
            print(f"{name}: no {path}")


def shared_runs(docs: list[Split], n: int) -> tuple[float, float, list[tuple[int, str]]]:
    """Share of documents with an n-word run another document has, share of runs so shared, and
    the most widely shared runs (documents, text)."""
    where: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for i, d in enumerate(docs):
        for j in range(len(d.words) - n + 1):
            where[tuple(d.words[j:j + n])].add(i)
    shared = {g: ds for g, ds in where.items() if len(ds) > 1}
    docs_sharing = len({i for ds in shared.values() for i in ds})
    # Report maximal shared runs, not their overlapping n-word windows: keep one per document set.
    top, used = [], set()
    for g, ds in sorted(shared.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        key = frozenset(ds)
        if key in used:
            continue
        used.add(key)
        top.append((len(ds), " ".join(g)))
        if len(top) == 6:
            break
    return docs_sharing / max(len(docs), 1), len(shared) / max(len(where), 1), top


@dataclass
class Store:
    """Documents stored in order: fingerprint -> first document, sentence hash -> first document."""

    n: int
    window: int
    share: float
    long: int
    docs: list[Split]
    prints: dict[int, int]
    hashes: dict[str, int]

    @classmethod
    def empty(cls, n: int, window: int, share: float = ORIGIN_SHARE, long: int = LONG_COPY) -> Store:
        return cls(n, window, share, long, [], {}, {})

    def flagged(self, text: Split, exclude: int | None = None) -> tuple[set[int], set[int]]:
        """Sentences (positions) the stretch rule and the exact-sentence rule would take out."""
        hits = Counter(self.prints[f] for f in fingerprints(text.words, self.n, self.window)
                       if f in self.prints and self.prints[f] != exclude)
        origins = {d: self.docs[d] for d, _ in hits.most_common(MAX_ORIGIN_CHUNKS)}
        by_stretch = set(copied_sentences(text, origins, self.n, self.share, self.long)) if origins else set()
        by_sentence = {i for i, s in enumerate(text.sentences)
                       if s.hash is not None and self.hashes.get(s.hash, exclude) != exclude}
        return by_stretch | by_sentence, by_sentence

    def first_writers(self, quoted: list[str], source: list[str], search: FtsIndex | None = None,
                      run: int | None = None) -> dict[int, int]:
        """Words of a quoted sentence each stored document wrote first when an answer credits it to
        ``source`` (``retrieval.first_writers``: this store's fingerprints, and the BM25 top
        ``MAX_ORIGIN_CHUNKS`` of ``search`` when given, rows keyed document + 1), counting shared
        runs of ``run`` words (the store's stretch length unless given)."""
        run = run or self.n
        hashes = stretch_hashes(quoted, self.n)
        hits = Counter(self.prints[h] for h in hashes if h in self.prints)
        older = {d for d, _ in hits.most_common(MAX_ORIGIN_CHUNKS)}
        if search is not None and len(quoted) >= run:
            older |= {row - 1 for row, _ in search.search(analyse(" ".join(quoted)), MAX_ORIGIN_CHUNKS)}
        return first_written(quoted, source, [(d, self.docs[d].words) for d in sorted(older)], run)

    def add(self, text: Split) -> int:
        d = len(self.docs)
        self.docs.append(text)
        for f in fingerprints(text.words, self.n, self.window):
            self.prints.setdefault(f, d)
        for s in text.sentences:
            if s.hash is not None:
                self.hashes.setdefault(s.hash, d)
        return d


KINDS = ["verbatim", "wrapped", "trimmed", "swapped", "clause", "merged", "split"]
_PREFIXES = ["As experts note,", "It is worth noting that", "According to one account,", "Interestingly,",
             "Some readers may be surprised to learn that", "In short,", "Reports say"]
_SUFFIXES = ["which surprised many.", "as was reported before.", "a point often made.", "which few had expected.",
             "according to several sources.", "as one might guess."]
_END = re.compile(r"[\s.!?;:,]+$")


def _bare(sentence: str) -> str:
    return _END.sub("", sentence.strip())


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text[1:2].isupper() else text


def variant(kind: str, sents: list[str], rng: random.Random, filler_words: list[str]) -> str | None:
    """One copy of ``kind`` made from a document's sentences (None when it has no sentence to fit)."""
    long = [s for s in sents if len(s.split()) >= 12]
    if kind == "merged":
        pairs = [(a, b) for a, b in pairwise(sents) if len(a.split()) >= MIN_WORDS and len(b.split()) >= MIN_WORDS]
        if not pairs:
            return None
        a, b = rng.choice(pairs)
        return f"{_bare(a)}, and {_lower_first(b.strip())}"
    if kind in ("clause", "split"):
        long = [s for s in sents if len(s.split()) >= 16]
    if not long:
        return None
    s = rng.choice(long).strip()
    toks = s.split()
    if kind == "verbatim":
        return s
    if kind == "wrapped":
        return f"{rng.choice(_PREFIXES)} {_lower_first(_bare(s))}, {rng.choice(_SUFFIXES)}"
    if kind == "trimmed":
        front, back = rng.choice([(1, 0), (0, 1), (2, 0), (0, 2), (1, 1)])
        cut = toks[front:len(toks) - back]
        return " ".join(cut).rstrip(",;:") + ("" if back == 0 else ".")
    if kind == "swapped":
        at = rng.randrange(1, len(toks) - 1)
        toks[at] = rng.choice(filler_words)
        return " ".join(toks)
    if kind == "clause":
        size = rng.randint(8, 14)
        at = rng.randrange(0, len(toks) - size + 1)
        return " ".join(toks[at:at + size]).strip(",;:.")
    if kind == "split":
        at = rng.randrange(len(toks) // 3, 2 * len(toks) // 3)
        return f"{_bare(' '.join(toks[:at]))}. {toks[at][:1].upper()}{toks[at][1:]} {' '.join(toks[at + 1:])}"
    raise ValueError(kind)


def labelled(texts: list[str], docs: list[Split], half: str, n: int, window: int, share: float = ORIGIN_SHARE,
             long: int = LONG_COPY, seed: int = 16, run: int | None = None) -> dict[str, tuple[int, int]]:
    """Per kind: (caught by stretches, caught by exact sentences) of how many copies; plus the
    independent figures under 'independent ...' keys."""
    parity = 0 if half == "even" else 1
    splits = [d for i, d in enumerate(docs) if i % 2 == parity]
    store = Store.empty(n, window, share, long)
    # Independent texts: each document against those stored before it (the first writer is the origin).
    docs_flagged = docs_flagged_exact = sents_flagged = sents_total = 0
    # Answer time (retrieval.first_writers): each independent sentence quoted from its own document,
    # with the share of its words an older document would be paid for.
    quoted_paid = [0, 0]  # fingerprints only, and with a search
    quoted_share = [0.0, 0.0]
    search = FtsIndex(Path(tempfile.mkdtemp(prefix="first-writers-")) / "bm25.sqlite3")
    for d, sp in enumerate(splits):
        for sentence, start in zip(sp.sentences, sp.starts):
            quoted = sp.words[start:start + sentence.words]
            for arm, index in enumerate((None, search)):
                taken = sum(store.first_writers(quoted, sp.words, index, run).values())
                quoted_paid[arm] += bool(taken)
                quoted_share[arm] += taken / len(quoted)
        search.add([(d + 1, analyse(" ".join(sp.words)), "", 0)])
        by_any, by_exact = store.flagged(sp)
        sents_total += len(sp.sentences)
        sents_flagged += len(by_any)
        docs_flagged += bool(by_any)
        docs_flagged_exact += bool(by_exact)
        store.add(sp)
    # The copier's own sentences: documents of the other half that share no run of MIN_WORDS words
    # with this half (so what is counted beside a copy is what the copy drags out with it, not a
    # copy of its own); the same for every setting compared, as are the copies (seeded per document).
    strict = Store.empty(MIN_WORDS, 1, 0.0, MIN_WORDS)
    for sp in splits:
        strict.add(sp)
    fillers = [d for i, d in enumerate(docs) if i % 2 != parity]
    fillers = [f for f in fillers if sum(1 for s in f.sentences if s.hash is not None) >= 2 and not strict.flagged(f)[0]]
    out: dict[str, tuple[int, int]] = {}
    copies: dict[str, list[int]] = {k: [0, 0, 0] for k in KINDS}
    # Copies the intake keeps, quoted by an answer: (kept sentences, first writer paid, words moved, words).
    kept: dict[str, list[int]] = {k: [0, 0, 0, 0, 0, 0] for k in KINDS}  # + the same two with a search
    filler_flagged = filler_total = 0
    for d, sp in enumerate(splits):
        rng = random.Random(f"{seed}:{half}:{d}")
        sents = [s.text for s in sp.sentences]
        filler = rng.choice(fillers) if fillers else None
        if filler is None:
            break
        own = [s.text for s in filler.sentences if s.hash is not None]
        for kind in KINDS:
            copy = variant(kind, sents, rng, filler.words)
            if copy is None:
                continue
            if kind == "clause":  # inside an independent sentence of the copier
                host = own[0].split()
                at = rng.randrange(1, len(host))
                body = f"{' '.join(host[:at])}, {copy}, {' '.join(host[at:])}"
                text, lo, hi = f"{body} {own[1]}", 0, len(body)
            else:
                text = f"{own[0]} {copy} {own[1]}"
                lo, hi = len(own[0]) + 1, len(own[0]) + 1 + len(copy)
            q = split(text)
            by_any, by_exact = store.flagged(q, exclude=None)
            holding = [i for i, s in enumerate(q.sentences) if s.start < hi and s.end > lo]
            around = [i for i in range(len(q.sentences)) if i not in holding]
            copies[kind][0] += 1
            copies[kind][1] += all(i in by_any for i in holding)
            copies[kind][2] += all(i in by_exact for i in holding)
            for i in holding:
                if i in by_any:
                    continue
                start = q.starts[i]
                quoted = q.words[start:start + q.sentences[i].words]
                paid = store.first_writers(quoted, q.words).get(d, 0)
                searched = store.first_writers(quoted, q.words, search, run).get(d, 0)
                kept[kind][0] += 1
                kept[kind][1] += paid > 0
                kept[kind][2] += paid
                kept[kind][3] += len(quoted)
                kept[kind][4] += searched > 0
                kept[kind][5] += searched
            filler_total += len(around)
            filler_flagged += sum(1 for i in around if i in by_any)
    for kind, (count, caught, exact) in copies.items():
        out[kind] = (caught, exact, count)  # type: ignore[assignment]
    search.close()
    for kind, (count, paid, moved, total, paid_s, moved_s) in kept.items():
        if count:
            out[f"answer {kind}"] = (paid, moved, count, total, paid_s, moved_s)  # type: ignore[assignment]
    out["answer independent"] = (*quoted_paid, *quoted_share, sents_total)  # type: ignore[assignment]
    out["independent documents losing a sentence"] = (docs_flagged, docs_flagged_exact, len(splits))  # type: ignore[assignment]
    out["independent sentences taken out"] = (sents_flagged, 0, sents_total)  # type: ignore[assignment]
    out["own sentences beside a copy taken out"] = (filler_flagged, 0, filler_total)  # type: ignore[assignment]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--smoke", action="store_true", help="the first 200 documents of each corpus")
    parser.add_argument("--stretches", action="store_true", help="origin by word stretches (see above)")
    parser.add_argument("--half", choices=["even", "odd"], default="odd", help="documents the labelled set uses")
    parser.add_argument("--run-sizes", default="8,9,10,11,12,13,14,16", help="n of the shared-run table")
    parser.add_argument("--sizes", default=str(STRETCH_WORDS), help="stretch lengths n of the labelled set")
    parser.add_argument("--window", type=int, default=WINNOW, help="winnowing window")
    parser.add_argument("--shares", default=str(ORIGIN_SHARE),
                        help="shares of an origin sentence a copy must take (0: any copied stretch)")
    parser.add_argument("--longs", default=str(LONG_COPY), help="copied words that take a fact whatever the share")
    parser.add_argument("--limit", type=int, help="the first documents of each corpus only")
    parser.add_argument("--answer-run", type=int, default=QUOTED_RUN,
                        help="shared run that pays a first writer in an answer (the search arm: what answers do)")
    parser.add_argument("--no-runs", action="store_true", help="skip the shared-run table")
    parser.add_argument("--paraphrases", action="store_true", help="the paraphrase rule (see above)")
    args = parser.parse_args()
    if args.stretches:
        stretches(args)
        return
    if args.paraphrases:
        paraphrases(args)
        return
    for name, path in corpora(args.data):
        print(f"\n{name}")
        print("min words | words covered | sentences shared with another doc | docs losing a sentence | docs refused whole | sentences")
        for k, covered, shared, touched, whole, count in measure(path, 200 if args.smoke else None):
            print(f"{k:9d} | {covered:13.3f} | {shared:33.5f} | {touched:22.5f} | {whole:18.5f} | {count}")


def stretches(args: argparse.Namespace) -> None:
    sizes = [int(x) for x in args.sizes.split(",")]
    for name, path in corpora(args.data):
        texts = distinct_texts(path, 200 if args.smoke else args.limit)
        t0 = time.perf_counter()
        docs = [split(t) for t in texts]
        t1 = time.perf_counter()
        for d in docs:
            fingerprints(d.words)
        t2 = time.perf_counter()
        print(f"\n{name} ({len(texts)} distinct documents; per document: split {1000 * (t1 - t0) / len(texts):.2f} ms, "
              f"fingerprints {1000 * (t2 - t1) / len(texts):.2f} ms)")
        print("n | documents sharing an n-word run with another | runs shared | most shared (documents: run)")
        for n in [] if args.no_runs else [int(x) for x in args.run_sizes.split(",")]:
            docs_share, runs_share, top = shared_runs(docs, n)
            print(f"{n:2d} | {docs_share:.4f} | {runs_share:.5f} | " + " || ".join(f"{c}: {g}" for c, g in top[:3]))
        print(f"labelled copies, {args.half} half, window {args.window}: caught by stretches (exact-sentence rule)")
        for n, share, long in [(n, float(x), int(y)) for n in sizes for x in args.shares.split(",")
                               for y in args.longs.split(",")]:
            figures = labelled(texts, docs, args.half, n, args.window, share, long, run=args.answer_run)
            cells = []
            answer = {k: v for k, v in figures.items() if k.startswith("answer ")}
            for key, (caught, exact, count) in ((k, v) for k, v in figures.items() if k not in answer):
                if key.startswith(("independent", "own")):
                    cells.append(f"{key}: {caught}/{count} = {caught / max(count, 1):.4f}"
                                 + (f" (exact rule {exact})" if key.endswith("sentence") else ""))
                else:
                    cells.append(f"{key} {caught / max(count, 1):.3f} ({exact / max(count, 1):.3f}) of {count}")
            print(f"n={n:2d} share={share} long={long}: " + "; ".join(cells))
            # Copies kept at intake, when an answer quotes the sentence holding them: how often the
            # first writer is paid and what share of the sentence's words (retrieval.first_writers).
            # Each figure twice: fingerprints only, then with the BM25 search the answer runs too.
            print("  quoted by an answer, kept at intake, first writer paid (fingerprints / with search): " + "; ".join(
                f"{key[7:]} {paid / count:.3f} / {paid_s / count:.3f} of {count} "
                f"(words moved {moved / max(total, 1):.3f} / {moved_s / max(total, 1):.3f})"
                for key, (paid, moved, count, total, paid_s, moved_s) in  # type: ignore[misc]
                ((k, v) for k, v in answer.items() if k != "answer independent")))
            if "answer independent" in answer:
                paid, paid_s, share, share_s, count = answer["answer independent"]  # type: ignore[misc]
                print(f"  independent sentences quoted, some words paid to an older document: {paid}/{count} = "
                      f"{paid / max(count, 1):.4f} / with search {paid_s}/{count} = {paid_s / max(count, 1):.4f} "
                      f"(words moved {share / max(count, 1):.4f} / {share_s / max(count, 1):.4f})")


THRESHOLDS = [0.80, 0.84, 0.86, 0.88, 0.90, 0.92, 0.94]


@dataclass
class Doc:
    text: str
    speaker: str | None
    writer: str  # the contributor


def corpus_docs(path: Path, limit: int | None) -> list[Doc]:
    """The corpus's distinct documents with their speaker and who contributed them (each document
    its own writer, but a conversation's speaker is one)."""
    seen, out = set(), []
    with path.open() as f:
        for n, line in enumerate(f):
            if limit is not None and n >= limit:
                break
            row = json.loads(line)
            text = row.get("text", "")
            key = hashlib.sha256(" ".join(words(text)).encode()).digest()
            if text.strip() and key not in seen:
                seen.add(key)
                speaker = row.get("speaker")
                writer = f"{row.get('conversation')}:{speaker}" if speaker else str(row.get("_id", n))
                out.append(Doc(text, speaker, writer))
    return out


def paraphrases(args: argparse.Namespace) -> None:
    from retrieval.embedder import load_embedder
    from retrieval.settings import RetrievalSettings

    embedder = load_embedder(RetrievalSettings(), serving=False)
    for name, path in corpora(args.data):
        docs = corpus_docs(path, 200 if args.smoke else args.limit)
        t0 = time.perf_counter()
        caught, independent, stored = paraphrase_figures(docs, args.half, name, embedder)
        sentences_all = sum(len(r) for r in independent)
        print(f"\n{name}, {args.half} half: {stored} documents, {sentences_all} sentences, {len(caught)} paraphrases"
              f" ({time.perf_counter() - t0:.0f} s)")
        print("cosine | paraphrases caught | independent sentences taken out | independent documents losing one")
        for t in THRESHOLDS:
            hit = sum(1 for c in caught if c is not None and c >= t)
            flagged = sum(1 for r in independent for c in r if c is not None and c >= t)
            losing = sum(1 for r in independent if any(c is not None and c >= t for c in r))
            print(f"{t:.2f} | {hit / max(len(caught), 1):.3f} of {len(caught)} | {flagged / max(sentences_all, 1):.4f}"
                  f" ({flagged}) | {losing / max(stored, 1):.4f} ({losing})")


def paraphrase_figures(docs: list[Doc], half: str, name: str, embedder) -> tuple[  # type: ignore[no-untyped-def]
        list[float | None], list[list[float | None]], int]:
    """The best qualifying cosine (or None) of each reworded copy, and of each document's sentences
    against the documents of other writers stored before it; and how many documents were stored."""
    import numpy as np
    from support_set import paraphrase

    from assistant.chat.extractive import sentence_texts
    from assistant.chat.sentences import split_sentences
    from retrieval.intake import _embedding_text
    from retrieval.paraphrase import CANDIDATE_CHUNKS, carries_particulars, paraphrase_of

    parity = 0 if half == "even" else 1
    mine = [d for i, d in enumerate(docs) if i % 2 == parity]
    others = [d for i, d in enumerate(docs) if i % 2 != parity]
    doc_vectors = embedder.embed([_embedding_text(None, d.text, d.speaker) for d in mine])
    rows = [sentence_texts(d.text, d.speaker) for d in mine]
    flat = [t for r in rows for t in r]
    flat_vectors = embedder.embed(flat) if flat else np.zeros((0, embedder.dim), np.float32)
    at, sentence_vectors = 0, []
    for r in rows:
        sentence_vectors.append(flat_vectors[at:at + len(r)])
        at += len(r)

    def check(text: str, vector: np.ndarray, writer: str, upto: int) -> float | None:
        """The cosine of the older sentence ``text`` rewords, among documents [0, upto) of other writers."""
        allowed = [j for j in range(upto) if mine[j].writer != writer]
        if not allowed:
            return None
        sims = doc_vectors[allowed] @ vector
        nearest = [allowed[k] for k in np.argsort(-sims)[:CANDIDATE_CHUNKS]]
        # A sentence stored word for word before is the exact-sentence rule's, not counted here.
        older = [(t, v) for j in nearest for t, v in zip(rows[j], sentence_vectors[j]) if words(t) != words(text)]
        found = paraphrase_of(text, vector, older, threshold=min(THRESHOLDS))
        return None if found is None else found[1]

    # Independent: each document's sentences against those stored before it.
    independent = [[check(t, v, doc.writer, j) for t, v in zip(rows[j], sentence_vectors[j])]
                   for j, doc in enumerate(mine)]
    # Copies: one reworded sentence of each document, said by a writer of the other half.
    rng = random.Random(f"16:{half}:{name}")
    copies: list[str] = []
    writers: list[str] = []
    for doc in mine:
        picks = [t for t in split_sentences(doc.text) if carries_particulars(t) and sentence_texts(t)]
        if not picks or not others:
            continue
        made = paraphrase(rng.choice(picks), rng)
        if made is None:
            continue
        copier = rng.choice(others)
        copies.extend(sentence_texts(made[0], copier.speaker)[:1])
        writers.append(copier.writer)
    copy_vectors = embedder.embed(copies) if copies else np.zeros((0, embedder.dim), np.float32)
    caught = [check(t, v, w, len(mine)) for t, v, w in zip(copies, copy_vectors, writers)]
    return caught, independent, len(mine)


if __name__ == "__main__":
    main()
