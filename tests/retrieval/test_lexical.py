from pathlib import Path

from retrieval.lexical import FtsIndex, analyse, document_vector, query_vector, term_id


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


def test_fts_ranks_filters_and_replaces(tmp_path: Path) -> None:
    fts = FtsIndex(tmp_path / "lex.sqlite3")
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
