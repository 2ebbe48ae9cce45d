"""Builds the assistant from settings (called from the app's lifespan, never at import)."""

from __future__ import annotations

from sqlalchemy import Engine

from assistant.chat.ledger import AnswerLedger, FreeLedger, PayoutsLedger
from assistant.chat.llm import LlmGateway
from assistant.chat.orchestrator import Assistant
from assistant.settings import Settings
from retrieval.knowledge import KnowledgeBase


def build_assistant(settings: Settings, kb: KnowledgeBase, engine: Engine, ledger: AnswerLedger | None = None) -> Assistant:
    """The assistant over this knowledge base; answers are paid through the payouts ledger
    (``OPENCHAT_PRICE_PER_ANSWER`` = 0 makes them free)."""
    gateway = LlmGateway(settings.app)
    if ledger is None:
        price = settings.payouts.price_per_answer
        ledger = PayoutsLedger(price, settings.payouts.platform_fee_bps) if price else FreeLedger()
    return Assistant(kb, engine, gateway, ledger, top_k=settings.app.chat_top_k,
                     default_max_tokens=settings.app.llm_max_tokens)
