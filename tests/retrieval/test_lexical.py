from collections.abc import Callable
from pathlib import Path

import pytest

from retrieval.lexical import (
    FtsIndex,
    LexicalIndex,
    analyse,
    document_vector,
    query_vector,
    term_id,
)
from retrieval.tantivy_index import TantivyIndex

SIDECARS: dict[str, Callable[[Path], LexicalIndex]] = {
    "tantivy": lambda d: TantivyIndex(d / "lex.tantivy"),
    "sqlite": lambda d: FtsIndex(d / "lex.sqlite3"),
}


def test_analyse_stems_folds_and_drops_stop_words() -> None:
    assert analyse("The Running of the Bulls, in 2024!") == ["run", "bull", "2024"]
    assert analyse("") == []
    assert analyse("snake_case") == ["snake", "case"]  # FTS5's unicode61 splits on '_' too


def test_document_vector_saturates_term_frequency() -> None:
    vec = document_vector(["cell"] * 3 + ["gene"])
    values = dict(zip(vec.indices, vec.values))
    assert values[term_id("cell")] > values[term_id("gene")] > 0
    assert values[term_id("cell")] < 3 * values[term_id("gene")]  # not linear in tf
    assert vec.indices == sorted(vec.indices)


def test_query_vector_weighs_distinct_terms_once() -> None:
    vec = query_vector(["cell", "cell", "gene"])
    assert sorted(vec.indices) == sorted({term_id("cell"), term_id("gene")})
    assert vec.values == [1.0, 1.0]


@pytest.mark.parametrize("kind", SIDECARS)
def test_sidecar_ranks_filters_and_replaces(kind: str, tmp_path: Path) -> None:
    fts = SIDECARS[kind](tmp_path)
    fts.add([
        (1, analyse("Insulin regulates blood glucose"), "0xA", 1),
        (2, analyse("Glucose glucose glucose in the blood of mice"), "0xB", 2),
        (3, analyse("Stars form in molecular clouds"), "0xA", 1),
    ])
    hits = fts.search(analyse("blood glucose"), limit=10)
    assert {cid for cid, _ in hits} == {1, 2}
    assert all(score > 0 for _, score in hits)
    assert [cid for cid, _ in fts.search(analyse("glucose"), 10, contributor="0xA")] == [1]
    assert [cid for cid, _ in fts.search(analyse("glucose"), 10, contribution_id=2)] == [2]
    # Query syntax words are terms, not operators.
    assert fts.search(analyse('NEAR OR AND "x'), 10) == []
    fts.add([(3, analyse("Blood of stars"), "0xA", 1)])
    assert fts.count() == 3
    assert 3 in {cid for cid, _ in fts.search(analyse("blood"), 10)}
    fts.close()


@pytest.mark.parametrize("kind", SIDECARS)
def test_sidecar_ranks_by_bm25(kind: str, tmp_path: Path) -> None:
    idx = SIDECARS[kind](tmp_path)
    idx.add([
        (10, analyse("kinase kinase kinase signalling in yeast"), "0xA", 1),
        (11, analyse("kinase inhibitors and a long tail of other unrelated words about many topics"), "0xA", 1),
        (12, analyse("yeast"), "0xA", 1),
        (13, analyse("rare zebrafish kinase"), "0xA", 1),
    ])
    # Higher term frequency in a short document ranks first; the rarer term outweighs the common one.
    assert idx.search(analyse("kinase"), 10)[0][0] == 10
    assert idx.search(analyse("zebrafish kinase"), 10)[0][0] == 13
    # A filter alone matches nothing: a hit must hold a query term.
    assert idx.search(analyse("photosynthesis"), 10, contributor="0xA") == []
    assert [cid for cid, _ in idx.search(analyse("yeast"), 1)] in ([10], [12])
    idx.close()


def test_tantivy_keeps_its_data_across_reopen(tmp_path: Path) -> None:
    idx = TantivyIndex(tmp_path / "lex.tantivy")
    idx.add([(1, analyse("Octopuses have three hearts"), "0xA", 1)])
    idx.close()
    again = TantivyIndex(tmp_path / "lex.tantivy")
    assert again.count() == 1
    assert [cid for cid, _ in again.search(analyse("octopus hearts"), 5)] == [1]
    again.add([(2, analyse("Hearts of squid"), "0xB", 2)])  # a new writer takes the released lock
    assert again.count() == 2
    again.close()
