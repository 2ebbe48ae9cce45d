"""Pricing and exact splits: pure functions over integers (base units, basis points, ppm).

No floats anywhere: a price is an integer number of base units (ocUSD has 6 decimals), the
platform fee is in basis points (1 bp = 1/10,000), citation weights are non-negative integers
(the assistant uses parts per million, but only their ratios matter).

- :func:`price_answer` turns a price and a fee into what the asker pays, what the platform
  keeps and the contributors' pool. The fee is rounded down (the odd base unit goes to the
  contributors). An answer without a verified citation credits no contributor: the asker pays
  only the base fee (the fee part of the price). A metered answer (a remote LLM's) also pays
  its ``usage``, the tokens' cost, cited or not; the platform keeps it (it pays the provider).
- :func:`token_cost` prices tokens at a rate per 1,000, rounded up to the base unit; a
  :class:`Tariff` prices an LLM answer's prompt and completion tokens (:meth:`Tariff.usage`).
- :func:`split` divides a pool by weights with the largest-remainder (Hamilton) method: each
  part is ``floor(pool * w / W)``, and the ``pool - Σ floors`` leftover units go one each to the
  largest remainders; ties are broken by the key (ascending), so the result never depends on
  the order of the input. The parts sum exactly to the pool, none is negative, and each is
  within one unit of its exact proportional share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BPS = 10_000


def _int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int (base units), got {value!r}")
    return value


@dataclass(frozen=True)
class Charge:
    """What one answer costs: ``total`` = ``fee`` + ``pool`` (all base units)."""

    total: int
    fee: int
    pool: int


def price_answer(price: int, fee_bps: int, *, cited: bool = True, usage: int = 0) -> Charge:
    """The charge of an answer priced ``price`` with a platform fee of ``fee_bps``.

    ``cited`` False (no verified citation): the asker pays only the fee part; the pool is 0.
    ``usage`` (a metered answer's token cost) is paid cited or not and kept by the platform: it
    is part of ``fee``, never of the pool, so a long answer costs more without paying its
    contributors (or an asker who is one of them) more.
    """
    price = _int(price, "price")
    fee_bps = _int(fee_bps, "fee_bps")
    usage = _int(usage, "usage")
    if price < 0:
        raise ValueError(f"price must be >= 0, got {price}")
    if usage < 0:
        raise ValueError(f"usage must be >= 0, got {usage}")
    if not 0 <= fee_bps <= BPS:
        raise ValueError(f"fee_bps must be within 0..{BPS}, got {fee_bps}")
    fee = price * fee_bps // BPS
    if not cited:
        return Charge(total=fee + usage, fee=fee + usage, pool=0)
    return Charge(total=price + usage, fee=fee + usage, pool=price - fee)


def token_cost(tokens: int, per_1k: int) -> int:
    """``tokens`` at ``per_1k`` base units per 1,000 tokens, rounded UP to the base unit (the
    operator never pays for a fraction of a unit of a provider's bill)."""
    tokens = _int(tokens, "tokens")
    per_1k = _int(per_1k, "per_1k")
    if tokens < 0 or per_1k < 0:
        raise ValueError(f"tokens and per_1k must be >= 0, got {tokens}, {per_1k}")
    return -(-tokens * per_1k // 1_000)


@dataclass(frozen=True)
class Tariff:
    """How an LLM answer is priced: the flat ``base`` of any answer (fee + contributors' pool)
    plus its prompt and completion tokens, each at a rate per 1,000 tokens (base units)."""

    base: int
    per_1k_prompt: int
    per_1k_completion: int

    def __post_init__(self) -> None:
        for name in ("base", "per_1k_prompt", "per_1k_completion"):
            if _int(getattr(self, name), name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def usage(self, prompt_tokens: int, completion_tokens: int) -> tuple[int, int]:
        """The cost of the prompt's and of the completion's tokens: (prompt, completion)."""
        return token_cost(prompt_tokens, self.per_1k_prompt), token_cost(completion_tokens, self.per_1k_completion)

    def worst_case(self, prompt_tokens: int, max_tokens: int) -> int:
        """What a cited answer with this prompt and ``max_tokens`` of completion costs at most:
        the amount to hold before the model is called."""
        return self.base + sum(self.usage(prompt_tokens, max_tokens))


def split(pool: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split ``pool`` base units by integer ``weights`` (largest remainder, ties by key).

    Keys with weight 0 get nothing (and are left out). No positive weight: ``{}`` (nobody is
    credited). Keys whose share rounds to 0 are left out too, so every returned part is > 0.
    """
    pool = _int(pool, "pool")
    if pool < 0:
        raise ValueError(f"pool must be >= 0, got {pool}")
    for key, w in weights.items():
        if _int(w, f"weight of {key!r}") < 0:
            raise ValueError(f"weight of {key!r} is negative: {w}")
    items = sorted((k, w) for k, w in weights.items() if w > 0)
    total = sum(w for _, w in items)
    if total == 0 or pool == 0:
        return {}
    parts: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    for key, w in items:
        q, r = divmod(pool * w, total)
        parts[key] = q
        remainders.append((r, key))
    leftover = pool - sum(parts.values())  # 0 <= leftover < len(items)
    # largest remainder first; equal remainders: smallest key first
    remainders.sort(key=lambda rk: (-rk[0], rk[1]))
    for _, key in remainders[:leftover]:
        parts[key] += 1
    return {k: v for k, v in parts.items() if v > 0}


def weights_by_key(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Sum the weights of repeated keys (e.g. several cited chunks of one contributor)."""
    out: dict[str, int] = {}
    for key, w in pairs:
        if _int(w, f"weight of {key!r}") < 0:
            raise ValueError(f"weight of {key!r} is negative: {w}")
        out[key] = out.get(key, 0) + w
    return out
