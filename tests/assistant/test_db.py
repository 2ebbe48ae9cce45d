"""assistant.db.write_session: SQLite writers of one process take turns and never fail on locks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from assistant.db import make_engine, write_session


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
    yield engine
    engine.dispose()


def test_concurrent_read_then_write_transactions_all_commit_exactly(engine: Engine) -> None:
    # Read, then write what was read plus one: with SQLite's deferred BEGIN two of these in
    # flight fail ("database is locked": the reader's snapshot is stale when it comes to write)
    # or lose an increment. In write_session every one commits and none is lost.
    sessions = sessionmaker(engine)
    threads, rounds = 8, 25
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(rounds):
                with write_session(sessions) as session:
                    n = session.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
                    session.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == threads * rounds


def test_write_session_rolls_back_on_error_and_releases_the_lock(engine: Engine) -> None:
    sessions = sessionmaker(engine)
    with pytest.raises(RuntimeError), write_session(sessions) as session:
        session.execute(text("UPDATE counter SET n = 99"))
        raise RuntimeError("half-way")
    with write_session(sessions) as session:  # the lock was released: this does not hang
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 0
        session.execute(text("UPDATE counter SET n = 1"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 1


def test_write_session_holds_the_write_lock_from_its_start(engine: Engine, tmp_path: Path) -> None:
    # BEGIN IMMEDIATE: another process (here: another engine) cannot write meanwhile.
    other = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        with write_session(sessionmaker(engine)), other.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout = 0")
            with pytest.raises(Exception, match="locked"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        other.dispose()
