"""Database engine for the payouts workers (SQLite embedded default, or PostgreSQL).

The schema itself is migrated by the application's Alembic environment (the payouts tables are
registered in its ``target_metadata``); workers expect a migrated database.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for SQLite (WAL, foreign keys, waits up to 30 s on locks) or PostgreSQL."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def begin_snapshot(session: Session) -> None:
    """Start ``session``'s transaction as one consistent snapshot, so figures read by separate
    statements agree while the API and the workers keep writing (reconcile, status)."""
    if session.in_transaction():
        raise RuntimeError("begin_snapshot must come before the session's first statement")
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":  # READ COMMITTED, the default, takes a new snapshot per statement
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    elif dialect == "sqlite":
        # pysqlite opens a transaction only before a write, so each SELECT would read the latest
        # commit; an explicit BEGIN holds one WAL snapshot from the first read to the rollback.
        session.connection().exec_driver_sql("BEGIN")
