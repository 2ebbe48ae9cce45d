"""Tables of the assistant: answers, their citations, and stored conversations.

Money columns are integers (base units); citation weights are integer parts per million that
sum to exactly 1,000,000 for an answer with verified citations.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from retrieval.models import NAMING_CONVENTION, Chunk, Id, utcnow

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata


class Conversation(Base):
    """A chat thread of one account, as the web UI lists it."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    # Soft delete: a deleted conversation leaves every list, but its answers are money records and stay.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    messages: Mapped[list[Message]] = relationship(order_by="Message.id", back_populates="conversation")


class Message(Base):
    """One turn of a conversation; an assistant turn points at its recorded answer."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    answer_id: Mapped[str | None] = mapped_column(ForeignKey("answers.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class Answer(Base):
    """An answer as given: who asked, which model, the question and the answer text."""

    __tablename__ = "answers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    model: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    answered: Mapped[bool] = mapped_column(default=True)
    price: Mapped[int] = mapped_column(BigInteger, default=0)  # base units, set by the ledger
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    citations: Mapped[list[Citation]] = relationship(order_by="Citation.marker", back_populates="answer")


class Citation(Base):
    """A verified citation of an answer: which chunk, under which marker, with what weight."""

    __tablename__ = "citations"
    __table_args__ = (CheckConstraint("weight_ppm >= 0 AND weight_ppm <= 1000000", name="weight_range"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    answer_id: Mapped[str] = mapped_column(ForeignKey("answers.id"), index=True)
    marker: Mapped[int] = mapped_column(Integer)
    chunk_id: Mapped[int] = mapped_column(ForeignKey(Chunk.__table__.c.id), index=True)
    # The contributor at answer time (the chunk's origin), kept so credits never need a join.
    contributor: Mapped[str] = mapped_column(String(42), index=True)
    weight_ppm: Mapped[int] = mapped_column(Integer)
    # Set when this chunk is credited for words that the answer quoted from the chunk cited as
    # ``marker`` and that this chunk wrote first (retrieval.first_writers): that copy's chunk id.
    # No foreign key: SQLite adds a column with one only by rebuilding the table.
    copied_by: Mapped[int | None] = mapped_column(Id)
    answer: Mapped[Answer] = relationship(back_populates="citations")
