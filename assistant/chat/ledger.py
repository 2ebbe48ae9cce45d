"""The seam between answers and money.

The payouts package owns prices and credits. The assistant calls an ``AnswerLedger`` inside
the same database transaction that records the answer and its citations, so an answer, its
debit and its credits are stored together or not at all. The app runs ``PayoutsLedger``;
``FreeLedger`` (price 0, no credits) runs when ``OPENCHAT_PRICE_PER_ANSWER`` is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class LedgerAnswer:
    """What the ledger needs to know about an answer."""

    answer_id: str
    account: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    verified_citations: int


@dataclass(frozen=True)
class Credit:
    """An amount (integer base units) owed to a contributor for an answer."""

    contributor: str
    amount: int


@dataclass(frozen=True)
class LedgerEntry:
    price: int  # base units debited from the asker
    credits: list[Credit]


class AnswerLedger(Protocol):
    """Prices an answer and credits its sources, inside the caller's transaction."""

    def hold(self, session: Session, account: str, answer_id: str) -> None:
        """Hold the answer's price before anything is delivered; ``ApiError`` (402) when short."""
        ...

    def release(self, session: Session, answer_id: str) -> None:
        """Give a held price back: nothing was delivered (idempotent)."""
        ...

    def record(self, session: Session, answer: LedgerAnswer, weights: Mapping[str, int]) -> LedgerEntry:
        """``weights``: contributor -> parts per million of the contributors' pool (sum 1e6, or empty)."""
        ...


class FreeLedger:
    """Free answers (price 0): every answer costs nothing and earns nobody anything."""

    def hold(self, session: Session, account: str, answer_id: str) -> None:
        return None

    def release(self, session: Session, answer_id: str) -> None:
        return None

    def record(self, session: Session, answer: LedgerAnswer, weights: Mapping[str, int]) -> LedgerEntry:
        return LedgerEntry(price=0, credits=[])


class PayoutsLedger:
    """The payouts package's ledger behind the seam: debit the asker, credit the cited.

    Runs inside the answer's transaction (``payouts.ledger.record_answer_payment``); an asker
    whose balance is short gets 402 and nothing of the answer is stored. Accounts are funded by
    ``openchat accounts fund`` (and the dev account by ``OPENCHAT_DEV_BALANCE`` at start-up).
    """

    def __init__(self, price: int, fee_bps: int) -> None:
        self.price = price
        self.fee_bps = fee_bps

    def hold(self, session: Session, account: str, answer_id: str) -> None:
        # The price, held before the first byte: the answer's record settles it (the fee alone
        # for a refusal), a failure releases it.
        from assistant.errors import ApiError
        from payouts.ledger import InsufficientBalance, hold_answer

        try:
            hold_answer(session, account, answer_id, self.price)
        except InsufficientBalance as exc:
            raise ApiError(402, f"the balance of account {account!r} does not cover an answer",
                           "insufficient_quota") from exc

    def release(self, session: Session, answer_id: str) -> None:
        from payouts.ledger import release_hold

        release_hold(session, answer_id)

    def record(self, session: Session, answer: LedgerAnswer, weights: Mapping[str, int]) -> LedgerEntry:
        from assistant.errors import ApiError
        from payouts.ledger import InsufficientBalance, record_answer_payment

        try:
            result = record_answer_payment(session, answer.account, answer.answer_id, self.price, weights,
                                           fee_bps=self.fee_bps)
        except InsufficientBalance as exc:
            raise ApiError(402, f"the balance of account {answer.account!r} does not cover this answer",
                           "insufficient_quota") from exc
        return LedgerEntry(price=result.charge.total,
                           credits=[Credit(c, amount) for c, amount in sorted(result.credits.items())])
