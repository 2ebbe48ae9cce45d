"""Reconcile while the system runs: its figures come from one consistent snapshot of the ledger."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from payouts import ledger
from payouts.reconcile import reconcile
from tests.conftest import new_address


def test_reconcile_under_concurrent_answers_reports_no_false_difference(engine: Engine) -> None:
    """Σ debits, Σ credits, Σ fees and the journal are read by separate statements; without one
    snapshot, answers paid between them showed up as differences (found by the fault run)."""
    people = [new_address() for _ in range(3)]
    account = f"asker-{uuid.uuid4().hex[:8]}"
    with Session(engine) as s, s.begin():
        ledger.deposit(s, account, 10**12)
    stop = threading.Event()
    paid: list[int] = []

    def answers() -> None:
        while not stop.is_set():
            with Session(engine) as s, s.begin():
                ledger.record_answer_payment(s, account, f"{account}-{len(paid)}", 10_000,
                                             {people[len(paid) % 3]: 1}, fee_bps=1_000)
            paid.append(1)

    writer = threading.Thread(target=answers, daemon=True)
    writer.start()
    problems: list[str] = []
    try:
        checks = 0
        while checks < 60 or len(paid) < 60:  # enough reconciles interleaved with enough answers
            with Session(engine) as s:
                problems += reconcile(s, None).problems
            checks += 1
            assert checks < 10_000 and writer.is_alive()
    finally:
        stop.set()
        writer.join(timeout=30)
    assert problems == []
    with Session(engine) as s:
        assert reconcile(s, None).ok
