from hypothesis import given
from hypothesis import strategies as st
from qdrant_client.http import models
from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

from retrieval.fusion import rrf


def test_items_in_both_lists_rise() -> None:
    fused = rrf([[1, 2, 3], [3, 4, 1]], k=60)
    assert [key for key, _ in fused][:2] == [1, 3]
    assert fused[0][1] == 1 / 60 + 1 / 62


def test_limit_and_empty() -> None:
    assert rrf([], k=2) == []
    assert len(rrf([[1, 2, 3]], k=2, limit=2)) == 2


ranking = st.lists(st.integers(0, 40), unique=True, max_size=25)


@given(st.lists(ranking, min_size=1, max_size=3), st.integers(1, 100))
def test_same_scores_as_qdrant(rankings: list[list[int]], k: int) -> None:
    """The embedded path's fusion scores exactly as Qdrant's own RRF does."""
    responses = [[models.ScoredPoint(id=i, version=0, score=0.0) for i in r] for r in rankings]
    theirs = {p.id: p.score for p in reciprocal_rank_fusion(responses, limit=1000, ranking_constant_k=k)}
    ours = dict(rrf(rankings, k=k))
    assert ours.keys() == theirs.keys()
    for key, score in ours.items():
        assert abs(score - theirs[key]) < 1e-12
