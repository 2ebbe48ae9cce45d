"""The reworded-copy figures of bench/sentence_origin.py on a slice of a shared set: the rule
catches rule-made paraphrases and takes nothing from independent paragraphs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from retrieval.embedder import Embedder
from retrieval.paraphrase import PARAPHRASE_COSINE

ROOT = Path(__file__).resolve().parents[2]
SQUAD = ROOT.parent / "shared" / "data" / "squad2-dev-5" / "corpus.jsonl"


@pytest.mark.skipif(not SQUAD.is_file(), reason=f"the shared data set is missing: {SQUAD}")
def test_reworded_copies_are_caught_and_independent_paragraphs_keep_their_sentences(
        embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    # bench/ is scripts, not a package: load the files. The sibling the script imports by its bare name
    # is registered for this test only (left in sys.modules it would shadow, as test_script_names checks).
    def load(name: str, as_name: str):  # type: ignore[no-untyped-def]
        spec = importlib.util.spec_from_file_location(as_name, ROOT / "bench" / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, as_name, module)  # dataclasses look their module up while it runs
        spec.loader.exec_module(module)
        return module

    load("support_set", "support_set")
    bench = load("sentence_origin", "bench_sentence_origin")

    docs = bench.corpus_docs(SQUAD, 60)
    caught, independent, stored = bench.paraphrase_figures(docs, "even", "squad2-dev-5", embedder)
    assert stored == 30 and len(caught) >= 20
    assert sum(c is not None and c >= PARAPHRASE_COSINE for c in caught) >= 0.75 * len(caught)
    assert not any(c is not None and c >= PARAPHRASE_COSINE for r in independent for c in r)


@pytest.mark.skipif(not SQUAD.is_file(), reason=f"the shared data set is missing: {SQUAD}")
def test_kept_clause_copies_pay_their_first_writer_when_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer-time figures of ``--stretches``: on a slice of squad2's paragraphs, most clause
    copies the intake keeps pay their first writer when quoted (with the search), fingerprints
    alone find fewer, and no independent paragraph's sentence pays an older one."""
    spec = importlib.util.spec_from_file_location("bench_sentence_origin", ROOT / "bench" / "sentence_origin.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_sentence_origin", bench)
    spec.loader.exec_module(bench)

    texts = bench.distinct_texts(SQUAD, 120)
    docs = [bench.split(t) for t in texts]
    figures = bench.labelled(texts, docs, "even", bench.STRETCH_WORDS, bench.WINNOW, run=8)
    paid, _, count, _, paid_searched, _ = figures["answer clause"]
    assert count >= 10 and paid_searched >= 0.8 * count and paid_searched > paid
    independent_paid, independent_paid_searched, _, _, sentences = figures["answer independent"]
    assert sentences > 100 and independent_paid == independent_paid_searched == 0
