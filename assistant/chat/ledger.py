"""The seam between answers and money.

The payouts package owns prices and credits. The assistant calls an ``AnswerLedger`` inside
the same database transaction that records the answer and its citations, so an answer, its
debit and its credits are stored together or not at all. Until payouts provides one, the
``FreeLedger`` prices every answer at 0 and credits nobody.
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

    def record(self, session: Session, answer: LedgerAnswer, weights: Mapping[str, int]) -> LedgerEntry:
        """``weights``: contributor -> parts per million of the contributors' pool (sum 1e6, or empty)."""
        ...


class FreeLedger:
    """No prices yet: every answer costs 0 and earns nobody anything."""

    def record(self, session: Session, answer: LedgerAnswer, weights: Mapping[str, int]) -> LedgerEntry:
        return LedgerEntry(price=0, credits=[])
