"""What paying first writers costs an answer (retrieval.first_writers, docs/retrieval.md).

On a slice of a shared set (hotpotqa-dev by default: the asked questions' gold paragraphs plus the
first ``--docs`` others, spread over 8 contributors by title as bench/answers.py spreads them), in
one process: per question, the assistant's own retrieval and extractive answer (untimed), then,
alternated question by question ``--repeats`` times, the attribution that every answer already
runs (``citations.attribute``: the baseline) and the step that credits first writers on top of it
(``Assistant._credited``: per credited sentence a BM25 search and the fingerprint lookup, the
read-back and alignment of what they find). Prints medians and p90 in ms, the ratio to the
baseline, and how many answers paid a first writer (on independent paragraphs: templated phrases).

    .venv/bin/python bench/first_writer_cost.py [--set hotpotqa-dev] [--docs 300] [--questions 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from sentence_vectors import (  # bench/sentence_vectors.py
    ingest,
    open_kb,
    slice_arguments,
    slice_rows,
)

from assistant.chat import citations as cit
from assistant.chat.orchestrator import passage
from assistant.chat.wiring import build_assistant
from retrieval.embedder import load_embedder
from retrieval.settings import RetrievalSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    slice_arguments(ap)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="openchat-first-writers-"))
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> None:
    questions, rows = slice_rows(args)
    embedder = load_embedder(RetrievalSettings())
    settings, engine, kb = open_kb(tmp / "data", embedder, True)
    try:
        ingest(kb, rows, tmp / "rows.jsonl")
        assistant = build_assistant(settings, kb, engine)
        embed = assistant.extractive.vectors.get
        base_ms: list[float] = []
        step_ms: list[float] = []
        paid = answered = 0
        for q in questions:
            found = assistant.retrieve(q.text)
            text = assistant.extractive.answer(q.text, found.passages()).text
            checkable = [passage(s).checkable() for s in found.sources]
            turn = SimpleNamespace(sources=found.sources)
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                attribution = cit.attribute(text, checkable, q.text, embed)
                t1 = time.perf_counter()
                cited = assistant._credited(turn, attribution)  # type: ignore[arg-type]
                t2 = time.perf_counter()
                base_ms.append((t1 - t0) * 1000)
                step_ms.append((t2 - t1) * 1000)
            answered += bool(cited)
            paid += any(c.copied_by is not None for c in cited) or len(cited) > len(attribution.weights)
        b, s = statistics.median(base_ms), statistics.median(step_ms)
        print(f"{args.set}: {len(rows)} paragraphs over 8 contributors, {len(questions)} questions x {args.repeats}")
        print(f"  attribution (baseline): median {b:.2f} ms, p90 {float(np.percentile(base_ms, 90)):.2f} ms")
        print(f"  first writers on top:   median {s:.2f} ms, p90 {float(np.percentile(step_ms, 90)):.2f} ms "
              f"(ratio to the baseline {s / b:.2f})")
        print(f"  answers with citations {answered}; of them paying a first writer {paid}")
    finally:
        kb.close()
        engine.dispose()


if __name__ == "__main__":
    main()
