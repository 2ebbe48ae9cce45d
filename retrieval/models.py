"""Tables of the knowledge base: contributions, their chunks (the origin of each text), the origin of
each fact-carrying sentence and the vectors of each chunk's sentences."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = metadata


class Contribution(Base):
    """One snippet or one uploaded data set, with what became of its rows."""

    __tablename__ = "contributions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    contributor: Mapped[str] = mapped_column(String(42), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # snippet | dataset
    title: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    licence: Mapped[str | None] = mapped_column(String(200))
    filename: Mapped[str | None] = mapped_column(Text)
    format: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="processing")  # processing | complete | failed
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    chunks_stored: Mapped[int] = mapped_column(Integer, default=0)
    chunks_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    chunks_near_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    # The first problems found (row errors, duplicates), capped; counts above are complete.
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Chunk(Base):
    """A stored piece of text; its content hash is unique, so its contributor is its origin."""

    __tablename__ = "chunks"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    contribution_id: Mapped[int] = mapped_column(ForeignKey("contributions.id"), index=True)
    contributor: Mapped[str] = mapped_column(String(42), index=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    line: Mapped[int | None] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # Who said it and when (ISO 8601 as given, normalised: a chat's wall-clock time has no zone).
    speaker: Mapped[str | None] = mapped_column(Text)
    said_at: Mapped[str | None] = mapped_column(String(40))
    # False between the ledger commit and the index write; start-up re-indexes such rows.
    indexed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # True once the chunk's fact-carrying sentences are in sentence_origins (set in the insert's
    # transaction; chunks older than that table are recorded at start-up).
    sentences_indexed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # True once the chunk's stretch fingerprints are in stretch_origins (likewise; migration 0016).
    stretches_indexed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class SentenceOrigin(Base):
    """The first stored chunk (and its contributor) of a sentence long enough to carry a fact.

    Keyed by the hash of the sentence's words (retrieval.origin), so the first writer is the origin.
    """

    __tablename__ = "sentence_origins"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    chunk_id: Mapped[int] = mapped_column(ForeignKey("chunks.id"), index=True)
    contributor: Mapped[str] = mapped_column(String(42))


class StretchOrigin(Base):
    """The first stored chunk (and its contributor) of a winnowed fingerprint of its word stretches.

    Keyed by the 64-bit hash of a run of ``retrieval.origin.STRETCH_WORDS`` words, so the first
    writer is the origin; a hit is only a lead, confirmed by aligning the two texts word for word.
    """

    __tablename__ = "stretch_origins"

    hash: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chunk_id: Mapped[int] = mapped_column(ForeignKey("chunks.id"), index=True)
    contributor: Mapped[str] = mapped_column(String(42))


class SentenceVector(Base):
    """A chunk's sentence as the extractive responder embeds it, with its vector (float32 bytes).

    Made at ingest so that an answer embeds only its question (retrieval.sentence_vectors).
    """

    __tablename__ = "sentence_vectors"

    chunk_id: Mapped[int] = mapped_column(ForeignKey("chunks.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
