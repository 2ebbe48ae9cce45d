"""The seam between answers and money.

The payouts package owns prices and credits. The assistant calls an ``AnswerLedger`` inside
the same database transaction that records the answer and its citations, so an answer, its
debit and its credits are stored together or not at all. The app runs ``PayoutsLedger``;
``FreeLedger`` (price 0, no credits) runs when every price setting is 0.

The built-in extractive model's answers have a flat price. A remote LLM's answers are metered:
their price follows their tokens (``payouts.split.Tariff``), the worst case (the prompt's tokens
plus ``max_tokens``) is held before the model is called, and the record charges what was used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class TokenBudget:
    """The most tokens an answer may use: its prompt's and ``max_tokens`` of completion."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class LedgerAnswer:
    """What the ledger needs to know about an answer."""

    answer_id: str
    account: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    verified_citations: int
    metered: bool = False  # a remote LLM's answer: priced by its tokens


@dataclass(frozen=True)
class Credit:
    """An amount (integer base units) owed to a contributor for an answer."""

    contributor: str
    amount: int


@dataclass(frozen=True)
class PriceBreakdown:
    """How an answer's price adds up (base units): ``price`` = ``fee`` + ``contributors`` +
    ``prompt`` + ``completion`` − ``waived``; ``held`` − ``price`` = ``refunded``."""

    metered: bool
    base: int  # the answer's base price: a cited answer pays it all, an uncited one its fee
    fee: int  # the platform's fee on the base
    contributors: int  # the cited contributors' pool (0 without a verified citation)
    prompt_tokens: int
    per_1k_prompt_tokens: int
    prompt: int  # the prompt tokens' cost, rounded up to the base unit
    completion_tokens: int
    per_1k_completion_tokens: int
    completion: int  # the completion tokens' cost, rounded up to the base unit
    waived: int  # token cost beyond what was held (a provider counting more than the hold)
    price: int
    held: int  # held before the first byte (metered: the worst case)
    refunded: int  # what the hold gave back on settlement

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LedgerEntry:
    price: int  # base units debited from the asker
    credits: list[Credit]
    breakdown: PriceBreakdown | None = None


class AnswerLedger(Protocol):
    """Prices an answer and credits its sources, inside the caller's transaction."""

    def hold(self, session: Session, account: str, answer_id: str, budget: TokenBudget | None = None) -> None:
        """Hold the answer's price before anything is delivered; ``ApiError`` (402) when short.

        ``budget`` None: a flat-priced answer. A metered answer holds its worst case for the
        budget; holding it again with a larger budget raises the hold by the difference."""
        ...

    def release(self, session: Session, answer_id: str) -> None:
        """Give a held price back: nothing was delivered (idempotent)."""
        ...

    def record(self, session: Session, answer: LedgerAnswer, weights: Mapping[str, int]) -> LedgerEntry:
        """``weights``: contributor -> parts per million of the contributors' pool (sum 1e6, or empty)."""
        ...


class FreeLedger:
    """Free answers (price 0): every answer costs nothing and earns nobody anything."""

    def hold(self, session: Session, account: str, answer_id: str, budget: TokenBudget | None = None) -> None:
        return None

    def release(self, session: Session, answer_id: str) -> None:
        return None

    def record(self, session: Session, answer: LedgerAnswer, weights: Mapping[str, int]) -> LedgerEntry:
        breakdown = PriceBreakdown(answer.metered, 0, 0, 0, answer.prompt_tokens, 0, 0, answer.completion_tokens,
                                   0, 0, 0, 0, 0, 0)
        return LedgerEntry(price=0, credits=[], breakdown=breakdown)


class PayoutsLedger:
    """The payouts package's ledger behind the seam: debit the asker, credit the cited.

    Runs inside the answer's transaction (``payouts.ledger.record_answer_payment``); an asker
    whose balance is short gets 402 and nothing of the answer is stored. Accounts are funded by
    ``openchat accounts fund`` (and the dev account by ``OPENCHAT_DEV_BALANCE`` at start-up).
    ``price`` is the flat price of an answer and the base of a metered one; ``per_1k_prompt``
    and ``per_1k_completion`` price a metered answer's tokens.
    """

    def __init__(self, price: int, fee_bps: int, per_1k_prompt: int = 0, per_1k_completion: int = 0) -> None:
        from payouts.split import Tariff

        self.price = price
        self.fee_bps = fee_bps
        self.tariff = Tariff(price, per_1k_prompt, per_1k_completion)

    def hold(self, session: Session, account: str, answer_id: str, budget: TokenBudget | None = None) -> None:
        # The price, held before the first byte: the answer's record settles it (the fee alone
        # for a refusal), a failure releases it.
        from assistant.errors import ApiError
        from payouts.ledger import InsufficientBalance, hold_answer

        amount = self.price if budget is None else self.tariff.worst_case(budget.prompt_tokens, budget.completion_tokens)
        if amount == 0:
            return
        try:
            hold_answer(session, account, answer_id, amount)
        except InsufficientBalance as exc:
            what = "an answer" if budget is None else (
                f"this answer's worst case ({amount} base units: {budget.prompt_tokens} prompt tokens "
                f"and max_tokens {budget.completion_tokens})")
            raise ApiError(402, f"the balance of account {account!r} does not cover {what}",
                           "insufficient_quota") from exc

    def release(self, session: Session, answer_id: str) -> None:
        from payouts.ledger import release_hold

        release_hold(session, answer_id)

    def record(self, session: Session, answer: LedgerAnswer, weights: Mapping[str, int]) -> LedgerEntry:
        from assistant.errors import ApiError
        from payouts.ledger import InsufficientBalance, record_answer_payment

        prompt = completion = 0
        if answer.metered:
            prompt, completion = self.tariff.usage(answer.prompt_tokens, answer.completion_tokens)
        try:
            result = record_answer_payment(session, answer.account, answer.answer_id, self.price, weights,
                                           fee_bps=self.fee_bps, usage=prompt + completion)
        except InsufficientBalance as exc:
            raise ApiError(402, f"the balance of account {answer.account!r} does not cover this answer",
                           "insufficient_quota") from exc
        charge = result.charge
        breakdown = PriceBreakdown(
            metered=answer.metered, base=self.price, fee=charge.fee - result.usage, contributors=charge.pool,
            prompt_tokens=answer.prompt_tokens, per_1k_prompt_tokens=self.tariff.per_1k_prompt if answer.metered else 0,
            prompt=prompt, completion_tokens=answer.completion_tokens,
            per_1k_completion_tokens=self.tariff.per_1k_completion if answer.metered else 0, completion=completion,
            waived=prompt + completion - result.usage, price=charge.total, held=result.held,
            refunded=max(result.held - charge.total, 0))
        return LedgerEntry(price=charge.total, credits=[Credit(c, amount) for c, amount in sorted(result.credits.items())],
                           breakdown=breakdown)
