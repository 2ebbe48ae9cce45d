"""The split is exact: property tests over prices, fees and weights (pure, no services)."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payouts.split import BPS, Charge, price_answer, split, weights_by_key

keys = st.text(alphabet="0123456789abcdef", min_size=1, max_size=6)
weights = st.dictionaries(keys, st.integers(min_value=0, max_value=10**6), max_size=12)
pools = st.integers(min_value=0, max_value=10**15)


@settings(max_examples=400, deadline=None)
@given(pools, weights)
def test_parts_sum_exactly_to_the_pool_and_are_positive(pool: int, w: dict[str, int]) -> None:
    parts = split(pool, w)
    if pool > 0 and any(v > 0 for v in w.values()):
        assert sum(parts.values()) == pool
    else:
        assert parts == {}
    assert all(isinstance(v, int) and v > 0 for v in parts.values())
    assert set(parts) <= {k for k, v in w.items() if v > 0}  # weight 0: nothing


@settings(max_examples=300, deadline=None)
@given(pools, weights)
def test_each_part_is_within_one_unit_of_its_exact_share(pool: int, w: dict[str, int]) -> None:
    parts = split(pool, w)
    total = sum(w.values())
    for key, weight in w.items():
        if weight == 0 or total == 0:
            continue
        exact = Fraction(pool * weight, total)
        assert abs(parts.get(key, 0) - exact) < 1


@settings(max_examples=200, deadline=None)
@given(pools, weights, st.randoms(use_true_random=False))
def test_deterministic_whatever_the_input_order(pool: int, w: dict[str, int], rnd: random.Random) -> None:
    items = list(w.items())
    rnd.shuffle(items)
    assert split(pool, dict(items)) == split(pool, w)


def test_ties_go_to_the_smallest_key() -> None:
    assert split(2, {"b": 1, "a": 1, "c": 1}) == {"a": 1, "b": 1}
    assert split(1, {"b": 1, "a": 1}) == {"a": 1}
    assert split(100, {"x": 1, "y": 1, "z": 1}) == {"x": 34, "y": 33, "z": 33}


def test_largest_remainder_beats_key_order() -> None:
    # exact shares 3.3, 6.7 -> 3, 7 (not 4, 6)
    assert split(10, {"a": 33, "b": 67}) == {"a": 3, "b": 7}


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=BPS), st.booleans())
def test_price_is_fee_plus_pool(price: int, fee_bps: int, cited: bool) -> None:
    c = price_answer(price, fee_bps, cited=cited)
    assert c.total == c.fee + c.pool
    assert c.fee >= 0 and c.pool >= 0
    assert c.fee == price * fee_bps // BPS  # rounded down: the odd unit goes to contributors
    assert c.total == (price if cited else c.fee)
    if not cited:
        assert c.pool == 0


def test_no_citation_pays_only_the_fee() -> None:
    assert price_answer(10_000, 1_000, cited=False) == Charge(total=1_000, fee=1_000, pool=0)
    assert price_answer(10_000, 1_000) == Charge(total=10_000, fee=1_000, pool=9_000)
    assert split(9_000, {}) == {} and split(9_000, {"a": 0}) == {}


@pytest.mark.parametrize("bad", [1.5, "3", None, True])
def test_money_is_never_a_float(bad: object) -> None:
    with pytest.raises(TypeError):
        price_answer(bad, 100)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        split(bad, {"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        split(10, {"a": bad})  # type: ignore[dict-item]


def test_ranges_are_checked() -> None:
    with pytest.raises(ValueError):
        price_answer(-1, 100)
    with pytest.raises(ValueError):
        price_answer(1, BPS + 1)
    with pytest.raises(ValueError):
        split(-1, {"a": 1})
    with pytest.raises(ValueError):
        split(1, {"a": -1})


def test_weights_by_key_sums_repeats() -> None:
    assert weights_by_key([("a", 2), ("b", 3), ("a", 5)]) == {"a": 7, "b": 3}
