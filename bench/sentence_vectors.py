"""Stored sentence vectors: what they cost at ingest and what they save the extractive responder.

On a slice of a shared set (hotpotqa-dev by default: the asked questions' gold paragraphs plus
the first ``--docs`` others), in one process so both sides share the machine's load:

- ingest: the same rows (spread over 8 contributors by title, as bench/answers.py spreads
  hotpotqa) ingested into fresh data dirs without sentence vectors, with them, and with them but
  without the reworded-copy check that compares with them (``reworded_copies``), alternated
  ``--repeats`` times (median seconds, ratios), and what the table holds per chunk;
- answer: per question, after the assistant's own retrieval, the responder's time with the
  stored vectors (what an answer does now) against a fresh responder that embeds the sentences
  it reads (what it did before: the first step's sentences embedded during retrieval, untimed,
  the rest in the answer), alternated question by question (median, p90, ratio); the read of
  the stored vectors (part of retrieval) is timed apart; answers must be the same.

    .venv/bin/python bench/sentence_vectors.py [--set hotpotqa-dev] [--docs 300] [--questions 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from answers import (  # bench/answers.py: the sets' loaders
    DATA_ROOT,
    hotpot_contributor,
    load_set,
    row,
)
from sqlalchemy import func, select

from assistant.chat.extractive import ExtractiveResponder, sentence_texts
from assistant.chat.shapes import shape
from assistant.chat.wiring import build_assistant
from assistant.db import make_engine, migrate
from assistant.settings import load_settings
from retrieval.embedder import load_embedder
from retrieval.knowledge import KnowledgeBase, open_knowledge_base
from retrieval.models import SentenceVector
from retrieval.settings import RetrievalSettings

# The ingest arms: sentence vectors stored?, reworded copies checked?
ARMS = {"without sentence vectors": (False, False), "with sentence vectors": (True, True),
        "with them, no reworded-copy check": (True, False)}


def open_kb(data_dir: Path, embedder, stored: bool, reworded: bool = True):  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=data_dir, dev_api_key="bench")
    settings.retrieval.reworded_copies = reworded
    engine = make_engine(settings.app.effective_database_url)
    migrate(engine)
    return settings, engine, open_knowledge_base(settings.retrieval, engine, embedder, sentence_texts if stored else None)


def ingest(kb: KnowledgeBase, rows: list[dict], path: Path) -> float:
    """Seconds to ingest ``rows``, one data set per contributor (by title), one after the other."""
    by_contributor: dict[str, list[dict]] = {}
    for r in rows:
        by_contributor.setdefault(hotpot_contributor(r.get("title") or r["id"]), []).append(r)
    seconds = 0.0
    for contributor, mine in sorted(by_contributor.items()):
        path.write_text("".join(json.dumps(r) + "\n" for r in mine))
        cid = kb.intake.open_dataset(contributor, path.name, "jsonl", path.stat().st_size)
        t0 = time.perf_counter()
        kb.intake.ingest_dataset(cid, path)
        seconds += time.perf_counter() - t0
    return seconds


def slice_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of a slice of a shared set (``slice_rows``) and of how often to repeat."""
    ap.add_argument("--set", default="hotpotqa-dev", choices=("hotpotqa-dev", "squad2-dev-5", "locomo-dev"))
    ap.add_argument("--docs", type=int, default=300, help="paragraphs besides the questions' gold ones")
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)


def slice_rows(args: argparse.Namespace) -> tuple[list, list[dict]]:  # type: ignore[type-arg]
    """The first ``--questions`` questions of the set and the rows of their gold paragraphs plus
    the first ``--docs`` others."""
    data = load_set(DATA_ROOT / args.set)
    questions = data.questions[: args.questions]
    keep = {c["_id"] for c in data.corpus[: args.docs]}.union(*(q.gold_sources for q in questions))
    return questions, [row(c) for c in data.corpus if c["_id"] in keep]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="openchat-sentence-vectors-"))
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    slice_arguments(ap)
    args = ap.parse_args()
    questions, rows = slice_rows(args)
    embedder = load_embedder(RetrievalSettings())
    embedder.embed(["warm up"])
    seconds: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for r in range(args.repeats):
        for arm in (list(ARMS) if r % 2 == 0 else list(reversed(ARMS))):
            stored, reworded = ARMS[arm]
            _, engine, kb = open_kb(tmp / f"ingest-{r}-{stored}-{reworded}", embedder, stored, reworded)
            try:
                seconds[arm].append(ingest(kb, rows, tmp / "rows.jsonl"))
                chunks = kb.index.count()
                if stored:
                    with kb.intake.sessions() as s:
                        n, size = s.execute(select(func.count(), func.sum(func.length(SentenceVector.vector)
                                                                          + func.length(SentenceVector.text)))).one()
            finally:
                kb.close()
                engine.dispose()
    plain, with_vectors, unchecked = (statistics.median(seconds[arm]) for arm in ARMS)
    print(f"ingest ({len(rows)} rows -> {chunks} chunks, {args.repeats} repeats, median): without sentence vectors "
          f"{plain:.1f} s, with {with_vectors:.1f} s (ratio {with_vectors / plain:.2f}), with them but no reworded-copy "
          f"check {unchecked:.1f} s (ratio {unchecked / plain:.2f}; the check costs {with_vectors / unchecked:.2f}x)")
    print(f"  stored: {n} sentence vectors, {n / chunks:.1f} per chunk, {size / chunks / 1024:.1f} KiB per chunk "
          f"(float32 vector + its text)")

    settings, engine, kb = open_kb(tmp / "ingest-0-True-True", embedder, True)
    try:
        assistant = build_assistant(settings, kb, engine)
        now_ms: list[float] = []
        before_ms: list[float] = []
        read_ms: list[float] = []
        differ = 0
        for i, q in enumerate(questions):
            found = assistant.retrieve(q.text)
            sources, first, passages = found.sources, found.first, found.passages()
            t0 = time.perf_counter()
            assert kb.sentence_vectors is not None
            kb.sentence_vectors.read(s.chunk_id for s in sources)
            read_ms.append((time.perf_counter() - t0) * 1000)
            fresh = ExtractiveResponder(embedder)
            if shape(q.text).kind == "single":  # the old retrieval ranked (so embedded) the first step's sentences
                fresh.rank(q.text, passages[:first])

            def timed(responder: ExtractiveResponder, out: list[float], q: str = q.text,
                      passages: list = passages) -> str:  # type: ignore[type-arg]
                t = time.perf_counter()
                text = responder.answer(q, passages).text
                out.append((time.perf_counter() - t) * 1000)
                return text

            # Alternate which goes first, so neither always finds the caches warm.
            if i % 2 == 0:
                a = timed(assistant.extractive, now_ms)
                b = timed(fresh, before_ms)
            else:
                b = timed(fresh, before_ms)
                a = timed(assistant.extractive, now_ms)
            differ += a != b
    finally:
        kb.close()
        engine.dispose()
    print(f"answer ({len(questions)} questions of {args.set}): responder p50 {statistics.median(now_ms):.1f} ms "
          f"(p90 {pct(now_ms, 90):.1f}) with stored vectors, {statistics.median(before_ms):.1f} ms (p90 "
          f"{pct(before_ms, 90):.1f}) embedding at answer time, ratio {statistics.median(now_ms) / statistics.median(before_ms):.2f}; "
          f"reading the stored vectors p50 {statistics.median(read_ms):.1f} ms; answers that differ: {differ}")


if __name__ == "__main__":
    main()
