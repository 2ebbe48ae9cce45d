"""Credited per UTC day (the earnings page's chart), on SQLite and PostgreSQL: exact sums, every
day listed, days in UTC whatever the database session's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from payouts import ledger, views
from tests.conftest import new_address


def test_fill_days_lists_every_day_with_zeros() -> None:
    days = views.fill_days({"2026-02-27": (5, 1), "2026-03-01": (7, 2)}, date(2026, 2, 27), date(2026, 3, 2))
    assert days == [{"day": "2026-02-27", "amount": 5, "credits": 1}, {"day": "2026-02-28", "amount": 0, "credits": 0},
                    {"day": "2026-03-01", "amount": 7, "credits": 2}, {"day": "2026-03-02", "amount": 0, "credits": 0}]


def test_contributor_daily_sums_exactly_per_utc_day(engine: Engine) -> None:
    a, b = new_address(), new_address()
    with Session(engine) as s, s.begin():
        ledger.deposit(s, "asker", 1_000_000)
    parts = []
    for i in range(3):
        with Session(engine) as s, s.begin():
            r = ledger.record_answer_payment(s, "asker", f"daily-{a[2:14]}-{i}", 10_001, {a: 700_000, b: 300_000}, fee_bps=1_000)
            parts.append(r.credits[a])
    today = datetime.now(UTC).date()
    with Session(engine) as s:
        if engine.dialect.name == "postgresql":
            # A session far from UTC (on the side that makes now another calendar day there):
            # the days must still be UTC days.
            zone = "Pacific/Pago_Pago" if datetime.now(UTC).hour < 12 else "Pacific/Kiritimati"
            s.execute(text(f"SET TIME ZONE '{zone}'"))
        got = views.contributor_daily(s, a.lower(), days=3, today=today)
        assert got["address"] == a and got["to"] == today.isoformat()
        assert [d["day"] for d in got["days"]] == [(today - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
        assert got["days"][-1] == {"day": today.isoformat(), "amount": sum(parts), "credits": 3}
        assert got["days"][0]["amount"] == got["days"][1]["amount"] == 0 and got["total"] == sum(parts)
        # A window that ends yesterday sees none of today's credits; one that ends tomorrow does.
        assert views.contributor_daily(s, a, days=5, today=today - timedelta(days=1))["total"] == 0
        later = views.contributor_daily(s, a, days=2, today=today + timedelta(days=1))
        assert [d["amount"] for d in later["days"]] == [sum(parts), 0]
        assert views.contributor_daily(s, new_address(), days=1, today=today)["days"] == [
            {"day": today.isoformat(), "amount": 0, "credits": 0}]
