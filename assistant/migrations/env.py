"""Alembic environment: the metadata of every package that keeps tables."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from assistant.models import metadata as assistant_metadata
from payouts.models import metadata as payouts_metadata
from retrieval.models import metadata as retrieval_metadata

config = context.config
target_metadata = [retrieval_metadata, assistant_metadata, payouts_metadata]


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run()
