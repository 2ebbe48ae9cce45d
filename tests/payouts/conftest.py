"""Ledger databases for the payouts tests: a migrated SQLite file and a fresh PostgreSQL DB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from assistant.db import migrate
from payouts.db import make_engine
from tests.conftest import POSTGRES_URL, drop_postgres_database, postgres_database


def migrated_engine(kind: str, tmp: Path) -> tuple[Engine, str | None]:
    """(engine, postgres url to drop or None) with the whole schema migrated to head."""
    if kind == "postgres":
        url = postgres_database()
        if url is None:
            pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
        engine = make_engine(url)
        migrate(engine)
        return engine, url
    engine = make_engine(f"sqlite:///{tmp / 'ledger.sqlite3'}")
    migrate(engine)
    return engine, None


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    eng, url = migrated_engine(request.param, tmp_path)
    yield eng
    eng.dispose()
    if url:
        drop_postgres_database(url)
