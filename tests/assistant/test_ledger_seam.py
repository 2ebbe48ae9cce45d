"""The money seam: the payouts ledger called inside the answer's transaction (real SQLite DB)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from assistant.chat.ledger import FreeLedger, LedgerAnswer, PayoutsLedger
from assistant.db import make_engine, migrate
from assistant.errors import ApiError
from payouts.ledger import balance, check_invariants, deposit
from tests.conftest import new_address


@pytest.fixture()
def sessions(tmp_path: Path) -> sessionmaker:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)


def answer(account: str, answer_id: str = "ans_1") -> LedgerAnswer:
    return LedgerAnswer(answer_id, account, "openchat-extractive", 10, 5, 2)


def test_free_ledger_charges_nothing() -> None:
    entry = FreeLedger().record(None, answer("a"), {new_address(): 1_000_000})  # type: ignore[arg-type]
    assert entry.price == 0 and entry.credits == []


def test_credits_follow_the_weights_exactly(sessions: sessionmaker) -> None:
    a, b = new_address(), new_address()
    with sessions.begin() as s:
        deposit(s, "alice", 1_000_000)
    ledger = PayoutsLedger(price=10_001, fee_bps=1_000)
    with sessions.begin() as s:
        entry = ledger.record(s, answer("alice"), {a: 666_667, b: 333_333})
    # 10% fee of 10,001 is 1,000 (payouts rounds the fee down); the pool of 9,001 is split
    # 2:1 with largest remainder: 6,000.67 -> 6,001 and 3,000.33 -> 3,000.
    assert entry.price == 10_001
    assert {c.contributor: c.amount for c in entry.credits} == {a: 6_001, b: 3_000}
    with sessions() as s:
        assert balance(s, "alice") == 1_000_000 - 10_001


def test_short_balance_is_402_and_writes_nothing(sessions: sessionmaker) -> None:
    with sessions.begin() as s:
        deposit(s, "bob", 5)
    with pytest.raises(ApiError) as err, sessions.begin() as s:
        PayoutsLedger(price=10_000, fee_bps=1_000).record(s, answer("bob", "ans_2"), {new_address(): 1_000_000})
    assert err.value.status == 402
    with sessions() as s:
        assert balance(s, "bob") == 5


def test_answer_citations_and_credits_commit_together(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """Through the real orchestrator: paid answer stored with its credits; unpaid one not at all."""
    import asyncio

    from sqlalchemy import func, select

    from assistant.chat.orchestrator import ChatRequest
    from assistant.chat.wiring import build_assistant
    from assistant.models import Answer, Citation
    from assistant.settings import load_settings
    from payouts.models import Credit as CreditRow
    from retrieval.knowledge import open_knowledge_base

    settings = load_settings(data_dir=tmp_path, dev_api_key="k")
    engine = make_engine(settings.app.effective_database_url)
    migrate(engine)
    kb = open_knowledge_base(settings.retrieval, engine, embedder)
    try:
        who = new_address()
        kb.intake.add_snippet(who, "Honey bees communicate the location of flowers with a waggle dance.")
        assistant = build_assistant(settings, kb, engine, ledger=PayoutsLedger(price=10_000, fee_bps=1_000))
        sessions = sessionmaker(engine)
        with sessions.begin() as s:
            deposit(s, "rich", 50_000)
            deposit(s, "poor", 1)

        async def ask(account: str):  # type: ignore[no-untyped-def]
            turn = await assistant.start(ChatRequest(account, "openchat-extractive",
                                                     [{"role": "user", "content": "How do honey bees communicate?"}]))
            async for _ in turn.deltas:
                pass
            return turn.id, await turn.finish()

        answer_id, record = asyncio.run(ask("rich"))
        assert record.price == 10_000 and [(c.contributor, c.amount) for c in record.credits] == [(who, 9_000)]
        with sessions() as s:
            assert s.get(Answer, answer_id) is not None
            assert s.scalar(select(func.count()).select_from(Citation).where(Citation.answer_id == answer_id)) == 1
            assert s.scalar(select(CreditRow.amount).where(CreditRow.answer_id == answer_id)) == 9_000
        _, cited, credits = assistant.answer("rich", answer_id)  # what GET /v1/answers/{id} shows
        assert [c.weight_ppm for c, _ in cited] == [1_000_000] and [(c["contributor"], c["amount"], c["status"]) for c in credits] == [(who, 9_000, "credited")]
        with pytest.raises(ApiError) as err:
            asyncio.run(ask("poor"))  # refused before any search or streaming
        assert err.value.status == 402
        turn = asyncio.run(assistant.start(ChatRequest("rich", "openchat-extractive",
                                                       [{"role": "user", "content": "How do bees communicate?"}])))
        # The started answer's price is held: of 40,000 left, 30,000 remain for others, so the
        # fourth of these is refused before it starts...
        outcomes = []
        for _ in range(4):
            try:
                asyncio.run(ask("rich"))
                outcomes.append("answered")
            except ApiError as exc:
                outcomes.append(exc.status)
        assert outcomes == ["answered", "answered", "answered", 402]

        async def drain():  # type: ignore[no-untyped-def]
            async for _ in turn.deltas:
                pass
            return await turn.finish()

        # ...and the started one, delivered, is paid from its hold.
        assert asyncio.run(drain()).price == 10_000
        with sessions() as s:
            assert balance(s, "rich") == 0 and balance(s, "poor") == 1
            assert check_invariants(s) == []
    finally:
        kb.close()
        engine.dispose()
