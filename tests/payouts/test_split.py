"""The split is exact: property tests over prices, fees and weights (pure, no services)."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payouts.split import BPS, Charge, Tariff, price_answer, split, token_cost, weights_by_key

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


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=BPS), st.booleans(),
       st.integers(min_value=0, max_value=10**12))
def test_usage_is_paid_cited_or_not_and_kept_by_the_platform(price: int, fee_bps: int, cited: bool, usage: int) -> None:
    flat = price_answer(price, fee_bps, cited=cited)
    c = price_answer(price, fee_bps, cited=cited, usage=usage)
    assert c.total == c.fee + c.pool == flat.total + usage
    assert c.fee == flat.fee + usage and c.pool == flat.pool  # the contributors' pool never grows with tokens


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=10**9))
def test_token_cost_is_rounded_up_to_the_unit(tokens: int, per_1k: int) -> None:
    cost = token_cost(tokens, per_1k)
    exact = Fraction(tokens * per_1k, 1_000)
    assert cost - 1 < exact <= cost
    assert token_cost(tokens + 1, per_1k) >= cost


def test_token_cost_examples() -> None:
    assert token_cost(0, 4_000) == 0 and token_cost(1, 1) == 1 and token_cost(1_000, 1) == 1
    assert token_cost(1_001, 1) == 2 and token_cost(1_500, 1_000) == 1_500 and token_cost(333, 4_000) == 1_332
    assert Tariff(10_000, 1_000, 4_000).usage(1_234, 57) == (1_234, 228)
    assert Tariff(10_000, 1_000, 4_000).worst_case(1_234, 512) == 10_000 + 1_234 + 2_048


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6),
       st.integers(min_value=0, max_value=10**5), st.integers(min_value=0, max_value=10**5),
       st.integers(min_value=0, max_value=10**5), st.integers(min_value=0, max_value=10**5))
def test_the_worst_case_covers_every_answer_within_it(base: int, rp: int, rc: int, prompt: int, max_tokens: int,
                                                      used: int) -> None:
    tariff = Tariff(base, rp, rc)
    completion = min(used, max_tokens)
    assert base + sum(tariff.usage(prompt, completion)) <= tariff.worst_case(prompt, max_tokens)


@pytest.mark.parametrize("bad", [1.5, "3", None, True])
def test_token_prices_are_never_floats(bad: object) -> None:
    with pytest.raises(TypeError):
        token_cost(bad, 1_000)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Tariff(10_000, bad, 1_000)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        price_answer(10_000, 100, usage=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        price_answer(10_000, 100, usage=-1)
    with pytest.raises(ValueError):
        Tariff(10_000, -1, 0)
