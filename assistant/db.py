"""The database engine and its schema migrations (Alembic), shared by every package."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, foreign keys, waits on locks) or PostgreSQL."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        pool: dict[str, int] = {}
        if path and path != ":memory:" and "mode=memory" not in path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # A pool as large as the threads that use it (anyio's 40 plus a few): with the
            # default 5 + 10 overflow, connections past 5 were closed on return and reopened
            # (connect and pragmas) several times a second under load.
            pool = {"pool_size": 48, "max_overflow": 16}
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **pool)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


# One lock per SQLite engine: the process's own writers queue here instead of in SQLite.
_write_locks: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()
_locks_lock = threading.Lock()


@contextmanager
def write_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session in a write transaction, committed on leaving (rolled back on an exception).

    On SQLite the process's writers take turns on a lock, then start with ``BEGIN IMMEDIATE``.
    SQLite itself queues writers by polling: each waiter sleeps 1, 2, 5 ... then 100 ms between
    tries, and a newcomer often wins over an old waiter, so under load a few answers waited
    seconds (p99 2.4 s at 73 answers/s). A thread lock wakes the next writer the moment the
    last one commits; ``BEGIN IMMEDIATE`` takes SQLite's write lock up front, so only the other
    processes (the payouts workers) are left to wait on through the busy timeout.
    """
    engine = sessions.kw["bind"]
    if engine.dialect.name != "sqlite":
        with sessions.begin() as session:
            yield session
        return
    with _locks_lock:
        lock = _write_locks.setdefault(engine, threading.Lock())
    with lock, sessions.begin() as session:
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield session


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (safe to run at every start)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # pysqlite begins its implicit transaction only before INSERT/UPDATE/DELETE, so
            # CREATE TABLE ran outside any transaction: a start killed mid-migration left half a
            # schema without its alembic_version row, and every later start failed ("table ...
            # already exists"). Without the implicit handling, our own BEGIN covers the DDL too.
            level = driver.isolation_level
            driver.isolation_level = None
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        finally:
            if sqlite:
                if driver.in_transaction:
                    driver.rollback()
                driver.isolation_level = level
