"""The Alembic migrations: one head, and they build exactly the schema the models declare."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from assistant.db import alembic_config, make_engine, migrate
from tests.conftest import drop_postgres_database, postgres_database

# Every module that declares tables; a missing one (not built yet) is left out.
MODEL_MODULES = ["retrieval.models", "assistant.models", "payouts.models"]


def declared_metadata() -> list:
    found = []
    for name in MODEL_MODULES:
        try:
            found.append(importlib.import_module(name).metadata)
        except ModuleNotFoundError:
            continue
    return found


def test_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migrations have several heads {heads}: chain the newest after the other"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty ledger database: a SQLite file, or a fresh PostgreSQL database (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite3'}"
        return
    pg = postgres_database()
    if pg is None:
        pytest.skip("no PostgreSQL")
    try:
        yield pg
    finally:
        drop_postgres_database(pg)


def test_migrations_match_models(ledger_url: str) -> None:
    engine = make_engine(ledger_url)
    try:
        migrate(engine)
        migrate(engine)  # a second start changes nothing
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), declared_metadata())
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        engine.dispose()


def test_a_failed_migration_leaves_no_half_schema(tmp_path: Path) -> None:
    """A start that dies mid-migration (here: revision 0005 fails on a table in its way) leaves
    the SQLite schema as it was, so the next start migrates from scratch instead of failing on
    tables an earlier revision had already created."""
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE contribution_anchors (x INTEGER)")
        with pytest.raises(Exception, match="contribution_anchors"):
            migrate(engine)
        assert set(inspect(engine).get_table_names()) == {"contribution_anchors"}
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE contribution_anchors")
        migrate(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), declared_metadata()) == []
    finally:
        engine.dispose()


def test_upgrading_a_ledger_with_chunks_and_their_sentence_origins_keeps_them(ledger_url: str) -> None:
    """A data dir made at 0014 holds chunks that sentence_origins rows point at: the later
    revisions must add to chunks without rebuilding it (SQLite's batch rebuild drops the table,
    which those rows' foreign key refuses)."""
    from alembic import command
    from sqlalchemy import text

    engine = make_engine(ledger_url)
    try:
        config = alembic_config(ledger_url)
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0014")
        now = "2026-12-01 00:00:00"
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO contributions (id, contributor, kind, status, bytes_total, bytes_done, rows_done, rows_rejected,"
                " chunks_stored, chunks_duplicate, chunks_near_duplicate, report, created_at)"
                " VALUES (1, :who, 'snippet', 'complete', 0, 0, 1, 0, 1, 0, 0, '{}', :now)"), {"who": "0x" + "1" * 40, "now": now})
            conn.execute(text(
                "INSERT INTO chunks (id, contribution_id, contributor, content_hash, text, position, metadata, indexed,"
                " created_at, sentences_indexed) VALUES (1, 1, :who, :h, 'An octopus has three hearts and blue copper-rich blood.',"
                " 0, '{}', true, :now, true)"), {"who": "0x" + "1" * 40, "h": "a" * 64, "now": now})
            conn.execute(text("INSERT INTO sentence_origins (hash, chunk_id, contributor) VALUES (:h, 1, :who)"),
                         {"h": "b" * 64, "who": "0x" + "1" * 40})
        migrate(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM chunks")).scalar() == 1
            assert conn.execute(text("SELECT chunk_id FROM sentence_origins")).scalar() == 1
            assert compare_metadata(MigrationContext.configure(conn), declared_metadata()) == []
    finally:
        engine.dispose()
